/*
 * ptp.c - the PTPv2 slave of ptp.h: message checks, best master, E2E delay,
 * filters, PI servo and the TSC-to-PTP mapping.
 *
 * Message layouts are IEEE 1588-2008 clause 13 (header 13.3, Announce 13.5,
 * Sync/Delay_Req 13.6, Follow_Up 13.7, Delay_Resp 13.8); the offset and
 * mean path delay are 11.3's; the dataset comparison is 9.3.4's order
 * (priority1, clockClass, clockAccuracy, offsetScaledLogVariance,
 * priority2, grandmasterIdentity, then stepsRemoved and the sender's port
 * identity), which for these big-endian unsigned fields is a byte compare.
 * The servo follows linuxptp's pi.c behaviour in integer arithmetic.
 */
#include "ptp.h"

#define NS_PER_S 1000000000ll

/* header offsets (13.3) */
#define H_TYPE     0
#define H_VERSION  1
#define H_LENGTH   2
#define H_DOMAIN   4
#define H_FLAGS    6
#define H_CORR     8
#define H_PORT_ID  20
#define H_SEQ      30
#define H_CONTROL  32
#define H_LOG_INT  33
#define B_TS       34          /* originTimestamp / preciseOriginTimestamp / receiveTimestamp */
#define B_REQ_PORT 44          /* Delay_Resp requestingPortIdentity */
#define A_DS       47          /* Announce: grandmasterPriority1 .. stepsRemoved (16 bytes) */
#define A_DS_LEN   16
#define FLAG_TWO_STEP 0x02     /* flagField octet 0 */

#define MIN_SYNC     44
#define MIN_FOLLOWUP 44
#define MIN_RESP     54
#define MIN_ANNOUNCE 64

/* linuxptp's PI servo defaults (pi.c, config.c): kp = scale * I^-0.3 capped
 * at 0.7 / I, ki = scale * I^0.4 capped at 0.3 / I, for a sync interval of I
 * seconds, with scale 0.7 / 0.3 (hardware stamps) or 0.1 / 0.001 (software
 * stamps); all * 2^20 here. The interval powers for I = 2^-7 .. 2^4: */
#define KP_HW_Q20 734003       /* 0.7 */
#define KI_HW_Q20 314573       /* 0.3 */
#define KP_SW_Q20 104858       /* 0.1 */
#define KI_SW_Q20 1049         /* 0.001 */
#define KP_NORM_Q20 734003     /* 0.7 */
#define KI_NORM_Q20 314573     /* 0.3 */
#define LOG_MIN (-7)
#define LOG_MAX 4
static const int64_t pow_m03_q20[] = { 4495344, 3651354, 2965821, 2408995, 1956712, 1589344,
	1290948, 1048576, 851708, 691802, 561918, 456419 };
static const int64_t pow_04_q20[] = { 150562, 198668, 262144, 345901, 456419, 602249, 794672,
	1048576, 1383604, 1825677, 2408995, 3178688 };
#define OFFSET_CLAMP (1ll << 40)

void ptp_clock_id_from_mac(uint8_t id[8], const uint8_t mac[6])
{
	id[0] = mac[0], id[1] = mac[1], id[2] = mac[2], id[3] = 0xFF, id[4] = 0xFE;
	id[5] = mac[3], id[6] = mac[4], id[7] = mac[5];
}

static int64_t cycles_to_ns(const struct ptp *s, uint64_t cycles)
{
	return (int64_t)(((unsigned __int128)cycles * s->mult_nominal) >> 32);
}

static uint64_t ns_to_cycles(const struct ptp *s, uint64_t ns)
{
	return ns / NS_PER_S * s->cfg.tsc_hz + ns % NS_PER_S * s->cfg.tsc_hz / NS_PER_S;
}

/* 2^log seconds in cycles (log in [-8, 8]). */
static uint64_t interval_cycles(const struct ptp *s, int8_t log)
{
	if (log < -8)
		log = -8;
	if (log > 8)
		log = 8;
	return log >= 0 ? s->cfg.tsc_hz << log : s->cfg.tsc_hz >> -log;
}

