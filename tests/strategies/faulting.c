/*
 * faulting.c - a strategy for tests/test_strategies.py. It trades nothing;
 * in HFT-OS (freestanding) it writes to an unmapped address at its first
 * book event. Hosted builds (the golden model) never fault.
 */
#include "strategy.h"
STRATEGY_STATE(int);
void strategy_init(void *s, const struct strategy_config *c) { (void)s; (void)c; }
bool strategy_on_book(void *s, const struct strat_view *v, const struct itch_msg *m,
                      uint16_t l, uint16_t sl, struct order_intent *o)
{
	(void)s; (void)v; (void)m; (void)l; (void)sl; (void)o;
#if !__STDC_HOSTED__
	*(volatile uint64_t *)0x100000000ull = 1;  /* 4 GiB: not mapped in HFT-OS */
#endif
	return false;
}
