/*
 * net.c - Ethernet II / IPv4 / UDP and ARP, parsed in place and built in
 * place (RFC 894, RFC 791 §3.1, RFC 768, RFC 826, checksum per RFC 1071).
 *
 * The parser trusts nothing in the frame: each header is bounds-checked
 * against the frame before it is read, the IPv4 header checksum must verify,
 * and lengths come from the IP total length (a short frame arrives padded to
 * 60 bytes, so the frame length overstates the datagram). Fragments are
 * refused: market data and orders here always fit one datagram.
 *
 * The builder writes the 42 bytes of headers in front of a payload the
 * caller has already placed at frame + NET_UDP_HDRS, and pads to the
 * Ethernet minimum. No VLAN tags, no IP options on either side.
 */
#include "net.h"

/* Ethernet II header (RFC 894): dst[6] @0, src[6] @6, ethertype u16 @12. */
#define ETH_OFF_DST 0
#define ETH_OFF_SRC 6
#define ETH_OFF_TYPE 12
#define ETH_ALEN 6

/* IPv4 header (RFC 791 §3.1), offsets from its first byte. */
#define IP_OFF_VER_IHL 0
#define IP_OFF_TOS 1
#define IP_OFF_TOTLEN 2
#define IP_OFF_ID 4
#define IP_OFF_FRAG 6
#define   IP_FLAG_DF 0x4000
#define   IP_FLAG_MF 0x2000
#define   IP_FRAG_OFFSET_MASK 0x1FFF
#define IP_OFF_TTL 8
#define IP_OFF_PROTO 9
#define IP_OFF_CSUM 10
#define IP_OFF_SRC 12
#define IP_OFF_DST 16
#define IP_VER_IHL_NOOPT 0x45  /* version 4, 5 words, no options */
#define IP_TTL_DEFAULT 64

/* UDP header (RFC 768). */
#define UDP_OFF_SPORT 0
#define UDP_OFF_DPORT 2
#define UDP_OFF_LEN 4
#define UDP_OFF_CSUM 6
#define UDP_MAX_PAYLOAD (0xFFFF - NET_IP_HDR - NET_UDP_HDR)

/* ARP for Ethernet/IPv4 (RFC 826), offsets from its first byte. */
#define ARP_OFF_HTYPE 0
#define ARP_OFF_PTYPE 2
#define ARP_OFF_HLEN 4
#define ARP_OFF_PLEN 5
#define ARP_OFF_OPER 6
#define ARP_OFF_SHA 8
#define ARP_OFF_SPA 14
#define ARP_OFF_THA 18
#define ARP_OFF_TPA 24
#define ARP_HTYPE_ETHERNET 1
#define ARP_OPER_REQUEST 1
#define ARP_OPER_REPLY 2

uint16_t net_ethertype(const uint8_t *frame, size_t len)
{
	if (len < NET_ETH_HDR)
		return 0;
	return rd_be16(frame + ETH_OFF_TYPE);
}

/* RFC 1071 ones' complement sum of buf[0..len), not yet folded, taken in
 * native (little-endian) order over 32-bit words: §2(B) makes the sum
 * independent of byte order (swap the folded result to get the big-endian
 * one) and §2(C) lets it run over wider words with the carries folded in at
 * the end. A 20-byte IPv4 header is five loads and adds. An odd last byte
 * is the high byte of a zero-padded word: the low byte in native order. */
static inline uint64_t net_csum_sum(const uint8_t *buf, size_t len)
{
	uint64_t sum = 0;
	size_t i = 0;
#pragma GCC unroll 5
	for (; i + 4 <= len; i += 4) {
		uint32_t w;
		core_memcpy(&w, buf + i, 4);
		sum += w;
	}
	if (i + 2 <= len) {
		sum += (uint32_t)buf[i] | (uint32_t)buf[i + 1] << 8;
		i += 2;
	}
	if (i < len)
		sum += buf[i];
	return sum;
}

/* Fold a sum down to 16 bits, each carry added back in (end-around carry):
 * every step keeps the value modulo 0xFFFF, which is all that counts. */
static inline uint16_t net_csum_fold(uint64_t sum)
{
	uint32_t s = (uint32_t)sum, hi = (uint32_t)(sum >> 32);

	s += hi;
	s += s < hi;                   /* the carry out of bit 31 */
	s = (s & 0xFFFF) + (s >> 16);  /* <= 0x1FFFE */
	s = (s & 0xFFFF) + (s >> 16);  /* <= 0xFFFF */
	return (uint16_t)s;
}

uint16_t net_ip_checksum(const uint8_t *hdr, size_t len)
{
	return (uint16_t)~__builtin_bswap16(net_csum_fold(net_csum_sum(hdr, len)));
}

/* Does the IPv4 header at ip[0..ihl) carry a correct checksum? Then its
 * folded sum is all ones, in either byte order. */
static inline bool net_ipv4_csum_ok(const uint8_t *ip, size_t ihl)
{
	return net_csum_fold(net_csum_sum(ip, ihl)) == 0xFFFF;
}

