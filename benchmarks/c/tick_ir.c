/*
 * tick_ir.c - instructions of the triggering ticks on the host, under
 * valgrind's callgrind (run by benchmarks/tick_ir.py, which parses its
 * output).
 *
 *   valgrind --tool=callgrind --collect-atstart=no tick_ir ITCH_FILE CONFIG [dump] [whole]
 *
 * Every message of ITCH_FILE goes to engine_on_packet in its own MoldUDP64
 * datagram, as HFT-OS sees a feed with one message per datagram; the emit
 * callback OUCH-encodes the order into a scratch buffer (HFT-OS's trade_emit
 * writes only the changing fields into a template, ouch_encode_fields). Pass
 * 1 finds the datagrams that emit an order; pass 2, on a fresh engine,
 * collects callgrind's counts from the call of exactly those datagrams up to
 * the order written (tick_emit, where HFT-OS rings the doorbell; "whole":
 * to the call's return), so the profile is the core's share of the
 * triggering ticks (driver, frame parse and the TX doorbell are not in it). With "dump", callgrind writes one dump per
 * trigger: the per-trigger counts. CONFIG is a raw struct engine_config
 * (hftlab: EngineConfig.to_bytes()).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/callgrind.h>

#include "engine.h"
#include "ouch.h"

#define TICK_ORDER_CAP (1u << 18) /* HFT-OS's book (runtime/param.h) */
#define TICK_LEVEL_CAP (1u << 15)

static uint8_t ouch[OUCH_ENTER_LEN];
static struct engine eng;
static bool collecting, to_doorbell;

/* The order is written: HFT-OS rings the doorbell here, and what the engine
 * does after it (risk_commit, the book's deferred work) is off the
 * tick-to-trade path: stop counting, unless the whole call is wanted. */
static void tick_emit(void *ctx, const struct order_intent *o)
{
	(void)ctx;
	ouch_encode_fields(ouch, o);
	if (collecting && to_doorbell) {
		CALLGRIND_TOGGLE_COLLECT;
		collecting = false;
	}
}

static void die(const char *msg)
{
	fprintf(stderr, "tick_ir: %s\n", msg);
	exit(1);
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 5)
		die("usage: tick_ir ITCH_FILE CONFIG [dump] [whole]");
	bool dump = false;
	to_doorbell = true;
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "dump") == 0)
			dump = true;
		else if (strcmp(argv[i], "whole") == 0)
			to_doorbell = false;
		else
			die("usage: tick_ir ITCH_FILE CONFIG [dump] [whole]");
	}
	FILE *f = fopen(argv[1], "rb");
	FILE *c = fopen(argv[2], "rb");
	struct engine_config cfg;
	if (f == NULL || c == NULL || fread(&cfg, 1, sizeof cfg, c) != sizeof cfg)
		die("cannot read the ITCH file or the config");
	fseek(f, 0, SEEK_END);
	size_t len = (size_t)ftell(f);
	rewind(f);
	uint8_t *buf = malloc(len ? len : 1);
	uint8_t *trig = calloc(len / 12 + 2, 1);  /* the shortest message is 12 bytes */
	if (buf == NULL || trig == NULL || fread(buf, 1, len, f) != len)
		die("cannot read the ITCH file");
	struct book_mem mem = { .order_cap = TICK_ORDER_CAP, .index_cap = 2 * TICK_ORDER_CAP,
				.level_cap = TICK_LEVEL_CAP };
	mem.orders = calloc(mem.order_cap, sizeof *mem.orders);
	mem.index = calloc(mem.index_cap, sizeof *mem.index);
	mem.levels = calloc(mem.level_cap, sizeof *mem.levels);
	ouch_encode_template(ouch, sizeof ouch, 1);
	unsigned long triggers = 0;
	for (int pass = 0; pass < 2; pass++) {
		if (!engine_init(&eng, &cfg, &mem))
			die("engine_init refused the config");
		size_t off = 0, k = 0;
		struct itch_frame fr;
		uint8_t pkt[MOLD_HDR_LEN + 2 + 0xFFFF];
		while (itch_frame_next(buf, len, &off, &fr) == ITCH_FRAME_OK) {
			struct mold_writer w;
			k++;
			mold_pack_begin(&w, pkt, sizeof pkt, (const uint8_t *)"TICKIR0001", k);
			mold_pack_add(&w, fr.msg, fr.len);
			size_t n = mold_pack_end(&w, false);
			if (pass == 1 && trig[k]) {
				CALLGRIND_TOGGLE_COLLECT;
				collecting = true;
			}
			int r = engine_on_packet(&eng, pkt, n, tick_emit, NULL);
			if (pass == 1 && trig[k]) {
				if (collecting)
					CALLGRIND_TOGGLE_COLLECT;
				collecting = false;
				if (dump)
					CALLGRIND_DUMP_STATS;
			}
			if (pass == 0 && r > 0) {
				trig[k] = 1;
				triggers++;
			}
		}
	}
	printf("messages %lu triggers %lu\n", (unsigned long)eng.itch.messages, triggers);
	return 0;
}
