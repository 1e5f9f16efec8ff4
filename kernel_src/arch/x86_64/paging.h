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

/* Set the user bit on every present entry of the live page tables (the
 * loader's identity map), so that CPL3 code reaches all of memory and the
 * devices (arch/x86_64/ring.h). Reads and writes only the tables; no .bss.
 * Costs ~3,000 loop turns: short even at ~2 us per instruction (ring 0
 * under KVM's PVM flavour). */
void paging_allow_user(void);

#endif
