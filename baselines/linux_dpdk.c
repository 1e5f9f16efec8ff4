/*
 * linux_dpdk.c - the linux-dpdk baseline: HFT-OS's trading path on DPDK
 * 22.11 (Debian's libdpdk-dev, linked statically), for the like-for-like
 * comparison of issue 6.
 *
 *   linux-dpdk [EAL options] -- --config FILE --peer IP --peer-mac MAC --key N --bind IP ...
 *
 * In the guest the NIC belongs to DPDK (uio_pci_generic, hugepages, and
 * the poll mode driver of QEMU's model: net_e1000_em for e1000,
 * net_e1000_igb for igb, net_virtio for the modern-only virtio-net, whose
 * common/notify/ISR/device config live in memory BARs that uio maps, so no
 * legacy I/O BAR is needed): the kernel has no interface, so this program
 * does what HFT-OS does on its own NIC. It answers ARP for its address,
 * proves that frames flow both ways with an ARP request to the peer before
 * READY (QEMU's e1000 holds frames back for a second after each RCTL
 * write, which DPDK's start does), takes control datagrams from frames,
 * and trades. On the host (a reference) the EAL options name a virtual
 * device instead (net_af_packet on eth0).
 *
 * It links the very same kernel_src/core (host build) and keeps HFT-OS's
 * contract (bl_common.h). The hot loop, one lcore, no interrupts:
 *
 *   1. rte_eth_rx_burst() on queue 0: the PMD polls the RX descriptors'
 *      DD bits in memory, as HFT-OS's loop does;
 *   2. parse Ethernet/IPv4/UDP in the mbuf, in place, with the core's
 *      net_parse_udp;
 *   3. engine_on_packet() on the MoldUDP64 payload;
 *   4. each order: a pre-built frame copied into an mbuf, the OUCH fields
 *      and headers written (ouch_encode_fields, net_build_udp),
 *      rte_eth_tx_burst() (the PMD writes the TDT doorbell);
 *   5. the RX mbufs back to the pool.
 *
 * Timestamps, in the TSC domain as HFT-OS's:
 *   tsc_rx  rdtsc when the loop reaches the frame (the burst returned it);
 *   tsc_doorbell  rdtsc right before rte_eth_tx_burst() (the order is
 *           complete in its mbuf; the PMD then writes the TX descriptor and
 *           the TDT doorbell, both in doorbell_ns);
 *   tsc_tx  rdtsc right after rte_eth_tx_burst() returned.
 */
#include "bl_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "core/net.h"

#define DP_BURST       32
#define DP_RX_DESC     512
#define DP_TX_DESC     512
#define DP_MBUFS       4095          /* 2^n - 1: the mempool's best size */
#define DP_MBUF_CACHE  128
#define DP_TX_FRAME    128           /* an order frame: 42 + OUCH_ENTER_LEN, >= 60 */
#define DP_LINK_WAIT_MS 10000
#define DP_ARP_WAIT_MS  20000
#define DP_ARP_EVERY_MS 100
#define ARP_OP_REQUEST 1             /* RFC 826 */
#define ARP_OP_REPLY   2

_Static_assert(NET_UDP_HDRS + OUCH_ENTER_LEN <= DP_TX_FRAME, "order frame too long");

struct dp_counters {
	uint64_t frames_rx;          /* frames the PMD handed over */
	uint64_t md_packets;         /* MoldUDP64 datagrams handed to the engine */
	uint64_t rx_bad;             /* neither a UDP nor an ARP frame net_parse_* accepts */
	uint64_t rx_segmented;       /* multi-segment mbufs (dropped: no jumbo frames) */
	uint64_t rx_other;           /* well-formed UDP, neither md nor control for us */
	uint64_t ctl_frames;         /* UDP to ctl_port (bl_trader counts ok/rejected) */
	uint64_t arp_requests;       /* ARP requests for our address */
	uint64_t arp_replies;        /* our answers to them */
	uint64_t arp_other;
	uint64_t polls;              /* empty bursts */
	uint64_t orders_sent, send_errors, tx_no_mbuf;
};

