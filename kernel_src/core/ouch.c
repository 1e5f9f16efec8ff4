/*
 * ouch.c - NASDAQ OUCH 4.2 Enter, Replace and Cancel Order: encode, decode,
 * order tokens.
 *
 * The trigger sends only Immediate-Or-Cancel Enter Orders (49 bytes,
 * big-endian, alpha fields space padded), on the template path; a quoting
 * strategy also rests orders and replaces and cancels them
 * (ouch_encode_intent). Its 14-byte order
 * token is the tick-to-trade join key: two uppercase hex digits of the SUT
 * instance, then twelve of the MoldUDP64 sequence number of the message that
 * triggered the order (docs/architecture.md §3), so a capture of the order can be
 * matched to the feed packet that caused it without any heuristics.
 *
 * Enter Order layout (OUCH 4.2): type 'O' @0, token[14] @1, side @15,
 * shares u32 @16, stock[8] @20, price u32 @28, time in force u32 @32,
 * firm[4] @36, display @40, capacity @41, intermarket sweep @42, minimum
 * quantity u32 @43, cross type @47, customer type @48.
 */
#include "ouch.h"

#define OUCH_TYPE_ENTER 'O'
#define OUCH_OFF_TIF 32
#define OUCH_OFF_FIRM 36
#define OUCH_OFF_DISPLAY 40
#define OUCH_OFF_CAPACITY 41
#define OUCH_OFF_ISO 42
#define OUCH_OFF_MIN_QTY 43
#define OUCH_OFF_CROSS 47
#define OUCH_OFF_CUSTOMER 48

/* What every order of ours says besides side, size, stock and price. */
#define OUCH_FIRM "HFTL"
#define OUCH_DISPLAY_VISIBLE 'Y'
#define OUCH_CAPACITY_AGENCY 'A'
#define OUCH_ISO_NOT_ELIGIBLE 'N'
#define OUCH_CROSS_NONE 'N'
#define OUCH_CUSTOMER_DEFAULT ' '  /* use the port's default */

CORE_STATIC_ASSERT(OUCH_TOKEN_INST_DIGITS + OUCH_TOKEN_SEQ_DIGITS == OUCH_TOKEN_LEN,
		   "token is instance digits then sequence digits");
CORE_STATIC_ASSERT(OUCH_TOKEN_INST_DIGITS % 2 == 0 && OUCH_TOKEN_SEQ_DIGITS % 2 == 0,
		   "token digits are written in pairs, one per byte");

#define OUCH_HEX_ROW(h) \
	{ h, '0' }, { h, '1' }, { h, '2' }, { h, '3' }, { h, '4' }, { h, '5' }, { h, '6' }, \
	{ h, '7' }, { h, '8' }, { h, '9' }, { h, 'A' }, { h, 'B' }, { h, 'C' }, { h, 'D' }, \
	{ h, 'E' }, { h, 'F' }
const char ouch_hex_pairs[256][2] = {
	OUCH_HEX_ROW('0'), OUCH_HEX_ROW('1'), OUCH_HEX_ROW('2'), OUCH_HEX_ROW('3'),
	OUCH_HEX_ROW('4'), OUCH_HEX_ROW('5'), OUCH_HEX_ROW('6'), OUCH_HEX_ROW('7'),
	OUCH_HEX_ROW('8'), OUCH_HEX_ROW('9'), OUCH_HEX_ROW('A'), OUCH_HEX_ROW('B'),
	OUCH_HEX_ROW('C'), OUCH_HEX_ROW('D'), OUCH_HEX_ROW('E'), OUCH_HEX_ROW('F'),
};

/* Value of an uppercase hex digit, -1 for anything else. */
static int ouch_hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void ouch_token(char out[OUCH_TOKEN_LEN], uint8_t instance, uint64_t seq)
{
	ouch_put_hex(out, instance, OUCH_TOKEN_INST_DIGITS);
	ouch_put_hex(out + OUCH_TOKEN_INST_DIGITS, seq, OUCH_TOKEN_SEQ_DIGITS);
}

bool ouch_token_parse(const char tok[OUCH_TOKEN_LEN], uint8_t *instance, uint64_t *seq)
{
	uint64_t v = 0;
	for (int i = 0; i < OUCH_TOKEN_LEN; i++) {
		int d = ouch_hex_val(tok[i]);
		if (d < 0)
			return false;
		v = (v << 4) | (uint64_t)d;
	}
	/* 14 digits are 56 bits: the instance is the top byte. */
	*instance = (uint8_t)(v >> (4 * OUCH_TOKEN_SEQ_DIGITS));
	*seq = v & ((UINT64_C(1) << (4 * OUCH_TOKEN_SEQ_DIGITS)) - 1);
	return true;
}

