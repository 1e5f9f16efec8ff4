/*
 * strategy.c - the engine's side of the strategy interface (strategy.h):
 * the symbol table and the strategy's state.
 *
 * Symbols are matched by their 8-byte ITCH stock field and bound to a slot
 * the first time a message names them (Stock Directory R at the start of a
 * day, or an Add Order when the feed starts mid-day). From then on the
 * locate -> slot table answers in one load on the hot path. The slot is
 * what risk keys its limits by, so binding stays out of the strategy.
 */
#include "strategy.h"

void strategy_bind_init(struct strategy *s, const struct strategy_config *cfg,
			const struct book *b)
{
	s->cfg = *cfg;
	if (s->cfg.n_symbols > STRAT_MAX_SYMBOLS)
		s->cfg.n_symbols = STRAT_MAX_SYMBOLS;
	core_memset(s->slot_of, 0xFF, sizeof(s->slot_of));
	core_memset(s->sym, 0, sizeof(s->sym));
	s->n_slots = 0;
	core_memset(&s->c, 0, sizeof(s->c));
	s->wake_top = strategy_wake == STRAT_WAKE_TOP;
	s->view.book = b;
	s->view.sym = s->sym;
	s->view.cfg = &s->cfg;
	s->view.rejected_seq = s->rejected_seq;
	s->view.sent_seq = s->sent_seq;
	core_memset(s->rejected_seq, 0, sizeof(s->rejected_seq));
	core_memset(s->sent_seq, 0, sizeof(s->sent_seq));
	core_memset(s->asked, 0, sizeof(s->asked));
	core_memset(s->state, 0, sizeof(s->state));
	strategy_init(s->state, &s->cfg);
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
	s->sym[slot].last_trade = 0;
	s->rejected_seq[slot] = 0;
	s->sent_seq[slot] = 0;
	s->slot_of[m->stock_locate] = slot;
	return slot;
}
