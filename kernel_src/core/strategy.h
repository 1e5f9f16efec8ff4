/*
 * strategy.h - the strategy interface: what a strategy file sees and writes.
 *
 * A strategy is one freestanding C file (kernel_src/strategies/ has the
 * bundled ones) that includes only this header and defines:
 *
 *   STRATEGY_STATE(struct my_state);      its state, at most STRAT_STATE_MAX
 *                                          bytes (a larger one fails to build);
 *                                          or STRATEGY_STATE_WAKE (below)
 *   void strategy_init(void *state, const struct strategy_config *cfg);
 *   bool strategy_on_book(void *state, const struct strat_view *v,
 *                         const struct itch_msg *m, uint16_t locate,
 *                         uint16_t slot, struct order_intent *o);
 *
 * The build links exactly one strategy into HFT-OS, into every baseline and
 * into the golden model (`make STRATEGY=path/to/x.c`, `hftlab run
 * --strategy`); the engine calls its functions directly, never through a
 * pointer. strategy_init gets the zeroed state and the parameter blob from
 * the config block. strategy_on_book runs after every message that changed
 * the book of a traded symbol (slot: its symbol slot, 0..STRAT_MAX_SYMBOLS-1;
 * with STRAT_WAKE_TOP, below, only when a best level changed),
 * with the decoded message and a read-only view of the books; it returns
 * true to ask for one order, filling o->side, o->shares and o->price (and
 * o->kind and o->orig_seq for a resting order, a replace or a cancel: at
 * most one order message per feed message, so every token is unique). *o
 * is the engine's and keeps what the strategy wrote last time (kind starts
 * as ORDER_ENTER): set every field the order needs. The
 * engine fills in everything else (token sequence, stock, locate, slot, the
 * token, the symbol slot risk keys on) and then risk decides: the pre-trade limits and the
 * kill switch run after the strategy, on every order, and a strategy cannot
 * reach them. A strategy has no globals it can write (refused at build: keep
 * state in the state struct) and may call nothing but the inline helpers
 * below, book_depth and memcpy/memset/memmove/memcmp (any other symbol is
 * refused at build, with its name).
 */
#ifndef CORE_STRATEGY_H
#define CORE_STRATEGY_H

#include "platform.h"
#include "param.h"
#include "itch.h"
#include "book.h"

/* What an intent asks for (OUCH 4.2 message it becomes). */
enum order_kind {
	ORDER_ENTER = 0,    /* Enter Order 'O', immediate or cancel (the default) */
	ORDER_POST = 1,     /* Enter Order 'O' that rests (time in force: market hours) */
	ORDER_REPLACE = 2,  /* Replace Order 'U' of the live order sent at orig_seq */
	ORDER_CANCEL = 3,   /* Cancel Order 'X' of the live order sent at orig_seq */
};

/* An order the strategy wants; risk decides whether it goes out. The
 * strategy sets kind (the engine preset it to ORDER_ENTER), side, shares
 * and price, and for a replace or cancel orig_seq: the trigger_seq of the
 * posted order it acts on (the engine's token for that order). A replace
 * keeps the side of the order it replaces; a cancel takes the order out
 * (shares 0). */
struct order_intent {
	uint64_t trigger_seq;   /* MoldUDP64 sequence number of the trigger */
	uint64_t feed_ts_ns;    /* ITCH timestamp of the trigger */
	uint32_t shares;
	uint32_t price;         /* 1/10,000 $ */
	uint16_t locate;
	uint16_t slot;          /* strategy symbol slot, shared with risk */
	char side;              /* 'B' or 'S' */
	char stock[8];
	uint8_t kind;           /* enum order_kind */
	uint8_t pad[2];
	uint64_t orig_seq;      /* ORDER_REPLACE, ORDER_CANCEL: the order acted on */
};

/* Fixed layout: written into the HFT-OS image config block by hftlab. The
 * symbols and order_shares are the engine's; the six parameter words are
 * the strategy's own (each strategy file says what it reads from them; the
 * names are those of the bundled trigger). */
