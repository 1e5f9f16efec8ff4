/*
 * hiccup.h - the poll-loop gap recorder (sysjitter / hiccups style).
 *
 * A SUT spins its own poll loop on its core for a fixed time and calls
 * hiccup_note() with a fresh TSC reading once per iteration. Every gap
 * between two readings longer than the threshold is a hiccup: time the loop
 * did not run (an interrupt, an SMI, a vCPU descheduled by the host, a guest
 * kernel's timer tick). Hiccups go into a histogram of log2 buckets of their
 * length in ns (count and total time per bucket) and a list of the
 * HICCUP_TOP longest, each with when it happened. At the end of the run the
 * SUT writes them as tslog counters (hiccup_*, see hiccup_dump_counters), so
 * the dump format does not change.
 *
 * Integers only (the kernel has no FPU/SSE state to spare): cycles become
 * ns by a split multiply that cannot overflow for TSC rates below 18 GHz.
 * Shared by HFT-OS (kernel_src/runtime/trade.c) and the Linux baselines.
 */
#ifndef CORE_HICCUP_H
#define CORE_HICCUP_H

#include "platform.h"
#include "tslog.h"

#define HICCUP_BUCKETS 40  /* bucket k: gaps of [2^k, 2^(k+1)) ns; the last also holds longer ones */
#define HICCUP_TOP     8   /* longest gaps kept, with their time */

struct hiccup {
	uint64_t tsc_hz;
	uint64_t duration_ns, threshold_ns;  /* as asked for */
	uint64_t threshold_cycles;
	uint64_t start, last, end;           /* TSC: first reading, previous one, deadline */
	uint64_t iterations;                 /* hiccup_note calls */
	uint64_t gaps;                       /* gaps above the threshold */
	uint64_t gap_ns_total;
	uint64_t bucket_count[HICCUP_BUCKETS];
	uint64_t bucket_ns[HICCUP_BUCKETS];
	uint64_t top_ns[HICCUP_TOP];         /* longest first; 0: unused */
	uint64_t top_at_ns[HICCUP_TOP];      /* end of that gap, ns after start */
	bool recorded;                       /* hiccup_start was called */
};

/* cycles * 1e9 / hz and ns * hz / 1e9 in integers (hz < 1.8e10). */
uint64_t hiccup_cycles_to_ns(uint64_t cycles, uint64_t hz);
uint64_t hiccup_ns_to_cycles(uint64_t ns, uint64_t hz);

/* Reset *h and start recording at TSC `now` for duration_ns. */
void hiccup_start(struct hiccup *h, uint64_t tsc_hz, uint64_t duration_ns,
		  uint64_t threshold_ns, uint64_t now);

/* Record one gap of `cycles` ending at TSC `now` (hiccup_note's slow path). */
void hiccup_gap(struct hiccup *h, uint64_t cycles, uint64_t now);

/* One iteration of the poll loop at TSC `now`; false once the duration is
 * over. The common case is a subtraction, a compare and an increment. */
static inline bool hiccup_note(struct hiccup *h, uint64_t now)
{
	uint64_t gap = now - h->last;

	h->last = now;
	h->iterations++;
	if (CORE_UNLIKELY(gap > h->threshold_cycles))
		hiccup_gap(h, gap, now);
	return (int64_t)(now - h->end) < 0;
}

/* The hiccup_* counters (nothing when hiccup_start was never called):
 * hiccup_duration_ns, hiccup_threshold_ns, hiccup_span_ns (measured),
 * hiccup_iterations, hiccup_gaps, hiccup_gap_ns_total, hiccup_max_ns,
 * hiccup_bucket_<k> and hiccup_bucket_<k>_ns for every non-empty bucket,
 * hiccup_top_<i>_ns and hiccup_top_<i>_at_ns for each kept gap. */
void hiccup_dump_counters(const struct hiccup *h, struct tslog_dump *d);

#endif
