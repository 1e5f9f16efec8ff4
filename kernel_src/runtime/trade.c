/*
 * trade.c - the hot loop of HFT-OS: RX descriptor -> MoldUDP64/ITCH -> book
 * -> strategy -> risk -> OUCH frame -> TDT, with nothing in between.
 *
 * One core, no interrupts, no copies. The loop spins on the DD bit of the
 * next RX descriptor (memory, not a device register), stamps the TSC when it
 * sees it set (tsc_rx), and hands the frame in place to the classifier:
 * market data (net_udp_fast's combined checks, one compare of its
 * destination) goes straight into the engine (engine_packet); when the
 * engine emits an order, trade_emit encodes the OUCH message directly in a
 * TX buffer, writes TDT (the only doorbell of an order; the driver stamps
 * the TSC just before it, tsc_doorbell), stamps the TSC again (tsc_tx) and
 * logs the three stamps with the trigger sequence number. The loop runs one
 * copy per NIC driver (trade_run_e1000 etc.), with the engine, trade_emit
 * and the driver's tx_buffer/tx_commit inlined: no call from the stamp to
 * the doorbell but the core's own.
 *
 * An order's Ethernet/IPv4/UDP headers never change (same endpoints, same
 * length, and IPv4 ID 0: the datagram is atomic, DF set, so RFC 6864 §4.1
 * lets the ID be constant), and neither do most OUCH fields (type, instance,
 * time in force, firm, flags), so trade_start writes them once into every TX
 * buffer (net_build_udp, ouch_encode_template), trade_emit writes only the
 * token digits, side, shares, stock and price (ouch_encode_fields), and only
 * a buffer that last carried something else (an ARP frame) gets the
 * template again, on its next order.
 * RX buffers go back to the NIC with one RDT write per TRADE_RX_BATCH frames
 * and whenever the ring runs dry (QEMU stops receiving at RDH == RDT), and
 * an idle loop writes RDT every TRADE_RX_KICK_US (trade_poll says why).
 *
 * Everything else is counted: ARP (answered for ip_self), control messages
 * (STOP, KILL; only from ip_peer with the run's key), foreign ethertypes,
 * IP and UDP errors by enum net_status, datagrams to other ports. Nothing on
 * the hot path prints, reads a NIC register or allocates.
 */
#include "runtime/trade.h"
#include "runtime/param.h"
#include "runtime/kprintf.h"
#include "runtime/panic.h"
#include "runtime/ptp_slave.h"
#include "drivers/nic.h"
#include "drivers/e1000.h"
#include "drivers/igb.h"
#include "drivers/virtio_net.h"
#include "drivers/serial.h"
#include "arch/x86_64/ring.h"
#include "arch/x86_64/tsc.h"
#include "core/engine.h"
#include "core/hiccup.h"
#include "core/net.h"
#include "core/ouch.h"
#include "core/tslog.h"

#define ARP_OP_REQUEST 1 /* RFC 826 */
#define ARP_OP_REPLY   2
#define TRADE_PTP_LOCK_MAX_US 300000000u /* PTP slave: lock within 5 min, or trade without */

struct trade_counters {
	uint64_t frames_rx, frames_tx;
	uint64_t arp_requests;       /* ARP requests for ip_self */
	uint64_t arp_replies;        /* our answers to them */
	uint64_t arp_other;          /* other ARP: replies to us, requests for others, malformed */
	uint64_t foreign_ethertype;  /* neither IPv4 nor ARP */
	uint64_t ip_errors;          /* IPv4 refused (net_status), not UDP, or not to ip_self */
	uint64_t udp_errors;         /* UDP length inconsistent (NET_E_UDP_LEN) */
	uint64_t wrong_port;         /* UDP to ip_self on neither md_port nor ctl_port */
	uint64_t ctl_ok, ctl_rejected;
	uint64_t md_packets;         /* datagrams handed to the engine */
	uint64_t orders_sent;
	uint64_t tx_ring_full;       /* frames (orders or ARP replies) not sent: no TX buffer */
};

/* The first IPv4 frame refused (an IP or UDP error, or not to ip_self), as
 * it lay in its RX buffer: trade_finish prints it, so a count in
 * os_ip_errors/os_udp_errors comes with the bytes to compare with the
 * capture (damaged on the way in, or a frame nobody sent to us). */
#define TRADE_REFUSED_BYTES 64
struct trade_refused {
	uint64_t frame;              /* its number among the frames received, from 0 */
	int rc;                      /* enum net_status, or NET_OK: not to ip_self */
	uint16_t len;
	uint8_t bytes[TRADE_REFUSED_BYTES];
	bool seen;
};

