/*
 * strategy.h - a top-of-book imbalance taker, driven by feed content only.
 *
 * For each traded symbol, after every message that changed its book, the
 * strategy looks at the best bid and ask:
 *  - cross: when the ask is at or below the bid (a locked or crossed book,
 *    which stale quotes produce), it buys the ask (if cross_trigger is set);
 *  - imbalance: when the bid size outweighs the ask size by
 *    imbalance_num/imbalance_den (spread at most max_spread, both sides at
 *    least min_top_shares) it buys at the ask; the mirror image sells at the
 *    bid.
 * It fires when a signal appears or when the price it would take changes, not
 * again while the same opportunity persists. Its inputs are the book and the message's sequence number and
 * ITCH timestamp, never a local clock, so every build (HFT-OS, the golden
 * model, the Linux baselines) decides the same orders.
 */
#ifndef CORE_STRATEGY_H
#define CORE_STRATEGY_H

#include "platform.h"
#include "param.h"
#include "itch.h"
#include "book.h"

/* An order the strategy wants; risk decides whether it goes out. */
struct order_intent {
	uint64_t trigger_seq;   /* MoldUDP64 sequence number of the trigger */
	uint64_t feed_ts_ns;    /* ITCH timestamp of the trigger */
	uint32_t shares;
	uint32_t price;         /* 1/10,000 $ */
	uint32_t ref_price;     /* mid at decision time, for the risk band */
	uint16_t locate;
	uint16_t slot;          /* strategy symbol slot, shared with risk */
	char side;              /* 'B' or 'S' */
	char stock[8];
};

/* Fixed layout: written into the HFT-OS image config block by hftlab. */
struct strategy_config {
	uint32_t n_symbols;       /* 0: trade every symbol, first come first served */
	uint32_t order_shares;    /* size of each IOC order */
	uint32_t imbalance_num;   /* fire when bid*den >= num*ask (or mirrored) */
	uint32_t imbalance_den;
	uint32_t min_top_shares;  /* both best levels must hold at least this */
	uint32_t max_spread;      /* ask - bid at most, 1/10,000 $ */
	uint32_t cross_trigger;   /* nonzero: buy the ask of a locked/crossed book */
	uint32_t reserved;        /* keeps the struct a multiple of 8 bytes */
	char symbols[STRAT_MAX_SYMBOLS][8];  /* space padded like ITCH stock */
};
CORE_STATIC_ASSERT(sizeof(struct strategy_config) == 32 + STRAT_MAX_SYMBOLS * 8,
		   "strategy_config is a wire format");

struct strategy_symbol {
	char stock[8];
	uint16_t locate;
	int8_t last_signal;   /* -1 sell, 0 none, +1 buy */
	uint8_t pad;
	uint32_t last_price;  /* price of the last order sent for this symbol */
};

struct strategy_counters {
	uint64_t evaluations;
	uint64_t signals;
	uint64_t symbols_full;   /* a wanted symbol found no free slot */
};

struct strategy {
	struct strategy_config cfg;
	uint16_t slot_of[BOOK_NLOCATES];  /* locate -> slot or STRAT_SLOT_NONE */
	struct strategy_symbol sym[STRAT_MAX_SYMBOLS];
	uint32_t n_slots;
	struct strategy_counters c;
};

void strategy_init(struct strategy *s, const struct strategy_config *cfg);

/* Learn the locate of a traded symbol from a message that names its stock
 * (R, A, F ...). Returns the slot or STRAT_SLOT_NONE. */
uint16_t strategy_on_symbol(struct strategy *s, const struct itch_msg *m);

/* Slot of a locate, STRAT_SLOT_NONE when not traded. */
static inline uint16_t strategy_slot(const struct strategy *s, uint16_t locate)
{
	return s->slot_of[locate];
}

/* Evaluate the book of `locate` after a change. Returns true and fills *o
 * when the strategy wants to send an order. */
bool strategy_evaluate(struct strategy *s, const struct book *b, uint16_t locate,
		       uint64_t seq, uint64_t feed_ts_ns, struct order_intent *o);

#endif
