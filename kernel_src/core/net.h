/*
 * net.h - Ethernet II, IPv4, UDP and ARP: just what a market-data receiver
 * and an order sender need (RFC 791, 768, 826).
 *
 * Parsing validates every header it passes (lengths, IPv4 version, header
 * checksum, fragments) and hands back pointers into the frame: nothing is
 * copied. Building writes headers in front of a payload that the caller has
 * already placed at frame + NET_UDP_HDRS, so an order is built in place in a
 * TX buffer. IPv4 addresses are host-order uint32.
 */
#ifndef CORE_NET_H
#define CORE_NET_H

#include "platform.h"

#define NET_ETH_HDR 14
#define NET_IP_HDR 20
#define NET_UDP_HDR 8
#define NET_UDP_HDRS (NET_ETH_HDR + NET_IP_HDR + NET_UDP_HDR)  /* 42 */
#define NET_ARP_LEN 28
#define NET_ETH_MIN_FRAME 60  /* without FCS */
#define NET_ETHERTYPE_IPV4 0x0800
#define NET_ETHERTYPE_ARP 0x0806
#define NET_IPPROTO_UDP 17

enum net_status {
	NET_OK = 0,
	NET_E_SHORT = -1,       /* frame shorter than its headers */
	NET_E_ETHERTYPE = -2,   /* not IPv4 (or not ARP for net_parse_arp) */
	NET_E_IP_VERSION = -3,
	NET_E_IP_HDR = -4,      /* IHL < 5 or header beyond the frame */
	NET_E_IP_CSUM = -5,
	NET_E_IP_LEN = -6,      /* total length beyond the frame or < header */
	NET_E_FRAGMENT = -7,
	NET_E_NOT_UDP = -8,
	NET_E_UDP_LEN = -9,     /* UDP length inconsistent with IP length */
	NET_E_ARP = -10,        /* not an Ethernet/IPv4 ARP packet */
};

struct net_endpoint {
	uint8_t mac[6];
	uint16_t port;
	uint32_t ip;
};

struct net_udp_view {
	const uint8_t *eth_dst;
	const uint8_t *eth_src;
	uint32_t ip_src;
	uint32_t ip_dst;
	uint16_t src_port;
	uint16_t dst_port;
	const uint8_t *payload;
	uint16_t payload_len;
};

struct net_arp {
	uint16_t oper;          /* 1 request, 2 reply */
	uint8_t sha[6];         /* sender hardware address */
	uint32_t spa;           /* sender protocol address */
	uint8_t tha[6];
	uint32_t tpa;
};

/* Ethertype of a frame, 0 when shorter than an Ethernet header. */
uint16_t net_ethertype(const uint8_t *frame, size_t len);

/* RFC 1071 ones' complement sum folded and inverted; over a header whose
 * checksum field holds the transmitted value it yields 0. */
uint16_t net_ip_checksum(const uint8_t *hdr, size_t len);

/* Parse an Ethernet II / IPv4 / UDP frame: NET_OK with the view filled
 * in, or the first check it fails (enum net_status). net_udp_fast below,
 * then net_parse_udp_checked for what it does not take. */
int net_parse_udp(const uint8_t *frame, size_t len, struct net_udp_view *v);

/* The same, every check one at a time in the order of enum net_status, so a
 * refused frame gets its exact reason. */
int net_parse_udp_checked(const uint8_t *frame, size_t len, struct net_udp_view *v);

/* The common case of net_parse_udp, to inline in a hot loop: true with the
 * view filled in for a frame market data comes in (IPv4 without options,
 * UDP, not a fragment, every check passed); false for every other frame,
 * which net_parse_udp then refuses with its reason or accepts (ARP, IP
 * options). A handful of combined checks, each implying the corresponding
 * ones of net_parse_udp_checked:
 *   len >= 42, then one load of bytes 12..15: ethertype 0x0800 and
 *     version/IHL 0x45 (the TOS byte is free);
 *   28 <= IP total length <= len - 14 (the datagram fits the frame and
 *     holds a UDP header), one unsigned compare;
 *   one load of bytes 20..23: no MF flag and fragment offset 0 (DF is
 *     free), protocol 17 (the TTL is free);
 *   8 <= UDP length <= IP total length - 20, one unsigned compare;
 *   the header checksum: the ones' complement sum of the header (RFC 1071
 *     §2(B), (C): over two 64-bit words and one 32-bit word, each carry
 *     added back in) folds to 0xFFFF, i.e. it is a non-zero multiple of
 *     0xFFFF (2^16 = 1 modulo 0xFFFF, and so is 2^64: the end-around
 *     carries and the folding keep the residue); the 0x45 byte makes it
 *     non-zero, and the divisibility test is a multiply and a compare.
 * tests/c/test_codecs.c checks it against net_parse_udp_checked on
 * mutated frames. */
