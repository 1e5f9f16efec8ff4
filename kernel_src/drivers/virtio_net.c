/*
 * virtio_net.c - polling driver for virtio-net on the modern virtio 1.x PCI
 * transport (QEMU's -device virtio-net-pci,disable-legacy=on).
 *
 * Bring-up follows the virtio spec v1.1 (section numbers below; v1.2 has the
 * same layout): find the COMMON, NOTIFY and DEVICE structures through the
 * vendor PCI capabilities (4.1.4), then the 3.1.1 sequence - reset,
 * ACKNOWLEDGE, DRIVER, feature negotiation, FEATURES_OK, queues, DRIVER_OK -
 * one function per step. Two split virtqueues (2.6): receiveq1 (0) and
 * transmitq1 (1). Rings and buffers are static arrays in .bss, identity
 * mapped, so virtual = physical = DMA address.
 *
 * Polling, no interrupts: both avail rings carry VIRTQ_AVAIL_F_NO_INTERRUPT
 * and INTx is disabled in PCI; MSI-X stays off. rx_poll reads used->idx
 * (memory, not a register). Doorbells (queue notifies) are sent only when
 * the device asks for them: QEMU clears VIRTQ_USED_F_NO_NOTIFY on the RX
 * queue only when it ran out of buffers, and on the TX queue whenever its
 * TX bottom half is idle, so in practice every order notifies and an RX
 * release notifies only after the ring ran dry.
 *
 * Every buffer starts with the 12-byte struct virtio_net_hdr (5.1.6): the
 * driver hides it, so rx_poll and tx_buffer hand out the frame start as the
 * e1000 driver does.
 *
 * RX ring depth: as deep as the device's queue (QEMU: rx_queue_size, 256 by
 * default, at most 1024 = VIRTIO_QUEUE_MAX), every buffer posted up front;
 * no buffer is kept back (virtio has no RDH == RDT ambiguity). When the
 * vCPU stalls on the host and the ring fills, QEMU does not drop: it stops
 * reading the tap, so frames wait in the host's tap queue (txqueuelen) and
 * come in after the next release, which notifies because QEMU asked for it.
 * Loss starts only when that host queue overflows, which the guest cannot
 * see (no counter here can show it; compare frames in with frames sent).
 *
 * What read_stats reports for virtio (virtio-net has no MPC/RNBC/ROC):
 *   rx_missed    used entries the driver could not use and dropped: a head
 *                id outside the ring, a length below the header or above
 *                the buffer, num_buffers 0 or larger than the ring. QEMU
 *                produces none; non-zero means a device or driver bug.
 *   rx_no_buffer releases that found the device with every posted buffer
 *                used (it had nowhere to put a frame and QEMU had stopped
 *                reading the tap; see RX ring depth above): an event
 *                count, not a frame count.
 *   rx_oversize  frames longer than VNET_FRAME_MAX, dropped here. With
 *                VIRTIO_NET_F_MRG_RXBUF (negotiated when offered) QEMU
 *                spreads a frame longer than one buffer over num_buffers
 *                buffers, so every oversized frame is seen and counted.
 *                Without it QEMU drops a frame that does not fit one buffer
 *                before the guest sees it (virtio_net_receive_rcu: unpop),
 *                and only frames up to a buffer's size are counted.
 */
#include "drivers/virtio_net.h"
#include "drivers/nic.h"
#include "drivers/virtio_regs.h"
#include "drivers/pci.h"
#include "drivers/mmio.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/tsc.h"
#include "runtime/kprintf.h"
#include <stdbool.h>
#include <stddef.h>


#define VNET_RXQ        0   /* receiveq1, 5.1.2 */
#define VNET_TXQ        1   /* transmitq1 */
#define VNET_CFG_TRIES  8    /* config_generation re-reads before giving up (2.4.1) */
#define VNET_FEATURES   ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MAC) | \
			 (1ull << VIRTIO_NET_F_STATUS) | (1ull << VIRTIO_NET_F_MRG_RXBUF))

