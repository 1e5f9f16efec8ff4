/*
 * engine.h - the one trading path: MoldUDP64 -> ITCH -> book -> strategy ->
 * risk -> order.
 *
 * HFT-OS's hot loop, the cffi golden model and every Linux/DPDK baseline call
 * exactly this code, so their orders can be compared bit for bit. The engine
 * owns no memory beyond its struct (the book's arrays come from the caller)
 * and emits accepted orders through a callback, so that HFT-OS can build the
 * OUCH frame straight into a TX descriptor buffer and ring the doorbell.
 */
#ifndef CORE_ENGINE_H
#define CORE_ENGINE_H

#include "platform.h"
#include "itch.h"
#include "moldudp64.h"
#include "book.h"
#include "strategy.h"
#include "risk.h"
#include "tslog.h"

#define ENGINE_CONFIG_MAGIC 0x48465443u  /* "HFTC" */
#define ENGINE_CONFIG_VERSION 1u
#define ENGINE_MAX_TRIGGER_SEQ ((1ull << 48) - 1)  /* 12 hex digits of the OUCH token */
CORE_STATIC_ASSERT(ENGINE_MAX_TRIGGER_SEQ == MOLD_FAST_MAX_SEQ,
		   "the MoldUDP64 shortcut takes only numbers a token can carry");

/* Fixed layout: embedded in the HFT-OS image config block. */
struct engine_config {
	uint32_t magic;
	uint32_t version;
	uint32_t instance;   /* 0..255, in every order token */
	uint32_t pad;
	struct strategy_config strat;
	struct risk_config risk;
};
CORE_STATIC_ASSERT(sizeof(struct engine_config) == 16 + sizeof(struct strategy_config) + 32,
		   "engine_config is a wire format");

/* Called with every accepted order, which the callee sends right away (HFT-OS
 * rings the TX doorbell inside it). The engine commits the order to risk
 * (position, notional, rate) only after emit returns, to keep that off the
 * tick-to-trade path; no state a later decision reads is left stale. */
typedef void (*engine_emit_fn)(void *ctx, const struct order_intent *o);

struct engine {
	struct mold_state mold;
	struct itch_counters itch;
	struct book book;
	struct strategy strat;
	struct risk risk;
	uint64_t orders;        /* orders emitted */
	uint64_t seq_too_large; /* triggers >= 2^48 that an order token cannot carry */
	/* The strategy's intent, kept between calls (strategy.h): nothing is
	 * preset per message, so the evaluation path costs no stores. */
	struct order_intent intent;
	/* The decoded Add, kept between Adds: its constant part is written
	 * once, at init (itch_dec_add_prepare), each Add writes its fields. */
	struct itch_msg add;
	/* The same for the order events D, E and X, one struct each
	 * (itch_dec_event_prepare). */
	struct itch_msg ev_d, ev_e, ev_x;
	uint8_t instance;
};

/* Reset everything. False when the config or the book memory is invalid. */
bool engine_init(struct engine *e, const struct engine_config *cfg, const struct book_mem *mem);

/* Process one ITCH message whose MoldUDP64 sequence number is seq. Returns
 * the number of orders emitted (0 or 1). */
int engine_on_message(struct engine *e, const uint8_t *msg, size_t len, uint64_t seq,
		      engine_emit_fn emit, void *ctx);

/* Process one MoldUDP64 datagram (the UDP payload): sequencing, then every
 * new message. Returns the number of orders emitted, or a negative
 * enum mold_status for a malformed datagram (counted). */
int engine_on_packet(struct engine *e, const uint8_t *buf, size_t len,
		     engine_emit_fn emit, void *ctx);

/* ---- engine_on_packet's body, inline: the out-of-line functions above
 * call it, and so does a sender that wants its emit callback inlined
 * (HFT-OS's hot loop: the order goes out without an indirect call). The
 * order of the steps is the contract every build shares. */

/* Trade prints that set the risk reference price without touching the book:
 * P (non-cross trade) and Q (cross trade), ITCH 5.0 §1.7. */
static inline void engine_trade_print(struct engine *e, const struct itch_msg *m, uint16_t slot)
{
	if (slot != STRAT_SLOT_NONE && m->price != 0) {
		e->strat.sym[slot].last_trade = m->price;
		risk_on_trade(&e->risk, slot, m->price);
	}
}

/* After the book changed for `slot` (a traded symbol): the strategy, the
 * engine's fields of the intent, risk, and the order out. Inline into
 * engine_message's two paths. */
