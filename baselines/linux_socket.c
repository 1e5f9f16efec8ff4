/*
 * linux_socket.c - the linux-socket baseline: HFT-OS's trading path on top of
 * Linux UDP sockets, for the like-for-like comparison of issue 6.
 *
 * It links the very same kernel_src/core (host build, libhftcore.a) and keeps
 * HFT-OS's contract (kernel_src/include/hftos_abi.h): MoldUDP64 in on
 * md_port, control (struct hftos_ctl, only from the peer, with the run's
 * key) on ctl_port, OUCH Enter Orders out from src_port to the peer's
 * order_port, and at STOP the tslog dump (kernel_src/core/tslog.h) on stdout,
 * then exit. hftlab starts it in a network namespace on the host
 * (`--where host`) or as the only program of a Linux guest under the same
 * QEMU NIC as HFT-OS (`--where guest`).
 *
 * The hot loop is what a tuned Linux program does: one thread pinned to one
 * core, spinning on a non-blocking recvmsg() of the market-data socket
 * (SO_BUSY_POLL, so an empty poll also polls the driver's NAPI context),
 * engine_on_packet() on the datagram in place, and each order written into a
 * pre-built OUCH template and sent with send() on a socket connected to the
 * peer's order port (connected: no route or neighbour lookup per order; the
 * peer's MAC can be pinned with --peer-mac as a permanent ARP entry).
 *
 * Timestamps, in the TSC domain as HFT-OS's:
 *   tsc_rx  the kernel's software RX timestamp of the datagram
 *           (SO_TIMESTAMPING, SOF_TIMESTAMPING_RX_SOFTWARE: taken in the
 *           driver's receive path, netif_receive_skb), moved from
 *           CLOCK_REALTIME to the TSC after the order went out by
 *           bl_tsc_of_realtime: a fresh narrow (clock_gettime, rdtsc) pair
 *           and CLOCK_REALTIME's measured rate; its error bound is in the
 *           dump (os_rx_ts_err_max_cycles), and os_rx_ts_after_user counts
 *           stamps it put after the user-space stamp below (none when it
 *           is right). When the kernel gave no timestamp, tsc_rx is the
 *           user-space stamp below and os_rx_no_kernel_ts counts it.
 *   pad     (struct tslog_rec's spare u32) cycles from tsc_rx to rdtsc right
 *           after recvmsg() returned: the kernel's share of the receive path.
 *   tsc_doorbell  rdtsc right before send() (the order is in the user-space
 *           buffer): decide_ns = tsc_rx .. here, doorbell_ns = the send()
 *           call, the kernel's UDP/IP send path down to the driver's doorbell;
 *   tsc_tx  rdtsc right after send() returned.
 * So internal_ns = (tsc_tx - tsc_rx) / tsc_hz spans the guest kernel's UDP
 * receive path, the copy to user space, the trading code and the kernel's
 * send path down to the driver's doorbell.
 */
#include "bl_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>

#define BL_SUT_NAME      "linux-socket"
#define BL_RX_BUF        65536   /* any UDP datagram fits: none is ever truncated */
#define BL_BUSY_POLL_US  50      /* default SO_BUSY_POLL budget per empty poll */

struct bl_counters {
	uint64_t datagrams_rx;       /* md datagrams received */
	uint64_t rx_errors;          /* recvmsg failures other than EAGAIN */
	uint64_t rx_no_kernel_ts;    /* datagrams without a software RX timestamp */
	uint64_t rx_ts_after_user;   /* tsc_rx converted to after tsc_rx_user: impossible, so
				      * the conversion's error (bl_tsc_of_realtime) showing */
	uint64_t rx_dropped;         /* socket receive-queue drops (SO_RXQ_OVFL) */
	uint64_t orders_sent, send_errors;
	uint64_t busy_poll_us;       /* SO_BUSY_POLL in force (0: refused) */
	uint64_t polls;              /* md recvmsg calls */
};