static struct virtq_desc rx_desc[VIRTIO_QUEUE_MAX] __attribute__((aligned(4096)));
static struct virtq_avail rx_avail __attribute__((aligned(4096)));
static struct virtq_used rx_used __attribute__((aligned(4096)));
static struct virtq_desc tx_desc[VIRTIO_QUEUE_MAX] __attribute__((aligned(4096)));
static struct virtq_avail tx_avail __attribute__((aligned(4096)));
static struct virtq_used tx_used __attribute__((aligned(4096)));
_Static_assert(VIRTIO_QUEUE_MAX <= NIC_RX_RING, "RX buffers: nic_rx_buf (nic.h)");
struct vnet_tx_buf vnet_tx_bufs[NIC_TX_RING] __attribute__((aligned(64)));
struct virtio_net vnet_nic;
static const struct nic_ops vnet_ops;

static inline struct virtio_net *V(struct nic *n)
{
	return (struct virtio_net *)n;
}

/* 64-bit common-config fields as two 32-bit halves, which 4.1.3.1 allows. */
static inline void reg_write64(volatile uint8_t *base, uint32_t lo, uint32_t hi, uint64_t v)
{
	reg_write32(base, lo, (uint32_t)v);
	reg_write32(base, hi, (uint32_t)(v >> 32));
}

static void vnet_status_set(struct virtio_net *n, uint8_t bits)
{
	uint8_t s = reg_read8(n->common, VIRTIO_PCI_COMMON_STATUS);

	reg_write8(n->common, VIRTIO_PCI_COMMON_STATUS, (uint8_t)(s | bits));
}

/* 3.1.1: "If any of these steps go irrecoverably wrong, the driver SHOULD
 * set the FAILED status bit". */
static struct nic *vnet_fail(struct virtio_net *n)
{
	if (n->common)
		vnet_status_set(n, VIRTIO_CONFIG_S_FAILED);
	return NULL;
}

/* --- bring-up, one step per function -------------------------------------- */

/* 4.1.4.1: the first capability of each type is the one to use. The BAR it
 * names is mapped (and assigned when firmware left it at 0). */
static int vnet_map_cap(struct virtio_net *n, uint8_t cap)
{
	struct pci_addr a = n->pci.addr;
	uint8_t type = pci_read8(a, (uint8_t)(cap + VIRTIO_PCI_CAP_CFG_TYPE));
	volatile uint8_t **where = type == VIRTIO_PCI_CAP_COMMON_CFG ? &n->common
				 : type == VIRTIO_PCI_CAP_NOTIFY_CFG ? &n->notify_base
				 : type == VIRTIO_PCI_CAP_DEVICE_CFG ? &n->device : NULL;
	uint8_t bar = pci_read8(a, (uint8_t)(cap + VIRTIO_PCI_CAP_BAR));

	if (!where || *where || bar > 5) /* ISR and PCI_CFG unused; BAR 6, 7 reserved */
		return 0;
	volatile uint8_t *base = pci_map_mem_bar(a, bar, "virtio-net");
	if (!base)
		return -1;
	*where = base + pci_read32(a, (uint8_t)(cap + VIRTIO_PCI_CAP_OFFSET));
	if (type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
		n->notify_mult = pci_read32(a, (uint8_t)(cap + VIRTIO_PCI_NOTIFY_CAP_MULT));
		n->notify_len = pci_read32(a, (uint8_t)(cap + VIRTIO_PCI_CAP_LENGTH));
	}
	return 0;
}

/* PCI side: the virtio structures (4.1.4), memory decoding, bus mastering
 * for ring and buffer DMA, INTx off (this driver polls). */
static int vnet_pci_setup(struct virtio_net *n, const struct pci_device *d)
{
	struct pci_addr a = d->addr;

	n->pci = *d;
	for (uint8_t c = pci_find_cap(a, PCI_CAP_ID_VNDR, 0); c; c = pci_find_cap(a, PCI_CAP_ID_VNDR, c))
		if (vnet_map_cap(n, c) < 0)
			return -1;
	if (!n->common || !n->notify_base || !n->device) {
		kprintf("virtio-net: %02x:%02x.%x has no modern virtio capabilities (common %s, "
			"notify %s, device %s): a legacy-only device, which this driver does not "
			"drive (QEMU: disable-modern=off)\n", a.bus, a.dev, a.fn,
			n->common ? "yes" : "no", n->notify_base ? "yes" : "no",
			n->device ? "yes" : "no");
		return -1;
	}
	pci_enable_bus_master(a);
	pci_write16(a, PCI_COMMAND, pci_read16(a, PCI_COMMAND) | PCI_COMMAND_INTX_DISABLE);
	return 0;
}