size_t ouch_encode_template(uint8_t *buf, size_t cap, uint8_t instance)
{
	if (cap < OUCH_ENTER_LEN)
		return 0;
	buf[0] = OUCH_TYPE_ENTER;
	ouch_put_hex((char *)buf + OUCH_OFF_TOKEN, instance, OUCH_TOKEN_INST_DIGITS);
	wr_be32(buf + OUCH_OFF_TIF, OUCH_TIF_IOC);
	core_memcpy(buf + OUCH_OFF_FIRM, OUCH_FIRM, 4);
	buf[OUCH_OFF_DISPLAY] = OUCH_DISPLAY_VISIBLE;
	buf[OUCH_OFF_CAPACITY] = OUCH_CAPACITY_AGENCY;
	buf[OUCH_OFF_ISO] = OUCH_ISO_NOT_ELIGIBLE;
	wr_be32(buf + OUCH_OFF_MIN_QTY, 0);
	buf[OUCH_OFF_CROSS] = OUCH_CROSS_NONE;
	buf[OUCH_OFF_CUSTOMER] = OUCH_CUSTOMER_DEFAULT;
	return OUCH_ENTER_LEN;
}


size_t ouch_encode_order(uint8_t *buf, size_t cap, const struct order_intent *o,
			 uint8_t instance)
{
	if (ouch_encode_template(buf, cap, instance) == 0)
		return 0;
	ouch_encode_fields(buf, o);
	return OUCH_ENTER_LEN;
}

/* Replace Order 'U' layout (OUCH 4.2): type @0, existing token[14] @1,
 * replacement token[14] @15, shares u32 @29, price u32 @33, time in force
 * u32 @37, display @41, intermarket sweep @42, minimum quantity u32 @43.
 * Cancel Order 'X': type @0, token[14] @1, shares u32 @15 (the new size:
 * 0 cancels the order). */
#define OUCH_TYPE_REPLACE 'U'
#define OUCH_TYPE_CANCEL 'X'
#define OUCH_U_OFF_NEW_TOKEN 15
#define OUCH_U_OFF_SHARES 29
#define OUCH_U_OFF_PRICE 33
#define OUCH_U_OFF_TIF 37
#define OUCH_U_OFF_DISPLAY 41
#define OUCH_U_OFF_ISO 42
#define OUCH_U_OFF_MIN_QTY 43
#define OUCH_X_OFF_SHARES 15

size_t ouch_encode_intent(uint8_t *buf, size_t cap, const struct order_intent *o,
			  uint8_t instance)
{
	switch (o->kind) {
	case ORDER_ENTER:
	case ORDER_POST:
		if (ouch_encode_order(buf, cap, o, instance) == 0)
			return 0;
		if (o->kind == ORDER_POST)
			wr_be32(buf + OUCH_OFF_TIF, OUCH_TIF_MARKET_HOURS);
		return OUCH_ENTER_LEN;
	case ORDER_REPLACE:
		if (cap < OUCH_REPLACE_LEN)
			return 0;
		buf[0] = OUCH_TYPE_REPLACE;
		ouch_token((char *)buf + OUCH_OFF_TOKEN, instance, o->orig_seq);
		ouch_token((char *)buf + OUCH_U_OFF_NEW_TOKEN, instance, o->trigger_seq);
		wr_be32(buf + OUCH_U_OFF_SHARES, o->shares);
		wr_be32(buf + OUCH_U_OFF_PRICE, o->price);
		wr_be32(buf + OUCH_U_OFF_TIF, OUCH_TIF_MARKET_HOURS);
		buf[OUCH_U_OFF_DISPLAY] = OUCH_DISPLAY_VISIBLE;
		buf[OUCH_U_OFF_ISO] = OUCH_ISO_NOT_ELIGIBLE;
		wr_be32(buf + OUCH_U_OFF_MIN_QTY, 0);
		return OUCH_REPLACE_LEN;
	case ORDER_CANCEL:
		if (cap < OUCH_CANCEL_LEN)
			return 0;
		buf[0] = OUCH_TYPE_CANCEL;
		ouch_token((char *)buf + OUCH_OFF_TOKEN, instance, o->orig_seq);
		wr_be32(buf + OUCH_X_OFF_SHARES, 0);
		return OUCH_CANCEL_LEN;
	default:
		return 0;
	}
}

/* A token that is not one of ours still decodes: instance and trigger_seq
 * are then 0 and the raw token is in e->token. */
bool ouch_decode_enter(const uint8_t *buf, size_t len, struct ouch_enter *e)
{
	if (len != OUCH_ENTER_LEN || buf[0] != OUCH_TYPE_ENTER)
		return false;
	core_memcpy(e->token, buf + OUCH_OFF_TOKEN, OUCH_TOKEN_LEN);
	if (!ouch_token_parse(e->token, &e->instance, &e->trigger_seq)) {
		e->instance = 0;
		e->trigger_seq = 0;
	}
	e->side = (char)buf[OUCH_OFF_SIDE];
	e->shares = rd_be32(buf + OUCH_OFF_SHARES);
	core_memcpy(e->stock, buf + OUCH_OFF_STOCK, sizeof e->stock);
	e->price = rd_be32(buf + OUCH_OFF_PRICE);
	e->tif = rd_be32(buf + OUCH_OFF_TIF);
	core_memcpy(e->firm, buf + OUCH_OFF_FIRM, sizeof e->firm);
	e->display = (char)buf[OUCH_OFF_DISPLAY];
	e->capacity = (char)buf[OUCH_OFF_CAPACITY];
	e->iso = (char)buf[OUCH_OFF_ISO];
	e->min_qty = rd_be32(buf + OUCH_OFF_MIN_QTY);
	e->cross_type = (char)buf[OUCH_OFF_CROSS];
	e->customer_type = (char)buf[OUCH_OFF_CUSTOMER];
	return true;
}
