/*
 * ouch.h - NASDAQ OUCH 4.2 Enter Order (§2.1), 49 bytes, big-endian.
 *
 * The 14-byte order token carries the tick-to-trade join key: two hex digits
 * of instance id then twelve hex digits of the MoldUDP64 sequence number of
 * the message that triggered the order (docs/architecture.md §3). Time in force 0
 * is Immediate Or Cancel.
 */
#ifndef CORE_OUCH_H
#define CORE_OUCH_H

#include "platform.h"
#include "param.h"
#include "strategy.h"

#define OUCH_TIF_IOC 0u
#define OUCH_TIF_MARKET_HOURS 99998u  /* a resting order (ORDER_POST, replaces) */
#define OUCH_REPLACE_LEN 47           /* Replace Order 'U' (§2.2) */
#define OUCH_CANCEL_LEN 19            /* Cancel Order 'X' (§2.3) */
#define OUCH_MAX_LEN OUCH_ENTER_LEN   /* the longest message we send */

struct ouch_enter {
	uint64_t trigger_seq;
	uint32_t shares;
	uint32_t price;
	uint32_t tif;
	uint32_t min_qty;
	uint8_t instance;
	char side;           /* 'B' 'S' 'T' 'E' */
	char stock[8];
	char firm[4];
	char display;
	char capacity;
	char iso;
	char cross_type;
	char customer_type;
	char token[OUCH_TOKEN_LEN];
};

/* Token for (instance, seq); seq must be < 2^48. */
void ouch_token(char out[OUCH_TOKEN_LEN], uint8_t instance, uint64_t seq);
/* Parse a token; false when it is not one of ours. */
bool ouch_token_parse(const char tok[OUCH_TOKEN_LEN], uint8_t *instance, uint64_t *seq);

/* Encode an IOC Enter Order for an accepted intent into buf (>= 49 bytes).
 * Returns OUCH_ENTER_LEN, or 0 when cap is too small. */
size_t ouch_encode_order(uint8_t *buf, size_t cap, const struct order_intent *o,
			 uint8_t instance);

/* ouch_encode_order in two halves, for a sender that keeps one buffer per
 * order slot: ouch_encode_template writes the fields that are the same in
 * every order of `instance` (type, instance digits of the token, time in
 * force, firm, flags; returns OUCH_ENTER_LEN, or 0 when cap is too small)
 * once, and ouch_encode_fields then writes only what an intent changes
 * (sequence digits of the token, side, shares, stock, price) into a buffer
 * that holds such a template. Together they write exactly what
 * ouch_encode_order writes. */
size_t ouch_encode_template(uint8_t *buf, size_t cap, uint8_t instance);

/* Where ouch_encode_fields writes (OUCH 4.2 Enter Order; ouch.c has the
 * whole layout). */
#define OUCH_OFF_TOKEN 1
#define OUCH_OFF_SIDE 15
#define OUCH_OFF_SHARES 16
#define OUCH_OFF_STOCK 20
#define OUCH_OFF_PRICE 28
#define OUCH_TOKEN_INST_DIGITS 2
#define OUCH_TOKEN_SEQ_DIGITS 12

/* Two uppercase hex digits per byte value: a token digit pair is one load
 * and one 2-byte store instead of a shift/mask/lookup per digit. */
extern const char ouch_hex_pairs[256][2];

/* Write the low `digits` (even) hex digits of v, most significant first.
 * Unrolled: the loop's own compare and branch cost as much as its body. */
static inline void ouch_put_hex(char *out, uint64_t v, int digits)
{
#pragma GCC unroll 8
	for (int i = digits - 2; i >= 0; i -= 2) {
		core_memcpy(out + i, ouch_hex_pairs[v & 0xFF], 2);
		v >>= 8;
	}
}

/* The sequence digits of an order's token (after the instance digits). */
static inline void ouch_put_token_seq(uint8_t *buf, uint64_t seq)
{
	ouch_put_hex((char *)buf + OUCH_OFF_TOKEN + OUCH_TOKEN_INST_DIGITS, seq,
		     OUCH_TOKEN_SEQ_DIGITS);
}

