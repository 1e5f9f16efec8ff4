/*
 * tslog.h - the SUT's timestamp log and its serial dump format.
 *
 * Every system under test (HFT-OS, and the Linux/DPDK baselines linking this
 * same file) records, per order, the trigger sequence number and three
 * cycle-counter stamps into a fixed ring of records: when the RX descriptor
 * was seen done (tsc_rx), when the order frame was complete in the TX buffer
 * just before the doorbell write (tsc_doorbell), and right after the
 * doorbell write returned (tsc_tx). tsc_doorbell - tsc_rx is the decide span
 * (the software path: driver, book, strategy, risk, encoding) and tsc_tx -
 * tsc_doorbell the doorbell span (what the NIC's register write costs: under
 * virtualisation, the exit). At the end of a run the SUT writes one framed,
 * checksummed text block that hftlab decodes into sut_log.arrow:
 *
 *   @@HFTDUMP 2 BEGIN
 *   C <name> <decimal u64>              one line per counter
 *   R <112 hex digits>                  one line per record (struct tslog_rec)
 *   @@HFTDUMP END records=<n> crc32=<8 hex digits>
 *
 * The number after @@HFTDUMP is the format version (TSLOG_DUMP_VERSION):
 * bump it whenever struct tslog_rec or the line syntax changes, so a reader
 * refuses a dump it does not know instead of misreading it. Version 1 had
 * 40-byte records without tsc_doorbell and ptp_ns.
 *
 * The CRC-32 (IEEE 802.3, reflected, as zlib's crc32) covers every byte from
 * the first C/R line up to and including the newline before @@HFTDUMP END.
 * Records are little-endian, as the struct lies in memory on x86_64.
 */
#ifndef CORE_TSLOG_H
#define CORE_TSLOG_H

#include "platform.h"

#define TSLOG_DUMP_VERSION 2

struct tslog_rec {
	uint64_t trigger_seq;
	uint64_t tsc_rx;       /* RX descriptor seen done */
	uint64_t tsc_doorbell; /* order frame and descriptor complete, just before the
	                        * TX doorbell write (baselines: before the send call) */
	uint64_t tsc_tx;       /* right after the TX doorbell write returned */
	uint64_t ptp_ns;       /* PTP time of the frame's RX stamp; 0: none */
	uint32_t price;
	uint32_t shares;
	uint16_t locate;
	char side;
	uint8_t flags;         /* TSLOG_F_* */
	uint32_t pad;          /* SUT-specific (the baselines': kernel's share of RX) */
};
CORE_STATIC_ASSERT(sizeof(struct tslog_rec) == 56, "tslog_rec is a wire format");

#define TSLOG_F_WRAPPED 1u  /* (in the log header) older records were overwritten */

struct tslog {
	struct tslog_rec *recs;  /* caller-owned, cap entries */
	uint32_t cap;
	uint32_t head;           /* next slot to write */
	uint64_t total;          /* records ever written */
};

/* Byte sink for the dump: HFT-OS passes its serial writer, hosts stdout. */
typedef void (*tslog_write_fn)(void *ctx, const char *buf, size_t len);

void tslog_init(struct tslog *l, struct tslog_rec *recs, uint32_t cap);

/* Slot for the next record; the ring overwrites the oldest when full. */
static inline struct tslog_rec *tslog_next(struct tslog *l)
{
	struct tslog_rec *r = &l->recs[l->head];

	l->head = (l->head + 1 == l->cap) ? 0 : l->head + 1;
	l->total++;
	return r;
}

/* Incremental CRC-32 (IEEE, reflected); start with crc = 0. */
uint32_t tslog_crc32(uint32_t crc, const void *buf, size_t len);

/* The dump writer: begin, counters, records (oldest first), end. */
struct tslog_dump {
	tslog_write_fn write;
	void *ctx;
	uint32_t crc;
	uint64_t records;
};

void tslog_dump_begin(struct tslog_dump *d, tslog_write_fn write, void *ctx);
void tslog_dump_counter(struct tslog_dump *d, const char *name, uint64_t value);

struct tslog_counter {
	const char *name;
	uint64_t value;
};

/* tslog_dump_counter for each of c[0..n). */
void tslog_dump_counters(struct tslog_dump *d, const struct tslog_counter *c, size_t n);
void tslog_dump_records(struct tslog_dump *d, const struct tslog *l);
void tslog_dump_end(struct tslog_dump *d);

#endif
