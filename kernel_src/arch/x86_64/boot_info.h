/*
 * boot_info.h - what stage 2 hands the runtime (pointer in rdi at entry).
 *
 * Stage 2 (boot/stage2.asm) fills this struct in low memory before it enters
 * long mode. The OFF_ defines are the single definition of the layout: the
 * Makefile turns them into build/gen/boot_info.inc for NASM, and the
 * static_asserts below pin the C struct to them. One numeric #define per line.
 */
#ifndef HFTOS_BOOT_INFO_H
#define HFTOS_BOOT_INFO_H

#include <stdint.h>

#define BOOT_INFO_MAGIC          0x31494248 /* "HBI1" as a little-endian u32 */
#define BOOT_INFO_E820_MAX       32         /* entries kept; more are dropped */
#define BOOT_INFO_E820_ENTRY     24         /* bytes per entry (ACPI 3.0 size) */
#define BOOT_INFO_OFF_MAGIC      0
#define BOOT_INFO_OFF_BOOT_DRIVE 4
#define BOOT_INFO_OFF_E820_COUNT 8
#define BOOT_INFO_OFF_RT_LOAD    16
#define BOOT_INFO_OFF_RT_SIZE    24
#define BOOT_INFO_OFF_MAPPED_TOP 32
#define BOOT_INFO_OFF_E820       40
#define BOOT_INFO_SIZE           808

#define E820_TYPE_RAM      1 /* usable */
#define E820_TYPE_RESERVED 2
#define E820_TYPE_ACPI     3 /* reclaimable after reading the ACPI tables */
#define E820_TYPE_NVS      4
#define E820_TYPE_BAD      5

struct e820_entry {
	uint64_t base;
	uint64_t length;
	uint32_t type;      /* E820_TYPE_* */
	uint32_t acpi_attr; /* ACPI 3.0 extended attributes; bit 0 = enabled */
} __attribute__((packed));

struct boot_info {
	uint32_t magic;       /* BOOT_INFO_MAGIC */
	uint8_t boot_drive;   /* BIOS drive number the image was read from */
	uint8_t pad0[3];
	uint32_t e820_count;  /* valid entries in e820[] */
	uint32_t pad1;
	uint64_t runtime_load; /* physical address the runtime was copied to */
	uint64_t runtime_size; /* bytes of runtime image loaded */
	uint64_t mapped_top;   /* [0, mapped_top) is identity mapped, 2 MiB pages */
	struct e820_entry e820[BOOT_INFO_E820_MAX];
} __attribute__((packed));

_Static_assert(sizeof(struct e820_entry) == BOOT_INFO_E820_ENTRY, "E820 entry size");
_Static_assert(sizeof(struct boot_info) == BOOT_INFO_SIZE, "boot_info size");
_Static_assert(__builtin_offsetof(struct boot_info, boot_drive) == BOOT_INFO_OFF_BOOT_DRIVE, "boot_drive");
_Static_assert(__builtin_offsetof(struct boot_info, e820_count) == BOOT_INFO_OFF_E820_COUNT, "e820_count");
_Static_assert(__builtin_offsetof(struct boot_info, runtime_load) == BOOT_INFO_OFF_RT_LOAD, "runtime_load");
_Static_assert(__builtin_offsetof(struct boot_info, runtime_size) == BOOT_INFO_OFF_RT_SIZE, "runtime_size");
_Static_assert(__builtin_offsetof(struct boot_info, mapped_top) == BOOT_INFO_OFF_MAPPED_TOP, "mapped_top");
_Static_assert(__builtin_offsetof(struct boot_info, e820) == BOOT_INFO_OFF_E820, "e820");
_Static_assert(BOOT_INFO_OFF_E820 + BOOT_INFO_E820_MAX * BOOT_INFO_E820_ENTRY == BOOT_INFO_SIZE, "size");

#endif
