/*
 * risk.h - pre-trade risk checks on every order the strategy wants.
 *
 * Limits per symbol slot: order size, worst-case position (an IOC order is
 * assumed to fill completely, since no execution reports come back), gross
 * notional sent, orders per second of *feed* time (ITCH timestamps, never a
 * local clock), a price band around the last trade or else the mid (read
 * from the book here, never taken from the strategy), and a
 * kill switch. A rejected order is not sent and is counted by reason.
 *
 * Resting orders (strategy.h: ORDER_POST, ORDER_REPLACE, ORDER_CANCEL): no
 * execution reports come back, so the worst-case position counts every
 * order as filled while it is live: a posted order adds its shares, a
 * replace swaps the old size for the new (keeping the side), a cancel takes
 * them out. Risk keeps the live ones (RISK_LIVE_PER_SLOT per symbol): a
 * replace or cancel of anything else is refused (RISK_UNKNOWN_ORDER), so a
 * strategy cannot cancel or replace what it did not send. The kill switch
 * refuses everything but cancels, which only take risk off.
 */
#ifndef CORE_RISK_H
#define CORE_RISK_H

#include "platform.h"
#include "param.h"
#include "strategy.h"
#include "book.h"

enum risk_reason {
	RISK_OK = 0,
	RISK_KILL,
	RISK_SIZE,
	RISK_POSITION,
	RISK_NOTIONAL,
	RISK_RATE,
	RISK_BAND,
	RISK_NO_REFERENCE,
	RISK_UNKNOWN_ORDER,  /* replace/cancel of no live order of ours; unknown kind */
	RISK_LIVE_FULL,      /* a resting order beyond RISK_LIVE_PER_SLOT */
	RISK_NREASONS
};

/* Fixed layout: part of the HFT-OS image config block. 0 disables a limit. */
struct risk_config {
	uint64_t max_position;      /* |worst-case position| per symbol, shares */
	uint64_t max_notional;      /* gross price*shares sent per symbol, 1/10,000 $ */
	uint32_t max_order_shares;
	uint32_t max_orders_per_sec;/* feed time, at most RISK_MAX_RATE */
	uint32_t price_band_bps;    /* |price - ref| <= ref * bps / 10,000 */
	uint32_t kill;              /* nonzero: reject every order */
};
CORE_STATIC_ASSERT(sizeof(struct risk_config) == 32, "risk_config is a wire format");

/* A resting order (ORDER_POST, or the latest replacement of one). */
struct risk_live {
	uint64_t seq;     /* its token's sequence number; 0: free */
	uint32_t shares;
	int32_t dir;      /* +1 buy, -1 sell */
};

struct risk_symbol {
	int64_t position;
	uint64_t notional;
	uint32_t last_trade;  /* 0: no trade seen yet */
	uint32_t pad;
};

struct risk_counters {
	uint64_t accepted;
	uint64_t rejected[RISK_NREASONS];
};

/* The size limits of risk_config with a disabled one (0) at the largest
 * value, so that each check is a single compare. */
struct risk_limits {
	uint64_t max_position;
	uint64_t max_notional;
	uint32_t max_order_shares;
};

struct risk {
	struct risk_config cfg;
	struct risk_limits lim;
	struct risk_symbol sym[STRAT_MAX_SYMBOLS];
	/* Apart from sym: the IOC path indexes sym by a shift, not a multiply. */
	struct risk_live live[STRAT_MAX_SYMBOLS][RISK_LIVE_PER_SLOT];
	uint64_t window[RISK_MAX_RATE];  /* feed times of the last accepted orders */
	uint32_t win_head;
	uint32_t win_len;
	struct risk_counters c;
};

void risk_init(struct risk *r, const struct risk_config *cfg);

/* Check *o against the limits; a rejection is counted by reason. Nothing
 * else changes: an accepted order that goes out must then be committed with
 * risk_commit, before the next risk_check. The split lets a sender ring the
 * doorbell first and do the bookkeeping after. */

#define RISK_NS_PER_SEC 1000000000ull
#define RISK_BPS 10000ull

/* Would one more order at feed time ts exceed the per-second rate? */
static CORE_ALWAYS_INLINE bool risk_rate_exceeded(const struct risk *r, uint64_t ts)
{
	uint32_t max = r->cfg.max_orders_per_sec;

	if (max == 0 || r->win_len < max)
		return false;
	uint64_t oldest = r->window[r->win_head];
	/* A feed clock that steps back counts as "within the second": safe. */
	return ts < oldest + RISK_NS_PER_SEC;
}

