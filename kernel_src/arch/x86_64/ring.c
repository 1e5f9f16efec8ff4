/*
 * ring.c - set-up for CPL3 execution (see ring.h): user pages, SMEP and
 * SMAP off. Runs once at ring 0 before .bss is cleared.
 */
#include "arch/x86_64/ring.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/paging.h"

#define CR4_SMEP (1ull << 20)
#define CR4_SMAP (1ull << 21)

void ring_init(void)
{
	uint64_t cr4 = read_cr4();

	if (cr4 & (CR4_SMEP | CR4_SMAP))
		write_cr4(cr4 & ~(CR4_SMEP | CR4_SMAP));
	paging_allow_user();
}