void ptp_init(struct ptp *s, const struct ptp_config *cfg, struct ptp_sample *samples, uint32_t cap)
{
	core_memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	if (!s->cfg.step_ns)
		s->cfg.step_ns = PTP_STEP_NS;
	if (s->cfg.tsc_hz < 125000000)  /* see set_freq */
		s->cfg.tsc_hz = 125000000;
	s->mult_nominal = ((uint64_t)NS_PER_S << 32) / s->cfg.tsc_hz;
	s->mult = s->mult_nominal;
	s->floor_ns = INT64_MIN;
	s->best = -1;
	s->log_sync = 0;
	s->log_delay_req = cfg->log_min_delay_req;
	s->mpd_ns = -1;
	s->servo_log = 99;
	s->state = PTP_LISTENING;
	s->samples = samples;
	s->samples_cap = samples ? cap : 0;
}

/* --- the mapping ---------------------------------------------------------- */

/* The mapping's time at tsc, without the backward-step floor. */
static int64_t map_ns(const struct ptp *s, uint64_t tsc)
{
	int64_t d = (int64_t)(tsc - s->base_tsc);
	if (d >= 0)
		return s->base_ns + (int64_t)(((unsigned __int128)(uint64_t)d * s->mult) >> 32);
	return s->base_ns - (int64_t)(((unsigned __int128)(uint64_t)-d * s->mult) >> 32);
}

/* Re-base at tsc (continuous) and set the frequency correction. */
static void set_freq(struct ptp *s, uint64_t tsc, int64_t freq_sppb)
{
	int64_t lim = (int64_t)PTP_MAXF_PPB << 16;
	if (freq_sppb > lim)
		freq_sppb = lim;
	if (freq_sppb < -lim)
		freq_sppb = -lim;
	s->base_ns = map_ns(s, tsc);
	s->base_tsc = tsc;
	s->freq_sppb = freq_sppb;
	/* mult = nominal * (1e9 + ppb) / 1e9, in 64 bits: nominal < 2^35
	 * (tsc_hz >= 125 MHz), so nominal % 1e9 * k < 2^61 (k < 2^31); whole
	 * ppb (one unit of mult is 0.2-2 ppb anyway) */
	uint64_t k = (uint64_t)(NS_PER_S + (freq_sppb >> 16));
	s->mult = s->mult_nominal / NS_PER_S * k + s->mult_nominal % NS_PER_S * k / NS_PER_S;
}

/* Move the mapping by delta ns at tsc. Backwards after lock: the floor keeps
 * ptp_time from going back. Stored local times move with it. */
static void step(struct ptp *s, uint64_t tsc, int64_t delta, bool was_locked)
{
	int64_t before = map_ns(s, tsc);
	if (delta < 0 && was_locked) {
		if (before > s->floor_ns)
			s->floor_ns = before;
		s->c.backward_holds++;
	}
	s->base_ns = before + delta;
	s->base_tsc = tsc;
	s->t3_ns += delta;
	s->s_t2 += delta;
	s->c.steps++;
}

/* --- filters -------------------------------------------------------------- */

static void delay_reset(struct ptp *s)
{
	s->delay_n = s->delay_at = 0;
	s->mpd_ns = -1;
}

