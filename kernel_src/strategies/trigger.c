/*
 * trigger.c - the top-of-book imbalance taker, HFT-OS's original trigger,
 * on the strategy interface (kernel_src/core/strategy.h). The default
 * strategy of every build.
 *
 * After every message that touched a traded symbol's best bid or ask
 * (STRAT_WAKE_TOP) it looks at them:
 *  - cross: when the ask is at or below the bid (a locked or crossed book,
 *    which stale quotes produce), it buys the ask (if cross_trigger is set);
 *  - imbalance: when the bid size outweighs the ask size by
 *    imbalance_num/imbalance_den (spread at most max_spread, both sides at
 *    least min_top_shares) it buys at the ask; the mirror image sells at the
 *    bid.
 * It fires when a signal appears or when the price it would take changes,
 * not again while the same opportunity persists. Its inputs are the book
 * only, never a clock, so every build decides the same orders.
 *
 * Parameters (struct strategy_config): order_shares, imbalance_num,
 * imbalance_den (0 counts as 1), min_top_shares, max_spread (1/10,000 $),
 * cross_trigger (nonzero: on).
 */
#include "strategy.h"

struct trigger_symbol {
	int8_t last_signal;   /* -1 sell, 0 none, +1 buy */
	uint8_t pad[3];
	uint32_t last_price;  /* price of the last order asked for */
};

struct trigger_state {
	uint32_t order_shares;
	uint32_t imbalance_num;
	uint32_t imbalance_den;
	uint32_t min_top_shares;
	uint32_t max_spread;
	uint32_t cross_trigger;
	struct trigger_symbol sym[STRAT_MAX_SYMBOLS];
};
/* Its decision is a function of the best bid and ask alone, and asking again
 * with the same ones asks for nothing (fire needs a new signal or a new
 * price): the engine may skip the messages that leave them alone. */
STRATEGY_STATE_WAKE(struct trigger_state, STRAT_WAKE_TOP);

void strategy_init(void *state, const struct strategy_config *cfg)
{
	struct trigger_state *s = state;

	s->order_shares = cfg->order_shares;
	s->imbalance_num = cfg->imbalance_num;
	s->imbalance_den = cfg->imbalance_den ? cfg->imbalance_den : 1;
	s->min_top_shares = cfg->min_top_shares;
	s->max_spread = cfg->max_spread;
	s->cross_trigger = cfg->cross_trigger;
}

/* +1 buy, -1 sell, 0 nothing, from the best levels. */
static int trigger_signal(const struct trigger_state *c, uint32_t bid, uint64_t bid_sz,
			  uint32_t ask, uint64_t ask_sz)
{
	if (ask <= bid)
		return c->cross_trigger ? 1 : 0;
	if (ask - bid > c->max_spread)
		return 0;
	if (bid_sz < c->min_top_shares || ask_sz < c->min_top_shares)
		return 0;
	/* Sizes are below 2^40 in any real book; the products stay in 64 bits. */
	if (bid_sz * c->imbalance_den >= ask_sz * c->imbalance_num)
		return 1;
	if (ask_sz * c->imbalance_den >= bid_sz * c->imbalance_num)
		return -1;
	return 0;
}

bool strategy_on_book(void *state, const struct strat_view *v, const struct itch_msg *m,
		      uint16_t locate, uint16_t slot, struct order_intent *o)
{
	struct trigger_state *s = state;
	uint32_t bid = 0, ask = 0;
	uint64_t bid_sz = 0, ask_sz = 0;
	int sig = 0;

	(void)m;
	if (strat_best(v, locate, BOOK_BID, &bid, &bid_sz) &&
	    strat_best(v, locate, BOOK_ASK, &ask, &ask_sz))
		sig = trigger_signal(s, bid, bid_sz, ask, ask_sz);
	struct trigger_symbol *sym = &s->sym[slot];
	uint32_t price = sig > 0 ? ask : bid;  /* take the other side */
	bool fire = sig != 0 && (sig != sym->last_signal || price != sym->last_price);
	sym->last_signal = (int8_t)sig;
	if (!fire)
		return false;
	sym->last_price = price;
	o->shares = s->order_shares;
	o->price = price;
	o->side = sig > 0 ? 'B' : 'S';
	return true;
}
