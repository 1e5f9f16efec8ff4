/*
 * host_pages.h - the trading core's book arrays on a Linux host, on 2 MiB
 * pages as HFT-OS maps all its memory (kernel_src/boot/page_tables.inc).
 * Shared by the baselines (bl_common.c) and benchmarks/c/bench_engine.c.
 * Needs _GNU_SOURCE (or the compiler's gnu mode) for MADV_HUGEPAGE.
 */
#ifndef HOST_PAGES_H
#define HOST_PAGES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define HOST_HUGE_PAGE (2ul << 20)

/* n zeroed elements of `size` bytes, touched now so that no page fault
 * lands on a timed or hot path, or NULL. With `huge` the mapping is aligned
 * to 2 MiB by hand (a 6.1 kernel, the guests', does not align anonymous
 * mappings for THP) and asked for 2 MiB pages (madvise(MADV_HUGEPAGE));
 * where THP is off it stays on 4 KiB pages and still works. With 4 KiB
 * pages a lookup in the book's index misses the TLB as well as the cache:
 * bench_engine measured RITCH x1.10 slower. */
static inline void *host_book_array(size_t n, size_t size, bool huge)
{
	size_t len = (n * size + HOST_HUGE_PAGE - 1) & ~(HOST_HUGE_PAGE - 1);
	uint8_t *p = mmap(NULL, len + HOST_HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (huge) {
		p = (uint8_t *)(((uintptr_t)p + HOST_HUGE_PAGE - 1) & ~(uintptr_t)(HOST_HUGE_PAGE - 1));
		madvise(p, len, MADV_HUGEPAGE);
	}
	memset(p, 0, len);
	return p;
}

/* KiB of this process's anonymous memory on huge pages (smaps_rollup's
 * AnonHugePages), -1 when the kernel does not say. */
static inline long host_huge_kib(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	long kib = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

#endif
