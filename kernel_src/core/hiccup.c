/*
 * hiccup.c - the poll-loop gap recorder (see hiccup.h).
 */
#include "hiccup.h"

#define NS_PER_S 1000000000ull

uint64_t hiccup_cycles_to_ns(uint64_t cycles, uint64_t hz)
{
	/* (c / hz) * 1e9 + (c % hz) * 1e9 / hz: the second product is < hz * 1e9 */
	return hz ? (cycles / hz) * NS_PER_S + (cycles % hz) * NS_PER_S / hz : 0;
}

uint64_t hiccup_ns_to_cycles(uint64_t ns, uint64_t hz)
{
	return (ns / NS_PER_S) * hz + (ns % NS_PER_S) * hz / NS_PER_S;
}

void hiccup_start(struct hiccup *h, uint64_t tsc_hz, uint64_t duration_ns,
		  uint64_t threshold_ns, uint64_t now)
{
	core_memset(h, 0, sizeof(*h));
	h->tsc_hz = tsc_hz;
	h->duration_ns = duration_ns;
	h->threshold_ns = threshold_ns;
	h->threshold_cycles = hiccup_ns_to_cycles(threshold_ns, tsc_hz);
	h->start = h->last = now;
	h->end = now + hiccup_ns_to_cycles(duration_ns, tsc_hz);
	h->recorded = true;
}

/* floor(log2(ns)), 0 for 0, capped at the last bucket. */
static unsigned hiccup_bucket(uint64_t ns)
{
	unsigned k = ns ? 63u - (unsigned)__builtin_clzll(ns) : 0u;

	return k < HICCUP_BUCKETS ? k : HICCUP_BUCKETS - 1;
}

/* Keep the HICCUP_TOP longest gaps, longest first (insertion: HICCUP_TOP is tiny). */
static void hiccup_keep_top(struct hiccup *h, uint64_t ns, uint64_t at_ns)
{
	int i = HICCUP_TOP - 1;

	if (ns <= h->top_ns[i])
		return;
	for (; i > 0 && h->top_ns[i - 1] < ns; i--) {
		h->top_ns[i] = h->top_ns[i - 1];
		h->top_at_ns[i] = h->top_at_ns[i - 1];
	}
	h->top_ns[i] = ns;
	h->top_at_ns[i] = at_ns;
}

void hiccup_gap(struct hiccup *h, uint64_t cycles, uint64_t now)
{
	uint64_t ns = hiccup_cycles_to_ns(cycles, h->tsc_hz);
	unsigned k = hiccup_bucket(ns);

	h->gaps++;
	h->gap_ns_total += ns;
	h->bucket_count[k]++;
	h->bucket_ns[k] += ns;
	hiccup_keep_top(h, ns, hiccup_cycles_to_ns(now - h->start, h->tsc_hz));
}

/* "<prefix><k><suffix>" into buf (at least 48 bytes). */
static const char *hiccup_name(char *buf, const char *prefix, unsigned k, const char *suffix)
{
	char digits[10];
	size_t n = 0, d = 0;

	while (*prefix)
		buf[n++] = *prefix++;
	do {
		digits[d++] = (char)('0' + k % 10);
		k /= 10;
	} while (k);
	while (d)
		buf[n++] = digits[--d];
	while (*suffix)
		buf[n++] = *suffix++;
	buf[n] = '\0';
	return buf;
}

void hiccup_dump_counters(const struct hiccup *h, struct tslog_dump *d)
{
	char name[48];

	if (!h->recorded)
		return;
	const struct tslog_counter c[] = {
		{ "hiccup_duration_ns", h->duration_ns },
		{ "hiccup_threshold_ns", h->threshold_ns },
		{ "hiccup_span_ns", hiccup_cycles_to_ns(h->last - h->start, h->tsc_hz) },
		{ "hiccup_iterations", h->iterations },
		{ "hiccup_gaps", h->gaps },
		{ "hiccup_gap_ns_total", h->gap_ns_total },
		{ "hiccup_max_ns", h->top_ns[0] },
	};
	tslog_dump_counters(d, c, sizeof(c) / sizeof(c[0]));
	for (unsigned k = 0; k < HICCUP_BUCKETS; k++) {
		if (!h->bucket_count[k])
			continue;
		tslog_dump_counter(d, hiccup_name(name, "hiccup_bucket_", k, ""), h->bucket_count[k]);
		tslog_dump_counter(d, hiccup_name(name, "hiccup_bucket_", k, "_ns"), h->bucket_ns[k]);
	}
	for (unsigned i = 0; i < HICCUP_TOP && h->top_ns[i]; i++) {
		tslog_dump_counter(d, hiccup_name(name, "hiccup_top_", i, "_ns"), h->top_ns[i]);
		tslog_dump_counter(d, hiccup_name(name, "hiccup_top_", i, "_at_ns"), h->top_at_ns[i]);
	}
}
