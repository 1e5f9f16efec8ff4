/*
 * test_codecs.c - host self-test of the core codecs: ITCH 5.0, MoldUDP64,
 * Ethernet/IPv4/UDP/ARP and OUCH 4.2 (kernel_src/core/{itch,moldudp64,net,
 * ouch}.c), built with ASan/UBSan so that any out-of-bounds read shows up.
 *
 * Build and run from the repository root (no Makefile needed):
 *
 *   cc -std=c11 -Wall -Wextra -O1 -g -fsanitize=address,undefined \
 *      -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
 *      -Ikernel_src/core tests/c/test_codecs.c kernel_src/core/itch.c \
 *      kernel_src/core/moldudp64.c kernel_src/core/net.c kernel_src/core/ouch.c \
 *      -o /tmp/test_codecs
 *   /tmp/test_codecs datasets       # DATA_DIR: the repository's datasets/ folder
 *
 * tests/test_core_build.py builds it (tests/fuzz/Makefile) and passes the
 * datasets folder of the checkout it runs in. Decode throughput (build the
 * same sources with -O2 and no sanitizers):
 *   /tmp/bench_codecs --bench datasets
 *
 * What it covers: known-answer decodes of the two sample ITCH files
 * (RITCH's zero-prefixed ritch/ex20101224.TEST_ITCH_50, and
 * synth/synth-2000-seed7.itch, written by `hftlab synth` with NASDAQ's real
 * length prefixes), every type's exact length and field offsets, MoldUDP64
 * pack/parse/iterate and sequencing (gap, duplicate, partial overlap,
 * heartbeat, end of session, full session table), UDP/ARP build and parse
 * (RFC 1071 checksum known answer, corrupted and truncated frames), OUCH
 * encode/decode/token, and a few hundred thousand random or truncated
 * buffers through every decoder, each in an allocation of exactly its length;
 * and the book (book.c) on deep books: 200,000 random adds, executes,
 * cancels, deletes and replaces over 4 books of up to ~1,500 levels, checked
 * against a plain list of the live orders (every level, best first, and
 * found by price), once with the level hash and once without.
 * Exits non-zero on any failure; the last line is "N passed, M failed".
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "book.h"
#include "engine.h"
#include "itch.h"
#include "moldudp64.h"
#include "net.h"
#include "ouch.h"

static int n_pass, n_fail;

static void check(bool ok, const char *what, const char *file, int line)
{
	if (ok) {
		n_pass++;
		return;
	}
	n_fail++;
	fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what);
}
#define CHECK(cond) check((cond), #cond, __FILE__, __LINE__)

static const char *data_dir; /* argv: the repository's datasets/ folder */

/* ---------------------------------------------------------------- helpers */

static uint8_t *load_file(const char *rel, size_t *len)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", data_dir, rel);
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "cannot open %s\n", path);
		return NULL;
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
	*len = fread(buf, 1, (size_t)n, f);
	fclose(f);
	return buf;
}

/* xorshift64* (Vigna): small, fast, good enough to fuzz with. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

/* A heap copy of exactly len bytes, so ASan flags a read at buf[len]. */
static uint8_t *exact_copy(const uint8_t *src, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	if (len)
		memcpy(p, src, len);
	return p;
}

/* ------------------------------------------------------------------- ITCH */

/* Lengths from ITCH 5.0 §4, written out independently of itch.c. */
static const char *const itch_expected_lens =
	"S12 R39 H25 Y20 L26 V35 W12 K28 J35 h21 A36 F40 E31 C36 X23 D19 U35 "
	"P44 Q40 B19 I50 N20 O48";

static int expected_len(uint8_t type)
{
	for (const char *p = itch_expected_lens; *p; p++)
		if ((p == itch_expected_lens || p[-1] == ' ') && (uint8_t)*p == type)
			return atoi(p + 1);
	return 0;
}

static void test_itch_lengths(void)
{
	int mismatches = 0, wrong_rc = 0;
	uint8_t buf[64];
	struct itch_msg m;
	for (int t = 0; t < 256; t++) {
		int want = expected_len((uint8_t)t);
		if (itch_msg_len((uint8_t)t) != want)
			mismatches++;
		memset(buf, 0x20, sizeof buf);
		buf[0] = (uint8_t)t;
		if (want == 0) {
			wrong_rc += itch_decode(buf, 30, &m) != ITCH_E_UNKNOWN;
			continue;
		}
		wrong_rc += itch_decode(buf, (size_t)want, &m) != ITCH_OK;
		wrong_rc += itch_decode(buf, (size_t)want - 1, &m) != ITCH_E_LENGTH;
		wrong_rc += itch_decode(buf, (size_t)want + 1, &m) != ITCH_E_LENGTH;
	}
	CHECK(mismatches == 0);
	CHECK(wrong_rc == 0);
	CHECK(itch_decode(buf, 0, &m) == ITCH_E_EMPTY);
}

/* Every field whose `present` bit is clear must be zero. */
static bool itch_absent_zero(const struct itch_msg *m)
{
	static const char zero[8];
	uint32_t p = m->present;
	return ((p & ITCH_F_ORDER_REF) || m->order_ref == 0) &&
	       ((p & ITCH_F_NEW_ORDER_REF) || m->new_order_ref == 0) &&
	       ((p & ITCH_F_SIDE) || m->side == 0) &&
	       ((p & ITCH_F_SHARES) || m->shares == 0) &&
	       ((p & ITCH_F_STOCK) || memcmp(m->stock, zero, 8) == 0) &&
	       ((p & ITCH_F_PRICE) || m->price == 0) &&
	       ((p & ITCH_F_MATCH) || m->match_number == 0) &&
	       ((p & ITCH_F_ATTRIBUTION) || memcmp(m->attribution, zero, 4) == 0) &&
	       ((p & ITCH_F_PRINTABLE) || m->printable == 0) &&
	       ((p & ITCH_F_CROSS_TYPE) || m->cross_type == 0) &&
	       ((p & ITCH_F_EVENT_CODE) || m->event_code == 0) &&
	       ((p & ITCH_F_REASON) || memcmp(m->reason, zero, 4) == 0);
}

enum {
	F_REF = ITCH_F_ORDER_REF, F_NEW = ITCH_F_NEW_ORDER_REF, F_SIDE = ITCH_F_SIDE,
	F_SH = ITCH_F_SHARES, F_STK = ITCH_F_STOCK, F_PX = ITCH_F_PRICE,
	F_MT = ITCH_F_MATCH, F_ATT = ITCH_F_ATTRIBUTION, F_PR = ITCH_F_PRINTABLE,
	F_CT = ITCH_F_CROSS_TYPE, F_EV = ITCH_F_EVENT_CODE, F_RS = ITCH_F_REASON,
};

static const struct { char type; uint32_t present; } itch_present_table[] = {
	{'S', F_EV}, {'R', F_STK | F_RS}, {'H', F_STK | F_EV | F_RS},
	{'Y', F_STK | F_EV}, {'L', F_ATT | F_STK}, {'V', 0}, {'W', F_EV},
	{'K', F_STK}, {'J', F_STK}, {'h', F_STK | F_EV},
	{'A', F_REF | F_SIDE | F_SH | F_STK | F_PX},
	{'F', F_REF | F_SIDE | F_SH | F_STK | F_PX | F_ATT},
	{'E', F_REF | F_SH | F_MT}, {'C', F_REF | F_SH | F_MT | F_PR | F_PX},
	{'X', F_REF | F_SH}, {'D', F_REF}, {'U', F_REF | F_NEW | F_SH | F_PX},
	{'P', F_REF | F_SIDE | F_SH | F_STK | F_PX | F_MT},
	{'Q', F_SH | F_STK | F_PX | F_MT | F_CT}, {'B', F_MT},
	{'I', F_SH | F_SIDE | F_STK | F_PX | F_CT}, {'N', F_STK | F_EV}, {'O', F_STK},
};

/* Decode the message of `type` whose byte i is i (after the type byte), so
 * a field at offset k reads back as the bytes k, k+1, ... */
