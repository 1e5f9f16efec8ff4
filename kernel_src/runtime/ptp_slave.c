/*
 * ptp_slave.c - the PTP slave in the poll loop (see ptp_slave.h).
 */
#include "runtime/ptp_slave.h"
#include "arch/x86_64/tsc.h"
#include "core/net.h"
#include "runtime/kprintf.h"

#define ETH_HDR 14
#define PTP_OFF_SEQ 30
#define PTP_SLAVE_XTS_TRIES 4       /* NIC clock / TSC cross stamps per conversion, at most */
#define PTP_SLAVE_XTS_GOOD_NS 20000 /* a bracket this tight ends the tries */
#define PTP_SLAVE_HW_AGE_US 50000 /* a latch older than the frame's poll stamp by more: not its */

static const uint8_t ptp_l2_mcast[6] = { 0x01, 0x1B, 0x19, 0x00, 0x00, 0x00 };   /* annex F */
static const uint8_t ptp_ip_mcast[6] = { 0x01, 0x00, 0x5E, 0x00, 0x01, 0x81 };   /* 224.0.1.129 */

struct ptp_slave_msg {
	uint64_t tsc;
	uint16_t len;
	bool udp;
	uint8_t m[PTP_SLAVE_MSG_MAX];
};

struct ptp_slave_counters {
	uint64_t queue_full;     /* messages dropped: the queue was full */
	uint64_t hw_rx, tsc_rx;  /* Sync receive times from the NIC / the poll loop's TSC */
	uint64_t hw_tx, tsc_tx;  /* Delay_Req send times likewise */
	uint64_t hw_rx_mismatch; /* the NIC's latch held another frame's stamp */
	uint64_t hw_rx_by_time;  /* latches taken by their time, not their sequenceId */
	uint64_t hw_rx_none;     /* the NIC latched nothing for a Sync */
	uint64_t xts_max_span_ns; /* widest NIC clock bracket of a TSC read used */
	uint64_t tx_ring_full;
	uint64_t frame_cycles, frame_calls;  /* ptp_slave_frame */
	uint64_t idle_cycles, idle_calls;    /* ptp_slave_idle with work */
	uint64_t idle_max_cycles;
};

bool ptp_slave_on;
bool ptp_slave_work;
bool ptp_slave_wait;
struct ptp *ptp_slave_clock;

static struct {
	struct nic *nic;
	struct ptp ptp;
	bool hw;
	uint64_t slack, max_age; /* cycles: see ptp_slave_idle */
	struct net_endpoint self, mcast;
	uint32_t head, tail;     /* queue: head - tail entries */
	struct ptp_slave_msg q[PTP_SLAVE_QUEUE];
	bool last_udp;           /* the master's transport, for our Delay_Req */
	struct ptp_slave_counters c;
} ps;

static struct ptp_sample ps_samples[PTP_SAMPLES];

void ptp_slave_start(struct nic *n, const struct hftos_config *cfg, uint64_t tsc_hz,
		     const uint8_t mac[6], uint32_t ip_self)
{
	struct ptp_config pc = { 0 };

	if (!(cfg->flags & HFTOS_F_PTP))
		return;
	ps.nic = n;
	ps.hw = nic_has_hw_timestamps(n) && nic_ts_enable(n) == 0;
	ps.slack = tsc_hz / 1000000 * 2;                   /* 2 us: the two clocks' reads */
	ps.max_age = tsc_hz / 1000000 * PTP_SLAVE_HW_AGE_US;
	pc.tsc_hz = tsc_hz;
	ptp_clock_id_from_mac(pc.clock_id, mac);
	pc.domain = cfg->ptp_domain;
	pc.hw_stamps = ps.hw;
	pc.log_min_delay_req = -4;
	ptp_init(&ps.ptp, &pc, ps_samples, PTP_SAMPLES);
	__builtin_memcpy(ps.self.mac, mac, 6);
	ps.self.ip = ip_self;
	ps.self.port = PTP_EVENT_PORT;
	__builtin_memcpy(ps.mcast.mac, ptp_ip_mcast, 6);
	ps.mcast.ip = PTP_MCAST_IP;
	ps.mcast.port = PTP_EVENT_PORT;
	ptp_slave_on = true;
	ptp_slave_wait = !(cfg->flags & HFTOS_F_PTP_NOWAIT);
	ptp_slave_clock = &ps.ptp;
	kprintf("ptp: slave on, domain %u, %s time stamps (%s)\n", pc.domain,
		ps.hw ? "NIC hardware" : "TSC", n->name);
}

