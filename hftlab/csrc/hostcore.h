/*
 * hostcore.h - host-side drivers around kernel_src/core for the cffi
 * extension: batch ITCH decoding straight into Arrow-ready column buffers,
 * and the golden model's loop (ITCH file -> MoldUDP64 packets -> engine ->
 * OUCH bytes). Kept out of kernel_src/core because only the host needs it;
 * it calls the core and never changes its behaviour.
 */
#ifndef HFTLAB_HOSTCORE_H
#define HFTLAB_HOSTCORE_H

#include "engine.h"
#include "ouch.h"
#include "tslog.h"
#include "hiccup.h"
#include "net.h"

#define HC_NEED_SPACE 2  /* stopped: the output buffer is full */

/* Column buffers the caller allocates for up to `cap` messages. stock_data
 * needs 8*cap bytes, stock_offsets cap+1 entries (Arrow string layout). */
struct hc_itch_cols {
	uint8_t *msg_type;
	uint16_t *stock_locate;
	uint16_t *tracking;
	uint64_t *timestamp_ns;
	uint64_t *order_ref;
	uint64_t *new_order_ref;
	uint8_t *side;
	uint64_t *shares;
	int32_t *stock_offsets;
	uint8_t *stock_data;
	uint32_t *price;
	uint64_t *match_number;
	uint32_t *present;
	uint8_t *printable;
	uint8_t *cross_type;
	uint8_t *event_code;
	uint64_t *file_offset;  /* byte offset of the message's length prefix */
	size_t cap;
};

struct hc_decode_result {
	size_t rows;       /* rows written */
	size_t offset;     /* where decoding stopped */
	int status;        /* enum itch_frame_status of the stop */
};

/* Decode framed ITCH messages from buf[*off..len) into cols until cap rows,
 * max_msgs framed messages (0 = no limit, counting skipped ones too) or the
 * end. Unknown types and wrong lengths are counted in *cnt and skipped. */
struct hc_decode_result hc_itch_decode(const uint8_t *buf, size_t len, size_t off,
				       uint64_t max_msgs, struct hc_itch_cols *cols,
				       struct itch_counters *cnt);

/* Golden model run state: the engine plus where accepted orders go. */
struct hc_golden {
	struct engine *eng;
	uint8_t *out;          /* OUCH messages back to back, as the SUT sends them */
	size_t out_cap;        /* orders that fit: out holds out_cap * OUCH_MAX_LEN bytes */
	size_t n_out;          /* orders written */
	size_t out_len;        /* bytes written */
	uint64_t lost;         /* orders beyond out_cap (caller grows and retries) */
	uint64_t *top;         /* NULL, or 4 per order: the book's best bid, its
				* shares, best ask, its shares (0 0 for an empty
				* side) when the order went out: the research loop's
				* per-order book state */
	uint64_t next_seq;     /* sequence number of the next message packed */
	uint64_t packets;
	uint8_t session[MOLD_SESSION_LEN];
};

/* Pack framed ITCH messages from buf[off..len) into MoldUDP64 datagrams of at
 * most max_payload bytes and at most max_count messages, and run each through
 * engine_on_packet. Stops after max_msgs messages (0 = all), at the end, at a
 * framing error, or when the order buffer is full. */
struct hc_decode_result hc_golden_feed_file(struct hc_golden *g, const uint8_t *buf,
					    size_t len, size_t off, uint64_t max_msgs,
					    uint16_t max_payload, uint16_t max_count);

/* Datagrams packed back to back: datagram i is data[offsets[i]..offsets[i+1])
 * holding counts[i] messages. */
struct hc_packets {
	uint8_t *data;
	size_t cap;            /* bytes of data */
	uint64_t *offsets;     /* max + 1 entries */
	uint16_t *counts;      /* max entries */
	size_t max;
	size_t n;              /* out */
};

/* Pack framed ITCH messages from buf[off..len) into MoldUDP64 datagrams
 * exactly as hc_golden_feed_file does, numbering from first_seq. Stops at
 * max_msgs messages, the end, a framing error, out->max datagrams, or with
 * status HC_NEED_SPACE when out->data has less than 64 KiB left. */
struct hc_decode_result hc_pack_file(const uint8_t *buf, size_t len, size_t off,
				     uint64_t max_msgs, uint16_t max_payload, uint16_t max_count,
				     const uint8_t *session, uint64_t first_seq, struct hc_packets *out);

/* Run one MoldUDP64 datagram through the engine, orders into g->out. */
int hc_golden_feed_packet(struct hc_golden *g, const uint8_t *buf, size_t len);

/* Wrap n UDP payloads (data[offsets[i]..offsets[i+1])) into Ethernet/IPv4/
 * UDP frames from src to dst, back to back in out (each payload + 42 bytes,
 * at least 60); out_offsets gets n + 1 entries. Returns the bytes written. */
size_t hc_frame_feed(const uint8_t *data, const uint64_t *offsets, size_t n,
		     const struct net_endpoint *src, const struct net_endpoint *dst,
		     uint8_t *out, uint64_t *out_offsets);

/* Write a tslog dump (n counters, then the records) into out[0..cap).
 * Returns the bytes the dump needs; it is complete only when <= cap. */
size_t hc_tslog_dump(char *out, size_t cap, const struct tslog *l,
		     const char *const *names, const uint64_t *values, size_t n);

/* Write a dump holding only the gap recorder's counters (hiccup_dump_counters)
 * into out[0..cap); returns the bytes it needs, as hc_tslog_dump. */
size_t hc_hiccup_dump(char *out, size_t cap, const struct hiccup *h);

#endif
