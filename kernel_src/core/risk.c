/*
 * risk.c - pre-trade limits (see risk.h).
 *
 * Checks run cheapest first and the first failure names the reason. Only an
 * accepted order, once committed, changes state, so a rejected one leaves no
 * trace but its counter. The rate limit keeps the feed timestamps of the last
 * max_orders_per_sec accepted orders in a ring: a new order is refused while
 * the oldest of them is less than one second of feed time old.
 */
#include "risk.h"


void risk_init(struct risk *r, const struct risk_config *cfg)
{
	r->cfg = *cfg;
	if (r->cfg.max_orders_per_sec > RISK_MAX_RATE)
		r->cfg.max_orders_per_sec = RISK_MAX_RATE;
	r->lim.max_position = cfg->max_position ? cfg->max_position : UINT64_MAX;
	r->lim.max_notional = cfg->max_notional ? cfg->max_notional : UINT64_MAX;
	r->lim.max_order_shares = cfg->max_order_shares ? cfg->max_order_shares : UINT32_MAX;
	core_memset(r->sym, 0, sizeof(r->sym));
	core_memset(r->live, 0, sizeof(r->live));
	r->win_head = 0;
	r->win_len = 0;
	core_memset(&r->c, 0, sizeof(r->c));
}

void risk_set_kill(struct risk *r, bool on)
{
	r->cfg.kill = on ? 1u : 0u;
}

/* The live order o acts on, or the first free entry (seq 0) for a post. */
static int risk_live_find(const struct risk_live *live, uint64_t seq)
{
	for (int i = 0; i < RISK_LIVE_PER_SLOT; i++)
		if (live[i].seq == seq)
			return i;
	return -1;
}

/* risk_evaluate for a post, replace or cancel (the trigger never gets here). */
static CORE_NOINLINE enum risk_reason risk_evaluate_resting(const struct risk *r,
							     const struct order_intent *o,
							     const struct book *b)
{
	const struct risk_symbol *s = &r->sym[o->slot];
	const struct risk_live *live = r->live[o->slot];
	int64_t pos = s->position;

	if (o->kind == ORDER_CANCEL)
		return o->orig_seq && risk_live_find(live, o->orig_seq) >= 0 ? RISK_OK : RISK_UNKNOWN_ORDER;
	if (o->kind == ORDER_REPLACE) {
		int i = o->orig_seq ? risk_live_find(live, o->orig_seq) : -1;
		if (i < 0)
			return RISK_UNKNOWN_ORDER;
		pos += live[i].dir * ((int64_t)o->shares - (int64_t)live[i].shares);
	} else if (o->kind == ORDER_POST) {
		if (risk_live_find(live, 0) < 0)
			return RISK_LIVE_FULL;
		pos += risk_delta(o);
	} else {
		return RISK_UNKNOWN_ORDER;
	}
	return risk_limits(r, s, o, b, pos, false);
}

/* risk_check of a post, replace or cancel, out of line (risk.h). */
enum risk_reason risk_check_resting(struct risk *r, const struct order_intent *o,
							  const struct book *b)
{
	enum risk_reason why = o->slot < STRAT_MAX_SYMBOLS ? risk_evaluate_resting(r, o, b)
							   : RISK_NO_REFERENCE;

	if (why != RISK_OK)
		r->c.rejected[why]++;
	return why;
}

/* Remember an accepted order's feed time in the rate window, a ring of
 * max_orders_per_sec entries (wrapped by compare, not by a division). */
static void risk_rate_record(struct risk *r, uint64_t ts)
{
	uint32_t max = r->cfg.max_orders_per_sec;

	if (max == 0)
		return;
	if (r->win_len < max) {
		uint32_t i = r->win_head + r->win_len;  /* < 2 * max */
		r->window[i < max ? i : i - max] = ts;
		r->win_len++;
	} else {
		r->window[r->win_head] = ts;
		r->win_head = r->win_head + 1 == max ? 0 : r->win_head + 1;
	}
}

/* risk_commit for a post, replace or cancel that risk_check accepted. */
static CORE_NOINLINE void risk_commit_resting(struct risk *r, const struct order_intent *o)
{
	struct risk_symbol *s = &r->sym[o->slot];
	int i = risk_live_find(r->live[o->slot], o->kind == ORDER_POST ? 0 : o->orig_seq);

	if (i < 0)
		return;  /* not accepted by risk_check: nothing to account */
	struct risk_live *lv = &r->live[o->slot][i];
	if (o->kind == ORDER_CANCEL) {
		s->position -= lv->dir * (int64_t)lv->shares;
		lv->seq = 0;
		r->c.accepted++;
		return;
	}
	if (o->kind == ORDER_POST) {
		lv->dir = o->side == 'B' ? 1 : -1;
		lv->shares = 0;
	}
	s->position += lv->dir * ((int64_t)o->shares - (int64_t)lv->shares);
	s->notional += (uint64_t)o->price * o->shares;
	lv->seq = o->trigger_seq;
	lv->shares = o->shares;
	risk_rate_record(r, o->feed_ts_ns);
	r->c.accepted++;
}

void risk_commit(struct risk *r, const struct order_intent *o)
{
	struct risk_symbol *s = &r->sym[o->slot];

	if (CORE_UNLIKELY(o->kind != ORDER_ENTER)) {
		risk_commit_resting(r, o);
		return;
	}

	s->position += risk_delta(o);
	s->notional += (uint64_t)o->price * o->shares;
	risk_rate_record(r, o->feed_ts_ns);
	r->c.accepted++;
}
