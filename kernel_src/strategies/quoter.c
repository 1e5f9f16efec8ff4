/*
 * quoter.c - keeps one bid and one ask resting near the touch (strategy.h).
 *
 * For each traded symbol it posts a bid at best bid - offset and an ask at
 * best ask + offset (ORDER_POST), and when the touch moves by more than
 * `requote` it replaces the quote (ORDER_REPLACE) at the new price. When
 * the book is one-sided, locked, crossed or wider than max_spread it
 * cancels its quotes (ORDER_CANCEL), one per book event. One order message
 * per event: the bid side is looked at first, then the ask. Whether an
 * intent went out (strat_last_sent) is read at the symbol's next event: a
 * refused one leaves the quote as it was.
 *
 * Parameters (struct strategy_config words): order_shares;
 * imbalance_num = offset (1/10,000 $ behind the touch; 0 joins it),
 * imbalance_den = requote (1/10,000 $ the target may move before a
 * replace; 0: any move), max_spread (1/10,000 $).
 */
#include "strategy.h"

struct quote {
	uint64_t seq;        /* token sequence of the live quote, 0: none */
	uint32_t price;
	uint32_t pad;
};

struct quoter_symbol {
	struct quote q[2];      /* BOOK_BID, BOOK_ASK */
	uint64_t seen_sent;     /* strat_last_sent at the previous call */
	int32_t pending_side;   /* side of the intent asked for then, -1: none */
	uint32_t pending_price;
	uint32_t pending_kind;
	uint32_t pad;
};

struct quoter_state {
	uint32_t order_shares;
	uint32_t offset;
	uint32_t requote;
	uint32_t max_spread;
	struct quoter_symbol sym[STRAT_MAX_SYMBOLS];
};
/* Its decision is a function of the best bid and ask, of what became of
 * its own intents and of its state: after asking for nothing it asks for
 * nothing again until one of them moves, so the engine calls it only after
 * a best level changed or after a call that asked (STRAT_WAKE_TOP). */
STRATEGY_STATE_WAKE(struct quoter_state, STRAT_WAKE_TOP);

void strategy_init(void *state, const struct strategy_config *cfg)
{
	struct quoter_state *s = state;

	s->order_shares = cfg->order_shares;
	s->offset = cfg->imbalance_num;
	s->requote = cfg->imbalance_den;
	s->max_spread = cfg->max_spread;
	for (int i = 0; i < STRAT_MAX_SYMBOLS; i++)
		s->sym[i].pending_side = -1;
}

/* Ask for an intent on side `side`; its outcome is read at the next call. */
static bool quoter_intent(struct quoter_symbol *sym, int side, struct order_intent *o,
			  uint8_t kind, uint32_t price)
{
	sym->pending_side = side;
	sym->pending_kind = kind;
	sym->pending_price = price;
	o->kind = kind;
	o->side = side == BOOK_BID ? 'B' : 'S';
	o->orig_seq = sym->q[side].seq;
	o->price = price;
	return true;
}

/* What became of the intent asked for at the previous call: it went out
 * (strat_last_sent moved, to its token) or risk refused it (nothing moved). */
static void quoter_outcome(struct quoter_symbol *sym, const struct strat_view *v, uint16_t slot)
{
	uint64_t sent = strat_last_sent(v, slot);

	if (sym->pending_side >= 0 && sent != sym->seen_sent) {
		struct quote *q = &sym->q[sym->pending_side];
		if (sym->pending_kind == ORDER_CANCEL) {
			q->seq = 0;
			q->price = 0;
		} else {
			q->seq = sent;
			q->price = sym->pending_price;
		}
	}
	sym->pending_side = -1;
	sym->seen_sent = sent;
}

static uint32_t quoter_dist(uint32_t a, uint32_t b)
{
	return a > b ? a - b : b - a;
}

bool strategy_on_book(void *state, const struct strat_view *v, const struct itch_msg *m,
		      uint16_t locate, uint16_t slot, struct order_intent *o)
{
	struct quoter_state *s = state;
	struct quoter_symbol *sym = &s->sym[slot];
	uint32_t bid = 0, ask = 0;
	uint64_t bsz, asz;

	(void)m;
	quoter_outcome(sym, v, slot);
	bool ok = strat_best(v, locate, BOOK_BID, &bid, &bsz) &&
		  strat_best(v, locate, BOOK_ASK, &ask, &asz) && ask > bid &&
		  ask - bid <= s->max_spread && bid > s->offset;
	o->shares = s->order_shares;
	for (int side = 0; side < 2; side++) {
		const struct quote *q = &sym->q[side];
		if (!ok) {
			if (q->seq)
				return quoter_intent(sym, side, o, ORDER_CANCEL, 0);
			continue;
		}
		uint32_t target = side == BOOK_BID ? bid - s->offset : ask + s->offset;
		if (q->seq == 0)
			return quoter_intent(sym, side, o, ORDER_POST, target);
		if (quoter_dist(q->price, target) > s->requote)
			return quoter_intent(sym, side, o, ORDER_REPLACE, target);
	}
	return false;
}
