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
	e->instance = (uint8_t)cfg->instance;
	return true;
}

/* Trade prints that set the risk reference price without touching the book:
 * P (non-cross trade) and Q (cross trade), ITCH 5.0 §1.7. */
static void engine_trade_print(struct engine *e, const struct itch_msg *m)
{
	uint16_t slot = strategy_slot(&e->strat, m->stock_locate);

	if (slot != STRAT_SLOT_NONE && m->price != 0) {
		e->strat.sym[slot].last_trade = m->price;
		risk_on_trade(&e->risk, slot, m->price);
	}
}

/* After the book changed for `slot` (a traded symbol): the strategy, the
 * engine's fields of the intent, risk, and the order out. Inline into
 * engine_message's two paths. */
static CORE_ALWAYS_INLINE int engine_decide(struct engine *e, const struct itch_msg *m,
					    uint16_t locate, uint16_t slot, uint64_t seq,
					    engine_emit_fn emit, void *ctx)
{
	struct order_intent *o = &e->intent;

	/* The tick-to-trade join needs the trigger in the token: a sequence
	 * number the token cannot hold never trades (no session gets there). */
	if (CORE_UNLIKELY(seq > ENGINE_MAX_TRIGGER_SEQ)) {
		e->seq_too_large++;
		return 0;
	}
	e->strat.c.evaluations++;
	/* A direct call: exactly one strategy is linked in (strategy.h). */
	if (!strategy_on_book(e->strat.state, &e->strat.view, m, locate, slot, o))
		return 0;
	e->strat.c.signals++;
	/* What risk keys on comes from the engine, never from the strategy. */
	o->trigger_seq = seq;
	o->feed_ts_ns = m->timestamp_ns;
	o->locate = locate;
	o->slot = slot;
	core_memcpy(o->stock, e->strat.sym[slot].stock, 8);
	if (risk_check(&e->risk, o, &e->book) != RISK_OK) {
		e->strat.rejected_seq[slot] = seq;
		return 0;
	}
	emit(ctx, o);
	/* Bookkeeping after the order is out: nothing before the next
	 * message reads it, and HFT-OS rings the doorbell inside emit. */
	risk_commit(&e->risk, o);
	e->strat.sent_seq[slot] = seq;
	e->orders++;
	return 1;
}

/* engine_on_message's body, inline so that the packet loop below runs it
 * without a call per message. The book is settled on entry and is left
 * with the deferred part of an add (book_settle: the caller's, once any
 * order is out). */
static CORE_ALWAYS_INLINE int engine_message(struct engine *e, const uint8_t *msg, size_t len,
					     uint64_t seq, engine_emit_fn emit, void *ctx)
{
	struct itch_msg m;
	struct book_effect fx;

	if (itch_decode_fast(msg, len, &m, &e->itch) != ITCH_OK)
		return 0;
	/* Only a locate not bound yet can bind: the table answers the common
	 * case (every later message of a symbol) without a call. */
	uint16_t slot = strategy_slot(&e->strat, m.stock_locate);
	if ((m.present & ITCH_F_STOCK) && slot == STRAT_SLOT_NONE)
		slot = strategy_on_symbol(&e->strat, &m);
	/* Adds, most of the feed and of the triggers: the book's inline add,
	 * the message's own locate, no execution. */
	if (CORE_LIKELY(m.type == 'A' || m.type == 'F')) {
		if (!book_apply_add(&e->book, &m) || slot == STRAT_SLOT_NONE)
			return 0;
		return engine_decide(e, &m, m.stock_locate, slot, seq, emit, ctx);
	}
	if (m.type == 'P' || m.type == 'Q') {
		engine_trade_print(e, &m);
		return 0;
	}
	if (!book_apply(&e->book, &m, &fx))
		return 0;
	slot = strategy_slot(&e->strat, fx.locate);
	if (slot == STRAT_SLOT_NONE)
		return 0;
	if (fx.exec_shares && fx.exec_price != 0) {
		e->strat.sym[slot].last_trade = fx.exec_price;
		risk_on_trade(&e->risk, slot, fx.exec_price);
	}
	return engine_decide(e, &m, fx.locate, slot, seq, emit, ctx);
}

int engine_on_message(struct engine *e, const uint8_t *msg, size_t len, uint64_t seq,
		      engine_emit_fn emit, void *ctx)
{
	int n = engine_message(e, msg, len, seq, emit, ctx);

	book_settle(&e->book);
	return n;
}

int engine_on_packet(struct engine *e, const uint8_t *buf, size_t len,
		     engine_emit_fn emit, void *ctx)
{
	struct mold_packet pk;
	struct mold_iter it;
	const uint8_t *msg;
	uint16_t mlen;

	/* One message, the latency case (every message in its own datagram):
	 * its block checked once, sequenced by mold_accept_next, no loop. */
	if (CORE_LIKELY(len >= MOLD_HDR_LEN + MOLD_BLOCK_HDR &&
			rd_be16(buf + MOLD_OFF_COUNT) == 1)) {
		mlen = rd_be16(buf + MOLD_HDR_LEN);
		if (CORE_UNLIKELY(len - MOLD_HDR_LEN - MOLD_BLOCK_HDR < mlen)) {
			e->mold.c.malformed++;
			return MOLD_E_TRUNCATED;
		}
		uint64_t seq = rd_be64(buf + MOLD_OFF_SEQ);
		if (mold_accept_next(&e->mold, buf, seq, 1) < 0)
			return 0;
		int orders = engine_message(e, buf + MOLD_HDR_LEN + MOLD_BLOCK_HDR, mlen, seq, emit, ctx);
		book_settle(&e->book);  /* the book's deferred part, the order being out */
		return orders;
	}
	int rc = mold_parse(buf, len, &pk);
	if (rc != MOLD_OK) {
		e->mold.c.malformed++;
		return rc;
	}
	int skip = mold_accept_next(&e->mold, pk.session, pk.seq, pk.count);
	if (skip < 0)
		return 0;
	int orders = 0;
	uint64_t seq = pk.seq;
	mold_iter_init(&it, &pk);
	while (mold_next(&it, &msg, &mlen)) {
		if (skip > 0)
			skip--;
		else
			orders += engine_message(e, msg, mlen, seq, emit, ctx);
		/* The book's deferred part of an add, the order being out. */
		book_settle(&e->book);
		seq++;
	}
	return orders;
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
