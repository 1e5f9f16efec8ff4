/*
 * itch.h - NASDAQ TotalView-ITCH 5.0 message decoder.
 *
 * Every message type of the specification (§4.1-§4.8) is recognised by its
 * type byte and checked against its exact length. The decoder flattens one
 * message into struct itch_msg: the fields the book, the strategy and the
 * Arrow tables use, each flagged in `present` so absent fields become nulls.
 * It never reads past `len`; an unknown type or a wrong length is reported
 * and counted by the caller's struct itch_counters.
 */
#ifndef CORE_ITCH_H
#define CORE_ITCH_H

#include "platform.h"
#include "param.h"

enum itch_status {
	ITCH_OK = 0,
	ITCH_E_EMPTY = -1,    /* zero-length message */
	ITCH_E_UNKNOWN = -2,  /* type byte not in ITCH 5.0 */
	ITCH_E_LENGTH = -3,   /* length differs from the type's exact length */
};

/* Bits of itch_msg.present: which optional fields the message carried. */
enum itch_field {
	ITCH_F_ORDER_REF = 1u << 0,
	ITCH_F_NEW_ORDER_REF = 1u << 1,
	ITCH_F_SIDE = 1u << 2,
	ITCH_F_SHARES = 1u << 3,
	ITCH_F_STOCK = 1u << 4,
	ITCH_F_PRICE = 1u << 5,
	ITCH_F_MATCH = 1u << 6,
	ITCH_F_ATTRIBUTION = 1u << 7,
	ITCH_F_PRINTABLE = 1u << 8,
	ITCH_F_CROSS_TYPE = 1u << 9,
	ITCH_F_EVENT_CODE = 1u << 10, /* S event, H trading state, Y/N/h/W codes */
	ITCH_F_REASON = 1u << 11,     /* H reason, R market category ... */
};

struct itch_msg {
	uint64_t timestamp_ns;  /* ns since midnight (48-bit field) */
	uint64_t order_ref;     /* A F E C X D U(original) P */
	uint64_t new_order_ref; /* U */
	uint64_t shares;        /* A F E C X U P Q I(paired); 64-bit for Q and I */
	uint64_t match_number;  /* E C P Q B */
	uint32_t price;         /* 1/10,000 $: A F P U(new) C(exec) Q(cross) I(ref) */
	uint32_t present;       /* enum itch_field bits */
	uint16_t stock_locate;
	uint16_t tracking;
	char type;
	char side;              /* 'B'/'S' (A F P), I: imbalance direction */
	char printable;         /* C */
	char cross_type;        /* Q I */
	char event_code;        /* S event, H state, Y action, N flag, W level, h action */
	char stock[8];          /* space padded, as on the wire */
	char attribution[4];    /* F MPID, L MPID */
	char reason[4];         /* H reason; R: category, status, ... raw bytes */
};

struct itch_counters {
	uint64_t messages;              /* decoded successfully */
	uint64_t by_type[ITCH_NTYPES];  /* decoded, by type byte */
	uint64_t unknown_type;
	uint64_t bad_length;
	uint64_t empty;
};

/* The common header (ITCH 5.0 §1.3): type @0, stock locate @1, tracking
 * number @3, timestamp u48 @5; the body starts at @11. */
#define ITCH_OFF_LOCATE 1
#define ITCH_OFF_TRACKING 3
#define ITCH_OFF_TIMESTAMP 5
#define ITCH_OFF_BODY 11

/* Tracking number @3 and timestamp @5 are eight adjacent bytes: one load
 * and one byte swap for both (every message is at least 11 bytes). */
static CORE_ALWAYS_INLINE void itch_dec_track_time(const uint8_t *b, struct itch_msg *m)
{
	uint64_t v = rd_be64(b + ITCH_OFF_TRACKING);

	m->tracking = (uint16_t)(v >> 48);
	m->timestamp_ns = v & ((UINT64_C(1) << 48) - 1);
}

/* §4.3.1 A, the commonest message and trigger, in two parts: what every
 * Add has the same (type, present bits, absent fields as zero), once, by
 * itch_dec_add_prepare; what it carries, per message, by
 * itch_dec_add_fields into the same struct. The engine keeps one struct for
 * Adds prepared at init, so an Add writes only its own fields. Together the
 * same values as the general path (itch.c, itch_dec_add_direct). */