static int decode_pattern(char type, struct itch_msg *m, uint8_t fill)
{
	uint8_t buf[64];
	for (int i = 0; i < 64; i++)
		buf[i] = (uint8_t)i;
	buf[0] = (uint8_t)type;
	memset(m, fill, sizeof *m);
	size_t n = itch_msg_len((uint8_t)type);
	uint8_t *p = exact_copy(buf, n);
	int rc = itch_decode(p, n, m);
	free(p);
	return rc;
}

static bool stock_at(const struct itch_msg *m, int off)
{
	for (int i = 0; i < 8; i++)
		if ((uint8_t)m->stock[i] != off + i)
			return false;
	return true;
}

static void test_itch_present(void)
{
	int bad_present = 0, bad_absent = 0, nondet = 0;
	size_t n = sizeof itch_present_table / sizeof itch_present_table[0];
	for (size_t i = 0; i < n; i++) {
		struct itch_msg a, b;
		decode_pattern(itch_present_table[i].type, &a, 0x00);
		decode_pattern(itch_present_table[i].type, &b, 0xA5);
		bad_present += a.present != itch_present_table[i].present;
		bad_absent += !itch_absent_zero(&a) || !itch_absent_zero(&b);
		/* Whole struct zeroed before filling: garbage never leaks in. */
		nondet += memcmp(&a, &b, sizeof a) != 0;
	}
	CHECK(n == 23);
	CHECK(bad_present == 0);
	CHECK(bad_absent == 0);
	CHECK(nondet == 0);
}

/* Field offsets, with the byte-i-is-i pattern: a u32 at k is k..k+3. */
static void test_itch_offsets(void)
{
	struct itch_msg m;
	CHECK(decode_pattern('A', &m, 0) == ITCH_OK);
	CHECK(m.type == 'A' && m.stock_locate == 0x0102 && m.tracking == 0x0304);
	CHECK(m.timestamp_ns == 0x05060708090Aull);
	CHECK(m.order_ref == 0x0B0C0D0E0F101112ull && m.side == 0x13);
	CHECK(m.shares == 0x14151617 && stock_at(&m, 24) && m.price == 0x20212223);
	decode_pattern('F', &m, 0);
	CHECK(memcmp(m.attribution, "\x24\x25\x26\x27", 4) == 0);
	decode_pattern('C', &m, 0);
	CHECK(m.shares == 0x13141516 && m.match_number == 0x1718191A1B1C1D1Eull);
	CHECK(m.printable == 0x1F && m.price == 0x20212223);
	decode_pattern('U', &m, 0);
	CHECK(m.new_order_ref == 0x131415161718191Aull);
	CHECK(m.shares == 0x1B1C1D1E && m.price == 0x1F202122);
	decode_pattern('P', &m, 0);
	CHECK(m.match_number == 0x2425262728292A2Bull && stock_at(&m, 24));
	decode_pattern('Q', &m, 0);
	CHECK(m.shares == 0x0B0C0D0E0F101112ull && stock_at(&m, 19));
	CHECK(m.price == 0x1B1C1D1E && m.match_number == 0x1F20212223242526ull);
	CHECK(m.cross_type == 0x27);
	decode_pattern('I', &m, 0);
	CHECK(m.shares == 0x0B0C0D0E0F101112ull && m.side == 0x1B && stock_at(&m, 28));
	CHECK(m.price == 0x2C2D2E2F && m.cross_type == 0x30);
	decode_pattern('H', &m, 0);
	CHECK(stock_at(&m, 11) && m.event_code == 0x13);
	CHECK(memcmp(m.reason, "\x15\x16\x17\x18", 4) == 0);
	decode_pattern('R', &m, 0);
	CHECK(m.reason[0] == 0x13 && m.reason[1] == 0x14 && m.reason[2] == 0);
	decode_pattern('L', &m, 0);
	CHECK(memcmp(m.attribution, "\x0B\x0C\x0D\x0E", 4) == 0 && stock_at(&m, 15));
	decode_pattern('h', &m, 0);
	CHECK(m.event_code == 0x14);
	decode_pattern('B', &m, 0);
	CHECK(m.match_number == 0x0B0C0D0E0F101112ull);
}

/* The engine's direct decoders (itch.h: A, F, D E X, U, P) fill the very
 * bytes itch_decode does, padding included, whatever was there before. */
static void test_itch_direct(void)
{
	static const char types[] = "AFDEXUP";
	int differ = 0;
	for (const char *t = types; *t; t++) {
		uint8_t buf[64];
		struct itch_msg want, got;
		for (int i = 0; i < 64; i++)
			buf[i] = (uint8_t)(i * 7 + 1);
		buf[0] = (uint8_t)*t;
		size_t n = itch_msg_len((uint8_t)*t);
		uint8_t *p = exact_copy(buf, n);
		memset(&want, 0xA5, sizeof want);
		memset(&got, 0x5A, sizeof got);
		CHECK(itch_decode(p, n, &want) == ITCH_OK);
		if (*t == 'A')
			itch_dec_add_direct(p, &got);
		else if (*t == 'U')
			itch_dec_replace_direct(p, &got);
		else if (*t == 'P')
			itch_dec_trade_direct(p, &got);
		else if (*t == 'F')
			itch_dec_add_mpid_direct(p, &got);
		else
			itch_dec_event_direct(p, &got, *t);
		free(p);
		if (memcmp(&want, &got, sizeof want) != 0) {
			fprintf(stderr, "direct decode of %c differs from itch_decode\n", *t);
			differ++;
		}
	}
	CHECK(differ == 0);
}

/* Frame and decode a whole file; true when it ended cleanly. */
static bool decode_file(const uint8_t *buf, size_t len, struct itch_counters *c,
			struct itch_msg *first, size_t *frames)
{
	struct itch_frame f;
	struct itch_msg m;
	size_t off = 0;
	int rc;
	memset(c, 0, sizeof *c);
	*frames = 0;
	while ((rc = itch_frame_next(buf, len, &off, &f)) == ITCH_FRAME_OK) {
		itch_decode_counted(f.msg, f.len, &m, c);
		if (*frames == 0)
			*first = m;
		(*frames)++;
	}
	return rc == ITCH_FRAME_END && off == len;
}

static bool only_types(const struct itch_counters *c, const char *types,
		       const uint64_t *counts)
{
	for (int t = 0; t < 256; t++) {
		const char *hit = strchr(types, t);
		uint64_t want = (t != 0 && hit) ? counts[hit - types] : 0;
		if (c->by_type[t] != want)
			return false;
	}
	return true;
}

static void test_itch_ritch(void)
{
	size_t len, frames;
	uint8_t *buf = load_file("ritch/ex20101224.TEST_ITCH_50", &len);
	CHECK(buf != NULL && len == 465048);
	if (buf == NULL)
		return;
	struct itch_counters c;
	struct itch_msg first;
	static const uint64_t counts[] = {6, 3, 3, 4997, 3, 198, 45, 1745, 12, 5000};
	CHECK(decode_file(buf, len, &c, &first, &frames));
	CHECK(frames == 12012 && c.messages == 12012);
	CHECK(only_types(&c, "SRHAFEXDUP", counts));
	CHECK(c.unknown_type == 0 && c.bad_length == 0 && c.empty == 0);
	/* Bytes 2..13 by hand: S, locate 0, tracking 0, ts 0a30478f8f96, 'O'. */
	CHECK(first.type == 'S' && first.event_code == 'O');
	CHECK(first.timestamp_ns == 0x0A30478F8F96ull && first.present == F_EV);
	/* The first R at byte 14: locate 1, stock "ALC     ", category and
	 * financial status 'N' 'N'. */
	struct itch_msg r;
	CHECK(itch_decode(buf + 16, 39, &r) == ITCH_OK);
	CHECK(r.type == 'R' && r.stock_locate == 1 && memcmp(r.stock, "ALC     ", 8) == 0);
	CHECK(r.reason[0] == 'N' && r.reason[1] == 'N');
	free(buf);
}

/* `hftlab synth --messages 2000 --seed 7`: every length prefix is real, and
 * the counts are datasets/synth/EXPECTED-counts.txt's. */
