/*
 * ptp.h - a PTPv2 ordinary clock, slave only (IEEE 1588-2008), that
 * disciplines a TSC-to-PTP-time mapping.
 *
 * What it speaks: Announce (best master selection), Sync from one-step and
 * two-step masters (+ Follow_Up), and end-to-end delay request-response
 * (Delay_Req / Delay_Resp), in one configurable domain. The caller strips
 * the transport (Ethernet 0x88F7, or IPv4/UDP to port 319/320) and hands in
 * the PTP message with the local receive time as a TSC value; it wraps the
 * Delay_Req this module builds in the same transport the master used.
 *
 * Local time is the TSC. Where the NIC stamps PTP frames in hardware (igb),
 * the caller converts the NIC stamp to a TSC value by the frame's age on the
 * NIC clock (TSC at the poll minus the NIC-clock time between the stamp and
 * the poll), so the slave sees the wire time without the poll loop's delay.
 *
 * The mapping: ptp_ns(tsc) = base_ns + (tsc - base_tsc) * mult / 2^32, with
 * mult the ns per cycle (2^-32 ns units) corrected by the servo's frequency.
 * The servo is linuxptp's PI servo with its default constants (scales
 * kp 0.7 / ki 0.3 with hardware stamps, 0.1 / 0.001 with software stamps,
 * exponents -0.3 / 0.4 of the sync interval, norm max 0.7 / 0.3, first
 * step threshold 20 us, no step after that): two samples at least 0.016 / ki
 * seconds apart estimate the frequency and may step the phase (before lock,
 * either way);
 * after that the phase moves only through the frequency, so the mapping is
 * continuous and increasing. The one exception is a master that steps its
 * clock (an offset beyond step_ns, PTP_STEP_NS by default, PTP_OUTLIERS
 * samples in a row): forwards, the mapping steps with it; backwards, it is
 * re-based to the master but never reports a time below what it had
 * reported (ptp_time holds at the step's time until the master catches up).
 *
 * Filters: the mean path delay is the moving median of the last
 * PTP_DELAY_FILTER measurements (linuxptp's delay_filter default); once
 * locked, an offset sample more than PTP_OUTLIER_NS from zero and eight
 * times the recent mean |offset| is dropped (counted), PTP_OUTLIERS in a row
 * at most, so a real change still gets through.
 *
 * Holdover: when the selected master's Syncs stop for
 * PTP_HOLDOVER_SYNCS sync intervals (at least PTP_HOLDOVER_MIN_NS), the
 * mapping keeps its last frequency; the next Sync resumes the servo. State
 * is evaluated lazily from the TSC (ptp_state), nothing here needs a timer.
 *
 * Nothing allocates, prints or uses floating point (the kernel build has no
 * FPU code); every refused message is counted in struct ptp_counters.
 */
#ifndef CORE_PTP_H
#define CORE_PTP_H

#include "platform.h"
#include "tslog.h"

