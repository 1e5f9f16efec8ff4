/*
 * igb.c - polling driver for the Intel 82576 (QEMU's -device igb), with
 * IEEE 1588 hardware time stamps of PTP event frames.
 *
 * Bring-up follows the 82576 datasheet, 4.5 (initialization): reset
 * (4.5.1/4.3.1), link (4.5.7), transmit (4.5.10) and receive (4.5.9), one
 * function per step; one RX and one TX queue (queue 0) with advanced
 * descriptors (7.1.5, 7.2.2), interrupts masked, the runtime polls DD in the
 * write-back format. Rings and buffers are static arrays in .bss, which
 * stage 2 identity maps, so virtual = physical = DMA address.
 *
 * Differences from e1000.c, and why:
 * - The NIC writes descriptors back over the read format (7.1.5), so a
 *   released RX descriptor gets its buffer address again, and a retired TX
 *   descriptor too (igb_tx_reclaim), so that a send writes only its
 *   command and length (igb.h).
 * - Frames longer than one 2 KiB buffer: RCTL.LPE lets them in, spread over
 *   several descriptors, and this driver drops them and counts them (added
 *   to ROC in read_stats). QEMU's model drops a too-long frame without
 *   counting it in ROC when LPE is off (it counts ROC only in VMDq mode), so
 *   counting them here is the only way to see them.
 * - QEMU's igb (hw/net/igb_core.c) does not hold receive after an RCTL write
 *   (e1000 does, for ~1 s), but a device reset takes the link down and only
 *   an auto-negotiation restart through the PHY brings it back, after 500 ms
 *   of virtual time. It never counts MPC or RNBC: frames that find the ring
 *   full stay queued in QEMU (or the tap) as with e1000, and those that do
 *   not fit when the backlog is delivered are dropped without a count.
 * The 1588 part is at the end of the file.
 */
#include "core/platform.h"
#include "drivers/igb.h"
#include "drivers/nic.h"
#include "drivers/igb_regs.h"
#include "drivers/pci.h"
#include "drivers/mmio.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/tsc.h"
#include "runtime/kprintf.h"
#include <stdbool.h>
#include <stddef.h>

#define IGB_QUEUE_TIMEOUT_US 10000   /* RXDCTL/TXDCTL.ENABLE read back */
#define IGB_MDIC_TIMEOUT_US  10000   /* one PHY register access */
#define IGB_RLPML_MAX        0x3FFFu /* RLPML is 14 bits: let every long frame in, to count it */

_Static_assert((NIC_RX_RING * sizeof(union igb_rx_desc)) % 128 == 0, "RDLEN: 128-byte multiple");
_Static_assert((NIC_TX_RING * sizeof(union igb_tx_desc)) % 128 == 0, "TDLEN: 128-byte multiple");
_Static_assert(IGB_TX_CMD == (TXD_DTYP_DATA | TXD_DCMD_DEXT | TXD_DCMD_EOP | TXD_DCMD_IFCS |
			       TXD_DCMD_RS) && IGB_TX_PAYLEN_SHIFT == TXD_PAYLEN_SHIFT, "igb.h: TX command");
_Static_assert(NIC_BUF_SIZE % SRRCTL_BSIZEPACKET_UNIT == 0, "SRRCTL.BSIZEPACKET is in KiB");

static union igb_rx_desc rx_ring[NIC_RX_RING] __attribute__((aligned(128)));
union igb_tx_desc igb_tx_ring[NIC_TX_RING] __attribute__((aligned(128)));
struct igb igb_nic;
static const struct nic_ops igb_ops;

static inline struct igb *I(struct nic *n)
{
	return (struct igb *)n;
}

/* --- bring-up, one step per function -------------------------------------- */

/* PCI side: BAR0 (the 128 KiB register window, a 32-bit memory BAR),
 * memory decoding and bus mastering. */
static int igb_pci_setup(struct igb *n, const struct pci_device *d)
{
	n->pci = *d;
	if (!(n->mmio = pci_map_mem_bar(n->pci.addr, 0, "igb")))
		return -1;
	n->tdt = n->mmio + TDT;
	pci_enable_bus_master(n->pci.addr);
	return 0;
}

