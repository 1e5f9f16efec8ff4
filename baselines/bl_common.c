/*
 * bl_common.c - the pieces every Linux baseline shares (bl_common.h):
 * arguments, engine setup, control, gap recorder, dump, exit, TSC.
 */
#include "bl_common.h"
#include "host_pages.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "include/hftos_abi.h"
#include "runtime/param.h" /* book sizes: the same as HFT-OS's */

#define BL_CALIB_NS 200000000ll /* TSC calibration against CLOCK_MONOTONIC_RAW */
#define BL_PAIR_PROBE   64        /* pairs read to learn how narrow one can be */
#define BL_PAIR_TRIES   16        /* reads per pair at most */
#define BL_PAIR_SLACK   4         /* good: this many times the narrowest seen */
#define BL_RT_WINDOW_NS 1000000000ll /* CLOCK_REALTIME's rate: measured over >= 1 s */
#define BL_RT_MAX_SKEW  1e-3      /* a window this far from tsc_hz saw a clock step */

const char *bl_name = "baseline";

const char bl_usage_common[] =
	"  --config FILE        raw struct engine_config bytes (hftlab: EngineConfig.to_bytes())\n"
	"  --peer IP            the exchange: orders go there, control only from there\n"
	"  --peer-mac MAC       the peer's MAC\n"
	"  --key N              control key (struct hftos_ctl.key)\n"
	"  --bind IP            local address\n"
	"  --md-port N --ctl-port N --order-port N --src-port N   (30001 30002 30003 30004)\n"
	"  --max-messages N     stop after N ITCH messages (0: only at STOP)\n"
	"  --log-capacity N     tslog records kept (1..262144, default 65536)\n"
	"  --cpu N              pin to this CPU (default: the last one; -1: no pinning)\n"
	"  --dump FILE          write the dump to FILE too\n"
	"  --debug-exit PORT    in a QEMU guest: leave through isa-debug-exit at PORT\n"
	"  --hiccups NS         after READY, spin the poll loop NS ns recording its gaps\n"
	"  --hiccup-threshold NS  gaps longer than this are recorded (default 1000)\n";

void bl_die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", bl_name, what, errno ? strerror(errno) : "failed");
	exit(1);
}

void bl_usage_exit(const char *usage, int status)
{
	fputs(usage, status ? stderr : stdout);
	fputs(bl_usage_common, status ? stderr : stdout);
	exit(status);
}

uint64_t bl_arg_u64(const char *s, uint64_t max, const char *name, const char *usage)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end || end == s || v > max) {
		fprintf(stderr, "%s: bad %s %s\n", bl_name, name, s);
		bl_usage_exit(usage, 2);
	}
	return v;
}

static void arg_ip(const char *s, struct in_addr *ip, const char *name)
{
	if (inet_pton(AF_INET, s, ip) != 1) {
		fprintf(stderr, "%s: bad %s %s\n", bl_name, name, s);
		exit(2);
	}
}

static void arg_mac(const char *s, uint8_t mac[6])
{
	if (sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3],
		   &mac[4], &mac[5]) != 6) {
		fprintf(stderr, "%s: bad --peer-mac %s\n", bl_name, s);
		exit(2);
	}
}

void bl_args_defaults(struct bl_args *a)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	*a = (struct bl_args){ .md_port = 30001, .ctl_port = 30002, .order_port = 30003,
			       .src_port = 30004, .log_capacity = 65536,
			       .hiccup_threshold_ns = 1000,
			       .cpu = ncpu > 0 ? (int)ncpu - 1 : 0 };
}

bool bl_parse_common(int opt, const char *arg, struct bl_args *a, const char *usage)
{
	switch (opt) {
	case BL_OPT_CONFIG: a->config_path = arg; break;
	case BL_OPT_PEER: arg_ip(arg, &a->peer_ip, "--peer"); a->have_peer = true; break;
	case BL_OPT_PEER_MAC: arg_mac(arg, a->peer_mac); a->have_peer_mac = true; break;
	case BL_OPT_KEY:
		a->ctl_key = bl_arg_u64(arg, UINT64_MAX, "--key", usage);
		a->have_key = true;
		break;
	case BL_OPT_BIND: arg_ip(arg, &a->bind_ip, "--bind"); break;
	case BL_OPT_MD: a->md_port = (uint16_t)bl_arg_u64(arg, 65535, "--md-port", usage); break;
	case BL_OPT_CTL: a->ctl_port = (uint16_t)bl_arg_u64(arg, 65535, "--ctl-port", usage); break;
	case BL_OPT_ORDER: a->order_port = (uint16_t)bl_arg_u64(arg, 65535, "--order-port", usage); break;
	case BL_OPT_SRC: a->src_port = (uint16_t)bl_arg_u64(arg, 65535, "--src-port", usage); break;
	case BL_OPT_MAX: a->max_messages = bl_arg_u64(arg, UINT64_MAX, "--max-messages", usage); break;
	case BL_OPT_LOG:
		a->log_capacity = (uint32_t)bl_arg_u64(arg, HFTOS_LOG_MAX, "--log-capacity", usage);
		break;
	case BL_OPT_CPU: a->cpu = arg[0] == '-' ? -1 : (int)bl_arg_u64(arg, 4095, "--cpu", usage); break;
	case BL_OPT_DUMP: a->dump_path = arg; break;
	case BL_OPT_EXIT: a->debug_exit_port = (int)bl_arg_u64(arg, 0xFFFF, "--debug-exit", usage); break;
	case BL_OPT_HICCUPS: a->hiccup_ns = bl_arg_u64(arg, 3600000000000ull, "--hiccups", usage); break;
	case BL_OPT_HICCUP_THR:
		a->hiccup_threshold_ns = bl_arg_u64(arg, UINT64_MAX, "--hiccup-threshold", usage);
		break;
	default: return false;
	}
	return true;
}

