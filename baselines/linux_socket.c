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
 *           CLOCK_REALTIME to the TSC by a (clock_gettime, rdtsc) pair read
 *           after the order went out. When the kernel gave no timestamp,
 *           tsc_rx is the user-space stamp below and os_rx_no_kernel_ts
 *           counts it.
 *   pad     (struct tslog_rec's spare u32) cycles from tsc_rx to rdtsc right
 *           after recvmsg() returned: the kernel's share of the receive path.
 *   tsc_tx  rdtsc right after send() returned.
 * So internal_ns = (tsc_tx - tsc_rx) / tsc_hz spans the guest kernel's UDP
 * receive path, the copy to user space, the trading code and the kernel's
 * send path down to the driver's doorbell.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <x86intrin.h>

#include "core/engine.h"
#include "core/hiccup.h"
#include "core/ouch.h"
#include "core/tslog.h"
#include "include/hftos_abi.h"
#include "runtime/param.h" /* book sizes: the same as HFT-OS's */

#define BL_SUT_NAME      "linux-socket"
#define BL_RX_BUF        65536   /* any UDP datagram fits: none is ever truncated */
#define BL_BUSY_POLL_US  50      /* default SO_BUSY_POLL budget per empty poll */
#define BL_CTL_EVERY     64      /* idle md polls between two control polls */
#define BL_CALIB_NS      200000000ull /* TSC calibration against CLOCK_MONOTONIC_RAW */
#define BL_EXIT_FAILED   0x11    /* isa-debug-exit value on a failed run (HFTOS_EXIT_PANIC) */
#define BL_EXIT_OK       0x10    /* HFTOS_EXIT_OK: QEMU status 33 */

struct bl_args {
	const char *config_path;
	const char *dump_path;       /* also write the dump here (NULL: stdout only) */
	struct in_addr bind_ip, peer_ip;
	uint16_t md_port, ctl_port, order_port, src_port;
	uint8_t peer_mac[6];
	bool have_peer_mac;
	uint64_t ctl_key, max_messages;
	uint32_t log_capacity;
	int cpu;                     /* -1: do not pin */
	int debug_exit_port;         /* 0: exit(2) normally; else leave QEMU through it */
	int busy_poll_us;            /* SO_BUSY_POLL budget, 0: off */
	uint64_t hiccup_ns;          /* gap recorder run time after READY, 0: off */
	uint64_t hiccup_threshold_ns;
};

struct bl_counters {
	uint64_t datagrams_rx;       /* md datagrams received */
	uint64_t rx_errors;          /* recvmsg failures other than EAGAIN */
	uint64_t rx_no_kernel_ts;    /* datagrams without a software RX timestamp */
	uint64_t rx_dropped;         /* socket receive-queue drops (SO_RXQ_OVFL) */
	uint64_t ctl_ok, ctl_rejected;
	uint64_t orders_sent, send_errors;
	uint64_t busy_poll_us;       /* SO_BUSY_POLL in force (0: refused) */
	uint64_t polls;              /* md recvmsg calls */
};

struct bl {
	struct bl_args a;
	struct engine eng;
	struct tslog log;
	int md_fd, ctl_fd, tx_fd;
	uint8_t order[OUCH_ENTER_LEN]; /* the OUCH template; fields per order */
	uint64_t tsc_hz;
	uint64_t tsc_rx_user;          /* rdtsc after recvmsg returned */
	uint64_t tsc_rx;               /* the datagram's tsc_rx (see the top) */
	int64_t ts_kernel_ns;          /* its SO_TIMESTAMPING stamp, CLOCK_REALTIME; 0: none */
	bool tsc_rx_known;             /* tsc_rx already converted for this datagram */
	bool stop;
	struct bl_counters c;
	struct hiccup hic;             /* the gap recorder (--hiccups), before trading */
};

/* The receive side of the poll loop: one datagram buffer and its cmsgs. */
struct bl_rx {
	uint8_t buf[BL_RX_BUF];
	char cbuf[CMSG_SPACE(sizeof(struct scm_timestamping)) + CMSG_SPACE(sizeof(uint32_t))];
	unsigned idle;                 /* idle polls, for BL_CTL_EVERY */
};

/* --- small helpers ------------------------------------------------------- */

static void die(const char *what)
{
	fprintf(stderr, "linux-socket: %s: %s\n", what, errno ? strerror(errno) : "failed");
	exit(1);
}

/* rdtsc that neither earlier nor later instructions cross (lfence both sides),
 * as HFT-OS's tsc_read_ordered. */
static inline uint64_t tsc_ordered(void)
{
	_mm_lfence();
	uint64_t t = __rdtsc();
	_mm_lfence();
	return t;
}

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* TSC frequency: cycles over BL_CALIB_NS of CLOCK_MONOTONIC_RAW (the clock
 * the kernel derives from its own calibrated clocksource). */
static uint64_t tsc_calibrate(void)
{
	int64_t t0 = clock_ns(CLOCK_MONOTONIC_RAW), t1;
	uint64_t c0 = tsc_ordered(), c1;

	do {
		t1 = clock_ns(CLOCK_MONOTONIC_RAW);
		c1 = tsc_ordered();
	} while (t1 - t0 < (int64_t)BL_CALIB_NS);
	return (uint64_t)((double)(c1 - c0) * 1e9 / (double)(t1 - t0) + 0.5);
}

/* Leave: through isa-debug-exit in a guest (QEMU status (code << 1) | 1),
 * else with the process exit status. The console is drained first so the
 * dump is complete on the serial port before QEMU goes away. */
static void bl_exit(const struct bl_args *a, int code)
{
	fflush(stdout);
	fflush(stderr);
	if (isatty(STDOUT_FILENO))
		tcdrain(STDOUT_FILENO);
	if (a->debug_exit_port && ioperm((unsigned long)a->debug_exit_port, 1, 1) == 0)
		outb((unsigned char)code, (unsigned short)a->debug_exit_port);
	exit(code == BL_EXIT_OK ? 0 : 1);
}

/* --- arguments ----------------------------------------------------------- */

static const char usage[] =
	"usage: linux-socket --config ENGINE_CONFIG_FILE --peer IP --key N [options]\n"
	"  --config FILE        raw struct engine_config bytes (hftlab: EngineConfig.to_bytes())\n"
	"  --peer IP            the exchange: orders go there, control only from there\n"
	"  --peer-mac MAC       pin the peer's MAC as a permanent ARP entry\n"
	"  --key N              control key (struct hftos_ctl.key)\n"
	"  --bind IP            local address (default any)\n"
	"  --md-port N --ctl-port N --order-port N --src-port N   (30001 30002 30003 30004)\n"
	"  --max-messages N     stop after N ITCH messages (0: only at STOP)\n"
	"  --log-capacity N     tslog records kept (1..262144, default 65536)\n"
	"  --cpu N              pin to this CPU (default: the last one; -1: no pinning)\n"
	"  --dump FILE          write the dump to FILE too\n"
	"  --busy-poll US       SO_BUSY_POLL budget (default 50; 0: interrupts only)\n"
	"  --debug-exit PORT    in a QEMU guest: leave through isa-debug-exit at PORT\n"
	"  --hiccups NS         after READY, spin the poll loop NS ns recording its gaps\n"
	"  --hiccup-threshold NS  gaps longer than this are recorded (default 1000)\n";

static uint64_t arg_u64(const char *s, uint64_t max, const char *name)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end || end == s || v > max) {
		fprintf(stderr, "linux-socket: bad %s %s\n%s", name, s, usage);
		exit(2);
	}
	return v;
}