/* 4.5.1: mask every interrupt (legacy and extended), global reset, mask
 * again (reset restores defaults), then tell firmware a driver is loaded
 * (CTRL_EXT.DRV_LOAD, 8.2.3). */
static int igb_reset(struct igb *n)
{
	reg_write32(n->mmio, IMC, IMC_ALL);
	reg_write32(n->mmio, EIMC, EIMC_ALL);
	reg_set_flags(n->mmio, CTRL, CTRL_RST);
	if (reg_wait(n->mmio, CTRL, CTRL_RST, 0, NIC_RESET_TIMEOUT_US) < 0) {
		kprintf("igb: CTRL.RST did not clear\n");
		return -1;
	}
	reg_write32(n->mmio, IMC, IMC_ALL);
	reg_write32(n->mmio, EIMC, EIMC_ALL);
	reg_set_flags(n->mmio, CTRL_EXT, CTRL_EXT_DRV_LOAD);
	return 0;
}

/* Write PHY register reg through MDIC (8.2.4); -1 if the PHY does not
 * answer or reports an error. */
static int igb_phy_write(struct igb *n, uint32_t reg, uint16_t v)
{
	reg_write32(n->mmio, MDIC, ((uint32_t)v << MDIC_DATA_SHIFT) | (reg << MDIC_REG_SHIFT) |
				     (MDIC_PHY_INTERNAL << MDIC_PHY_SHIFT) | MDIC_OP_WRITE);
	if (reg_wait(n->mmio, MDIC, MDIC_READY, MDIC_READY, IGB_MDIC_TIMEOUT_US) < 0) {
		kprintf("igb: MDIC write of PHY register %u timed out\n", reg);
		return -1;
	}
	if (reg_read32(n->mmio, MDIC) & MDIC_ERROR) {
		kprintf("igb: MDIC write of PHY register %u failed\n", reg);
		return -1;
	}
	return 0;
}

/* 4.5.7: link by auto-negotiation. The reset took the link down (QEMU too),
 * so restart auto-negotiation in the PHY and wait for STATUS.LU. No link
 * within the timeout is reported, not fatal: the caller decides. */
static void igb_init_link(struct igb *n)
{
	reg_set_flags(n->mmio, CTRL, CTRL_SLU);
	if (igb_phy_write(n, PHY_CTRL, PHY_CTRL_AN_ENABLE | PHY_CTRL_RESTART_AN |
					    PHY_CTRL_FULL_DUPLEX | PHY_CTRL_SPEED_1000) < 0)
		return;
	if (reg_wait(n->mmio, STATUS, STATUS_LU, STATUS_LU, NIC_LINK_TIMEOUT_US) < 0)
		kprintf("igb: warning: no link after %u ms\n", NIC_LINK_TIMEOUT_US / 1000);
}

/* The EEPROM's station address, which the 82576 loads into RAL0/RAH0 at
 * reset (8.10.16). */
static int igb_read_mac(struct igb *n)
{
	uint32_t lo = reg_read32(n->mmio, RAL0), hi = reg_read32(n->mmio, RAH0);

	if (!(hi & RAH_AV)) {
		kprintf("igb: RAH0.AV clear, no station address\n");
		return -1;
	}
	for (int i = 0; i < 4; i++)
		n->mac[i] = (uint8_t)(lo >> (8 * i));
	n->mac[4] = (uint8_t)hi;
	n->mac[5] = (uint8_t)(hi >> 8);
	return 0;
}

/* Set ENABLE in a queue's RXDCTL/TXDCTL and wait until it reads back set:
 * the queue is live only then (4.5.9, 4.5.10). */
static int igb_queue_enable(struct igb *n, uint32_t reg, uint32_t enable, const char *what)
{
	reg_set_flags(n->mmio, reg, enable);
	if (reg_wait(n->mmio, reg, enable, enable, IGB_QUEUE_TIMEOUT_US) < 0) {
		kprintf("igb: %s queue 0 did not enable\n", what);
		return -1;
	}
	return 0;
}