void bl_args_check(const struct bl_args *a, bool ok, const char *usage)
{
	if (!ok || !a->config_path || !a->have_peer || !a->have_key || a->log_capacity == 0)
		bl_usage_exit(usage, 2);
}

/* --- setup --------------------------------------------------------------- */

static void read_engine_config(const char *path, struct engine_config *cfg)
{
	FILE *f = fopen(path, "rb");
	char extra;

	if (!f)
		bl_die(path);
	size_t n = fread(cfg, 1, sizeof(*cfg), f);
	bool too_long = fread(&extra, 1, 1, f) == 1;
	fclose(f);
	if (n != sizeof(*cfg) || too_long) {
		fprintf(stderr, "%s: %s: %zu%s bytes, a struct engine_config is %zu\n", bl_name,
			path, n, too_long ? "+" : "", sizeof(*cfg));
		exit(2);
	}
}

/* Book memory as HFT-OS's static arrays, on 2 MiB pages as its are
 * (host_pages.h), touched now (mlockall keeps it). */
void bl_trader_setup(struct bl_trader *t, const struct bl_args *a)
{
	static struct book_mem mem = {
		.order_cap = TRADE_BOOK_ORDERS, .index_cap = TRADE_BOOK_INDEX,
		.level_cap = TRADE_BOOK_LEVELS, .lindex_cap = TRADE_BOOK_LINDEX,
	};
	struct tslog_rec *recs = calloc(a->log_capacity, sizeof(*recs));
	struct engine_config cfg;

	read_engine_config(a->config_path, &cfg);
	mem.orders = host_book_array(TRADE_BOOK_ORDERS, sizeof(*mem.orders), true);
	mem.index = host_book_array(TRADE_BOOK_INDEX, sizeof(*mem.index), true);
	mem.levels = host_book_array(TRADE_BOOK_LEVELS, sizeof(*mem.levels), true);
	mem.lindex = host_book_array(TRADE_BOOK_LINDEX, sizeof(*mem.lindex), true);
	if (!mem.orders || !mem.index || !mem.levels || !mem.lindex)
		bl_die("mmap of the book");
	if (!recs)
		bl_die("calloc of the timestamp log");
	fprintf(stderr, "%s: book on 2 MiB pages where granted: %ld KiB of the process's memory on them\n",
		bl_name, host_huge_kib());
	memset(recs, 0, a->log_capacity * sizeof(*recs));
	if (!engine_init(&t->eng, &cfg, &mem)) {
		fprintf(stderr, "%s: engine_init refused the config (magic 0x%x version %u "
			"instance %u)\n", bl_name, cfg.magic, cfg.version, cfg.instance);
		exit(2);
	}
	tslog_init(&t->log, recs, a->log_capacity);
}

void bl_process_setup(const struct bl_args *a)
{
	struct termios t;

	if (a->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(a->cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0)
			bl_die("sched_setaffinity");
	}
	if (mlockall(MCL_CURRENT | MCL_FUTURE) < 0)
		fprintf(stderr, "%s: warning: mlockall: %s\n", bl_name, strerror(errno));
	/* No \n -> \r\n on a serial console: the dump's CRC covers exact bytes. */
	if (isatty(STDOUT_FILENO) && tcgetattr(STDOUT_FILENO, &t) == 0) {
		t.c_oflag &= ~(tcflag_t)OPOST;
		tcsetattr(STDOUT_FILENO, TCSANOW, &t);
	}
}

int bl_udp_bound(struct in_addr ip, uint16_t port, int rcvbuf)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = ip, .sin_port = htons(port) };
	int one = 1, fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		bl_die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		bl_die("bind");
	return fd;
}