struct strategy_config {
	uint32_t n_symbols;       /* 0: trade every symbol, first come first served */
	uint32_t order_shares;    /* size of each order */
	uint32_t imbalance_num;   /* parameter word 0 */
	uint32_t imbalance_den;   /* parameter word 1 */
	uint32_t min_top_shares;  /* parameter word 2 */
	uint32_t max_spread;      /* parameter word 3 */
	uint32_t cross_trigger;   /* parameter word 4 */
	uint32_t reserved;        /* parameter word 5 */
	char symbols[STRAT_MAX_SYMBOLS][8];  /* space padded like ITCH stock */
};
CORE_STATIC_ASSERT(sizeof(struct strategy_config) == 32 + STRAT_MAX_SYMBOLS * 8,
		   "strategy_config is a wire format");

/* The engine's symbol table: slot -> stock, locate, last trade price. */
struct strategy_symbol {
	char stock[8];
	uint16_t locate;
	uint16_t pad;
	uint32_t last_trade;  /* last execution or trade print, 0: none yet */
};

/* What a strategy may read besides its own state: the books and the
 * symbol table, read only. */
struct strat_view {
	const struct book *book;
	const struct strategy_symbol *sym;   /* STRAT_MAX_SYMBOLS entries */
	const struct strategy_config *cfg;
	const uint64_t *rejected_seq;        /* per slot: the last intent risk refused */
	const uint64_t *sent_seq;            /* per slot: the last order that went out */
};

/* Best level of (locate, side); false when that side is empty. */
static inline bool strat_best(const struct strat_view *v, uint16_t locate, int side,
			      uint32_t *price, uint64_t *shares)
{
	return book_best(v->book, locate, side, price, shares);
}

/* Up to n levels of (locate, side), best first; returns how many. */
static inline uint32_t strat_depth(const struct strat_view *v, uint16_t locate, int side,
				   uint32_t *prices, uint64_t *shares, uint32_t *orders, uint32_t n)
{
	return book_depth(v->book, locate, side, prices, shares, orders, n);
}

/* The shares of the best n levels of (locate, side) summed, the best price
 * in *best (0: the side is empty): strat_depth's total, without its arrays
 * and inline. */
static inline uint64_t strat_depth_shares(const struct strat_view *v, uint16_t locate, int side,
					  uint32_t n, uint32_t *best)
{
	return book_depth_shares(v->book, locate, side, n, best);
}

/* Price of the last execution or trade print of a slot (0: none yet). */
static inline uint32_t strat_last_trade(const struct strat_view *v, uint16_t slot)
{
	return v->sym[slot].last_trade;
}

/* What became of a slot's intents: the sequence number (the token) of its
 * last order that went out, and of its last intent risk refused (0: none).
 * A strategy that keeps orders (replace, cancel) compares them with what it
 * saw at its previous call for the slot: one of them moved iff it asked. */
static inline uint64_t strat_last_sent(const struct strat_view *v, uint16_t slot)
{
	return v->sent_seq[slot];
}

static inline uint64_t strat_last_rejected(const struct strat_view *v, uint16_t slot)
{
	return v->rejected_seq[slot];
}

/* The hooks every strategy file defines (see the top of this file). */
void strategy_init(void *state, const struct strategy_config *cfg);
bool strategy_on_book(void *state, const struct strat_view *v, const struct itch_msg *m,
		      uint16_t locate, uint16_t slot, struct order_intent *o);
extern const uint32_t strategy_state_size;
extern const uint32_t strategy_wake;