static void delay_add(struct ptp *s, int64_t d)
{
	int64_t v[PTP_DELAY_FILTER];

	s->delay_hist[s->delay_at] = d;
	s->delay_at = (s->delay_at + 1) % PTP_DELAY_FILTER;
	if (s->delay_n < PTP_DELAY_FILTER)
		s->delay_n++;
	for (uint32_t i = 0; i < s->delay_n; i++) {  /* insertion sort of <= 10 */
		int64_t x = s->delay_hist[i];
		uint32_t j = i;
		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
	uint32_t n = s->delay_n;
	s->mpd_ns = n & 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	if (s->mpd_ns < 0)  /* a negative path delay is noise: none at all */
		s->mpd_ns = 0;
}

static int64_t iabs(int64_t x) { return x < 0 ? -x : x; }

/* --- servo (linuxptp pi.c: sample 0, sample 1 estimates the frequency and
 *     may step, then PI) ---------------------------------------------------- */

/* kp, ki and the frequency estimate's wait for the master's sync interval
 * 2^log s (pi_sync_interval; pi_sample's 0.016 / ki, at most 1000 s). */
static void servo_interval(struct ptp *s, int8_t log)
{
	if (log < LOG_MIN)
		log = LOG_MIN;
	if (log > LOG_MAX)
		log = LOG_MAX;
	if (log == s->servo_log)
		return;
	s->servo_log = log;
	int i = log - LOG_MIN;
	int64_t kp = (s->cfg.hw_stamps ? KP_HW_Q20 : KP_SW_Q20) * pow_m03_q20[i] >> 20;
	int64_t ki = (s->cfg.hw_stamps ? KI_HW_Q20 : KI_SW_Q20) * pow_04_q20[i] >> 20;
	int64_t kp_max = log >= 0 ? KP_NORM_Q20 >> log : KP_NORM_Q20 << -log;
	int64_t ki_max = log >= 0 ? KI_NORM_Q20 >> log : KI_NORM_Q20 << -log;
	s->kp_q20 = kp < kp_max ? kp : kp_max;
	s->ki_q20 = ki < ki_max ? ki : ki_max;
	if (s->ki_q20 < 1)
		s->ki_q20 = 1;
	uint64_t wait = s->cfg.tsc_hz / 1000 * 16777216 / (uint64_t)s->ki_q20;
	s->freq_est_cycles = wait < 1000 * s->cfg.tsc_hz ? wait : 1000 * s->cfg.tsc_hz;
}

static void servo_reset(struct ptp *s)
{
	s->servo_count = 0;
	s->outlier_run = 0;
	s->abs_offset_avg = 0;
	if (s->state == PTP_LOCKED || s->state == PTP_HOLDOVER)
		s->state = PTP_UNCALIBRATED;
}

/* One offset sample at t2 = tsc. Returns PTP_SF_* flags for the record. */
static uint8_t servo_sample(struct ptp *s, int64_t offset, uint64_t tsc)
{
	bool locked = s->state == PTP_LOCKED || s->state == PTP_HOLDOVER;

	if (locked && iabs(offset) > PTP_OUTLIER_NS && iabs(offset) > 8 * s->abs_offset_avg &&
	    s->outlier_run < PTP_OUTLIERS) {
		s->outlier_run++;
		s->c.outliers++;
		return PTP_SF_OUTLIER;
	}
	s->outlier_run = 0;
	s->c.samples++;
	if (locked && (uint64_t)iabs(offset) > s->cfg.step_ns) {
		/* the master stepped its clock: follow it (forward), or re-base
		 * and hold (backward), keep the frequency */
		s->c.master_steps++;
		step(s, tsc, -offset, true);
		s->abs_offset_avg = 0;
		return PTP_SF_STEP;
	}
	s->abs_offset_avg += (iabs(offset) - s->abs_offset_avg) / 8;
	if (offset > OFFSET_CLAMP)
		offset = OFFSET_CLAMP;
	if (offset < -OFFSET_CLAMP)
		offset = -OFFSET_CLAMP;
	switch (s->servo_count) {
	case 0:
		s->s0_offset = offset;
		s->s0_tsc = tsc;
		s->servo_count = 1;
		s->state = PTP_UNCALIBRATED;
		return 0;
	case 1: {
		if (tsc <= s->s0_tsc) {
			s->servo_count = 0;
			return 0;
		}
		/* wait long enough before estimating the frequency */
		uint64_t span = tsc - s->s0_tsc;
		if (span + span / 1000 < s->freq_est_cycles)
			return 0;
		int64_t dt = cycles_to_ns(s, span);
		int64_t doff = offset - s->s0_offset;
		/* the offset grew by doff in dt: the mapping runs fast by about
		 * doff/dt (drift is kept in ptp4l's sign: the correction is -drift) */
		int64_t drift = s->drift_sppb >> 16;
		int64_t ppb = dt > 0 && iabs(doff) < (1ll << 32) ? doff * (NS_PER_S - drift) / dt : 0;
		drift += ppb;
		if (drift > PTP_MAXF_PPB)
			drift = PTP_MAXF_PPB;
		if (drift < -PTP_MAXF_PPB)
			drift = -PTP_MAXF_PPB;
		s->drift_sppb = (int64_t)((uint64_t)drift << 16);
		uint8_t fl = 0;
		if (iabs(offset) > PTP_FIRST_STEP_NS) {
			step(s, tsc, -offset, s->ever_locked);
			fl = PTP_SF_STEP;
		}
		set_freq(s, tsc, -s->drift_sppb);
		s->servo_count = 2;
		s->state = PTP_LOCKED;
		s->ever_locked = true;
		return fl;
	}
	default: {
		int64_t ki_term = offset * s->ki_q20 >> 4;  /* ppb * 2^16 */
		int64_t ppb = (offset * s->kp_q20 >> 4) + s->drift_sppb + ki_term;
		int64_t lim = (int64_t)PTP_MAXF_PPB << 16;
		if (ppb > lim)
			ppb = lim;
		else if (ppb < -lim)
			ppb = -lim;
		else
			s->drift_sppb += ki_term;
		set_freq(s, tsc, -ppb);
		s->state = PTP_LOCKED;
		return 0;
	}
	}
}

/* --- messages ------------------------------------------------------------- */

/* A PTP timestamp (48-bit seconds, 32-bit ns) as ns; false if ns >= 1e9
 * or the seconds would not fit. */
static bool read_ts(const uint8_t *p, int64_t *ns)
{
	uint64_t sec = rd_be48(p);
	uint32_t nsec = rd_be32(p + 6);
	if (nsec >= NS_PER_S || sec > (1ull << 33))
		return false;
	*ns = (int64_t)sec * NS_PER_S + nsec;
	return true;
}

static int64_t read_corr_scaled(const uint8_t *h)
{
	return (int64_t)rd_be64(h + H_CORR);
}

static bool from_master(const struct ptp *s, const uint8_t *h)
{
	return s->best >= 0 && core_memcmp(s->foreign[s->best].port_id, h + H_PORT_ID, 10) == 0;
}

/* Lower is better: dataset, then the sender's port identity. */
static int ds_cmp(const struct ptp_foreign *a, const struct ptp_foreign *b)
{
	int r = core_memcmp(a->ds, b->ds, A_DS_LEN);
	return r ? r : core_memcmp(a->port_id, b->port_id, 10);
}

static bool qualified(const struct ptp *s, const struct ptp_foreign *f, uint64_t now)
{
	uint64_t window = 4 * interval_cycles(s, f->log_announce);
	return f->used && f->count >= 2 && now - f->last_tsc <= window;
}

static void announce(struct ptp *s, const uint8_t *m, uint64_t now)
{
	struct ptp_foreign *f = 0, *free_slot = 0, *stale = 0;

	s->c.announce++;
	for (int i = 0; i < PTP_FOREIGN_MAX; i++) {
		struct ptp_foreign *x = &s->foreign[i];
		if (x->used && core_memcmp(x->port_id, m + H_PORT_ID, 10) == 0)
			f = x;
		else if (!x->used && !free_slot)
			free_slot = x;
		else if (x->used && i != s->best && !qualified(s, x, now) && !stale)
			stale = x;
	}
	if (!f) {
		f = free_slot ? free_slot : stale;
		if (!f) {
			s->c.foreign_full++;
			return;
		}
		core_memset(f, 0, sizeof(*f));
		f->used = true;
		core_memcpy(f->port_id, m + H_PORT_ID, 10);
	}
	f->log_announce = (int8_t)m[H_LOG_INT];
	if (f->count && now - f->last_tsc > 4 * interval_cycles(s, f->log_announce))
		f->count = 0;  /* a master back after a silence qualifies again */
	f->count++;
	f->last_tsc = now;
	core_memcpy(f->ds, m + A_DS, A_DS_LEN);
	/* best master: the best qualified; the current one stays while no
	 * other qualified is better, even when silent (holdover) */
	int best = s->best;
	for (int i = 0; i < PTP_FOREIGN_MAX; i++) {
		if (!qualified(s, &s->foreign[i], now))
			continue;
		if (best < 0 || (i != best && ds_cmp(&s->foreign[i], &s->foreign[best]) < 0))
			best = i;
	}
	if (best != s->best) {
		if (s->best >= 0)
			s->c.master_changes++;
		s->best = best;
		s->sync_pending = false;
		s->s_valid = false;
		s->dreq_sent = false;
		delay_reset(s);
		servo_reset(s);
		if (s->state == PTP_LISTENING)
			s->state = PTP_UNCALIBRATED;
		s->next_dreq_tsc = now;
	}
}

static void push_sample(struct ptp *s, const struct ptp_sample *x)
{
	if (!s->samples_cap)
		return;
	s->samples[s->samples_head] = *x;
	s->samples_head = s->samples_head + 1 == s->samples_cap ? 0 : s->samples_head + 1;
	s->samples_total++;
}

static uint64_t holdover_cycles(const struct ptp *s)
{
	uint64_t c = PTP_HOLDOVER_SYNCS * interval_cycles(s, s->log_sync);
	uint64_t min = ns_to_cycles(s, PTP_HOLDOVER_MIN_NS);
	return c > min ? c : min;
}

enum ptp_state ptp_state(struct ptp *s, uint64_t now)
{
	if (s->state == PTP_LOCKED && now - s->last_sync_tsc > holdover_cycles(s)) {
		s->state = PTP_HOLDOVER;
		s->c.holdovers++;
	}
	return s->state;
}

/* t1 (with correction, 2^-16 ns) and t2 of one Sync are complete. */
static unsigned sync_done(struct ptp *s, int64_t t1, int64_t corr_scaled, uint64_t t2_tsc,
			  uint16_t seq, bool two_step)
{
	struct ptp_sample x = { 0 };
	unsigned act = PTP_ACT_SAMPLE;
	int64_t corr = corr_scaled >> 16;

	ptp_state(s, t2_tsc);  /* a Sync after a silence: count the holdover */
	if (s->state == PTP_HOLDOVER)
		s->state = PTP_LOCKED;
	x.tsc = t2_tsc;
	x.t1_ns = t1;
	x.correction_ns = corr;
	x.seq_id = seq;
	x.flags = two_step ? PTP_SF_TWO_STEP : 0;
	if (!s->mapped) {
		/* the first Sync sets the mapping: t2 is t1 (+ correction) */
		s->base_tsc = t2_tsc;
		s->base_ns = t1 + corr;
		s->mapped = true;
	}
	int64_t t2 = map_ns(s, t2_tsc);
	x.t2_ns = t2;
	s->sync_tsc = t2_tsc;
	s->last_sync_tsc = t2_tsc;
	/* keep this Sync for the delay computation */
	s->sync_corr_scaled = corr_scaled;
	s->s_t1 = t1;
	s->s_t2 = t2;
	s->s_valid = true;
	if (s->mpd_ns >= 0) {
		int64_t offset = t2 - t1 - corr - s->mpd_ns;
		x.offset_ns = offset;
		x.flags |= servo_sample(s, offset, t2_tsc);
	} else {
		x.offset_ns = t2 - t1 - corr;
	}
	x.mean_path_delay_ns = s->mpd_ns;
	x.freq_ppb_scaled = s->freq_sppb;
	x.state = (uint8_t)s->state;
	push_sample(s, &x);
	if (s->dreq_sent && t2_tsc - s->dreq_tsc > 4 * interval_cycles(s, s->log_delay_req) +
	    s->cfg.tsc_hz) {
		s->dreq_sent = false;
		s->c.delay_resp_lost++;
	}
	if (!s->dreq_sent && (int64_t)(t2_tsc - s->next_dreq_tsc) >= 0)
		act |= PTP_ACT_DELAY_REQ;
	return act;
}

static unsigned on_sync(struct ptp *s, const uint8_t *m, uint64_t tsc)
{
	uint16_t seq = rd_be16(m + H_SEQ);
	int64_t t1;

	s->c.sync++;
	if (!from_master(s, m)) {
		s->c.not_from_master++;
		return 0;
	}
	s->log_sync = (int8_t)m[H_LOG_INT];
	servo_interval(s, s->log_sync);
	if (m[H_FLAGS] & FLAG_TWO_STEP) {
		s->sync_pending = true;
		s->sync_seq = seq;
		s->sync_tsc = tsc;
		s->sync_corr_scaled = read_corr_scaled(m);
		return 0;
	}
	if (!read_ts(m + B_TS, &t1)) {
		s->c.bad_timestamp++;
		return 0;
	}
	s->sync_pending = false;
	return sync_done(s, t1, read_corr_scaled(m), tsc, seq, false);
}

static unsigned on_follow_up(struct ptp *s, const uint8_t *m)
{
	int64_t t1;

	s->c.follow_up++;
	if (!from_master(s, m)) {
		s->c.not_from_master++;
		return 0;
	}
	if (!s->sync_pending || rd_be16(m + H_SEQ) != s->sync_seq) {
		s->c.seq_mismatch++;
		return 0;
	}
	s->sync_pending = false;
	if (!read_ts(m + B_TS, &t1)) {
		s->c.bad_timestamp++;
		return 0;
	}
	return sync_done(s, t1, s->sync_corr_scaled + read_corr_scaled(m), s->sync_tsc, s->sync_seq,
			 true);
}

static void on_delay_resp(struct ptp *s, const uint8_t *m)
{
	int64_t t4;
	uint8_t me[10];

	s->c.delay_resp++;
	core_memcpy(me, s->cfg.clock_id, 8);
	wr_be16(me + 8, 1);
	if (core_memcmp(m + B_REQ_PORT, me, 10) != 0) {
		s->c.not_for_us++;
		return;
	}
	if (!from_master(s, m)) {
		s->c.not_from_master++;
		return;
	}
	if (!s->dreq_sent || rd_be16(m + H_SEQ) != s->dreq_seq) {
		s->c.seq_mismatch++;
		return;
	}
	s->dreq_sent = false;
	if (!read_ts(m + B_TS, &t4)) {
		s->c.bad_timestamp++;
		return;
	}
	int8_t log = (int8_t)m[H_LOG_INT];
	s->log_delay_req = log > s->cfg.log_min_delay_req && log != 0x7F ? log
							      : s->cfg.log_min_delay_req;
	if (!s->s_valid)
		return;
	int64_t corr_r = read_corr_scaled(m);
	/* 11.3: ((t2 - t1) + (t4 - t3) - corrections) / 2, in 2^-16 ns */
	int64_t ms = s->s_t2 - s->s_t1, sm = t4 - s->t3_ns;
	if (iabs(ms) >= (1ll << 46) || iabs(sm) >= (1ll << 46))
		return;
	int64_t mpd = ((ms << 16) - s->sync_corr_scaled + (sm << 16) - corr_r) / 2;
	delay_add(s, mpd >> 16);
}

unsigned ptp_rx(struct ptp *s, const uint8_t *m, size_t len, uint64_t tsc)
{
	s->c.rx++;
	if (len < PTP_HDR_LEN) {
		s->c.truncated++;
		return 0;
	}
	if ((m[H_VERSION] & 0xF) != 2) {
		s->c.wrong_version++;
		return 0;
	}
	size_t mlen = rd_be16(m + H_LENGTH);
	if (mlen > PTP_MSG_MAX || mlen > len) {
		s->c.oversized++;
		return 0;
	}
	if (m[H_DOMAIN] != s->cfg.domain) {
		s->c.wrong_domain++;
		return 0;
	}
	unsigned type = m[H_TYPE] & 0xFu;
	size_t need = type == PTP_SYNC ? MIN_SYNC : type == PTP_FOLLOW_UP ? MIN_FOLLOWUP
		    : type == PTP_DELAY_RESP ? MIN_RESP : type == PTP_ANNOUNCE ? MIN_ANNOUNCE
		    : PTP_HDR_LEN;
	if (mlen < need) {
		s->c.truncated++;
		return 0;
	}
	switch (type) {
	case PTP_SYNC:
		return on_sync(s, m, tsc);
	case PTP_FOLLOW_UP:
		return on_follow_up(s, m);
	case PTP_DELAY_RESP:
		on_delay_resp(s, m);
		return 0;
	case PTP_ANNOUNCE:
		announce(s, m, tsc);
		return 0;
	default:
		s->c.other_type++;  /* Delay_Req of other slaves, peer delay, signaling, management */
		return 0;
	}
}

size_t ptp_delay_req(struct ptp *s, uint8_t *p, size_t cap)
{
	if (cap < PTP_DELAY_REQ_LEN)
		return 0;
	core_memset(p, 0, PTP_DELAY_REQ_LEN);
	p[H_TYPE] = PTP_DELAY_REQ;
	p[H_VERSION] = 2;
	wr_be16(p + H_LENGTH, PTP_DELAY_REQ_LEN);
	p[H_DOMAIN] = s->cfg.domain;
	core_memcpy(p + H_PORT_ID, s->cfg.clock_id, 8);
	wr_be16(p + H_PORT_ID + 8, 1);
	s->dreq_seq = s->next_seq++;
	wr_be16(p + H_SEQ, s->dreq_seq);
	p[H_CONTROL] = 1;
	p[H_LOG_INT] = 0x7F;
	return PTP_DELAY_REQ_LEN;
}

void ptp_delay_req_sent(struct ptp *s, uint64_t tsc)
{
	s->c.tx_delay_req++;
	s->dreq_sent = true;
	s->dreq_tsc = tsc;
	s->t3_ns = map_ns(s, tsc);
	s->next_dreq_tsc = tsc + interval_cycles(s, s->log_delay_req);
}

uint64_t ptp_ns_to_cycles(const struct ptp *s, uint64_t ns)
{
	if (ns < (1ull << 31))
		return (ns << 32) / s->mult;
	return ((ns >> 10) << 32) / s->mult << 10;  /* > 2 s: 1 ppm is plenty */
}

uint32_t ptp_samples_count(const struct ptp *s)
{
	return s->samples_total < s->samples_cap ? (uint32_t)s->samples_total : s->samples_cap;
}

const struct ptp_sample *ptp_sample_at(const struct ptp *s, uint32_t i)
{
	uint32_t n = ptp_samples_count(s);
	uint32_t first = s->samples_total <= s->samples_cap ? 0 : s->samples_head;
	if (i >= n)
		return 0;
	return &s->samples[(first + i) % s->samples_cap];
}

/* --- dump ----------------------------------------------------------------- */

static size_t put_dec(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0, k = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		p[k++] = tmp[--n];
	return k;
}

static void put_str(tslog_write_fn w, void *ctx, const char *str)
{
	size_t n = 0;
	while (str[n])
		n++;
	w(ctx, str, n);
}

void ptp_dump_series(const struct ptp *s, tslog_write_fn w, void *ctx)
{
	static const char hex[] = "0123456789abcdef";
	char line[2 + 2 * sizeof(struct ptp_sample) + 1];
	uint32_t crc = 0, n = ptp_samples_count(s);

	put_str(w, ctx, "@@HFTPTP 1 BEGIN\n");
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *p = (const uint8_t *)ptp_sample_at(s, i);
		line[0] = 'S';
		line[1] = ' ';
		for (size_t k = 0; k < sizeof(struct ptp_sample); k++) {
			line[2 + 2 * k] = hex[p[k] >> 4];
			line[3 + 2 * k] = hex[p[k] & 15];
		}
		line[sizeof(line) - 1] = '\n';
		crc = tslog_crc32(crc, line, sizeof(line));
		w(ctx, line, sizeof(line));
	}
	char end[96];
	size_t k = 0;
	const char *a = "@@HFTPTP END samples=", *b = " total=", *c = " crc32=";
	while (*a)
		end[k++] = *a++;
	k += put_dec(end + k, n);
	while (*b)
		end[k++] = *b++;
	k += put_dec(end + k, s->samples_total);
	while (*c)
		end[k++] = *c++;
	for (int sh = 28; sh >= 0; sh -= 4)
		end[k++] = hex[(crc >> sh) & 15];
	end[k++] = '\n';
	w(ctx, end, k);
}

