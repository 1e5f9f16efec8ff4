/*
 * fuzz_engine.c - libFuzzer harness over the whole trading path:
 * MoldUDP64 datagram -> ITCH decode -> book -> strategy -> risk -> OUCH.
 *
 * Input layout (one fuzz input = one trading session on a fresh engine):
 *
 *   byte 0      configuration selector, see fuzz_config() for the bits
 *   then        records: u16 big-endian length L, then L bytes, each record
 *               one MoldUDP64 datagram (a UDP payload) for engine_on_packet;
 *               a record whose length runs past the input takes what is left
 *
 * A length prefix rather than a delimiter keeps every byte value available
 * inside a datagram, and libFuzzer's comparison tracing learns the prefixes
 * quickly. The book is tiny (FUZZ_ORDER_CAP orders, FUZZ_LEVEL_CAP levels) so
 * the "book full" paths run all the time, and the configuration trades every
 * symbol (two, with selector bit 1) on loose thresholds with tight risk
 * limits, so that orders are wanted, accepted and rejected for every reason.
 *
 * Checks, each a __builtin_trap() after a message on stderr:
 *  - every emitted order OUCH-encodes, decodes back (ouch_decode_enter and
 *    ouch_token_parse) to the same fields (the trigger sequence number modulo
 *    2^48, all a token holds), and takes the opposite best price of its book
 *    at the moment of emission;
 *  - after every datagram: the book's hash index, order slots, price levels
 *    and free lists agree with each other and with its counters; risk
 *    positions and notionals stay within their limits; accepted + rejected ==
 *    strategy signals; every message that MoldUDP64 sequencing accepted went
 *    through the ITCH decoder exactly once;
 *  - after the last datagram: every per-locate head points at a live level.
 *
 * Build: make -C tests/fuzz fuzz   (clang, -fsanitize=fuzzer,address,undefined)
 * Run:   build/fuzz/fuzz_engine build/fuzz/corpus/engine build/fuzz/seeds/engine
 */
#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "ouch.h"

#define FUZZ_ORDER_CAP 64
#define FUZZ_INDEX_CAP 128   /* power of two >= 2 * FUZZ_ORDER_CAP */
#define FUZZ_LEVEL_CAP 24
#define FUZZ_REC_HDR 2       /* u16 length in front of each datagram */
#define FUZZ_SEQ_MASK ((UINT64_C(1) << 48) - 1)  /* what a token can carry */

#define FUZZ_CHECK(cond)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "fuzz_engine: check failed: %s (%s:%d)\n", \
				#cond, __FILE__, __LINE__);                     \
			__builtin_trap();                                       \
		}                                                               \
	} while (0)

/* The engine is ~700 KB (a head per locate): static, re-initialised per input. */
static struct engine eng;
static struct book_order orders[FUZZ_ORDER_CAP];
static uint32_t index_tab[FUZZ_INDEX_CAP];
static struct book_level levels[FUZZ_LEVEL_CAP];
#define FUZZ_LINDEX_CAP 64   /* power of two >= 2 * FUZZ_LEVEL_CAP */
static uint32_t lindex_tab[FUZZ_LINDEX_CAP];

struct fuzz_ctx {
	const struct engine_config *cfg;
	uint64_t emitted;
	uint64_t call_emitted;  /* orders emitted during the current datagram */
};

/*
 * Selector bits (byte 0 of the input):
 *   0  cross_trigger on            4  price band 0 (off) instead of 500 bps
 *   1  trade only "AAPL", "MSFT"   5,6 order_shares 100 / 1 / 700 (> max) / 0
 *   2  kill switch on              7  imbalance 3:1 instead of 1:1
 *   3  rate limit 2 orders/s of feed time instead of 4096
 */