struct trade {
	struct nic *nic;
	struct engine *eng;
	struct tslog log;
	struct net_endpoint self;    /* NIC MAC, ip_self, src_port: source of orders */
	struct net_endpoint exch;    /* mac_peer, ip_peer, order_port: where orders go */
	uint32_t ip_self, ip_peer;
	uint16_t md_port, ctl_port;
	uint64_t md_key;             /* net_udp_dst_key of ip_self:md_port */
	uint16_t rx_held;            /* frames polled since the last RDT write */
	uint64_t rx_kick;            /* TSC after which an idle loop writes RDT anyway */
	uint64_t rx_kick_cycles;     /* TRADE_RX_KICK_US in TSC cycles */
	bool tx_dirty[NIC_TX_RING];  /* TX buffer no longer holds the order template */
	struct ouch_seq_digits next_tok;  /* token digits of the next message in sequence */
	uint64_t ctl_key;
	uint64_t max_messages;       /* 0: no limit */
	uint64_t tsc_hz;
	uint64_t tsc_rx;             /* stamp of the frame being handled */
	bool stop;
	bool peer_answered;          /* an ARP reply from ip_peer came in */
	struct trade_counters c;
	struct trade_refused refused;
	struct hiccup hic;           /* the gap recorder (HFTOS_F_HICCUPS), before trading */
};

/* The frame length of an order (an OUCH Enter Order after the headers: no
 * padding), a constant of the order path; trade_setup_cpl3 checks the
 * template against it. */
#define TRADE_ORDER_LEN (NET_UDP_HDRS + OUCH_ENTER_LEN)
CORE_STATIC_ASSERT(TRADE_ORDER_LEN >= NET_ETH_MIN_FRAME, "an order needs no padding");

/* All run memory, static: .bss is zeroed by _start and identity mapped. */
static struct engine trade_engine;
static struct book_order book_orders[TRADE_BOOK_ORDERS];
static uint32_t book_index[TRADE_BOOK_INDEX];
static struct book_level book_levels[TRADE_BOOK_LEVELS];
static uint32_t book_lindex[TRADE_BOOK_LINDEX];
static struct tslog_rec log_recs[HFTOS_LOG_MAX];
static struct trade the_trade;

/* --- setup ---------------------------------------------------------------- */

/* The constant part of an order (see the top of the file) into TX buffer
 * f: headers, then the OUCH fields every order of this instance shares, at
 * NET_UDP_HDRS; trade_emit fills in the rest. */
static uint16_t trade_order_template(const struct trade *t, uint8_t *f)
{
	ouch_encode_template(f + NET_UDP_HDRS, NIC_BUF_SIZE - NET_UDP_HDRS, t->eng->instance);
	return (uint16_t)net_build_udp(f, NIC_BUF_SIZE, &t->self, &t->exch, OUCH_ENTER_LEN, 0);
}

/* The memory-only part of the set-up (the engine's tables, the log, the TX
 * buffers' templates), at CPL3: under KVM's PVM flavour it took 19 s of
 * emulated ring 0 (RITCH run, boot phase entry -> init), natively a few
 * ms. A refusal panics from CPL3 (panic moves to ring 0 first). */
static uint64_t trade_setup_cpl3(uint64_t cfg_addr)
{
	const struct hftos_config *cfg = (const struct hftos_config *)(uintptr_t)cfg_addr;
	struct trade *t = &the_trade;
	const struct book_mem mem = {
		.orders = book_orders, .order_cap = TRADE_BOOK_ORDERS,
		.index = book_index, .index_cap = TRADE_BOOK_INDEX,
		.levels = book_levels, .level_cap = TRADE_BOOK_LEVELS,
		.lindex = book_lindex, .lindex_cap = TRADE_BOOK_LINDEX,
	};

	t->eng = &trade_engine;
	if (!engine_init(t->eng, &cfg->engine, &mem))
		panic("config: engine_init refused the engine block (magic 0x%x version %u "
		      "instance %u; expected magic 0x%x version %u, instance <= 255)",
		      cfg->engine.magic, cfg->engine.version, cfg->engine.instance,
		      ENGINE_CONFIG_MAGIC, ENGINE_CONFIG_VERSION);
	tslog_init(&t->log, log_recs, cfg->log_capacity);
	__builtin_memcpy(t->self.mac, nic_mac(t->nic), sizeof(t->self.mac));
	t->self.ip = cfg->ip_self;
	t->self.port = cfg->src_port;
	__builtin_memcpy(t->exch.mac, cfg->mac_peer, sizeof(t->exch.mac));
	t->exch.ip = cfg->ip_peer;
	t->exch.port = cfg->order_port;
	t->ip_self = cfg->ip_self;
	t->ip_peer = cfg->ip_peer;
	t->md_port = cfg->md_port;
	t->md_key = net_udp_dst_key_of(cfg->ip_self, cfg->md_port);
	t->ctl_port = cfg->ctl_port;
	t->ctl_key = cfg->ctl_key;
	t->max_messages = cfg->max_messages;
	ouch_seq_digits_render(&t->next_tok, 0);  /* digits and seq always agree */
	for (uint16_t i = 0; i < NIC_TX_RING; i++) {
		uint16_t len = trade_order_template(t, nic_tx_slot(t->nic, i));
		if (len != TRADE_ORDER_LEN)
			panic("trade: an order template of %u bytes, not %u", len, TRADE_ORDER_LEN);
	}
	return 0;
}

