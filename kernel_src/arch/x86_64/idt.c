/*
 * idt.c - interrupt descriptor table for the 32 exception vectors.
 *
 * 64-bit interrupt gates (Intel SDM vol. 3A 6.14.1), present, DPL 0 (an
 * exception at CPL3 still enters them: the DPL check is for int n only),
 * #DF on IST1 so that it has a good stack whatever broke, the others on
 * the current stack, or the TSS's RSP0 when raised at CPL3.
 * Vectors 32-255 stay not-present: interrupts are never enabled, so any of
 * them arriving means something is badly wrong and ends in #GP -> dump.
 */
#include "arch/x86_64/trap.h"
#include <stdint.h>

#define IDT_ENTRIES        256
#define GATE_TYPE_INTR     0xE        /* 64-bit interrupt gate */
#define GATE_PRESENT       (1u << 7)
#define VECTOR_INVALID_OPCODE 6
#define VECTOR_DOUBLE_FAULT 8

struct idt_gate {
	uint16_t offset_low;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;                 /* P, DPL, 0, type */
	uint16_t offset_mid;
	uint32_t offset_high;
	uint32_t reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct idt_gate) == 16, "64-bit gate is 16 bytes");

struct __attribute__((packed)) idt_register {
	uint16_t limit;
	uint64_t base;
};

extern const uint64_t isr_stub_table[EXCEPTION_VECTORS];
extern char ring_ud_entry[]; /* #UD: the ring gates first (arch/x86_64/ring.h) */

/* .noinit (linker.ld): set up before _start's .bss clear; idt_init writes
 * all of it. */
static struct idt_gate idt[IDT_ENTRIES] __attribute__((aligned(16), section(".noinit")));

static void idt_set_gate(unsigned vector, uint64_t handler, uint16_t selector, uint8_t ist)
{
	struct idt_gate *g = &idt[vector];

	g->offset_low = (uint16_t)handler;
	g->selector = selector;
	g->ist = ist;
	g->type_attr = GATE_PRESENT | GATE_TYPE_INTR;
	g->offset_mid = (uint16_t)(handler >> 16);
	g->offset_high = (uint32_t)(handler >> 32);
	g->reserved = 0;
}

void idt_init(void)
{
	struct idt_register idtr = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };

	__builtin_memset(idt, 0, sizeof(idt));
	for (unsigned v = 0; v < EXCEPTION_VECTORS; v++)
		idt_set_gate(v, v == VECTOR_INVALID_OPCODE ? (uint64_t)(uintptr_t)ring_ud_entry
							   : isr_stub_table[v], GDT_SEL_CODE,
			     v == VECTOR_DOUBLE_FAULT ? TSS_IST_DOUBLE_FAULT : 0);
	__asm__ volatile("lidt %0" : : "m"(idtr) : "memory");
}
