/*
 * exchange.h - the exchange simulator's send and receive loops, in C so that
 * pacing and timestamps do not depend on the Python interpreter.
 *
 * hx_udp_socket opens a UDP socket inside a network namespace (the run's),
 * so the Python process itself never has to move. hx_replay_run sends
 * prepared MoldUDP64 datagrams on a schedule: it sleeps until spin_ns before
 * each due time and spins only for that rest (on a 2-core host a spinning
 * sender steals the core QEMU's I/O thread needs). hx_sink_run blocks in
 * recvmsg for the SUT's OUCH orders and keeps each with its kernel receive
 * timestamp (SO_TIMESTAMPNS).
 */
#ifndef HFTLAB_EXCHANGE_H
#define HFTLAB_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>

/* socket(domain, type, protocol) created inside the network namespace at
 * netns_path (NULL: the caller's); -1 with a message in err. */
int hx_netns_socket(const char *netns_path, int domain, int type, int protocol,
		    char *err, size_t errlen);

/* UDP socket in the namespace at netns_path (NULL: the caller's), bound to
 * bind_ip:bind_port (host order; 0 = any). Returns the fd, or -1 with a
 * message in err. */
int hx_udp_socket(const char *netns_path, uint32_t bind_ip, uint16_t bind_port,
		  int bufsize, char *err, size_t errlen);

struct hx_replay {
	int fd;                   /* connected: UDP to the SUT, or a unix datagram
				   * socket to QEMU's dgram netdev (whole frames) */
	const uint8_t *data;      /* datagram i is data[offsets[i] .. offsets[i+1]) */
	const uint64_t *offsets;  /* n + 1 entries */
	size_t n;
	const uint64_t *due_ns;   /* send time of datagram i after the start; NULL: back to back */
	uint64_t spin_ns;         /* busy-wait only this long before a due time
				   * (adaptive: in/out, the last one used) */
	uint64_t spin_min_ns;     /* spin_max_ns > spin_min_ns: adapt the spin to the */
	uint64_t spin_max_ns;     /* wake-up lateness seen, within [min, max] */
	int64_t oversleep_q_ns;   /* out: the running p95 estimate of that lateness */
	uint64_t start_delay_ns;  /* due time 0 is this long after the call */
	int rt_prio;              /* > 0: SCHED_FIFO at this priority while sending */
	int64_t *sent_ns;         /* out: CLOCK_REALTIME right after each send */
	volatile int *stop;
	size_t sent;              /* out */
	uint64_t late_ns_max;     /* out: worst lateness against the schedule */
	int64_t t0_real_ns;       /* out: due time 0 on CLOCK_REALTIME (the capture's clock) */
	uint64_t backoffs;        /* out: sends retried after ENOBUFS/EAGAIN (queue full) */
	int rt;                   /* out: 1 when SCHED_FIFO was granted */
	int err;                  /* out: errno of a failed send, 0 */
};

/* Send every datagram. Returns 0, or -1 (r->err set) when a send fails. */
int hx_replay_run(struct hx_replay *r);

struct hx_sink {
	int fd;
	uint8_t *buf;             /* received payloads, back to back */
	size_t buf_cap;
	uint64_t *offsets;        /* max + 1 entries */
	int64_t *rx_ns;           /* kernel receive timestamp, CLOCK_REALTIME ns */
	uint32_t *src_ip;         /* host order */
	size_t max;
	int poll_ms;              /* how often *stop is looked at */
	volatile int *stop;
	size_t n;                 /* out: datagrams kept */
	uint64_t dropped;         /* out: datagrams that did not fit */
	int err;
};

/* Receive until *stop, or max datagrams. Returns 0 or -1 (s->err).
 * src_ip is filled for AF_INET sockets, 0 otherwise. */
int hx_sink_run(struct hx_sink *s);

#endif
