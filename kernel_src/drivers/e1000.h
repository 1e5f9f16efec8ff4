/*
 * e1000.h - the e1000 driver's state and its order path (tx_buffer,
 * tx_commit), inline, for a caller that sends orders without an indirect
 * call per frame (runtime/trade.c); e1000.c's nic_ops entries are the
 * same functions. See e1000.c for the driver.
 */
#ifndef HFTOS_E1000_H
#define HFTOS_E1000_H

#include <stdbool.h>

#include "drivers/nic.h"
#include "drivers/mmio.h"
#include "drivers/pci.h"
#include "arch/x86_64/tsc.h"

/* Not e1000_regs.h: its register names are igb_regs.h's too, and a caller
 * may inline both drivers. */

/* Legacy transmit descriptor, 8254x 3.3.3. */
struct e1000_tx_desc {
	uint64_t buffer_addr;
	union {
		struct {
			uint16_t length;
			uint8_t cso;
			uint8_t cmd;
		};
		uint32_t lower; /* length | cso << 16 | cmd << 24: one store */
	};
	uint8_t status;
	uint8_t css;
	uint16_t special;
};
_Static_assert(sizeof(struct e1000_tx_desc) == 16, "8254x 3.3.3: 16-byte TX descriptor");

/* The command of every frame: EOP | IFCS | RS (e1000.c checks it against
 * e1000_regs.h), in bits 31:24 of the lower dword. */
#define E1000_TX_CMD       0x0Bu
#define E1000_TX_CMD_SHIFT 24

struct e1000 {
	struct nic nic; /* first: a struct nic * is a struct e1000 * */
	volatile uint8_t *mmio;
	volatile uint8_t *tdt; /* mmio + TDT: the order doorbell */
	struct pci_device pci;
	uint8_t mac[6];
	uint16_t rx_next;     /* next RX descriptor to poll */
	uint16_t rx_pending;  /* polled but not yet released */
	struct nic_txq tx;     /* the TX ring's cursor (drivers/nic.h) */
};

/* The TX ring. Descriptor i always points at nic_tx_buf[i] and carries
 * E1000_TX_CMD, written at set-up; tx_commit writes only the length
 * (with cso and cmd, one store), and e1000_tx_reclaim clears a finished
 * descriptor's status for its next turn. */
extern struct e1000_tx_desc e1000_tx_ring[NIC_TX_RING];

/* The one e1000 (one NIC per system): its address is a constant, so the
 * order path reads its state without loading a pointer first. */
extern struct e1000 e1000_nic;

/* When the ring is full: retire the descriptors the NIC has finished
 * (e1000_tx_next again); true if that made room. Out of line: nothing of the order path lives in
 * registers across it. */
bool e1000_tx_room(struct e1000 *n);

/* After a send (or a reclaim): the next frame's buffer and whether the
 * ring is full, so that tx_buffer only reads them. The order path
 * (runtime/trade.c) calls it once its order is out, after tsc_tx; the
 * nic_ops commit calls it itself. */
static inline void e1000_tx_next(struct e1000 *n)
{
	nic_txq_next(&n->tx);
}

/* nic_tx_buffer. */
static inline uint8_t *e1000_tx_buffer_inline(struct e1000 *n, uint16_t *slot)
{
	if (__builtin_expect(n->tx.full, 0) && !e1000_tx_room(n))
		return 0; /* TDT may never catch up with TDH: ring full */
	return nic_txq_take(&n->tx, slot);
}

/* nic_tx_commit of the frame in TX buffer i, the one the last
 * nic_tx_buffer handed out (= tx.tail). x86 keeps stores in order, so the
 * descriptor and the frame are visible before the uncached doorbell; the
 * barriers in tsc_read_ordered and reg_write32 stop the compiler from
 * sinking them past it. The stamp is the order's tsc_doorbell. */
static inline uint64_t e1000_tx_commit_at(struct e1000 *n, uint16_t i, uint16_t len)
{
	uint16_t next = (uint16_t)((i + 1) % NIC_TX_RING);

	((volatile struct e1000_tx_desc *)&e1000_tx_ring[i])->lower =
		len | E1000_TX_CMD << E1000_TX_CMD_SHIFT;
	n->tx.tail = next;
	uint64_t tsc = tsc_read_ordered();
	reg_write32(n->tdt, 0, next);
	return tsc;
}

#endif