void trade_start(const struct hftos_config *cfg, uint64_t tsc_hz)
{
	struct trade *t = &the_trade;

	if (!(t->nic = nic_open())) /* PCI config and NIC registers: ring 0 */
		panic("trade: no usable NIC (see the nic: line above)");
	t->tsc_hz = tsc_hz;
	t->rx_kick_cycles = tsc_us_to_cycles(TRADE_RX_KICK_US);
	ring_user_call(trade_setup_cpl3, (uint64_t)(uintptr_t)cfg);
	ptp_slave_start(t->nic, cfg, tsc_hz, t->self.mac, t->ip_self); /* prints: ring 0 */
}

/* --- frame handlers (classification order: trade_frame) ----------------- */

/* Every message the engine looked at, decoded or not (ITCH counters). */
static uint64_t trade_messages(const struct engine *e)
{
	return e->itch.messages + e->itch.unknown_type + e->itch.bad_length + e->itch.empty;
}

/* The order path's two driver calls, nic_tx_buffer and nic_tx_commit,
 * inlined from the driver's header for kind k (a constant wherever these
 * are used: each trade_emit_* below is one driver's copy), on the driver's
 * one NIC by its constant address (n is that NIC); through nic_ops for any
 * other driver (kind 0). The commit posts buffer slot, the one tx_buffer
 * handed out. */
static CORE_ALWAYS_INLINE uint8_t *trade_tx_buffer(struct nic *n, enum nic_kind k, uint16_t *slot)
{
	switch (k) {
	case NIC_KIND_E1000:
		return e1000_tx_buffer_inline(&e1000_nic, slot);
	case NIC_KIND_IGB:
		return igb_tx_buffer_inline(&igb_nic, slot);
	case NIC_KIND_VIRTIO:
		return vnet_tx_buffer_inline(&vnet_nic, slot);
	}
	return nic_tx_buffer(n, slot);
}

static CORE_ALWAYS_INLINE uint64_t trade_tx_commit(struct nic *n, enum nic_kind k, uint16_t slot,
						   uint16_t len)
{
	switch (k) {
	case NIC_KIND_E1000:
		return e1000_tx_commit_at(&e1000_nic, slot, len);
	case NIC_KIND_IGB:
		return igb_tx_commit_at(&igb_nic, slot, len, 0);
	case NIC_KIND_VIRTIO:
		return vnet_tx_commit_inline(&vnet_nic, len);
	}
	return nic_tx_commit(n, len);
}

/* After an order is out (tsc_tx read): the driver works out the next
 * frame's buffer (e1000_tx_next etc.), so the next order's tx_buffer only
 * reads it. Through nic_ops the commit did it already. */
static CORE_ALWAYS_INLINE void trade_tx_next(enum nic_kind k)
{
	switch (k) {
	case NIC_KIND_E1000:
		e1000_tx_next(&e1000_nic);
		break;
	case NIC_KIND_IGB:
		igb_tx_next(&igb_nic);
		break;
	case NIC_KIND_VIRTIO:
		vnet_tx_next(&vnet_nic);
		break;
	}
}

/* The order frame of len bytes in the TX buffer goes out: doorbell (TDT
 * written by the driver's tx_commit, which returns the TSC it read just
 * before), TSC, log, then the driver's next buffer (trade_tx_next). */
