/*
 * trap.h - descriptor tables and the CPU exception path.
 *
 * The runtime runs with interrupts off for good; the IDT exists only so that
 * a CPU exception becomes a register dump on the console and a "crashed"
 * exit code instead of a silent triple fault and reboot.
 */
#ifndef HFTOS_TRAP_H
#define HFTOS_TRAP_H

#include <stdint.h>

#define EXCEPTION_VECTORS 32
#define GDT_SEL_CODE      0x08 /* runtime GDT: flat 64-bit code, ring 0 */
#define GDT_SEL_DATA      0x10 /* runtime GDT: flat data, ring 0 */
#define GDT_SEL_UDATA     0x18 /* flat data, DPL 3 (used with RPL 3) */
#define GDT_SEL_UCODE     0x20 /* flat 64-bit code, DPL 3 (used with RPL 3) */
#define GDT_SEL_TSS       0x28 /* 64-bit TSS: two slots */
#define GDT_ENTRIES       7
#define TSS_IST_DOUBLE_FAULT 1 /* #DF runs on IST1 (its own stack) */

/* Stack image built by isr.asm: registers pushed by isr_common (last pushed
 * first), then the stub's vector and error code, then the CPU's frame. */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector;
	uint64_t error_code; /* 0 for vectors without one */
	uint64_t rip, cs, rflags, rsp, ss;
};

_Static_assert(sizeof(struct trap_frame) == 22 * 8, "must match isr.asm");

/* Load the runtime's own GDT (flat 64-bit code and data for rings 0 and 3,
 * a TSS), reload all segment registers and load the task register, so
 * nothing depends on the loader's memory any more. Uses no .bss. */
void gdt_init(void);

/* Point vectors 0-31 at the isr.asm stubs (#DF on IST1) and load the
 * IDT. Uses no .bss. */
void idt_init(void);

/* Called by isr_common: dump the frame and end the run (never returns for
 * an exception). */
void trap_dispatch(struct trap_frame *frame);

#endif