/* 3.1.1 steps 1-3 and 4.1.4.3.2: write 0 to device_status and wait until it
 * reads back 0, then ACKNOWLEDGE and DRIVER. */
static int vnet_reset(struct virtio_net *n)
{
	reg_write8(n->common, VIRTIO_PCI_COMMON_STATUS, 0);
	if (reg_wait8(n->common, VIRTIO_PCI_COMMON_STATUS, 0xFF, 0, NIC_RESET_TIMEOUT_US) < 0) {
		kprintf("virtio-net: device_status did not read 0 within %u us of the reset\n",
			NIC_RESET_TIMEOUT_US);
		return -1;
	}
	vnet_status_set(n, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	vnet_status_set(n, VIRTIO_CONFIG_S_DRIVER);
	return 0;
}

static uint64_t vnet_device_features(struct virtio_net *n)
{
	reg_write32(n->common, VIRTIO_PCI_COMMON_DFSELECT, 0);
	uint64_t lo = reg_read32(n->common, VIRTIO_PCI_COMMON_DF);
	reg_write32(n->common, VIRTIO_PCI_COMMON_DFSELECT, 1);
	return lo | (uint64_t)reg_read32(n->common, VIRTIO_PCI_COMMON_DF) << 32;
}

/* 3.1.1 steps 4-6: take VERSION_1 and MAC (required) and STATUS and
 * MRG_RXBUF (when offered), refuse everything else, then check that the
 * device kept FEATURES_OK. */
static int vnet_negotiate(struct virtio_net *n)
{
	uint64_t offered = vnet_device_features(n);

	if (!(offered & (1ull << VIRTIO_F_VERSION_1))) {
		kprintf("virtio-net: the device does not offer VIRTIO_F_VERSION_1 (features "
			"0x%lx): a legacy device, which this driver does not drive\n", offered);
		return -1;
	}
	if (!(offered & (1ull << VIRTIO_NET_F_MAC))) {
		kprintf("virtio-net: the device does not offer VIRTIO_NET_F_MAC (features 0x%lx): "
			"no station address to use\n", offered);
		return -1;
	}
	n->features = offered & VNET_FEATURES;
	n->rx_mrg = (n->features >> VIRTIO_NET_F_MRG_RXBUF) & 1;
	reg_write32(n->common, VIRTIO_PCI_COMMON_GFSELECT, 0);
	reg_write32(n->common, VIRTIO_PCI_COMMON_GF, (uint32_t)n->features);
	reg_write32(n->common, VIRTIO_PCI_COMMON_GFSELECT, 1);
	reg_write32(n->common, VIRTIO_PCI_COMMON_GF, (uint32_t)(n->features >> 32));
	vnet_status_set(n, VIRTIO_CONFIG_S_FEATURES_OK);
	if (!(reg_read8(n->common, VIRTIO_PCI_COMMON_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK)) {
		kprintf("virtio-net: the device refused features 0x%lx (FEATURES_OK clear, "
			"3.1.1 step 6)\n", n->features);
		return -1;
	}
	return 0;
}

/* The largest power of two <= v (v >= 1). */
static uint16_t pow2_floor(uint16_t v)
{
	uint16_t p = 1;

	while ((uint16_t)(p << 1) != 0 && (uint16_t)(p << 1) <= v)
		p = (uint16_t)(p << 1);
	return p;
}

/* 4.1.5.1.3: select the queue, read its size (0: it does not exist), write
 * the size used here (the device's, capped at max: the driver may ask for
 * less), the three ring addresses and no MSI-X vector; find its doorbell.
 * Not enabled yet: the caller fills the rings first. */
static int vnet_setup_queue(struct virtio_net *n, struct virtq *q, uint16_t index, uint16_t max)
{
	reg_write16(n->common, VIRTIO_PCI_COMMON_Q_SELECT, index);
	uint16_t dev_size = reg_read16(n->common, VIRTIO_PCI_COMMON_Q_SIZE);
	if (dev_size == 0) {
		kprintf("virtio-net: queue %u does not exist (queue_size 0)\n", index);
		return -1;
	}
	q->index = index;
	q->size = pow2_floor(dev_size < max ? dev_size : max);
	q->mask = (uint16_t)(q->size - 1);
	reg_write16(n->common, VIRTIO_PCI_COMMON_Q_SIZE, q->size);
	reg_write64(n->common, VIRTIO_PCI_COMMON_Q_DESCLO, VIRTIO_PCI_COMMON_Q_DESCHI, dma_addr(q->desc));
	reg_write64(n->common, VIRTIO_PCI_COMMON_Q_AVAILLO, VIRTIO_PCI_COMMON_Q_AVAILHI, dma_addr(q->avail));
	reg_write64(n->common, VIRTIO_PCI_COMMON_Q_USEDLO, VIRTIO_PCI_COMMON_Q_USEDHI, dma_addr(q->used));
	reg_write16(n->common, VIRTIO_PCI_COMMON_Q_MSIX, VIRTIO_MSI_NO_VECTOR);
	uint64_t at = (uint64_t)reg_read16(n->common, VIRTIO_PCI_COMMON_Q_NOFF) * n->notify_mult;
	if (at + sizeof(uint16_t) > n->notify_len) {
		kprintf("virtio-net: queue %u doorbell at +0x%lx is outside the notify region "
			"(0x%x bytes)\n", index, at, n->notify_len);
		return -1;
	}
	q->notify = n->notify_base + at;
	q->avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT; /* we poll: 2.7.10 */
	return 0;
}

static void vnet_enable_queue(struct virtio_net *n, const struct virtq *q)
{
	reg_write16(n->common, VIRTIO_PCI_COMMON_Q_SELECT, q->index);
	reg_write16(n->common, VIRTIO_PCI_COMMON_Q_ENABLE, 1);
}

/* 5.1.5: receiveq1 filled with every buffer up front: descriptor i is
 * buffer i, device-writable, for good. */
static int vnet_init_rx(struct virtio_net *n)
{
	struct virtq *q = &n->rx;

	q->desc = rx_desc;
	q->avail = &rx_avail;
	q->used = &rx_used;
	if (vnet_setup_queue(n, q, VNET_RXQ, VIRTIO_QUEUE_MAX) < 0)
		return -1;
	for (uint16_t i = 0; i < q->size; i++) {
		q->desc[i] = (struct virtq_desc){ .addr = dma_addr(nic_rx_buf[i]), .len = NIC_BUF_SIZE,
						  .flags = VIRTQ_DESC_F_WRITE };
		q->avail->ring[i] = i;
	}
	n->rx_seen = 0;
	n->rx_avail = q->size;
	q->avail->idx = n->rx_avail;
	vnet_enable_queue(n, q);
	return 0;
}

/* transmitq1: descriptor i is TX buffer i (header + frame) for good, and so
 * is avail ring entry i, because frames go out in ring order; a send only
 * sets the length and publishes avail->idx. */
static int vnet_init_tx(struct virtio_net *n)
{
	struct virtq *q = &n->tx;

	q->desc = tx_desc;
	q->avail = &tx_avail;
	q->used = &tx_used;
	if (vnet_setup_queue(n, q, VNET_TXQ, NIC_TX_RING) < 0)
		return -1;
	for (uint16_t i = 0; i < q->size; i++) {
		vnet_tx_bufs[i].hdr = (struct virtio_net_hdr){ 0 }; /* no offloads, GSO_NONE */
		q->desc[i] = (struct virtq_desc){ .addr = dma_addr(&vnet_tx_bufs[i].hdr) };
		q->avail->ring[i] = i;
	}
	n->tx_avail = n->tx_used = 0;
	vnet_tx_next(n);
	q->avail->idx = 0;
	vnet_enable_queue(n, q);
	return 0;
}

/* 5.1.4: the MAC (and link status), read until config_generation is the
 * same before and after (2.4.1), so the six bytes belong together. */
static int vnet_read_config(struct virtio_net *n)
{
	for (int tries = 0; tries < VNET_CFG_TRIES; tries++) {
		uint8_t gen = reg_read8(n->common, VIRTIO_PCI_COMMON_CFGGENERATION);
		for (uint32_t i = 0; i < 6; i++)
			n->mac[i] = reg_read8(n->device, VIRTIO_NET_CFG_MAC + i);
		if (n->features & (1ull << VIRTIO_NET_F_STATUS))
			n->link = reg_read16(n->device, VIRTIO_NET_CFG_STATUS);
		if (reg_read8(n->common, VIRTIO_PCI_COMMON_CFGGENERATION) == gen)
			return 0;
	}
	kprintf("virtio-net: config_generation kept changing over %d reads\n", VNET_CFG_TRIES);
	return -1;
}

static struct nic *vnet_open(const struct pci_device *d)
{
	struct virtio_net *n = &vnet_nic;

	*n = (struct virtio_net){ .nic = { .ops = &vnet_ops, .name = "virtio-net",
					     .kind = NIC_KIND_VIRTIO } };
	if (vnet_pci_setup(n, d) < 0)
		return NULL;
	reg_write16(n->common, VIRTIO_PCI_COMMON_MSIX, VIRTIO_MSI_NO_VECTOR);
	if (vnet_reset(n) < 0 || vnet_negotiate(n) < 0 || vnet_init_rx(n) < 0 ||
	    vnet_init_tx(n) < 0 || vnet_read_config(n) < 0)
		return vnet_fail(n);
	vnet_status_set(n, VIRTIO_CONFIG_S_DRIVER_OK); /* 3.1.1 step 8 */
	vnet_notify(&n->rx); /* the RX buffers are there: let a waiting device look */
	kprintf("virtio-net: %02x:%02x.%x features 0x%lx mac %02x:%02x:%02x:%02x:%02x:%02x "
		"link %s rx ring %u tx ring %u\n", n->pci.addr.bus, n->pci.addr.dev,
		n->pci.addr.fn, n->features, n->mac[0], n->mac[1], n->mac[2], n->mac[3],
		n->mac[4], n->mac[5],
		!(n->features & (1ull << VIRTIO_NET_F_STATUS)) ? "unknown"
		: (n->link & VIRTIO_NET_S_LINK_UP) ? "up" : "down", n->rx.size, n->tx.size);
	return &n->nic;
}

static const uint8_t *vnet_mac(const struct nic *nn)
{
	return ((const struct virtio_net *)nn)->mac;
}

/* --- hot path: ring memory only, doorbells as documented ------------------ */

/* Give back every used RX entry consumed since the last release: the entry
 * used at position k is re-posted at avail position k + size. */
static void vnet_rx_release(struct nic *nn)
{
	struct virtio_net *n = V(nn);
	struct virtq *q = &n->rx;

	if ((uint16_t)(n->rx_avail - q->size) == n->rx_seen)
		return;
	if (q->used->idx == n->rx_avail)
		n->rx_dry++; /* the device has used every posted buffer */
	for (; (uint16_t)(n->rx_avail - q->size) != n->rx_seen; n->rx_avail++)
		q->avail->ring[n->rx_avail & q->mask] =
			(uint16_t)q->used->ring[(uint16_t)(n->rx_avail - q->size) & q->mask].id;
	n->rx_releases++;
	if (vnet_publish(q, n->rx_avail))
		n->rx_notifies++;
}

/* The used entry at rx_seen is no frame to pass up: too long (over
 * VNET_FRAME_MAX, or spread over num_buffers > 1 buffers), or unusable
 * (counted in rx_bad). Consume its entries; re-post them at once when the
 * caller holds no frame (else its next release does). -1 when the rest of a
 * multi-buffer frame is not in the used ring yet (QEMU publishes them all
 * at once, so this only waits on another device). */
static int vnet_rx_drop(struct virtio_net *n, uint16_t used_idx)
{
	struct virtq *q = &n->rx;
	volatile struct virtq_used_elem *e = &q->used->ring[n->rx_seen & q->mask];
	uint32_t id = e->id, len = e->len;
	bool nothing_held = (uint16_t)(n->rx_avail - q->size) == n->rx_seen;
	uint16_t nb = 1;

	if (id >= q->size || len < VNET_HDR_LEN || len > NIC_BUF_SIZE) {
		n->rx_bad++;
	} else {
		if (n->rx_mrg)
			nb = ((const volatile struct virtio_net_hdr *)nic_rx_buf[id])->num_buffers;
		if (nb == 0 || nb > q->size) {
			n->rx_bad++;
			nb = 1;
		} else if ((uint16_t)(used_idx - n->rx_seen) < nb) {
			return -1;
		} else {
			n->rx_oversize++;
		}
	}
	n->rx_seen = (uint16_t)(n->rx_seen + nb);
	if (nothing_held)
		vnet_rx_release(&n->nic);
	return 0;
}

static const uint8_t *vnet_rx_poll(struct nic *nn, uint16_t *len)
{
	struct virtio_net *n = V(nn);
	struct virtq *q = &n->rx;
	uint16_t used_idx;

	/* 1. Anything new in the used ring? (memory: QEMU writes it) */
	while ((used_idx = q->used->idx) != n->rx_seen) {
		compiler_barrier(); /* the entry and the buffer after idx (x86: loads in order) */
		volatile struct virtq_used_elem *e = &q->used->ring[n->rx_seen & q->mask];
		uint32_t id = e->id, ulen = e->len;
		/* 2. The common case: one buffer, a frame of Ethernet size. */
		if (__builtin_expect(id < q->size && ulen > VNET_HDR_LEN &&
				     ulen - VNET_HDR_LEN <= VNET_FRAME_MAX &&
				     (!n->rx_mrg ||
				      ((const volatile struct virtio_net_hdr *)nic_rx_buf[id])->num_buffers == 1),
				     1)) {
			n->rx_seen++;
			*len = (uint16_t)(ulen - VNET_HDR_LEN);
			return nic_rx_buf[id] + VNET_HDR_LEN;
		}
		/* 3. Otherwise drop and count it, and look again. */
		if (vnet_rx_drop(n, used_idx) < 0)
			return NULL;
	}
	return NULL;
}

/* Retire frames the device has finished. They come back in ring order
 * (QEMU's virtio_net_flush_tx pops and pushes in order), which the fixed
 * descriptor = slot mapping relies on; anything else is counted. */
static void vnet_tx_reclaim(struct virtio_net *n)
{
	struct virtq *q = &n->tx;
	uint16_t used_idx = q->used->idx;

	compiler_barrier();
	for (; n->tx_used != used_idx; n->tx_used++)
		if (q->used->ring[n->tx_used & q->mask].id != (uint32_t)(n->tx_used & q->mask))
			n->tx_out_of_order++;
}

bool vnet_tx_room(struct virtio_net *n)
{
	vnet_tx_reclaim(n);
	vnet_tx_next(n);
	return !n->tx_full;
}

static uint8_t *vnet_tx_buffer(struct nic *nn, uint16_t *slot)
{
	return vnet_tx_buffer_inline(V(nn), slot);
}

static uint8_t *vnet_tx_slot(struct nic *n, uint16_t i)
{
	(void)n;
	return i < NIC_TX_RING ? vnet_tx_bufs[i].frame : NULL;
}

static uint64_t vnet_tx_commit(struct nic *nn, uint16_t len)
{
	uint64_t tsc = vnet_tx_commit_inline(V(nn), len);

	vnet_tx_next(V(nn));
	return tsc;
}

static int vnet_tx_flush(struct nic *nn, uint32_t timeout_us)
{
	struct virtio_net *n = V(nn);
	uint64_t deadline = tsc_deadline(timeout_us);

	for (vnet_tx_reclaim(n); n->tx_used != n->tx_avail; vnet_tx_reclaim(n)) {
		if (tsc_expired(deadline))
			return -1;
		cpu_pause();
	}
	return 0;
}

/* The counters at the top of the file, plus one line with the doorbell
 * bookkeeping (how often the device asked to be notified). */
static void vnet_read_stats(struct nic *nn, struct nic_stats *s)
{
	struct virtio_net *n = V(nn);

	s->rx_missed = n->rx_bad;
	s->rx_no_buffer = n->rx_dry;
	s->rx_oversize = n->rx_oversize;
	kprintf("virtio-net: rx releases %lu (notified %lu), tx frames %lu (notified %lu), "
		"tx completions out of order %lu\n", n->rx_releases, n->rx_notifies, n->tx_frames,
		n->tx_notifies, n->tx_out_of_order);
}

static const struct nic_ops vnet_ops = {
	.mac = vnet_mac,
	.rx_poll = vnet_rx_poll,
	.rx_release = vnet_rx_release,
	.tx_buffer = vnet_tx_buffer,
	.tx_slot = vnet_tx_slot,
	.tx_commit = vnet_tx_commit,
	.tx_flush = vnet_tx_flush,
	.read_stats = vnet_read_stats,
};

static const uint16_t vnet_devices[] = { VIRTIO_PCI_DEV_NET_MODERN, VIRTIO_PCI_DEV_NET_LEGACY, 0 };

const struct nic_driver virtio_net_driver = {
	.name = "virtio-net (modern PCI)",
	.vendor = VIRTIO_PCI_VENDOR,
	.devices = vnet_devices,
	.open = vnet_open,
};
