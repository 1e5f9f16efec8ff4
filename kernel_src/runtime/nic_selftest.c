/*
 * nic_selftest.c - prove the NIC path end to end with ARP.
 *
 * Run when hftos_config.flags has HFTOS_F_NIC_TEST: announce ip_self with a
 * gratuitous ARP, ask for ip_peer with an ARP request, and wait for the
 * reply (QEMU's user-mode network answers for its gateway 10.0.2.2). TX is
 * proven by the frames in a capture (QEMU filter-dump), RX by the reply.
 * Frames are built in place in TX buffers and parsed in place in RX buffers.
 */
#include "runtime/nic_selftest.h"
#include "drivers/nic.h"
#include "arch/x86_64/tsc.h"
#include "runtime/kprintf.h"

#define ETH_HDR_LEN        14
#define ETH_TYPE_ARP       0x0806
#define ARP_LEN            28      /* Ethernet/IPv4 ARP, RFC 826 */
#define ARP_HTYPE_ETHER    1
#define ARP_PTYPE_IPV4     0x0800
#define ARP_OP_REQUEST     1
#define ARP_OP_REPLY       2
#define ARP_OFF_OP         6
#define ARP_OFF_SHA        8
#define ARP_OFF_SPA        14
#define ARP_OFF_THA        18
#define ARP_OFF_TPA        24
#define ARP_FRAME_LEN      (ETH_HDR_LEN + ARP_LEN) /* padded to 60 by TCTL.PSP */
#define REPLY_TIMEOUT_US   3000000 /* QEMU holds RX ~1 s after the RCTL write */
#define TX_TIMEOUT_US      100000

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

#define copy(d, s, n) __builtin_memcpy((d), (s), (n))
#define same(a, b, n) (__builtin_memcmp((a), (b), (n)) == 0)

/* Broadcast ARP request from us: "who has tpa, tell spa". With tpa == spa
 * it is a gratuitous ARP announcing spa. */
static int send_arp_request(struct nic *n, const uint8_t spa[4], const uint8_t tpa[4])
{
	static const uint8_t broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t zero_mac[6] = { 0 };
	uint16_t slot;
	uint8_t *f = nic_tx_buffer(n, &slot);

	if (!f)
		return -1;
	copy(f, broadcast, 6);
	copy(f + 6, nic_mac(n), 6);
	put16(f + 12, ETH_TYPE_ARP);
	uint8_t *a = f + ETH_HDR_LEN;
	put16(a, ARP_HTYPE_ETHER);
	put16(a + 2, ARP_PTYPE_IPV4);
	a[4] = 6;
	a[5] = 4;
	put16(a + ARP_OFF_OP, ARP_OP_REQUEST);
	copy(a + ARP_OFF_SHA, nic_mac(n), 6);
	copy(a + ARP_OFF_SPA, spa, 4);
	copy(a + ARP_OFF_THA, zero_mac, 6);
	copy(a + ARP_OFF_TPA, tpa, 4);
	nic_tx_commit(n, ARP_FRAME_LEN);
	return 0;
}

/* True if the frame is an ARP reply from peer to us. */
static bool is_arp_reply(const uint8_t *f, uint16_t len, const uint8_t peer[4], const uint8_t us[4])
{
	const uint8_t *a = f + ETH_HDR_LEN;

	return len >= ARP_FRAME_LEN && get16(f + 12) == ETH_TYPE_ARP &&
	       get16(a + ARP_OFF_OP) == ARP_OP_REPLY && same(a + ARP_OFF_SPA, peer, 4) &&
	       same(a + ARP_OFF_TPA, us, 4);
}

static int wait_arp_reply(struct nic *n, const uint8_t peer[4], const uint8_t us[4])
{
	uint64_t t0 = tsc_read(), deadline = tsc_deadline(REPLY_TIMEOUT_US);
	int frames = 0;

	while (!tsc_expired(deadline)) {
		uint16_t len;
		const uint8_t *f = nic_rx_poll(n, &len);
		if (!f)
			continue;
		frames++;
		bool hit = is_arp_reply(f, len, peer, us);
		const uint8_t *sha = f + ETH_HDR_LEN + ARP_OFF_SHA;
		if (hit)
			kprintf("nic test: ARP reply after %lu us: %u.%u.%u.%u is at "
				"%02x:%02x:%02x:%02x:%02x:%02x\n",
				(tsc_read() - t0) / tsc_us_to_cycles(1), peer[0], peer[1], peer[2],
				peer[3], sha[0], sha[1], sha[2], sha[3], sha[4], sha[5]);
		nic_rx_release(n);
		if (hit)
			return 0;
	}
	kprintf("nic test: no ARP reply from %u.%u.%u.%u (%d other frames)\n", peer[0], peer[1],
		peer[2], peer[3], frames);
	return -1;
}

/* Host-order u32 (the config's form) to network-order bytes. */
static void ip_bytes(uint8_t out[4], uint32_t ip)
{
	for (int i = 0; i < 4; i++)
		out[i] = (uint8_t)(ip >> (24 - 8 * i));
}

int nic_selftest(const struct hftos_config *cfg)
{
	struct nic *n = nic_open();
	uint8_t us[4], peer[4];

	if (!n)
		return -1;
	ip_bytes(us, cfg->ip_self);
	ip_bytes(peer, cfg->ip_peer);
	if (send_arp_request(n, us, us) < 0 || send_arp_request(n, us, peer) < 0 ||
	    nic_tx_flush(n, TX_TIMEOUT_US) < 0) {
		kprintf("nic test: transmit failed\n");
		return -1;
	}
	kprintf("nic test: sent gratuitous ARP for %u.%u.%u.%u and ARP request for %u.%u.%u.%u\n",
		us[0], us[1], us[2], us[3], peer[0], peer[1], peer[2], peer[3]);
	return wait_arp_reply(n, peer, us);
}