static void arg_ip(const char *s, struct in_addr *ip, const char *name)
{
	if (inet_pton(AF_INET, s, ip) != 1) {
		fprintf(stderr, "linux-socket: bad %s %s\n", name, s);
		exit(2);
	}
}

static void arg_mac(const char *s, uint8_t mac[6])
{
	if (sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3],
		   &mac[4], &mac[5]) != 6) {
		fprintf(stderr, "linux-socket: bad --peer-mac %s\n", s);
		exit(2);
	}
}

static void parse_args(int argc, char **argv, struct bl_args *a)
{
	enum { O_CONFIG = 256, O_PEER, O_PEER_MAC, O_KEY, O_BIND, O_MD, O_CTL, O_ORDER, O_SRC,
	       O_MAX, O_LOG, O_CPU, O_DUMP, O_EXIT, O_BUSY, O_HIC, O_HIC_THR };
	static const struct option opts[] = {
		{ "config", 1, 0, O_CONFIG }, { "peer", 1, 0, O_PEER }, { "peer-mac", 1, 0, O_PEER_MAC },
		{ "key", 1, 0, O_KEY }, { "bind", 1, 0, O_BIND }, { "md-port", 1, 0, O_MD },
		{ "ctl-port", 1, 0, O_CTL }, { "order-port", 1, 0, O_ORDER }, { "src-port", 1, 0, O_SRC },
		{ "max-messages", 1, 0, O_MAX }, { "log-capacity", 1, 0, O_LOG }, { "cpu", 1, 0, O_CPU },
		{ "dump", 1, 0, O_DUMP }, { "debug-exit", 1, 0, O_EXIT }, { "busy-poll", 1, 0, O_BUSY },
		{ "hiccups", 1, 0, O_HIC }, { "hiccup-threshold", 1, 0, O_HIC_THR },
		{ "help", 0, 0, 'h' }, { 0 },
	};
	bool have_peer = false, have_key = false;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	*a = (struct bl_args){ .md_port = 30001, .ctl_port = 30002, .order_port = 30003,
			       .src_port = 30004, .log_capacity = 65536, .busy_poll_us = BL_BUSY_POLL_US,
			       .hiccup_threshold_ns = 1000,
			       .cpu = ncpu > 0 ? (int)ncpu - 1 : 0 };
	for (int o; (o = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
		switch (o) {
		case O_CONFIG: a->config_path = optarg; break;
		case O_PEER: arg_ip(optarg, &a->peer_ip, "--peer"); have_peer = true; break;
		case O_PEER_MAC: arg_mac(optarg, a->peer_mac); a->have_peer_mac = true; break;
		case O_KEY: a->ctl_key = arg_u64(optarg, UINT64_MAX, "--key"); have_key = true; break;
		case O_BIND: arg_ip(optarg, &a->bind_ip, "--bind"); break;
		case O_MD: a->md_port = (uint16_t)arg_u64(optarg, 65535, "--md-port"); break;
		case O_CTL: a->ctl_port = (uint16_t)arg_u64(optarg, 65535, "--ctl-port"); break;
		case O_ORDER: a->order_port = (uint16_t)arg_u64(optarg, 65535, "--order-port"); break;
		case O_SRC: a->src_port = (uint16_t)arg_u64(optarg, 65535, "--src-port"); break;
		case O_MAX: a->max_messages = arg_u64(optarg, UINT64_MAX, "--max-messages"); break;
		case O_LOG: a->log_capacity = (uint32_t)arg_u64(optarg, HFTOS_LOG_MAX, "--log-capacity"); break;
		case O_CPU: a->cpu = optarg[0] == '-' ? -1 : (int)arg_u64(optarg, 4095, "--cpu"); break;
		case O_DUMP: a->dump_path = optarg; break;
		case O_EXIT: a->debug_exit_port = (int)arg_u64(optarg, 0xFFFF, "--debug-exit"); break;
		case O_BUSY: a->busy_poll_us = (int)arg_u64(optarg, 1000000, "--busy-poll"); break;
		case O_HIC: a->hiccup_ns = arg_u64(optarg, 3600000000000ull, "--hiccups"); break;
		case O_HIC_THR: a->hiccup_threshold_ns = arg_u64(optarg, UINT64_MAX, "--hiccup-threshold"); break;
		default: fputs(usage, o == 'h' ? stdout : stderr); exit(o == 'h' ? 0 : 2);
		}
	}
	if (!a->config_path || !have_peer || !have_key || a->log_capacity == 0 || optind != argc) {
		fputs(usage, stderr);
		exit(2);
	}
}

/* --- setup --------------------------------------------------------------- */

static void read_engine_config(const char *path, struct engine_config *cfg)
{
	FILE *f = fopen(path, "rb");
	char extra;

	if (!f)
		die(path);
	size_t n = fread(cfg, 1, sizeof(*cfg), f);
	bool too_long = fread(&extra, 1, 1, f) == 1;
	fclose(f);
	if (n != sizeof(*cfg) || too_long) {
		fprintf(stderr, "linux-socket: %s: %zu%s bytes, a struct engine_config is %zu\n",
			path, n, too_long ? "+" : "", sizeof(*cfg));
		exit(2);
	}
}

/* Book memory as HFT-OS's static arrays, touched now so that no page fault
 * lands on the hot path (and mlockall keeps it). */
static void engine_setup(struct bl *b, const struct engine_config *cfg)
{
	static struct book_mem mem = {
		.order_cap = TRADE_BOOK_ORDERS, .index_cap = TRADE_BOOK_INDEX,
		.level_cap = TRADE_BOOK_LEVELS,
	};
	struct tslog_rec *recs = calloc(b->a.log_capacity, sizeof(*recs));

	mem.orders = calloc(TRADE_BOOK_ORDERS, sizeof(*mem.orders));
	mem.index = calloc(TRADE_BOOK_INDEX, sizeof(*mem.index));
	mem.levels = calloc(TRADE_BOOK_LEVELS, sizeof(*mem.levels));
	if (!recs || !mem.orders || !mem.index || !mem.levels)
		die("calloc");
	memset(recs, 0, b->a.log_capacity * sizeof(*recs));
	if (!engine_init(&b->eng, cfg, &mem)) {
		fprintf(stderr, "linux-socket: engine_init refused the config (magic 0x%x version %u "
			"instance %u)\n", cfg->magic, cfg->version, cfg->instance);
		exit(2);
	}
	tslog_init(&b->log, recs, b->a.log_capacity);
	ouch_encode_template(b->order, sizeof(b->order), b->eng.instance);
}

static int udp_bound(struct in_addr ip, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = ip, .sin_port = htons(port) };
	int one = 1, fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	return fd;
}