/* Validate the IPv4 header at ip[0..avail) (RFC 791 §3.1) and return its
 * length in *ihl and the datagram's in *tot. */
static int net_check_ipv4(const uint8_t *ip, size_t avail, size_t *ihl, size_t *tot)
{
	if (avail < NET_IP_HDR)
		return NET_E_SHORT;
	if (CORE_LIKELY(ip[IP_OFF_VER_IHL] == IP_VER_IHL_NOOPT)) {
		/* Version 4 without options, as market data comes: one
		 * compare, and a constant length the checksum unrolls on. */
		*ihl = NET_IP_HDR;
		if (!net_ipv4_csum_ok(ip, NET_IP_HDR))
			return NET_E_IP_CSUM;
	} else {
		if ((ip[IP_OFF_VER_IHL] >> 4) != 4)
			return NET_E_IP_VERSION;
		*ihl = (size_t)(ip[IP_OFF_VER_IHL] & 0x0F) * 4;
		if (*ihl < NET_IP_HDR || *ihl > avail)
			return NET_E_IP_HDR;
		if (!net_ipv4_csum_ok(ip, *ihl))
			return NET_E_IP_CSUM;
	}
	*tot = rd_be16(ip + IP_OFF_TOTLEN);
	if (*tot < *ihl || *tot > avail)
		return NET_E_IP_LEN;
	if (rd_be16(ip + IP_OFF_FRAG) & (IP_FLAG_MF | IP_FRAG_OFFSET_MASK))
		return NET_E_FRAGMENT;
	if (ip[IP_OFF_PROTO] != NET_IPPROTO_UDP)
		return NET_E_NOT_UDP;
	return NET_OK;
}

/* The UDP header must fit in what IP says it carries, and the UDP length
 * must cover its own header and no more than that (RFC 768). */
static int net_check_udp(const uint8_t *udp, size_t ip_payload, uint16_t *ulen)
{
	if (ip_payload < NET_UDP_HDR)
		return NET_E_UDP_LEN;
	*ulen = rd_be16(udp + UDP_OFF_LEN);
	if (*ulen < NET_UDP_HDR || *ulen > ip_payload)
		return NET_E_UDP_LEN;
	return NET_OK;
}

int net_parse_udp_checked(const uint8_t *frame, size_t len, struct net_udp_view *v)
{
	if (len < NET_ETH_HDR)
		return NET_E_SHORT;
	if (net_ethertype(frame, len) != NET_ETHERTYPE_IPV4)
		return NET_E_ETHERTYPE;
	const uint8_t *ip = frame + NET_ETH_HDR;
	size_t ihl, tot;
	uint16_t ulen;
	int rc = net_check_ipv4(ip, len - NET_ETH_HDR, &ihl, &tot);
	if (rc == NET_OK)
		rc = net_check_udp(ip + ihl, tot - ihl, &ulen);
	if (rc != NET_OK)
		return rc;
	const uint8_t *udp = ip + ihl;
	v->eth_dst = frame + ETH_OFF_DST;
	v->eth_src = frame + ETH_OFF_SRC;
	v->ip_src = rd_be32(ip + IP_OFF_SRC);
	v->ip_dst = rd_be32(ip + IP_OFF_DST);
	v->src_port = rd_be16(udp + UDP_OFF_SPORT);
	v->dst_port = rd_be16(udp + UDP_OFF_DPORT);
	v->payload = udp + NET_UDP_HDR;
	v->payload_len = (uint16_t)(ulen - NET_UDP_HDR);
	return NET_OK;
}

int net_parse_udp(const uint8_t *frame, size_t len, struct net_udp_view *v)
{
	if (CORE_LIKELY(net_udp_fast(frame, len, v)))
		return NET_OK;
	return net_parse_udp_checked(frame, len, v);
}

static void net_put_eth(uint8_t *frame, const uint8_t dst[6], const uint8_t src[6],
			uint16_t type)
{
	core_memcpy(frame + ETH_OFF_DST, dst, ETH_ALEN);
	core_memcpy(frame + ETH_OFF_SRC, src, ETH_ALEN);
	wr_be16(frame + ETH_OFF_TYPE, type);
}

/* RFC 791 §3.1 header without options; the checksum is computed over the
 * header with its checksum field zero. */
static void net_put_ipv4(uint8_t *ip, uint32_t src, uint32_t dst,
			 uint16_t total_len, uint16_t id)
{
	ip[IP_OFF_VER_IHL] = IP_VER_IHL_NOOPT;
	ip[IP_OFF_TOS] = 0;
	wr_be16(ip + IP_OFF_TOTLEN, total_len);
	wr_be16(ip + IP_OFF_ID, id);
	wr_be16(ip + IP_OFF_FRAG, IP_FLAG_DF);
	ip[IP_OFF_TTL] = IP_TTL_DEFAULT;
	ip[IP_OFF_PROTO] = NET_IPPROTO_UDP;
	wr_be16(ip + IP_OFF_CSUM, 0);
	wr_be32(ip + IP_OFF_SRC, src);
	wr_be32(ip + IP_OFF_DST, dst);
	wr_be16(ip + IP_OFF_CSUM, net_ip_checksum(ip, NET_IP_HDR));
}

