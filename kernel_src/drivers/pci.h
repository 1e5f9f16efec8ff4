/*
 * pci.h - PCI configuration space through the legacy 0xCF8/0xCFC ports.
 */
#ifndef HFTOS_PCI_H
#define HFTOS_PCI_H

#include <stdbool.h>
#include <stdint.h>

#define PCI_VENDOR_ID        0x00 /* u16 */
#define PCI_DEVICE_ID        0x02 /* u16 */
#define PCI_COMMAND          0x04 /* u16 */
#define  PCI_COMMAND_IO      0x0001
#define  PCI_COMMAND_MEMORY  0x0002
#define  PCI_COMMAND_MASTER  0x0004 /* bus mastering: needed for NIC DMA */
#define  PCI_COMMAND_INTX_DISABLE 0x0400 /* no INTx assertion (polling drivers) */
#define PCI_STATUS           0x06 /* u16 */
#define  PCI_STATUS_CAP_LIST 0x0010 /* PCI_CAP_PTR is valid */
#define PCI_CLASS_REVISION   0x08 /* u32: class, subclass, prog-if, revision */
#define PCI_HEADER_TYPE      0x0E /* u8 */
#define  PCI_HEADER_MULTIFN  0x80
#define PCI_BAR0             0x10 /* six u32 BARs follow */
#define PCI_CAP_PTR          0x34 /* u8: first capability (PCI 3.0 §6.7) */
#define PCI_CAP_LIST_ID      0    /* u8 in each capability: its id */
#define PCI_CAP_LIST_NEXT    1    /* u8: the next one, 0 at the end */
#define  PCI_BAR_IO          0x1
#define  PCI_BAR_MEM_TYPE    0x6  /* 0 = 32-bit, 4 = 64-bit */
#define  PCI_BAR_MEM_64      0x4
#define  PCI_BAR_MEM_MASK    (~0xFu)
#define PCI_VENDOR_NONE      0xFFFF

struct pci_addr {
	uint8_t bus, dev, fn;
};

struct pci_device {
	struct pci_addr addr;
	uint16_t vendor, device;
	uint8_t class_code, subclass, prog_if;
	uint32_t bar0;
};

uint32_t pci_read32(struct pci_addr a, uint8_t off);
uint8_t pci_read8(struct pci_addr a, uint8_t off);
uint16_t pci_read16(struct pci_addr a, uint8_t off);
void pci_write32(struct pci_addr a, uint8_t off, uint32_t v);
void pci_write16(struct pci_addr a, uint8_t off, uint16_t v);

/* Visit every function on buses 0-255; stop early when visit returns
 * false. Returns the number of functions visited. */
int pci_scan(bool (*visit)(const struct pci_device *d, void *arg), void *arg);

/* Print one line per function: bus:dev.fn vendor:device class BAR0. */
void pci_list(void);

/* Find the first function with this vendor and device id; false if none. */
bool pci_find(uint16_t vendor, uint16_t device, struct pci_device *out);

/* Give memory BAR bar (0-5) an address if firmware left it at 0 (qboot and
 * other minimal firmware do not assign BARs; SeaBIOS does). Addresses come
 * from a bump allocator in the PCI hole, aligned to the BAR's size. Sets
 * PCI_COMMAND_MEMORY. Returns the BAR's address, or 0 if it is not a memory
 * BAR or the window is exhausted. */
uint64_t pci_assign_mem_bar(struct pci_addr a, unsigned bar);

/* The memory BAR bar of function a as a pointer: assigned first if
 * firmware left it at 0 (pci_assign_mem_bar). A BAR at or above 4 GiB,
 * beyond the boot loaders' identity map (OVMF puts 64-bit BARs there), is
 * sized and mapped uncached (arch/x86_64/paging.c). NULL, with a line naming
 * who, the function and the BAR, when it is not a memory BAR, cannot be
 * assigned, or cannot be mapped. */
volatile uint8_t *pci_map_mem_bar(struct pci_addr a, unsigned bar, const char *who);

/* Walk the capability list (PCI 3.0 §6.7): the offset of the first
 * capability with this id after the one at from (from = 0: from the head),
 * or 0 when there is none. Bounded: a looping list ends the walk. */
uint8_t pci_find_cap(struct pci_addr a, uint8_t id, uint8_t from);

/* Set bus mastering and memory decoding in the command register. */
void pci_enable_bus_master(struct pci_addr a);

#endif
