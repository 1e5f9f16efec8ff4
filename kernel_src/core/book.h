/*
 * book.h - limit order books for every stock locate, from ITCH order events.
 *
 * Orders live in a caller-owned array, found by order reference through an
 * open-addressing hash index (linear probing in Robin Hood order, backward-
 * shift deletion that stops at the first entry at its home, so no
 * tombstones build up). Each (locate, side) keeps its price levels twice:
 * in a list sorted best first, so the best bid and ask are one load away and
 * the depth is a walk from there, and in a treap (a binary search tree by
 * price, heap-ordered by a hash of the price), so that finding the level of
 * a price, or where a new one goes, takes O(log levels) steps instead of a
 * walk down the list; an optional hash by (locate, side, price) finds an
 * existing level without the descent. All memory is
 * given at book_init and never grows: an add that finds no free order or
 * level is counted in `full_*` and dropped, leaving the book consistent.
 */
#ifndef CORE_BOOK_H
#define CORE_BOOK_H

#include "platform.h"
#include "param.h"
#include "itch.h"

#define BOOK_NIL 0xFFFFFFFFu

enum book_side { BOOK_BID = 0, BOOK_ASK = 1 };

struct book_order {
	uint64_t ref;
	uint32_t shares;
	uint32_t level;   /* index into levels; free list link when unused */
};

struct book_level {
	uint64_t shares;  /* sum of the shares of its orders */
	uint32_t price;
	uint32_t orders;  /* number of orders at this price */
	uint32_t next;    /* towards worse prices; free list link when unused */
	uint32_t prev;    /* towards better prices */
	uint32_t lower;   /* treap child with the lower prices */
	uint32_t higher;  /* treap child with the higher prices */
	uint32_t parent;  /* treap parent, BOOK_NIL at the root */
	uint32_t prio;    /* treap priority: book_prio(price); parents' are >= */
	uint16_t locate;
	uint8_t side;
	uint8_t pad[17];  /* to 64 bytes: a level index is one shift, a level one cache line */
};
CORE_STATIC_ASSERT(sizeof(struct book_level) == 64, "book_level is 64 bytes");

struct book_counters {
	uint64_t adds, executes, cancels, deletes, replaces;
	uint64_t unknown_ref;     /* E C X D U for an order the book never saw */
	uint64_t duplicate_ref;   /* A F U with a reference already live */
	uint64_t over_execute;    /* E C X for more shares than remain (clamped) */
	uint64_t bad_side;
	uint64_t full_orders;     /* add dropped: no free order slot */
	uint64_t full_levels;     /* add dropped: no free price level */
};

struct book_mem {
	struct book_order *orders;  /* order_cap entries */
	uint32_t order_cap;
	uint32_t *index;            /* index_cap entries, power of two >= 2*order_cap */
	uint32_t index_cap;
	struct book_level *levels;  /* level_cap entries */
	uint32_t level_cap;
	/* Optional (NULL: none): the levels hashed by (locate, side, price),
	 * lindex_cap entries, a power of two >= 2*level_cap, each a level + 1
	 * (0 = empty). With it an add worse than the best level finds an
	 * existing level in about one probe; only a new level descends the
	 * treap (for its list neighbours). */
	uint32_t *lindex;
	uint32_t lindex_cap;
};