/* 4.5.10: ring, head = tail = 0 (empty), queue enable, then TCTL. */
static int igb_init_tx(struct igb *n)
{
	for (uint32_t i = 0; i < NIC_TX_RING; i++)
		igb_tx_ring[i] = (union igb_tx_desc){ .read.buffer_addr = dma_addr(nic_tx_buf[i]) };
	reg_write32(n->mmio, TDBAL, (uint32_t)dma_addr(igb_tx_ring));
	reg_write32(n->mmio, TDBAH, (uint32_t)(dma_addr(igb_tx_ring) >> 32));
	reg_write32(n->mmio, TDLEN, sizeof(igb_tx_ring));
	reg_write32(n->mmio, TDH, 0);
	reg_write32(n->mmio, TDT, 0);
	n->tx.tail = 0;
	n->tx.clean = 0;
	igb_tx_next(n);
	if (igb_queue_enable(n, TXDCTL, TXDCTL_ENABLE, "TX") < 0)
		return -1;
	reg_write32(n->mmio, TCTL, TCTL_EN | TCTL_PSP | (TCTL_CT_DEFAULT << TCTL_CT_SHIFT) |
				(TCTL_COLD_FULL_DUPLEX << TCTL_COLD_SHIFT));
	return 0;
}

/* Give descriptor i its buffer back (read format; hdr_addr 0 clears DD). */
static inline void igb_rx_refill(uint16_t i)
{
	rx_ring[i].read.pkt_addr = dma_addr(nic_rx_buf[i]);
	rx_ring[i].read.hdr_addr = 0;
}

/* 4.5.9: zero the MTA, ring and SRRCTL (2 KiB buffers, advanced one-buffer
 * descriptors), queue enable, give the NIC every descriptor but one, then
 * the receiver. */
static int igb_init_rx(struct igb *n)
{
	for (uint32_t i = 0; i < 128; i++)
		reg_write32(n->mmio, MTA + 4 * i, 0);
	/* PTP over UDP: 01-00-5E-00-01-81 (224.0.1.129) hashes (bits 47:36)
	 * to 0x810, MTA[64] bit 16; PTP over Ethernet is let in by ts_enable */
	reg_write32(n->mmio, MTA + 4 * 64, 1u << 16);
	for (uint16_t i = 0; i < NIC_RX_RING; i++)
		igb_rx_refill(i);
	reg_write32(n->mmio, RDBAL, (uint32_t)dma_addr(rx_ring));
	reg_write32(n->mmio, RDBAH, (uint32_t)(dma_addr(rx_ring) >> 32));
	reg_write32(n->mmio, RDLEN, sizeof(rx_ring));
	reg_write32(n->mmio, SRRCTL, (NIC_BUF_SIZE / SRRCTL_BSIZEPACKET_UNIT) << SRRCTL_BSIZEPACKET_SHIFT |
				       SRRCTL_DESCTYPE_ADV_ONEBUF);
	reg_write32(n->mmio, RDH, 0);
	reg_write32(n->mmio, RDT, 0);
	if (igb_queue_enable(n, RXDCTL, RXDCTL_ENABLE, "RX") < 0)
		return -1;
	/* Intentionally one short of the ring: RDT == RDH means "no
	 * descriptors" and the NIC would stop receiving. */
	reg_write32(n->mmio, RDT, NIC_RX_RING - 1);
	n->rx_next = 0;
	n->rx_pending = 0;
	n->rx_discard = false;
	n->rx_long = 0;
	n->rx_len_late = 0;
	reg_write32(n->mmio, RLPML, IGB_RLPML_MAX);
	reg_write32(n->mmio, RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC | RCTL_LPE);
	return 0;
}

static struct nic *igb_open(const struct pci_device *d)
{
	struct igb *n = &igb_nic;

	n->nic.ops = &igb_ops;
	n->nic.name = "igb";
	n->nic.kind = NIC_KIND_IGB;
	if (igb_pci_setup(n, d) < 0 || igb_reset(n) < 0)
		return NULL;
	igb_init_link(n);
	if (igb_read_mac(n) < 0 || igb_init_tx(n) < 0 || igb_init_rx(n) < 0)
		return NULL;
	kprintf("igb: %02x:%02x.%x mmio 0x%lx mac %02x:%02x:%02x:%02x:%02x:%02x link %s\n",
		n->pci.addr.bus, n->pci.addr.dev, n->pci.addr.fn, (uint64_t)(uintptr_t)n->mmio,
		n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5],
		(reg_read32(n->mmio, STATUS) & STATUS_LU) ? "up" : "down");
	return &n->nic;
}