static CORE_ALWAYS_INLINE void trade_send_order(struct trade *t, enum nic_kind k, uint16_t slot,
						const struct order_intent *o, uint16_t len)
{
	uint64_t tsc_doorbell = trade_tx_commit(t->nic, k, slot, len);
	uint64_t tsc_tx = tsc_read_ordered();
	*tslog_next(&t->log) = (struct tslog_rec){
		.trigger_seq = o->trigger_seq, .tsc_rx = t->tsc_rx, .tsc_doorbell = tsc_doorbell,
		.tsc_tx = tsc_tx, .ptp_ns = ptp_slave_time(t->tsc_rx),
		.price = o->price, .shares = o->shares, .locate = o->locate, .side = o->side,
	};
	t->c.orders_sent++;
	t->c.frames_tx++;
	trade_tx_next(k);
}

/* A resting order, replace or cancel (strategy.h: a quoting strategy): the
 * whole message and its headers into f, which loses its template. Out of
 * line, so the IOC path below keeps its registers. */
static CORE_NOINLINE void trade_emit_resting(struct trade *t, uint8_t *f, uint16_t slot,
					     const struct order_intent *o)
{
	size_t n = ouch_encode_intent(f + NET_UDP_HDRS, NIC_BUF_SIZE - NET_UDP_HDRS, o,
				      t->eng->instance);

	t->tx_dirty[slot] = true;
	trade_send_order(t, 0, slot, o, (uint16_t)net_build_udp(f, NIC_BUF_SIZE, &t->self,
								 &t->exch, (uint16_t)n, 0));
}

/* An order into TX buffer f (slot) that lost its template (it last carried
 * an ARP frame): the template again, then as trade_emit. Out of line, like
 * trade_emit_resting, so trade_emit keeps f in a scratch register; the
 * driver through nic_ops (kind 0): once per buffer after an ARP frame. */
static CORE_NOINLINE void trade_emit_retemplate(struct trade *t, uint8_t *f, uint16_t slot,
						const struct order_intent *o)
{
	trade_order_template(t, f);
	t->tx_dirty[slot] = false;
	ouch_encode_fields(f + NET_UDP_HDRS, o);
	trade_send_order(t, 0, slot, o, TRADE_ORDER_LEN);
}

/* engine_emit_fn: an accepted order, its variable fields written into the
 * pre-built template and sent; TDT is written by nic_tx_commit, which
 * returns the TSC it read just before (decide span tsc_rx .. tsc_doorbell,
 * doorbell span tsc_doorbell .. tsc_tx). ptp_ns: the PTP time of tsc_rx by
 * the PTP slave's mapping (HFTOS_F_PTP), 0 without it. One copy per driver
 * (trade_emit_of), its order path inlined. */
static CORE_ALWAYS_INLINE void trade_emit(void *ctx, const struct order_intent *o,
					  enum nic_kind k)
{
	struct trade *t = ctx;
	uint16_t slot;
	uint8_t *f = trade_tx_buffer(t->nic, k, &slot);

	if (CORE_UNLIKELY(!f)) {
		t->c.tx_ring_full++;
		return;
	}
	if (CORE_UNLIKELY(o->kind != ORDER_ENTER)) {
		trade_emit_resting(t, f, slot, o);
		return;
	}
	if (CORE_UNLIKELY(t->tx_dirty[slot])) {
		trade_emit_retemplate(t, f, slot, o);
		return;
	}
	ouch_encode_fields_ahead(f + NET_UDP_HDRS, o, &t->next_tok);
	trade_send_order(t, k, slot, o, TRADE_ORDER_LEN);
}

static CORE_ALWAYS_INLINE void trade_emit_e1000(void *ctx, const struct order_intent *o)
{
	trade_emit(ctx, o, NIC_KIND_E1000);
}

static CORE_ALWAYS_INLINE void trade_emit_igb(void *ctx, const struct order_intent *o)
{
	trade_emit(ctx, o, NIC_KIND_IGB);
}

static CORE_ALWAYS_INLINE void trade_emit_virtio(void *ctx, const struct order_intent *o)
{
	trade_emit(ctx, o, NIC_KIND_VIRTIO);
}

static void trade_emit_ops(void *ctx, const struct order_intent *o)
{
	trade_emit(ctx, o, 0);
}

/* The engine's emit callback for driver kind k: a constant wherever k is,
 * so engine_packet (engine.h, inline) inlines it and the order path has no
 * indirect call at all. */
static CORE_ALWAYS_INLINE engine_emit_fn trade_emit_of(enum nic_kind k)
{
	switch (k) {
	case NIC_KIND_E1000:
		return trade_emit_e1000;
	case NIC_KIND_IGB:
		return trade_emit_igb;
	case NIC_KIND_VIRTIO:
		return trade_emit_virtio;
	}
	return trade_emit_ops;
}