struct bl {
	struct bl_args a;
	int busy_poll_us;              /* SO_BUSY_POLL budget, 0: off */
	struct bl_trader t;            /* engine, log, tsc_hz, control counters, stop, hiccups */
	int md_fd, ctl_fd, tx_fd;
	uint8_t order[OUCH_ENTER_LEN]; /* the OUCH template; fields per order */
	uint64_t tsc_rx_user;          /* rdtsc after recvmsg returned */
	uint64_t tsc_rx;               /* the datagram's tsc_rx (see the top) */
	int64_t ts_kernel_ns;          /* its SO_TIMESTAMPING stamp, CLOCK_REALTIME; 0: none */
	bool tsc_rx_known;             /* tsc_rx already converted for this datagram */
	struct bl_counters c;
};

/* The receive side of the poll loop: one datagram buffer and its cmsgs. */
struct bl_rx {
	uint8_t buf[BL_RX_BUF];
	char cbuf[CMSG_SPACE(sizeof(struct scm_timestamping)) + CMSG_SPACE(sizeof(uint32_t))];
	unsigned idle;                 /* idle polls, for BL_CTL_EVERY */
};

/* --- arguments ----------------------------------------------------------- */

static const char usage[] =
	"usage: linux-socket --config ENGINE_CONFIG_FILE --peer IP --key N [options]\n"
	"  --busy-poll US       SO_BUSY_POLL budget (default 50; 0: interrupts only)\n"
	"  (--peer-mac pins the peer's MAC as a permanent ARP entry; --bind defaults to any)\n";