/* The band's reference: the last trade, else the mid of the book's best
 * levels (0 when a side is empty: no reference). Computed here from the
 * book, so no strategy can choose its own reference. */
static CORE_ALWAYS_INLINE uint64_t risk_reference(const struct risk_symbol *s, const struct book *b, uint16_t locate)
{
	uint32_t bid, ask;
	uint64_t bsz, asz;

	if (s->last_trade)
		return s->last_trade;
	if (!book_best(b, locate, BOOK_BID, &bid, &bsz) || !book_best(b, locate, BOOK_ASK, &ask, &asz))
		return 0;
	return ((uint64_t)bid + ask) / 2;
}

static CORE_ALWAYS_INLINE bool risk_outside_band(const struct risk *r, const struct risk_symbol *s,
			      const struct order_intent *o, const struct book *b, bool *no_ref)
{
	uint64_t ref = risk_reference(s, b, o->locate);

	*no_ref = ref == 0;
	if (*no_ref)
		return true;
	uint64_t diff = o->price > ref ? o->price - ref : ref - o->price;
	return diff * RISK_BPS > ref * r->cfg.price_band_bps;
}

/* Worst-case position change of an order: an IOC is assumed to fill. */
static inline int64_t risk_delta(const struct order_intent *o)
{
	return o->side == 'B' ? (int64_t)o->shares : -(int64_t)o->shares;
}

/* The limits every order passes. pos: the position it would leave, or
 * (ioc) the symbol's position, to which the order's delta is added only
 * after the cheap checks, as the IOC path always did (one instruction
 * fewer per trigger, tcg-icount). */
static CORE_ALWAYS_INLINE enum risk_reason risk_limits(const struct risk *r, const struct risk_symbol *s,
						       const struct order_intent *o, const struct book *b,
						       int64_t pos, bool ioc)
{
	const struct risk_limits *l = &r->lim;
	bool no_ref;

	if (r->cfg.kill)
		return RISK_KILL;
	if (o->shares == 0 || o->shares > l->max_order_shares)
		return RISK_SIZE;
	if (ioc)
		pos = s->position + risk_delta(o);
	uint64_t abs_pos = pos < 0 ? (uint64_t)-pos : (uint64_t)pos;
	if (abs_pos > l->max_position)
		return RISK_POSITION;
	if (s->notional + (uint64_t)o->price * o->shares > l->max_notional)
		return RISK_NOTIONAL;
	if (risk_rate_exceeded(r, o->feed_ts_ns))
		return RISK_RATE;
	if (r->cfg.price_band_bps && risk_outside_band(r, s, o, b, &no_ref))
		return no_ref ? RISK_NO_REFERENCE : RISK_BAND;
	return RISK_OK;
}

static CORE_ALWAYS_INLINE enum risk_reason risk_evaluate(const struct risk *r, const struct order_intent *o,
				      const struct book *b)
{
	return risk_limits(r, &r->sym[o->slot], o, b, 0, true);
}

enum risk_reason risk_check_resting(struct risk *r, const struct order_intent *o,
				    const struct book *b);

/* Inline: it is on every order's way to the doorbell; posts, replaces and
 * cancels go to risk_check_resting (risk.c). */
static CORE_ALWAYS_INLINE enum risk_reason risk_check(struct risk *r, const struct order_intent *o,
						      const struct book *b)
{
	if (CORE_UNLIKELY(o->kind != ORDER_ENTER))
		return risk_check_resting(r, o, b);
	enum risk_reason why = o->slot < STRAT_MAX_SYMBOLS ? risk_evaluate(r, o, b) : RISK_NO_REFERENCE;

	if (CORE_UNLIKELY(why != RISK_OK))
		r->c.rejected[why]++;
	return why;
}

/* Account an order that risk_check accepted and that was sent: worst-case
 * position, notional, rate window, `accepted`. */
void risk_commit(struct risk *r, const struct order_intent *o);

/* A trade printed in the feed for symbol slot `slot` at `price`: the band's
 * reference. Inline: an execution that triggers sets it on the way to the
 * doorbell. */
static CORE_ALWAYS_INLINE void risk_on_trade(struct risk *r, uint16_t slot, uint32_t price)
{
	if (slot < STRAT_MAX_SYMBOLS && price != 0)
		r->sym[slot].last_trade = price;
}

void risk_set_kill(struct risk *r, bool on);

#endif