struct book {
	struct book_mem m;
	uint32_t index_mask;  /* m.index_cap - 1 */
	uint32_t lindex_mask; /* m.lindex_cap - 1, 0 without m.lindex */
	uint32_t free_order;
	uint32_t free_level;
	/* Slots [fresh_*, *_cap) have never been used: free without being on
	 * a free list. book_init writes neither array (it touches only the
	 * index); the free lists get BOOK_REFILL of them at a time, in address
	 * order, whenever book_settle finds one empty, so an add (which
	 * settles after itself) always finds a free slot if any is left. */
	uint32_t fresh_order;
	uint32_t fresh_level;
	uint32_t live_orders;
	uint32_t live_levels;
	/* The part of the last add that no decision reads, left for
	 * book_settle: a new level not yet in its treap, an order not yet in
	 * the index (BOOK_NIL: none), neither yet in live_levels/orders. */
	uint32_t pend_level;
	uint32_t pend_order;
	/* And of the last removal: a level out of its list but still in its
	 * treap and not yet free; an order slot spent but still in the index
	 * at pend_index and not yet free. */
	uint32_t pend_put;
	uint32_t pend_free;
	uint32_t pend_index;
	uint32_t pending;  /* BOOK_PEND_* bits: which of the above are set */
	/* Nonzero: the last change touched the best level of its side (its
	 * shares, or which level is best): what STRAT_WAKE_TOP waits for. */
	uint32_t top;
	uint32_t head[BOOK_NLOCATES][2];  /* best level per locate and side */
	uint32_t root[BOOK_NLOCATES][2];  /* treap root per locate and side */
	struct book_counters c;
};

/* Take ownership of the memory in *mem (which the caller keeps alive) and
 * empty the book. Returns false when the sizes are inconsistent. */
bool book_init(struct book *b, const struct book_mem *mem);

/* What one message did to the book. */
struct book_effect {
	uint32_t exec_price;   /* price of an execution (E: the resting order's) */
	uint32_t exec_shares;  /* shares executed, 0 when none */
	uint16_t locate;       /* the book that changed */
	bool changed;
};

/* Apply an ITCH message (A F E C X D U; other types are ignored). Fills *fx
 * with what changed; returns fx->changed. For E C X D U the locate of the
 * stored order is the one reported. */
bool book_apply(struct book *b, const struct itch_msg *m, struct book_effect *fx);

/* Finish the last message's work: take an emptied level out of its treap
 * and free it, take a spent order out of the index and free it, link a new
 * level into its treap and a new order into the index. book_apply leaves
 * that work for later because nothing a strategy or risk reads needs it
 * (they read the level lists); the engine calls this once the message's
 * order is out, and book_apply calls it first, so a caller that never does
 * still sees a consistent book. */
void book_settle_pending(struct book *b);
#define BOOK_REFILL 32
#define BOOK_PEND_ORDER 1u   /* pend_order: into the index */
#define BOOK_PEND_LEVEL 2u   /* pend_level: into its treap */
#define BOOK_PEND_REMOVE 4u  /* pend_free at pend_index (and pend_put, or BOOK_NIL) */

static inline uint32_t book_hash(const struct book *b, uint64_t ref);

/* The commonest cases inline, the rest in book.c: an add to an existing
 * level whose index home is free, and a removal that empties no level and
 * whose index neighbour is empty or at its home (nothing to shift back). */
static CORE_ALWAYS_INLINE void book_settle(struct book *b)
{
	uint32_t p = b->pending;

	if (p == 0)
		return;
	if (p == BOOK_PEND_ORDER) {
		uint32_t slot = b->pend_order;
		uint32_t i = book_hash(b, b->m.orders[slot].ref);
		if (b->m.index[i] == 0 && b->free_order != BOOK_NIL) {
			b->m.index[i] = slot + 1;
			b->live_orders++;
			b->pend_order = BOOK_NIL;
			b->pending = 0;
			return;
		}
	} else if (p == BOOK_PEND_REMOVE && b->pend_put == BOOK_NIL) {
		uint32_t i = b->pend_index, j = (i + 1) & b->index_mask;
		uint32_t e = b->m.index[j];
		/* Is the neighbour empty or at its home? One branch: a product
		 * zero when either is (whether it is empty is random); when it
		 * is, order slot 0 is read and ignored. */
		uint32_t home = book_hash(b, b->m.orders[e - (e != 0)].ref);
		if ((uint64_t)e * (home ^ j) == 0) {
			uint32_t slot = b->pend_free;
			b->m.index[i] = 0;
			b->m.orders[slot].level = b->free_order;
			b->free_order = slot;
			b->live_orders--;
			b->pend_free = BOOK_NIL;
			b->pending = 0;
			return;
		}
	}
	book_settle_pending(b);
}