/* An ARP request (tha unused) or reply from us; false when the TX ring is
 * full. The buffer loses its order template (tx_dirty). */
static bool trade_send_arp(struct trade *t, uint16_t op, const uint8_t tha[6], uint32_t tpa)
{
	uint16_t slot;
	uint8_t *f = nic_tx_buffer(t->nic, &slot);

	if (!f) {
		t->c.tx_ring_full++;
		return false;
	}
	t->tx_dirty[slot] = true;
	size_t len = net_build_arp(f, NIC_BUF_SIZE, op, t->self.mac, t->ip_self, tha, tpa);
	nic_tx_commit(t->nic, (uint16_t)len);
	t->c.frames_tx++;
	return true;
}

/* RFC 826: answer requests for ip_self; a reply from ip_peer tells
 * trade_wait_ready that frames reach us. */
static void trade_arp(struct trade *t, const uint8_t *f, uint16_t len)
{
	struct net_arp a;

	if (net_parse_arp(f, len, &a) != NET_OK) {
		t->c.arp_other++;
		return;
	}
	if (a.oper == ARP_OP_REQUEST && a.tpa == t->ip_self) {
		t->c.arp_requests++;
		if (trade_send_arp(t, ARP_OP_REPLY, a.sha, a.spa))
			t->c.arp_replies++;
		return;
	}
	if (a.oper == ARP_OP_REPLY && a.spa == t->ip_peer)
		t->peer_answered = true;
	t->c.arp_other++;
}

/* struct hftos_ctl from ip_peer with the run's key; anything else is
 * rejected and counted. */
static void trade_control(struct trade *t, const struct net_udp_view *v)
{
	struct hftos_ctl m;

	if (v->ip_src != t->ip_peer || v->payload_len != sizeof(m)) {
		t->c.ctl_rejected++;
		return;
	}
	__builtin_memcpy(&m, v->payload, sizeof(m));
	if (m.magic != HFTOS_CTL_MAGIC || m.key != t->ctl_key ||
	    (m.cmd != HFTOS_CTL_STOP && m.cmd != HFTOS_CTL_KILL)) {
		t->c.ctl_rejected++;
		return;
	}
	t->c.ctl_ok++;
	if (m.cmd == HFTOS_CTL_STOP)
		t->stop = true;
	else
		risk_set_kill(&t->eng->risk, true);
}

/* Keep the first refused IPv4 frame (struct trade_refused). */
static void trade_keep_refused(struct trade *t, const uint8_t *f, uint16_t len, int rc)
{
	struct trade_refused *r = &t->refused;

	if (r->seen)
		return;
	r->seen = true;
	r->frame = t->c.frames_rx;
	r->rc = rc;
	r->len = len;
	core_memcpy(r->bytes, f, len < TRADE_REFUSED_BYTES ? len : TRADE_REFUSED_BYTES);
}

/* A frame that net_parse_udp refused with rc: ARP, another ethertype, or an
 * IPv4/UDP error. */
static void trade_not_udp(struct trade *t, const uint8_t *f, uint16_t len, int rc)
{
	if (rc == NET_E_ETHERTYPE) {
		uint16_t et = net_ethertype(f, len);
		if (et == NET_ETHERTYPE_ARP)
			trade_arp(t, f, len);
		else if (et == PTP_ETHERTYPE && ptp_slave_on)
			ptp_slave_frame(f + NET_ETH_HDR, (uint16_t)(len - NET_ETH_HDR), t->tsc_rx, false);
		else
			t->c.foreign_ethertype++;
	} else {
		if (rc == NET_E_UDP_LEN)
			t->c.udp_errors++;
		else
			t->c.ip_errors++; /* short, version, header, checksum, length, fragment, not UDP */
		trade_keep_refused(t, f, len, rc);
	}
}

/* A frame that is not market data for us (trade_frame's cold half),
 * parsed again here by net_parse_udp, which names the reason of a refusal
 * (net_udp_fast only says no). Out of line, so the market-data path keeps
 * its registers and its view in them. */
