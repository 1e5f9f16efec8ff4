/*
 * bl_common.h - what the Linux baselines share (linux-socket, linux-packet,
 * linux-dpdk): arguments, the engine and its log, the TSC, the
 * control socket, the poll-loop gap recorder, the dump and the way out of a
 * QEMU guest.
 *
 * Each baseline keeps HFT-OS's contract (kernel_src/include/hftos_abi.h):
 * MoldUDP64 in on md_port, control (struct hftos_ctl, only from the peer,
 * with the run's key) on ctl_port, OUCH Enter Orders out from src_port to
 * the peer's order_port, a ready line, and at STOP the tslog dump
 * (kernel_src/core/tslog.h) on stdout. What differs between them is only
 * how a frame gets in and how an order frame gets out.
 */
#ifndef BL_COMMON_H
#define BL_COMMON_H

#define _GNU_SOURCE
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <netinet/in.h>
#include <x86intrin.h>

#include "core/engine.h"
#include "core/hiccup.h"
#include "core/ouch.h"
#include "core/tslog.h"

#define BL_CTL_EVERY   64           /* idle md polls between two control polls */
#define BL_EXIT_OK     0x10         /* HFTOS_EXIT_OK: QEMU status 33 */
#define BL_EXIT_FAILED 0x11         /* HFTOS_EXIT_PANIC */

/* The options every baseline takes (see bl_usage_common). */
struct bl_args {
	const char *config_path;
	const char *dump_path;       /* also write the dump here (NULL: stdout only) */
	struct in_addr bind_ip, peer_ip;
	uint16_t md_port, ctl_port, order_port, src_port;
	uint8_t peer_mac[6];
	bool have_peer, have_key, have_peer_mac;  /* given on the command line */
	uint64_t ctl_key, max_messages;
	uint32_t log_capacity;
	int cpu;                     /* -1: do not pin */
	int debug_exit_port;         /* 0: exit(2) normally; else leave QEMU through it */
	uint64_t hiccup_ns;          /* gap recorder run time after READY, 0: off */
	uint64_t hiccup_threshold_ns;
};

/* A clock reading and the TSC at it: the clock read between two TSC reads,
 * tsc their middle, so |tsc - the TSC at the reading| <= width / 2. */
struct bl_pair {
	int64_t ns;
	uint64_t tsc;
	uint64_t width;              /* cycles between the two TSC reads */
};

/* CLOCK_REALTIME stamps (the kernel's socket timestamps) moved to the TSC:
 * tsc = now.tsc - (now.ns - stamp) * cycles_per_ns, with `now` a fresh pair
 * and cycles_per_ns measured against CLOCK_REALTIME itself over the last
 * window of at least BL_RT_WINDOW_NS (the first one: the calibration). */
struct bl_realtime {
	struct bl_pair anchor;       /* the start of the current rate window */
	double cycles_per_ns;        /* TSC cycles per CLOCK_REALTIME ns, measured */
	double rate_err;             /* its relative uncertainty (pair widths / window) */
	double nominal;              /* tsc_hz / 1e9: a window far from it saw a clock step */
	uint64_t good_width;         /* a pair this narrow is taken at once */
	uint64_t converted;          /* stamps converted */
	uint64_t pair_max;           /* the widest pair a conversion used (cycles) */
	uint64_t err_max;            /* the largest error bound of a conversion (cycles) */
	uint64_t rate_rejected;      /* windows refused (CLOCK_REALTIME stepped) */
};

/* The engine, its log and the order's OUCH template, set up from the args. */
struct bl_trader {
	struct engine eng;
	struct tslog log;
	uint64_t tsc_hz;
	struct bl_realtime rt;       /* set by bl_tsc_calibrate */
	uint64_t ctl_ok, ctl_rejected;
	bool stop;
	struct hiccup hic;           /* the gap recorder (--hiccups), before trading */
};

/* The program's name in messages ("linux-packet"); set by main first. */
extern const char *bl_name;

/* Common long options: getopt_long values from BL_OPT_FIRST on; a baseline
 * appends its own after them and hands every value to bl_parse_common. */
enum { BL_OPT_FIRST = 256, BL_OPT_CONFIG = BL_OPT_FIRST, BL_OPT_PEER, BL_OPT_PEER_MAC,
       BL_OPT_KEY, BL_OPT_BIND, BL_OPT_MD, BL_OPT_CTL, BL_OPT_ORDER, BL_OPT_SRC, BL_OPT_MAX,
       BL_OPT_LOG, BL_OPT_CPU, BL_OPT_DUMP, BL_OPT_EXIT, BL_OPT_HICCUPS,
       BL_OPT_HICCUP_THR, BL_OPT_LAST };
#define BL_COMMON_OPTIONS \
	{ "config", 1, 0, BL_OPT_CONFIG }, { "peer", 1, 0, BL_OPT_PEER }, \
	{ "peer-mac", 1, 0, BL_OPT_PEER_MAC }, { "key", 1, 0, BL_OPT_KEY }, \
	{ "bind", 1, 0, BL_OPT_BIND }, { "md-port", 1, 0, BL_OPT_MD }, \
	{ "ctl-port", 1, 0, BL_OPT_CTL }, { "order-port", 1, 0, BL_OPT_ORDER }, \
	{ "src-port", 1, 0, BL_OPT_SRC }, { "max-messages", 1, 0, BL_OPT_MAX }, \
	{ "log-capacity", 1, 0, BL_OPT_LOG }, { "cpu", 1, 0, BL_OPT_CPU }, \
	{ "dump", 1, 0, BL_OPT_DUMP }, { "debug-exit", 1, 0, BL_OPT_EXIT }, \
	{ "hiccups", 1, 0, BL_OPT_HICCUPS }, { "hiccup-threshold", 1, 0, BL_OPT_HICCUP_THR }