/* 0xFFFF's inverse modulo 2^64: x is a multiple of 0xFFFF exactly when
 * x * NET_INV_FFFF (mod 2^64) <= (2^64 - 1) / 0xFFFF (odd divisor; Granlund
 * and Montgomery, "Division by invariant integers using multiplication",
 * §9), one multiply and one compare. */
#define NET_INV_FFFF 0xFFFEFFFEFFFEFFFFull
CORE_STATIC_ASSERT(0xFFFFull * NET_INV_FFFF == 1, "NET_INV_FFFF * 0xFFFF = 1 (mod 2^64)");

static inline uint32_t net_ld32(const uint8_t *p)
{
	uint32_t w;
	__builtin_memcpy(&w, p, 4);
	return w;
}

static CORE_ALWAYS_INLINE bool net_udp_fast(const uint8_t *frame, size_t len,
					    struct net_udp_view *v)
{
	const uint8_t *ip = frame + NET_ETH_HDR, *udp = ip + NET_IP_HDR;

	if (__builtin_expect(len < NET_UDP_HDRS, 0))
		return false;
	size_t tot = rd_be16(ip + 2), ulen = rd_be16(udp + 4);
	uint64_t a, b, sum;
	__builtin_memcpy(&a, ip, 8);
	__builtin_memcpy(&b, ip + 8, 8);
	sum = a + b;
	sum += sum < a;                       /* end-around carry */
	a = sum;
	sum += net_ld32(ip + 16);
	sum += sum < a;
	if (__builtin_expect((net_ld32(frame + 12) & 0x00FFFFFFu) != 0x00450008u ||
			     tot - (NET_IP_HDR + NET_UDP_HDR) > len - NET_UDP_HDRS ||
			     (net_ld32(ip + 6) & 0xFF00FF3Fu) != ((uint32_t)NET_IPPROTO_UDP << 24) ||
			     ulen - NET_UDP_HDR > tot - (NET_IP_HDR + NET_UDP_HDR) ||
			     sum * NET_INV_FFFF > UINT64_MAX / 0xFFFFu, 0))
		return false;
	v->eth_dst = frame;
	v->eth_src = frame + 6;
	v->ip_src = rd_be32(ip + 12);
	v->ip_dst = rd_be32(ip + 16);
	v->src_port = rd_be16(udp);
	v->dst_port = rd_be16(udp + 2);
	v->payload = udp + NET_UDP_HDR;
	v->payload_len = (uint16_t)(ulen - NET_UDP_HDR);
	return true;
}

/* Where a datagram goes, IPv4 destination address and UDP destination
 * port, as one 64-bit word of the frame: bytes 30..37 (destination
 * address, source port, destination port) in native order with the source
 * port masked out, so a hot loop tells "market data for us" with one load
 * and one compare against net_udp_dst_key_of(ip_self, md_port). Only for a
 * frame net_udp_fast (or net_parse_udp) took: they checked the 42 bytes. */
#define NET_UDP_DST_KEY_MASK 0xFFFF0000FFFFFFFFull

static inline uint64_t net_udp_dst_key(const uint8_t *frame)
{
	uint64_t w;
	__builtin_memcpy(&w, frame + NET_ETH_HDR + 16, 8);
	return w & NET_UDP_DST_KEY_MASK;
}

/* The key of a frame to ip:port (host order), as net_udp_dst_key reads it. */
static inline uint64_t net_udp_dst_key_of(uint32_t ip, uint16_t port)
{
	uint8_t b[8] = {0};
	uint64_t w;

	wr_be32(b, ip);
	wr_be16(b + 6, port);
	__builtin_memcpy(&w, b, 8);
	return w;
}

/* Write Ethernet, IPv4 (with checksum, DF, TTL 64) and UDP (checksum 0,
 * allowed for IPv4) headers into frame[0..42) for a payload of payload_len
 * bytes that is already at frame + NET_UDP_HDRS. Returns the frame length,
 * padded with zeros to NET_ETH_MIN_FRAME, or 0 when cap is too small. */
size_t net_build_udp(uint8_t *frame, size_t cap, const struct net_endpoint *src,
		     const struct net_endpoint *dst, uint16_t payload_len, uint16_t ip_id);

int net_parse_arp(const uint8_t *frame, size_t len, struct net_arp *a);

/* Build an ARP frame (oper 1 request, 2 reply) from (sha, spa) to (tha, tpa);
 * a request goes to the broadcast address. Returns the frame length (60) or
 * 0 when cap is too small. */
size_t net_build_arp(uint8_t *frame, size_t cap, uint16_t oper,
		     const uint8_t sha[6], uint32_t spa, const uint8_t tha[6], uint32_t tpa);

#endif
