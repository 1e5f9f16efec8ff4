/*
 * itch.c - NASDAQ TotalView-ITCH 5.0 decoder and file framing.
 *
 * One message is checked against the exact length its type byte implies
 * (a 256-entry read-only table), then flattened into struct itch_msg by a
 * switch on the type byte (A and D, most of a feed, first and directly:
 * every field written once, no clear, no table, no switch): each case is a handful of straight big-endian
 * loads at fixed offsets, no loops over fields, so decoding stays well above
 * 20 M messages/s. The struct is zeroed first so that absent fields are
 * deterministic, and `present` says which fields the message carried.
 *
 * Offsets below are byte offsets from the type byte, as in ITCH 5.0 §4
 * (Message Formats). Every message starts with the common header: type @0,
 * stock locate u16 @1, tracking number u16 @3, timestamp u48 @5; the body
 * starts at @11.
 */
#include "itch.h"

/* Exact message lengths including the type byte, indexed by type; 0 marks a
 * type that ITCH 5.0 does not define. */
static const uint8_t itch_len_tab[ITCH_NTYPES] = {
	['S'] = 12, /* §4.1   System Event */
	['R'] = 39, /* §4.2.1 Stock Directory */
	['H'] = 25, /* §4.2.2 Stock Trading Action */
	['Y'] = 20, /* §4.2.3 Reg SHO Restriction */
	['L'] = 26, /* §4.2.4 Market Participant Position */
	['V'] = 35, /* §4.2.5 MWCB Decline Level */
	['W'] = 12, /* §4.2.5 MWCB Status */
	['K'] = 28, /* §4.2.6 IPO Quoting Period Update */
	['J'] = 35, /* §4.2.7 LULD Auction Collar */
	['h'] = 21, /* §4.2.8 Operational Halt */
	['A'] = 36, /* §4.3.1 Add Order */
	['F'] = 40, /* §4.3.2 Add Order with MPID Attribution */
	['E'] = 31, /* §4.4.1 Order Executed */
	['C'] = 36, /* §4.4.2 Order Executed With Price */
	['X'] = 23, /* §4.4.3 Order Cancel */
	['D'] = 19, /* §4.4.4 Order Delete */
	['U'] = 35, /* §4.4.5 Order Replace */
	['P'] = 44, /* §4.5.1 Trade (non-cross) */
	['Q'] = 40, /* §4.5.2 Cross Trade */
	['B'] = 19, /* §4.5.3 Broken Trade */
	['I'] = 50, /* §4.6   Net Order Imbalance Indicator */
	['N'] = 20, /* §4.7   Retail Price Improvement Indicator */
	['O'] = 48, /* §4.8   Direct Listing with Capital Raise */
};

uint16_t itch_msg_len(uint8_t type)
{
	return itch_len_tab[type];
}

static inline void itch_stock(struct itch_msg *m, const uint8_t *b, size_t off)
{
	core_memcpy(m->stock, b + off, sizeof m->stock);
}

/* §4.3.1 A: ref @11, side @19, shares u32 @20, stock @24, price @32.
 * §4.3.2 F is the same plus attribution[4] @36, added by the caller. */
static inline void itch_dec_add(const uint8_t *b, struct itch_msg *m)
{
	m->order_ref = rd_be64(b + 11);
	m->side = (char)b[19];
	m->shares = rd_be32(b + 20);
	itch_stock(m, b, 24);
	m->price = rd_be32(b + 32);
	m->present = ITCH_F_ORDER_REF | ITCH_F_SIDE | ITCH_F_SHARES |
		     ITCH_F_STOCK | ITCH_F_PRICE;
}

/* §4.4.1 E: ref @11, executed shares u32 @19, match @23.
 * §4.4.2 C adds printable @31 and execution price @32, set by the caller. */
static inline void itch_dec_exec(const uint8_t *b, struct itch_msg *m)
{
	m->order_ref = rd_be64(b + 11);
	m->shares = rd_be32(b + 19);
	m->match_number = rd_be64(b + 23);
	m->present = ITCH_F_ORDER_REF | ITCH_F_SHARES | ITCH_F_MATCH;
}

/* §4.4.5 U: original ref @11, new ref @19, shares u32 @27, price @31. */
static inline void itch_dec_replace(const uint8_t *b, struct itch_msg *m)
{
	m->order_ref = rd_be64(b + 11);
	m->new_order_ref = rd_be64(b + 19);
	m->shares = rd_be32(b + 27);
	m->price = rd_be32(b + 31);
	m->present = ITCH_F_ORDER_REF | ITCH_F_NEW_ORDER_REF | ITCH_F_SHARES |
		     ITCH_F_PRICE;
}

/* §4.5.1 P: as an Add Order (ref, side, shares, stock, price) plus match @36. */
static inline void itch_dec_trade(const uint8_t *b, struct itch_msg *m)
{
	itch_dec_add(b, m);
	m->match_number = rd_be64(b + 36);
	m->present |= ITCH_F_MATCH;
}