extern const char bl_usage_common[];

void bl_die(const char *what) __attribute__((noreturn));
void bl_usage_exit(const char *usage, int status) __attribute__((noreturn));
uint64_t bl_arg_u64(const char *s, uint64_t max, const char *name, const char *usage);

/* Defaults, then one option value: false when `opt` is not a common one. */
void bl_args_defaults(struct bl_args *a);
bool bl_parse_common(int opt, const char *arg, struct bl_args *a, const char *usage);
/* Exits with the usage when --config, --peer or --key is missing, or when
 * the baseline's own conditions (`ok`) do not hold. */
void bl_args_check(const struct bl_args *a, bool ok, const char *usage);

/* Read the engine config, set up the engine (book memory touched now) and
 * the log; exits on a bad config. */
void bl_trader_setup(struct bl_trader *t, const struct bl_args *a);

/* Pin to a->cpu, mlockall, and a console that passes bytes unchanged. */
void bl_process_setup(const struct bl_args *a);

/* A non-blocking UDP socket bound to ip:port. */
int bl_udp_bound(struct in_addr ip, uint16_t port, int rcvbuf);

/* Read one control datagram (if any) from ctl_fd: STOP sets t->stop, KILL
 * sets the risk kill switch, anything else is counted as rejected. */
void bl_poll_control(struct bl_trader *t, int ctl_fd, const struct bl_args *a);
/* The same for a control payload that came some other way (linux-dpdk:
 * parsed from a frame); src_ip in network byte order. */
void bl_control_message(struct bl_trader *t, const void *msg, size_t len, uint32_t src_ip,
			const struct bl_args *a);

/* Every message the engine looked at (as HFT-OS's trade_messages); true
 * when --max-messages is reached. */
uint64_t bl_messages(const struct engine *e);
bool bl_enough(const struct bl_trader *t, const struct bl_args *a);

/* The gap recorder (core/hiccup.h) over the baseline's own poll loop, after
 * READY and before the feed:
 *
 *	if (bl_hiccup_start(&t, &a)) {
 *		do
 *			poll_once(...);
 *		while (bl_hiccup_note(&t));
 *		bl_hiccup_done(&t);
 *	}
 *
 * bl_hiccup_start is false (nothing recorded) without --hiccups;
 * bl_hiccup_note is false once the time is over or a STOP came;
 * bl_hiccup_done prints the line that tells hftlab to start the feed. */
bool bl_hiccup_start(struct bl_trader *t, const struct bl_args *a);
void bl_hiccup_done(const struct bl_trader *t);
static inline bool bl_hiccup_note(struct bl_trader *t)
{
	return hiccup_note(&t->hic, __rdtsc()) && !t->stop;
}

/* The dump: tsc_hz and the control counters, the baseline's own counters,
 * the engine's, the gap recorder's (if it ran), the log's, the records; to
 * stdout and to a->dump_path. */
void bl_dump(const struct bl_trader *t, const struct bl_args *a,
	     const struct tslog_counter *os, size_t n_os);

/* The line on stderr at STOP: frames in, md datagrams, orders out, ITCH
 * messages. */
void bl_say_stopped(const struct bl_trader *t, uint64_t frames, uint64_t md_datagrams,
		    uint64_t orders);

/* Leave: through isa-debug-exit in a guest, else with the exit status. */
void bl_exit(const struct bl_args *a, int code) __attribute__((noreturn));

/* --- time ---------------------------------------------------------------- */

/* rdtsc that neither earlier nor later instructions cross (lfence both
 * sides), as HFT-OS's tsc_read_ordered. */
static inline uint64_t bl_tsc(void)
{
	_mm_lfence();
	uint64_t t = __rdtsc();
	_mm_lfence();
	return t;
}

int64_t bl_clock_ns(clockid_t id);

/* A (clock, TSC) pair (struct bl_pair): up to `tries` reads, the first no
 * wider than `good` cycles, else the narrowest. A read is wide when
 * something ran between its two TSC reads: an interrupt, or, in a TCG
 * guest, the host descheduling QEMU's vCPU thread (measured up to 6.6M
 * cycles, 2.7 ms, on the 2-core CI machine). */
void bl_clock_pair(clockid_t id, struct bl_pair *p, uint64_t good, int tries);

/* t->tsc_hz against CLOCK_MONOTONIC_RAW (200 ms) and t->rt's first rate,
 * against CLOCK_REALTIME over the same time, both from narrow pairs. */
void bl_tsc_calibrate(struct bl_trader *t);

/* A CLOCK_REALTIME stamp (ns) in the TSC domain (struct bl_realtime): a
 * fresh narrow pair, back by the measured rate. Its error bound, now's
 * width / 2 + (now.ns - ns) * cycles_per_ns * rate_err, is kept in
 * r->err_max (the dump's os_rx_ts_err_max_cycles). */
uint64_t bl_tsc_of_realtime(struct bl_realtime *r, int64_t ns);

#endif
