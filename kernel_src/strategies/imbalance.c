/*
 * imbalance.c - depth-weighted order book imbalance (strategy.h).
 *
 * After every book change of a traded symbol it sums the shares of the best
 * `levels` price levels per side (strat_depth_shares) and takes liquidity in the
 * direction of the heavier side: it buys the best ask when
 * bid_depth * 100 >= ask_depth * threshold_pct, sells the best bid in the
 * mirror case, with the spread at most max_spread. Unlike the trigger it
 * looks past the touch, and it waits `cooldown` book events of the symbol
 * after an order before it may fire again.
 *
 * Parameters (struct strategy_config words): order_shares;
 * imbalance_num = threshold_pct (e.g. 300: 3x heavier; 0 counts as 200),
 * imbalance_den = levels (1..8, 0 counts as 5), max_spread (1/10,000 $),
 * min_top_shares = cooldown (book events).
 */
#include "strategy.h"

#define IMB_MAX_LEVELS 8  /* levels it weighs at most */

struct imb_symbol {
	uint32_t quiet;      /* book events left before it may fire again */
	int32_t last_side;   /* +1 bought, -1 sold, 0 none */
};

struct imb_state {
	uint32_t order_shares;
	uint32_t threshold_pct;
	uint32_t levels;
	uint32_t max_spread;
	uint32_t cooldown;
	uint32_t pad;
	struct imb_symbol sym[STRAT_MAX_SYMBOLS];
};
STRATEGY_STATE(struct imb_state);

void strategy_init(void *state, const struct strategy_config *cfg)
{
	struct imb_state *s = state;

	s->order_shares = cfg->order_shares;
	s->threshold_pct = cfg->imbalance_num ? cfg->imbalance_num : 200;
	s->levels = cfg->imbalance_den ? cfg->imbalance_den : 5;
	if (s->levels > IMB_MAX_LEVELS)
		s->levels = IMB_MAX_LEVELS;
	s->max_spread = cfg->max_spread;
	s->cooldown = cfg->min_top_shares;
}

bool strategy_on_book(void *state, const struct strat_view *v, const struct itch_msg *m,
		      uint16_t locate, uint16_t slot, struct order_intent *o)
{
	struct imb_state *s = state;
	struct imb_symbol *sym = &s->sym[slot];
	uint32_t bid, ask;
	uint64_t top;

	(void)m;
	if (sym->quiet) {
		sym->quiet--;
		return false;
	}
	/* The touch first (one load a side): a crossed, locked or wide book
	 * needs no walk down the levels. */
	if (!strat_best(v, locate, BOOK_BID, &bid, &top) || !strat_best(v, locate, BOOK_ASK, &ask, &top) ||
	    ask <= bid || ask - bid > s->max_spread)
		return false;
	uint64_t bd = strat_depth_shares(v, locate, BOOK_BID, s->levels, &bid);
	uint64_t ad = strat_depth_shares(v, locate, BOOK_ASK, s->levels, &ask);
	if (bd == 0 || ad == 0)
		return false;
	int side = 0;
	if (bd * 100 >= ad * s->threshold_pct)
		side = 1;
	else if (ad * 100 >= bd * s->threshold_pct)
		side = -1;
	if (side == 0)
		return false;
	sym->quiet = s->cooldown;
	sym->last_side = side;
	o->side = side > 0 ? 'B' : 'S';
	o->price = side > 0 ? ask : bid;
	o->shares = s->order_shares;
	return true;
}
