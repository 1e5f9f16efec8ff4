/*
 * fuzz_seeds.c - writes the small seed corpora of the two fuzz harnesses.
 *
 *   fuzz_seeds OUTDIR ITCH_FILE
 *
 * writes OUTDIR/engine/seed-* (input layout of fuzz_engine.c: a selector
 * byte, then u16-length-prefixed MoldUDP64 datagrams) and OUTDIR/net/seed-*
 * (Ethernet frames and ITCH file fragments for fuzz_net.c): hand-made seeds
 * and windows of ITCH_FILE; tests/fuzz/Makefile passes the repository's
 * datasets/ritch/ex20101224.TEST_ITCH_50. The seeds are generated at build
 * time, never committed, and built with the core's own framing and encoders
 * (itch_frame_next, mold_pack_*, net_build_*), so no wire layout is restated
 * here except the few ITCH messages of the hand-made scenario.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "itch.h"
#include "moldudp64.h"
#include "net.h"

#define SEED_MAX 65536
#define WINDOWS 8            /* seeds cut from the sample file */
#define WINDOW_MSGS 160     /* the last window; the others take 48 */
#define PER_PACKET 12

static const uint8_t session_a[MOLD_SESSION_LEN] = "SEEDSESS01";
static const uint8_t session_b[MOLD_SESSION_LEN] = "SEEDSESS02";

/* A fuzz_engine input under construction. */
struct seed {
	uint8_t buf[SEED_MAX];
	size_t len;
};

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "fuzz_seeds: %s %s: %s\n", what, arg, strerror(errno));
	exit(1);
}

static void write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0)
		die("cannot write", path);
}

static void seed_datagram(struct seed *s, const uint8_t *dg, size_t n)
{
	if (s->len + 2 + n > sizeof s->buf)
		return;
	s->buf[s->len] = (uint8_t)(n >> 8);
	s->buf[s->len + 1] = (uint8_t)n;
	memcpy(s->buf + s->len + 2, dg, n);
	s->len += 2 + n;
}

/* ------------------------------------------------ hand-made ITCH messages */

/* Common header, ITCH 5.0 §4: type @0, locate @1, tracking @3, ts u48 @5. */
static size_t itch_hdr(uint8_t *b, char type, uint16_t locate, uint64_t ts)
{
	size_t n = itch_msg_len((uint8_t)type);
	memset(b, ' ', n);
	b[0] = (uint8_t)type;
	wr_be16(b + 1, locate);
	wr_be16(b + 3, 0);
	wr_be48(b + 5, ts);
	return n;
}

/* §4.2.1 R: stock @11. */
static size_t msg_directory(uint8_t *b, uint16_t loc, const char *stock)
{
	size_t n = itch_hdr(b, 'R', loc, 1000);
	memcpy(b + 11, stock, 8);
	return n;
}

/* §4.3.1 A: ref @11, side @19, shares @20, stock @24, price @32. */
static size_t msg_add(uint8_t *b, uint16_t loc, uint64_t ts, uint64_t ref, char side,
		      uint32_t shares, const char *stock, uint32_t price)
{
	size_t n = itch_hdr(b, 'A', loc, ts);
	wr_be64(b + 11, ref);
	b[19] = (uint8_t)side;
	wr_be32(b + 20, shares);
	memcpy(b + 24, stock, 8);
	wr_be32(b + 32, price);
	return n;
}

/* §4.4.1 E / §4.4.3 X: ref @11, shares @19 (E: match @23). */
static size_t msg_ref_shares(uint8_t *b, char type, uint16_t loc, uint64_t ts, uint64_t ref,
			     uint32_t shares)
{
	size_t n = itch_hdr(b, type, loc, ts);
	wr_be64(b + 11, ref);
	wr_be32(b + 19, shares);
	if (type == 'E' || type == 'C')
		wr_be64(b + 23, ref * 7);
	if (type == 'C') {  /* §4.4.2: printable @31, price @32 */
		b[31] = 'Y';
		wr_be32(b + 32, 10050);
	}
	return n;
}

/* §4.4.5 U: ref @11, new ref @19, shares @27, price @31. */
static size_t msg_replace(uint8_t *b, uint16_t loc, uint64_t ts, uint64_t ref, uint64_t nref,
			  uint32_t shares, uint32_t price)
{
	size_t n = itch_hdr(b, 'U', loc, ts);
	wr_be64(b + 11, ref);
	wr_be64(b + 19, nref);
	wr_be32(b + 27, shares);
	wr_be32(b + 31, price);
	return n;
}

