/*
 * pci.c - PCI enumeration and minimal resource assignment.
 *
 * Configuration mechanism #1 (PCI Local Bus spec 3.0 §3.2.2.3.2): write
 * enable | bus | device | function | register to 0xCF8, then access the dword
 * at 0xCFC. Good for the 256-byte legacy space, which is all a NIC driver
 * needs. The scan starts at bus 0 and follows PCI-to-PCI bridges to the
 * secondary bus the firmware gave them (PCI-to-PCI Bridge spec 1.2 §3.2):
 * a brute-force scan of all 256 buses is 8,192 config reads, 1.8 s of a
 * PVM boot (each port access is an exit of emulated ring 0) and ~16,000
 * port accesses under TCG; a machine with only bus 0 now takes 32.
 */
#include "drivers/pci.h"
#include "arch/x86_64/paging.h"
#include "arch/x86_64/cpu.h"
#include "runtime/kprintf.h"

#define PCI_CONFIG_ADDRESS   0xCF8
#define PCI_CONFIG_DATA      0xCFC
#define  PCI_CONFIG_ENABLE   0x80000000u
#define PCI_DEVICES          32
#define PCI_FUNCTIONS        8
#define PCI_BARS             6
#define PCI_HEADER_LAYOUT    0x7Fu /* header type without the multi-function bit */
#define  PCI_HEADER_BRIDGE   0x01u /* type 1: PCI-to-PCI bridge */
#define PCI_SECONDARY_BUS    0x19  /* u8 in a type 1 header */
#define PCI_MAX_DEPTH        8     /* bridges below bridges: bounds the recursion */
/* BAR window for pci_assign_mem_bar: inside the 3-4 GiB range that stage 2
 * maps uncached, above q35's MMCONFIG (0xB0000000) and below the IOAPIC. */
#define PCI_MMIO_WINDOW_BASE 0xE0000000u
#define PCI_MMIO_WINDOW_END  0xFEC00000u

static uint32_t pci_mmio_next = PCI_MMIO_WINDOW_BASE;

static uint32_t pci_config_address(struct pci_addr a, uint8_t off)
{
	return PCI_CONFIG_ENABLE | ((uint32_t)a.bus << 16) | ((uint32_t)a.dev << 11) |
	       ((uint32_t)a.fn << 8) | (off & 0xFCu);
}

uint32_t pci_read32(struct pci_addr a, uint8_t off)
{
	outl(PCI_CONFIG_ADDRESS, pci_config_address(a, off));
	return inl(PCI_CONFIG_DATA);
}

/* Narrow accesses use the matching byte lanes of the data port. */
uint8_t pci_read8(struct pci_addr a, uint8_t off)
{
	outl(PCI_CONFIG_ADDRESS, pci_config_address(a, off));
	return inb((uint16_t)(PCI_CONFIG_DATA + (off & 3)));
}

uint16_t pci_read16(struct pci_addr a, uint8_t off)
{
	outl(PCI_CONFIG_ADDRESS, pci_config_address(a, off));
	return inw((uint16_t)(PCI_CONFIG_DATA + (off & 2)));
}

void pci_write32(struct pci_addr a, uint8_t off, uint32_t v)
{
	outl(PCI_CONFIG_ADDRESS, pci_config_address(a, off));
	outl(PCI_CONFIG_DATA, v);
}

/* A true 16-bit write: writing the command register must not touch the
 * write-1-to-clear status register in the same dword. */
void pci_write16(struct pci_addr a, uint8_t off, uint16_t v)
{
	outl(PCI_CONFIG_ADDRESS, pci_config_address(a, off));
	outw((uint16_t)(PCI_CONFIG_DATA + (off & 2)), v);
}

static void pci_read_device(struct pci_addr a, struct pci_device *d)
{
	uint32_t id = pci_read32(a, PCI_VENDOR_ID);
	uint32_t cls = pci_read32(a, PCI_CLASS_REVISION);

	d->addr = a;
	d->vendor = (uint16_t)id;
	d->device = (uint16_t)(id >> 16);
	d->class_code = (uint8_t)(cls >> 24);
	d->subclass = (uint8_t)(cls >> 16);
	d->prog_if = (uint8_t)(cls >> 8);
	d->bar0 = pci_read32(a, PCI_BAR0);
}