static void parse_args(int argc, char **argv, struct bl *b)
{
	enum { O_BUSY = BL_OPT_LAST };
	static const struct option opts[] = {
		BL_COMMON_OPTIONS, { "busy-poll", 1, 0, O_BUSY }, { "help", 0, 0, 'h' }, { 0 },
	};
	bl_args_defaults(&b->a);
	b->busy_poll_us = BL_BUSY_POLL_US;
	for (int o; (o = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
		if (bl_parse_common(o, optarg, &b->a, usage))
			continue;
		switch (o) {
		case O_BUSY: b->busy_poll_us = (int)bl_arg_u64(optarg, 1000000, "--busy-poll", usage); break;
		default: bl_usage_exit(usage, o == 'h' ? 0 : 2);
		}
	}
	bl_args_check(&b->a, optind == argc, usage);
}

/* --- setup --------------------------------------------------------------- */

/* The market-data socket: software RX timestamps, drop counts, busy poll. */
static void md_socket_setup(struct bl *b)
{
	int ts = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE, one = 1;
	int busy = b->busy_poll_us, rcvbuf = 8 << 20;

	b->md_fd = bl_udp_bound(b->a.bind_ip, b->a.md_port, 0);
	if (setsockopt(b->md_fd, SOL_SOCKET, SO_TIMESTAMPING, &ts, sizeof(ts)) < 0)
		bl_die("SO_TIMESTAMPING");
	setsockopt(b->md_fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
	setsockopt(b->md_fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	/* Needs CAP_NET_ADMIN above net.core.busy_read; refused is not fatal. */
	if (busy && setsockopt(b->md_fd, SOL_SOCKET, SO_BUSY_POLL, &busy, sizeof(busy)) == 0)
		b->c.busy_poll_us = (uint64_t)busy;
}

/* Orders leave from src_port on a socket connected to peer:order_port. */
static void tx_socket_setup(struct bl *b)
{
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_addr = b->a.peer_ip,
				    .sin_port = htons(b->a.order_port) };

	b->tx_fd = bl_udp_bound(b->a.bind_ip, b->a.src_port, 0);
	if (connect(b->tx_fd, (struct sockaddr *)&peer, sizeof(peer)) < 0)
		bl_die("connect to the peer's order port");
}

/* A permanent ARP entry for the peer (SIOCSARP), as HFT-OS's mac_peer: the
 * first order never waits for neighbour resolution. */
static void pin_peer_mac(const struct bl *b)
{
	struct arpreq r = { .arp_flags = ATF_PERM | ATF_COM };
	struct sockaddr_in *pa = (struct sockaddr_in *)&r.arp_pa;

	if (!b->a.have_peer_mac)
		return;
	pa->sin_family = AF_INET;
	pa->sin_addr = b->a.peer_ip;
	r.arp_ha.sa_family = ARPHRD_ETHER;
	memcpy(r.arp_ha.sa_data, b->a.peer_mac, 6);
	if (ioctl(b->tx_fd, SIOCSARP, &r) < 0)
		bl_die("SIOCSARP (permanent ARP entry for the peer)");
}

/* --- the hot path -------------------------------------------------------- */

/* tsc_rx of the current datagram: its kernel timestamp moved to the TSC
 * (bl_tsc_of_realtime); called after the order left. */
static uint64_t bl_tsc_rx(struct bl *b)
{
	if (b->tsc_rx_known)
		return b->tsc_rx;
	b->tsc_rx_known = true;
	if (b->ts_kernel_ns == 0) {
		b->tsc_rx = b->tsc_rx_user;
		return b->tsc_rx;
	}
	b->tsc_rx = bl_tsc_of_realtime(&b->t.rt, b->ts_kernel_ns);
	return b->tsc_rx;
}

/* engine_emit_fn: the order's fields into the template, send, stamp, log. */
static void bl_emit(void *ctx, const struct order_intent *o)
{
	struct bl *b = ctx;

	uint8_t other[OUCH_MAX_LEN];
	const uint8_t *msg = b->order;
	size_t len = sizeof(b->order);
	if (CORE_LIKELY(o->kind == ORDER_ENTER)) {
		ouch_encode_fields(b->order, o);
	} else {  /* resting order, replace, cancel: the whole message */
		len = ouch_encode_intent(other, sizeof(other), o, b->t.eng.instance);
		msg = other;
	}
	uint64_t tsc_doorbell = bl_tsc();
	ssize_t n = send(b->tx_fd, msg, len, 0);
	uint64_t tsc_tx = bl_tsc();
	if (CORE_UNLIKELY(n != (ssize_t)len)) {
		b->c.send_errors++;
		return;
	}
	uint64_t rx = bl_tsc_rx(b), user = b->tsc_rx_user - rx;
	if (CORE_UNLIKELY((int64_t)user < 0))
		b->c.rx_ts_after_user++;
	*tslog_next(&b->t.log) = (struct tslog_rec){
		.trigger_seq = o->trigger_seq, .tsc_rx = rx, .tsc_doorbell = tsc_doorbell,
		.tsc_tx = tsc_tx,
		.price = o->price, .shares = o->shares, .locate = o->locate, .side = o->side,
		.pad = user > UINT32_MAX ? UINT32_MAX : (uint32_t)user,
	};
	b->c.orders_sent++;
}

/* The kernel's software RX stamp and the drop counter from the cmsgs. */
static void bl_rx_meta(struct bl *b, struct msghdr *m)
{
	b->ts_kernel_ns = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SO_TIMESTAMPING) {
			const struct scm_timestamping *ts = (const void *)CMSG_DATA(c);
			b->ts_kernel_ns = (int64_t)ts->ts[0].tv_sec * 1000000000 + ts->ts[0].tv_nsec;
		} else if (c->cmsg_type == SO_RXQ_OVFL) {
			uint32_t drops;
			memcpy(&drops, CMSG_DATA(c), sizeof(drops));
			b->c.rx_dropped = drops;
		}
	}
	if (b->ts_kernel_ns == 0)
		b->c.rx_no_kernel_ts++;
}

static inline void bl_poll(struct bl *b, struct bl_rx *rx);

/* After a STOP: the datagrams queued before it. hftlab sends STOP after the
 * last datagram, but to the control socket, a second queue: the kernel can
 * queue the last datagram on md_fd and STOP on ctl_fd between the loop's
 * empty look at md_fd and its look at ctl_fd. Every datagram received before
 * STOP is on md_fd by then, so md_fd is read until it is empty (linux-packet
 * lost 18 of 100,000 messages this way in 1 of 6 runs on virtio). */
static void bl_drain(struct bl *b, struct bl_rx *rx)
{
	uint64_t before;

	b->t.stop = false;  /* set again below; bl_enough may set it on the way */
	do {
		before = b->c.datagrams_rx;
		bl_poll(b, rx);
	} while (!b->t.stop && b->c.datagrams_rx != before);
	b->t.stop = true;
}