void ptp_slave_frame(const uint8_t *msg, uint16_t len, uint64_t tsc_rx, bool udp)
{
	uint64_t t0 = tsc_read();

	if (ps.head - ps.tail >= PTP_SLAVE_QUEUE) {
		ps.c.queue_full++;
		return;
	}
	struct ptp_slave_msg *q = &ps.q[ps.head % PTP_SLAVE_QUEUE];
	q->tsc = tsc_rx;
	q->udp = udp;
	q->len = len < PTP_SLAVE_MSG_MAX ? len : PTP_SLAVE_MSG_MAX;
	__builtin_memcpy(q->m, msg, q->len);
	ps.head++;
	ptp_slave_work = true;
	ps.c.frame_calls++;
	ps.c.frame_cycles += tsc_read() - t0;
}

/* A NIC time stamp (ns of the NIC clock) as a TSC value: TSC now minus
 * the stamp's age on the NIC clock, at the rate the servo learned (the NIC
 * clock ticks ns: SYSTIM runs at TIMINCA's 1 ns per ns). */
static uint64_t nic_to_tsc(uint64_t stamp_ns)
{
	/* NIC clock, TSC, NIC clock: a register read is an exit to QEMU that
	 * can wait for its lock, so keep the pair that brackets the TSC read
	 * most tightly of a few tries and take the NIC clock's midpoint */
	uint64_t best_span = ~0ull, nic_mid = 0, tsc_at = 0;
	for (int i = 0; i < PTP_SLAVE_XTS_TRIES; i++) {
		uint64_t n0 = nic_ts_now(ps.nic);
		uint64_t t = tsc_read_ordered();
		uint64_t n1 = nic_ts_now(ps.nic);
		if (n1 - n0 < best_span) {
			best_span = n1 - n0;
			nic_mid = n0 + (n1 - n0) / 2;
			tsc_at = t;
		}
		if (best_span < PTP_SLAVE_XTS_GOOD_NS)
			break;
	}
	if (best_span > ps.c.xts_max_span_ns)
		ps.c.xts_max_span_ns = best_span;
	if (nic_mid >= stamp_ns)
		return tsc_at - ptp_ns_to_cycles(&ps.ptp, nic_mid - stamp_ns);
	return tsc_at + ptp_ns_to_cycles(&ps.ptp, stamp_ns - nic_mid);
}

static void send_delay_req(bool *tx_dirty)
{
	uint16_t slot;
	uint8_t *f = nic_tx_buffer(ps.nic, &slot);
	size_t len;

	if (!f) {
		ps.c.tx_ring_full++;
		return;
	}
	tx_dirty[slot] = true;
	bool hw = ps.hw && !ps.last_udp;
	if (ps.last_udp) {
		ptp_delay_req(&ps.ptp, f + NET_UDP_HDRS, NIC_BUF_SIZE - NET_UDP_HDRS);
		len = net_build_udp(f, NIC_BUF_SIZE, &ps.self, &ps.mcast, PTP_DELAY_REQ_LEN, 0);
	} else {
		__builtin_memcpy(f, ptp_l2_mcast, 6);
		__builtin_memcpy(f + 6, ps.self.mac, 6);
		wr_be16(f + 12, PTP_ETHERTYPE);
		len = ETH_HDR + ptp_delay_req(&ps.ptp, f + ETH_HDR, NIC_BUF_SIZE - ETH_HDR);
	}
	uint64_t ts;
	if (hw) {
		(void)nic_ts_tx(ps.nic, &ts);  /* an old latch would block this one */
		nic_ts_tx_commit(ps.nic, (uint16_t)len);
	} else {
		nic_tx_commit(ps.nic, (uint16_t)len);
	}
	uint64_t tsc_tx = tsc_read_ordered();
	if (hw && nic_ts_tx(ps.nic, &ts) == 1) {
		tsc_tx = nic_to_tsc(ts);
		ps.c.hw_tx++;
	} else {
		ps.c.tsc_tx++;
	}
	ptp_delay_req_sent(&ps.ptp, tsc_tx);
}

