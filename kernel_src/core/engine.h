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

/* Every engine counter into a dump, under the names hftlab reads (mold_*,
 * itch_*, itch_type_<C>, book_*, strategy_*, risk_*, engine_orders): the
 * same for HFT-OS and every baseline, so their run directories compare. */
void engine_dump_counters(const struct engine *e, struct tslog_dump *d);

#endif
