/*
 * image_header.h - layout of the runtime image's first bytes.
 *
 * The runtime binary (build/runtime.bin) starts with a fixed header written by
 * arch/x86_64/entry.asm, which stage 2 reads to learn where to load the image,
 * how long it is and where to jump, so no size is hard-coded in the loader.
 * A config block follows at a fixed offset so that tools (hftlab, the
 * Makefile's fault-test image) can patch it without relinking.
 *
 * Single definition: the Makefile turns these #defines into
 * build/gen/image_header.inc for NASM; keep one numeric #define per line.
 */
#ifndef HFTOS_IMAGE_HEADER_H
#define HFTOS_IMAGE_HEADER_H

#define HFTOS_IMAGE_MAGIC        0x52544648 /* "HFTR" as a little-endian u32 */
#define HFTOS_IMAGE_VERSION      1
#define HFTOS_IMAGE_OFF_MAGIC    0  /* u32 */
#define HFTOS_IMAGE_OFF_VERSION  4  /* u32 */
#define HFTOS_IMAGE_OFF_LOAD     8  /* u64 link and load address of byte 0 */
#define HFTOS_IMAGE_OFF_FILE_END 16 /* u64 address just past the file's bytes */
#define HFTOS_IMAGE_OFF_ENTRY    24 /* u64 64-bit entry, rdi = struct boot_info * */
#define HFTOS_IMAGE_OFF_MEM_END  32 /* u64 address just past .bss */
#define HFTOS_IMAGE_OFF_CONFIG   40 /* u64 address of struct hftos_config */
#define HFTOS_IMAGE_OFF_FEATURES 48 /* u32 HFTOS_IMAGE_F_* (0 in older images) */
#define HFTOS_IMAGE_F_CPL3_LOOP  0x1 /* the trading loop runs at CPL3: fit for KVM's PVM flavour */
#define HFTOS_CONFIG_OFFSET      64 /* config block's offset in the image */

#endif