/* §4.4.4 D: ref @11. */
static size_t msg_delete(uint8_t *b, uint16_t loc, uint64_t ts, uint64_t ref)
{
	size_t n = itch_hdr(b, 'D', loc, ts);
	wr_be64(b + 11, ref);
	return n;
}

/* A day in two books that makes the strategy fire (imbalance, then a crossed
 * book) and touches every book event, as a list of messages. */
static size_t scenario(uint8_t msgs[][64], uint16_t *lens)
{
	size_t k = 0;
	uint64_t t = 34200000000000ull;  /* 09:30 */
#define ADD(x) (lens[k] = (uint16_t)(x), k++)
	ADD(msg_directory(msgs[k], 1, "AAPL    "));
	ADD(msg_directory(msgs[k], 2, "MSFT    "));
	ADD(msg_add(msgs[k], 1, t += 1000, 1, 'B', 100, "AAPL    ", 10000));
	ADD(msg_add(msgs[k], 1, t += 1000, 2, 'S', 100, "AAPL    ", 10100));
	ADD(msg_add(msgs[k], 1, t += 1000, 3, 'B', 400, "AAPL    ", 10000));
	ADD(msg_add(msgs[k], 1, t += 1000, 4, 'S', 500, "AAPL    ", 9900));
	ADD(msg_add(msgs[k], 2, t += 1000, 5, 'B', 200, "MSFT    ", 20000));
	ADD(msg_add(msgs[k], 2, t += 1000, 6, 'S', 100, "MSFT    ", 20010));
	ADD(msg_ref_shares(msgs[k], 'E', 1, t += 1000, 2, 50));
	ADD(msg_ref_shares(msgs[k], 'C', 1, t += 1000, 1, 20));
	ADD(msg_ref_shares(msgs[k], 'X', 1, t += 1000, 3, 10));
	ADD(msg_replace(msgs[k], 1, t += 1000, 3, 7, 600, 10010));
	ADD(msg_delete(msgs[k], 1, t += 1000, 4));
	ADD(msg_ref_shares(msgs[k], 'E', 2, t += 1000, 6, 100));
	ADD(msg_add(msgs[k], 2, t += 2000000000ull, 8, 'S', 50, "MSFT    ", 19990));
	ADD(msg_delete(msgs[k], 2, t += 1000, 5));
#undef ADD
	return k;
}

/* Pack msgs[first..first+n) into one datagram; returns its length. */
static size_t pack(uint8_t *dg, size_t cap, const uint8_t *sess, uint64_t seq,
		   uint8_t msgs[][64], const uint16_t *lens, size_t first, size_t n)
{
	struct mold_writer w;
	mold_pack_begin(&w, dg, cap, sess, seq);
	for (size_t i = first; i < first + n; i++)
		mold_pack_add(&w, msgs[i], lens[i]);
	return mold_pack_end(&w, false);
}

/* ---------------------------------------------------------- engine seeds */

/* The scenario in packets of `per` messages, then sequencing corner cases. */
static void engine_scenario(const char *dir, const char *name, uint8_t sel, size_t per)
{
	static uint8_t msgs[32][64];
	uint16_t lens[32];
	static struct seed s;
	uint8_t dg[2048];
	size_t n = scenario(msgs, lens), len;

	s.len = 0;
	s.buf[s.len++] = sel;
	for (size_t i = 0; i < n; i += per) {
		size_t c = n - i < per ? n - i : per;
		len = pack(dg, sizeof dg, session_a, 1 + i, msgs, lens, i, c);
		seed_datagram(&s, dg, len);
	}
	len = pack(dg, sizeof dg, session_a, 1, msgs, lens, 0, 2);        /* duplicate */
	seed_datagram(&s, dg, len);
	len = pack(dg, sizeof dg, session_a, n - 1, msgs, lens, 2, 3);    /* overlap */
	seed_datagram(&s, dg, len);
	len = pack(dg, sizeof dg, session_a, n + 10, msgs, lens, 0, 0);   /* heartbeat gap */
	seed_datagram(&s, dg, len);
	len = pack(dg, sizeof dg, session_b, 5, msgs, lens, 2, 4);        /* 2nd session */
	seed_datagram(&s, dg, len);
	seed_datagram(&s, dg, len - 3);                                    /* truncated */
	struct mold_writer w;
	mold_pack_begin(&w, dg, sizeof dg, session_a, n + 11);
	len = mold_pack_end(&w, true);                                     /* end */
	seed_datagram(&s, dg, len);
	write_file(dir, name, s.buf, s.len);
}

