/*
 * paging.h - identity mappings of device memory beyond the boot page tables.
 */
#ifndef HFTOS_PAGING_H
#define HFTOS_PAGING_H

#include <stdint.h>

/* Identity map [base, base + size) as uncached 2 MiB pages in the live page
 * tables (CR3), for device memory above what the loader mapped ([0, 4 GiB),
 * boot/page_tables.inc). 0 when mapped (or already mapped the same way), -1
 * with the reason printed when it cannot be (an address beyond the CPU's
 * physical address width, a range that would overwrite another mapping, or
 * the table pool is used up). */
int paging_map_device(uint64_t base, uint64_t size);

#endif
