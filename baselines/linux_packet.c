/*
 * linux_packet.c - the linux-packet baseline: HFT-OS's trading path on raw
 * Ethernet frames from an AF_PACKET socket with a PACKET_MMAP RX ring, for
 * the like-for-like comparison of issue 6.
 *
 * It links the very same kernel_src/core (host build) and keeps HFT-OS's
 * contract (bl_common.h). The hot loop, one thread pinned to one core:
 *
 *   1. spin on the status word of the ring's next slot in user space (no
 *      system call while idle): a TPACKET_V2 frame (tp_status, handed over
 *      per frame) or a TPACKET_V3 block (block_status, handed over when the
 *      block is full or its retire timer, tp_retire_blk_tov >= 1 ms, fires);
 *   2. parse Ethernet/IPv4/UDP with the core's net_parse_udp, as HFT-OS does
 *      (the kernel's UDP stack is not in the path: the ring is filled by
 *      tpacket_rcv, the packet tap in __netif_receive_skb, before IP);
 *   3. engine_on_packet() on the MoldUDP64 payload in the ring, in place;
 *   4. each order: OUCH fields into a pre-built frame, Ethernet/IPv4/UDP
 *      headers from the core's net_build_udp, send() on the same packet
 *      socket (PACKET_QDISC_BYPASS: straight to the driver's xmit);
 *   5. the slot back to the kernel.
 * TPACKET_V2 is the default: V3 hands a lone frame over only when its
 * block's retire timer fires, which adds up to a millisecond per tick at
 * trading rates (see --tpacket).
 *
 * The kernel's IP stack still sees every frame after the tap (AF_PACKET is
 * a copy, not a diversion); a drain UDP socket on md_port with the smallest
 * receive buffer keeps it from answering each datagram with ICMP port
 * unreachable. Control arrives on a UDP socket, as for linux-socket.
 *
 * Timestamps, in the TSC domain as HFT-OS's:
 *   tsc_rx  rdtsc when the poll loop sees the frame in the ring (as HFT-OS's
 *           DD bit);
 *   pad     (struct tslog_rec's spare u32) cycles from the kernel's ring
 *           timestamp (tp_sec/tp_nsec, CLOCK_REALTIME, taken in tpacket_rcv)
 *           to tsc_rx: the kernel's share of the receive path, block wait
 *           included;
 *   tsc_doorbell  rdtsc right before send() (the frame is complete in the
 *           user-space buffer; send() copies it into an skb and runs the
 *           driver's xmit, doorbell included);
 *   tsc_tx  rdtsc right after send() returned.
 */
#include "bl_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#include "core/net.h"

#define PK_BLOCK_SIZE  (1u << 16)  /* ring block: a multiple of the page size */
#define PK_BLOCK_NR    64          /* 4 MiB of ring */
#define PK_FRAME_SIZE  (1u << 14)  /* V2 slot: a 9000-byte MTU frame fits */
#define PK_BLOCK_TOV   1           /* V3 retire timeout, ms (the smallest) */
#define PK_TX_FRAME    128         /* an order frame: 42 + OUCH_ENTER_LEN, >= 60 */

_Static_assert(NET_UDP_HDRS + OUCH_ENTER_LEN <= PK_TX_FRAME, "order frame too long");
_Static_assert(PK_BLOCK_SIZE % PK_FRAME_SIZE == 0, "V2 frames must tile a block");

struct pk_counters {
	uint64_t frames_rx;          /* frames seen in the ring */
	uint64_t md_packets;         /* MoldUDP64 datagrams handed to the engine */
	uint64_t rx_bad;             /* refused by net_parse_udp */
	uint64_t rx_other;           /* well-formed, not for md_port at our address */
	uint64_t rx_truncated;       /* longer than the ring slot (tp_snaplen < tp_len) */
	uint64_t rx_no_kernel_ts;    /* no ring timestamp */
	uint64_t blocks_rx;          /* V3 blocks handed over */
	uint64_t ring_drops;         /* PACKET_STATISTICS tp_drops at the end */
	uint64_t polls;              /* empty looks at the next slot */
	uint64_t orders_sent, send_errors;
};