/* One turn of the poll loop: a datagram handled, or an idle poll. */
static inline void bl_poll(struct bl *b, struct bl_rx *rx)
{
	struct iovec iov = { .iov_base = rx->buf, .iov_len = sizeof(rx->buf) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = rx->cbuf,
			    .msg_controllen = sizeof(rx->cbuf) };
	/* 1. Poll the socket (and, via SO_BUSY_POLL, the driver). */
	ssize_t n = recvmsg(b->md_fd, &m, MSG_DONTWAIT);

	b->c.polls++;
	if (n < 0) {
		/* 2. Idle: look at the control socket now and then. */
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			b->c.rx_errors++;
		if (++rx->idle % BL_CTL_EVERY == 0) {
			bl_poll_control(&b->t, b->ctl_fd, &b->a);
			if (b->t.stop)
				bl_drain(b, rx);
		}
		return;
	}
	/* 3. Stamp before anything else, then the kernel's stamp. */
	b->tsc_rx_user = bl_tsc();
	b->tsc_rx_known = false;
	bl_rx_meta(b, &m);
	b->c.datagrams_rx++;
	/* 4. The trading path; orders leave inside bl_emit. */
	engine_on_packet(&b->t.eng, rx->buf, (size_t)n, bl_emit, b);
	if (bl_enough(&b->t, &b->a))
		b->t.stop = true;
}

static void bl_loop(struct bl *b, struct bl_rx *rx)
{
	while (!b->t.stop)
		bl_poll(b, rx);
}

/* With --hiccups: the gap recorder (bl_common.h) over the same poll loop,
 * then the line that tells hftlab to start the feed. */
static void bl_hiccups(struct bl *b, struct bl_rx *rx)
{
	if (!bl_hiccup_start(&b->t, &b->a))
		return;
	do
		bl_poll(b, rx);
	while (bl_hiccup_note(&b->t));
	bl_hiccup_done(&b->t);
}

/* --- end of run ---------------------------------------------------------- */

/* Counters named as HFT-OS's where they mean the same; os_* are the
 * socket-level ones of this baseline (tsc_hz and os_ctl_* come from
 * bl_dump). */
static void bl_socket_dump(struct bl *b)
{
	const struct tslog_counter os[] = {
		{ "os_datagrams_rx", b->c.datagrams_rx }, { "os_md_packets", b->c.datagrams_rx },
		{ "os_rx_errors", b->c.rx_errors }, { "os_rx_dropped", b->c.rx_dropped },
		{ "os_rx_no_kernel_ts", b->c.rx_no_kernel_ts },
		{ "os_rx_ts_after_user", b->c.rx_ts_after_user }, { "os_polls", b->c.polls },
		{ "os_busy_poll_us", b->c.busy_poll_us },
		{ "os_orders_sent", b->c.orders_sent }, { "os_send_errors", b->c.send_errors },
	};

	bl_dump(&b->t, &b->a, os, sizeof(os) / sizeof(os[0]));
}

int main(int argc, char **argv)
{
	static struct bl b; /* the engine's book heads are 512 KiB: not on the stack */
	static struct bl_rx rx;

	bl_name = BL_SUT_NAME;
	parse_args(argc, argv, &b);
	bl_trader_setup(&b.t, &b.a);
	ouch_encode_template(b.order, sizeof(b.order), b.t.eng.instance);
	bl_process_setup(&b.a);
	md_socket_setup(&b);
	b.ctl_fd = bl_udp_bound(b.a.bind_ip, b.a.ctl_port, 0);
	tx_socket_setup(&b);
	pin_peer_mac(&b);
	bl_tsc_calibrate(&b.t);
	printf("BASELINE READY sut=" BL_SUT_NAME " tsc_hz=%llu\n", (unsigned long long)b.t.tsc_hz);
	fflush(stdout);

	bl_hiccups(&b, &rx);
	bl_loop(&b, &rx);

	fprintf(stderr, "linux-socket: stopped: %llu datagrams in, %llu orders out, %llu ITCH "
		"messages\n", (unsigned long long)b.c.datagrams_rx,
		(unsigned long long)b.c.orders_sent, (unsigned long long)bl_messages(&b.t.eng));
	bl_socket_dump(&b);
	bl_exit(&b.a, BL_EXIT_OK);
}
