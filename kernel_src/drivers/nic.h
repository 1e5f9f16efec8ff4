/*
 * nic.h - the polling NIC interface the runtime's hot loop uses.
 *
 * One NIC per system. Frames are handled in place: nic_rx_poll hands out a
 * pointer into the RX buffer, nic_tx_buffer a TX buffer to build a frame in.
 * The hot-path calls (nic_rx_poll, nic_tx_buffer) read only descriptor
 * memory, never a device register; the doorbells are nic_rx_release (one RDT
 * write for a batch) and nic_tx_commit (one TDT write per frame).
 * Implemented by drivers/e1000.c for now.
 */
#ifndef HFTOS_NIC_H
#define HFTOS_NIC_H

#include <stdint.h>

#define NIC_RX_RING   4096 /* descriptors (2 KiB buffer each: 8 MiB); x16 bytes a multiple of
                            * 128. Deep, so that a host-side stall of the vCPU (~200 ms at
                            * 20k frames/s) does not overflow it (see e1000.c) */
#define NIC_TX_RING   256
#define NIC_BUF_SIZE  2048 /* bytes per buffer; one frame per buffer, no jumbo */
#define NIC_RESET_TIMEOUT_US  10000
#define NIC_LINK_TIMEOUT_US   2000000

struct nic;

/* Find the NIC on PCI, reset it and bring up RX and TX with all interrupts
 * masked. Returns NULL (reason printed) when there is no usable NIC. */
struct nic *nic_open(void);

/* The station address read from the NIC (RAL0/RAH0). */
const uint8_t *nic_mac(const struct nic *n);

/* Next received frame, or NULL if none is ready. *len is the frame length
 * without CRC. The frame stays valid until the next nic_rx_release. */
const uint8_t *nic_rx_poll(struct nic *n, uint16_t *len);

/* Return every frame polled since the last release to the NIC, with one
 * RDT write. */
void nic_rx_release(struct nic *n);

/* A free TX buffer to build the next frame in, or NULL if the ring is full.
 * *slot gets its index (0..NIC_TX_RING-1): lets a caller keep per-buffer
 * state, such as "headers pre-built", without a second call. */
uint8_t *nic_tx_buffer(struct nic *n, uint16_t *slot);

/* TX buffer i (0..NIC_TX_RING-1), for pre-building constant headers in every
 * buffer before the first send. Not for the hot path. */
uint8_t *nic_tx_slot(struct nic *n, uint16_t i);

/* Send the frame built in the last nic_tx_buffer(): post its descriptor and
 * write TDT. */
void nic_tx_commit(struct nic *n, uint16_t len);

/* Wait until all committed frames are sent; -1 on timeout. */
int nic_tx_flush(struct nic *n, uint32_t timeout_us);

/* The NIC's own drop counters, read once at the end of a run (device
 * registers: never on the hot path). */
struct nic_stats {
	uint64_t rx_missed;     /* frames dropped for lack of room (e1000: MPC) */
	uint64_t rx_no_buffer;  /* frames that found no free descriptor (e1000: RNBC) */
	uint64_t rx_oversize;   /* frames longer than the maximum, dropped (e1000: ROC) */
};
void nic_read_stats(struct nic *n, struct nic_stats *s);

#endif