static CORE_NOINLINE void trade_other(struct trade *t, const uint8_t *f, uint16_t len)
{
	struct net_udp_view view;
	const struct net_udp_view *v = &view;
	int rc = net_parse_udp(f, len, &view);

	if (rc != NET_OK) {
		trade_not_udp(t, f, len, rc);
		return;
	}
	if (v->ip_dst != t->ip_self) {
		if (v->ip_dst == PTP_MCAST_IP && ptp_slave_on &&
		    (v->dst_port == PTP_EVENT_PORT || v->dst_port == PTP_GENERAL_PORT))
			ptp_slave_frame(v->payload, v->payload_len, t->tsc_rx, true);
		else {
			t->c.ip_errors++;
			trade_keep_refused(t, f, len, NET_OK);
		}
		return;
	}
	if (v->dst_port == t->ctl_port)
		trade_control(t, v);
	else if ((v->dst_port == PTP_EVENT_PORT || v->dst_port == PTP_GENERAL_PORT) && ptp_slave_on)
		ptp_slave_frame(v->payload, v->payload_len, t->tsc_rx, true);
	else
		t->c.wrong_port++;
}

/* One received frame, in place in its RX buffer, on a NIC of driver kind
 * k. Market data (UDP to ip_self:md_port) is the path a tick takes, inline
 * in the poll loop: the UDP payload is the MoldUDP64 datagram, decoded
 * where the NIC put it (engine_packet, inline), and orders leave from the
 * driver's trade_emit, inlined too, before it returns; the counters are
 * bumped after it, off the tick's path. Everything else goes to
 * trade_other. */
static CORE_ALWAYS_INLINE void trade_frame(struct trade *t, const uint8_t *f, uint16_t len,
					   enum nic_kind k)
{
	struct net_udp_view v;

	if (CORE_LIKELY(net_udp_fast(f, len, &v) && net_udp_dst_key(f) == t->md_key)) {
		engine_packet(t->eng, v.payload, v.payload_len, trade_emit_of(k), t);
		/* After any order is out: the token digits of the message
		 * expected next, which trade_emit copies (one digit step per
		 * datagram in sequence, so the count of a tick never depends on
		 * the timing of the frames before it). */
		ouch_seq_digits_follow(&t->next_tok, engine_expected_seq(t->eng));
		t->c.md_packets++;
		if (t->max_messages && trade_messages(t->eng) >= t->max_messages)
			t->stop = true;
	} else {
		trade_other(t, f, len);
	}
	t->c.frames_rx++;
}

/* trade_frame through nic_ops, out of line: for the loops that wait (ARP,
 * the PTP lock, the gap recorder) and a driver without an inline order
 * path, so the engine is inlined once per driver and once for them. */
static CORE_NOINLINE void trade_frame_ops(struct trade *t, const uint8_t *f, uint16_t len)
{
	trade_frame(t, f, len, 0);
}

/* --- ready ---------------------------------------------------------------- */

/* Hand back every RX buffer polled since the last RDT write. */
static inline void trade_rx_release(struct trade *t)
{
	nic_rx_release(t->nic);
	t->rx_held = 0;
}

static void print_ip(const char *prefix, uint32_t ip)
{
	kprintf("%s%u.%u.%u.%u", prefix, ip >> 24, (ip >> 16) & 0xFF, (ip >> 8) & 0xFF, ip & 0xFF);
}

/* QEMU's e1000 holds every frame back for about a second after the RCTL
 * write (its flush-queue timer, on the virtual clock) and then delivers the
 * backlog. An ARP reply from the peer is the proof that this window is over
 * and that the peer (QEMU's slirp, or the replayer's host) knows our MAC.
 * Frames that arrive meanwhile go through the normal classifier. */
void trade_wait_ready(void)
{
	struct trade *t = &the_trade;
	uint64_t start = tsc_read(), give_up = start + tsc_us_to_cycles(TRADE_READY_MAX_US);
	uint64_t next_arp = start;

	while (!t->peer_answered) {
		uint64_t now = tsc_read();
		if ((int64_t)(now - give_up) > 0) {
			kprintf("trade: warning: no ARP reply from the peer in %u ms; going on\n",
				TRADE_READY_MAX_US / 1000);
			break;
		}
		if ((int64_t)(now - next_arp) >= 0) {
			trade_send_arp(t, ARP_OP_REQUEST, NULL, t->ip_peer);
			next_arp = now + tsc_us_to_cycles(TRADE_ARP_EVERY_US);
		}
		uint16_t len;
		const uint8_t *f = nic_rx_poll(t->nic, &len);
		if (f) {
			t->tsc_rx = tsc_read_ordered();
			trade_frame_ops(t, f, len);
			trade_rx_release(t);
		}
	}
	kprintf("trade: RX open after %lu us\n", (tsc_read() - start) / tsc_us_to_cycles(1));
	kprintf("boot: phase ready tsc=%lu\n", tsc_read());
	const uint8_t *m = t->self.mac;
	print_ip("HFTOS READY ip=", t->ip_self);
	kprintf(" mac=%02x:%02x:%02x:%02x:%02x:%02x md_port=%u tsc_hz=%lu\n", m[0], m[1], m[2],
		m[3], m[4], m[5], t->md_port, t->tsc_hz);
}

