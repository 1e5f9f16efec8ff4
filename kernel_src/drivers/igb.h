/*
 * igb.h - the igb driver's state and its order path (tx_buffer,
 * tx_commit), inline, for a caller that sends orders without an indirect
 * call per frame (runtime/trade.c); igb.c's nic_ops entries are the same
 * functions. See igb.c for the driver.
 */
#ifndef HFTOS_IGB_H
#define HFTOS_IGB_H

#include <stdbool.h>

#include "drivers/nic.h"
#include "drivers/mmio.h"
#include "drivers/pci.h"
#include "arch/x86_64/tsc.h"

/* Not igb_regs.h: its register names are e1000_regs.h's too, and a caller
 * may inline both drivers. */

/* Advanced transmit data descriptor, 82576 7.2.2.3: read format ... */
struct igb_tx_desc_read {
	uint64_t buffer_addr;
	uint32_t cmd_type_len;
	uint32_t olinfo_status;
};
/* ... and write-back format. */
struct igb_tx_desc_wb {
	uint64_t reserved;
	uint32_t reserved2;
	uint32_t status;
};
union igb_tx_desc {
	struct igb_tx_desc_read read;
	struct igb_tx_desc_wb wb;
};
_Static_assert(sizeof(union igb_tx_desc) == 16, "82576 7.2.2.3: 16-byte advanced TX descriptor");

/* cmd_type_len of every frame but its length: DTYP data, DEXT, EOP, IFCS,
 * RS (igb.c checks it against igb_regs.h); olinfo_status is the length
 * shifted by IGB_TX_PAYLEN_SHIFT. */
#define IGB_TX_CMD          0x2B300000u
#define IGB_TX_PAYLEN_SHIFT 14

struct igb {
	struct nic nic; /* first: a struct nic * is a struct igb * */
	volatile uint8_t *mmio;
	volatile uint8_t *tdt; /* mmio + TDT: the order doorbell */
	struct pci_device pci;
	uint8_t mac[6];
	uint16_t rx_next;     /* next RX descriptor to poll */
	uint16_t rx_pending;  /* polled but not yet released */
	bool rx_discard;      /* inside a frame longer than one buffer */
	uint64_t rx_long;     /* such frames, dropped here */
	uint64_t rx_len_late; /* DD seen before the length (igb_rx_len_late) */
	struct nic_txq tx;     /* the TX ring's cursor (drivers/nic.h) */
};

/* The TX ring. The NIC writes a finished descriptor back over its read
 * format (7.2.2.3), buffer address included; igb_tx_reclaim writes
 * nic_tx_buf[i]'s address back when it retires descriptor i, so a send
 * writes only cmd_type_len and olinfo_status (the latter clears DD). */
extern union igb_tx_desc igb_tx_ring[NIC_TX_RING];

/* The one igb (one NIC per system): its address is a constant, so the
 * order path reads its state without loading a pointer first. */
extern struct igb igb_nic;

/* When the ring is full: retire the descriptors the NIC has finished
 * (igb_tx_next again); true if that made room. Out of line: nothing of the order path lives in
 * registers across it. */
bool igb_tx_room(struct igb *n);

/* After a send (or a reclaim): the next frame's buffer and whether the
 * ring is full, so that tx_buffer only reads them. The order path
 * (runtime/trade.c) calls it once its order is out, after tsc_tx; the
 * nic_ops commit calls it itself. */
static inline void igb_tx_next(struct igb *n)
{
	nic_txq_next(&n->tx);
}

/* nic_tx_buffer. */
static inline uint8_t *igb_tx_buffer_inline(struct igb *n, uint16_t *slot)
{
	if (__builtin_expect(n->tx.full, 0) && !igb_tx_room(n))
		return 0; /* TDT may never catch up with TDH: ring full */
	return nic_txq_take(&n->tx, slot);
}

/* Post the frame in TX buffer i, the one the last nic_tx_buffer handed out
 * (= tx.tail), with extra command bits (a time stamp), and ring the
 * doorbell. x86 keeps stores in order, so the descriptor and the frame are
 * visible before the uncached doorbell; the barriers in tsc_read_ordered
 * and reg_write32 stop the compiler from sinking them past it. Returns the
 * TSC just before the doorbell write (nic_tx_commit). */
static inline uint64_t igb_tx_commit_at(struct igb *n, uint16_t i, uint16_t len, uint32_t extra)
{
	uint16_t next = (uint16_t)((i + 1) % NIC_TX_RING);
	volatile union igb_tx_desc *d = &igb_tx_ring[i];

	d->read.cmd_type_len = len | IGB_TX_CMD | extra;
	d->read.olinfo_status = (uint32_t)len << IGB_TX_PAYLEN_SHIFT;
	n->tx.tail = next;
	uint64_t tsc = tsc_read_ordered();
	reg_write32(n->tdt, 0, next);
	return tsc;
}

#endif
