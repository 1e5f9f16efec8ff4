/*
 * nic.h - the polling NIC interface the runtime's hot loop uses.
 *
 * One NIC per system, chosen at boot: nic_open() scans PCI and opens the
 * first function a driver in nic.c's table claims (vendor:device), so one
 * image runs on every supported NIC. Each driver fills a struct nic_ops;
 * the calls below are one indirect call each. The order path does without
 * them: each driver's header (e1000.h, igb.h, virtio_net.h) has its
 * tx_buffer and tx_commit inline, and runtime/trade.c runs one loop per
 * driver, picked by struct nic's kind (the cost of either way, measured
 * under tcg-icount, is in docs/architecture.md).
 *
 * Frames are handled in place: nic_rx_poll hands out a pointer into the RX
 * buffer, nic_tx_buffer a TX buffer to build a frame in. The hot-path calls
 * (rx_poll, tx_buffer) read only descriptor memory, never a device register;
 * the doorbells are rx_release (one write for a batch) and tx_commit (one
 * write per frame). tx_commit returns the TSC read just before its doorbell
 * write, so the caller can split its span into the software path up to the
 * doorbell and the doorbell itself without a second call (tslog.h).
 */
#ifndef HFTOS_NIC_H
#define HFTOS_NIC_H

#include <stdbool.h>
#include <stdint.h>

#include "core/platform.h"
#include "drivers/pci.h"

#define NIC_RX_RING   4096 /* descriptors (2 KiB buffer each: 8 MiB); x16 bytes a multiple of
                            * 128. Deep, so that a host-side stall of the vCPU (~200 ms at
                            * 20k frames/s) does not overflow it (see e1000.c) */
#define NIC_TX_RING   256
#define NIC_BUF_SIZE  2048 /* bytes per buffer; one frame per buffer, no jumbo */
#define NIC_RESET_TIMEOUT_US  10000
#define NIC_LINK_TIMEOUT_US   2000000

struct nic;

/* The frame buffers, one set for whichever driver runs (one NIC per system,
 * nic.c): a driver owns them from its open on, and hands them to the device
 * by DMA address. Shared so the image does not carry one 8 MiB set per
 * driver in .bss (that much less to clear at every boot). virtio-net's TX
 * buffers carry a header before the frame and are its own. */
extern uint8_t nic_rx_buf[NIC_RX_RING][NIC_BUF_SIZE];
extern uint8_t nic_tx_buf[NIC_TX_RING][NIC_BUF_SIZE];

/* The TX side of a ring whose descriptor i always carries nic_tx_buf[i]
 * (e1000, igb): the next descriptor to fill (= TDT), the oldest not yet
 * seen done, and, worked out after each send (nic_txq_next), the next
 * frame's buffer and whether the ring is full, so that handing out a buffer
 * on the order path only reads them. */
struct nic_txq {
	uint16_t tail;
	uint16_t clean;
	bool full;          /* TDT may not move on */
	uint8_t *next_buf;  /* nic_tx_buf[tail] */
};

static inline void nic_txq_next(struct nic_txq *q)
{
	q->next_buf = nic_tx_buf[q->tail];
	q->full = (q->tail + 1) % NIC_TX_RING == q->clean;
}

/* The next buffer (the ring is known not to be full): its slot in *slot. */
static inline uint8_t *nic_txq_take(const struct nic_txq *q, uint16_t *slot)
{
	*slot = q->tail;
	if (!q->next_buf)
		__builtin_unreachable(); /* a buffer of the ring: the caller needs no check */
	return q->next_buf;
}

/* The NIC's own drop counters, read once at the end of a run (device
 * registers: never on the hot path). */
struct nic_stats {
	uint64_t rx_missed;     /* frames dropped for lack of room (e1000: MPC) */
	uint64_t rx_no_buffer;  /* frames that found no free descriptor (e1000: RNBC) */
	uint64_t rx_oversize;   /* frames longer than the maximum, dropped (e1000: ROC) */
	uint64_t rx_len_late;   /* igb: descriptors whose length was read again (igb_rx_len_late) */
};

/* What a driver implements. Every entry is required unless marked optional
 * (NULL: not supported by this NIC). */
struct nic_ops {
	/* See the nic_* wrappers below for the contract of each. */
	const uint8_t *(*mac)(const struct nic *n);
	const uint8_t *(*rx_poll)(struct nic *n, uint16_t *len);
	void (*rx_release)(struct nic *n);
	uint8_t *(*tx_buffer)(struct nic *n, uint16_t *slot);
	uint8_t *(*tx_slot)(struct nic *n, uint16_t i);
	uint64_t (*tx_commit)(struct nic *n, uint16_t len);
	int (*tx_flush)(struct nic *n, uint32_t timeout_us);
	void (*read_stats)(struct nic *n, struct nic_stats *s);
	/* Optional, all five or none: hardware time stamps of PTP event
	 * frames (igb). See the nic_ts_* wrappers below. */
	int (*ts_enable)(struct nic *n);
	uint64_t (*ts_now)(struct nic *n);
	int (*ts_rx)(struct nic *n, uint64_t *ns, uint16_t *seq_id);
	int (*ts_tx)(struct nic *n, uint64_t *ns);
	void (*ts_tx_commit)(struct nic *n, uint16_t len);
};

