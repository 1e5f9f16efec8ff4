/*
 * ring.h - running the trading loop at CPL3 in the single address space.
 *
 * Why: under KVM's PVM flavour (no VMX/SVM; the only KVM of many cloud
 * hosts, and of this lab machine) guest ring 0 runs by instruction
 * emulation, ~2 us per instruction, while guest CPL3 code runs natively
 * (issue 15: a probe kernel measured a dec/jnz loop at 5,834 cycles per
 * iteration in ring 0 and 0.75 at CPL3, as on the host). Under TCG
 * and hardware KVM the rings cost the same, so one code path serves all:
 *
 *   _start (ring 0): GDT + TSS, IDT, paging_allow_user
 *     -> iretq to CPL3: clear .bss (rep stosq over ~40 MiB: 4.7 s at
 *        emulated ring 0 under PVM)
 *     -> boot gate: kmain at ring 0
 *   kmain: init, wait for READY at ring 0 (port I/O to the console)
 *     -> ring_user_call(): the hiccup recorder, then the trading loop at
 *        CPL3 (memory, rdtsc and the NIC's MMIO doorbells only)
 *     -> return gate: back in kmain at ring 0, the dump, exit.
 *
 * The way up is a #UD gate (ring_entry.asm): `syscall` is no way to ring
 * 0 under PVM (it reaches LSTAR but the code there still runs at CPL3:
 * the first `out` raised #GP with CS 0x23 in the frame, measured with
 * this runtime), sysretq faults and `int n` arrives as #UD (probe).
 * Exceptions at CPL3 enter the ring-0 handlers on the TSS's RSP0 stack and
 * dump the registers as before; panic() and machine_exit() at CPL3 first
 * move to ring 0 (ring_to_ring0), as port I/O at CPL3 faults (IOPL=3 is
 * not honoured under PVM, so the runtime keeps IOPL 0 everywhere).
 * Every page of the identity map carries the U bit, SMEP and SMAP are
 * off: CPL3 here is a mode of execution, not a protection boundary.
 */
#ifndef HFTOS_RING_H
#define HFTOS_RING_H

#include <stdint.h>

#define RING_RFLAGS_USER 0x2 /* CPL3 runs with IF=0, IOPL=0 */

/* The U bit on the live page tables; SMEP and SMAP off. Called by _start
 * before the .bss clear: uses no .bss. */
void ring_init(void);

/* Run fn(arg) at CPL3 on the user stack and return its result, at ring 0
 * again. Not reentrant (one CPL3 call at a time). */
uint64_t ring_user_call(uint64_t (*fn)(uint64_t), uint64_t arg);

/* Called at CPL3, returns at ring 0 on the same stack (ring_entry.asm). */
void ring_enter_ring0(void);

/* 0 or 3: the current privilege level. */
static inline unsigned ring_cpl(void)
{
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs & 3u;
}

/* From CPL3: continue at ring 0 from here on (panic, machine_exit). At
 * ring 0: nothing. */
static inline void ring_to_ring0(void)
{
	if (ring_cpl() != 0)
		ring_enter_ring0();
}

#endif