/* When the engine calls strategy_on_book:
 *  STRAT_WAKE_BOOK  after every message that changed a traded symbol's book
 *                   (the default, STRATEGY_STATE);
 *  STRAT_WAKE_TOP   only after one that touched the best level of a side:
 *                   its shares, or which level is best (an add at or before
 *                   it, an execution, cancel, delete or replace of one of its
 *                   orders); and after the first change that follows a call
 *                   of the symbol that asked for an order (so that it sees
 *                   what became of it: strat_last_sent/_rejected). For a
 *                   strategy whose decision is a function of the best bid
 *                   and ask (price and shares), of what became of its own
 *                   orders and of its own state alone, one that is called
 *                   again with the same ones after asking for nothing asks
 *                   for nothing again (the bundled trigger and quoter): it
 *                   then sends the same orders, and the engine skips the
 *                   call for the other half or more of the feed (deep levels
 *                   changing). Not for a strategy that reads depth, last
 *                   trades, the message or counts its calls. Declared with
 *                   STRATEGY_STATE_WAKE(type, STRAT_WAKE_TOP). */
enum strat_wake { STRAT_WAKE_BOOK = 0, STRAT_WAKE_TOP = 1 };

/* Declares the state type: refuses, at build time, a state larger than
 * STRAT_STATE_MAX bytes or aligned beyond 8, and records its size and
 * when the strategy wants to be called. */
#define STRATEGY_STATE_WAKE(type, wake)                                                   \
	_Static_assert(sizeof(type) <= STRAT_STATE_MAX,                                   \
		       "strategy state " #type " is larger than STRAT_STATE_MAX bytes");  \
	_Static_assert(_Alignof(type) <= 8, "strategy state " #type " needs more than 8-byte alignment"); \
	_Static_assert((wake) == STRAT_WAKE_BOOK || (wake) == STRAT_WAKE_TOP,             \
		       "STRATEGY_STATE_WAKE: wake is STRAT_WAKE_BOOK or STRAT_WAKE_TOP"); \
	const uint32_t strategy_state_size = (uint32_t)sizeof(type);                     \
	const uint32_t strategy_wake = (wake)
#define STRATEGY_STATE(type) STRATEGY_STATE_WAKE(type, STRAT_WAKE_BOOK)

/* ------------------------------------------------------------------------
 * The engine's side: symbol binding (symbols of the config -> slots, shared
 * with risk) and the state buffer. Not for strategies.
 */
struct strategy_counters {
	uint64_t evaluations;
	uint64_t signals;
	uint64_t symbols_full;   /* a wanted symbol found no free slot */
};

struct strategy {
	struct strategy_config cfg;
	uint16_t slot_of[BOOK_NLOCATES];  /* locate -> slot or STRAT_SLOT_NONE */
	struct strategy_symbol sym[STRAT_MAX_SYMBOLS];
	uint32_t n_slots;
	struct strategy_counters c;
	uint32_t wake_top;  /* the strategy's STRAT_WAKE_TOP: call it only when the book says top */
	struct strat_view view;
	uint64_t rejected_seq[STRAT_MAX_SYMBOLS];  /* trigger_seq risk refused, per slot */
	uint64_t sent_seq[STRAT_MAX_SYMBOLS];      /* trigger_seq of the last order sent */
	/* Nonzero: a call of the slot asked for an order since its last wake
	 * by a change below the best levels, so a STRAT_WAKE_TOP strategy is
	 * called at its next book change, top or not. */
	uint8_t asked[STRAT_MAX_SYMBOLS];
	uint64_t state[STRAT_STATE_MAX / 8];
};

/* Reset the symbol table, zero the state and run the strategy's init. */
void strategy_bind_init(struct strategy *s, const struct strategy_config *cfg,
			const struct book *b);

/* Learn the locate of a traded symbol from a message that names its stock
 * (R, A, F ...). Returns the slot or STRAT_SLOT_NONE. */
uint16_t strategy_on_symbol(struct strategy *s, const struct itch_msg *m);

/* Slot of a locate, STRAT_SLOT_NONE when not traded. */
static inline uint16_t strategy_slot(const struct strategy *s, uint16_t locate)
{
	return s->slot_of[locate];
}

#endif