static void test_itch_synth(void)
{
	size_t len, frames;
	uint8_t *buf = load_file("synth/synth-2000-seed7.itch", &len);
	CHECK(buf != NULL && len == 71938);
	if (buf == NULL)
		return;
	struct itch_counters c;
	struct itch_msg first;
	static const uint64_t counts[] = {2, 8, 1369, 29, 143, 16, 87, 162, 114, 70};
	CHECK(decode_file(buf, len, &c, &first, &frames));
	CHECK(frames == 2000 && c.messages == 2000);
	CHECK(only_types(&c, "SRAFECXDUP", counts));
	CHECK(c.unknown_type == 0 && c.bad_length == 0 && c.empty == 0);
	CHECK(first.type == 'S' && first.event_code == 'O');
	/* every frame is found by its prefix, none by the type-implied length */
	struct itch_frame f;
	size_t off = 0, real = 0;
	while (itch_frame_next(buf, len, &off, &f) == ITCH_FRAME_OK)
		real += f.prefix != 0 && f.prefix == f.len;
	CHECK(real == 2000 && off == len);
	/* The first R at byte 14: prefix 39, locate 1, stock "AAPL    ". */
	struct itch_msg r;
	CHECK(buf[14] == 0 && buf[15] == 39);
	CHECK(itch_decode(buf + 16, 39, &r) == ITCH_OK);
	CHECK(r.type == 'R' && r.stock_locate == 1 && memcmp(r.stock, "AAPL    ", 8) == 0);
	free(buf);
}

static void test_itch_framing_edges(void)
{
	struct itch_frame f = {0};
	size_t off = 0;
	const uint8_t unk[] = {0, 0, 'Z', 1, 2};
	const uint8_t lone[] = {0, 0};
	const uint8_t short_msg[] = {0, 12, 'S', 0, 0};
	const uint8_t prefixed[] = {0, 3, 'Z', 9, 9, 0, 0, 'D'};
	CHECK(itch_frame_next(unk, 0, &off, &f) == ITCH_FRAME_END);
	CHECK(itch_frame_next(unk, 1, &off, &f) == ITCH_FRAME_TRUNCATED && off == 0);
	CHECK(itch_frame_next(unk, sizeof unk, &off, &f) == ITCH_FRAME_UNFRAMED && off == 0);
	CHECK(itch_frame_next(lone, sizeof lone, &off, &f) == ITCH_FRAME_TRUNCATED && off == 0);
	CHECK(itch_frame_next(short_msg, sizeof short_msg, &off, &f) == ITCH_FRAME_TRUNCATED);
	CHECK(off == 0);
	/* A real prefix is trusted even for an unknown type; decode rejects it. */
	CHECK(itch_frame_next(prefixed, sizeof prefixed, &off, &f) == ITCH_FRAME_OK);
	CHECK(off == 5 && f.len == 3 && f.prefix == 3 && f.msg == prefixed + 2);
	/* Then a 0 prefix whose D message (19 bytes) runs past the end. */
	CHECK(itch_frame_next(prefixed, sizeof prefixed, &off, &f) == ITCH_FRAME_TRUNCATED);
	CHECK(off == 5);
	struct itch_counters c = {0};
	struct itch_msg m;
	itch_decode_counted(prefixed + 2, 3, &m, &c);
	itch_decode_counted(prefixed, 0, &m, &c);
	itch_decode_counted(short_msg + 2, 3, &m, &c);
	CHECK(c.unknown_type == 1 && c.empty == 1 && c.bad_length == 1 && c.messages == 0);
}

/* -------------------------------------------------------------- MoldUDP64 */

static const uint8_t session_a[MOLD_SESSION_LEN] = "SESSION-A1";

/* Pack the first messages of the RITCH file into packets of up to `per`
 * messages, parse them back and compare every block byte for byte. */
static void test_mold_roundtrip(void)
{
	size_t len;
	uint8_t *file = load_file("ritch/ex20101224.TEST_ITCH_50", &len);
	CHECK(file != NULL);
	if (file == NULL)
		return;
	uint8_t pkt[1400];
	struct mold_writer w;
	struct itch_frame f, g;
	size_t off = 0, cmp_off = 0;
	uint64_t seq = 1, packed = 0, matched = 0, bad = 0;
	int rc = ITCH_FRAME_OK;
	while (rc == ITCH_FRAME_OK && packed < 3000) {
		CHECK(mold_pack_begin(&w, pkt, sizeof pkt, session_a, seq));
		size_t save = off;
		while ((rc = itch_frame_next(file, len, &off, &f)) == ITCH_FRAME_OK &&
		       mold_pack_add(&w, f.msg, f.len))
			save = off;
		off = save;  /* the message that did not fit starts the next packet */
		size_t n = mold_pack_end(&w, false);
		struct mold_packet pk;
		struct mold_iter it;
		const uint8_t *msg;
		uint16_t mlen;
		uint8_t *copy = exact_copy(pkt, n);
		bad += mold_parse(copy, n, &pk) != MOLD_OK || pk.seq != seq ||
		       pk.count != w.count || memcmp(pk.session, session_a, 10) != 0;
		mold_iter_init(&it, &pk);
		while (mold_next(&it, &msg, &mlen)) {
			itch_frame_next(file, len, &cmp_off, &g);
			matched += mlen == g.len && memcmp(msg, g.msg, mlen) == 0;
		}
		free(copy);
		seq += w.count;
		packed += w.count;
	}
	CHECK(bad == 0);
	CHECK(packed >= 3000 && matched == packed);
	free(file);
}

/* A data packet of `count` one-byte messages. */
static struct mold_packet mk_packet(uint8_t *buf, const uint8_t *session,
				    uint64_t seq, uint16_t count, bool eos)
{
	struct mold_writer w;
	struct mold_packet pk;
	uint8_t one = 'x';
	mold_pack_begin(&w, buf, 512, session, seq);
	for (uint16_t i = 0; i < count; i++)
		mold_pack_add(&w, &one, 1);
	size_t n = mold_pack_end(&w, eos);
	int rc = mold_parse(buf, n, &pk);
	CHECK(rc == MOLD_OK);
	return pk;
}

static void test_mold_sequencing(void)
{
	struct mold_state s;
	uint8_t b[512];
	struct mold_packet pk;
	mold_init(&s);
	pk = mk_packet(b, session_a, 1, 3, false);
	CHECK(mold_accept(&s, &pk) == 0);                    /* 1..3 */
	pk = mk_packet(b, session_a, 4, 2, false);
	CHECK(mold_accept(&s, &pk) == 0);                    /* 4..5 */
	pk = mk_packet(b, session_a, 10, 2, false);
	CHECK(mold_accept(&s, &pk) == 0);                    /* gap 6..9 */
	CHECK(s.c.gaps == 1 && s.c.gap_messages == 4);
	pk = mk_packet(b, session_a, 10, 2, false);
	CHECK(mold_accept(&s, &pk) == -1);                   /* duplicate */
	pk = mk_packet(b, session_a, 11, 3, false);
	CHECK(mold_accept(&s, &pk) == 1);                    /* 11 seen, 12..13 new */
	CHECK(s.c.duplicates == 2 && s.c.duplicate_messages == 3);
	CHECK(s.sessions[0].next_seq == 14 && s.c.messages == 9);
	pk = mk_packet(b, session_a, 14, 0, false);
	CHECK(mold_accept(&s, &pk) == -1 && s.c.gaps == 1);  /* heartbeat, in step */
	pk = mk_packet(b, session_a, 16, 0, false);
	CHECK(mold_accept(&s, &pk) == -1);                   /* heartbeat: 14..15 lost */
	CHECK(s.c.gaps == 2 && s.c.gap_messages == 6 && s.sessions[0].next_seq == 16);
	CHECK(s.c.heartbeats == 2);
	pk = mk_packet(b, session_a, 16, 0, true);
	CHECK(mold_accept(&s, &pk) == -1 && s.sessions[0].ended);
	pk = mk_packet(b, session_a, 16, 1, false);
	CHECK(mold_accept(&s, &pk) == -1 && s.c.after_end == 1);
	CHECK(s.c.end_of_session == 1 && s.c.packets == 9 && s.c.messages == 9);
}