static void fuzz_config(struct engine_config *c, uint8_t sel)
{
	static const uint32_t shares[4] = { 100, 1, 700, 0 };

	memset(c, 0, sizeof *c);
	c->magic = ENGINE_CONFIG_MAGIC;
	c->version = ENGINE_CONFIG_VERSION;
	c->instance = 0xA5;
	c->strat.cross_trigger = sel & 1u;
	if (sel & 2u) {
		c->strat.n_symbols = 2;
		memcpy(c->strat.symbols[0], "AAPL    ", 8);
		memcpy(c->strat.symbols[1], "MSFT    ", 8);
	}
	c->strat.order_shares = shares[(sel >> 5) & 3u];
	c->strat.imbalance_num = (sel & 0x80u) ? 3 : 1;
	c->strat.imbalance_den = 1;
	c->strat.min_top_shares = 1;
	c->strat.max_spread = 1000000;                 /* $100: loose */
	c->risk.max_position = 300;
	c->risk.max_notional = UINT64_C(1000000000000); /* $100M */
	c->risk.max_order_shares = 500;
	c->risk.max_orders_per_sec = (sel & 8u) ? 2 : RISK_MAX_RATE;
	c->risk.price_band_bps = (sel & 16u) ? 0 : 500;
	c->risk.kill = (sel >> 2) & 1u;
}

/* The emitted intent must round-trip through OUCH and match the book. */
static void fuzz_emit(void *ctxp, const struct order_intent *o)
{
	struct fuzz_ctx *ctx = ctxp;
	uint8_t buf[OUCH_ENTER_LEN + 8];
	struct ouch_enter d;
	uint8_t inst;
	uint64_t seq;

	ctx->emitted++;
	ctx->call_emitted++;
	FUZZ_CHECK(o->slot < eng.strat.n_slots && eng.strat.sym[o->slot].locate == o->locate);
	FUZZ_CHECK(!ctx->cfg->risk.kill || o->kind == ORDER_CANCEL);
	if (o->kind != ORDER_ENTER) {  /* a quoting strategy (kernel_src/strategies/quoter.c) */
		uint8_t m[OUCH_MAX_LEN];
		size_t want = o->kind == ORDER_POST ? OUCH_ENTER_LEN
			      : o->kind == ORDER_REPLACE ? OUCH_REPLACE_LEN : OUCH_CANCEL_LEN;
		FUZZ_CHECK(o->kind <= ORDER_CANCEL);
		FUZZ_CHECK(ouch_encode_intent(m, want - 1, o, eng.instance) == 0);
		FUZZ_CHECK(ouch_encode_intent(m, sizeof m, o, eng.instance) == want);
		FUZZ_CHECK(ouch_token_parse((const char *)m + 1, &inst, &seq) && inst == eng.instance);
		FUZZ_CHECK(seq == ((o->kind == ORDER_POST ? o->trigger_seq : o->orig_seq) & FUZZ_SEQ_MASK));
		if (o->kind == ORDER_POST) {
			FUZZ_CHECK(ouch_decode_enter(m, want, &d) && d.tif == OUCH_TIF_MARKET_HOURS);
			FUZZ_CHECK(d.side == o->side && d.shares == o->shares && d.price == o->price);
		}
		return;
	}
	FUZZ_CHECK(ouch_encode_order(buf, OUCH_ENTER_LEN - 1, o, eng.instance) == 0);
	FUZZ_CHECK(ouch_encode_order(buf, sizeof buf, o, eng.instance) == OUCH_ENTER_LEN);
	FUZZ_CHECK(!ouch_decode_enter(buf, OUCH_ENTER_LEN - 1, &d));
	FUZZ_CHECK(ouch_decode_enter(buf, OUCH_ENTER_LEN, &d));
	FUZZ_CHECK(d.side == o->side && d.shares == o->shares && d.price == o->price);
	FUZZ_CHECK(memcmp(d.stock, o->stock, sizeof d.stock) == 0);
	FUZZ_CHECK(d.tif == OUCH_TIF_IOC && d.min_qty == 0);
	FUZZ_CHECK(d.instance == eng.instance);
	/* The token holds 12 hex digits: a sequence number >= 2^48 is truncated
	 * (ouch.h states the precondition; see the fuzz report). */
	FUZZ_CHECK(d.trigger_seq == (o->trigger_seq & FUZZ_SEQ_MASK));
	FUZZ_CHECK(ouch_token_parse(d.token, &inst, &seq));
	FUZZ_CHECK(inst == d.instance && seq == d.trigger_seq);

	/* The intent itself: a traded slot, our size, the opposite best price. */
	const struct strategy *s = &eng.strat;
	uint32_t px = 0;
	uint64_t sz = 0;
	FUZZ_CHECK(o->side == 'B' || o->side == 'S');
	FUZZ_CHECK(o->slot < s->n_slots && s->sym[o->slot].locate == o->locate);
	FUZZ_CHECK(memcmp(s->sym[o->slot].stock, o->stock, 8) == 0);
	FUZZ_CHECK(o->shares == ctx->cfg->strat.order_shares);
	FUZZ_CHECK(book_best(&eng.book, o->locate, o->side == 'B' ? BOOK_ASK : BOOK_BID, &px, &sz));
	FUZZ_CHECK(px == o->price);
	FUZZ_CHECK(!ctx->cfg->risk.kill);
}