static inline void itch_dec_add_prepare(struct itch_msg *m)
{
	core_memset(m, 0, sizeof *m);
	m->present = ITCH_F_ORDER_REF | ITCH_F_SIDE | ITCH_F_SHARES | ITCH_F_STOCK | ITCH_F_PRICE;
	m->type = 'A';
}

/* An Add's own fields, read from the wire before anything is stored (so a
 * caller that also wants them in registers, the engine's add path, reads
 * each once: a store through *m could otherwise alias the packet). */
struct itch_add_fields {
	uint64_t order_ref;
	uint32_t shares;
	uint32_t price;
	uint16_t locate;
	char side;
};

static CORE_ALWAYS_INLINE struct itch_add_fields itch_dec_add_fields(const uint8_t *b, struct itch_msg *m)
{
	uint64_t tt = rd_be64(b + ITCH_OFF_TRACKING);
	struct itch_add_fields f = {
		.order_ref = rd_be64(b + 11), .shares = rd_be32(b + 20), .price = rd_be32(b + 32),
		.locate = rd_be16(b + ITCH_OFF_LOCATE), .side = (char)b[19],
	};
	char stock[8];

	core_memcpy(stock, b + 24, sizeof stock);
	m->tracking = (uint16_t)(tt >> 48);
	m->timestamp_ns = tt & ((UINT64_C(1) << 48) - 1);
	m->order_ref = f.order_ref;
	m->shares = f.shares;
	m->price = f.price;
	m->stock_locate = f.locate;
	m->side = f.side;
	core_memcpy(m->stock, stock, sizeof m->stock);
	return f;
}

static CORE_ALWAYS_INLINE void itch_dec_add_direct(const uint8_t *b, struct itch_msg *m)
{
	itch_dec_add_prepare(m);
	itch_dec_add_fields(b, m);
}

/* §4.4.1 E (ref @11, executed shares u32 @19, match @23), §4.4.3 X (ref,
 * cancelled shares u32 @19) and §4.4.4 D (ref), the order events after the
 * add, in two parts as the Add: what every event of a type has the same,
 * once (itch_dec_event_prepare, one struct per type), and what it carries
 * (itch_dec_event_fields: the header, the ref, E's and X's shares, E's
 * match). */
static inline void itch_dec_event_prepare(struct itch_msg *m, char type)
{
	core_memset(m, 0, sizeof *m);
	m->present = type == 'E' ? ITCH_F_ORDER_REF | ITCH_F_SHARES | ITCH_F_MATCH
		   : type == 'X' ? ITCH_F_ORDER_REF | ITCH_F_SHARES : ITCH_F_ORDER_REF;
	m->type = type;
}

static CORE_ALWAYS_INLINE void itch_dec_event_fields(const uint8_t *b, struct itch_msg *m, char type)
{
	itch_dec_track_time(b, m);
	m->order_ref = rd_be64(b + 11);
	m->stock_locate = rd_be16(b + ITCH_OFF_LOCATE);
	if (type != 'D')
		m->shares = rd_be32(b + 19);
	if (type == 'E')
		m->match_number = rd_be64(b + 23);
}

static CORE_ALWAYS_INLINE void itch_dec_event_direct(const uint8_t *b, struct itch_msg *m, char type)
{
	itch_dec_event_prepare(m, type);
	itch_dec_event_fields(b, m, type);
}

/* Zero *m with one 8-byte store per word, unrolled: a rep stos (what the
 * compiler emits for an 80-byte memset without SSE) pays a microcode
 * start-up on every message, and under -icount one instruction per word. */
static inline void itch_msg_clear(struct itch_msg *m)
{
	CORE_STATIC_ASSERT(sizeof *m % 8 == 0, "itch_msg is cleared in 8-byte words");
#pragma GCC unroll 16
	for (size_t i = 0; i < sizeof *m; i += 8)
		core_memset((uint8_t *)m + i, 0, 8);
}

/* F and P carry an Add's layout (ref, side, shares, stock, price) and one
 * field more at @36: the whole struct cleared, then those fields. */