/* ---- The add path, inline: an add is most of the feed and of the
 * triggers, and the engine runs it without a call. The rest of the book
 * (modify, delete, the treap, the index's insert and remove) is in book.c.
 */

/* Order references are assigned in sequence over the day (ITCH 5.0 §4.3),
 * so the live ones form a moving window: their low bits are already spread
 * over the index, and neighbours in time stay neighbours in memory (a
 * multiplicative hash costs a cache miss per lookup on a large book). The
 * high bits are folded in so references far apart do not collide. */
static inline uint32_t book_hash(const struct book *b, uint64_t ref)
{
	return (uint32_t)(ref ^ (ref >> 32)) & b->index_mask;
}

/* Index position of `ref`, or of the empty slot where it would go. Inline:
 * every order event starts with it, and the common probe is one load. */
static CORE_ALWAYS_INLINE uint32_t book_probe(const struct book *b, uint64_t ref, bool *found)
{
	uint32_t mask = b->index_mask;
	uint32_t i = book_hash(b, ref);

	for (;;) {
		uint32_t slot = b->m.index[i];
		if (slot == 0) {
			*found = false;
			return i;
		}
		if (b->m.orders[slot - 1].ref == ref) {
			*found = true;
			return i;
		}
		i = (i + 1) & mask;
	}
}

/* Take level n off the free list as (locate, side, price) between
 * `better` and `worse` in its list (BOOK_NIL: none); BOOK_NIL when no level
 * is free. Only what the list and the level's readers need is written: its
 * treap fields are book_settle's. */
static CORE_ALWAYS_INLINE uint32_t book_level_new(struct book *b, uint16_t locate, int side,
						  uint32_t price, uint32_t better, uint32_t worse)
{
	struct book_level *lv = b->m.levels;
	uint32_t n = b->free_level;

	if (CORE_UNLIKELY(n == BOOK_NIL)) {
		b->c.full_levels++;
		return BOOK_NIL;
	}
	struct book_level *l = &lv[n];
	b->free_level = l->next;
	l->shares = 0;
	l->price = price;
	l->orders = 0;
	l->next = worse;
	l->prev = better;
	l->locate = locate;
	l->side = (uint8_t)side;
	if (worse != BOOK_NIL)
		lv[worse].prev = n;
	if (better != BOOK_NIL)
		lv[better].next = n;
	else
		b->head[locate][side] = n;
	b->pend_level = n;  /* counted in live_levels by book_settle */
	b->pending |= BOOK_PEND_LEVEL;
	return n;
}

/* Home slot of (locate, side, price): a multiplicative hash of the three
 * packed into 64 bits, its high half (prices of a book are close together
 * and differ in their low bits). */