/* Walk a free list threaded through `link`, then add the never-used slots
 * [fresh, cap); returns how many are free, trapping on a cycle, an
 * out-of-range link or a listed slot at or above fresh. mark[i] is set for
 * every free entry. */
static uint32_t fuzz_free_list(uint32_t head, uint32_t fresh, uint32_t cap, const uint32_t *link_of,
			       size_t stride, uint8_t *mark)
{
	uint32_t n = 0;

	FUZZ_CHECK(fresh <= cap);
	for (uint32_t i = head; i != BOOK_NIL; n++) {
		FUZZ_CHECK(i < fresh && n < cap && !mark[i]);
		mark[i] = 1;
		i = *(const uint32_t *)((const uint8_t *)link_of + (size_t)i * stride);
	}
	for (uint32_t i = fresh; i < cap; i++, n++)
		mark[i] = 1;
	return n;
}

/* Each (locate, side)'s treap holds exactly its list's levels: the live
 * levels that are nobody's child are the roots, children are live, of the
 * same book, of no higher priority and point back at their parent, and an
 * in-order walk (ascending
 * price) visits the list best first for asks, worst first for bids. */
static void fuzz_check_treaps(const struct book *b, const uint8_t *free_l)
{
	uint8_t child[FUZZ_LEVEL_CAP] = {0};
	uint32_t order[FUZZ_LEVEL_CAP], stack[FUZZ_LEVEL_CAP];

	for (uint32_t i = 0; i < FUZZ_LEVEL_CAP; i++) {
		if (free_l[i])
			continue;
		const uint32_t kids[2] = { levels[i].lower, levels[i].higher };
		for (int k = 0; k < 2; k++) {
			uint32_t c = kids[k];
			if (c == BOOK_NIL)
				continue;
			FUZZ_CHECK(c < FUZZ_LEVEL_CAP && !free_l[c] && !child[c]);
			child[c] = 1;
			FUZZ_CHECK(levels[c].locate == levels[i].locate && levels[c].side == levels[i].side);
			FUZZ_CHECK(levels[c].prio <= levels[i].prio && levels[c].parent == i);
		}
	}
	for (uint32_t r = 0; r < FUZZ_LEVEL_CAP; r++) {
		if (free_l[r] || child[r])
			continue;
		const struct book_level *l = &levels[r];
		FUZZ_CHECK(b->root[l->locate][l->side] == r && l->parent == BOOK_NIL);
		uint32_t n = 0, sp = 0;
		for (uint32_t t = r; t != BOOK_NIL || sp > 0;) {
			if (t != BOOK_NIL) {
				FUZZ_CHECK(sp < FUZZ_LEVEL_CAP);
				stack[sp++] = t;
				t = levels[t].lower;
				continue;
			}
			t = stack[--sp];
			FUZZ_CHECK(n < FUZZ_LEVEL_CAP);
			order[n++] = t;
			t = levels[t].higher;
		}
		uint32_t k = 0;
		for (uint32_t c = b->head[l->locate][l->side]; c != BOOK_NIL; c = levels[c].next, k++)
			FUZZ_CHECK(k < n && order[l->side == BOOK_ASK ? k : n - 1 - k] == c);
		FUZZ_CHECK(k == n);
	}
}