/* Everything ouch_encode_fields writes but the token. */
static inline void ouch_encode_fields_but_token(uint8_t *buf, const struct order_intent *o)
{
	buf[OUCH_OFF_SIDE] = (uint8_t)o->side;
	wr_be32(buf + OUCH_OFF_SHARES, o->shares);
	core_memcpy(buf + OUCH_OFF_STOCK, o->stock, sizeof o->stock);
	wr_be32(buf + OUCH_OFF_PRICE, o->price);
}

/* Inline: it is the last step before the doorbell, on every order. */
static inline void ouch_encode_fields(uint8_t *buf, const struct order_intent *o)
{
	ouch_put_token_seq(buf, o->trigger_seq);
	ouch_encode_fields_but_token(buf, o);
}

/* A token's sequence digits rendered ahead of time for the sequence number
 * a sender expects to trigger next (HFT-OS: after each datagram, for the
 * next message in sequence): an order whose trigger is that number copies
 * twelve bytes instead of rendering them. */
struct ouch_seq_digits {
	uint64_t seq;
	char digits[OUCH_TOKEN_SEQ_DIGITS];
};

static inline void ouch_seq_digits_render(struct ouch_seq_digits *p, uint64_t seq)
{
	ouch_put_hex(p->digits, seq, OUCH_TOKEN_SEQ_DIGITS);
	p->seq = seq;
}

/* The digits of p->seq + 1 from those of p->seq: the last digit goes up,
 * an F carries (a handful of instructions, where a render takes ~25). */
static inline void ouch_seq_digits_next(struct ouch_seq_digits *p)
{
	for (int i = OUCH_TOKEN_SEQ_DIGITS - 1; i >= 0; i--) {
		char c = p->digits[i];
		if (c != 'F') {
			p->digits[i] = c == '9' ? 'A' : (char)(c + 1);
			break;
		}
		p->digits[i] = '0';
	}
	p->seq++;
}

/* Keep `p` at `seq`: one step when it is the next number, else a render. */
static inline void ouch_seq_digits_follow(struct ouch_seq_digits *p, uint64_t seq)
{
	if (CORE_LIKELY(seq == p->seq + 1))
		ouch_seq_digits_next(p);
	else if (seq != p->seq)
		ouch_seq_digits_render(p, seq);
}

/* ouch_encode_fields with the digits of `pre` when they are the trigger's:
 * the same bytes either way. */
static inline void ouch_encode_fields_ahead(uint8_t *buf, const struct order_intent *o,
					    const struct ouch_seq_digits *pre)
{
	if (CORE_LIKELY(o->trigger_seq == pre->seq))
		core_memcpy(buf + OUCH_OFF_TOKEN + OUCH_TOKEN_INST_DIGITS, pre->digits,
			    OUCH_TOKEN_SEQ_DIGITS);
	else
		ouch_put_token_seq(buf, o->trigger_seq);
	ouch_encode_fields_but_token(buf, o);
}

/* Encode any intent (enum order_kind) as its whole OUCH message: an Enter
 * Order (IOC, or market hours for ORDER_POST), a Replace Order ('U':
 * existing token = instance + orig_seq, replacement token = instance +
 * trigger_seq, shares, price, market hours, display, ISO, min qty) or a
 * Cancel Order ('X': token of orig_seq, shares 0). Returns the length, or 0
 * when cap is too small or the kind is unknown. Senders take the template
 * path above for ORDER_ENTER, the trigger's only kind, and this for the
 * rest. */
size_t ouch_encode_intent(uint8_t *buf, size_t cap, const struct order_intent *o,
			  uint8_t instance);

/* Decode an Enter Order; false on wrong type or length. */
bool ouch_decode_enter(const uint8_t *buf, size_t len, struct ouch_enter *e);

#endif
