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
	strategy_init(&e->strat, &cfg->strat);
	risk_init(&e->risk, &cfg->risk);
	e->orders = 0;
	e->seq_too_large = 0;
	e->instance = (uint8_t)cfg->instance;
	return true;
}

/* Trade prints that set the risk reference price without touching the book:
 * P (non-cross trade) and Q (cross trade), ITCH 5.0 §1.7. */
static void engine_trade_print(struct engine *e, const struct itch_msg *m)
{
	uint16_t slot = strategy_slot(&e->strat, m->stock_locate);

	if (slot != STRAT_SLOT_NONE)
		risk_on_trade(&e->risk, slot, m->price);
}

/* engine_on_message's body, inline so that the packet loop below runs it
 * without a call per message. */
static CORE_ALWAYS_INLINE int engine_message(struct engine *e, const uint8_t *msg, size_t len,
					     uint64_t seq, engine_emit_fn emit, void *ctx)
{
	struct itch_msg m;
	struct book_effect fx;
	struct order_intent o;

	if (itch_decode_counted(msg, len, &m, &e->itch) != ITCH_OK)
		return 0;
	/* Only a locate not bound yet can bind: the table answers the common
	 * case (every later message of a symbol) without a call. */
	if ((m.present & ITCH_F_STOCK) && strategy_slot(&e->strat, m.stock_locate) == STRAT_SLOT_NONE)
		strategy_on_symbol(&e->strat, &m);
	if (m.type == 'P' || m.type == 'Q') {
		engine_trade_print(e, &m);
		return 0;
	}
	if (!book_apply(&e->book, &m, &fx))
		return 0;
	uint16_t slot = strategy_slot(&e->strat, fx.locate);
	if (slot == STRAT_SLOT_NONE)
		return 0;
	if (fx.exec_shares)
		risk_on_trade(&e->risk, slot, fx.exec_price);
	/* The tick-to-trade join needs the trigger in the token: a sequence
	 * number the token cannot hold never trades (no session gets there). */
	if (CORE_UNLIKELY(seq > ENGINE_MAX_TRIGGER_SEQ)) {
		e->seq_too_large++;
		return 0;
	}
	if (!strategy_evaluate(&e->strat, &e->book, fx.locate, seq, m.timestamp_ns, &o))
		return 0;
	if (risk_check(&e->risk, &o) != RISK_OK)
		return 0;
	emit(ctx, &o);
	/* Bookkeeping after the order is out: nothing before the next
	 * message reads it, and HFT-OS rings the doorbell inside emit. */
	risk_commit(&e->risk, &o);
	e->orders++;
	return 1;
}

int engine_on_message(struct engine *e, const uint8_t *msg, size_t len, uint64_t seq,
		      engine_emit_fn emit, void *ctx)
{
	return engine_message(e, msg, len, seq, emit, ctx);
}

int engine_on_packet(struct engine *e, const uint8_t *buf, size_t len,
		     engine_emit_fn emit, void *ctx)
{
	struct mold_packet pk;
	struct mold_iter it;
	const uint8_t *msg;
	uint16_t mlen;
	int rc = mold_parse(buf, len, &pk);

	if (rc != MOLD_OK) {
		e->mold.c.malformed++;
		return rc;
	}
	int skip = mold_accept(&e->mold, &pk);
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
		seq++;
	}
	return orders;
}