static const uint8_t *igb_mac(const struct nic *nn)
{
	return ((const struct igb *)nn)->mac;
}

/* --- hot path: descriptor memory only, doorbells as documented ---------- */

/* A descriptor of a frame longer than one buffer (no EOP on its first
 * descriptor): skip it and the rest up to EOP, count the frame once. */
static void igb_rx_skip_long(struct igb *n, uint32_t status)
{
	if (!(status & RXD_STAT_EOP)) {
		n->rx_discard = true;
		return;
	}
	n->rx_discard = false;
	n->rx_long++;
}

/* A descriptor with DD and EOP whose length still reads 0, the value our
 * refill left there. No frame is that short (the NIC pads to 60 bytes), so
 * the length is not visible yet: seen under QEMU 10.0's igb with TCG a few
 * times in 3 million frames (the frame in the buffer whole, the length
 * there on the next read). Read it again, a bounded number of times; a length
 * still 0 goes on as it is (the runtime refuses the frame as short). */
#define IGB_RX_LEN_REREADS 1000000u
static CORE_NOINLINE uint16_t igb_rx_len_late(struct igb *n, volatile union igb_rx_desc *d)
{
	uint16_t len = 0;

	n->rx_len_late++;
	for (uint32_t k = 0; k < IGB_RX_LEN_REREADS && len == 0; k++) {
		compiler_barrier();
		len = d->wb.length;
	}
	compiler_barrier(); /* then the frame's bytes */
	return len;
}

static const uint8_t *igb_rx_poll(struct nic *nn, uint16_t *len)
{
	struct igb *n = I(nn);

	for (;;) {
		/* The NIC can fill at most NIC_RX_RING - 1 descriptors between
		 * releases; past that the next one is still an unreleased frame. */
		if (n->rx_pending >= NIC_RX_RING - 1)
			return NULL;
		volatile union igb_rx_desc *d = &rx_ring[n->rx_next];
		uint32_t status = d->wb.status_error;
		if (!(status & RXD_STAT_DD))
			return NULL;
		compiler_barrier(); /* read length and data only after DD (x86: loads in order) */
		uint16_t i = n->rx_next;
		n->rx_next = (uint16_t)((i + 1) % NIC_RX_RING);
		n->rx_pending++;
		if ((status & RXD_STAT_EOP) && !n->rx_discard) {
			uint16_t l = d->wb.length;
			if (CORE_UNLIKELY(l == 0))
				l = igb_rx_len_late(n, d);
			*len = l;
			return nic_rx_buf[i];
		}
		igb_rx_skip_long(n, status); /* rare: then look at the next one */
	}
}

static void igb_rx_release(struct nic *nn)
{
	struct igb *n = I(nn);

	/* With nothing pending the write repeats RDT: QEMU flushes the frames
	 * it queued on any RDT write (trade_poll's idle kick), as on e1000. */
	uint16_t i = (uint16_t)((n->rx_next + NIC_RX_RING - n->rx_pending) % NIC_RX_RING);
	for (; n->rx_pending > 0; n->rx_pending--, i = (uint16_t)((i + 1) % NIC_RX_RING))
		igb_rx_refill(i);
	/* RDT = last released descriptor, one behind rx_next: see igb_init_rx. */
	reg_write32(n->mmio, RDT, (uint32_t)((n->rx_next + NIC_RX_RING - 1) % NIC_RX_RING));
}

/* Retire descriptors the NIC has finished (DD set by DCMD.RS), each with
 * its buffer address written back for its next turn (igb.h). */
static void igb_tx_reclaim(struct igb *n)
{
	while (n->tx.clean != n->tx.tail) {
		volatile union igb_tx_desc *d = &igb_tx_ring[n->tx.clean];
		if (!(d->wb.status & TXD_STAT_DD))
			break;
		d->read.buffer_addr = dma_addr(nic_tx_buf[n->tx.clean]);
		n->tx.clean = (uint16_t)((n->tx.clean + 1) % NIC_TX_RING);
	}
}

bool igb_tx_room(struct igb *n)
{
	igb_tx_reclaim(n);
	igb_tx_next(n);
	return !n->tx.full;
}

