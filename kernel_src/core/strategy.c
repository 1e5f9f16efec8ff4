/*
 * strategy.c - top-of-book imbalance taker (see strategy.h).
 *
 * Symbols are matched by their 8-byte ITCH stock field and bound to a slot
 * the first time a message names them (Stock Directory R at the start of a
 * day, or an Add Order when the feed starts mid-day). From then on the
 * locate -> slot table answers in one load on the hot path.
 */
#include "strategy.h"

void strategy_init(struct strategy *s, const struct strategy_config *cfg)
{
	s->cfg = *cfg;
	if (s->cfg.n_symbols > STRAT_MAX_SYMBOLS)
		s->cfg.n_symbols = STRAT_MAX_SYMBOLS;
	if (s->cfg.imbalance_den == 0)
		s->cfg.imbalance_den = 1;
	core_memset(s->slot_of, 0xFF, sizeof(s->slot_of));
	core_memset(s->sym, 0, sizeof(s->sym));
	s->n_slots = 0;
	core_memset(&s->c, 0, sizeof(s->c));
}

/* Is `stock` one of the configured symbols (or are all symbols wanted)? */
static bool strategy_wants(const struct strategy *s, const char stock[8])
{
	if (s->cfg.n_symbols == 0)
		return true;
	for (uint32_t i = 0; i < s->cfg.n_symbols; i++)
		if (core_memcmp(s->cfg.symbols[i], stock, 8) == 0)
			return true;
	return false;
}

uint16_t strategy_on_symbol(struct strategy *s, const struct itch_msg *m)
{
	uint16_t slot = s->slot_of[m->stock_locate];

	if (slot != STRAT_SLOT_NONE || !(m->present & ITCH_F_STOCK))
		return slot;
	if (!strategy_wants(s, m->stock))
		return STRAT_SLOT_NONE;
	/* A locate is reused for one symbol per day (ITCH 5.0 §1.1); a second
	 * locate for the same stock gets its own slot. */
	if (s->n_slots == STRAT_MAX_SYMBOLS) {
		s->c.symbols_full++;
		return STRAT_SLOT_NONE;
	}
	slot = (uint16_t)s->n_slots++;
	core_memcpy(s->sym[slot].stock, m->stock, 8);
	s->sym[slot].locate = m->stock_locate;
	s->sym[slot].last_signal = 0;
	s->slot_of[m->stock_locate] = slot;
	return slot;
}

/* +1 buy, -1 sell, 0 nothing, from the best levels. */
static int strategy_signal(const struct strategy_config *c, uint32_t bid, uint64_t bid_sz,
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

bool strategy_evaluate(struct strategy *s, const struct book *b, uint16_t locate,
		       uint64_t seq, uint64_t feed_ts_ns, struct order_intent *o)
{
	uint16_t slot = s->slot_of[locate];
	uint32_t bid = 0, ask = 0;
	uint64_t bid_sz = 0, ask_sz = 0;
	int sig = 0;

	if (slot == STRAT_SLOT_NONE)
		return false;
	s->c.evaluations++;
	if (book_best(b, locate, BOOK_BID, &bid, &bid_sz) &&
	    book_best(b, locate, BOOK_ASK, &ask, &ask_sz))
		sig = strategy_signal(&s->cfg, bid, bid_sz, ask, ask_sz);
	struct strategy_symbol *sym = &s->sym[slot];
	uint32_t price = sig > 0 ? ask : bid;  /* take the other side */
	bool fire = sig != 0 && (sig != sym->last_signal || price != sym->last_price);
	sym->last_signal = (int8_t)sig;
	if (!fire)
		return false;
	sym->last_price = price;
	s->c.signals++;
	/* Field by field, not a compound literal: that would zero the whole
	 * struct first (a rep stos) only to overwrite every field. */
	o->trigger_seq = seq;
	o->feed_ts_ns = feed_ts_ns;
	o->shares = s->cfg.order_shares;
	o->price = price;
	o->ref_price = (uint32_t)(((uint64_t)bid + ask) / 2);
	o->locate = locate;
	o->slot = slot;
	o->side = sig > 0 ? 'B' : 'S';
	core_memcpy(o->stock, sym->stock, 8);
	return true;
}
