/*
 * tsc.h - time-stamp counter frequency.
 */
#ifndef HFTOS_TSC_H
#define HFTOS_TSC_H

#include <stdbool.h>
#include <stdint.h>

enum tsc_source {
	TSC_SOURCE_NONE = 0,
	TSC_SOURCE_CPUID_15H, /* crystal clock x ratio, exact */
	TSC_SOURCE_CPUID_16H, /* nominal base frequency, MHz resolution */
	TSC_SOURCE_KVMCLOCK,  /* KVM's pvclock: the host's exact TSC-to-ns scale */
	TSC_SOURCE_PIT,       /* measured against PIT channel 2 */
};

struct tsc_info {
	uint64_t hz;            /* the frequency in use */
	enum tsc_source source;
	uint64_t pit_hz;        /* PIT measurement (median of 3 windows), kept as a
	                         * cross-check; 0 = failed */
	uint32_t pit_spread_ppm;  /* (max - min) / median of the 3 windows */
	uint32_t pit_bracket_ppm; /* worst window's read-bracket width / window */
	uint64_t kvmclock_hz;   /* KVM's pvclock scale as Hz; 0 = not under KVM */
	int64_t check_ppm;      /* (pit_hz - hz) / hz in ppm when PIT is the cross-check, else 0 */
	bool invariant;         /* CPUID.80000007h:EDX[8] */
};

/* Determine the TSC frequency: CPUID 15h when it gives the crystal clock and
 * ratio, else CPUID 16h's base frequency, else the PIT measurement. The PIT
 * is always measured (3 windows of 4 ms) so the log can show both. */
void tsc_init(struct tsc_info *out);

const char *tsc_source_name(enum tsc_source s);

/* TSC cycles in us microseconds, at the frequency tsc_init() chose (an
 * assumed 3 GHz before that, so early timeouts are merely approximate). */
uint64_t tsc_us_to_cycles(uint64_t us);

/* Deadline helpers for bounded waits: tsc_deadline(us) then poll
 * tsc_expired(deadline). */
static inline uint64_t tsc_deadline(uint64_t us);
static inline bool tsc_expired(uint64_t deadline);

/* The TSC's Hz over one PIT-timed window of about window_us (at most ~50 ms),
 * each end a bracketed PIT read; *bracket_ppm gets the brackets' mean width
 * relative to the window (the measurement's resolution). 0 if the PIT never
 * advanced (no PIT, or the wait timed out). */
uint64_t tsc_measure_pit(uint32_t window_us, uint32_t *bracket_ppm);

#include "arch/x86_64/cpu.h"

static inline uint64_t tsc_deadline(uint64_t us) { return tsc_read() + tsc_us_to_cycles(us); }
static inline bool tsc_expired(uint64_t deadline) { return (int64_t)(tsc_read() - deadline) > 0; }

#endif
