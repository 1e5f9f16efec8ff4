/*
 * book.c - limit order books per stock locate (see book.h).
 *
 * Layout: orders[] holds live orders and a free list threaded through
 * `level`; index[] maps an order reference to orders[] slot + 1 (0 = empty)
 * by linear probing in Robin Hood order; levels[] holds price levels in a doubly linked list per
 * (locate, side), best price first, plus a free list threaded through `next`,
 * and the same levels in a treap per (locate, side) through lower/higher.
 * Before the treap, adding a level walked the list from the best price: on
 * RITCH's deep books that walk was most of book_apply (~660 instructions per
 * message on average).
 */
#include "book.h"

/* Robin Hood order: along a probe run no entry is further from its home
 * than the one before it plus one, so an entry sitting at its home ends
 * every run that could reach back past it. Insert keeps that order (an entry
 * further from home takes the place of one nearer), and removal shifts the
 * run back only as far as the first entry at home or the first empty slot
 * (Celis 1986; Knuth 6.4 algorithm R with that early stop). Sequential
 * references sit at their homes, so with plain linear probing a removal
 * walked the whole block of live references after it; now it looks at one
 * neighbour. */
static CORE_ALWAYS_INLINE uint32_t book_displacement(const struct book *b, uint32_t i, uint32_t entry)
{
	return (i - book_hash(b, b->m.orders[entry - 1].ref)) & b->index_mask;
}

/* Put orders[slot] (its ref already written) into the index. */
static CORE_ALWAYS_INLINE void book_index_insert(struct book *b, uint64_t ref, uint32_t slot)
{
	uint32_t mask = b->index_mask;
	uint32_t i = book_hash(b, ref);
	uint32_t cur = slot + 1, d = 0;

	for (;;) {
		uint32_t e = b->m.index[i];
		if (e == 0) {
			b->m.index[i] = cur;
			return;
		}
		uint32_t de = book_displacement(b, i, e);
		if (de < d) {
			b->m.index[i] = cur;
			cur = e;
			d = de;
		}
		i = (i + 1) & mask;
		d++;
	}
}

/* Remove index entry i and shift the rest of its run back by one. */
static CORE_ALWAYS_INLINE void book_index_remove(struct book *b, uint32_t i)
{
	uint32_t mask = b->index_mask;

	for (;;) {
		uint32_t j = (i + 1) & mask;
		uint32_t e = b->m.index[j];
		if (e == 0 || book_displacement(b, j, e) == 0)
			break;
		b->m.index[i] = e;
		i = j;
	}
	b->m.index[i] = 0;
}

/* Up to BOOK_REFILL never-used slots [*fresh, cap) onto the empty free list
 * at *head, lowest address first; slot i's link is the uint32_t at
 * link0 + i * stride bytes (orders: .level, levels: .next). */
static void book_refill_list(uint32_t *head, uint32_t *fresh, uint32_t cap, uint8_t *link0,
			     size_t stride)
{
	uint32_t end = cap - *fresh > BOOK_REFILL ? *fresh + BOOK_REFILL : cap;

	for (uint32_t i = end; i-- > *fresh;) {
		core_memcpy(link0 + (size_t)i * stride, head, sizeof *head);
		*head = i;
	}
	*fresh = end;
}

static void book_refill(struct book *b)
{
	if (b->free_order == BOOK_NIL)
		book_refill_list(&b->free_order, &b->fresh_order, b->m.order_cap,
				 (uint8_t *)&b->m.orders[0].level, sizeof b->m.orders[0]);
	if (b->free_level == BOOK_NIL)
		book_refill_list(&b->free_level, &b->fresh_level, b->m.level_cap,
				 (uint8_t *)&b->m.levels[0].next, sizeof b->m.levels[0]);
}

bool book_init(struct book *b, const struct book_mem *mem)
{
	if (!mem->orders || !mem->index || !mem->levels || mem->order_cap == 0 ||
	    mem->level_cap == 0 || mem->order_cap >= BOOK_NIL || mem->level_cap >= BOOK_NIL)
		return false;
	if ((mem->index_cap & (mem->index_cap - 1)) != 0 || mem->index_cap < 2 * (uint64_t)mem->order_cap)
		return false;
	if (mem->lindex && ((mem->lindex_cap & (mem->lindex_cap - 1)) != 0 ||
			    mem->lindex_cap < 2 * (uint64_t)mem->level_cap))
		return false;
	b->m = *mem;
	b->index_mask = mem->index_cap - 1;
	core_memset(b->m.index, 0, (size_t)mem->index_cap * sizeof(uint32_t));
	b->lindex_mask = 0;
	if (mem->lindex) {
		b->lindex_mask = mem->lindex_cap - 1;
		core_memset(b->m.lindex, 0, (size_t)mem->lindex_cap * sizeof(uint32_t));
	} else {
		b->m.lindex_cap = 0;
	}
	b->free_order = BOOK_NIL;
	b->free_level = BOOK_NIL;
	b->fresh_order = 0;
	b->fresh_level = 0;
	book_refill(b);
	b->live_orders = 0;
	b->live_levels = 0;
	b->pend_level = BOOK_NIL;
	b->pend_order = BOOK_NIL;
	b->pend_put = BOOK_NIL;
	b->pend_free = BOOK_NIL;
	b->pending = 0;
	b->top = 0;
	core_memset(b->head, 0xFF, sizeof(b->head));
	core_memset(b->root, 0xFF, sizeof(b->root));
	core_memset(&b->c, 0, sizeof(b->c));
	return true;
}