static void test_mold_sessions_full(void)
{
	struct mold_state s;
	uint8_t b[512], id[MOLD_SESSION_LEN];
	mold_init(&s);
	for (int i = 0; i <= MOLD_MAX_SESSIONS; i++) {
		memset(id, '0' + i, sizeof id);
		struct mold_packet pk = mk_packet(b, id, 1, 1, false);
		int rc = mold_accept(&s, &pk);
		CHECK(rc == (i < MOLD_MAX_SESSIONS ? 0 : -1));
	}
	CHECK(s.c.sessions_full == 1 && s.c.messages == MOLD_MAX_SESSIONS);
	CHECK(s.c.packets == MOLD_MAX_SESSIONS + 1);
}

/* The engine's shortcuts (mold_accept_next, and mold_is_next +
 * mold_take_next for one-message datagrams) decide and count exactly as
 * mold_accept does, over a random stream: sessions beyond capacity and an
 * all-zero id, sequence numbers at, before and after the expected one, 0
 * and near 2^64, heartbeats and ends of session. */
static void test_mold_fast_path(void)
{
	static const uint8_t ids[6][MOLD_SESSION_LEN] = {
		"SESSION-A1", "SESSION-B2", { 0 }, "SESSION-C3", "SESSION-D4", "SESSION-E5" };
	static const uint16_t counts[] = { 1, 1, 1, 1, 2, 3, 0 };
	struct mold_state ref, fast, eng;
	uint8_t b[512];
	unsigned bad = 0, taken = 0;

	mold_init(&ref);
	mold_init(&fast);
	mold_init(&eng);
	for (int op = 0; op < 200000; op++) {
		uint64_t r = rng();
		const uint8_t *id = ids[r % 16 < 11 ? 0 : r % 16 - 10];  /* mostly session A */
		uint64_t next = 1;
		for (int k = 0; k < MOLD_MAX_SESSIONS; k++)
			if (ref.sessions[k].used && memcmp(ref.sessions[k].id, id, 10) == 0)
				next = ref.sessions[k].next_seq;
		static const int64_t d[] = { 0, 0, 0, 0, 0, 1, 2, -1, -5 };
		uint64_t seq = next + (uint64_t)d[(r >> 8) % 9];
		if ((r >> 16) % 64 == 0)
			seq = (r >> 22) % 2 ? 0 : UINT64_MAX - (r >> 23) % 3;
		uint16_t count = counts[(r >> 32) % 7];
		if (op == 150000 || op == 190000)
			count = MOLD_END_OF_SESSION;  /* rare: it retires a session for good */
		struct mold_packet pk = mk_packet(b, id, seq, count == MOLD_END_OF_SESSION ? 0 : count,
						  count == MOLD_END_OF_SESSION);
		int want = mold_accept(&ref, &pk);
		int got = mold_accept_next(&fast, pk.session, pk.seq, pk.count);
		int got_eng;
		if (pk.count == 1 && mold_is_next(&eng, pk.session, pk.seq)) {
			mold_take_next(&eng, pk.seq, 1);
			eng.c.packets++;
			eng.c.messages++;
			got_eng = 0;
			taken++;
		} else {
			got_eng = mold_accept_next(&eng, pk.session, pk.seq, pk.count);
		}
		bad += want != got || want != got_eng ||
		       memcmp(ref.sessions, fast.sessions, sizeof ref.sessions) != 0 ||
		       memcmp(ref.sessions, eng.sessions, sizeof ref.sessions) != 0 ||
		       memcmp(&ref.c, &fast.c, sizeof ref.c) != 0 || memcmp(&ref.c, &eng.c, sizeof ref.c) != 0;
	}
	printf("  mold_fast_path: %u shortcut, gaps %lu dups %lu full %lu after end %lu\n", taken,
	       (unsigned long)ref.c.gaps, (unsigned long)ref.c.duplicates,
	       (unsigned long)ref.c.sessions_full, (unsigned long)ref.c.after_end);
	CHECK(bad == 0);
	CHECK(taken > 20000);  /* the shortcut did much of the work */
	CHECK(ref.c.gaps > 0 && ref.c.duplicates > 0 && ref.c.sessions_full > 0 && ref.c.after_end > 0);
}

static void test_mold_malformed(void)
{
	uint8_t b[64] = {0};
	struct mold_packet pk;
	memcpy(b, session_a, 10);
	CHECK(mold_parse(b, 19, &pk) == MOLD_E_SHORT);
	wr_be16(b + 18, 2);             /* two blocks announced */
	wr_be16(b + 20, 3);             /* first: 3 bytes at 22..24 */
	CHECK(mold_parse(b, 25, &pk) == MOLD_E_TRUNCATED);  /* second missing */
	CHECK(mold_parse(b, 26, &pk) == MOLD_E_TRUNCATED);  /* half a length */
	wr_be16(b + 25, 1);
	CHECK(mold_parse(b, 27, &pk) == MOLD_E_TRUNCATED);  /* body missing */
	CHECK(mold_parse(b, 28, &pk) == MOLD_OK);
	CHECK(mold_parse(b, 40, &pk) == MOLD_OK);           /* trailing bytes */
	struct mold_iter it;
	const uint8_t *msg;
	uint16_t len;
	int n = 0;
	mold_iter_init(&it, &pk);
	while (mold_next(&it, &msg, &len))
		n++;
	CHECK(n == 2);
	wr_be16(b + 18, 0xFFFF);        /* end of session: blocks ignored */
	CHECK(mold_parse(b, 21, &pk) == MOLD_OK);
	mold_iter_init(&it, &pk);
	CHECK(!mold_next(&it, &msg, &len));
}

static void test_mold_writer_limits(void)
{
	uint8_t b[40];
	struct mold_writer w;
	uint8_t msg[16];
	memset(msg, 'm', sizeof msg);
	CHECK(!mold_pack_begin(&w, b, 19, session_a, 1));
	CHECK(!mold_pack_add(&w, msg, 1) && mold_pack_end(&w, false) == 0);
	CHECK(mold_pack_begin(&w, b, sizeof b, session_a, 7));
	CHECK(mold_pack_add(&w, msg, 16));          /* 20 + 18 = 38 */
	memset(b + 38, 0xEE, 2);
	CHECK(!mold_pack_add(&w, msg, 1));           /* needs 3, has 2 */
	CHECK(w.len == 38 && w.count == 1 && b[38] == 0xEE && b[39] == 0xEE);
	CHECK(mold_pack_end(&w, false) == 38 && rd_be16(b + 18) == 1);
	CHECK(rd_be64(b + 10) == 7 && memcmp(b, session_a, 10) == 0);
	size_t cap = MOLD_HDR_LEN + 2 * 0x10000;
	uint8_t *big = malloc(cap);
	mold_pack_begin(&w, big, cap, session_a, 1);
	int added = 0;
	while (mold_pack_add(&w, NULL, 0))
		added++;
	CHECK(added == 0xFFFE && mold_pack_end(&w, false) == MOLD_HDR_LEN + 2 * 0xFFFE);
	free(big);
}

/* -------------------------------------------------------------------- net */

static const struct net_endpoint ep_a = {
	{0x02, 0x00, 0x00, 0x00, 0x00, 0x0A}, 5001, 0xC0A80001};  /* 192.168.0.1 */
static const struct net_endpoint ep_b = {
	{0x02, 0x00, 0x00, 0x00, 0x00, 0x0B}, 6001, 0xC0A800C7};  /* 192.168.0.199 */

static void fix_ip_csum(uint8_t *frame)
{
	wr_be16(frame + 24, 0);
	wr_be16(frame + 24, net_ip_checksum(frame + 14, 20));
}

/* Parse an exact-size copy, then point the view back into `frame`. */
static int parse_exact(const uint8_t *frame, size_t len, struct net_udp_view *v)
{
	uint8_t *p = exact_copy(frame, len);
	int rc = net_parse_udp(p, len, v);
	if (rc == NET_OK) {
		v->eth_dst = frame + (v->eth_dst - p);
		v->eth_src = frame + (v->eth_src - p);
		v->payload = frame + (v->payload - p);
	}
	free(p);
	return rc;
}

