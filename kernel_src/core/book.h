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
 * walk down the list. All memory is
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
	uint8_t pad;
};

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
};

struct book {
	struct book_mem m;
	uint32_t free_order;
	uint32_t free_level;
	uint32_t live_orders;
	uint32_t live_levels;
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

/* Up to n levels of (locate, side), best first. Returns how many. */
uint32_t book_depth(const struct book *b, uint16_t locate, int side,
		    uint32_t *prices, uint64_t *shares, uint32_t *orders, uint32_t n);

/* Shares left of a live order, or false when it is not on the book. */
bool book_order_shares(const struct book *b, uint64_t ref, uint32_t *shares);

#endif
