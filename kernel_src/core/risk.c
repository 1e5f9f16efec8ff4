/*
 * risk.c - pre-trade limits (see risk.h).
 *
 * Checks run cheapest first and the first failure names the reason. Only an
 * accepted order changes state, so a rejected one leaves no trace but its
 * counter. The rate limit keeps the feed timestamps of the last
 * max_orders_per_sec accepted orders in a ring: a new order is refused while
 * the oldest of them is less than one second of feed time old.
 */
#include "risk.h"

#define RISK_NS_PER_SEC 1000000000ull
#define RISK_BPS 10000ull

void risk_init(struct risk *r, const struct risk_config *cfg)
{
	r->cfg = *cfg;
	if (r->cfg.max_orders_per_sec > RISK_MAX_RATE)
		r->cfg.max_orders_per_sec = RISK_MAX_RATE;
	core_memset(r->sym, 0, sizeof(r->sym));
	r->win_head = 0;
	r->win_len = 0;
	core_memset(&r->c, 0, sizeof(r->c));
}

void risk_set_kill(struct risk *r, bool on)
{
	r->cfg.kill = on ? 1u : 0u;
}

void risk_on_trade(struct risk *r, uint16_t slot, uint32_t price)
{
	if (slot < STRAT_MAX_SYMBOLS && price != 0)
		r->sym[slot].last_trade = price;
}

/* Would one more order at feed time ts exceed the per-second rate? */
static bool risk_rate_exceeded(const struct risk *r, uint64_t ts)
{
	uint32_t max = r->cfg.max_orders_per_sec;

	if (max == 0 || r->win_len < max)
		return false;
	uint64_t oldest = r->window[r->win_head];
	/* A feed clock that steps back counts as "within the second": safe. */
	return ts < oldest + RISK_NS_PER_SEC;
}

static bool risk_outside_band(const struct risk *r, const struct risk_symbol *s,
			      const struct order_intent *o, bool *no_ref)
{
	uint64_t ref = s->last_trade ? s->last_trade : o->ref_price;

	*no_ref = ref == 0;
	if (*no_ref)
		return true;
	uint64_t diff = o->price > ref ? o->price - ref : ref - o->price;
	return diff * RISK_BPS > ref * r->cfg.price_band_bps;
}

static enum risk_reason risk_evaluate(const struct risk *r, const struct order_intent *o)
{
	const struct risk_config *c = &r->cfg;
	const struct risk_symbol *s = &r->sym[o->slot];
	bool no_ref;

	if (c->kill)
		return RISK_KILL;
	if (o->shares == 0 || (c->max_order_shares && o->shares > c->max_order_shares))
		return RISK_SIZE;
	int64_t pos = s->position + (o->side == 'B' ? (int64_t)o->shares : -(int64_t)o->shares);
	uint64_t abs_pos = pos < 0 ? (uint64_t)-pos : (uint64_t)pos;
	if (c->max_position && abs_pos > c->max_position)
		return RISK_POSITION;
	if (c->max_notional && s->notional + (uint64_t)o->price * o->shares > c->max_notional)
		return RISK_NOTIONAL;
	if (risk_rate_exceeded(r, o->feed_ts_ns))
		return RISK_RATE;
	if (c->price_band_bps && risk_outside_band(r, s, o, &no_ref))
		return no_ref ? RISK_NO_REFERENCE : RISK_BAND;
	return RISK_OK;
}

enum risk_reason risk_check(struct risk *r, const struct order_intent *o)
{
	if (o->slot >= STRAT_MAX_SYMBOLS) {
		r->c.rejected[RISK_NO_REFERENCE]++;
		return RISK_NO_REFERENCE;
	}
	enum risk_reason why = risk_evaluate(r, o);
	if (why != RISK_OK) {
		r->c.rejected[why]++;
		return why;
	}
	struct risk_symbol *s = &r->sym[o->slot];
	s->position += o->side == 'B' ? (int64_t)o->shares : -(int64_t)o->shares;
	s->notional += (uint64_t)o->price * o->shares;
	if (r->cfg.max_orders_per_sec) {
		uint32_t max = r->cfg.max_orders_per_sec;
		if (r->win_len < max) {
			r->window[(r->win_head + r->win_len) % max] = o->feed_ts_ns;
			r->win_len++;
		} else {
			r->window[r->win_head] = o->feed_ts_ns;
			r->win_head = (r->win_head + 1) % max;
		}
	}
	r->c.accepted++;
	return RISK_OK;
}