static void test_net_udp(void)
{
	uint8_t f[160];
	struct net_udp_view v;
	/* The textbook IPv4 header (total length 0x73, DF, TTL 64, UDP,
	 * 192.168.0.1 -> 192.168.0.199) has checksum 0xB861. */
	for (int i = 0; i < 87; i++)
		f[NET_UDP_HDRS + i] = (uint8_t)i;
	CHECK(net_build_udp(f, sizeof f, &ep_a, &ep_b, 87, 0) == 129);
	CHECK(rd_be16(f + 24) == 0xB861 && net_ip_checksum(f + 14, 20) == 0);
	CHECK(net_build_udp(f, 128, &ep_a, &ep_b, 87, 0) == 0);     /* cap */
	CHECK(net_build_udp(f, sizeof f, &ep_a, &ep_b, 49, 0x1234) == 91);
	CHECK(parse_exact(f, 91, &v) == NET_OK);
	CHECK(v.ip_src == ep_a.ip && v.ip_dst == ep_b.ip && v.payload_len == 49);
	CHECK(v.src_port == 5001 && v.dst_port == 6001 && v.payload[0] == 0);
	CHECK(memcmp(v.eth_dst, ep_b.mac, 6) == 0 && memcmp(v.eth_src, ep_a.mac, 6) == 0);
	CHECK(rd_be16(f + 20) == 0x4000 && f[22] == 64 && rd_be16(f + 40) == 0);
	int truncated_ok = 0;
	for (size_t n = 0; n < 91; n++)
		truncated_ok += parse_exact(f, n, &v) == NET_OK;
	CHECK(truncated_ok == 0);
	f[24] ^= 1;
	CHECK(parse_exact(f, 91, &v) == NET_E_IP_CSUM);
	/* Short payload: padded to 60, lengths come from the headers. */
	memset(f, 0xCC, sizeof f);
	memcpy(f + NET_UDP_HDRS, "hello", 5);
	CHECK(net_build_udp(f, 60, &ep_a, &ep_b, 5, 1) == 60 && f[59] == 0 && f[47] == 0);
	CHECK(parse_exact(f, 60, &v) == NET_OK && v.payload_len == 5);
	CHECK(memcmp(v.payload, "hello", 5) == 0);
}

/* One header field broken at a time, checksum repaired where needed. */
static void test_net_udp_errors(void)
{
	uint8_t good[91], f[91];
	struct net_udp_view v;
	memset(good, 0, sizeof good);
	net_build_udp(good, sizeof good, &ep_a, &ep_b, 49, 7);
#define MUTATE(stmt, csum, want) do {			\
		memcpy(f, good, 91);				\
		stmt;						\
		if (csum)					\
			fix_ip_csum(f);				\
		CHECK(parse_exact(f, 91, &v) == (want));	\
	} while (0)
	MUTATE(wr_be16(f + 12, 0x86DD), 0, NET_E_ETHERTYPE);
	MUTATE(f[14] = 0x65, 1, NET_E_IP_VERSION);
	MUTATE(f[14] = 0x44, 1, NET_E_IP_HDR);
	MUTATE(wr_be16(f + 16, 90), 1, NET_E_IP_LEN);    /* beyond the frame */
	MUTATE(wr_be16(f + 16, 19), 1, NET_E_IP_LEN);
	MUTATE(wr_be16(f + 20, 0x2000), 1, NET_E_FRAGMENT);
	MUTATE(wr_be16(f + 20, 0x0001), 1, NET_E_FRAGMENT);
	MUTATE(f[23] = 6, 1, NET_E_NOT_UDP);
	MUTATE(wr_be16(f + 38, 7), 0, NET_E_UDP_LEN);
	MUTATE(wr_be16(f + 38, 58), 0, NET_E_UDP_LEN);
	MUTATE(wr_be16(f + 16, 27), 1, NET_E_UDP_LEN);   /* IP payload < 8 */
	MUTATE(wr_be16(f + 38, 20), 0, NET_OK);          /* UDP shorter than IP: ok */
#undef MUTATE
	CHECK(v.payload_len == 12);
	memcpy(f, good, 91);
	f[14] = 0x4F;                   /* a 60-byte header in 26 bytes */
	CHECK(parse_exact(f, 40, &v) == NET_E_IP_HDR);
	CHECK(parse_exact(good, 13, &v) == NET_E_SHORT);
	CHECK(parse_exact(good, 33, &v) == NET_E_SHORT);
}

static bool same_view(const struct net_udp_view *a, const struct net_udp_view *b)
{
	return a->eth_dst == b->eth_dst && a->eth_src == b->eth_src && a->ip_src == b->ip_src &&
	       a->ip_dst == b->ip_dst && a->src_port == b->src_port && a->dst_port == b->dst_port &&
	       a->payload == b->payload && a->payload_len == b->payload_len;
}

/* net_udp_fast (the runtime's inline path) against the one-check-at-a-time
 * parser, on frames of several sizes with random header bytes, bit flips
 * and lengths, half of them with the checksum repaired: whatever it takes
 * the full parser takes with the same view; whatever the full parser takes
 * with a plain 20-byte header it takes too (so it is the fast path of the
 * frames that matter, not a filter that says no); and net_parse_udp (fast,
 * then checked) gives the same result and view as the checked parser. */
static void test_net_udp_fast(void)
{
	enum { ROUNDS = 200000 };
	static const uint16_t sizes[] = {0, 5, 18, 49, 200};
	uint8_t good[5][NET_UDP_HDRS + 200];
	size_t good_len[5];
	long fast_yes = 0, checked_errors = 0, checked_ok = 0, mismatches = 0;

	for (int k = 0; k < 5; k++) {
		for (size_t i = 0; i < sizes[k]; i++)
			good[k][NET_UDP_HDRS + i] = (uint8_t)rng();
		good_len[k] = net_build_udp(good[k], sizeof good[k], &ep_a, &ep_b, sizes[k],
					    (uint16_t)rng());
	}
	for (long r = 0; r < ROUNDS; r++) {
		int k = (int)(rng() % 5);
		size_t len = good_len[k];
		uint8_t f[sizeof good[0]];
		memcpy(f, good[k], len);
		if (rng() & 1) {        /* another TTL and source: every carry of the sum */
			uint64_t x = rng();
			f[22] = (uint8_t)x;
			memcpy(f + 26, &x, 4);
			fix_ip_csum(f);
		}
		for (int m = (int)(rng() % 3); m > 0; m--) {
			size_t at = rng() % (NET_UDP_HDRS + 2);
			if (rng() & 1)
				f[at] = (uint8_t)rng();
			else
				f[at] ^= (uint8_t)(1u << (rng() % 8));
		}
		if (rng() % 4 == 0)
			len = rng() % (len + 1);
		if ((rng() & 1) && len >= NET_ETH_HDR + NET_IP_HDR)
			fix_ip_csum(f);
		uint8_t *p = exact_copy(f, len);
		struct net_udp_view vc, vf, vp;
		int rc = net_parse_udp_checked(p, len, &vc);
		bool fast = net_udp_fast(p, len, &vf);
		int rp = net_parse_udp(p, len, &vp);
		mismatches += rp != rc || (rc == NET_OK && !same_view(&vp, &vc));
		if (fast)
			mismatches += rc != NET_OK || !same_view(&vf, &vc);
		if (rc == NET_OK && p[NET_ETH_HDR] == 0x45)
			mismatches += !fast;
		fast_yes += fast;
		checked_ok += rc == NET_OK;
		checked_errors += rc != NET_OK;
		free(p);
	}
	CHECK(mismatches == 0);
	/* Headers whose sum carries out of 64 bits in both of net_udp_fast's
	 * additions (random frames almost never do): a source address that
	 * puts the upper half of the first sum at all ones, a destination near
	 * 2^32 (native order, as net_udp_fast adds them on this x86 host). */
	long carried = 0;
	for (int i = 0; i < 20000; i++) {
		uint8_t g[sizeof good[0]];
		uint32_t ahi, bhi, d = 0xFFFFFFFFu - (uint32_t)(rng() % 0x10000);
		uint64_t a, b, sum;
		memcpy(g, good[3], good_len[3]);
		wr_be16(g + 18, (uint16_t)rng());
		memcpy(&ahi, g + 18, 4);
		bhi = 0xFFFFFFFFu - ahi - (uint32_t)(rng() & 1);
		memcpy(g + 26, &bhi, 4);
		memcpy(g + 30, &d, 4);
		fix_ip_csum(g);
		memcpy(&a, g + 14, 8);
		memcpy(&b, g + 22, 8);
		sum = a + b;
		sum += sum < a;
		carried += sum + d < sum;
		struct net_udp_view vc, vf;
		int rc = net_parse_udp_checked(g, good_len[3], &vc);
		mismatches += rc != NET_OK || !net_udp_fast(g, good_len[3], &vf) || !same_view(&vf, &vc);
	}
	CHECK(mismatches == 0 && carried > 1000);
	/* The destination key: address and port, not the source port. */
	uint8_t g[sizeof good[0]];
	memcpy(g, good[3], good_len[3]);
	uint64_t key = net_udp_dst_key_of(ep_b.ip, ep_b.port);
	CHECK(net_udp_dst_key(g) == key);
	wr_be16(g + 34, 1234);                          /* source port: same key */
	CHECK(net_udp_dst_key(g) == key);
	CHECK(net_udp_dst_key_of(ep_b.ip, (uint16_t)(ep_b.port + 1)) != key);
	CHECK(net_udp_dst_key_of(ep_b.ip ^ 0x100, ep_b.port) != key);
	for (int b = 0; b < 32; b++) {                  /* any bit of address or port counts */
		memcpy(g, good[3], good_len[3]);
		g[b < 16 ? 30 + b / 4 : 36 + (b - 16) / 8] ^= (uint8_t)(1u << (b % 8));
		mismatches += net_udp_dst_key(g) == key;
	}
	CHECK(mismatches == 0);
	/* Both sides of the fast path were exercised. */
	CHECK(fast_yes > ROUNDS / 10 && checked_errors > ROUNDS / 10 && checked_ok >= fast_yes);
}

