/*
 * fuzz_net.c - libFuzzer harness for the receive side in front of the
 * engine: raw bytes as an Ethernet frame (net_parse_udp, net_parse_arp) and
 * as an ITCH file (itch_frame_next, itch_decode).
 *
 * The whole input is used three ways, so one corpus serves all of them:
 *  1. an Ethernet frame: a UDP datagram that parses must point inside the
 *     frame, rebuild with net_build_udp into a frame that parses to the same
 *     addresses, ports and payload, and its payload then goes through
 *     mold_parse and every message block through itch_decode;
 *  2. an ARP frame: one that parses must rebuild (net_build_arp) into a frame
 *     that parses to the same fields;
 *  3. an ITCH file: itch_frame_next must advance, keep each frame inside the
 *     buffer and give a length the decoder agrees with.
 * Plus the RFC 1071 property: a header with its checksum filled in sums to 0.
 *
 * Build: make -C tests/fuzz fuzz
 * Run:   build/fuzz/fuzz_net build/fuzz/corpus/net build/fuzz/seeds/net
 */
#include <stdio.h>
#include <string.h>

#include "itch.h"
#include "moldudp64.h"
#include "net.h"

#define FUZZ_CHECK(cond)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "fuzz_net: check failed: %s (%s:%d)\n",  \
				#cond, __FILE__, __LINE__);                     \
			__builtin_trap();                                       \
		}                                                               \
	} while (0)

#define IP_CSUM_OFF 10  /* RFC 791 §3.1: header checksum at byte 10 */

static uint8_t frame_buf[NET_UDP_HDRS + 0xFFFF];

/* Every block of a MoldUDP64 payload lies inside it and decodes safely. */
static void fuzz_mold(const uint8_t *p, size_t len)
{
	struct mold_packet pk;
	struct mold_iter it;
	struct itch_msg m;
	const uint8_t *msg;
	uint16_t mlen;
	uint32_t blocks = 0;

	if (mold_parse(p, len, &pk) != MOLD_OK)
		return;
	FUZZ_CHECK(pk.body == p + MOLD_HDR_LEN && pk.body_len == len - MOLD_HDR_LEN);
	mold_iter_init(&it, &pk);
	while (mold_next(&it, &msg, &mlen)) {
		FUZZ_CHECK(msg >= pk.body && msg + mlen <= p + len);
		if (itch_decode(msg, mlen, &m) == ITCH_OK)
			FUZZ_CHECK(itch_msg_len((uint8_t)m.type) == mlen);
		blocks++;
	}
	/* mold_parse checked that all `count` blocks fit: all must come out. */
	if (pk.count != 0 && pk.count != MOLD_END_OF_SESSION)
		FUZZ_CHECK(blocks == pk.count);
	else
		FUZZ_CHECK(blocks == 0);
}

static void fuzz_udp(const uint8_t *data, size_t size)
{
	struct net_udp_view v, w;

	if (net_parse_udp(data, size, &v) != NET_OK)
		return;
	FUZZ_CHECK(v.payload >= data + NET_UDP_HDRS && v.payload + v.payload_len <= data + size);
	FUZZ_CHECK(v.eth_dst == data && v.eth_src == data + 6);

	struct net_endpoint src = { .port = v.src_port, .ip = v.ip_src };
	struct net_endpoint dst = { .port = v.dst_port, .ip = v.ip_dst };
	memcpy(src.mac, v.eth_src, 6);
	memcpy(dst.mac, v.eth_dst, 6);
	memcpy(frame_buf + NET_UDP_HDRS, v.payload, v.payload_len);
	size_t n = net_build_udp(frame_buf, sizeof frame_buf, &src, &dst, v.payload_len, 7);
	FUZZ_CHECK(n >= NET_UDP_HDRS + (size_t)v.payload_len && n >= NET_ETH_MIN_FRAME);
	FUZZ_CHECK(net_parse_udp(frame_buf, n, &w) == NET_OK);
	FUZZ_CHECK(w.ip_src == v.ip_src && w.ip_dst == v.ip_dst);
	FUZZ_CHECK(w.src_port == v.src_port && w.dst_port == v.dst_port);
	FUZZ_CHECK(w.payload_len == v.payload_len &&
		   memcmp(w.payload, v.payload, v.payload_len) == 0);
	FUZZ_CHECK(memcmp(w.eth_dst, v.eth_dst, 6) == 0 && memcmp(w.eth_src, v.eth_src, 6) == 0);
	fuzz_mold(v.payload, v.payload_len);
}

static void fuzz_arp(const uint8_t *data, size_t size)
{
	struct net_arp a, b;
	uint8_t f[NET_ETH_MIN_FRAME];

	if (net_parse_arp(data, size, &a) != NET_OK)
		return;
	FUZZ_CHECK(a.oper == 1 || a.oper == 2);
	size_t n = net_build_arp(f, sizeof f, a.oper, a.sha, a.spa, a.tha, a.tpa);
	FUZZ_CHECK(n == NET_ETH_MIN_FRAME);
	FUZZ_CHECK(net_parse_arp(f, n, &b) == NET_OK);
	FUZZ_CHECK(b.oper == a.oper && b.spa == a.spa && b.tpa == a.tpa);
	FUZZ_CHECK(memcmp(b.sha, a.sha, 6) == 0);
	/* A request leaves the target hardware address zero on purpose. */
	if (a.oper == 2)
		FUZZ_CHECK(memcmp(b.tha, a.tha, 6) == 0);
}

static void fuzz_itch_file(const uint8_t *data, size_t size)
{
	struct itch_frame f;
	struct itch_msg m;
	size_t off = 0;
	int rc;

	while ((rc = itch_frame_next(data, size, &off, &f)) == ITCH_FRAME_OK) {
		FUZZ_CHECK(f.msg >= data + 2 && f.msg + f.len <= data + size);
		FUZZ_CHECK((size_t)(f.msg - data) + f.len == off);
		FUZZ_CHECK(f.prefix == f.len || (f.prefix == 0 && f.len == itch_msg_len(f.msg[0])));
		if (itch_decode(f.msg, f.len, &m) == ITCH_OK)
			FUZZ_CHECK(m.type == (char)f.msg[0] && itch_msg_len(f.msg[0]) == f.len);
	}
	FUZZ_CHECK(rc == ITCH_FRAME_END || rc == ITCH_FRAME_TRUNCATED || rc == ITCH_FRAME_UNFRAMED);
	FUZZ_CHECK(off <= size && (rc != ITCH_FRAME_END || off == size));
}

static void fuzz_checksum(const uint8_t *data, size_t size)
{
	uint8_t h[60];

	if (size < NET_IP_HDR)
		return;
	size_t n = size < sizeof h ? size & ~(size_t)1 : sizeof h;  /* whole 16-bit words */
	memcpy(h, data, n);
	h[IP_CSUM_OFF] = h[IP_CSUM_OFF + 1] = 0;
	uint16_t c = net_ip_checksum(h, n);
	h[IP_CSUM_OFF] = (uint8_t)(c >> 8);
	h[IP_CSUM_OFF + 1] = (uint8_t)c;
	FUZZ_CHECK(net_ip_checksum(h, n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)net_ethertype(data, size);
	fuzz_udp(data, size);
	fuzz_arp(data, size);
	fuzz_itch_file(data, size);
	fuzz_checksum(data, size);
	return 0;
}