/* --- the hot loop --------------------------------------------------------- */

/* One turn of the poll loop: a frame handled, or an idle poll; k: the
 * driver whose order path is inlined (trade_frame), 0 for trade_frame_ops. */
static CORE_ALWAYS_INLINE void trade_poll(struct trade *t, enum nic_kind k)
{
	uint16_t len;
	/* 1. Poll the DD bit of the next RX descriptor (descriptor memory). */
	const uint8_t *f = nic_rx_poll(t->nic, &len);
	if (!f) {
		/* 2. Idle: give held buffers back now, so the NIC never
		 *    waits on a batch that is not filling up; and every
		 *    TRADE_RX_KICK_US of idling write RDT even with nothing
		 *    held: under KVM (PVM) QEMU's e1000 was seen to stop
		 *    delivering with frames queued (STOP and ARPs unanswered,
		 *    the loop idle at CPL3), and an RDT write is what flushes
		 *    its queue. */
		if (t->rx_held) {
			trade_rx_release(t);
			t->rx_kick = tsc_read() + t->rx_kick_cycles;
		} else if ((int64_t)(tsc_read() - t->rx_kick) > 0) {
			nic_rx_release(t->nic);
			t->rx_kick = tsc_read() + t->rx_kick_cycles;
		}
		if (CORE_UNLIKELY(ptp_slave_work)) /* PTP only when no tick waits */
			ptp_slave_idle(t->tx_dirty);
		return;
	}
	/* 3. The frame is done: stamp it before anything else. */
	t->tsc_rx = tsc_read_ordered();
	/* 4. Classify and act; an order goes out inside trade_emit. */
	if (k)
		trade_frame(t, f, len, k);
	else
		trade_frame_ops(t, f, len);
	/* 5. Batched RX doorbell: one RDT write per TRADE_RX_BATCH frames. */
	if (++t->rx_held >= TRADE_RX_BATCH)
		trade_rx_release(t);
}

/* The loop and the gap recorder run at CPL3 (arch/x86_64/ring.h): natively
 * under KVM's PVM flavour, where ring 0 is emulated; under TCG and
 * hardware KVM the same code at the same speed. They touch only memory,
 * rdtsc and the NIC's MMIO registers; the prints stay at ring 0.
 *
 * The doorbells (TDT, RDT) are written directly at CPL3: the cheapest way
 * from here on every accel. Cycles per e1000 TDT write, 200 writes, three
 * rounds (min-max), a scratch build of this runtime, qboot, shared machine:
 *                            PVM-KVM (2.445 GHz)   TCG
 *   MMIO at CPL3             101,356-134,034       452-908
 *   MMIO at ring 0 (boot)     58,394-170,061       458-822
 *   #UD gate, write at ring 0 289,215-608,031      1,665-2,330
 *   syscall, write, iretq    257,721-556,580       1,222-1,884
 * (under PVM the syscall's target still runs at CPL3, see ring.h; a
 * doorbell is an exit to QEMU's device model whichever way: ~40-55 us.) */
static CORE_ALWAYS_INLINE void trade_run(struct trade *t, enum nic_kind k)
{
	while (!t->stop)
		trade_poll(t, k);
}

/* The loop once per driver, each with its whole tick path inline: RX
 * classification, the engine, the OUCH fields, the TX descriptor and the
 * doorbell. */
static CORE_NOINLINE void trade_run_e1000(struct trade *t)
{
	trade_run(t, NIC_KIND_E1000);
}

static CORE_NOINLINE void trade_run_igb(struct trade *t)
{
	trade_run(t, NIC_KIND_IGB);
}

static CORE_NOINLINE void trade_run_virtio(struct trade *t)
{
	trade_run(t, NIC_KIND_VIRTIO);
}

static uint64_t trade_loop_cpl3(uint64_t unused)
{
	struct trade *t = &the_trade;

	(void)unused;
	switch (t->nic->kind) {
	case NIC_KIND_E1000:
		trade_run_e1000(t);
		break;
	case NIC_KIND_IGB:
		trade_run_igb(t);
		break;
	case NIC_KIND_VIRTIO:
		trade_run_virtio(t);
		break;
	default:
		trade_run(t, 0);
	}
	trade_rx_release(t);
	return 0;
}