void ptp_slave_idle(bool *tx_dirty)
{
	uint64_t t0 = tsc_read();

	while (ps.tail != ps.head) {
		struct ptp_slave_msg *q = &ps.q[ps.tail % PTP_SLAVE_QUEUE];
		uint64_t tsc = q->tsc;
		if (ps.hw && !q->udp && q->len > PTP_OFF_SEQ + 1 && (q->m[0] & 0xF) == PTP_SYNC) {
			uint64_t ns;
			uint16_t seq;
			int got = nic_ts_rx(ps.nic, &ns, &seq);
			uint16_t want = rd_be16(q->m + PTP_OFF_SEQ);
			uint64_t hw_tsc = got == 1 ? nic_to_tsc(ns) : 0;
			/* the latch is this Sync's if it names its sequenceId, or
			 * (QEMU 10's igb model latches a constant there instead)
			 * if its time lies before the poll loop's stamp of the
			 * frame by less than PTP_SLAVE_HW_AGE_US */
			bool by_seq = got == 1 && seq == want;
			bool by_time = got == 1 && hw_tsc <= q->tsc + ps.slack &&
				       q->tsc - hw_tsc < ps.max_age;
			if (by_seq || by_time) {
				tsc = hw_tsc;
				ps.c.hw_rx++;
				ps.c.hw_rx_by_time += !by_seq;
			} else {
				if (got == 1)
					ps.c.hw_rx_mismatch++;
				else
					ps.c.hw_rx_none++;
				ps.c.tsc_rx++;
			}
		} else if ((q->m[0] & 0xF) == PTP_SYNC) {
			ps.c.tsc_rx++;
		}
		unsigned act = ptp_rx(&ps.ptp, q->m, q->len, tsc);
		if (act & PTP_ACT_SAMPLE)
			ps.last_udp = q->udp;
		ps.tail++;
		if (act & PTP_ACT_DELAY_REQ)
			send_delay_req(tx_dirty);
	}
	ptp_slave_work = false;
	uint64_t dt = tsc_read() - t0;
	ps.c.idle_calls++;
	ps.c.idle_cycles += dt;
	if (dt > ps.c.idle_max_cycles)
		ps.c.idle_max_cycles = dt;
}


bool ptp_slave_locked(void)
{
	return ps.ptp.state == PTP_LOCKED;
}

void ptp_slave_report_lock(uint64_t after_ms)
{
	uint32_t n = ptp_samples_count(&ps.ptp);
	if (ptp_slave_locked())
		kprintf("PTP LOCKED offset=%ld mpd=%ld after_ms=%lu\n",
			n ? ptp_sample_at(&ps.ptp, n - 1)->offset_ns : 0, ps.ptp.mpd_ns, after_ms);
	else
		kprintf("PTP NOT LOCKED after_ms=%lu\n", after_ms);
}

void ptp_slave_dump_counters(struct tslog_dump *d)
{
	if (!ptp_slave_on)
		return;
	ptp_dump_counters(&ps.ptp, d, tsc_read());
	const struct tslog_counter v[] = {
		{ "ptp_rt_queue_full", ps.c.queue_full },
		{ "ptp_rt_hw_rx", ps.c.hw_rx }, { "ptp_rt_tsc_rx", ps.c.tsc_rx },
		{ "ptp_rt_hw_tx", ps.c.hw_tx }, { "ptp_rt_tsc_tx", ps.c.tsc_tx },
		{ "ptp_rt_hw_rx_mismatch", ps.c.hw_rx_mismatch },
		{ "ptp_rt_hw_rx_by_time", ps.c.hw_rx_by_time },
		{ "ptp_rt_hw_rx_none", ps.c.hw_rx_none },
		{ "ptp_rt_xts_max_span_ns", ps.c.xts_max_span_ns },
		{ "ptp_rt_tx_ring_full", ps.c.tx_ring_full },
		{ "ptp_rt_frame_cycles", ps.c.frame_cycles }, { "ptp_rt_frame_calls", ps.c.frame_calls },
		{ "ptp_rt_idle_cycles", ps.c.idle_cycles }, { "ptp_rt_idle_calls", ps.c.idle_calls },
		{ "ptp_rt_idle_max_cycles", ps.c.idle_max_cycles },
	};
	tslog_dump_counters(d, v, sizeof(v) / sizeof(v[0]));
}

void ptp_slave_dump_series(tslog_write_fn write, void *ctx)
{
	if (ptp_slave_on)
		ptp_dump_series(&ps.ptp, write, ctx);
}