static uint8_t *igb_tx_buffer(struct nic *nn, uint16_t *slot)
{
	return igb_tx_buffer_inline(I(nn), slot);
}

static uint8_t *igb_tx_slot(struct nic *n, uint16_t i)
{
	(void)n;
	return i < NIC_TX_RING ? nic_tx_buf[i] : NULL;
}

static uint64_t igb_tx_commit(struct nic *nn, uint16_t len)
{
	uint64_t tsc = igb_tx_commit_at(I(nn), I(nn)->tx.tail, len, 0);

	igb_tx_next(I(nn));
	return tsc;
}

static int igb_tx_flush(struct nic *nn, uint32_t timeout_us)
{
	struct igb *n = I(nn);
	uint64_t deadline = tsc_deadline(timeout_us);

	for (igb_tx_reclaim(n); n->tx.clean != n->tx.tail; igb_tx_reclaim(n)) {
		if (tsc_expired(deadline))
			return -1;
		cpu_pause();
	}
	return 0;
}

/* 8.19: MPC (no room in the packet buffer), RNBC (no free descriptor), ROC
 * (longer than RLPML), clear on read, so read once at the end of a run;
 * frames longer than one buffer, dropped by this driver, count as oversize
 * too. QEMU never counts MPC or RNBC (see the top of the file). */
static void igb_read_stats(struct nic *nn, struct nic_stats *s)
{
	struct igb *n = I(nn);

	s->rx_missed = reg_read32(n->mmio, MPC);
	s->rx_no_buffer = reg_read32(n->mmio, RNBC);
	s->rx_oversize = reg_read32(n->mmio, ROC) + n->rx_long;
	s->rx_len_late = n->rx_len_late;
}

/* --- IEEE 1588 time stamps (7.10) ------------------------------------------
 *
 * The clock: SYSTIM (SYSTIMH:SYSTIML, 64 bits) adds TIMINCA.IncValue every
 * TIMINCA.IncPeriod periods of 16 ns (7.10.3.1, 8.16.11). IncPeriod = 1 and
 * IncValue = 16 make one unit of SYSTIM one nanosecond (16 ns resolution on
 * silicon), so time stamps are plain ns and wrap after 584 years. QEMU
 * computes SYSTIM = offset + virtual-clock ns * IncValue / (IncPeriod * 16):
 * the same 1 ns unit, at full ns resolution, on QEMU's virtual clock (under
 * -icount, instructions). Its origin is arbitrary (QEMU adds the virtual
 * time to the offset when TIMINCA is written, and ignores SYSTIM writes), so
 * only differences between readings mean anything.
 *
 * RX: an ETQF filter with its 1588 bit on ethertype 0x88F7 (PTP over
 * Ethernet, IEEE 1588 annex F) and TSYNCRXCTL type "L2 V2" latch the arrival
 * time of frames whose PTP messageType byte equals TSYNCRXCFG.MSGT (Sync)
 * in RXSTMPL/H, and their sequenceId in RXSATRH. PTP over UDP (port 319)
 * needs the L4 type and the 2-tuple filters, which QEMU's model does not
 * implement (it time stamps only through ETQF), so it is left off. One latch
 * each way: until software reads it, no other frame is time stamped.
 * TX: a frame posted with TXD_MAC_TSTAMP latches its send time in TXSTMPL/H.
 */
#define PTP_ETHERTYPE       0x88F7
#define PTP_MSG_SYNC        0x0
#define PTP_ETQF_INDEX      0      /* the filter this driver uses */
#define IGB_TIMINCA_1NS     ((1u << TIMINCA_INCPERIOD_SHIFT) | (16u << TIMINCA_INCVALUE_SHIFT))
/* 01-1B-19-00-00-00, PTP's multicast address (annex F): with RCTL.MO = 00
 * its MTA hash is address bits 47:36 = 0x000, bit 0 of MTA[0] (8.10.15). */
#define PTP_MTA_REG         0
#define PTP_MTA_BIT         (1u << 0)
#define IGB_SYSTIM_CHECK_US 100    /* SYSTIM must move within this */

static uint64_t igb_ts_now(struct nic *nn)
{
	struct igb *n = I(nn);
	uint32_t lo = reg_read32(n->mmio, SYSTIML); /* latches SYSTIMH */

	return (uint64_t)reg_read32(n->mmio, SYSTIMH) << 32 | lo;
}