/* HFTOS_F_PTP: the loop as it will run, until the PTP slave locks (or
 * the deadline); hftlab starts the feed when it reads PTP LOCKED. */
static uint64_t trade_ptp_lock_cpl3(uint64_t deadline)
{
	struct trade *t = &the_trade;

	while (!ptp_slave_locked() && (int64_t)(tsc_read() - deadline) < 0 && !t->stop)
		trade_poll(t, 0);
	return 0;
}

void trade_loop(void)
{
	if (ptp_slave_on && ptp_slave_wait) {
		uint64_t t0 = tsc_read();
		ring_user_call(trade_ptp_lock_cpl3, t0 + tsc_us_to_cycles(TRADE_PTP_LOCK_MAX_US));
		ptp_slave_report_lock((tsc_read() - t0) / tsc_us_to_cycles(1000));
	}
	ring_user_call(trade_loop_cpl3, 0);
}

static uint64_t trade_hiccups_cpl3(uint64_t unused)
{
	struct trade *t = &the_trade;
	struct hiccup *h = &t->hic;

	(void)unused;
	do
		trade_poll(t, 0);
	while (hiccup_note(h, tsc_read()) && !t->stop);
	return 0;
}

void trade_hiccups(uint64_t duration_ns, uint64_t threshold_ns)
{
	struct trade *t = &the_trade;
	struct hiccup *h = &t->hic;

	hiccup_start(h, t->tsc_hz, duration_ns, threshold_ns, tsc_read());
	ring_user_call(trade_hiccups_cpl3, 0);
	kprintf("HICCUPS DONE iterations=%lu gaps=%lu max_ns=%lu\n", h->iterations, h->gaps,
		h->top_ns[0]);
}

/* --- end of run ----------------------------------------------------------- */

static void dump_to_serial(void *ctx, const char *buf, size_t len)
{
	(void)ctx;
	serial_write_raw(buf, len);
}

void trade_finish(void)
{
	struct trade *t = &the_trade;
	const struct engine *e = t->eng;
	struct nic_stats ns;
	struct tslog_dump d;

	nic_read_stats(t->nic, &ns);
	kprintf("trade: stopped: %lu frames in, %lu orders out, %lu ITCH messages\n",
		t->c.frames_rx, t->c.orders_sent, trade_messages(e));
	if (t->refused.seen) {
		const struct trade_refused *r = &t->refused;
		uint16_t n = r->len < TRADE_REFUSED_BYTES ? r->len : TRADE_REFUSED_BYTES;
		kprintf("trade: first refused frame: #%lu len %u status %d bytes ", r->frame, r->len, r->rc);
		for (uint16_t i = 0; i < n; i++)
			kprintf("%02x", r->bytes[i]);
		kprintf("\n");
	}
	const struct tslog_counter os[] = {
		{ "tsc_hz", t->tsc_hz },
		{ "os_frames_rx", t->c.frames_rx }, { "os_frames_tx", t->c.frames_tx },
		{ "os_arp_requests", t->c.arp_requests }, { "os_arp_replies", t->c.arp_replies },
		{ "os_arp_other", t->c.arp_other },
		{ "os_foreign_ethertype", t->c.foreign_ethertype },
		{ "os_ip_errors", t->c.ip_errors }, { "os_udp_errors", t->c.udp_errors },
		{ "os_wrong_port", t->c.wrong_port },
		{ "os_ctl_ok", t->c.ctl_ok }, { "os_ctl_rejected", t->c.ctl_rejected },
		{ "os_md_packets", t->c.md_packets }, { "os_orders_sent", t->c.orders_sent },
		{ "os_rx_missed", ns.rx_missed }, { "os_rx_no_buffer", ns.rx_no_buffer },
		{ "os_rx_oversize", ns.rx_oversize }, { "os_rx_len_late", ns.rx_len_late },
		{ "os_tx_ring_full", t->c.tx_ring_full },
	};
	const struct tslog_counter log[] = {
		{ "log_records_total", t->log.total }, { "log_capacity", t->log.cap },
	};
	tslog_dump_begin(&d, dump_to_serial, NULL);
	tslog_dump_counters(&d, os, sizeof(os) / sizeof(os[0]));
	engine_dump_counters(e, &d);
	hiccup_dump_counters(&t->hic, &d);
	ptp_slave_dump_counters(&d);
	tslog_dump_counters(&d, log, sizeof(log) / sizeof(log[0]));
	tslog_dump_records(&d, &t->log);
	tslog_dump_end(&d);
	ptp_slave_dump_series(dump_to_serial, NULL);
}