/* §4.5.2 Q: shares u64 @11, stock @19, cross price @27, match @31, type @39. */
static inline void itch_dec_cross(const uint8_t *b, struct itch_msg *m)
{
	m->shares = rd_be64(b + 11);
	itch_stock(m, b, 19);
	m->price = rd_be32(b + 27);
	m->match_number = rd_be64(b + 31);
	m->cross_type = (char)b[39];
	m->present = ITCH_F_SHARES | ITCH_F_STOCK | ITCH_F_PRICE | ITCH_F_MATCH |
		     ITCH_F_CROSS_TYPE;
}

/* §4.6 I: paired shares u64 @11, imbalance shares u64 @19 (not kept),
 * direction @27, stock @28, far @36 and near @40 (not kept), current
 * reference price @44, cross type @48, price variation @49 (not kept). */
static inline void itch_dec_noii(const uint8_t *b, struct itch_msg *m)
{
	m->shares = rd_be64(b + 11);
	m->side = (char)b[27];
	itch_stock(m, b, 28);
	m->price = rd_be32(b + 44);
	m->cross_type = (char)b[48];
	m->present = ITCH_F_SHARES | ITCH_F_SIDE | ITCH_F_STOCK | ITCH_F_PRICE |
		     ITCH_F_CROSS_TYPE;
}

/* Messages that name a stock @11 and carry one code byte at `code_off`:
 * §4.2.3 Y (Reg SHO action @19), §4.7 N (interest flag @19), §4.2.8 h (halt
 * action @20; market code @19 is not kept). */
static inline void itch_dec_stock_code(const uint8_t *b, struct itch_msg *m,
				       size_t code_off)
{
	itch_stock(m, b, 11);
	m->event_code = (char)b[code_off];
	m->present = ITCH_F_STOCK | ITCH_F_EVENT_CODE;
}

/* §4.2.2 H: stock @11, trading state @19, reserved @20, reason[4] @21. */
static inline void itch_dec_trading_action(const uint8_t *b, struct itch_msg *m)
{
	itch_dec_stock_code(b, m, 19);
	core_memcpy(m->reason, b + 21, sizeof m->reason);
	m->present |= ITCH_F_REASON;
}

/* §4.2.1 R: stock @11, market category @19 and financial status @20 go raw
 * into reason[0..1]; the rest of the directory is not kept. */
static inline void itch_dec_directory(const uint8_t *b, struct itch_msg *m)
{
	itch_stock(m, b, 11);
	m->reason[0] = (char)b[19];
	m->reason[1] = (char)b[20];
	m->present = ITCH_F_STOCK | ITCH_F_REASON;
}

/* §4.2.4 L: MPID[4] @11 into attribution, stock @15. */
static inline void itch_dec_participant(const uint8_t *b, struct itch_msg *m)
{
	core_memcpy(m->attribution, b + 11, sizeof m->attribution);
	itch_stock(m, b, 15);
	m->present = ITCH_F_ATTRIBUTION | ITCH_F_STOCK;
}

/* §4.3.2 F: an Add Order plus attribution[4] @36. */
static inline void itch_dec_add_mpid(const uint8_t *b, struct itch_msg *m)
{
	itch_dec_add(b, m);
	core_memcpy(m->attribution, b + 36, sizeof m->attribution);
	m->present |= ITCH_F_ATTRIBUTION;
}

/* §4.4.2 C: an Order Executed plus printable @31 and execution price @32. */
static inline void itch_dec_exec_price(const uint8_t *b, struct itch_msg *m)
{
	itch_dec_exec(b, m);
	m->printable = (char)b[31];
	m->price = rd_be32(b + 32);
	m->present |= ITCH_F_PRINTABLE | ITCH_F_PRICE;
}

/* §4.4.3 X: ref @11, cancelled shares u32 @19. */
static inline void itch_dec_cancel(const uint8_t *b, struct itch_msg *m)
{
	m->order_ref = rd_be64(b + 11);
	m->shares = rd_be32(b + 19);
	m->present = ITCH_F_ORDER_REF | ITCH_F_SHARES;
}

/* §4.4.4 D: ref @11. */
static inline void itch_dec_delete(const uint8_t *b, struct itch_msg *m)
{
	m->order_ref = rd_be64(b + 11);
	m->present = ITCH_F_ORDER_REF;
}

/* §4.1 S (event code @11) and §4.2.5 W (breached level @11). */
static inline void itch_dec_code(const uint8_t *b, struct itch_msg *m)
{
	m->event_code = (char)b[11];
	m->present = ITCH_F_EVENT_CODE;
}

/* §4.2.6 K, §4.2.7 J, §4.8 O: stock @11; the rest is not kept. */
static inline void itch_dec_stock_only(const uint8_t *b, struct itch_msg *m)
{
	itch_stock(m, b, 11);
	m->present = ITCH_F_STOCK;
}