struct dp {
	struct bl_args a;
	struct bl_trader t;
	uint16_t port;
	struct rte_mempool *pool;
	struct net_endpoint self, peer;
	uint8_t tx[DP_TX_FRAME];     /* the order frame template; OUCH at tx + NET_UDP_HDRS */
	uint16_t tx_len;
	uint64_t tsc_rx;             /* the current frame's */
	bool peer_answered;          /* an ARP reply from the peer came in */
	const char *driver;
	struct dp_counters c;
};

static const char usage[] =
	"usage: linux-dpdk [EAL options] -- --config ENGINE_CONFIG_FILE --peer IP --peer-mac MAC\n"
	"                  --key N --bind IP [options]\n"
	"  EAL options: DPDK's (e.g. -l 0 --iova-mode=pa -a 0000:00:03.0 --in-memory;\n"
	"               on the host: --no-huge --no-pci --vdev net_af_packet0,iface=eth0)\n"
	"  --port N             the ethdev port (default 0)\n";

static void parse_args(int argc, char **argv, struct dp *p)
{
	enum { O_PORT = BL_OPT_LAST };
	static const struct option opts[] = {
		BL_COMMON_OPTIONS, { "port", 1, 0, O_PORT }, { "help", 0, 0, 'h' }, { 0 },
	};
	bl_args_defaults(&p->a);
	for (int o; (o = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
		if (bl_parse_common(o, optarg, &p->a, usage))
			continue;
		switch (o) {
		case O_PORT: p->port = (uint16_t)bl_arg_u64(optarg, RTE_MAX_ETHPORTS - 1, "--port", usage); break;
		default: bl_usage_exit(usage, o == 'h' ? 0 : 2);
		}
	}
	if (!p->a.have_peer_mac || p->a.bind_ip.s_addr == 0)
		fputs("linux-dpdk: --peer-mac and --bind are required (the NIC has no kernel "
		      "interface: no ARP table, no address)\n", stderr);
	bl_args_check(&p->a, p->a.have_peer_mac &&
		      p->a.bind_ip.s_addr != 0 && optind == argc, usage);
}

static void dp_die(const char *what, int rc)
{
	fprintf(stderr, "linux-dpdk: %s: %s\n", what, rte_strerror(rc < 0 ? -rc : rc));
	exit(1);
}

/* --- setup --------------------------------------------------------------- */

/* One RX and one TX queue, no offloads, the link up (within 10 s). */
static void port_setup(struct dp *p)
{
	struct rte_eth_conf conf = { 0 };
	struct rte_eth_dev_info info;
	struct rte_eth_link link = { 0 };
	struct rte_ether_addr mac;
	int rc;

	if (!rte_eth_dev_is_valid_port(p->port)) {
		fprintf(stderr, "linux-dpdk: no ethdev port %u (%u available): is the NIC bound to "
			"uio_pci_generic / vfio-pci, or the vdev given?\n", p->port,
			rte_eth_dev_count_avail());
		exit(1);
	}
	if ((rc = rte_eth_dev_info_get(p->port, &info)) != 0)
		dp_die("rte_eth_dev_info_get", rc);
	p->driver = info.driver_name;
	p->pool = rte_pktmbuf_pool_create("hft_mbufs", DP_MBUFS, DP_MBUF_CACHE, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (!p->pool)
		dp_die("rte_pktmbuf_pool_create (hugepages?)", rte_errno);
	if ((rc = rte_eth_dev_configure(p->port, 1, 1, &conf)) != 0)
		dp_die("rte_eth_dev_configure", rc);
	uint16_t nrx = DP_RX_DESC, ntx = DP_TX_DESC;
	if ((rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->port, &nrx, &ntx)) != 0)
		dp_die("rte_eth_dev_adjust_nb_rx_tx_desc", rc);
	int sock = rte_eth_dev_socket_id(p->port);
	unsigned s = sock < 0 ? 0u : (unsigned)sock;
	if ((rc = rte_eth_rx_queue_setup(p->port, 0, nrx, s, NULL, p->pool)) != 0)
		dp_die("rte_eth_rx_queue_setup", rc);
	if ((rc = rte_eth_tx_queue_setup(p->port, 0, ntx, s, NULL)) != 0)
		dp_die("rte_eth_tx_queue_setup", rc);
	if ((rc = rte_eth_dev_start(p->port)) != 0)
		dp_die("rte_eth_dev_start", rc);
	if ((rc = rte_eth_macaddr_get(p->port, &mac)) != 0)
		dp_die("rte_eth_macaddr_get", rc);
	memcpy(p->self.mac, mac.addr_bytes, 6);
	for (int ms = 0; ms < DP_LINK_WAIT_MS; ms += 10) {
		if (rte_eth_link_get_nowait(p->port, &link) == 0 && link.link_status)
			break;
		rte_delay_ms(10);
	}
	if (!link.link_status)
		fprintf(stderr, "linux-dpdk: warning: link still down after %d ms\n", DP_LINK_WAIT_MS);
	p->self.ip = ntohl(p->a.bind_ip.s_addr);
	p->self.port = p->a.src_port;
	memcpy(p->peer.mac, p->a.peer_mac, 6);
	p->peer.ip = ntohl(p->a.peer_ip.s_addr);
	p->peer.port = p->a.order_port;
	/* Every order frame is this template plus its OUCH fields: headers
	 * (IP ID 0, DF; checksum once) and the constant OUCH fields, as HFT-OS
	 * pre-builds its TX buffers. */
	ouch_encode_template(p->tx + NET_UDP_HDRS, OUCH_ENTER_LEN, p->t.eng.instance);
	p->tx_len = (uint16_t)net_build_udp(p->tx, sizeof(p->tx), &p->self, &p->peer,
					    OUCH_ENTER_LEN, 0);
}

/* --- transmit ------------------------------------------------------------ */

/* An mbuf holding a copy of frame[0..len); NULL (counted) when the pool is
 * empty. */
static struct rte_mbuf *dp_tx_copy(struct dp *p, const uint8_t *frame, uint16_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(p->pool);

	if (CORE_UNLIKELY(!m)) {
		p->c.tx_no_mbuf++;
		return NULL;
	}
	memcpy(rte_pktmbuf_mtod(m, uint8_t *), frame, len);
	m->data_len = m->pkt_len = len;
	return m;
}

/* m out on queue 0; false when there is no mbuf or the TX ring is full. */
static bool dp_xmit(struct dp *p, struct rte_mbuf *m)
{
	if (CORE_UNLIKELY(!m))
		return false;
	if (CORE_UNLIKELY(rte_eth_tx_burst(p->port, 0, &m, 1) != 1)) {
		rte_pktmbuf_free(m);
		return false;
	}
	return true;
}

static bool dp_send_arp(struct dp *p, uint16_t op, const uint8_t tha[6], uint32_t tpa)
{
	uint8_t f[64];
	size_t len = net_build_arp(f, sizeof(f), op, p->self.mac, p->self.ip, tha, tpa);

	return len && dp_xmit(p, dp_tx_copy(p, f, (uint16_t)len));
}

/* engine_emit_fn: the template into an mbuf, the order's fields into it,
 * send, stamp, log. */
static void dp_emit(void *ctx, const struct order_intent *o)
{
	struct dp *p = ctx;
	struct rte_mbuf *m;

	if (CORE_LIKELY(o->kind == ORDER_ENTER)) {
		m = dp_tx_copy(p, p->tx, p->tx_len);
		if (CORE_LIKELY(m != NULL))
			ouch_encode_fields(rte_pktmbuf_mtod(m, uint8_t *) + NET_UDP_HDRS, o);
	} else {  /* resting order, replace, cancel: the whole frame */
		uint8_t f[DP_TX_FRAME];
		size_t ol = ouch_encode_intent(f + NET_UDP_HDRS, sizeof(f) - NET_UDP_HDRS, o,
					       p->t.eng.instance);
		m = dp_tx_copy(p, f, (uint16_t)net_build_udp(f, sizeof(f), &p->self, &p->peer, (uint16_t)ol, 0));
	}
	uint64_t tsc_doorbell = bl_tsc();
	bool sent = dp_xmit(p, m);
	uint64_t tsc_tx = bl_tsc();
	if (CORE_UNLIKELY(!sent)) {
		p->c.send_errors++;
		return;
	}
	*tslog_next(&p->t.log) = (struct tslog_rec){
		.trigger_seq = o->trigger_seq, .tsc_rx = p->tsc_rx, .tsc_doorbell = tsc_doorbell,
		.tsc_tx = tsc_tx,
		.price = o->price, .shares = o->shares, .locate = o->locate, .side = o->side,
	};
	p->c.orders_sent++;
}

/* --- receive ------------------------------------------------------------- */

static void dp_arp(struct dp *p, const uint8_t *f, size_t len)
{
	struct net_arp a;

	if (net_parse_arp(f, len, &a) != NET_OK) {
		p->c.rx_bad++;
		return;
	}
	if (a.oper == ARP_OP_REQUEST && a.tpa == p->self.ip) {
		p->c.arp_requests++;
		if (dp_send_arp(p, ARP_OP_REPLY, a.sha, a.spa))
			p->c.arp_replies++;
		return;
	}
	if (a.oper == ARP_OP_REPLY && a.spa == p->peer.ip)
		p->peer_answered = true;
	p->c.arp_other++;
}

/* One frame: parse as HFT-OS does; trade on md datagrams, obey control,
 * answer ARP. */
static void dp_frame(struct dp *p, const struct rte_mbuf *m)
{
	const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
	struct net_udp_view v;

	p->c.frames_rx++;
	if (CORE_UNLIKELY(m->nb_segs != 1)) {
		p->c.rx_segmented++;
		return;
	}
	if (CORE_UNLIKELY(net_parse_udp(f, m->data_len, &v) != NET_OK)) {
		if (net_ethertype(f, m->data_len) == NET_ETHERTYPE_ARP)
			dp_arp(p, f, m->data_len);
		else
			p->c.rx_bad++;
		return;
	}
	if (CORE_UNLIKELY(v.ip_dst != p->self.ip)) {
		p->c.rx_other++;
		return;
	}
	if (CORE_LIKELY(v.dst_port == p->a.md_port)) {
		p->c.md_packets++;
		engine_on_packet(&p->t.eng, v.payload, v.payload_len, dp_emit, p);
		if (bl_enough(&p->t, &p->a))
			p->t.stop = true;
		return;
	}
	if (v.dst_port == p->a.ctl_port) {
		p->c.ctl_frames++;
		bl_control_message(&p->t, v.payload, v.payload_len, htonl(v.ip_src), &p->a);
		return;
	}
	p->c.rx_other++;
}

/* One turn of the poll loop: a burst handled, or an idle look. */
static inline void dp_poll(struct dp *p)
{
	struct rte_mbuf *burst[DP_BURST];
	uint16_t n = rte_eth_rx_burst(p->port, 0, burst, DP_BURST);

	if (n == 0) {
		p->c.polls++;
		return;
	}
	for (uint16_t i = 0; i < n; i++) {
		p->tsc_rx = bl_tsc();  /* when the loop reaches it, as HFT-OS's DD bit */
		dp_frame(p, burst[i]);
	}
	rte_pktmbuf_free_bulk(burst, n);
}

/* Ask the peer for its MAC until it answers: the proof that frames flow both
 * ways (as HFT-OS's trade_wait_peer); READY only after it. */
static void dp_wait_peer(struct dp *p)
{
	static const uint8_t zero[6];
	uint64_t hz = rte_get_tsc_hz(), start = rte_rdtsc(), next = start;

	while (!p->peer_answered) {
		uint64_t now = rte_rdtsc();
		if (now - start > hz / 1000 * DP_ARP_WAIT_MS) {
			fprintf(stderr, "linux-dpdk: warning: no ARP reply from the peer in %d ms; "
				"going on\n", DP_ARP_WAIT_MS);
			return;
		}
		if ((int64_t)(now - next) >= 0) {
			dp_send_arp(p, ARP_OP_REQUEST, zero, p->peer.ip);
			next = now + hz / 1000 * DP_ARP_EVERY_MS;
		}
		dp_poll(p);
	}
	fprintf(stderr, "linux-dpdk: peer answered ARP after %llu ms\n",
		(unsigned long long)((rte_rdtsc() - start) * 1000 / hz));
}

/* With --hiccups first the gap recorder (bl_common.h) over the same poll
 * loop, then trading until STOP. */
static void dp_loop(struct dp *p)
{
	if (bl_hiccup_start(&p->t, &p->a)) {
		do
			dp_poll(p);
		while (bl_hiccup_note(&p->t));
		bl_hiccup_done(&p->t);
	}
	while (!p->t.stop)
		dp_poll(p);
}

/* --- end of run ---------------------------------------------------------- */

/* Counters named as HFT-OS's where they mean the same; os_* are this
 * baseline's own, nic_* the PMD's statistics. */
static void dp_dump(struct dp *p)
{
	struct rte_eth_stats st = { 0 };

	rte_eth_stats_get(p->port, &st);
	const struct tslog_counter os[] = {
		{ "os_frames_rx", p->c.frames_rx }, { "os_md_packets", p->c.md_packets },
		{ "os_rx_bad", p->c.rx_bad }, { "os_rx_segmented", p->c.rx_segmented },
		{ "os_rx_other", p->c.rx_other }, { "os_ctl_frames", p->c.ctl_frames },
		{ "arp_requests", p->c.arp_requests }, { "arp_replies", p->c.arp_replies },
		{ "arp_other", p->c.arp_other }, { "os_polls", p->c.polls },
		{ "os_orders_sent", p->c.orders_sent }, { "os_send_errors", p->c.send_errors },
		{ "os_tx_no_mbuf", p->c.tx_no_mbuf },
		{ "nic_ipackets", st.ipackets }, { "nic_opackets", st.opackets },
		{ "nic_imissed", st.imissed }, { "nic_ierrors", st.ierrors },
		{ "nic_oerrors", st.oerrors }, { "nic_rx_nombuf", st.rx_nombuf },
	};

	bl_dump(&p->t, &p->a, os, sizeof(os) / sizeof(os[0]));
}

int main(int argc, char **argv)
{
	static struct dp p; /* the engine's book heads are 512 KiB: not on the stack */
	int dd = 1;

	bl_name = "linux-dpdk";
	/* Our options (after "--", or all of them without it) and the engine
	 * config first: a bad command line fails before DPDK touches a device. */
	while (dd < argc && strcmp(argv[dd], "--") != 0)
		dd++;
	char *eal0 = argv[0];
	int eal_argc = dd == argc ? 1 : dd;
	if (dd == argc)
		dd = 0;
	argv[dd] = eal0;
	parse_args(argc - dd, argv + dd, &p);
	bl_trader_setup(&p.t, &p.a);
	optind = 1;
	if (rte_eal_init(eal_argc, argv) < 0)
		dp_die("rte_eal_init", rte_errno);
	bl_process_setup(&p.a);
	port_setup(&p);
	bl_tsc_calibrate(&p.t);
	dp_wait_peer(&p);
	printf("BASELINE READY sut=linux-dpdk tsc_hz=%llu driver=%s\n",
	       (unsigned long long)p.t.tsc_hz, p.driver);
	fflush(stdout);

	dp_loop(&p);

	bl_say_stopped(&p.t, p.c.frames_rx, p.c.md_packets, p.c.orders_sent);
	dp_dump(&p);
	rte_eth_dev_stop(p.port);
	bl_exit(&p.a, BL_EXIT_OK);
}
