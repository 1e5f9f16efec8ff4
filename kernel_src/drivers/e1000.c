/*
 * e1000.c - polling driver for the Intel 82540EM (QEMU's -device e1000).
 *
 * Bring-up follows the 8254x Software Developer's Manual, chapter 14: reset
 * (14.2/14.3), link (14.3), receive (14.4) and transmit (14.5)
 * initialisation, one function per step. Interrupts stay masked; the
 * runtime polls descriptor DD bits. Rings and buffers are static arrays in
 * .bss, which stage 2 identity maps, so virtual = physical = DMA address.
 *
 * QEMU specifics: every RCTL write makes QEMU's e1000 hold off receive for
 * about a second (frames wait in QEMU's queue meanwhile), so RCTL is written
 * exactly once, last. QEMU stops receiving when RDH == RDT, hence the "one
 * descriptor kept back" rule in nic_rx_release. While the ring is full QEMU
 * queues frames, and an RDT write delivers that backlog without checking
 * for room again: what does not fit is dropped and counted in MPC and RNBC.
 * A deep ring (NIC_RX_RING) makes that need a long stall of the guest.
 */
#include "drivers/e1000.h"
#include "drivers/nic.h"
#include "drivers/e1000_regs.h"
#include "drivers/pci.h"
#include "drivers/mmio.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/tsc.h"
#include "runtime/kprintf.h"
#include <stdbool.h>
#include <stddef.h>

_Static_assert((NIC_RX_RING * sizeof(struct e1000_rx_desc)) % 128 == 0, "RDLEN: 128-byte multiple");
_Static_assert(E1000_TX_CMD == (TXD_CMD_EOP | TXD_CMD_IFCS | TXD_CMD_RS), "e1000.h: TX command");
_Static_assert((NIC_TX_RING * sizeof(e1000_tx_ring[0])) % 128 == 0, "TDLEN: 128-byte multiple");

static struct e1000_rx_desc rx_ring[NIC_RX_RING] __attribute__((aligned(128)));
struct e1000_tx_desc e1000_tx_ring[NIC_TX_RING] __attribute__((aligned(128)));
struct e1000 e1000_nic;
static const struct nic_ops e1000_ops;

static inline struct e1000 *E(struct nic *n)
{
	return (struct e1000 *)n;
}

/* --- bring-up, one step per function -------------------------------------- */

/* PCI side: the memory BAR (assigned here if firmware did not), memory
 * decoding and bus mastering for descriptor and buffer DMA. */
static int e1000_pci_setup(struct e1000 *n, const struct pci_device *d)
{
	n->pci = *d;
	if (!(n->mmio = pci_map_mem_bar(n->pci.addr, 0, "e1000")))
		return -1;
	n->tdt = n->mmio + TDT;
	pci_enable_bus_master(n->pci.addr);
	return 0;
}

/* 14.2/14.3: mask interrupts, global reset, mask again (reset restores
 * defaults). */
static int e1000_reset(struct e1000 *n)
{
	reg_write32(n->mmio, IMC, IMC_ALL);
	reg_set_flags(n->mmio, CTRL, CTRL_RST);
	if (reg_wait(n->mmio, CTRL, CTRL_RST, 0, NIC_RESET_TIMEOUT_US) < 0) {
		kprintf("e1000: CTRL.RST did not clear\n");
		return -1;
	}
	reg_write32(n->mmio, IMC, IMC_ALL);
	return 0;
}

/* 14.3: auto-speed detection, set link up, clear the reset and
 * diagnostic bits. No link within the timeout is reported, not fatal:
 * TX still queues and the caller decides. */
static void e1000_init_link(struct e1000 *n)
{
	reg_clear_flags(n->mmio, CTRL, CTRL_LRST | CTRL_PHY_RST | CTRL_ILOS | CTRL_VME);
	reg_set_flags(n->mmio, CTRL, CTRL_ASDE | CTRL_SLU);
	if (reg_wait(n->mmio, STATUS, STATUS_LU, STATUS_LU, NIC_LINK_TIMEOUT_US) < 0)
		kprintf("e1000: warning: no link after %u ms\n", NIC_LINK_TIMEOUT_US / 1000);
}

/* The EEPROM's station address, which the 82540EM loads into RAL0/RAH0 at
 * reset (13.4.50). */
static int e1000_read_mac(struct e1000 *n)
{
	uint32_t lo = reg_read32(n->mmio, RAL0), hi = reg_read32(n->mmio, RAH0);

	if (!(hi & RAH_AV)) {
		kprintf("e1000: RAH0.AV clear, no station address\n");
		return -1;
	}
	for (int i = 0; i < 4; i++)
		n->mac[i] = (uint8_t)(lo >> (8 * i));
	n->mac[4] = (uint8_t)hi;
	n->mac[5] = (uint8_t)(hi >> 8);
	return 0;
}