static void test_net_arp(void)
{
	uint8_t f[64], *p;
	struct net_arp a, r;
	static const uint8_t bcast[6] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
	static const uint8_t zero6[6];
	CHECK(net_build_arp(f, 59, 1, ep_a.mac, ep_a.ip, NULL, ep_b.ip) == 0);
	CHECK(net_build_arp(f, 60, 3, ep_a.mac, ep_a.ip, zero6, ep_b.ip) == 0);
	memset(f, 0xCC, sizeof f);
	CHECK(net_build_arp(f, 60, 1, ep_a.mac, ep_a.ip, NULL, ep_b.ip) == 60);
	CHECK(memcmp(f, bcast, 6) == 0 && memcmp(f + 6, ep_a.mac, 6) == 0 && f[59] == 0);
	p = exact_copy(f, 60);
	CHECK(net_parse_arp(p, 60, &a) == NET_OK && net_ethertype(p, 60) == NET_ETHERTYPE_ARP);
	free(p);
	CHECK(a.oper == 1 && a.spa == ep_a.ip && a.tpa == ep_b.ip);
	CHECK(memcmp(a.sha, ep_a.mac, 6) == 0 && memcmp(a.tha, zero6, 6) == 0);
	/* B answers A. */
	CHECK(net_build_arp(f, sizeof f, 2, ep_b.mac, a.tpa, a.sha, a.spa) == 60);
	CHECK(memcmp(f, ep_a.mac, 6) == 0);
	p = exact_copy(f, 42);
	CHECK(net_parse_arp(p, 42, &r) == NET_OK);
	CHECK(net_parse_arp(p, 41, &r) == NET_E_SHORT && net_parse_arp(p, 13, &r) == NET_E_SHORT);
	free(p);
	CHECK(r.oper == 2 && r.spa == ep_b.ip && r.tpa == ep_a.ip);
	CHECK(memcmp(r.sha, ep_b.mac, 6) == 0 && memcmp(r.tha, ep_a.mac, 6) == 0);
	f[14 + 1] = 6;                  /* htype 6 (IEEE 802) */
	CHECK(net_parse_arp(f, 60, &r) == NET_E_ARP);
	net_build_udp(f, sizeof f, &ep_a, &ep_b, 0, 0);
	CHECK(net_parse_arp(f, 60, &r) == NET_E_ETHERTYPE);
}

/* ------------------------------------------------------------------- OUCH */

static void test_ouch(void)
{
	char tok[OUCH_TOKEN_LEN];
	uint8_t inst;
	uint64_t seq;
	ouch_token(tok, 0x2A, 0x123456789ABCull);
	CHECK(memcmp(tok, "2A123456789ABC", 14) == 0);
	CHECK(ouch_token_parse(tok, &inst, &seq) && inst == 0x2A && seq == 0x123456789ABCull);
	ouch_token(tok, 0xFF, 0xFFFFFFFFFFFFull);
	CHECK(ouch_token_parse(tok, &inst, &seq) && inst == 0xFF && seq == 0xFFFFFFFFFFFFull);
	CHECK(!ouch_token_parse("2a123456789ABC", &inst, &seq));
	CHECK(!ouch_token_parse("2A123456789ABG", &inst, &seq));
	CHECK(!ouch_token_parse("2A12345678 ABC", &inst, &seq));

	struct order_intent o = {0};
	o.trigger_seq = 4242;
	o.shares = 100;
	o.price = 1234500;
	o.side = 'B';
	memcpy(o.stock, "AAPL    ", 8);
	uint8_t buf[64];
	CHECK(ouch_encode_order(buf, 48, &o, 3) == 0);
	CHECK(ouch_encode_order(buf, sizeof buf, &o, 3) == OUCH_ENTER_LEN);
	/* 4242 = 0x1092; 1234500 = 0x0012D644. */
	static const uint8_t want[OUCH_ENTER_LEN] =
		"O" "03000000001092" "B" "\x00\x00\x00\x64" "AAPL    "
		"\x00\x12\xD6\x44" "\x00\x00\x00\x00" "HFTL" "YAN"
		"\x00\x00\x00\x00" "N" " ";
	CHECK(memcmp(buf, want, OUCH_ENTER_LEN) == 0);
	struct ouch_enter e;
	uint8_t *p = exact_copy(buf, 49);
	CHECK(ouch_decode_enter(p, 49, &e));
	CHECK(!ouch_decode_enter(p, 48, &e));
	free(p);
	CHECK(e.instance == 3 && e.trigger_seq == 4242 && e.side == 'B');
	CHECK(e.shares == 100 && e.price == 1234500 && e.tif == OUCH_TIF_IOC);
	CHECK(memcmp(e.stock, "AAPL    ", 8) == 0 && memcmp(e.firm, "HFTL", 4) == 0);
	CHECK(e.display == 'Y' && e.capacity == 'A' && e.iso == 'N' && e.min_qty == 0);
	CHECK(e.cross_type == 'N' && e.customer_type == ' ');
	CHECK(memcmp(e.token, "03000000001092", OUCH_TOKEN_LEN) == 0);
	buf[0] = 'U';
	CHECK(!ouch_decode_enter(buf, 49, &e));
}

/* ------------------------------------------------------------------- fuzz */