#define PTP_ETHERTYPE       0x88F7
#define PTP_EVENT_PORT      319
#define PTP_GENERAL_PORT    320
#define PTP_MCAST_IP        0xE0000181u /* 224.0.1.129 */
#define PTP_HDR_LEN         34
#define PTP_MSG_MAX         1500        /* longer messageLength: oversized */
#define PTP_DELAY_REQ_LEN   44
#define PTP_FOREIGN_MAX     4           /* foreign masters tracked */
#define PTP_DELAY_FILTER    10          /* moving median length (linuxptp default) */
#define PTP_FIRST_STEP_NS   20000       /* linuxptp first_step_threshold 0.00002 s */
#define PTP_STEP_NS         1000000000  /* a master step: |offset| beyond 1 s when locked */
#define PTP_OUTLIER_NS      100000      /* offsets within 100 us are never outliers */
#define PTP_OUTLIERS        4           /* outliers dropped in a row at most */
#define PTP_HOLDOVER_SYNCS  8
#define PTP_HOLDOVER_MIN_NS 2000000000ull
#define PTP_MAXF_PPB        900000000   /* frequency clamp: linuxptp's max_frequency default
                                         * (TCG's TSC can be tens of % off its calibration) */
#define PTP_SAMPLES         4096        /* servo samples kept (ring) */

enum ptp_msg {
	PTP_SYNC = 0x0, PTP_DELAY_REQ = 0x1, PTP_FOLLOW_UP = 0x8, PTP_DELAY_RESP = 0x9,
	PTP_ANNOUNCE = 0xB,
};

enum ptp_transport { PTP_L2 = 0, PTP_UDP4 = 1 };

enum ptp_state {
	PTP_LISTENING = 0,    /* no master selected */
	PTP_UNCALIBRATED = 1, /* master selected, servo not locked yet */
	PTP_LOCKED = 2,       /* the servo disciplines the mapping */
	PTP_HOLDOVER = 3,     /* was locked; the master's Syncs stopped */
};

/* ptp_rx's result bits. */
#define PTP_ACT_DELAY_REQ 1u  /* send a Delay_Req now (ptp_delay_req) */
#define PTP_ACT_SAMPLE    2u  /* the servo took a sample */

struct ptp_config {
	uint64_t tsc_hz;
	uint8_t clock_id[8];  /* ours (EUI-64, e.g. from the MAC by ptp_clock_id_from_mac) */
	uint8_t domain;
	bool hw_stamps;       /* servo constants: linuxptp's hardware or software ones */
	int8_t log_min_delay_req; /* our Delay_Req interval floor, 2^n s (the master's may be longer) */
	uint64_t step_ns;     /* master step threshold; 0: PTP_STEP_NS */
};

struct ptp_counters {
	uint64_t rx, tx_delay_req;
	uint64_t sync, follow_up, delay_resp, announce, other_type;
	uint64_t wrong_domain, wrong_version, truncated, oversized, bad_timestamp;
	uint64_t not_from_master;   /* Sync/Follow_Up/Delay_Resp from a master not selected */
	uint64_t seq_mismatch;      /* Follow_Up or Delay_Resp matching nothing pending */
	uint64_t not_for_us;        /* Delay_Resp to another port identity */
	uint64_t foreign_full;      /* Announce from a 5th master */
	uint64_t master_changes;
	uint64_t samples, outliers, steps, master_steps, backward_holds;
	uint64_t holdovers;         /* times the Syncs stopped while locked */
	uint64_t delay_resp_lost;   /* Delay_Req never answered */
};

/* One servo sample: the servo's view at a Sync (t1 master, t2 local). */
struct ptp_sample {
	uint64_t tsc;            /* t2 as TSC */
	int64_t t1_ns;           /* master origin time, correction not applied */
	int64_t t2_ns;           /* the mapping's time of t2 before this update */
	int64_t correction_ns;   /* Sync (+ Follow_Up) correction */
	int64_t offset_ns;       /* t2 - t1 - correction - mean path delay */
	int64_t mean_path_delay_ns; /* filtered; -1 while unknown */
	int64_t freq_ppb_scaled; /* the mapping's frequency correction, ppb * 2^16 */
	uint16_t seq_id;
	uint8_t state;           /* enum ptp_state after the update */
	uint8_t flags;           /* PTP_SF_* */
	uint32_t pad;
};
CORE_STATIC_ASSERT(sizeof(struct ptp_sample) == 64, "ptp_sample is a wire format");

#define PTP_SF_TWO_STEP 1u
#define PTP_SF_OUTLIER  2u  /* dropped by the offset filter */
#define PTP_SF_STEP     4u  /* the mapping stepped at this sample */

struct ptp_foreign {
	uint8_t port_id[10];     /* sender clockIdentity + portNumber */
	uint8_t ds[17];          /* priority1, class, accuracy, variance(2), priority2, gm id(8), steps(2), ... */
	bool used;
	uint64_t last_tsc;
	uint32_t count;          /* Announces seen */
	int8_t log_announce;
};

struct ptp {
	struct ptp_config cfg;
	struct ptp_counters c;
	/* mapping */
	uint64_t base_tsc, mult_nominal, mult;
	int64_t base_ns;
	int64_t floor_ns;        /* ptp_time never reports less (backward master step) */
	int64_t freq_sppb;       /* ppb * 2^16 */
	bool mapped;             /* the mapping has been set once */
	/* master */
	struct ptp_foreign foreign[PTP_FOREIGN_MAX];
	int best;                /* index into foreign, -1: none */
	int8_t log_sync;
	uint64_t last_sync_tsc;
	bool in_holdover;
	/* a two-step Sync waiting for its Follow_Up */
	bool sync_pending;
	uint16_t sync_seq;
	uint64_t sync_tsc;
	int64_t sync_corr_scaled;
	/* the last complete Sync, for the delay computation */
	bool s_valid;
	int64_t s_t1, s_t2;
	/* Delay_Req outstanding */
	bool dreq_sent;
	uint16_t dreq_seq;
	uint64_t dreq_tsc;       /* t3 as TSC */
	int64_t t3_ns;
	uint64_t next_dreq_tsc;
	int8_t log_delay_req;
	uint16_t next_seq;
	/* filters */
	int64_t delay_hist[PTP_DELAY_FILTER];
	uint32_t delay_n, delay_at;
	int64_t mpd_ns;          /* filtered mean path delay, -1 unknown */
	int64_t abs_offset_avg;  /* recent mean |offset| (exponential, 1/8) */
	uint32_t outlier_run;
	/* servo (linuxptp pi.c's states: count 0, 1, 2) */
	uint32_t servo_count;
	int64_t kp_q20, ki_q20;  /* constants * 2^20 for the sync interval 2^servo_log s */
	int8_t servo_log;
	uint64_t freq_est_cycles; /* the frequency estimate's least span */
	int64_t drift_sppb;
	int64_t s0_offset;
	uint64_t s0_tsc;
	enum ptp_state state;
	bool ever_locked;        /* a step back from now on holds (floor_ns) */
	/* samples */
	struct ptp_sample *samples;  /* caller-owned ring of cap */
	uint32_t samples_cap, samples_head;
	uint64_t samples_total;
};

/* The EUI-64 of IEEE 1588 7.5.2.2.2 from a MAC: mac[0..2] FF FE mac[3..5]. */
void ptp_clock_id_from_mac(uint8_t id[8], const uint8_t mac[6]);

/* samples: a caller-owned ring of cap entries (cap may be 0: no series). */
void ptp_init(struct ptp *s, const struct ptp_config *cfg, struct ptp_sample *samples, uint32_t cap);

/* A received PTP message (transport stripped), len bytes, received at TSC
 * tsc_rx (t2 for a Sync). Returns PTP_ACT_* bits. */
unsigned ptp_rx(struct ptp *s, const uint8_t *msg, size_t len, uint64_t tsc_rx);

/* Build the Delay_Req ptp_rx asked for into buf (PTP_DELAY_REQ_LEN bytes);
 * its length, or 0 when cap is too small. Call ptp_delay_req_sent with its
 * send time once it is on its way. */
size_t ptp_delay_req(struct ptp *s, uint8_t *buf, size_t cap);
void ptp_delay_req_sent(struct ptp *s, uint64_t tsc_tx);

/* The state at TSC now (holdover is seen from the time since the last Sync). */
enum ptp_state ptp_state(struct ptp *s, uint64_t now);

/* PTP time (ns since the PTP epoch) at TSC tsc by the current mapping; 0
 * before the first Sync. Never below a time it reported for a later TSC. */
static inline int64_t ptp_time(const struct ptp *s, uint64_t tsc)
{
	if (!s->mapped)
		return 0;
	int64_t d = (int64_t)(tsc - s->base_tsc);
	int64_t ns;
	if (d >= 0)
		ns = s->base_ns + (int64_t)(((unsigned __int128)(uint64_t)d * s->mult) >> 32);
	else
		ns = s->base_ns - (int64_t)(((unsigned __int128)(uint64_t)-d * s->mult) >> 32);
	return ns > s->floor_ns ? ns : s->floor_ns;
}

/* A span of ns of PTP time in TSC cycles, at the mapping's disciplined rate
 * (the TSC's calibration may be far off; the mapping's rate is learned). */
uint64_t ptp_ns_to_cycles(const struct ptp *s, uint64_t ns);

/* The series, oldest first: sample i of ptp_samples_count. */
uint32_t ptp_samples_count(const struct ptp *s);
const struct ptp_sample *ptp_sample_at(const struct ptp *s, uint32_t i);

/* The series on a byte sink, after the tslog dump:
 *
 *   @@HFTPTP 1 BEGIN
 *   S <128 hex digits>                  one line per struct ptp_sample, oldest first
 *   @@HFTPTP END samples=<n> total=<all ever> crc32=<8 hex digits>
 *
 * The CRC-32 (tslog_crc32) covers the S lines with their newlines. */
void ptp_dump_series(const struct ptp *s, tslog_write_fn write, void *ctx);

/* The counters as "ptp_<name>" lines of a tslog dump, with the state at now
 * and the last offset, path delay and frequency. */
void ptp_dump_counters(struct ptp *s, struct tslog_dump *d, uint64_t now);

#endif
