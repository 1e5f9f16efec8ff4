/*
 * panic.c - the one way out for a broken invariant.
 */
#include "runtime/panic.h"
#include "runtime/kprintf.h"
#include "runtime/exit_codes.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/ring.h"

void runtime_returned(void);

void panic(const char *fmt, ...)
{
	va_list ap;

	ring_to_ring0(); /* from the CPL3 loop: cli and the console need ring 0 */
	__asm__ volatile("cli");
	kprintf("\npanic: ");
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
	kprintf("\n  called from %p\n", __builtin_return_address(0));
	machine_exit(HFTOS_EXIT_PANIC);
}

/* Called by arch/x86_64/entry.asm if kmain() ever returns. */
void runtime_returned(void)
{
	panic("kmain returned");
}