/* Random bytes, biased towards inputs that get past the first checks. */
static size_t fuzz_fill(uint8_t *b, size_t cap, const uint8_t *valid_udp)
{
	static const char types[] = "SRHYLVWKJhAFECXDUPQBINO";
	uint64_t r = rng();
	size_t len = rng() % cap;
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)rng();
	switch (r & 7) {
	case 0: case 1:           /* ITCH message of the right or nearly right size */
		b[0] = (uint8_t)types[rng() % 23];
		len = itch_msg_len(b[0]) + (size_t)(r >> 8 & 3) - 1;
		break;
	case 2:                   /* MoldUDP64 with few, short blocks */
		if (len >= 20) {
			wr_be16(b + 18, (uint16_t)(r >> 8 & 7));
			for (size_t i = 20; i + 1 < len; i += 5)
				wr_be16(b + i, (uint16_t)(rng() % 6));
		}
		break;
	case 3:                   /* a valid UDP frame, truncated or corrupted */
		memcpy(b, valid_udp, 91);
		len = (r & 8) ? rng() % 92 : 91;
		b[rng() % 91] ^= (uint8_t)(1u << (r >> 8 & 7));
		break;
	case 4:                   /* ARP ethertype, fixed fields mostly right */
		if (len >= 22) {
			memcpy(b + 12, "\x08\x06\x00\x01\x08\x00\x06\x04\x00", 9);
			b[21] = (uint8_t)(r >> 8 & 3);
		}
		break;
	case 5:                   /* a chain of ITCH file frames, 0 prefixes too */
		for (size_t i = 0; i + 2 < len;) {
			uint16_t l = (uint16_t)(rng() % 8);
			wr_be16(b + i, (r & 8) ? 0 : l);
			b[i + 2] = (uint8_t)types[rng() % 23];
			i += 2 + ((r & 8) ? itch_msg_len(b[i + 2]) : l);
		}
		break;
	case 6:                   /* an OUCH Enter Order, give or take a byte */
		b[0] = 'O';
		len = OUCH_ENTER_LEN + (size_t)(r >> 8 & 3) - 1;
		break;
	}
	return len;
}

/* How often each decoder accepted a fuzz input: proof the fuzzer gets past
 * the first checks rather than bouncing off them. */
struct fuzz_hits { long itch, frames, mold_blocks, udp, arp, ouch; };

/* Each decoder on buf[0..len) in its own exact allocation; invariants the
 * contracts promise are checked on the way. Returns violations. */
static int fuzz_one(const uint8_t *b, size_t len, struct fuzz_hits *h)
{
	int bad = 0;
	uint8_t *p = exact_copy(b, len);
	struct itch_msg m;
	int rc = itch_decode(p, len, &m);
	bad += (rc == ITCH_OK) != (len != 0 && itch_msg_len(p[0]) == len);
	bad += rc == ITCH_OK && !itch_absent_zero(&m);
	h->itch += rc == ITCH_OK;
	struct itch_frame f;
	size_t off = 0;
	while (itch_frame_next(p, len, &off, &f) == ITCH_FRAME_OK) {
		bad += f.msg + f.len > p + len || off > len;
		h->frames++;
		itch_decode(f.msg, f.len, &m);
	}
	struct mold_packet pk;
	if (mold_parse(p, len, &pk) != MOLD_OK && len >= MOLD_HDR_LEN) {
		/* The iterator must hold on its own: feed it the unchecked
		 * packet too. */
		pk = (struct mold_packet){p, 0, rd_be16(p + 18), p + MOLD_HDR_LEN,
					  len - MOLD_HDR_LEN};
	}
	if (len >= MOLD_HDR_LEN) {
		struct mold_iter it;
		const uint8_t *msg;
		uint16_t ml;
		mold_iter_init(&it, &pk);
		while (mold_next(&it, &msg, &ml)) {
			bad += msg + ml > p + len;
			itch_decode(msg, ml, &m);
			h->mold_blocks++;
		}
	}
	struct net_udp_view v;
	if (net_parse_udp(p, len, &v) == NET_OK) {
		bad += v.payload + v.payload_len > p + len;
		h->udp++;
	}
	struct net_arp a;
	h->arp += net_parse_arp(p, len, &a) == NET_OK;
	struct ouch_enter e;
	h->ouch += ouch_decode_enter(p, len, &e);
	uint8_t inst;
	uint64_t seq;
	if (len >= OUCH_TOKEN_LEN)
		ouch_token_parse((const char *)p, &inst, &seq);
	free(p);
	return bad;
}

static void test_fuzz(void)
{
	enum { ROUNDS = 300000, CAP = 128 };
	uint8_t b[CAP], udp[128];
	memset(b, 0, sizeof b);
	memset(udp, 0, sizeof udp);
	for (int i = 0; i < 49; i++)
		udp[NET_UDP_HDRS + i] = (uint8_t)rng();
	net_build_udp(udp, sizeof udp, &ep_a, &ep_b, 49, 9);
	int bad = 0;
	struct fuzz_hits h = {0};
	for (int i = 0; i < ROUNDS; i++) {
		size_t len = fuzz_fill(b, CAP, udp);
		bad += fuzz_one(b, len, &h);
	}
	CHECK(bad == 0);
	printf("fuzz: %d buffers; accepted: itch %ld, frames %ld, mold blocks %ld, "
	       "udp %ld, arp %ld, ouch %ld\n", ROUNDS, h.itch, h.frames,
	       h.mold_blocks, h.udp, h.arp, h.ouch);
	CHECK(h.itch > 0 && h.frames > 0 && h.mold_blocks > 0 && h.udp > 0 && h.arp > 0);
	/* Every truncation of every sample message type. */
	int trunc_ok = 0;
	for (size_t i = 0; i < sizeof itch_present_table / sizeof itch_present_table[0]; i++) {
		uint8_t *p;
		size_t n = itch_msg_len((uint8_t)itch_present_table[i].type);
		struct itch_msg m;
		memset(b, 0x41, n);
		b[0] = (uint8_t)itch_present_table[i].type;
		for (size_t k = 0; k < n; k++) {
			p = exact_copy(b, k);
			trunc_ok += itch_decode(p, k, &m) == ITCH_OK;
			free(p);
		}
	}
	CHECK(trunc_ok == 0);
}

/* ------------------------------------------------------------------ bench */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Decode the RITCH file's messages over and over: frames are located once,
 * so this times itch_decode_counted alone. */
static int bench(void)
{
	size_t len;
	uint8_t *file = load_file("ritch/ex20101224.TEST_ITCH_50", &len);
	if (file == NULL)
		return 1;
	struct itch_frame *fr = malloc(sizeof *fr * 20000);
	size_t n = 0, off = 0;
	while (n < 20000 && itch_frame_next(file, len, &off, &fr[n]) == ITCH_FRAME_OK)
		n++;
	static struct itch_counters c;
	struct itch_msg m;
	uint64_t sink = 0;
	int rounds = 500;
	double t0 = now_s();
	for (int r = 0; r < rounds; r++)
		for (size_t i = 0; i < n; i++) {
			itch_decode_counted(fr[i].msg, fr[i].len, &m, &c);
			sink += m.price ^ m.order_ref;
		}
	double dt = now_s() - t0;
	printf("itch_decode_counted: %zu msgs x %d rounds in %.3f s = %.1f M msgs/s (sink %llx)\n",
	       n, rounds, dt, (double)n * rounds / dt / 1e6, (unsigned long long)sink);
	free(fr);
	free(file);
	return 0;
}

/* ------------------------------------------------------------------- main */

/* ---- book: deep books against a plain list of live orders ---------------- */
#define BK_ORDERS 8192
#define BK_LEVELS 8192
#define BK_OPS 200000
struct bk_live { uint64_t ref; uint32_t price, shares; uint16_t locate; uint8_t side; };
static struct bk_live bk_live[BK_ORDERS];
static uint32_t bk_n;

static int bk_cmp_level(const void *a, const void *b)
{
	const struct bk_live *x = a, *y = b;
	if (x->locate != y->locate)
		return x->locate < y->locate ? -1 : 1;
	if (x->side != y->side)
		return x->side < y->side ? -1 : 1;
	/* best first: bids high to low, asks low to high */
	if (x->price != y->price)
		return (x->price < y->price) == (x->side == BOOK_ASK) ? -1 : 1;
	return 0;
}