/* Zero frame[used..NET_ETH_MIN_FRAME) and return the padded length. */
static size_t net_pad(uint8_t *frame, size_t used)
{
	if (used >= NET_ETH_MIN_FRAME)
		return used;
	core_memset(frame + used, 0, NET_ETH_MIN_FRAME - used);
	return NET_ETH_MIN_FRAME;
}

size_t net_build_udp(uint8_t *frame, size_t cap, const struct net_endpoint *src,
		     const struct net_endpoint *dst, uint16_t payload_len, uint16_t ip_id)
{
	size_t used = NET_UDP_HDRS + (size_t)payload_len;
	size_t need = used < NET_ETH_MIN_FRAME ? NET_ETH_MIN_FRAME : used;
	if (payload_len > UDP_MAX_PAYLOAD || cap < need)
		return 0;
	net_put_eth(frame, dst->mac, src->mac, NET_ETHERTYPE_IPV4);
	uint8_t *ip = frame + NET_ETH_HDR;
	net_put_ipv4(ip, src->ip, dst->ip,
		     (uint16_t)(NET_IP_HDR + NET_UDP_HDR + payload_len), ip_id);
	/* UDP checksum 0: "no checksum", allowed over IPv4 (RFC 768). */
	uint8_t *udp = ip + NET_IP_HDR;
	wr_be16(udp + UDP_OFF_SPORT, src->port);
	wr_be16(udp + UDP_OFF_DPORT, dst->port);
	wr_be16(udp + UDP_OFF_LEN, (uint16_t)(NET_UDP_HDR + payload_len));
	wr_be16(udp + UDP_OFF_CSUM, 0);
	return net_pad(frame, used);
}

/* Only Ethernet/IPv4 ARP with a request or reply opcode (RFC 826
 * "Packet format"); anything else is not for us. */
int net_parse_arp(const uint8_t *frame, size_t len, struct net_arp *a)
{
	if (len < NET_ETH_HDR)
		return NET_E_SHORT;
	if (net_ethertype(frame, len) != NET_ETHERTYPE_ARP)
		return NET_E_ETHERTYPE;
	if (len < NET_ETH_HDR + NET_ARP_LEN)
		return NET_E_SHORT;
	const uint8_t *p = frame + NET_ETH_HDR;
	uint16_t oper = rd_be16(p + ARP_OFF_OPER);
	if (rd_be16(p + ARP_OFF_HTYPE) != ARP_HTYPE_ETHERNET ||
	    rd_be16(p + ARP_OFF_PTYPE) != NET_ETHERTYPE_IPV4 ||
	    p[ARP_OFF_HLEN] != ETH_ALEN || p[ARP_OFF_PLEN] != 4 ||
	    (oper != ARP_OPER_REQUEST && oper != ARP_OPER_REPLY))
		return NET_E_ARP;
	a->oper = oper;
	core_memcpy(a->sha, p + ARP_OFF_SHA, ETH_ALEN);
	a->spa = rd_be32(p + ARP_OFF_SPA);
	core_memcpy(a->tha, p + ARP_OFF_THA, ETH_ALEN);
	a->tpa = rd_be32(p + ARP_OFF_TPA);
	return NET_OK;
}

/* A request is broadcast and leaves the target hardware address zero (it is
 * what is being asked; `tha` is not read and may be NULL); a reply goes to
 * `tha`. Opcodes other than request and reply are refused (0). */
size_t net_build_arp(uint8_t *frame, size_t cap, uint16_t oper,
		     const uint8_t sha[6], uint32_t spa, const uint8_t tha[6], uint32_t tpa)
{
	static const uint8_t broadcast[ETH_ALEN] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
	bool request = oper == ARP_OPER_REQUEST;
	if (cap < NET_ETH_MIN_FRAME || (!request && oper != ARP_OPER_REPLY))
		return 0;
	net_put_eth(frame, request ? broadcast : tha, sha, NET_ETHERTYPE_ARP);
	uint8_t *p = frame + NET_ETH_HDR;
	wr_be16(p + ARP_OFF_HTYPE, ARP_HTYPE_ETHERNET);
	wr_be16(p + ARP_OFF_PTYPE, NET_ETHERTYPE_IPV4);
	p[ARP_OFF_HLEN] = ETH_ALEN;
	p[ARP_OFF_PLEN] = 4;
	wr_be16(p + ARP_OFF_OPER, oper);
	core_memcpy(p + ARP_OFF_SHA, sha, ETH_ALEN);
	wr_be32(p + ARP_OFF_SPA, spa);
	if (request)
		core_memset(p + ARP_OFF_THA, 0, ETH_ALEN);
	else
		core_memcpy(p + ARP_OFF_THA, tha, ETH_ALEN);
	wr_be32(p + ARP_OFF_TPA, tpa);
	return net_pad(frame, NET_ETH_HDR + NET_ARP_LEN);
}