static bool pci_scan_bus(uint8_t bus, unsigned depth, int *count,
			 bool (*visit)(const struct pci_device *, void *), void *arg);

/* Visit the functions of one device, and the buses behind the bridges
 * among them; returns false to stop the scan. */
static bool pci_scan_device(struct pci_addr a, unsigned depth, int *count,
			    bool (*visit)(const struct pci_device *, void *), void *arg)
{
	struct pci_device d;
	uint8_t nfn = 1;

	for (a.fn = 0; a.fn < nfn; a.fn++) {
		if (pci_read16(a, PCI_VENDOR_ID) == PCI_VENDOR_NONE)
			continue;
		uint8_t type = pci_read8(a, PCI_HEADER_TYPE);
		if (a.fn == 0 && (type & PCI_HEADER_MULTIFN))
			nfn = PCI_FUNCTIONS;
		pci_read_device(a, &d);
		(*count)++;
		if (!visit(&d, arg))
			return false;
		if ((type & PCI_HEADER_LAYOUT) == PCI_HEADER_BRIDGE) {
			uint8_t sec = pci_read8(a, PCI_SECONDARY_BUS);
			/* 0 or not above this bus: not configured by the firmware */
			if (sec > a.bus && depth < PCI_MAX_DEPTH &&
			    !pci_scan_bus(sec, depth + 1, count, visit, arg))
				return false;
		}
	}
	return true;
}

static bool pci_scan_bus(uint8_t bus, unsigned depth, int *count,
			 bool (*visit)(const struct pci_device *, void *), void *arg)
{
	for (uint8_t dev = 0; dev < PCI_DEVICES; dev++) {
		struct pci_addr a = { bus, dev, 0 };
		if (!pci_scan_device(a, depth, count, visit, arg))
			return false;
	}
	return true;
}

int pci_scan(bool (*visit)(const struct pci_device *d, void *arg), void *arg)
{
	int count = 0;

	pci_scan_bus(0, 0, &count, visit, arg);
	return count;
}

static bool pci_print_one(const struct pci_device *d, void *arg)
{
	(void)arg;
	kprintf("  %02x:%02x.%x  %04x:%04x  class %02x:%02x:%02x  BAR0 %08x%s\n", d->addr.bus,
		d->addr.dev, d->addr.fn, d->vendor, d->device, d->class_code, d->subclass,
		d->prog_if, d->bar0, (d->bar0 & PCI_BAR_IO) ? " (io)" : "");
	return true;
}

void pci_list(void)
{
	int n = pci_scan(pci_print_one, 0);

	kprintf("pci: %d functions\n", n);
}

struct pci_match {
	uint16_t vendor, device;
	struct pci_device *out;
	bool found;
};

static bool pci_match_one(const struct pci_device *d, void *arg)
{
	struct pci_match *m = arg;

	if (d->vendor != m->vendor || d->device != m->device)
		return true;
	*m->out = *d;
	m->found = true;
	return false;
}

bool pci_find(uint16_t vendor, uint16_t device, struct pci_device *out)
{
	struct pci_match m = { vendor, device, out, false };

	pci_scan(pci_match_one, &m);
	return m.found;
}

/* Size of a memory BAR from its low dword: write all ones, read back the
 * mask (PCI 3.0 §6.2.5.1), with memory decoding off meanwhile so that the
 * probe address never decodes. Sizes of 4 GiB and more are not supported
 * (0). */
static uint32_t pci_bar_size(struct pci_addr a, uint8_t off)
{
	uint16_t cmd = pci_read16(a, PCI_COMMAND);
	uint32_t saved = pci_read32(a, off);

	pci_write16(a, PCI_COMMAND, cmd & (uint16_t)~PCI_COMMAND_MEMORY);
	pci_write32(a, off, 0xFFFFFFFFu);
	uint32_t mask = pci_read32(a, off) & PCI_BAR_MEM_MASK;
	pci_write32(a, off, saved);
	pci_write16(a, PCI_COMMAND, cmd);
	return mask ? ~mask + 1 : 0;
}

/* Size of a 64-bit memory BAR (both dwords at off and off + 4), probed as
 * pci_bar_size does. */
