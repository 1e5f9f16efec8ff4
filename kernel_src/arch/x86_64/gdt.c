/*
 * gdt.c - the runtime's global descriptor table.
 *
 * Long mode ignores base and limit for code and data segments (Intel SDM
 * vol. 3A 3.4.5); a flat code segment with L=1 and one data segment is all
 * ring 0 needs. No TSS: nothing changes privilege and no IST stack is used.
 */
#include "arch/x86_64/trap.h"
#include <stdint.h>

#define SEG_ACCESS_PRESENT  (1u << 7)
#define SEG_ACCESS_S        (1u << 4) /* code or data, not system */
#define SEG_ACCESS_CODE     (1u << 3)
#define SEG_ACCESS_RW       (1u << 1) /* readable code / writable data */
#define SEG_FLAG_G          (1u << 3) /* limit in 4 KiB units */
#define SEG_FLAG_DB         (1u << 2) /* 32-bit default size; 0 with L */
#define SEG_FLAG_L          (1u << 1) /* 64-bit code */
#define SEG_LIMIT_MAX       0xFFFFFu


/* Flat descriptor with base 0: limit 15:0, access byte 47:40, limit
 * 19:16 in 51:48, flags 55:52. */
#define SEG_DESC(access, flags)                                           \
	(((uint64_t)(SEG_LIMIT_MAX & 0xFFFF)) | ((uint64_t)(access) << 40) | \
	 ((uint64_t)(SEG_LIMIT_MAX >> 16) << 48) | ((uint64_t)(flags) << 52))

static const uint64_t gdt[] __attribute__((aligned(16))) = {
	0,
	SEG_DESC(SEG_ACCESS_PRESENT | SEG_ACCESS_S | SEG_ACCESS_CODE | SEG_ACCESS_RW,
		 SEG_FLAG_G | SEG_FLAG_L),
	SEG_DESC(SEG_ACCESS_PRESENT | SEG_ACCESS_S | SEG_ACCESS_RW, SEG_FLAG_G | SEG_FLAG_DB),
};

struct __attribute__((packed)) table_register {
	uint16_t limit;
	uint64_t base;
};

void gdt_init(void)
{
	struct table_register gdtr = { sizeof(gdt) - 1, (uint64_t)(uintptr_t)gdt };

	__asm__ volatile("lgdt %0" : : "m"(gdtr));
	/* Reload CS with a far return: push selector and target, lretq. */
	__asm__ volatile("pushq %0\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:"
			 : : "i"(GDT_SEL_CODE) : "rax", "memory");
	__asm__ volatile("mov %0, %%ds\n\t"
			 "mov %0, %%es\n\t"
			 "mov %0, %%ss\n\t"
			 "mov %1, %%fs\n\t"
			 "mov %1, %%gs"
			 : : "r"(GDT_SEL_DATA), "r"(0) : "memory");
}
