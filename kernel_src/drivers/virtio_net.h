/*
 * virtio_net.h - the virtio-net driver's state and its order path
 * (tx_buffer, tx_commit), inline, for a caller that sends orders without an
 * indirect call per frame (runtime/trade.c); virtio_net.c's nic_ops entries
 * are the same functions. See virtio_net.c for the driver.
 */
#ifndef HFTOS_VIRTIO_NET_H
#define HFTOS_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>

#include "drivers/nic.h"
#include "drivers/mmio.h"
#include "drivers/pci.h"
#include "drivers/virtio_regs.h"
#include "arch/x86_64/tsc.h"

#define VNET_HDR_LEN    ((uint32_t)sizeof(struct virtio_net_hdr))
#define VNET_FRAME_MAX  1518 /* 1500 + 14 + an 802.1Q tag: virtio frames carry no FCS */

/* One split virtqueue as the driver sees it. */
struct virtq {
	uint16_t index; /* queue number */
	uint16_t size;  /* entries, a power of two (2.6) */
	uint16_t mask;
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	volatile struct virtq_used *used;
	volatile uint8_t *notify; /* this queue's doorbell (4.1.4.4) */
};

/* A TX buffer: the header right before the frame; 4 bytes of padding put
 * the frame on a 16-byte boundary. The descriptor covers hdr + frame. */
struct vnet_tx_buf {
	uint8_t pad[4];
	struct virtio_net_hdr hdr;
	uint8_t frame[NIC_BUF_SIZE];
};
_Static_assert(offsetof(struct vnet_tx_buf, frame) == 16, "TX frame 16-byte aligned");
_Static_assert(offsetof(struct vnet_tx_buf, hdr) + VNET_HDR_LEN ==
	       offsetof(struct vnet_tx_buf, frame), "header directly before the frame");
_Static_assert(VNET_HDR_LEN + VNET_FRAME_MAX <= NIC_BUF_SIZE, "a frame fits one RX buffer");

struct virtio_net {
	struct nic nic; /* first: a struct nic * is a struct virtio_net * */
	struct pci_device pci;
	volatile uint8_t *common, *device, *notify_base;
	uint32_t notify_mult, notify_len;
	uint64_t features; /* negotiated */
	bool rx_mrg;       /* MRG_RXBUF: num_buffers is meaningful */
	uint8_t mac[6];
	uint16_t link;     /* VIRTIO_NET_CFG_STATUS, when STATUS was negotiated */
	struct virtq rx, tx;
	uint16_t rx_seen;  /* used entries consumed (passed up or dropped) */
	uint16_t rx_avail; /* avail->idx published; rx_avail - size = entries re-posted */
	uint16_t tx_avail; /* frames committed (= avail->idx) */
	uint16_t tx_used;  /* frames the device has finished */
	bool tx_full;          /* vnet_tx_next: every TX buffer is the device's */
	uint16_t tx_next_slot; /* vnet_tx_next: tx_avail & mask ... */
	uint8_t *tx_next_buf;  /* ... and its frame */
	/* read_stats and the end-of-run line; see virtio_net.c */
	uint64_t rx_bad, rx_dry, rx_oversize;
	uint64_t rx_releases, rx_notifies, tx_frames, tx_notifies, tx_out_of_order;
};

/* TX buffer i, descriptor i and avail ring entry i belong together for
 * good (virtio_net.c: vnet_init_tx). */
extern struct vnet_tx_buf vnet_tx_bufs[NIC_TX_RING];

/* The one virtio-net (one NIC per system): its address is a constant, so
 * the order path reads its state without loading a pointer first. */
extern struct virtio_net vnet_nic;

/* When the ring is full: retire the frames the device has finished
 * (vnet_tx_next again); true if that made room. Out of line: nothing of the order path lives in
 * registers across it. */
bool vnet_tx_room(struct virtio_net *n);

/* A full fence. After publishing avail->idx the driver reads used->flags to
 * decide whether to notify; x86 may let that load pass the older store, and
 * then driver and device can each miss the other's update (2.7.13's "memory
 * barrier" before checking suppression; QEMU re-checks on its side). */
static inline void mb(void)
{
	__asm__ volatile("mfence" : : : "memory");
}

static inline void vnet_notify(const struct virtq *q)
{
	reg_write16(q->notify, 0, q->index); /* 4.1.5.2: the queue number */
}

/* Publish avail->idx and notify if the device asks for it (2.7.13). */
static inline bool vnet_publish(struct virtq *q, uint16_t idx)
{
	compiler_barrier(); /* descriptors and ring entries before idx (x86: stores in order) */
	*(volatile uint16_t *)&q->avail->idx = idx;
	mb();
	if (q->used->flags & VIRTQ_USED_F_NO_NOTIFY)
		return false;
	vnet_notify(q);
	return true;
}

/* After a send (or a reclaim): the next frame's buffer and whether the
 * ring is full, so that tx_buffer only reads them. The order path
 * (runtime/trade.c) calls it once its order is out, after tsc_tx; the
 * nic_ops commit calls it itself. */
static inline void vnet_tx_next(struct virtio_net *n)
{
	n->tx_next_slot = n->tx_avail & n->tx.mask;
	n->tx_next_buf = vnet_tx_bufs[n->tx_next_slot].frame;
	n->tx_full = (uint16_t)(n->tx_avail - n->tx_used) == n->tx.size;
}

/* nic_tx_buffer. */
static inline uint8_t *vnet_tx_buffer_inline(struct virtio_net *n, uint16_t *slot)
{
	if (__builtin_expect(n->tx_full, 0) && !vnet_tx_room(n))
		return 0;
	*slot = n->tx_next_slot;
	if (!n->tx_next_buf)
		__builtin_unreachable(); /* a buffer of the ring: the caller needs no check */
	return n->tx_next_buf;
}

/* nic_tx_commit: the frame in the last tx_buffer, its length (header +
 * frame) into its descriptor, publish, and notify when the device is not
 * already busy. The doorbell here is the whole of vnet_publish (avail->idx,
 * the fence, the used->flags check and, when asked for, the notify write):
 * the returned stamp (the order's tsc_doorbell) is taken before it, and the
 * frame counter is bumped after it. */
static inline uint64_t vnet_tx_commit_inline(struct virtio_net *n, uint16_t len)
{
	struct virtq *q = &n->tx;
	uint16_t idx = n->tx_avail;

	q->desc[idx & q->mask].len = VNET_HDR_LEN + len;
	n->tx_avail = ++idx;
	uint64_t tsc = tsc_read_ordered();
	if (vnet_publish(q, idx))
		n->tx_notifies++;
	n->tx_frames++;
	return tsc;
}

#endif