/* Orders, index, levels and free lists agree; O(capacity), so per datagram. */
static void fuzz_check_book(const struct book *b)
{
	uint8_t free_o[FUZZ_ORDER_CAP] = {0}, free_l[FUZZ_LEVEL_CAP] = {0};
	uint64_t lv_shares[FUZZ_LEVEL_CAP] = {0};
	uint32_t lv_orders[FUZZ_LEVEL_CAP] = {0};
	uint32_t n_index = 0;

	FUZZ_CHECK(b->live_orders <= FUZZ_ORDER_CAP && b->live_levels <= FUZZ_LEVEL_CAP);
	uint32_t nfo = fuzz_free_list(b->free_order, b->fresh_order, FUZZ_ORDER_CAP, &orders[0].level,
				      sizeof orders[0], free_o);
	uint32_t nfl = fuzz_free_list(b->free_level, b->fresh_level, FUZZ_LEVEL_CAP, &levels[0].next,
				      sizeof levels[0], free_l);
	FUZZ_CHECK(nfo + b->live_orders == FUZZ_ORDER_CAP);
	FUZZ_CHECK(nfl + b->live_levels == FUZZ_LEVEL_CAP);
	for (uint32_t i = 0; i < FUZZ_INDEX_CAP; i++) {
		uint32_t slot = index_tab[i];
		if (slot == 0)
			continue;
		n_index++;
		FUZZ_CHECK(slot <= FUZZ_ORDER_CAP && !free_o[slot - 1]);
		const struct book_order *o = &orders[slot - 1];
		uint32_t sh = 0;
		/* The probe from the hash must reach this very entry. */
		FUZZ_CHECK(book_order_shares(b, o->ref, &sh) && sh == o->shares);
		FUZZ_CHECK(o->level < FUZZ_LEVEL_CAP && !free_l[o->level]);
		lv_shares[o->level] += o->shares;
		lv_orders[o->level]++;
	}
	FUZZ_CHECK(n_index == b->live_orders);
	/* The level hash (when this input has one) holds exactly the live
	 * levels, and every one is found from its home. */
	if (b->m.lindex) {
		uint32_t n_lindex = 0;
		for (uint32_t i = 0; i < FUZZ_LINDEX_CAP; i++) {
			uint32_t e = lindex_tab[i];
			if (e == 0)
				continue;
			n_lindex++;
			FUZZ_CHECK(e <= FUZZ_LEVEL_CAP && !free_l[e - 1]);
		}
		FUZZ_CHECK(n_lindex == b->live_levels);
	}
	for (uint32_t i = 0; i < FUZZ_LEVEL_CAP; i++)
		if (!free_l[i])
			FUZZ_CHECK(book_level_find(b, levels[i].locate, levels[i].side, levels[i].price) == i);
	for (uint32_t i = 0; i < FUZZ_LEVEL_CAP; i++) {
		if (free_l[i])
			continue;
		const struct book_level *l = &levels[i];
		FUZZ_CHECK(l->orders > 0 && l->orders == lv_orders[i] && l->shares == lv_shares[i]);
		FUZZ_CHECK(l->side <= BOOK_ASK);
		if (l->prev == BOOK_NIL) {
			FUZZ_CHECK(b->head[l->locate][l->side] == i);
		} else {
			FUZZ_CHECK(l->prev < FUZZ_LEVEL_CAP && !free_l[l->prev]);
			const struct book_level *p = &levels[l->prev];
			FUZZ_CHECK(p->next == i);
			FUZZ_CHECK(p->locate == l->locate && p->side == l->side);
			FUZZ_CHECK(l->side == BOOK_BID ? p->price > l->price : p->price < l->price);
		}
		if (l->next != BOOK_NIL)
			FUZZ_CHECK(l->next < FUZZ_LEVEL_CAP && !free_l[l->next] &&
				   levels[l->next].prev == i);
	}
	fuzz_check_treaps(b, free_l);
}