/* Treap priority of a price: a fixed mix of its bits (the murmur3
 * finaliser), so every build grows the same tree from the same feed. Prices arrive in runs (a book grows from
 * its touch outwards); a priority unrelated to the order of arrival keeps
 * the expected depth at O(log levels) whatever that order is. */
static inline uint32_t book_prio(uint32_t price)
{
	uint32_t h = price;

	h ^= h >> 16;
	h *= 0x85EBCA6Bu;
	h ^= h >> 13;
	h *= 0xC2B2AE35u;
	h ^= h >> 16;
	return h;
}

/* ---- The level hash (book_mem.lindex): linear probing, deletion by
 * shifting the run back (Knuth 6.4 algorithm R), so no tombstones. A level
 * enters when book_settle links it into its treap and leaves when it is
 * freed, so it holds exactly the settled live levels. */

/* Home slot of level n (book_lhash, book.h). */
static CORE_ALWAYS_INLINE uint32_t book_lhash_of(const struct book *b, uint32_t n)
{
	const struct book_level *l = &b->m.levels[n];

	return book_lhash(b, l->locate, l->side, l->price);
}

static void book_lindex_insert(struct book *b, uint32_t n)
{
	uint32_t i = book_lhash_of(b, n);

	while (b->m.lindex[i] != 0)
		i = (i + 1) & b->lindex_mask;
	b->m.lindex[i] = n + 1;
}

static void book_lindex_remove(struct book *b, uint32_t n)
{
	uint32_t mask = b->lindex_mask, *t = b->m.lindex;
	uint32_t i = book_lhash_of(b, n);

	while (t[i] != n + 1)
		i = (i + 1) & mask;
	/* Move back each later entry of the run whose home is not between
	 * the hole and it (cyclically): it could not be found past the hole. */
	for (uint32_t j = (i + 1) & mask; t[j] != 0; j = (j + 1) & mask) {
		uint32_t home = book_lhash_of(b, t[j] - 1);
		if (((j - home) & mask) >= ((j - i) & mask)) {
			t[i] = t[j];
			i = j;
		}
	}
	t[i] = 0;
}

/* The link that points at level n: its parent's child field or the root. */
static CORE_ALWAYS_INLINE uint32_t *book_link_to(struct book *b, uint32_t n)
{
	struct book_level *lv = b->m.levels;
	uint32_t p = lv[n].parent;

	if (p == BOOK_NIL)
		return &b->root[lv[n].locate][lv[n].side];
	return lv[p].lower == n ? &lv[p].lower : &lv[p].higher;
}

/* Rotate level n above its parent, keeping the price order. */
static CORE_ALWAYS_INLINE void book_rotate_up(struct book *b, uint32_t n)
{
	struct book_level *lv = b->m.levels;
	uint32_t p = lv[n].parent;
	uint32_t *link = book_link_to(b, p);
	uint32_t mid;

	if (lv[p].lower == n) {
		mid = lv[n].higher;
		lv[p].lower = mid;
		lv[n].higher = p;
	} else {
		mid = lv[n].lower;
		lv[p].higher = mid;
		lv[n].lower = p;
	}
	if (mid != BOOK_NIL)
		lv[mid].parent = p;
	lv[n].parent = lv[p].parent;
	lv[p].parent = n;
	*link = n;
}

/* book_level_get's slow path (book.h), out of line: the level of a price
 * worse than the best, found or created. One descent
 * of the treap finds the level, or the nearest prices below and above it,
 * which are the new level's list neighbours; its treap link waits for
 * book_settle like every new level's. With the level hash the caller
 * looked there first (book_level_get), and the descent is only for a new
 * level. */
uint32_t book_level_deep(struct book *b, uint16_t locate, int side, uint32_t price)
{
	struct book_level *lv = b->m.levels;
	uint32_t below = BOOK_NIL, above = BOOK_NIL;

	for (uint32_t t = b->root[locate][side]; t != BOOK_NIL;) {
		uint32_t tp = lv[t].price;
		if (price < tp) {
			above = t;
			t = lv[t].lower;
		} else if (price > tp) {
			below = t;
			t = lv[t].higher;
		} else {
			return t;
		}
	}
	/* Best first: a bid's better neighbour is the higher price. */
	return side == BOOK_BID ? book_level_new(b, locate, side, price, above, below)
				: book_level_new(b, locate, side, price, below, above);
}

uint32_t book_level_find(const struct book *b, uint16_t locate, int side, uint32_t price)
{
	const struct book_level *lv = b->m.levels;

	side &= 1;
	if (b->m.lindex)
		return book_lindex_find(b, locate, side, price);
	for (uint32_t t = b->root[locate][side]; t != BOOK_NIL;) {
		if (price == lv[t].price)
			return t;
		t = price < lv[t].price ? lv[t].lower : lv[t].higher;
	}
	return BOOK_NIL;
}