static CORE_ALWAYS_INLINE int engine_decide(struct engine *e, const struct itch_msg *m,
					    uint16_t locate, uint16_t slot, uint64_t seq, bool seq_ok,
					    uint32_t top, engine_emit_fn emit, void *ctx)
{
	struct order_intent *o = &e->intent;

	/* The tick-to-trade join needs the trigger in the token: a sequence
	 * number the token cannot hold never trades (no session gets there). */
	if (!seq_ok && CORE_UNLIKELY(seq > ENGINE_MAX_TRIGGER_SEQ)) {
		e->seq_too_large++;
		return 0;
	}
	/* A strategy woken only by its best levels (STRAT_WAKE_TOP) sleeps
	 * through changes deeper in the book, unless a call since its last
	 * such wake asked for an order (then it sees what became of it). The
	 * flag is set only when one asks and cleared only here, so the
	 * common path stores nothing; a call it lets through after a call
	 * that asked for nothing asks for nothing (strategy.h). */
	if (!top && e->strat.wake_top) {
		if (!e->strat.asked[slot])
			return 0;
		e->strat.asked[slot] = 0;
	}
	/* A direct call: exactly one strategy is linked in (strategy.h). The
	 * counters are bumped on the way out, off the path to the doorbell. */
	if (!strategy_on_book(e->strat.state, &e->strat.view, m, locate, slot, o)) {
		e->strat.c.evaluations++;
		return 0;
	}
	/* What risk keys on comes from the engine, never from the strategy. */
	o->trigger_seq = seq;
	o->feed_ts_ns = m->timestamp_ns;
	o->locate = locate;
	o->slot = slot;
	core_memcpy(o->stock, e->strat.sym[slot].stock, 8);
	if (risk_check(&e->risk, o, &e->book) != RISK_OK) {
		e->strat.rejected_seq[slot] = seq;
		e->strat.asked[slot] = 1;
		e->strat.c.evaluations++;
		e->strat.c.signals++;
		return 0;
	}
	emit(ctx, o);
	/* Bookkeeping after the order is out: nothing before the next
	 * message reads it, and HFT-OS rings the doorbell inside emit. */
	risk_commit(&e->risk, o);
	e->strat.sent_seq[slot] = seq;
	e->strat.asked[slot] = 1;
	e->strat.c.evaluations++;
	e->strat.c.signals++;
	e->orders++;
	return 1;
}

/* After an order event (E C X D U) changed the book: an execution's price
 * is the symbol's last trade (the strategy's and risk's), then the
 * decision. */
static CORE_ALWAYS_INLINE int engine_after_event(struct engine *e, const struct itch_msg *m,
						 const struct book_effect *fx, uint64_t seq, bool seq_ok,
						 engine_emit_fn emit, void *ctx)
{
	uint16_t slot = strategy_slot(&e->strat, fx->locate);

	if (slot == STRAT_SLOT_NONE)
		return 0;
	if (fx->exec_shares && fx->exec_price != 0) {
		e->strat.sym[slot].last_trade = fx->exec_price;
		risk_on_trade(&e->risk, slot, fx->exec_price);
	}
	return engine_decide(e, m, fx->locate, slot, seq, seq_ok, e->book.top, emit, ctx);
}

/* The messages engine_message does not take itself: decoded whole, then
 * bound, applied and decided on like them. Leaves the book's deferred
 * part to the caller. */
static CORE_ALWAYS_INLINE int engine_message_other(struct engine *e, const uint8_t *msg, size_t len,
						   uint64_t seq, bool seq_ok, engine_emit_fn emit,
						   void *ctx)
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
	/* F (an add with attribution): the same, from the decoded message. */
	if (m.type == 'F') {
		if (!book_apply_add(&e->book, &m) || slot == STRAT_SLOT_NONE)
			return 0;
		return engine_decide(e, &m, m.stock_locate, slot, seq, seq_ok, e->book.top, emit, ctx);
	}
	/* The cross trade (a P is here never: the decoder takes only its exact
	 * length, which engine_message took). */
	if (m.type == 'Q') {
		engine_trade_print(e, &m, slot);
		return 0;
	}
	/* Replaces and C change the book (A, D, E and X are here never, for
	 * the same reason); every other type leaves it alone. */
	bool changed;
	if (m.type == 'U')
		changed = book_apply_replace(&e->book, &m, &fx);
	else if (m.type == 'C')
		changed = book_apply_event(&e->book, &m, &fx);
	else
		return 0;
	if (!changed)
		return 0;
	return engine_after_event(e, &m, &fx, seq, seq_ok, emit, ctx);
}

/* engine_on_message's body, inline so that the packet loop below runs it
 * without a call per message. The book is settled on entry and on return:
 * each kind of message finishes the book's deferred part (book_settle)
 * itself, once any order is out, so that the branches in book_settle
 * see one kind of change at each place (an add's, or a removal's) and
 * are predicted, not guessed from a random mix of message types. */