/* 14.4: zero the MTA, point the NIC at the ring, give it every descriptor
 * but one, then enable the receiver with the single RCTL write. The MTA
 * lets PTP's multicast in (the PTP slave, runtime/ptp_slave.h): with
 * RCTL.MO = 00 the hash is address bits 47:36 (13.4.49),
 * 01-1B-19-00-00-00 (Ethernet) 0x000: MTA[0] bit 0, 01-00-5E-00-01-81
 * (224.0.1.129) 0x810: MTA[64] bit 16. */
static void e1000_init_rx(struct e1000 *n)
{
	for (uint32_t i = 0; i < MTA_ENTRIES; i++)
		reg_write32(n->mmio, MTA + 4 * i, 0);
	reg_write32(n->mmio, MTA + 4 * 0, 1u << 0);
	reg_write32(n->mmio, MTA + 4 * 64, 1u << 16);
	for (uint32_t i = 0; i < NIC_RX_RING; i++)
		rx_ring[i] = (struct e1000_rx_desc){ .buffer_addr = dma_addr(nic_rx_buf[i]) };
	reg_write32(n->mmio, RDBAL, (uint32_t)dma_addr(rx_ring));
	reg_write32(n->mmio, RDBAH, (uint32_t)(dma_addr(rx_ring) >> 32));
	reg_write32(n->mmio, RDLEN, sizeof(rx_ring));
	reg_write32(n->mmio, RDH, 0);
	/* Intentionally one short of the ring: RDT == RDH would mean "no
	 * descriptors" and QEMU would stop receiving. */
	reg_write32(n->mmio, RDT, NIC_RX_RING - 1);
	n->rx_next = 0;
	n->rx_pending = 0;
	reg_write32(n->mmio, RCTL, RCTL_EN | RCTL_BAM | RCTL_BSIZE_2048 | RCTL_SECRC);
}

/* 14.5: ring (each descriptor's buffer and command for good, e1000.h),
 * head = tail = 0 (empty), then TCTL and TIPG. */
static void e1000_init_tx(struct e1000 *n)
{
	for (uint32_t i = 0; i < NIC_TX_RING; i++)
		e1000_tx_ring[i] = (struct e1000_tx_desc){ .buffer_addr = dma_addr(nic_tx_buf[i]),
							   .cmd = E1000_TX_CMD };
	reg_write32(n->mmio, TDBAL, (uint32_t)dma_addr(e1000_tx_ring));
	reg_write32(n->mmio, TDBAH, (uint32_t)(dma_addr(e1000_tx_ring) >> 32));
	reg_write32(n->mmio, TDLEN, sizeof(e1000_tx_ring));
	reg_write32(n->mmio, TDH, 0);
	reg_write32(n->mmio, TDT, 0);
	n->tx.tail = 0;
	n->tx.clean = 0;
	e1000_tx_next(n);
	reg_write32(n->mmio, TCTL, TCTL_EN | TCTL_PSP | (TCTL_CT_DEFAULT << TCTL_CT_SHIFT) |
				(TCTL_COLD_FULL_DUPLEX << TCTL_COLD_SHIFT));
	reg_write32(n->mmio, TIPG, TIPG_IPGT_COPPER | (TIPG_IPGR1 << TIPG_IPGR1_SHIFT) |
				     (TIPG_IPGR2 << TIPG_IPGR2_SHIFT));
}

static struct nic *e1000_open(const struct pci_device *d)
{
	struct e1000 *n = &e1000_nic;

	n->nic.ops = &e1000_ops;
	n->nic.name = "e1000";
	n->nic.kind = NIC_KIND_E1000;
	if (e1000_pci_setup(n, d) < 0 || e1000_reset(n) < 0)
		return NULL;
	e1000_init_link(n);
	if (e1000_read_mac(n) < 0)
		return NULL;
	e1000_init_tx(n);
	e1000_init_rx(n);
	kprintf("e1000: %02x:%02x.%x mmio 0x%lx mac %02x:%02x:%02x:%02x:%02x:%02x link %s\n",
		n->pci.addr.bus, n->pci.addr.dev, n->pci.addr.fn, (uint64_t)(uintptr_t)n->mmio,
		n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5],
		(reg_read32(n->mmio, STATUS) & STATUS_LU) ? "up" : "down");
	return &n->nic;
}

static const uint8_t *e1000_mac(const struct nic *nn)
{
	return ((const struct e1000 *)nn)->mac;
}