static uint64_t pci_bar_size64(struct pci_addr a, uint8_t off)
{
	uint16_t cmd = pci_read16(a, PCI_COMMAND);
	uint32_t lo = pci_read32(a, off), hi = pci_read32(a, (uint8_t)(off + 4));

	pci_write16(a, PCI_COMMAND, cmd & (uint16_t)~PCI_COMMAND_MEMORY);
	pci_write32(a, off, 0xFFFFFFFFu);
	pci_write32(a, (uint8_t)(off + 4), 0xFFFFFFFFu);
	uint64_t mask = ((uint64_t)pci_read32(a, (uint8_t)(off + 4)) << 32) |
			(pci_read32(a, off) & PCI_BAR_MEM_MASK);
	pci_write32(a, off, lo);
	pci_write32(a, (uint8_t)(off + 4), hi);
	pci_write16(a, PCI_COMMAND, cmd);
	return mask ? ~mask + 1 : 0;
}

uint64_t pci_assign_mem_bar(struct pci_addr a, unsigned bar)
{
	if (bar >= PCI_BARS)
		return 0;
	uint8_t off = (uint8_t)(PCI_BAR0 + 4 * bar);
	uint32_t v = pci_read32(a, off);
	bool is64 = (v & PCI_BAR_MEM_TYPE) == PCI_BAR_MEM_64;

	if ((v & PCI_BAR_IO) || (is64 && bar == PCI_BARS - 1))
		return 0;
	uint64_t base = v & PCI_BAR_MEM_MASK;
	if (is64)
		base |= (uint64_t)pci_read32(a, (uint8_t)(off + 4)) << 32;
	if (base == 0) {
		uint32_t size = pci_bar_size(a, off);
		uint32_t at = (pci_mmio_next + size - 1) & ~(size - 1);
		if (size == 0 || at < pci_mmio_next || at + size > PCI_MMIO_WINDOW_END)
			return 0;
		pci_write32(a, off, at | (v & ~PCI_BAR_MEM_MASK));
		if (is64)
			pci_write32(a, (uint8_t)(off + 4), 0);
		pci_mmio_next = at + size;
		base = at;
	}
	pci_write16(a, PCI_COMMAND, pci_read16(a, PCI_COMMAND) | PCI_COMMAND_MEMORY);
	return base;
}

volatile uint8_t *pci_map_mem_bar(struct pci_addr a, unsigned bar, const char *who)
{
	uint64_t base = pci_assign_mem_bar(a, bar);

	if (base == 0) {
		kprintf("%s: %02x:%02x.%x BAR%u: not a memory BAR, or no room to assign it\n", who,
			a.bus, a.dev, a.fn, bar);
		return NULL;
	}
	if (base >= (1ull << 32)) {
		/* Firmware put it above the boot tables' 4 GiB (OVMF on q35 does
		 * with 64-bit BARs): map it. */
		uint64_t size = pci_bar_size64(a, (uint8_t)(PCI_BAR0 + 4 * bar));
		if (paging_map_device(base, size) < 0) {
			kprintf("%s: %02x:%02x.%x BAR%u at 0x%lx (%lu bytes) could not be mapped\n",
				who, a.bus, a.dev, a.fn, bar, base, size);
			return NULL;
		}
		kprintf("%s: BAR%u at 0x%lx above 4 GiB, mapped uncached\n", who, bar, base);
	}
	return (volatile uint8_t *)(uintptr_t)base;
}

/* 48 is the most capabilities (4 bytes each, aligned) the 192 bytes after
 * the header can hold: more steps than that means the list loops. */
#define PCI_CAP_MAX 48

uint8_t pci_find_cap(struct pci_addr a, uint8_t id, uint8_t from)
{
	if (!(pci_read16(a, PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return 0;
	uint8_t off = from ? pci_read8(a, (uint8_t)(from + PCI_CAP_LIST_NEXT))
			   : pci_read8(a, PCI_CAP_PTR);
	for (int i = 0; i < PCI_CAP_MAX && off >= 0x40; i++) {
		off &= 0xFC; /* the low two bits are reserved (§6.7) */
		if (pci_read8(a, (uint8_t)(off + PCI_CAP_LIST_ID)) == id)
			return off;
		off = pci_read8(a, (uint8_t)(off + PCI_CAP_LIST_NEXT));
	}
	return 0;
}

void pci_enable_bus_master(struct pci_addr a)
{
	uint16_t cmd = pci_read16(a, PCI_COMMAND);

	pci_write16(a, PCI_COMMAND, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}
