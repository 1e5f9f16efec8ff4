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

/* Parse an Ethernet II / IPv4 / UDP frame. */
int net_parse_udp(const uint8_t *frame, size_t len, struct net_udp_view *v);

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