/* --- hot path: descriptor memory only, doorbells as documented ---------- */

static const uint8_t *e1000_rx_poll(struct nic *nn, uint16_t *len)
{
	struct e1000 *n = E(nn);

	/* The NIC can fill at most NIC_RX_RING - 1 descriptors between
	 * releases; past that the next one is still an unreleased frame. */
	if (n->rx_pending >= NIC_RX_RING - 1)
		return NULL;
	volatile struct e1000_rx_desc *d = &rx_ring[n->rx_next];
	if (!(d->status & RXD_STAT_DD))
		return NULL;
	compiler_barrier(); /* read length and data only after DD (x86: loads in order) */
	*len = d->length;
	const uint8_t *frame = nic_rx_buf[n->rx_next];
	n->rx_next = (uint16_t)((n->rx_next + 1) % NIC_RX_RING);
	n->rx_pending++;
	return frame;
}

static void e1000_rx_release(struct nic *nn)
{
	struct e1000 *n = E(nn);

	/* With nothing pending the write repeats RDT: QEMU flushes the frames
	 * it queued on any RDT write (trade_poll's idle kick). */
	uint16_t i = (uint16_t)((n->rx_next + NIC_RX_RING - n->rx_pending) % NIC_RX_RING);
	for (; n->rx_pending > 0; n->rx_pending--, i = (uint16_t)((i + 1) % NIC_RX_RING))
		rx_ring[i].status = 0;
	/* RDT = last released descriptor, one behind rx_next: see e1000_init_rx. */
	reg_write32(n->mmio, RDT, (uint32_t)((n->rx_next + NIC_RX_RING - 1) % NIC_RX_RING));
}

/* Retire descriptors the NIC has finished (DD set by TXD_CMD_RS), clearing
 * their status for the next turn (e1000.h: tx_commit does not). */
static void e1000_tx_reclaim(struct e1000 *n)
{
	while (n->tx.clean != n->tx.tail) {
		volatile struct e1000_tx_desc *d = &e1000_tx_ring[n->tx.clean];
		if (!(d->status & TXD_STAT_DD))
			break;
		d->status = 0;
		n->tx.clean = (uint16_t)((n->tx.clean + 1) % NIC_TX_RING);
	}
}

bool e1000_tx_room(struct e1000 *n)
{
	e1000_tx_reclaim(n);
	e1000_tx_next(n);
	return !n->tx.full;
}

static uint8_t *e1000_tx_buffer(struct nic *nn, uint16_t *slot)
{
	return e1000_tx_buffer_inline(E(nn), slot);
}

static uint8_t *e1000_tx_slot(struct nic *n, uint16_t i)
{
	(void)n;
	return i < NIC_TX_RING ? nic_tx_buf[i] : NULL;
}

static uint64_t e1000_tx_commit(struct nic *nn, uint16_t len)
{
	uint64_t tsc = e1000_tx_commit_at(E(nn), E(nn)->tx.tail, len);

	e1000_tx_next(E(nn));
	return tsc;
}

static int e1000_tx_flush(struct nic *nn, uint32_t timeout_us)
{
	struct e1000 *n = E(nn);
	uint64_t deadline = tsc_deadline(timeout_us);

	for (e1000_tx_reclaim(n); n->tx.clean != n->tx.tail; e1000_tx_reclaim(n)) {
		if (tsc_expired(deadline))
			return -1;
		cpu_pause();
	}
	return 0;
}

/* 13.7: MPC and RNBC count frames the NIC could not store because the ring
 * had no free descriptor (RDH == RDT). The 8254x clears them on read (QEMU
 * does not), so they are read once, at the end of a run. */
static void e1000_read_stats(struct nic *nn, struct nic_stats *s)
{
	struct e1000 *n = E(nn);

	s->rx_missed = reg_read32(n->mmio, MPC);
	s->rx_no_buffer = reg_read32(n->mmio, RNBC);
	s->rx_oversize = reg_read32(n->mmio, ROC);
}

static const struct nic_ops e1000_ops = {
	.mac = e1000_mac,
	.rx_poll = e1000_rx_poll,
	.rx_release = e1000_rx_release,
	.tx_buffer = e1000_tx_buffer,
	.tx_slot = e1000_tx_slot,
	.tx_commit = e1000_tx_commit,
	.tx_flush = e1000_tx_flush,
	.read_stats = e1000_read_stats,
};

static const uint16_t e1000_devices[] = { E1000_DEV_82540EM, 0 };

const struct nic_driver e1000_driver = {
	.name = "e1000 (82540EM)",
	.vendor = E1000_VENDOR_INTEL,
	.devices = e1000_devices,
	.open = e1000_open,
};