static CORE_ALWAYS_INLINE void itch_dec_add_layout(const uint8_t *b, struct itch_msg *m, char type,
						    uint32_t more)
{
	itch_msg_clear(m);
	m->present = ITCH_F_ORDER_REF | ITCH_F_SIDE | ITCH_F_SHARES | ITCH_F_STOCK | ITCH_F_PRICE | more;
	m->type = type;
	itch_dec_add_fields(b, m);
}

/* §4.3.2 F, an Add with attribution (MPID @36), the same way. */
static CORE_ALWAYS_INLINE void itch_dec_add_mpid_direct(const uint8_t *b, struct itch_msg *m)
{
	itch_dec_add_layout(b, m, 'F', ITCH_F_ATTRIBUTION);
	core_memcpy(m->attribution, b + 36, sizeof m->attribution);
}

/* §4.5.1 P, a non-cross trade, plus the match number @36, the same way. */
static CORE_ALWAYS_INLINE void itch_dec_trade_direct(const uint8_t *b, struct itch_msg *m)
{
	itch_dec_add_layout(b, m, 'P', ITCH_F_MATCH);
	m->match_number = rd_be64(b + 36);
}

/* §4.4.5 U (original ref @11, new ref @19, shares u32 @27, price @31),
 * the same way. */
static CORE_ALWAYS_INLINE void itch_dec_replace_direct(const uint8_t *b, struct itch_msg *m)
{
	itch_dec_track_time(b, m);
	m->order_ref = rd_be64(b + 11);
	m->new_order_ref = rd_be64(b + 19);
	m->shares = rd_be32(b + 27);
	m->match_number = 0;
	m->price = rd_be32(b + 31);
	m->present = ITCH_F_ORDER_REF | ITCH_F_NEW_ORDER_REF | ITCH_F_SHARES | ITCH_F_PRICE;
	m->stock_locate = rd_be16(b + ITCH_OFF_LOCATE);
	m->type = 'U';
	size_t tail = offsetof(struct itch_msg, side);
	core_memset((uint8_t *)m + tail, 0, sizeof *m - tail);
}

/* Exact length of a message of `type` including the type byte (ITCH 5.0
 * §4.1-§4.8), or 0 when the type is not part of ITCH 5.0. */
uint16_t itch_msg_len(uint8_t type);

/* Decode the message in buf[0..len) into *m. Returns ITCH_OK or a negative
 * enum itch_status; *m is only meaningful on ITCH_OK. Reads nothing beyond
 * buf[len-1]. */
int itch_decode(const uint8_t *buf, size_t len, struct itch_msg *m);

/* itch_decode plus accounting into *c. */
int itch_decode_counted(const uint8_t *buf, size_t len, struct itch_msg *m,
			struct itch_counters *c);

/* itch_decode_counted with U and F decoded inline: the engine's entry for
 * every message it does not decode itself (A, D, E, X, P: engine.h), with
 * no call for the commonest of the rest. */
static CORE_ALWAYS_INLINE int itch_decode_fast(const uint8_t *buf, size_t len, struct itch_msg *m,
					       struct itch_counters *c)
{
	uint8_t t;

	if (len == 35 && buf[0] == 'U') {
		itch_dec_replace_direct(buf, m);
		t = 'U';
	} else if (len == 40 && buf[0] == 'F') {
		itch_dec_add_mpid_direct(buf, m);
		t = 'F';
	} else {
		return itch_decode_counted(buf, len, m, c);
	}
	c->messages++;
	c->by_type[t]++;
	return ITCH_OK;
}

/*
 * ITCH file framing (NASDAQ's binary files): each message behind a 2-byte
 * big-endian length. Some files (RITCH's samples) write 0 for every length;
 * then the reader falls back to the length the type implies.
 */
enum itch_frame_status {
	ITCH_FRAME_OK = 0,
	ITCH_FRAME_END = 1,          /* clean end of buffer */
	ITCH_FRAME_TRUNCATED = -1,   /* a length or message runs past the end */
	ITCH_FRAME_UNFRAMED = -2,    /* length 0 and unknown type: cannot resync */
};

struct itch_frame {
	const uint8_t *msg;  /* the message, type byte first */
	uint16_t len;        /* its length as framed (or implied when 0) */
	uint16_t prefix;     /* the raw length prefix */
};

/* Read the frame at *off in buf[0..len) and advance *off past it. */
int itch_frame_next(const uint8_t *buf, size_t len, size_t *off, struct itch_frame *f);

#endif