/* The market-data socket: software RX timestamps, drop counts, busy poll. */
static void md_socket_setup(struct bl *b)
{
	int ts = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE, one = 1;
	int busy = b->a.busy_poll_us, rcvbuf = 8 << 20;

	b->md_fd = udp_bound(b->a.bind_ip, b->a.md_port);
	if (setsockopt(b->md_fd, SOL_SOCKET, SO_TIMESTAMPING, &ts, sizeof(ts)) < 0)
		die("SO_TIMESTAMPING");
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

	b->tx_fd = udp_bound(b->a.bind_ip, b->a.src_port);
	if (connect(b->tx_fd, (struct sockaddr *)&peer, sizeof(peer)) < 0)
		die("connect to the peer's order port");
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
		die("SIOCSARP (permanent ARP entry for the peer)");
}

/* One core, memory locked, and a console that passes bytes as they are (no
 * \n -> \r\n: the dump's CRC covers exact bytes). */
static void process_setup(const struct bl *b)
{
	struct termios t;

	if (b->a.cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(b->a.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0)
			die("sched_setaffinity");
	}
	if (mlockall(MCL_CURRENT | MCL_FUTURE) < 0)
		fprintf(stderr, "linux-socket: warning: mlockall: %s\n", strerror(errno));
	if (isatty(STDOUT_FILENO) && tcgetattr(STDOUT_FILENO, &t) == 0) {
		t.c_oflag &= ~(tcflag_t)OPOST;
		tcsetattr(STDOUT_FILENO, TCSANOW, &t);
	}
}