/* --- control, end of run ------------------------------------------------- */

void bl_control_message(struct bl_trader *t, const void *msg, size_t len, uint32_t src_ip,
			const struct bl_args *a)
{
	struct hftos_ctl m;

	if (len != sizeof(m) || src_ip != a->peer_ip.s_addr) {
		t->ctl_rejected++;
		return;
	}
	memcpy(&m, msg, sizeof(m));
	if (m.magic != HFTOS_CTL_MAGIC || m.key != a->ctl_key ||
	    (m.cmd != HFTOS_CTL_STOP && m.cmd != HFTOS_CTL_KILL)) {
		t->ctl_rejected++;
		return;
	}
	t->ctl_ok++;
	if (m.cmd == HFTOS_CTL_STOP)
		t->stop = true;
	else
		risk_set_kill(&t->eng.risk, true);
}

void bl_poll_control(struct bl_trader *t, int ctl_fd, const struct bl_args *a)
{
	struct hftos_ctl m;
	struct sockaddr_in from;
	socklen_t flen = sizeof(from);
	ssize_t n = recvfrom(ctl_fd, &m, sizeof(m), MSG_DONTWAIT | MSG_TRUNC,
			     (struct sockaddr *)&from, &flen);

	if (n >= 0)
		bl_control_message(t, &m, (size_t)n, from.sin_addr.s_addr, a);
}

uint64_t bl_messages(const struct engine *e)
{
	return e->itch.messages + e->itch.unknown_type + e->itch.bad_length + e->itch.empty;
}

bool bl_enough(const struct bl_trader *t, const struct bl_args *a)
{
	return a->max_messages && bl_messages(&t->eng) >= a->max_messages;
}

/* --- the gap recorder ---------------------------------------------------- */

bool bl_hiccup_start(struct bl_trader *t, const struct bl_args *a)
{
	if (!a->hiccup_ns)
		return false;
	hiccup_start(&t->hic, t->tsc_hz, a->hiccup_ns, a->hiccup_threshold_ns, __rdtsc());
	return true;
}

void bl_hiccup_done(const struct bl_trader *t)
{
	const struct hiccup *h = &t->hic;

	printf("HICCUPS DONE iterations=%llu gaps=%llu max_ns=%llu\n",
	       (unsigned long long)h->iterations, (unsigned long long)h->gaps,
	       (unsigned long long)h->top_ns[0]);
	fflush(stdout);
}

/* --- the dump ------------------------------------------------------------ */

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

void bl_dump(const struct bl_trader *t, const struct bl_args *a,
	     const struct tslog_counter *os, size_t n_os)
{
	const struct tslog_counter head[] = {
		{ "tsc_hz", t->tsc_hz },
		{ "os_ctl_ok", t->ctl_ok }, { "os_ctl_rejected", t->ctl_rejected },
	};
	/* Only where kernel stamps were converted (linux-socket, linux-packet). */
	const struct tslog_counter rt[] = {
		{ "os_rx_ts_converted", t->rt.converted },
		{ "os_rx_ts_pair_max_cycles", t->rt.pair_max },
		{ "os_rx_ts_err_max_cycles", t->rt.err_max },
		{ "os_rx_ts_rate_rejected", t->rt.rate_rejected },
	};
	const struct tslog_counter log[] = {
		{ "log_records_total", t->log.total }, { "log_capacity", t->log.cap },
	};
	struct dump_sink s = { { stdout, a->dump_path ? fopen(a->dump_path, "w") : NULL } };
	struct tslog_dump d;

	if (a->dump_path && !s.out[1])
		fprintf(stderr, "%s: warning: cannot write %s\n", bl_name, a->dump_path);
	tslog_dump_begin(&d, dump_write, &s);
	tslog_dump_counters(&d, head, sizeof(head) / sizeof(head[0]));
	tslog_dump_counters(&d, rt, t->rt.converted ? sizeof(rt) / sizeof(rt[0]) : 0);
	tslog_dump_counters(&d, os, n_os);
	engine_dump_counters(&t->eng, &d);
	hiccup_dump_counters(&t->hic, &d);
	tslog_dump_counters(&d, log, sizeof(log) / sizeof(log[0]));
	tslog_dump_records(&d, &t->log);
	tslog_dump_end(&d);
	if (s.out[1])
		fclose(s.out[1]);
}

/* QEMU's status is then (code << 1) | 1. The console is drained first so the
 * dump is complete on the serial port before QEMU goes away. */
void bl_say_stopped(const struct bl_trader *t, uint64_t frames, uint64_t md_datagrams,
		    uint64_t orders)
{
	fprintf(stderr, "%s: stopped: %llu frames in, %llu md datagrams, %llu orders out, %llu "
		"ITCH messages\n", bl_name, (unsigned long long)frames,
		(unsigned long long)md_datagrams, (unsigned long long)orders,
		(unsigned long long)bl_messages(&t->eng));
}

