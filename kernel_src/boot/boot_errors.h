/*
 * boot_errors.h - the one-letter codes every boot path prints before the
 * runtime's serial driver is up: "hftos boot error: <letter>" on COM1 and
 * the screen, then isa-debug-exit HFTOS_EXIT_BOOT_FAILED (exit_codes.h).
 *
 * Single definition for stage 1, stage 2 and the PVH entry (NASM, through
 * the Makefile's generated build/gen/boot_errors.inc, included by
 * boot_defs.inc) and the UEFI loader (C, boot/uefi/loader.c). One numeric
 * #define per line; the letter is in the comment.
 */
#ifndef HFTOS_BOOT_ERRORS_H
#define HFTOS_BOOT_ERRORS_H

#define ERR_NO_EDD           0x58 /* 'X' stage 1: no int 13h extensions */
#define ERR_STAGE2_READ      0x44 /* 'D' stage 1: reading stage 2 failed */
#define ERR_NO_CPUID         0x43 /* 'C' stage 2 / PVH entry: CPUID missing */
#define ERR_NO_LONG_MODE     0x4C /* 'L' stage 2 / PVH entry: CPU lacks long mode */
#define ERR_A20              0x41 /* 'A' stage 2: A20 stays off */
#define ERR_E820             0x4D /* 'M' stage 2 / PVH / UEFI: no (usable) memory map */
#define ERR_DISK_READ        0x52 /* 'R' stage 2: reading the runtime failed (truncated image) */
#define ERR_BAD_HEADER       0x48 /* 'H' stage 2 / UEFI: runtime header invalid or runtime missing */
#define ERR_PVH_START_INFO   0x50 /* 'P' PVH entry: EBX is no hvm_start_info (magic) */
#define ERR_PVH_VERSION      0x56 /* 'V' PVH entry: start info version 0 (no memory map) */
#define ERR_PVH_NO_RAM       0x53 /* 'S' PVH entry: no RAM entry holds the runtime and .bss */
#define ERR_UEFI_NO_RAM      0x53 /* 'S' UEFI: [load address, end of .bss) is not free RAM */
#define ERR_UEFI_LOW_MEMORY  0x47 /* 'G' UEFI: no pages below 4 GiB for tables/stack, or loader above 4 GiB */
#define ERR_UEFI_EXIT_BOOT   0x45 /* 'E' UEFI: GetMemoryMap or ExitBootServices refused */

#endif
