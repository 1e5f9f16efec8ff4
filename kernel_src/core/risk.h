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
enum risk_reason risk_check(struct risk *r, const struct order_intent *o, const struct book *b);

/* Account an order that risk_check accepted and that was sent: worst-case
 * position, notional, rate window, `accepted`. */
void risk_commit(struct risk *r, const struct order_intent *o);

/* A trade printed in the feed for symbol slot `slot` at `price`. */
void risk_on_trade(struct risk *r, uint16_t slot, uint32_t price);

void risk_set_kill(struct risk *r, bool on);

#endif