/* Windows of the sample file, each as fresh session of a few packets. */
static void engine_windows(const char *dir, const uint8_t *file, size_t flen)
{
	static uint8_t msgs[WINDOW_MSGS][64];
	static struct seed s;
	uint16_t lens[WINDOW_MSGS];
	uint8_t dg[4096];
	struct itch_frame f;
	size_t off = 0, total = 0;

	for (int w = 0; w < WINDOWS; w++) {
		size_t k = 0, want = w == WINDOWS - 1 ? WINDOW_MSGS : 48;
		while (k < want && itch_frame_next(file, flen, &off, &f) == ITCH_FRAME_OK) {
			if (f.len > sizeof msgs[0] || total++ % (size_t)(1 + w) != 0)
				continue;  /* later windows sample sparser stretches */
			memcpy(msgs[k], f.msg, f.len);
			lens[k++] = f.len;
		}
		s.len = 0;
		s.buf[s.len++] = (uint8_t)(w * 0x23 & ~0x04);  /* vary config, kill off */
		for (size_t i = 0; i < k; i += PER_PACKET) {
			size_t c = k - i < PER_PACKET ? k - i : PER_PACKET;
			seed_datagram(&s, dg, pack(dg, sizeof dg, session_a, 1 + i, msgs, lens, i, c));
		}
		char name[32];
		snprintf(name, sizeof name, "seed-window-%d", w);
		write_file(dir, name, s.buf, s.len);
	}
}

/* ------------------------------------------------------------- net seeds */

static void net_seeds(const char *dir, const uint8_t *file, size_t flen)
{
	/* file may be NULL: then no ITCH file seeds */
	static uint8_t msgs[32][64];
	uint16_t lens[32];
	static uint8_t frame[NET_UDP_HDRS + 2048];
	struct net_endpoint src = { {0x02, 0, 0, 0, 0, 1}, 26400, 0x0A000001 };
	struct net_endpoint dst = { {0x01, 0, 0x5E, 0, 0, 1}, 26400, 0xE0000101 };
	size_t n = scenario(msgs, lens);

	size_t dl = pack(frame + NET_UDP_HDRS, 2048, session_a, 1, msgs, lens, 0, n);
	write_file(dir, "seed-udp-mold", frame, net_build_udp(frame, sizeof frame, &src, &dst,
							     (uint16_t)dl, 1));
	dl = pack(frame + NET_UDP_HDRS, 2048, session_a, 1, msgs, lens, 0, 0);
	write_file(dir, "seed-udp-heartbeat", frame, net_build_udp(frame, sizeof frame, &src,
								  &dst, (uint16_t)dl, 2));
	write_file(dir, "seed-arp-request", frame,
		   net_build_arp(frame, sizeof frame, 1, src.mac, src.ip, NULL, dst.ip));
	write_file(dir, "seed-arp-reply", frame,
		   net_build_arp(frame, sizeof frame, 2, src.mac, src.ip, dst.mac, dst.ip));
	if (file == NULL)
		return;
	/* ITCH file fragments: the sample's zero prefixes, and real ones. */
	write_file(dir, "seed-itch-zero-prefix", file, flen < 1024 ? flen : 1024);
	size_t off = 0, o = 0;
	struct itch_frame f;
	for (int i = 0; i < 24 && itch_frame_next(file, flen, &off, &f) == ITCH_FRAME_OK; i++) {
		wr_be16(frame + o, f.len);
		memcpy(frame + o + 2, f.msg, f.len);
		o += 2 + (size_t)f.len;
	}
	write_file(dir, "seed-itch-prefixed", frame, o);
}

static uint8_t *load(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		die("cannot open", path);
	static uint8_t buf[4 << 20];
	*len = fread(buf, 1, sizeof buf, f);
	fclose(f);
	return buf;
}

static void mkdir_p(const char *path)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		die("cannot create", path);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: fuzz_seeds OUTDIR ITCH_FILE\n");
		return 2;
	}
	char eng[4096], net[4096];
	size_t flen = 0;
	const uint8_t *file = load(argv[2], &flen);

	snprintf(eng, sizeof eng, "%s/engine", argv[1]);
	snprintf(net, sizeof net, "%s/net", argv[1]);
	mkdir_p(argv[1]);
	mkdir_p(eng);
	mkdir_p(net);
	engine_scenario(eng, "seed-scenario-cross", 0x01, 4);
	engine_scenario(eng, "seed-scenario-2sym-rate", 0x0B, 16);
	engine_scenario(eng, "seed-scenario-kill", 0x05, 3);
	engine_scenario(eng, "seed-scenario-size", 0x41, 5);
	engine_scenario(eng, "seed-scenario-imbalance3", 0x90, 2);
	if (file != NULL)
		engine_windows(eng, file, flen);
	net_seeds(net, file, flen);
	return 0;
}