/* Every (locate, side) of the book equals what the live orders add up to. */
static bool bk_same(const struct book *b)
{
	static struct bk_live sorted[BK_ORDERS];
	static uint32_t prices[BK_LEVELS], orders[BK_LEVELS];
	static uint64_t shares[BK_LEVELS];

	memcpy(sorted, bk_live, bk_n * sizeof sorted[0]);
	qsort(sorted, bk_n, sizeof sorted[0], bk_cmp_level);
	uint32_t i = 0, levels = 0;
	for (uint16_t loc = 1; loc <= 2; loc++) {
		for (int side = 0; side < 2; side++) {
			uint32_t n = book_depth(b, loc, side, prices, shares, orders, BK_LEVELS);
			levels += n;
			for (uint32_t k = 0; k < n; k++) {
				uint64_t sh = 0;
				uint32_t no = 0;
				while (i < bk_n && sorted[i].locate == loc && sorted[i].side == side &&
				       sorted[i].price == prices[k]) {
					sh += sorted[i++].shares;
					no++;
				}
				if (no == 0 || no != orders[k] || sh != shares[k])
					return false;
				/* Found by price too (the level hash, or the treap). */
				uint32_t lv = book_level_find(b, loc, side, prices[k]);
				if (lv == BOOK_NIL || b->m.levels[lv].price != prices[k] ||
				    b->m.levels[lv].locate != loc || b->m.levels[lv].side != side)
					return false;
			}
			uint32_t bp;
			uint64_t bs;
			if (book_best(b, loc, side, &bp, &bs) != (n > 0) || (n > 0 && bp != prices[0]))
				return false;
		}
	}
	return i == bk_n && levels == b->live_levels && bk_n == b->live_orders;
}

/* The same random run with the level hash (book_mem.lindex) and without. */
static void book_deep_run(bool level_hash)
{
	static struct book_order orders[BK_ORDERS];
	static uint32_t index[2 * BK_ORDERS];
	static struct book_level levels[BK_LEVELS];
	static uint32_t lindex[2 * BK_LEVELS];
	static struct book b;
	const struct book_mem mem = { .orders = orders, .order_cap = BK_ORDERS, .index = index,
				      .index_cap = 2 * BK_ORDERS, .levels = levels,
				      .level_cap = BK_LEVELS, .lindex = level_hash ? lindex : NULL,
				      .lindex_cap = level_hash ? 2 * BK_LEVELS : 0 };
	struct book_effect fx;
	uint64_t next_ref = 1;
	bool ok = true;

	CHECK(book_init(&b, &mem));
	bk_n = 0;
	for (uint32_t op = 0; op < BK_OPS && ok; op++) {
		struct itch_msg m = { 0 };
		uint64_t r = rng();
		/* Grow to ~6,000 live orders, then hover there. */
		bool add = bk_n == 0 || (bk_n < 6000 ? r % 8 < 5 : r % 8 < 3);
		if (add && bk_n < BK_ORDERS) {
			struct bk_live *o = &bk_live[bk_n];
			o->locate = (uint16_t)(1 + (r >> 8) % 2);
			o->side = (uint8_t)((r >> 9) & 1);
			/* ~1,500 prices a side, sub-penny, and a few far away */
			o->price = (r >> 10) % 64 == 0 ? (uint32_t)(r >> 32) | 1u
				   : 100000u + (uint32_t)((r >> 16) % 1500) * 7u;
			o->shares = 1 + (uint32_t)((r >> 40) % 900);
			o->ref = next_ref++;
			m = (struct itch_msg){ .type = 'A', .order_ref = o->ref, .shares = o->shares,
					       .price = o->price, .stock_locate = o->locate,
					       .side = o->side == BOOK_BID ? 'B' : 'S' };
			ok = book_apply(&b, &m, &fx);
			bk_n++;
		} else if (bk_n > 0) {
			uint32_t k = (uint32_t)((r >> 8) % bk_n);
			struct bk_live *o = &bk_live[k];
			char kinds[] = "EXDUC";
			m = (struct itch_msg){ .type = kinds[(r >> 30) % 5], .order_ref = o->ref,
					       .stock_locate = o->locate };
			uint32_t part = 1 + (uint32_t)((r >> 40) % (o->shares + 50));
			m.shares = m.type == 'U' ? 1 + (r >> 50) % 500 : part;
			m.price = m.type == 'U' ? 100000u + (uint32_t)((r >> 20) % 1500) * 7u : 1234u;
			m.new_order_ref = next_ref;
			ok = book_apply(&b, &m, &fx);
			if (m.type == 'U') {
				next_ref++;
				o->ref = m.new_order_ref;
				o->shares = (uint32_t)m.shares;
				o->price = m.price;
			} else if (m.type == 'D' || part >= o->shares) {
				*o = bk_live[--bk_n];
			} else {
				o->shares -= part;
			}
		}
		/* book_apply leaves an add's counters and links to book_settle
		 * (the engine's call once an order is out). */
		if (op % 2000 == 1999) {
			book_settle(&b);
			if (!bk_same(&b))
				ok = false;
		}
	}
	CHECK(ok);
	book_settle(&b);
	CHECK(bk_same(&b));
	CHECK(b.c.full_orders == 0 && b.c.full_levels == 0 && b.c.unknown_ref == 0);
}

static void test_book_deep(void)
{
	book_deep_run(false);
	book_deep_run(true);
}

/* ---- engine: empty message blocks ------------------------------------- */

static void eb_emit(void *ctx, const struct order_intent *o)
{
	(void)o;
	++*(int *)ctx;
}

/* A MoldUDP64 block may be empty (length 0): the engine must not read its
 * type byte. Each datagram sits in a heap buffer of its exact size, so the
 * sanitized build traps a read one byte past it (the fuzzer found one in
 * the D/E/X dispatch). One empty block (the one-message path), then three
 * (the packet loop). */
static void test_engine_empty_blocks(void)
{
	static struct engine e;
	static struct book_order orders[64];
	static uint32_t index[128];
	static struct book_level levels[64];
	struct book_mem mem = { .orders = orders, .order_cap = 64, .index = index, .index_cap = 128,
				.levels = levels, .level_cap = 64 };
	struct engine_config cfg = { .magic = ENGINE_CONFIG_MAGIC, .version = ENGINE_CONFIG_VERSION,
				     .instance = 1 };
	uint8_t dg[MOLD_HDR_LEN + 3 * MOLD_BLOCK_HDR];
	struct mold_writer w;
	int sent = 0;

	CHECK(engine_init(&e, &cfg, &mem));
	for (uint16_t count = 1, seq = 1; count <= 3; seq += count, count += 2) {
		CHECK(mold_pack_begin(&w, dg, sizeof dg, (const uint8_t *)"EMPTYBLOCK", seq));
		for (uint16_t k = 0; k < count; k++)
			CHECK(mold_pack_add(&w, NULL, 0));
		size_t n = mold_pack_end(&w, false);
		uint8_t *p = exact_copy(dg, n);
		CHECK(engine_on_packet(&e, p, n, eb_emit, &sent) == 0);
		free(p);
	}
	CHECK(sent == 0 && e.mold.c.messages == 4 && e.itch.messages == 0);
}

static const struct { const char *name; void (*fn)(void); } tests[] = {
	{"itch_lengths", test_itch_lengths},
	{"itch_present", test_itch_present},
	{"itch_offsets", test_itch_offsets},
	{"itch_direct", test_itch_direct},
	{"itch_ritch", test_itch_ritch},
	{"itch_synth", test_itch_synth},
	{"itch_framing_edges", test_itch_framing_edges},
	{"mold_roundtrip", test_mold_roundtrip},
	{"mold_sequencing", test_mold_sequencing},
	{"mold_sessions_full", test_mold_sessions_full},
	{"mold_fast_path", test_mold_fast_path},
	{"mold_malformed", test_mold_malformed},
	{"mold_writer_limits", test_mold_writer_limits},
	{"net_udp", test_net_udp},
	{"net_udp_errors", test_net_udp_errors},
	{"net_udp_fast", test_net_udp_fast},
	{"net_arp", test_net_arp},
	{"ouch", test_ouch},
	{"fuzz", test_fuzz},
	{"book_deep", test_book_deep},
	{"engine_empty_blocks", test_engine_empty_blocks},
};

int main(int argc, char **argv)
{
	bool do_bench = argc > 1 && strcmp(argv[1], "--bench") == 0;
	int argi = do_bench ? 2 : 1;
	if (argc != argi + 1) {
		fprintf(stderr, "usage: %s [--bench] DATA_DIR   (the repository's datasets/ folder)\n",
			argv[0]);
		return 2;
	}
	data_dir = argv[argi];
	if (do_bench)
		return bench();
	for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
		int before = n_fail;
		tests[i].fn();
		printf("%-20s %s\n", tests[i].name, n_fail == before ? "ok" : "FAILED");
	}
	printf("%d passed, %d failed\n", n_pass, n_fail);
	return n_fail != 0;
}
