/*
 * engine.c - the trading path shared by HFT-OS, the golden model and the
 * baselines (see engine.h).
 *
 * Per message: decode, bind the symbol to a strategy slot, apply it to the
 * book, feed executions to risk as last-trade references, and when the book
 * of a traded symbol changed, let the strategy decide and risk approve. The
 * order of these steps is part of the contract: every build must take the
 * same decisions from the same feed.
 */
#include "engine.h"

bool engine_init(struct engine *e, const struct engine_config *cfg, const struct book_mem *mem)
{
	if (cfg->magic != ENGINE_CONFIG_MAGIC || cfg->version != ENGINE_CONFIG_VERSION ||
	    cfg->instance > 0xFF)
		return false;
	if (!book_init(&e->book, mem))
		return false;
	mold_init(&e->mold);
	core_memset(&e->itch, 0, sizeof(e->itch));
	strategy_bind_init(&e->strat, &cfg->strat, &e->book);
	risk_init(&e->risk, &cfg->risk);
	e->orders = 0;
	e->seq_too_large = 0;
	core_memset(&e->intent, 0, sizeof(e->intent));  /* kind ORDER_ENTER */
	itch_dec_add_prepare(&e->add);
	itch_dec_event_prepare(&e->ev_d, 'D');
	itch_dec_event_prepare(&e->ev_e, 'E');
	itch_dec_event_prepare(&e->ev_x, 'X');
	e->instance = (uint8_t)cfg->instance;
	return true;
}

int engine_on_message(struct engine *e, const uint8_t *msg, size_t len, uint64_t seq,
		      engine_emit_fn emit, void *ctx)
{
	return engine_message(e, msg, len, seq, false, emit, ctx);
}

int engine_on_packet(struct engine *e, const uint8_t *buf, size_t len,
		     engine_emit_fn emit, void *ctx)
{
	return engine_packet(e, buf, len, emit, ctx);
}

/* itch_type_<C> for every printable type byte C that decoded at least once. */
static void engine_dump_itch_types(const struct itch_counters *ic, struct tslog_dump *d)
{
	char name[] = "itch_type_?";

	for (unsigned ty = '!'; ty < 0x7F; ty++) {
		if (ic->by_type[ty] == 0)
			continue;
		name[sizeof(name) - 2] = (char)ty;
		tslog_dump_counter(d, name, ic->by_type[ty]);
	}
}

void engine_dump_counters(const struct engine *e, struct tslog_dump *d)
{
	const struct mold_counters *mc = &e->mold.c;
	const struct book_counters *bc = &e->book.c;
	const struct risk_counters *rc = &e->risk.c;
	const struct tslog_counter c[] = {
		{ "mold_packets", mc->packets }, { "mold_messages", mc->messages },
		{ "mold_heartbeats", mc->heartbeats }, { "mold_end_of_session", mc->end_of_session },
		{ "mold_gaps", mc->gaps }, { "mold_gap_messages", mc->gap_messages },
		{ "mold_duplicates", mc->duplicates },
		{ "mold_duplicate_messages", mc->duplicate_messages },
		{ "mold_malformed", mc->malformed }, { "mold_sessions_full", mc->sessions_full },
		{ "mold_after_end", mc->after_end },
		{ "itch_messages", e->itch.messages }, { "itch_unknown_type", e->itch.unknown_type },
		{ "itch_bad_length", e->itch.bad_length }, { "itch_empty", e->itch.empty },
		{ "book_adds", bc->adds }, { "book_executes", bc->executes },
		{ "book_cancels", bc->cancels }, { "book_deletes", bc->deletes },
		{ "book_replaces", bc->replaces }, { "book_unknown_ref", bc->unknown_ref },
		{ "book_duplicate_ref", bc->duplicate_ref }, { "book_over_execute", bc->over_execute },
		{ "book_bad_side", bc->bad_side }, { "book_full_orders", bc->full_orders },
		{ "book_full_levels", bc->full_levels },
		{ "book_live_orders", e->book.live_orders }, { "book_live_levels", e->book.live_levels },
		{ "strategy_evaluations", e->strat.c.evaluations },
		{ "strategy_signals", e->strat.c.signals },
		{ "strategy_symbols_full", e->strat.c.symbols_full },
		{ "risk_accepted", rc->accepted },
		{ "risk_rejected_kill", rc->rejected[RISK_KILL] },
		{ "risk_rejected_size", rc->rejected[RISK_SIZE] },
		{ "risk_rejected_position", rc->rejected[RISK_POSITION] },
		{ "risk_rejected_notional", rc->rejected[RISK_NOTIONAL] },
		{ "risk_rejected_rate", rc->rejected[RISK_RATE] },
		{ "risk_rejected_band", rc->rejected[RISK_BAND] },
		{ "risk_rejected_no_reference", rc->rejected[RISK_NO_REFERENCE] },
		{ "risk_rejected_unknown_order", rc->rejected[RISK_UNKNOWN_ORDER] },
		{ "risk_rejected_live_full", rc->rejected[RISK_LIVE_FULL] },
		{ "engine_orders", e->orders }, { "engine_seq_too_large", e->seq_too_large },
	};

	tslog_dump_counters(d, c, sizeof(c) / sizeof(c[0]));
	engine_dump_itch_types(&e->itch, d);
}