/* --- the hot path -------------------------------------------------------- */

/* tsc_rx of the current datagram: its kernel timestamp moved to the TSC by a
 * fresh (CLOCK_REALTIME, rdtsc) pair; called after the order left. */
static uint64_t bl_tsc_rx(struct bl *b)
{
	if (b->tsc_rx_known)
		return b->tsc_rx;
	b->tsc_rx_known = true;
	if (b->ts_kernel_ns == 0) {
		b->tsc_rx = b->tsc_rx_user;
		return b->tsc_rx;
	}
	int64_t now_ns = clock_ns(CLOCK_REALTIME);
	uint64_t now_tsc = tsc_ordered();
	double back = (double)(now_ns - b->ts_kernel_ns) * (double)b->tsc_hz / 1e9;
	b->tsc_rx = now_tsc - (uint64_t)(back > 0 ? back + 0.5 : 0);
	return b->tsc_rx;
}

/* engine_emit_fn: the order's fields into the template, send, stamp, log. */
static void bl_emit(void *ctx, const struct order_intent *o)
{
	struct bl *b = ctx;

	ouch_encode_fields(b->order, o);
	ssize_t n = send(b->tx_fd, b->order, sizeof(b->order), 0);
	uint64_t tsc_tx = tsc_ordered();
	if (CORE_UNLIKELY(n != (ssize_t)sizeof(b->order))) {
		b->c.send_errors++;
		return;
	}
	uint64_t rx = bl_tsc_rx(b), user = b->tsc_rx_user - rx;
	*tslog_next(&b->log) = (struct tslog_rec){
		.trigger_seq = o->trigger_seq, .tsc_rx = rx, .tsc_tx = tsc_tx,
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

/* Every message the engine looked at (as HFT-OS's trade_messages). */
static uint64_t bl_messages(const struct engine *e)
{
	return e->itch.messages + e->itch.unknown_type + e->itch.bad_length + e->itch.empty;
}

/* struct hftos_ctl from the peer with the run's key; anything else counted. */
static void bl_poll_control(struct bl *b)
{
	struct hftos_ctl m;
	struct sockaddr_in from;
	socklen_t flen = sizeof(from);
	ssize_t n = recvfrom(b->ctl_fd, &m, sizeof(m), MSG_DONTWAIT | MSG_TRUNC,
			     (struct sockaddr *)&from, &flen);

	if (n < 0)
		return;
	if (n != sizeof(m) || from.sin_addr.s_addr != b->a.peer_ip.s_addr ||
	    m.magic != HFTOS_CTL_MAGIC || m.key != b->a.ctl_key ||
	    (m.cmd != HFTOS_CTL_STOP && m.cmd != HFTOS_CTL_KILL)) {
		b->c.ctl_rejected++;
		return;
	}
	b->c.ctl_ok++;
	if (m.cmd == HFTOS_CTL_STOP)
		b->stop = true;
	else
		risk_set_kill(&b->eng.risk, true);
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
		if (++rx->idle % BL_CTL_EVERY == 0)
			bl_poll_control(b);
		return;
	}
	/* 3. Stamp before anything else, then the kernel's stamp. */
	b->tsc_rx_user = tsc_ordered();
	b->tsc_rx_known = false;
	bl_rx_meta(b, &m);
	b->c.datagrams_rx++;
	/* 4. The trading path; orders leave inside bl_emit. */
	engine_on_packet(&b->eng, rx->buf, (size_t)n, bl_emit, b);
	if (b->a.max_messages && bl_messages(&b->eng) >= b->a.max_messages)
		b->stop = true;
}

static void bl_loop(struct bl *b, struct bl_rx *rx)
{
	while (!b->stop)
		bl_poll(b, rx);
}

/* The gap recorder (core/hiccup.h) over the same poll loop, then a line
 * that tells hftlab to start the feed. */
static void bl_hiccups(struct bl *b, struct bl_rx *rx)
{
	struct hiccup *h = &b->hic;

	hiccup_start(h, b->tsc_hz, b->a.hiccup_ns, b->a.hiccup_threshold_ns, __rdtsc());
	do
		bl_poll(b, rx);
	while (hiccup_note(h, __rdtsc()) && !b->stop);
	printf("HICCUPS DONE iterations=%llu gaps=%llu max_ns=%llu\n",
	       (unsigned long long)h->iterations, (unsigned long long)h->gaps,
	       (unsigned long long)h->top_ns[0]);
	fflush(stdout);
}

/* --- end of run ---------------------------------------------------------- */

struct dump_sink {
	FILE *out[2];
};

static void dump_write(void *ctx, const char *buf, size_t len)
{
	struct dump_sink *s = ctx;

	for (int i = 0; i < 2; i++)
		if (s->out[i])
			fwrite(buf, 1, len, s->out[i]);
}

/* Counters named as HFT-OS's where they mean the same; os_* are the
 * socket-level ones of this baseline. */
static void bl_dump(struct bl *b, struct dump_sink *s)
{
	const struct engine *e = &b->eng;
	const struct tslog_counter os[] = {
		{ "tsc_hz", b->tsc_hz },
		{ "os_datagrams_rx", b->c.datagrams_rx }, { "os_md_packets", b->c.datagrams_rx },
		{ "os_rx_errors", b->c.rx_errors }, { "os_rx_dropped", b->c.rx_dropped },
		{ "os_rx_no_kernel_ts", b->c.rx_no_kernel_ts }, { "os_polls", b->c.polls },
		{ "os_busy_poll_us", b->c.busy_poll_us },
		{ "os_ctl_ok", b->c.ctl_ok }, { "os_ctl_rejected", b->c.ctl_rejected },
		{ "os_orders_sent", b->c.orders_sent }, { "os_send_errors", b->c.send_errors },
	};
	const struct tslog_counter log[] = {
		{ "log_records_total", b->log.total }, { "log_capacity", b->log.cap },
	};
	struct tslog_dump d;

	tslog_dump_begin(&d, dump_write, s);
	tslog_dump_counters(&d, os, sizeof(os) / sizeof(os[0]));
	engine_dump_counters(e, &d);
	hiccup_dump_counters(&b->hic, &d);
	tslog_dump_counters(&d, log, sizeof(log) / sizeof(log[0]));
	tslog_dump_records(&d, &b->log);
	tslog_dump_end(&d);
}

int main(int argc, char **argv)
{
	static struct bl b; /* the engine's book heads are 512 KiB: not on the stack */
	static struct bl_rx rx;
	struct engine_config cfg;

	parse_args(argc, argv, &b.a);
	read_engine_config(b.a.config_path, &cfg);
	engine_setup(&b, &cfg);
	process_setup(&b);
	md_socket_setup(&b);
	b.ctl_fd = udp_bound(b.a.bind_ip, b.a.ctl_port);
	tx_socket_setup(&b);
	pin_peer_mac(&b);
	b.tsc_hz = tsc_calibrate();
	printf("BASELINE READY sut=" BL_SUT_NAME " tsc_hz=%llu\n", (unsigned long long)b.tsc_hz);
	fflush(stdout);

	if (b.a.hiccup_ns)
		bl_hiccups(&b, &rx);
	bl_loop(&b, &rx);

	fprintf(stderr, "linux-socket: stopped: %llu datagrams in, %llu orders out, %llu ITCH "
		"messages\n", (unsigned long long)b.c.datagrams_rx,
		(unsigned long long)b.c.orders_sent, (unsigned long long)bl_messages(&b.eng));
	struct dump_sink s = { { stdout, b.a.dump_path ? fopen(b.a.dump_path, "w") : NULL } };
	if (b.a.dump_path && !s.out[1])
		fprintf(stderr, "linux-socket: warning: cannot write %s\n", b.a.dump_path);
	bl_dump(&b, &s);
	if (s.out[1])
		fclose(s.out[1]);
	bl_exit(&b.a, BL_EXIT_OK);
	return 0;
}