/* §4.5.3 B: match @11. */
static inline void itch_dec_broken(const uint8_t *b, struct itch_msg *m)
{
	m->match_number = rd_be64(b + 11);
	m->present = ITCH_F_MATCH;
}

/* Fill the body fields of a message whose length has been checked. One
 * switch on the type byte (a jump table), order messages first. */
static CORE_ALWAYS_INLINE void itch_dec_body(uint8_t t, const uint8_t *b, struct itch_msg *m)
{
	switch (t) {
	case 'A': itch_dec_add(b, m); break;
	case 'F': itch_dec_add_mpid(b, m); break;
	case 'E': itch_dec_exec(b, m); break;
	case 'C': itch_dec_exec_price(b, m); break;
	case 'X': itch_dec_cancel(b, m); break;
	case 'D': itch_dec_delete(b, m); break;
	case 'U': itch_dec_replace(b, m); break;
	case 'P': itch_dec_trade(b, m); break;
	case 'Q': itch_dec_cross(b, m); break;
	case 'B': itch_dec_broken(b, m); break;
	case 'I': itch_dec_noii(b, m); break;
	case 'S': case 'W': itch_dec_code(b, m); break;
	case 'R': itch_dec_directory(b, m); break;
	case 'H': itch_dec_trading_action(b, m); break;
	case 'Y': case 'N': itch_dec_stock_code(b, m, 19); break;
	case 'h': itch_dec_stock_code(b, m, 20); break;
	case 'L': itch_dec_participant(b, m); break;
	case 'K': case 'J': case 'O': itch_dec_stock_only(b, m); break;
	case 'V': break; /* §4.2.5 decline levels: header only */
	}
}

/* The decoder proper, inline so that itch_decode_counted (the engine's
 * entry, once per message) does not pay a second call. */
static CORE_ALWAYS_INLINE int itch_decode_one(const uint8_t *buf, size_t len, struct itch_msg *m)
{
	if (CORE_LIKELY(len == 36 && buf[0] == 'A')) {
		itch_dec_add_direct(buf, m);
		return ITCH_OK;
	}
	if (len == 19 && buf[0] == 'D') {
		itch_dec_event_direct(buf, m, 'D');
		return ITCH_OK;
	}
	if (CORE_UNLIKELY(len == 0))
		return ITCH_E_EMPTY;
	uint8_t t = buf[0];
	size_t want = itch_len_tab[t];
	if (CORE_UNLIKELY(want == 0))
		return ITCH_E_UNKNOWN;
	if (CORE_UNLIKELY(len != want))
		return ITCH_E_LENGTH;
	/* Only now is buf known to hold `want` bytes: every load below is
	 * at an offset the type's length covers. */
	itch_msg_clear(m);
	m->type = (char)t;
	m->stock_locate = rd_be16(buf + ITCH_OFF_LOCATE);
	m->tracking = rd_be16(buf + ITCH_OFF_TRACKING);
	m->timestamp_ns = rd_be48(buf + ITCH_OFF_TIMESTAMP);
	itch_dec_body(t, buf, m);
	return ITCH_OK;
}

int itch_decode(const uint8_t *buf, size_t len, struct itch_msg *m)
{
	return itch_decode_one(buf, len, m);
}

int itch_decode_counted(const uint8_t *buf, size_t len, struct itch_msg *m,
			struct itch_counters *c)
{
	int rc = itch_decode_one(buf, len, m);
	if (CORE_LIKELY(rc == ITCH_OK)) {
		c->messages++;
		c->by_type[buf[0]]++;
		return rc;
	}
	switch (rc) {
	case ITCH_E_EMPTY: c->empty++; break;
	case ITCH_E_UNKNOWN: c->unknown_type++; break;
	case ITCH_E_LENGTH: c->bad_length++; break;
	}
	return rc;
}

/* NASDAQ's binary ITCH files put a u16 big-endian length before each
 * message. A 0 prefix (RITCH's sample files) falls back to the length the
 * type byte implies; with an unknown type there is no way to resync. */
int itch_frame_next(const uint8_t *buf, size_t len, size_t *off, struct itch_frame *f)
{
	if (*off == len)
		return ITCH_FRAME_END;
	if (*off > len || len - *off < 2)
		return ITCH_FRAME_TRUNCATED;
	const uint8_t *p = buf + *off;
	size_t room = len - *off - 2;
	uint16_t prefix = rd_be16(p);
	uint16_t mlen = prefix;
	if (prefix == 0) {
		if (room == 0)
			return ITCH_FRAME_TRUNCATED;
		mlen = itch_msg_len(p[2]);
		if (mlen == 0)
			return ITCH_FRAME_UNFRAMED;
	}
	if (mlen > room)
		return ITCH_FRAME_TRUNCATED;
	f->msg = p + 2;
	f->len = mlen;
	f->prefix = prefix;
	*off += 2 + (size_t)mlen;
	return ITCH_FRAME_OK;
}