/* Which driver runs the NIC, for a caller that inlines the driver's hot
 * path (drivers/e1000.h, igb.h, virtio_net.h) instead of calling through
 * ops: the runtime's order path does (runtime/trade.c). */
enum nic_kind {
	NIC_KIND_E1000 = 1,
	NIC_KIND_VIRTIO = 2,
	NIC_KIND_IGB = 3,
};

/* Every driver's state starts with this. */
struct nic {
	const struct nic_ops *ops;
	const char *name; /* driver name: "e1000", "virtio-net", "igb" */
	enum nic_kind kind;
};

/* One entry of nic.c's driver table. */
struct nic_driver {
	const char *name;
	uint16_t vendor;
	const uint16_t *devices; /* device ids, 0-terminated */
	/* Bring the function up (reset, RX and TX rings, interrupts masked);
	 * NULL with the reason printed when it cannot. */
	struct nic *(*open)(const struct pci_device *d);
};

/* Find the NIC on PCI (the first function some driver claims), reset it and
 * bring up RX and TX with all interrupts masked. Returns NULL (reason
 * printed) when there is no usable NIC. */
struct nic *nic_open(void);

/* The station address read from the NIC. */
static inline const uint8_t *nic_mac(const struct nic *n)
{
	return n->ops->mac(n);
}

/* Next received frame, or NULL if none is ready. *len is the frame length
 * without CRC. The frame stays valid until the next nic_rx_release. */
static inline const uint8_t *nic_rx_poll(struct nic *n, uint16_t *len)
{
	return n->ops->rx_poll(n, len);
}

/* Return every frame polled since the last release to the NIC, with one
 * doorbell write. */
static inline void nic_rx_release(struct nic *n)
{
	n->ops->rx_release(n);
}

/* A free TX buffer to build the next frame in, or NULL if the ring is full.
 * *slot gets its index (0..NIC_TX_RING-1): lets a caller keep per-buffer
 * state, such as "headers pre-built", without a second call. */
static inline uint8_t *nic_tx_buffer(struct nic *n, uint16_t *slot)
{
	return n->ops->tx_buffer(n, slot);
}

/* TX buffer i (0..NIC_TX_RING-1), for pre-building constant headers in every
 * buffer before the first send. Not for the hot path. */
static inline uint8_t *nic_tx_slot(struct nic *n, uint16_t i)
{
	return n->ops->tx_slot(n, i);
}

/* Send the frame built in the last nic_tx_buffer(): post its descriptor and
 * ring the doorbell. Returns the TSC (lfence; rdtsc) read after the frame
 * and its descriptor were written and before the doorbell write: an order's
 * tsc_doorbell. The caller stamps the doorbell's return itself. */
static inline uint64_t nic_tx_commit(struct nic *n, uint16_t len)
{
	return n->ops->tx_commit(n, len);
}

/* Wait until all committed frames are sent; -1 on timeout. */
static inline int nic_tx_flush(struct nic *n, uint32_t timeout_us)
{
	return n->ops->tx_flush(n, timeout_us);
}

static inline void nic_read_stats(struct nic *n, struct nic_stats *s)
{
	core_memset(s, 0, sizeof *s); /* a counter the driver lacks reads 0 */
	n->ops->read_stats(n, s);
}

/* --- hardware time stamps (not for the hot path) --------------------------
 * Times are ns of the NIC's own clock, whose origin is arbitrary: compare
 * them with each other and with nic_ts_now(), not with the TSC. The NIC
 * latches one RX and one TX time stamp; until software reads a latch, no
 * further frame is stamped in that direction. */

/* True when the NIC latches hardware timestamps of PTP event frames. */
static inline bool nic_has_hw_timestamps(const struct nic *n)
{
	return n->ops->ts_enable != 0;
}

/* Start the NIC clock and time stamp PTP event frames (over Ethernet,
 * ethertype 0x88F7): Sync on receive, marked frames on send. 0, or -1
 * (reason printed). Only when nic_has_hw_timestamps(). */
static inline int nic_ts_enable(struct nic *n)
{
	return n->ops->ts_enable(n);
}

/* The NIC clock now, ns. */
static inline uint64_t nic_ts_now(struct nic *n)
{
	return n->ops->ts_now(n);
}

/* The latched RX time stamp: 1 with its time and the frame's PTP
 * sequenceId as the NIC latched it (reading frees the latch), 0 if none. */
static inline int nic_ts_rx(struct nic *n, uint64_t *ns, uint16_t *seq_id)
{
	return n->ops->ts_rx(n, ns, seq_id);
}

/* The latched TX time stamp: 1 with its time (reading frees the latch), 0
 * if none (yet). */
static inline int nic_ts_tx(struct nic *n, uint64_t *ns)
{
	return n->ops->ts_tx(n, ns);
}

/* nic_tx_commit, and latch this frame's send time for nic_ts_tx. */
static inline void nic_ts_tx_commit(struct nic *n, uint16_t len)
{
	n->ops->ts_tx_commit(n, len);
}

#endif
