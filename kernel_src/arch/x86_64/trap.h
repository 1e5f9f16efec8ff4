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
#define GDT_SEL_CODE      0x08 /* runtime GDT: flat 64-bit code */
#define GDT_SEL_DATA      0x10 /* runtime GDT: flat data */

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

/* Load the runtime's own GDT (flat 64-bit code and data) and reload all
 * segment registers, so nothing depends on stage 2's memory any more. */
void gdt_init(void);

/* Point vectors 0-31 at the isr.asm stubs and load the IDT. */
void idt_init(void);

/* Called by isr_common: dump the frame and end the run (never returns for
 * an exception). */
void trap_dispatch(struct trap_frame *frame);

#endif