static CORE_ALWAYS_INLINE int engine_message(struct engine *e, const uint8_t *msg, size_t len,
					     uint64_t seq, bool seq_ok, engine_emit_fn emit, void *ctx)
{
	struct book_effect fx;

	/* Add Order, most of the feed and of the triggers: decoded for the
	 * strategy, and its fields straight from the wire into the book. */
	if (CORE_LIKELY(len == 36 && msg[0] == 'A')) {
		struct itch_msg *am = &e->add;
		struct itch_add_fields f = itch_dec_add_fields(msg, am);
		uint16_t slot = strategy_slot(&e->strat, f.locate);
		uint32_t top;
		int orders = 0;
		if (slot == STRAT_SLOT_NONE)
			slot = strategy_on_symbol(&e->strat, am);
		if (book_apply_add_fields(&e->book, f.order_ref, f.locate, f.side, f.shares, f.price, &top) &&
		    slot != STRAT_SLOT_NONE)
			orders = engine_decide(e, am, f.locate, slot, seq, seq_ok, top, emit, ctx);
		book_settle(&e->book);
		/* Counted once the order is out (nothing before reads them). */
		e->itch.messages++;
		e->itch.by_type['A']++;
		return orders;
	}
	/* D, E and X, the order events after the add: each into its own
	 * prepared struct, applied straight, counted once the order is out.
	 * The length first: a block may be empty. */
	struct itch_msg *em = len == 19 && msg[0] == 'D'   ? &e->ev_d
			      : len == 31 && msg[0] == 'E' ? &e->ev_e
			      : len == 23 && msg[0] == 'X' ? &e->ev_x
							   : NULL;
	if (em != NULL) {
		uint8_t t = msg[0];
		int orders = 0;
		itch_dec_event_fields(msg, em, (char)t);
		if (book_apply_event(&e->book, em, &fx))
			orders = engine_after_event(e, em, &fx, seq, seq_ok, emit, ctx);
		book_settle(&e->book);
		e->itch.messages++;
		e->itch.by_type[t]++;
		return orders;
	}
	/* P, a trade print (as many as the adds in RITCH's sample): the
	 * symbol's last trade, nothing else; it may name a symbol not bound
	 * yet, as the general path below would. Its own branch: through the
	 * general path it cost RITCH ~6 instructions a message more. */
	if (len == 44 && msg[0] == 'P') {
		struct itch_msg m;
		itch_dec_trade_direct(msg, &m);
		uint16_t slot = strategy_slot(&e->strat, m.stock_locate);
		if (slot == STRAT_SLOT_NONE)
			slot = strategy_on_symbol(&e->strat, &m);
		engine_trade_print(e, &m, slot);
		e->itch.messages++;
		e->itch.by_type['P']++;
		return 0;
	}
	int orders = engine_message_other(e, msg, len, seq, seq_ok, emit, ctx);
	book_settle(&e->book);
	return orders;
}

static CORE_ALWAYS_INLINE int engine_packet(struct engine *e, const uint8_t *buf, size_t len,
					    engine_emit_fn emit, void *ctx)
{
	struct mold_packet pk;
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
		int orders;
		if (CORE_LIKELY(mold_is_next(&e->mold, buf, seq))) {
			/* mold_accept's work for it after the message (nothing in
			 * it reads the session): the next number, the counters.
			 * The shortcut only takes numbers a token can carry
			 * (MOLD_FAST_MAX_SEQ), so the message skips that check. */
			orders = engine_message(e, buf + MOLD_HDR_LEN + MOLD_BLOCK_HDR, mlen, seq, true,
						emit, ctx);
			mold_take_next(&e->mold, seq, 1);
			e->mold.c.packets++;
			e->mold.c.messages++;
		} else if (mold_accept_next(&e->mold, buf, seq, 1) == 0) {
			orders = engine_message(e, buf + MOLD_HDR_LEN + MOLD_BLOCK_HDR, mlen, seq, false,
						emit, ctx);
		} else {
			return 0;
		}
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
	/* Accepted: pk.count blocks, every one inside the datagram (mold_parse),
	 * the first `skip` of them seen before. */
	const uint8_t *p = pk.body;
	for (int k = 0; k < skip; k++)
		mold_block_take(&p, &mlen);
	uint64_t seq = pk.seq + (unsigned)skip;
	int orders = 0;
	/* Every number of the packet one an order token can carry (all of
	 * them, in any real session): the messages skip that check. */
	if (CORE_LIKELY(pk.seq <= ENGINE_MAX_TRIGGER_SEQ + 1 - pk.count)) {
		for (unsigned left = pk.count - (unsigned)skip; left != 0; left--, seq++) {
			msg = mold_block_take(&p, &mlen);
			orders += engine_message(e, msg, mlen, seq, true, emit, ctx);
		}
		return orders;
	}
	for (unsigned left = pk.count - (unsigned)skip; left != 0; left--, seq++) {
		msg = mold_block_take(&p, &mlen);
		orders += engine_on_message(e, msg, mlen, seq, emit, ctx);
	}
	return orders;
}

/* The sequence number of the next message in sequence of the live
 * MoldUDP64 session (the one of the last data packet; 0 before any): what
 * a one-message datagram that arrives in order carries, so a sender can
 * prepare for it (ouch_seq_digits) while it waits. */
static inline uint64_t engine_expected_seq(const struct engine *e)
{
	return e->mold.fast_next;
}

/* Every engine counter into a dump, under the names hftlab reads (mold_*,
 * itch_*, itch_type_<C>, book_*, strategy_*, risk_*, engine_orders): the
 * same for HFT-OS and every baseline, so their run directories compare. */
void engine_dump_counters(const struct engine *e, struct tslog_dump *d);

#endif