/* Read and free the RX latch: 1 with the time and sequenceId, 0 if none.
 * The silicon frees it on the RXSTMPH read, QEMU's model on the RXSATRH
 * read; reading all four in this order frees it on both. */
static int igb_ts_rx(struct nic *nn, uint64_t *ns, uint16_t *seq_id)
{
	struct igb *n = I(nn);

	if (!(reg_read32(n->mmio, TSYNCRXCTL) & TSYNCRXCTL_RXTT))
		return 0;
	uint32_t lo = reg_read32(n->mmio, RXSTMPL);
	*ns = (uint64_t)reg_read32(n->mmio, RXSTMPH) << 32 | lo;
	(void)reg_read32(n->mmio, RXSATRL);
	*seq_id = (uint16_t)(reg_read32(n->mmio, RXSATRH) >> RXSATRH_SEQID_SHIFT);
	return 1;
}

/* Read and free the TX latch (freed by the TXSTMPH read). */
static int igb_ts_tx(struct nic *nn, uint64_t *ns)
{
	struct igb *n = I(nn);

	if (!(reg_read32(n->mmio, TSYNCTXCTL) & TSYNCTXCTL_TXTT))
		return 0;
	uint32_t lo = reg_read32(n->mmio, TXSTMPL);
	*ns = (uint64_t)reg_read32(n->mmio, TXSTMPH) << 32 | lo;
	return 1;
}

static void igb_ts_tx_commit(struct nic *nn, uint16_t len)
{
	igb_tx_commit_at(I(nn), I(nn)->tx.tail, len, TXD_MAC_TSTAMP);
	igb_tx_next(I(nn));
}

/* 7.10.4: start the clock, accept PTP's multicast address, route 0x88F7
 * through the 1588 filter, enable both latches and empty them. -1 if
 * SYSTIM does not move. */
static int igb_ts_enable(struct nic *nn)
{
	struct igb *n = I(nn);
	uint64_t ns;
	uint16_t seq;

	reg_write32(n->mmio, TIMINCA, IGB_TIMINCA_1NS);
	reg_set_flags(n->mmio, MTA + 4 * PTP_MTA_REG, PTP_MTA_BIT);
	reg_write32(n->mmio, ETQF(PTP_ETQF_INDEX), PTP_ETHERTYPE | ETQF_FILTER_ENABLE | ETQF_1588);
	reg_write32(n->mmio, TSYNCRXCFG, PTP_MSG_SYNC << TSYNCRXCFG_MSGT_SHIFT);
	reg_write32(n->mmio, TSYNCRXCTL, TSYNCRXCTL_EN | TSYNCRXCTL_TYPE_L2_V2);
	reg_write32(n->mmio, TSYNCTXCTL, TSYNCTXCTL_EN);
	(void)igb_ts_rx(nn, &ns, &seq);
	(void)igb_ts_tx(nn, &ns);
	uint64_t t0 = igb_ts_now(nn), deadline = tsc_deadline(IGB_SYSTIM_CHECK_US);
	while (igb_ts_now(nn) == t0) {
		if (tsc_expired(deadline)) {
			kprintf("igb: SYSTIM stands still at %lu after TIMINCA 0x%x\n", t0,
				IGB_TIMINCA_1NS);
			return -1;
		}
		cpu_pause();
	}
	return 0;
}

static const struct nic_ops igb_ops = {
	.mac = igb_mac,
	.rx_poll = igb_rx_poll,
	.rx_release = igb_rx_release,
	.tx_buffer = igb_tx_buffer,
	.tx_slot = igb_tx_slot,
	.tx_commit = igb_tx_commit,
	.tx_flush = igb_tx_flush,
	.read_stats = igb_read_stats,
	.ts_enable = igb_ts_enable,
	.ts_now = igb_ts_now,
	.ts_rx = igb_ts_rx,
	.ts_tx = igb_ts_tx,
	.ts_tx_commit = igb_ts_tx_commit,
};

static const uint16_t igb_devices[] = { IGB_DEV_82576, 0 };

const struct nic_driver igb_driver = {
	.name = "igb (82576)",
	.vendor = IGB_VENDOR_INTEL,
	.devices = igb_devices,
	.open = igb_open,
};