static CORE_ALWAYS_INLINE uint32_t book_lhash(const struct book *b, uint16_t locate, int side,
					      uint32_t price)
{
	uint64_t k = ((uint64_t)locate << 33) | ((uint64_t)(side & 1) << 32) | price;

	return (uint32_t)((k * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & b->lindex_mask;
}

/* The settled level (locate, side, price), or BOOK_NIL. */
static CORE_ALWAYS_INLINE uint32_t book_lindex_find(const struct book *b, uint16_t locate, int side,
						    uint32_t price)
{
	const struct book_level *lv = b->m.levels;
	uint32_t i = book_lhash(b, locate, side, price);

	for (;;) {
		uint32_t e = b->m.lindex[i];
		if (e == 0)
			return BOOK_NIL;
		const struct book_level *l = &lv[e - 1];
		if (l->price == price && l->locate == locate && l->side == side)
			return e - 1;
		i = (i + 1) & b->lindex_mask;
	}
}

uint32_t book_level_deep(struct book *b, uint16_t locate, int side, uint32_t price);

/* Find or create the level (locate, side, price); BOOK_NIL when full. The
 * best level answers many adds: it, or the place just before it. Any other
 * level is looked up in the level hash (inline: one probe, most of the
 * time), and book_level_deep descends the treap for a level that does not
 * exist yet (or for any level, without the hash). No walk down the list
 * first: with the hash, a walk cost more than it saved (callgrind,
 * engine_on_packet, instructions/message for walks of 0/1/2 hops: RITCH
 * 208.6/211.1/223.4, synthetic 228.9/229.9/236.2; without the hash 3 hops
 * were best). */
static CORE_ALWAYS_INLINE uint32_t book_level_get(struct book *b, uint16_t locate, int side,
						  uint32_t price, uint32_t *at_top)
{
	const struct book_level *lv = b->m.levels;
	uint32_t best = b->head[locate][side];

	/* Two calls of book_level_new, not one after a merged test: with the
	 * empty side folded into the worse-than-best test a triggering tick
	 * took 22 more instructions in HFT-OS (tcg-icount, RITCH p50 361 ->
	 * 383). */
	if (CORE_UNLIKELY(best == BOOK_NIL)) {
		*at_top = 1;  /* the side's first level */
		return book_level_new(b, locate, side, price, BOOK_NIL, best);
	}
	/* Is price at least as good as the best for its side (a bid's higher,
	 * an ask's lower)? The two prices swapped for an ask by a mask, not a
	 * branch: the side of an add is random. */
	uint32_t bp = lv[best].price, swap = (price ^ bp) & (0u - (uint32_t)(side & 1));
	if ((price ^ swap) >= (bp ^ swap)) {
		*at_top = 1;  /* nothing better: the level is (or becomes) the best */
		if (bp == price)
			return best;
		return book_level_new(b, locate, side, price, BOOK_NIL, best);
	}
	*at_top = 0;
	if (b->m.lindex) {
		uint32_t n = book_lindex_find(b, locate, side, price);
		if (n != BOOK_NIL)
			return n;
	}
	return book_level_deep(b, locate, side, price);
}

/* Insert a new order; false (counted) when full or a duplicate. Its index
 * entry waits for book_settle (pend_order): no decision looks an order up
 * by reference. *at_top: whether its level is the side's best (the
 * caller's to put in b->top: the engine's add path keeps it in a
 * register). */
static CORE_ALWAYS_INLINE bool book_add(struct book *b, uint64_t ref, uint16_t locate, int side,
					uint32_t shares, uint32_t price, uint32_t *at_top)
{
	bool found;

	book_probe(b, ref, &found);
	if (CORE_UNLIKELY(found)) {
		b->c.duplicate_ref++;
		return false;
	}
	if (CORE_UNLIKELY(b->free_order == BOOK_NIL)) {
		b->c.full_orders++;
		return false;
	}
	uint32_t lv = book_level_get(b, locate, side, price, at_top);
	if (CORE_UNLIKELY(lv == BOOK_NIL))
		return false;
	uint32_t slot = b->free_order;
	struct book_order *o = &b->m.orders[slot];
	b->free_order = o->level;
	o->ref = ref;
	o->shares = shares;
	o->level = lv;
	b->pend_order = slot;  /* counted in live_orders by book_settle */
	b->pending |= BOOK_PEND_ORDER;
	b->m.levels[lv].shares += shares;
	b->m.levels[lv].orders++;
	return true;
}

/* book_apply of an add (A or F) given by its fields, inline for the
 * engine, on a settled book (the engine settles after every message):
 * side is the wire's 'B' or 'S'. Returns whether the book changed: the
 * add's own locate, no execution. */
static CORE_ALWAYS_INLINE bool book_apply_add_fields(struct book *b, uint64_t ref, uint16_t locate,
						     char side_byte, uint32_t shares, uint32_t price,
						     uint32_t *at_top)
{
	unsigned side = side_byte == 'B' ? BOOK_BID : BOOK_ASK;
	/* B or S, with one branch: a product that is zero when either is
	 * (the side is random, and a branch per compare would miss half the
	 * time). */
	int32_t u = (uint8_t)side_byte;
	bool valid = (u - 'B') * (u - 'S') == 0;

	if (CORE_UNLIKELY(!valid)) {
		b->c.bad_side++;
		return false;
	}
	if (!book_add(b, ref, locate, (int)side, shares, price, at_top))
		return false;
	b->c.adds++;
	return true;
}

/* The same for a decoded A or F, b->top set. */
static CORE_ALWAYS_INLINE bool book_apply_add(struct book *b, const struct itch_msg *m)
{
	return book_apply_add_fields(b, m->order_ref, m->stock_locate, m->side, (uint32_t)m->shares,
				     m->price, &b->top);
}

/* ---- Order events (E C X D), inline for the engine like the add. */

/* Take `shares` off the order at index position i (all of it when shares is
 * at least what remains). An order with nothing left leaves its level's
 * list (and an emptied level its list): all a decision reads. Returns
 * whether the order is spent, with *emptied its level when that went too
 * (else BOOK_NIL); the caller takes both out of the index, the treap and
 * into the free lists, at once or by book_settle. */
static CORE_ALWAYS_INLINE bool book_reduce(struct book *b, uint32_t i, uint32_t shares,
					   uint32_t *emptied)
{
	struct book_order *o = &b->m.orders[b->m.index[i] - 1];
	struct book_level *lv = b->m.levels;
	struct book_level *l = &lv[o->level];

	b->top = l->prev == BOOK_NIL;
	if (shares > o->shares) {
		b->c.over_execute++;
		shares = o->shares;
	}
	o->shares -= shares;
	l->shares -= shares;
	*emptied = BOOK_NIL;
	if (o->shares != 0)
		return false;
	if (--l->orders == 0) {
		if (l->prev != BOOK_NIL)
			lv[l->prev].next = l->next;
		else
			b->head[l->locate][l->side] = l->next;
		if (l->next != BOOK_NIL)
			lv[l->next].prev = l->prev;
		*emptied = o->level;
	}
	return true;
}

/* A spent order (index position i, slot) and its emptied level (or
 * BOOK_NIL), out of their lists: the rest of their removal to book_settle. */
static CORE_ALWAYS_INLINE void book_defer_removal(struct book *b, uint32_t i, uint32_t slot,
						  uint32_t emptied)
{
	b->pend_put = emptied;
	b->pend_free = slot;
	b->pend_index = i;
	b->pending |= BOOK_PEND_REMOVE;
}

/* The start of an order event (E C X D U): the live order of `ref` at index
 * position *i, and fx as book_apply reports it (its book, no execution
 * yet); false (counted) when the book never saw the order. */
static CORE_ALWAYS_INLINE bool book_event_find(struct book *b, uint64_t ref, struct book_effect *fx,
					       uint32_t *i)
{
	bool found;

	*i = book_probe(b, ref, &found);
	if (CORE_UNLIKELY(!found)) {
		b->c.unknown_ref++;
		return false;
	}
	fx->locate = b->m.levels[b->m.orders[b->m.index[*i] - 1].level].locate;
	fx->changed = true;
	fx->exec_shares = 0;
	fx->exec_price = 0;
	return true;
}

/* book_apply of an E, C, X or D (m->type) whose order is live, inline for
 * the engine, on a settled book: fx as book_apply reports it (E and C:
 * the resting order's price, C's own; E C X take what the message says,
 * clamped to what is left, D all of it). */
static CORE_ALWAYS_INLINE bool book_apply_event(struct book *b, const struct itch_msg *m,
						 struct book_effect *fx)
{
	uint32_t i;

	if (!book_event_find(b, m->order_ref, fx, &i))
		return false;
	const struct book_order *o = &b->m.orders[b->m.index[i] - 1];
	uint32_t take = o->shares;

	if (m->type == 'D') {
		b->c.deletes++;
	} else {
		if (m->type == 'E' || m->type == 'C') {
			b->c.executes++;
			fx->exec_shares = (uint32_t)(m->shares < take ? m->shares : take);
			fx->exec_price = m->type == 'E' ? b->m.levels[o->level].price : m->price;
		} else {
			b->c.cancels++;
		}
		take = (uint32_t)(m->shares > 0xFFFFFFFFu ? 0xFFFFFFFFu : m->shares);
	}
	uint32_t emptied;
	if (book_reduce(b, i, take, &emptied))
		book_defer_removal(b, i, b->m.index[i] - 1, emptied);
	return true;
}

/* book.c's removal, at once, of a spent order (index position i, slot)
 * and its emptied level (or BOOK_NIL), out of their lists already: what a
 * replace does before adding its new order. */
void book_remove_now(struct book *b, uint32_t i, uint32_t slot, uint32_t emptied);

/* book_apply of a U whose order is live, inline for the engine, on a
 * settled book: the old order out (all of it, at once: the add must find
 * the index and the treap without it), the new one in with the old one's
 * stock and side (ITCH 5.0 §1.6.5: it loses its priority). */
static CORE_ALWAYS_INLINE bool book_apply_replace(struct book *b, const struct itch_msg *m,
						   struct book_effect *fx)
{
	uint32_t i, emptied;

	if (!book_event_find(b, m->order_ref, fx, &i))
		return false;
	uint32_t slot = b->m.index[i] - 1;
	const struct book_order *o = &b->m.orders[slot];
	int side = b->m.levels[o->level].side;

	b->c.replaces++;
	book_reduce(b, i, o->shares, &emptied);
	uint32_t top = b->top, added_top = 0;
	book_remove_now(b, i, slot, emptied);
	book_add(b, m->new_order_ref, fx->locate, side, (uint32_t)m->shares, m->price, &added_top);
	b->top = top | added_top;
	return true;
}

/* Best price level of (locate, side): false when that side is empty.
 * Inline: the strategy asks for both sides after every book change, and
 * the level list keeps the answer one load away. */
static inline bool book_best(const struct book *b, uint16_t locate, int side,
			     uint32_t *price, uint64_t *shares)
{
	uint32_t n = b->head[locate][side & 1];

	if (n == BOOK_NIL)
		return false;
	*price = b->m.levels[n].price;
	*shares = b->m.levels[n].shares;
	return true;
}

/* The shares of the best n levels of (locate, side) summed, and the best
 * price in *best (0 when the side is empty): book_depth's total without
 * its arrays, inline, for a strategy that weighs the depth after every
 * book change. */
static inline uint64_t book_depth_shares(const struct book *b, uint16_t locate, int side, uint32_t n,
					 uint32_t *best)
{
	const struct book_level *lv = b->m.levels;
	uint32_t cur = b->head[locate][side & 1];
	uint64_t sum = 0;

	*best = cur != BOOK_NIL ? lv[cur].price : 0;
	for (; cur != BOOK_NIL && n != 0; n--) {
		sum += lv[cur].shares;
		cur = lv[cur].next;
	}
	return sum;
}

/* Up to n levels of (locate, side), best first. Returns how many. */
uint32_t book_depth(const struct book *b, uint16_t locate, int side,
		    uint32_t *prices, uint64_t *shares, uint32_t *orders, uint32_t n);

/* The level (locate, side, price) as book_settle left it (through the
 * level hash, or the treap without one), or BOOK_NIL. */
uint32_t book_level_find(const struct book *b, uint16_t locate, int side, uint32_t price);

/* Shares left of a live order, or false when it is not on the book. */
bool book_order_shares(const struct book *b, uint64_t ref, uint32_t *shares);

#endif
