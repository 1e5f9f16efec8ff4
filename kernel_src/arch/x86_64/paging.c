/*
 * paging.c - identity mappings of device memory above 4 GiB.
 *
 * The boot loaders (stage 2, the PVH entry, the UEFI loader) identity map
 * [0, 4 GiB) with 2 MiB pages (boot/page_tables.inc), which holds every
 * device SeaBIOS or qboot places. OVMF on q35 puts 64-bit BARs far higher
 * (virtio-net's at 0xe000000000 with 256 MiB of RAM), so a driver asks for
 * its BAR here: the missing page-table levels come from a static pool,
 * leaves are 2 MiB pages with PCD|PWT (uncached at the reset PAT, as the
 * boot tables' top GiB), user-accessible like the rest (ring.h: the
 * trading loop runs at CPL3 and rings the NIC's doorbells from there).
 * Only called at init, never on the hot path.
 * Intel SDM vol. 3A 4.5 (4-level paging).
 */
#include "arch/x86_64/paging.h"
#include "arch/x86_64/cpu.h"
#include "runtime/kprintf.h"
#include <stdbool.h>
#include <stddef.h>

#define PTE_PRESENT   (1ull << 0)
#define PTE_WRITABLE  (1ull << 1)
#define PTE_USER      (1ull << 2)
#define PTE_PWT       (1ull << 3)
#define PTE_PCD       (1ull << 4)
#define PTE_PS        (1ull << 7)  /* in a PDE: a 2 MiB page */
#define PTE_ADDR_MASK 0x000FFFFFFFFFF000ull
#define PTES_PER_TABLE 512
#define LARGE_PAGE    (2ull << 20)
#define CPUID_EXT_ADDR_SIZES 0x80000008u /* EAX[7:0]: physical address bits */

/* Tables for new levels: one PDPT and one page directory per GiB mapped,
 * so 8 pages cover a few BARs in different GiB. */
#define PAGING_POOL_PAGES 8

static uint64_t pool[PAGING_POOL_PAGES][PTES_PER_TABLE] __attribute__((aligned(4096)));
static unsigned pool_used;

static inline void invlpg(uint64_t va)
{
	__asm__ volatile("invlpg (%0)" : : "r"(va) : "memory");
}

/* The table entry e points to, made (from the pool, zeroed by .bss) if it
 * is not present; NULL if it maps a large page or the pool is used up. */
static uint64_t *next_level(uint64_t *e)
{
	if (!(*e & PTE_PRESENT)) {
		if (pool_used == PAGING_POOL_PAGES) {
			kprintf("paging: table pool (%u pages) used up\n", PAGING_POOL_PAGES);
			return NULL;
		}
		*e = (uint64_t)(uintptr_t)pool[pool_used++] | PTE_PRESENT | PTE_WRITABLE | PTE_USER;
	} else if (*e & PTE_PS) {
		kprintf("paging: a large page is in the way\n");
		return NULL;
	}
	return (uint64_t *)(uintptr_t)(*e & PTE_ADDR_MASK);
}

int paging_map_device(uint64_t base, uint64_t size)
{
	unsigned phys_bits = cpuid(CPUID_EXT_ADDR_SIZES, 0).eax & 0xFF;
	uint64_t end = base + size;

	if (size == 0 || end < base || (phys_bits < 64 && end > (1ull << phys_bits))) {
		kprintf("paging: [0x%lx, 0x%lx) is beyond the CPU's %u physical address bits\n",
			base, end, phys_bits);
		return -1;
	}
	uint64_t *pml4 = (uint64_t *)(uintptr_t)(read_cr3() & PTE_ADDR_MASK);
	for (uint64_t va = base & ~(LARGE_PAGE - 1); va < end; va += LARGE_PAGE) {
		uint64_t *pdpt = next_level(&pml4[(va >> 39) & (PTES_PER_TABLE - 1)]);
		uint64_t *pd = pdpt ? next_level(&pdpt[(va >> 30) & (PTES_PER_TABLE - 1)]) : NULL;
		if (!pd)
			return -1;
		uint64_t *pde = &pd[(va >> 21) & (PTES_PER_TABLE - 1)];
		uint64_t want = va | PTE_PRESENT | PTE_WRITABLE | PTE_USER | PTE_PS | PTE_PCD | PTE_PWT;
		if (*pde & PTE_PRESENT) {
			if (*pde != want) {
				kprintf("paging: 0x%lx is mapped otherwise already\n", va);
				return -1;
			}
			continue;
		}
		*pde = want;
		invlpg(va);
	}
	return 0;
}

/* Set U on every present entry of one table and, below it, of every
 * table it points to (level 4: PML4 ... 1: page table); large pages end
 * the descent. The pool is .bss, cleared later, and empty now. */
static void allow_user(uint64_t *table, int level)
{
	for (unsigned i = 0; i < PTES_PER_TABLE; i++) {
		uint64_t e = table[i];
		if (!(e & PTE_PRESENT))
			continue;
		if (!(e & PTE_USER))
			table[i] = e | PTE_USER;
		if (level > 1 && !(level < 4 && (e & PTE_PS)))
			allow_user((uint64_t *)(uintptr_t)(e & PTE_ADDR_MASK), level - 1);
	}
}

void paging_allow_user(void)
{
	uint64_t cr3 = read_cr3();

	allow_user((uint64_t *)(uintptr_t)(cr3 & PTE_ADDR_MASK), 4);
	write_cr3(cr3); /* flush the TLB: its entries lack U */
}