void ptp_dump_counters(struct ptp *s, struct tslog_dump *d, uint64_t now)
{
	const struct ptp_counters *c = &s->c;
	const struct tslog_counter v[] = {
		{ "ptp_state", (uint64_t)ptp_state(s, now) },
		{ "ptp_domain", s->cfg.domain }, { "ptp_hw_stamps", s->cfg.hw_stamps },
		{ "ptp_rx", c->rx }, { "ptp_tx_delay_req", c->tx_delay_req },
		{ "ptp_sync", c->sync }, { "ptp_follow_up", c->follow_up },
		{ "ptp_delay_resp", c->delay_resp }, { "ptp_announce", c->announce },
		{ "ptp_other_type", c->other_type }, { "ptp_wrong_domain", c->wrong_domain },
		{ "ptp_wrong_version", c->wrong_version }, { "ptp_truncated", c->truncated },
		{ "ptp_oversized", c->oversized }, { "ptp_bad_timestamp", c->bad_timestamp },
		{ "ptp_not_from_master", c->not_from_master }, { "ptp_seq_mismatch", c->seq_mismatch },
		{ "ptp_not_for_us", c->not_for_us }, { "ptp_foreign_full", c->foreign_full },
		{ "ptp_master_changes", c->master_changes }, { "ptp_samples", c->samples },
		{ "ptp_outliers", c->outliers }, { "ptp_steps", c->steps },
		{ "ptp_master_steps", c->master_steps }, { "ptp_backward_holds", c->backward_holds },
		{ "ptp_holdovers", c->holdovers }, { "ptp_delay_resp_lost", c->delay_resp_lost },
		/* signed values as two's complement u64 */
		{ "ptp_mean_path_delay_ns", (uint64_t)s->mpd_ns },
		{ "ptp_freq_ppb_scaled", (uint64_t)s->freq_sppb },
	};
	tslog_dump_counters(d, v, sizeof(v) / sizeof(v[0]));
}