/* Counters and limits of decode, strategy and risk. */
static void fuzz_check_counters(const struct engine *e, const struct fuzz_ctx *ctx)
{
	const struct risk *r = &e->risk;
	const struct itch_counters *ic = &e->itch;
	uint64_t rejected = 0;

	for (int i = 0; i < RISK_NREASONS; i++)
		rejected += r->c.rejected[i];
	FUZZ_CHECK(r->c.rejected[RISK_OK] == 0);
	FUZZ_CHECK(r->c.accepted + rejected == e->strat.c.signals);
	FUZZ_CHECK(e->orders == r->c.accepted && e->orders == ctx->emitted);
	FUZZ_CHECK(!ctx->cfg->risk.kill || r->c.accepted == 0);
	FUZZ_CHECK(ic->messages + ic->unknown_type + ic->bad_length + ic->empty == e->mold.c.messages);
	FUZZ_CHECK(e->strat.n_slots <= STRAT_MAX_SYMBOLS);
	for (uint32_t s = 0; s < e->strat.n_slots; s++) {
		const struct risk_symbol *rs = &r->sym[s];
		uint64_t pos = rs->position < 0 ? (uint64_t)-rs->position : (uint64_t)rs->position;
		FUZZ_CHECK(pos <= r->cfg.max_position);
		FUZZ_CHECK(rs->notional <= r->cfg.max_notional);
		FUZZ_CHECK(e->strat.slot_of[e->strat.sym[s].locate] == s);
	}
	FUZZ_CHECK(r->win_len <= r->cfg.max_orders_per_sec);
}

/* The heads are exactly the live levels without a better neighbour: no head
 * may point at a freed level. The expected table is built, compared in one
 * memcmp (a loop over 128K heads would cost more than the whole input) and
 * put back to all-NIL. Once per input. */
static uint32_t expect_head[BOOK_NLOCATES][2];
static bool expect_ready;

static void fuzz_check_heads(const struct book *b)
{
	uint8_t free_l[FUZZ_LEVEL_CAP] = {0};

	if (!expect_ready) {
		memset(expect_head, 0xFF, sizeof expect_head);
		expect_ready = true;
	}
	fuzz_free_list(b->free_level, b->fresh_level, FUZZ_LEVEL_CAP, &levels[0].next, sizeof levels[0], free_l);
	for (uint32_t i = 0; i < FUZZ_LEVEL_CAP; i++) {
		if (free_l[i])
			continue;
		FUZZ_CHECK(levels[i].side <= BOOK_ASK);
		if (levels[i].prev == BOOK_NIL)
			expect_head[levels[i].locate][levels[i].side] = i;
	}
	bool same = memcmp(expect_head, b->head, sizeof expect_head) == 0;
	for (uint32_t i = 0; i < FUZZ_LEVEL_CAP; i++)
		if (!free_l[i])
			expect_head[levels[i].locate][levels[i].side] = BOOK_NIL;
	FUZZ_CHECK(same);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct engine_config cfg;
	struct book_mem mem = {
		.orders = orders, .order_cap = FUZZ_ORDER_CAP,
		.index = index_tab, .index_cap = FUZZ_INDEX_CAP,
		.levels = levels, .level_cap = FUZZ_LEVEL_CAP,
	};
	struct fuzz_ctx ctx = { .cfg = &cfg };

	if (size < 1)
		return 0;
	/* Inputs of odd size run with the level hash, even ones without:
	 * both ways of finding a level are fuzzed. */
	if (size & 1) {
		mem.lindex = lindex_tab;
		mem.lindex_cap = FUZZ_LINDEX_CAP;
	}
	fuzz_config(&cfg, data[0]);
	FUZZ_CHECK(engine_init(&eng, &cfg, &mem));
	size_t off = 1;
	while (off < size) {
		size_t left = size - off;
		size_t len = left < FUZZ_REC_HDR ? left : ((size_t)data[off] << 8 | data[off + 1]);
		off += left < FUZZ_REC_HDR ? 0 : FUZZ_REC_HDR;
		if (len > size - off)
			len = size - off;
		uint64_t malformed = eng.mold.c.malformed;
		ctx.call_emitted = 0;
		int rc = engine_on_packet(&eng, data + off, len, fuzz_emit, &ctx);
		if (rc < 0)
			FUZZ_CHECK(eng.mold.c.malformed == malformed + 1 && ctx.call_emitted == 0);
		else
			FUZZ_CHECK((uint64_t)rc == ctx.call_emitted);
		off += len;
		fuzz_check_book(&eng.book);
		fuzz_check_counters(&eng, &ctx);
	}
	fuzz_check_heads(&eng.book);
	return 0;
}