void bl_exit(const struct bl_args *a, int code)
{
	fflush(stdout);
	fflush(stderr);
	if (isatty(STDOUT_FILENO))
		tcdrain(STDOUT_FILENO);
	if (a->debug_exit_port && ioperm((unsigned long)a->debug_exit_port, 1, 1) == 0)
		outb((unsigned char)code, (unsigned short)a->debug_exit_port);
	exit(code == BL_EXIT_OK ? 0 : 1);
}

/* --- time ---------------------------------------------------------------- */

int64_t bl_clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double bl_fabs(double x)
{
	return x < 0 ? -x : x;
}

static void bl_pair_once(clockid_t id, struct bl_pair *p)
{
	uint64_t a = bl_tsc();
	int64_t ns = bl_clock_ns(id);
	uint64_t b = bl_tsc();

	*p = (struct bl_pair){ .ns = ns, .tsc = a + (b - a) / 2, .width = b - a };
}

void bl_clock_pair(clockid_t id, struct bl_pair *p, uint64_t good, int tries)
{
	bl_pair_once(id, p);
	for (int i = 1; i < tries && p->width > good; i++) {
		struct bl_pair q;
		bl_pair_once(id, &q);
		if (q.width < p->width)
			*p = q;
	}
}

void bl_tsc_calibrate(struct bl_trader *t)
{
	struct bl_realtime *r = &t->rt;
	struct bl_pair raw0, raw1, rt0, rt1;

	/* How narrow a pair gets here: the narrowest of BL_PAIR_PROBE. */
	bl_clock_pair(CLOCK_REALTIME, &rt0, 0, BL_PAIR_PROBE);
	*r = (struct bl_realtime){ .good_width = BL_PAIR_SLACK * (rt0.width ? rt0.width : 1) };
	bl_clock_pair(CLOCK_REALTIME, &rt0, r->good_width, BL_PAIR_TRIES);
	bl_clock_pair(CLOCK_MONOTONIC_RAW, &raw0, r->good_width, BL_PAIR_TRIES);
	do
		bl_clock_pair(CLOCK_MONOTONIC_RAW, &raw1, r->good_width, BL_PAIR_TRIES);
	while (raw1.ns - raw0.ns < BL_CALIB_NS);
	bl_clock_pair(CLOCK_REALTIME, &rt1, r->good_width, BL_PAIR_TRIES);
	t->tsc_hz = (uint64_t)((double)(raw1.tsc - raw0.tsc) * 1e9 / (double)(raw1.ns - raw0.ns) + 0.5);
	r->nominal = (double)t->tsc_hz / 1e9;
	r->cycles_per_ns = (double)(rt1.tsc - rt0.tsc) / (double)(rt1.ns - rt0.ns);
	r->rate_err = (double)(rt0.width + rt1.width) / 2 / (double)(rt1.tsc - rt0.tsc);
	if (bl_fabs(r->cycles_per_ns / r->nominal - 1) > BL_RT_MAX_SKEW) {
		r->rate_rejected++;  /* CLOCK_REALTIME stepped meanwhile: the raw rate */
		r->cycles_per_ns = r->nominal;
	}
	r->anchor = rt0;
}

uint64_t bl_tsc_of_realtime(struct bl_realtime *r, int64_t ns)
{
	struct bl_pair now;

	bl_clock_pair(CLOCK_REALTIME, &now, r->good_width, BL_PAIR_TRIES);
	/* A new window: CLOCK_REALTIME's rate (NTP may slew it) measured again,
	 * from two narrow pairs. */
	int64_t span = now.ns - r->anchor.ns;
	if (span >= BL_RT_WINDOW_NS && now.width <= r->good_width) {
		double rate = (double)(now.tsc - r->anchor.tsc) / (double)span;
		if (bl_fabs(rate / r->nominal - 1) <= BL_RT_MAX_SKEW) {
			r->cycles_per_ns = rate;
			r->rate_err = (double)(r->anchor.width + now.width) / 2 / (double)(now.tsc - r->anchor.tsc);
		} else {
			r->rate_rejected++;
		}
		r->anchor = now;
	}
	double back = (double)(now.ns - ns) * r->cycles_per_ns;
	uint64_t err = now.width / 2 + (uint64_t)(bl_fabs(back) * r->rate_err + 0.5);
	r->converted++;
	if (now.width > r->pair_max)
		r->pair_max = now.width;
	if (err > r->err_max)
		r->err_max = err;
	return now.tsc - (uint64_t)(int64_t)(back + (back < 0 ? -0.5 : 0.5));
}
