/*
 * gdt.c - the runtime's global descriptor table and task state segment.
 *
 * Long mode ignores base and limit for code and data segments (Intel SDM
 * vol. 3A 3.4.5): flat 64-bit code and data for ring 0, the same pair with
 * DPL 3 for the trading loop at CPL3 (arch/x86_64/ring.h), and a TSS whose
 * RSP0 is the stack an exception from CPL3 lands on and whose IST1 is the
 * double fault's own stack (SDM 7.7, 6.14.5). Nothing here lives in .bss: it is loaded before
 * _start's .bss clear, which runs at CPL3.
 */
#include "arch/x86_64/trap.h"
#include <stdint.h>

#define SEG_ACCESS_PRESENT  (1u << 7)
#define SEG_ACCESS_DPL3     (3u << 5)
#define SEG_ACCESS_S        (1u << 4) /* code or data, not system */
#define SEG_ACCESS_CODE     (1u << 3)
#define SEG_ACCESS_RW       (1u << 1) /* readable code / writable data */
#define SEG_TYPE_TSS_AVAIL  0x9u      /* 64-bit TSS, available (system) */
#define SEG_FLAG_G          (1u << 3) /* limit in 4 KiB units */
#define SEG_FLAG_DB         (1u << 2) /* 32-bit default size; 0 with L */
#define SEG_FLAG_L          (1u << 1) /* 64-bit code */
#define SEG_LIMIT_MAX       0xFFFFFu
#define EXC_STACK_SIZE      (16u * 1024)

/* Flat descriptor with base 0: limit 15:0, access byte 47:40, limit
 * 19:16 in 51:48, flags 55:52. */
#define SEG_DESC(access, flags)                                           \
	(((uint64_t)(SEG_LIMIT_MAX & 0xFFFF)) | ((uint64_t)(access) << 40) | \
	 ((uint64_t)(SEG_LIMIT_MAX >> 16) << 48) | ((uint64_t)(flags) << 52))

#define CODE_ACCESS (SEG_ACCESS_PRESENT | SEG_ACCESS_S | SEG_ACCESS_CODE | SEG_ACCESS_RW)
#define DATA_ACCESS (SEG_ACCESS_PRESENT | SEG_ACCESS_S | SEG_ACCESS_RW)

/* 64-bit TSS, SDM vol. 3A figure 8-11. */
struct __attribute__((packed)) tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
};

_Static_assert(sizeof(struct tss64) == 104, "64-bit TSS is 104 bytes");

/* Not const: ltr marks the TSS descriptor busy in place. */
static uint64_t gdt[GDT_ENTRIES] __attribute__((aligned(16))) = {
	[GDT_SEL_CODE >> 3] = SEG_DESC(CODE_ACCESS, SEG_FLAG_G | SEG_FLAG_L),
	[GDT_SEL_DATA >> 3] = SEG_DESC(DATA_ACCESS, SEG_FLAG_G | SEG_FLAG_DB),
	[GDT_SEL_UDATA >> 3] = SEG_DESC(DATA_ACCESS | SEG_ACCESS_DPL3, SEG_FLAG_G | SEG_FLAG_DB),
	[GDT_SEL_UCODE >> 3] = SEG_DESC(CODE_ACCESS | SEG_ACCESS_DPL3, SEG_FLAG_G | SEG_FLAG_L),
};

/* iomap_base beyond the limit: no I/O permission bitmap, so port I/O at
 * CPL3 always faults (IOPL stays 0). */
static struct tss64 tss __attribute__((aligned(16))) = { .iomap_base = sizeof(struct tss64) };

/* Exception stacks: RSP0 for anything raised at CPL3, IST1 for #DF. In
 * .noinit (linker.ld), outside .bss, so that they are usable while .bss is
 * being cleared at CPL3. */
static uint8_t exc_stack[EXC_STACK_SIZE] __attribute__((aligned(16), section(".noinit")));
static uint8_t df_stack[EXC_STACK_SIZE] __attribute__((aligned(16), section(".noinit")));

struct __attribute__((packed)) table_register {
	uint16_t limit;
	uint64_t base;
};

void gdt_init(void)
{
	uint64_t base = (uint64_t)(uintptr_t)&tss;
	uint64_t limit = sizeof(tss) - 1;
	struct table_register gdtr = { sizeof(gdt) - 1, (uint64_t)(uintptr_t)gdt };

	tss.rsp[0] = (uint64_t)(uintptr_t)(exc_stack + EXC_STACK_SIZE);
	tss.ist[TSS_IST_DOUBLE_FAULT - 1] = (uint64_t)(uintptr_t)(df_stack + EXC_STACK_SIZE);
	/* System descriptor, 16 bytes (SDM vol. 3A figure 8-4). */
	gdt[GDT_SEL_TSS >> 3] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) |
				((uint64_t)(SEG_ACCESS_PRESENT | SEG_TYPE_TSS_AVAIL) << 40) |
				(((limit >> 16) & 0xF) << 48) | (((base >> 24) & 0xFF) << 56);
	gdt[(GDT_SEL_TSS >> 3) + 1] = base >> 32;
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
	__asm__ volatile("ltr %w0" : : "r"(GDT_SEL_TSS) : "memory");
}