/* Link new level n (already in its list) into its treap: a leaf next to an
 * in-order neighbour - its list neighbours, one of which has the free
 * child - rotated up while its priority beats its parent's. */
static void book_level_link(struct book *b, uint32_t n)
{
	struct book_level *lv = b->m.levels;
	struct book_level *l = &lv[n];
	uint32_t better = l->prev, worse = l->next;
	uint32_t below = l->side == BOOK_BID ? worse : better;
	uint32_t above = l->side == BOOK_BID ? better : worse;

	l->prio = book_prio(l->price);
	l->lower = BOOK_NIL;
	l->higher = BOOK_NIL;
	if (below != BOOK_NIL && lv[below].higher == BOOK_NIL) {
		lv[below].higher = n;
		l->parent = below;
	} else if (above != BOOK_NIL) {
		lv[above].lower = n;
		l->parent = above;
	} else {
		b->root[l->locate][l->side] = n;
		l->parent = BOOK_NIL;
	}
	while (l->parent != BOOK_NIL && lv[l->parent].prio < l->prio)
		book_rotate_up(b, n);
	if (b->m.lindex)
		book_lindex_insert(b, n);
}

/* Take level n, already out of its list, out of its treap (rotated down
 * below its children, the one of higher priority going up, until it has at
 * most one child, which then takes its place), and free it. */
static CORE_ALWAYS_INLINE void book_level_free(struct book *b, uint32_t n)
{
	struct book_level *lv = b->m.levels;
	struct book_level *l = &lv[n];

	while (l->lower != BOOK_NIL && l->higher != BOOK_NIL)
		book_rotate_up(b, lv[l->lower].prio >= lv[l->higher].prio ? l->lower : l->higher);
	if (b->m.lindex)
		book_lindex_remove(b, n);
	uint32_t child = l->lower != BOOK_NIL ? l->lower : l->higher;
	*book_link_to(b, n) = child;
	if (child != BOOK_NIL)
		lv[child].parent = l->parent;
	l->next = b->free_level;
	b->free_level = n;
	b->live_levels--;
}

void book_settle_pending(struct book *b)
{
	if (b->pend_put != BOOK_NIL) {
		book_level_free(b, b->pend_put);
		b->pend_put = BOOK_NIL;
	}
	if (b->pend_free != BOOK_NIL) {
		book_index_remove(b, b->pend_index);
		b->m.orders[b->pend_free].level = b->free_order;
		b->free_order = b->pend_free;
		b->live_orders--;
		b->pend_free = BOOK_NIL;
	}
	if (b->pend_level != BOOK_NIL) {
		book_level_link(b, b->pend_level);
		b->live_levels++;
		b->pend_level = BOOK_NIL;
	}
	if (b->pend_order != BOOK_NIL) {
		book_index_insert(b, b->m.orders[b->pend_order].ref, b->pend_order);
		b->live_orders++;
		b->pend_order = BOOK_NIL;
	}
	b->pending = 0;
	if (CORE_UNLIKELY(b->free_order == BOOK_NIL || b->free_level == BOOK_NIL))
		book_refill(b);
}

void book_remove_now(struct book *b, uint32_t i, uint32_t slot, uint32_t emptied)
{
	if (emptied != BOOK_NIL)
		book_level_free(b, emptied);
	book_index_remove(b, i);
	b->m.orders[slot].level = b->free_order;
	b->free_order = slot;
	b->live_orders--;
}

bool book_apply(struct book *b, const struct itch_msg *m, struct book_effect *fx)
{
	book_settle(b);
	*fx = (struct book_effect){ .locate = m->stock_locate };
	switch (m->type) {
	case 'A': case 'F':
		return fx->changed = book_apply_add(b, m);
	case 'E': case 'C': case 'X': case 'D':
		return book_apply_event(b, m, fx);
	case 'U':
		return book_apply_replace(b, m, fx);
	default:
		return false;
	}
}

uint32_t book_depth(const struct book *b, uint16_t locate, int side,
		    uint32_t *prices, uint64_t *shares, uint32_t *orders, uint32_t n)
{
	uint32_t k = 0;

	for (uint32_t cur = b->head[locate][side & 1]; cur != BOOK_NIL && k < n;
	     cur = b->m.levels[cur].next, k++) {
		prices[k] = b->m.levels[cur].price;
		shares[k] = b->m.levels[cur].shares;
		orders[k] = b->m.levels[cur].orders;
	}
	return k;
}

bool book_order_shares(const struct book *b, uint64_t ref, uint32_t *shares)
{
	bool found;

	if (b->pend_order != BOOK_NIL && b->m.orders[b->pend_order].ref == ref) {
		*shares = b->m.orders[b->pend_order].shares;
		return true;
	}
	uint32_t i = book_probe(b, ref, &found);

	if (!found || b->m.index[i] - 1 == b->pend_free)  /* spent, not yet settled */
		return false;
	*shares = b->m.orders[b->m.index[i] - 1].shares;
	return true;
}
