/*
 * machine.c - ending a run: QEMU's isa-debug-exit, else halt.
 */
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/ring.h"
#include "runtime/exit_codes.h"

void machine_exit(uint8_t code)
{
	ring_to_ring0(); /* port I/O faults at CPL3 */
	outb(HFTOS_DEBUG_EXIT_PORT, code);
	cpu_halt_forever();
}