struct pk {
	struct bl_args a;
	const char *ifname;
	int tpacket;                 /* 2 or 3 */
	unsigned block_tov_ms;
	struct bl_trader t;
	int fd, ctl_fd, drain_fd;
	uint8_t *ring;
	size_t ring_len;
	unsigned slots, slot_size, next;   /* V2 frames or V3 blocks */
	struct net_endpoint self, peer;
	uint8_t tx[PK_TX_FRAME];     /* the order frame; OUCH at tx + NET_UDP_HDRS */
	uint16_t tx_len;
	uint64_t tsc_rx;             /* the current frame's */
	int64_t ts_kernel_ns;        /* its ring timestamp, CLOCK_REALTIME; 0: none */
	struct pk_counters c;
};

static const char usage[] =
	"usage: linux-packet --config ENGINE_CONFIG_FILE --peer IP --peer-mac MAC --key N [options]\n"
	"  --ifname NAME        the interface (default eth0)\n"
	"  --tpacket 2|3        ring version (default 2: per-frame hand-over)\n"
	"  --block-tov MS       TPACKET_V3 block retire timeout (default 1)\n";

static void parse_args(int argc, char **argv, struct pk *p)
{
	enum { O_IF = BL_OPT_LAST, O_TPACKET, O_TOV };
	static const struct option opts[] = {
		BL_COMMON_OPTIONS, { "ifname", 1, 0, O_IF }, { "tpacket", 1, 0, O_TPACKET },
		{ "block-tov", 1, 0, O_TOV }, { "help", 0, 0, 'h' }, { 0 },
	};
	bl_args_defaults(&p->a);
	p->ifname = "eth0";
	p->tpacket = 2;
	p->block_tov_ms = PK_BLOCK_TOV;
	for (int o; (o = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
		if (bl_parse_common(o, optarg, &p->a, usage))
			continue;
		switch (o) {
		case O_IF: p->ifname = optarg; break;
		case O_TPACKET: p->tpacket = (int)bl_arg_u64(optarg, 3, "--tpacket", usage); break;
		case O_TOV: p->block_tov_ms = (unsigned)bl_arg_u64(optarg, 60000, "--block-tov", usage); break;
		default: bl_usage_exit(usage, o == 'h' ? 0 : 2);
		}
	}
	if (!p->a.have_peer_mac)
		fputs("linux-packet: --peer-mac is required (orders are whole frames)\n", stderr);
	bl_args_check(&p->a, p->a.have_peer_mac && optind == argc, usage);
	if (p->tpacket < 2 || p->block_tov_ms == 0)
		bl_usage_exit(usage, 2);
}

/* --- setup --------------------------------------------------------------- */

/* The interface's index, MAC and (without --bind) IPv4 address. */
static int if_identity(struct pk *p)
{
	struct ifreq r = { 0 };
	int ifindex = (int)if_nametoindex(p->ifname);

	if (ifindex == 0)
		bl_die(p->ifname);
	snprintf(r.ifr_name, sizeof(r.ifr_name), "%s", p->ifname);
	if (ioctl(p->ctl_fd, SIOCGIFHWADDR, &r) < 0)
		bl_die("SIOCGIFHWADDR");
	memcpy(p->self.mac, r.ifr_hwaddr.sa_data, 6);
	if (p->a.bind_ip.s_addr == 0) {
		if (ioctl(p->ctl_fd, SIOCGIFADDR, &r) < 0)
			bl_die("SIOCGIFADDR (no address on the interface; or give --bind)");
		p->a.bind_ip = ((struct sockaddr_in *)&r.ifr_addr)->sin_addr;
	}
	p->self.ip = ntohl(p->a.bind_ip.s_addr);
	p->self.port = p->a.src_port;
	memcpy(p->peer.mac, p->a.peer_mac, 6);
	p->peer.ip = ntohl(p->a.peer_ip.s_addr);
	p->peer.port = p->a.order_port;
	return ifindex;
}

/* The RX ring (Documentation/networking/packet_mmap.rst): version first,
 * then PACKET_RX_RING, then mmap. */
static void ring_setup(struct pk *p)
{
	int v = p->tpacket == 3 ? TPACKET_V3 : TPACKET_V2;
	struct tpacket_req3 req = {
		.tp_block_size = PK_BLOCK_SIZE, .tp_block_nr = PK_BLOCK_NR,
		.tp_frame_size = PK_FRAME_SIZE,
		.tp_frame_nr = PK_BLOCK_SIZE / PK_FRAME_SIZE * PK_BLOCK_NR,
		.tp_retire_blk_tov = p->block_tov_ms,
	};

	if (setsockopt(p->fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0)
		bl_die("PACKET_VERSION");
	/* V2 takes the leading struct tpacket_req part of the same request. */
	socklen_t len = v == TPACKET_V3 ? sizeof(req) : sizeof(struct tpacket_req);
	if (setsockopt(p->fd, SOL_PACKET, PACKET_RX_RING, &req, len) < 0)
		bl_die("PACKET_RX_RING");
	p->ring_len = (size_t)PK_BLOCK_SIZE * PK_BLOCK_NR;
	p->ring = mmap(NULL, p->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED,
		       p->fd, 0);
	if (p->ring == MAP_FAILED)
		bl_die("mmap of the RX ring");
	p->slots = v == TPACKET_V3 ? PK_BLOCK_NR : req.tp_frame_nr;
	p->slot_size = v == TPACKET_V3 ? PK_BLOCK_SIZE : PK_FRAME_SIZE;
}

/* One packet socket for RX (ring) and TX (send), bound to the interface
 * for IPv4 frames only: ARP stays with the kernel. */
static void packet_socket_setup(struct pk *p)
{
	int one = 1;

	p->ctl_fd = bl_udp_bound(p->a.bind_ip, p->a.ctl_port, 0);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP),
				   .sll_ifindex = if_identity(p) };
	p->fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP));
	if (p->fd < 0)
		bl_die("socket(AF_PACKET) (needs CAP_NET_RAW)");
	ring_setup(p);
	if (bind(p->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		bl_die("bind the packet socket");
	if (setsockopt(p->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0)
		fprintf(stderr, "linux-packet: warning: PACKET_QDISC_BYPASS: %s\n", strerror(errno));
	/* The smallest receive buffer the kernel allows: md datagrams are
	 * dropped there instead of being answered with ICMP. */
	p->drain_fd = bl_udp_bound(p->a.bind_ip, p->a.md_port, 1);
	/* The order frame, built once: headers (IP ID 0, DF) and the constant
	 * OUCH fields; pk_emit writes only the order's own fields. */
	ouch_encode_template(p->tx + NET_UDP_HDRS, OUCH_ENTER_LEN, p->t.eng.instance);
	p->tx_len = (uint16_t)net_build_udp(p->tx, sizeof(p->tx), &p->self, &p->peer,
					    OUCH_ENTER_LEN, 0);
}

/* --- the hot path -------------------------------------------------------- */

/* engine_emit_fn: the order's fields into the pre-built frame, send,
 * stamp, log. */
static void pk_emit(void *ctx, const struct order_intent *o)
{
	struct pk *p = ctx;

	uint8_t other[PK_TX_FRAME];
	const uint8_t *frame = p->tx;
	size_t len = p->tx_len;
	if (CORE_LIKELY(o->kind == ORDER_ENTER)) {
		ouch_encode_fields(p->tx + NET_UDP_HDRS, o);
	} else {  /* resting order, replace, cancel: the whole frame */
		size_t ol = ouch_encode_intent(other + NET_UDP_HDRS, sizeof(other) - NET_UDP_HDRS, o,
					       p->t.eng.instance);
		len = net_build_udp(other, sizeof(other), &p->self, &p->peer, (uint16_t)ol, 0);
		frame = other;
	}
	uint64_t tsc_doorbell = bl_tsc();
	ssize_t n = send(p->fd, frame, len, 0);
	uint64_t tsc_tx = bl_tsc();
	if (CORE_UNLIKELY(n != (ssize_t)len)) {
		p->c.send_errors++;
		return;
	}
	uint64_t kernel = p->ts_kernel_ns ? bl_tsc_of_realtime(&p->t.rt, p->ts_kernel_ns)
					  : p->tsc_rx;
	uint64_t share = p->tsc_rx > kernel ? p->tsc_rx - kernel : 0;
	*tslog_next(&p->t.log) = (struct tslog_rec){
		.trigger_seq = o->trigger_seq, .tsc_rx = p->tsc_rx, .tsc_doorbell = tsc_doorbell,
		.tsc_tx = tsc_tx,
		.price = o->price, .shares = o->shares, .locate = o->locate, .side = o->side,
		.pad = share > UINT32_MAX ? UINT32_MAX : (uint32_t)share,
	};
	p->c.orders_sent++;
}

/* One frame from the ring: parse as HFT-OS does, trade on md datagrams. */
static void pk_frame(struct pk *p, const uint8_t *f, uint32_t snaplen, uint32_t len,
		     uint32_t sec, uint32_t nsec)
{
	struct net_udp_view v;

	p->c.frames_rx++;
	p->ts_kernel_ns = (int64_t)sec * 1000000000 + nsec;
	if (p->ts_kernel_ns == 0)
		p->c.rx_no_kernel_ts++;
	if (CORE_UNLIKELY(snaplen < len))
		p->c.rx_truncated++;
	if (CORE_UNLIKELY(net_parse_udp(f, snaplen, &v) != NET_OK)) {
		p->c.rx_bad++;
		return;
	}
	if (CORE_UNLIKELY(v.ip_dst != p->self.ip || v.dst_port != p->a.md_port)) {
		p->c.rx_other++;  /* control (its own socket), or not for us */
		return;
	}
	p->c.md_packets++;
	engine_on_packet(&p->t.eng, v.payload, v.payload_len, pk_emit, p);
	if (bl_enough(&p->t, &p->a))
		p->t.stop = true;
}

/* TPACKET_V2: one frame per slot, handed over as soon as it is written. */
static bool pk_poll_v2(struct pk *p)
{
	struct tpacket2_hdr *h = (void *)(p->ring + (size_t)p->next * p->slot_size);

	if (!(__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
		return false;
	p->tsc_rx = bl_tsc();
	pk_frame(p, (const uint8_t *)h + h->tp_mac, h->tp_snaplen, h->tp_len, h->tp_sec,
		 h->tp_nsec);
	__atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
	p->next = (p->next + 1) % p->slots;
	return true;
}

/* TPACKET_V3: a block of frames, handed over when full or retired. */
static bool pk_poll_v3(struct pk *p)
{
	struct tpacket_block_desc *b = (void *)(p->ring + (size_t)p->next * p->slot_size);
	struct tpacket_hdr_v1 *bh = &b->hdr.bh1;

	if (!(__atomic_load_n(&bh->block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
		return false;
	p->c.blocks_rx++;
	const uint8_t *at = (const uint8_t *)b + bh->offset_to_first_pkt;
	for (uint32_t i = 0; i < bh->num_pkts && !p->t.stop; i++) {
		const struct tpacket3_hdr *h = (const void *)at;
		p->tsc_rx = bl_tsc();  /* when the loop reaches it, as HFT-OS's DD bit */
		pk_frame(p, at + h->tp_mac, h->tp_snaplen, h->tp_len, h->tp_sec, h->tp_nsec);
		at += h->tp_next_offset;
	}
	__atomic_store_n(&bh->block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
	p->next = (p->next + 1) % p->slots;
	return true;
}

/* After a STOP: the feed's last frames before it. hftlab sends STOP after
 * the last datagram, but to the control socket, a second queue: with the
 * guest's one vCPU, the kernel can queue the last data frame in the ring and
 * STOP on the socket between the loop's empty look at the ring and its look
 * at the socket (seen: 18 messages of 100,000 not counted in 1 of 6 runs on
 * virtio). Every frame the kernel received before STOP is in the ring by
 * then, so the ring is handed to the engine until it is empty; a TPACKET_V3
 * block reaches user space only when full or retired, so V3 also waits its
 * retire timeout (plus a millisecond) for a last partial block. */
static void pk_drain(struct pk *p, bool (*poll)(struct pk *))
{
	uint64_t wait_ms = p->tpacket == 3 ? p->block_tov_ms + 1 : 0;
	uint64_t until = bl_tsc() + wait_ms * (p->t.tsc_hz / 1000);

	p->t.stop = false;  /* set again below; bl_enough may set it on the way */
	while (!p->t.stop && (poll(p) || bl_tsc() < until))
		;
	p->t.stop = true;
}

/* One turn of the poll loop: a slot handled, or an idle look. */
static inline void pk_poll(struct pk *p, bool (*poll)(struct pk *), unsigned *idle)
{
	if (poll(p))
		return;
	/* Idle: look at the control socket now and then. */
	p->c.polls++;
	if (++*idle % BL_CTL_EVERY == 0) {
		bl_poll_control(&p->t, p->ctl_fd, &p->a);
		if (p->t.stop)
			pk_drain(p, poll);
	}
}

/* With --hiccups first the gap recorder (bl_common.h) over the same poll
 * loop, then trading until STOP. */
static void pk_loop(struct pk *p)
{
	bool (*poll)(struct pk *) = p->tpacket == 3 ? pk_poll_v3 : pk_poll_v2;
	unsigned idle = 0;

	if (bl_hiccup_start(&p->t, &p->a)) {
		do
			pk_poll(p, poll, &idle);
		while (bl_hiccup_note(&p->t));
		bl_hiccup_done(&p->t);
	}
	while (!p->t.stop)
		pk_poll(p, poll, &idle);
}

/* --- end of run ---------------------------------------------------------- */

static void pk_ring_drops(struct pk *p)
{
	struct tpacket_stats_v3 st = { 0 };
	socklen_t len = sizeof(st);

	if (getsockopt(p->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0)
		p->c.ring_drops = st.tp_drops;
}

/* Counters named as HFT-OS's where they mean the same; os_* are this
 * baseline's own. */
static void pk_dump(struct pk *p)
{
	const struct tslog_counter os[] = {
		{ "os_tpacket_version", (uint64_t)p->tpacket },
		{ "os_frames_rx", p->c.frames_rx }, { "os_md_packets", p->c.md_packets },
		{ "os_rx_bad", p->c.rx_bad }, { "os_rx_other", p->c.rx_other },
		{ "os_rx_truncated", p->c.rx_truncated }, { "os_rx_no_kernel_ts", p->c.rx_no_kernel_ts },
		{ "os_blocks_rx", p->c.blocks_rx }, { "os_ring_drops", p->c.ring_drops },
		{ "os_polls", p->c.polls },
		{ "os_orders_sent", p->c.orders_sent }, { "os_send_errors", p->c.send_errors },
	};

	bl_dump(&p->t, &p->a, os, sizeof(os) / sizeof(os[0]));
}

int main(int argc, char **argv)
{
	static struct pk p; /* the engine's book heads are 512 KiB: not on the stack */

	bl_name = "linux-packet";
	parse_args(argc, argv, &p);
	bl_trader_setup(&p.t, &p.a);
	bl_process_setup(&p.a);
	packet_socket_setup(&p);
	bl_tsc_calibrate(&p.t);
	printf("BASELINE READY sut=linux-packet tsc_hz=%llu tpacket=%d\n",
	       (unsigned long long)p.t.tsc_hz, p.tpacket);
	fflush(stdout);

	pk_loop(&p);

	pk_ring_drops(&p);
	bl_say_stopped(&p.t, p.c.frames_rx, p.c.md_packets, p.c.orders_sent);
	pk_dump(&p);
	bl_exit(&p.a, BL_EXIT_OK);
}
