/*
 * ptp_test.c - show the NIC's IEEE 1588 hardware time stamps on the console.
 *
 * Run when hftos_config.flags has HFTOS_F_PTP_TEST, instead of trading (so
 * the trading loop pays nothing for it). The NIC's time stamps are enabled
 * (nic_ts_enable), then every received frame gives one line
 *
 *   PTP RX n=<i> kind=<l2|udp319|other> msg=<type> seq=<id> len=<bytes>
 *          latched=<0|1> rx_ts=<ns> seq_latched=<id> before=<ns> after=<ns>
 *
 * where before is the NIC clock read before the last poll that found the
 * ring empty (the frame was not there yet) and after the NIC clock read
 * after the poll that returned it, so a latched rx_ts must lie between
 * them. For each PTP Sync over Ethernet, the OS answers with a Delay_Req
 * (same sequenceId, to PTP's multicast address) sent with a TX time stamp:
 *
 *   PTP TX seq=<id> latched=<0|1> tx_ts=<ns> before=<ns> after=<ns>
 *
 * (before: the clock before the commit; after: the clock once the latch was
 * seen). A frame with ethertype PTP_TEST_STOP_ETHERTYPE ends the test:
 * "PTP TEST DONE ...", exit ok. tests/test_nic_igb.py drives it.
 */
#include "runtime/ptp_test.h"
#include "drivers/nic.h"
#include "arch/x86_64/tsc.h"
#include "runtime/kprintf.h"

#define ETH_HDR_LEN           14
#define ETH_TYPE_IPV4         0x0800
#define ETH_TYPE_PTP          0x88F7  /* IEEE 1588 annex F */
#define PTP_TEST_STOP_ETHERTYPE 0x88B5 /* IEEE 802 local experimental: the tester's "done" */
#define IPV4_PROTO_UDP        17
#define PTP_EVENT_PORT        319     /* IEEE 1588 annex D */
#define PTP_MSG_SYNC          0x0
#define PTP_MSG_DELAY_REQ     0x1
#define PTP_HDR_LEN           34      /* IEEE 1588-2008 13.3 */
#define PTP_DELAY_REQ_LEN     (PTP_HDR_LEN + 10) /* + originTimestamp, 13.6 */
#define PTP_OFF_LEN           2
#define PTP_OFF_PORT_ID       20      /* sourcePortIdentity: clockIdentity + portNumber */
#define PTP_OFF_SEQ           30
#define PTP_OFF_CONTROL       32
#define PTP_CONTROL_DELAY_REQ 1
#define PTP_LOG_INTERVAL_NONE 0x7F
#define PTP_TEST_TIMEOUT_US   120000000 /* the whole test: the tester sends STOP well before */
#define PTP_TX_TIMEOUT_US     100000

static const uint8_t ptp_multicast[6] = { 0x01, 0x1B, 0x19, 0x00, 0x00, 0x00 };

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

struct ptp_frame {
	const char *kind;      /* "l2", "udp319" or "other" */
	const uint8_t *ptp;    /* the PTP message, or NULL */
	uint16_t ethertype;
};

/* Where the PTP message is, if the frame carries one (over Ethernet, or
 * IPv4/UDP to the event port). */
static struct ptp_frame ptp_classify(const uint8_t *f, uint16_t len)
{
	struct ptp_frame p = { "other", 0, len >= ETH_HDR_LEN ? get16(f + 12) : 0 };

	if (p.ethertype == ETH_TYPE_PTP && len >= ETH_HDR_LEN + PTP_HDR_LEN) {
		p.kind = "l2";
		p.ptp = f + ETH_HDR_LEN;
	} else if (p.ethertype == ETH_TYPE_IPV4 && len >= ETH_HDR_LEN + 20 + 8 + PTP_HDR_LEN) {
		const uint8_t *ip = f + ETH_HDR_LEN;
		const uint8_t *udp = ip + 4 * (ip[0] & 0xF);
		if (ip[9] == IPV4_PROTO_UDP && udp + 8 + PTP_HDR_LEN <= f + len &&
		    get16(udp + 2) == PTP_EVENT_PORT) {
			p.kind = "udp319";
			p.ptp = udp + 8;
		}
	}
	return p;
}

/* Build a Delay_Req (IEEE 1588-2008 13.6) for sequence seq from us to PTP's
 * multicast address, in a TX buffer; its length, or 0 if the ring is full. */
static uint16_t ptp_build_delay_req(struct nic *n, uint16_t seq)
{
	uint16_t slot;
	uint8_t *f = nic_tx_buffer(n, &slot);
	const uint8_t *mac = nic_mac(n);

	if (!f)
		return 0;
	__builtin_memset(f, 0, ETH_HDR_LEN + PTP_DELAY_REQ_LEN);
	__builtin_memcpy(f, ptp_multicast, 6);
	__builtin_memcpy(f + 6, mac, 6);
	put16(f + 12, ETH_TYPE_PTP);
	uint8_t *p = f + ETH_HDR_LEN;
	p[0] = PTP_MSG_DELAY_REQ;
	p[1] = 2; /* versionPTP */
	put16(p + PTP_OFF_LEN, PTP_DELAY_REQ_LEN);
	/* clockIdentity from the MAC (EUI-48 to EUI-64, 7.5.2.2.2), port 1 */
	uint8_t *id = p + PTP_OFF_PORT_ID;
	id[0] = mac[0], id[1] = mac[1], id[2] = mac[2], id[3] = 0xFF, id[4] = 0xFE;
	id[5] = mac[3], id[6] = mac[4], id[7] = mac[5];
	put16(id + 8, 1);
	put16(p + PTP_OFF_SEQ, seq);
	p[PTP_OFF_CONTROL] = PTP_CONTROL_DELAY_REQ;
	p[PTP_OFF_CONTROL + 1] = PTP_LOG_INTERVAL_NONE;
	return ETH_HDR_LEN + PTP_DELAY_REQ_LEN;
}

/* Send a time-stamped Delay_Req and print its TX time stamp. 1 if one was
 * latched, 0 if not, -1 if it could not be sent. */
static int ptp_send_delay_req(struct nic *n, uint16_t seq)
{
	uint16_t len = ptp_build_delay_req(n, seq);
	uint64_t ts = 0, before = nic_ts_now(n), deadline = tsc_deadline(PTP_TX_TIMEOUT_US);
	int latched = 0;

	if (!len)
		return -1;
	nic_ts_tx_commit(n, len);
	while (!(latched = nic_ts_tx(n, &ts)) && !tsc_expired(deadline))
		;
	uint64_t after = nic_ts_now(n);
	kprintf("PTP TX seq=%u latched=%d tx_ts=%lu before=%lu after=%lu\n", seq, latched, ts,
		before, after);
	return nic_tx_flush(n, PTP_TX_TIMEOUT_US) < 0 ? -1 : latched;
}

/* The next frame, with the NIC clock read before the last empty poll and
 * after the poll that returned it; NULL at the deadline. */
static const uint8_t *ptp_poll(struct nic *n, uint16_t *len, uint64_t *before, uint64_t *after,
			       uint64_t deadline)
{
	while (!tsc_expired(deadline)) {
		uint64_t t0 = nic_ts_now(n);
		const uint8_t *f = nic_rx_poll(n, len);
		if (f) {
			*after = nic_ts_now(n);
			return f;
		}
		*before = t0;
	}
	return 0;
}

struct ptp_counts {
	unsigned rx, latched, tx_latched;
};

/* One received frame: print it with its latch; answer a Sync. 1 when it is
 * the tester's STOP, -1 on a TX failure, else 0. */
static int ptp_handle(struct nic *n, const uint8_t *f, uint16_t len, uint64_t before,
		      uint64_t after, struct ptp_counts *c)
{
	struct ptp_frame p = ptp_classify(f, len);
	uint64_t ts = 0;
	uint16_t seq_latched = 0;
	int latched = nic_ts_rx(n, &ts, &seq_latched);
	unsigned msg = p.ptp ? p.ptp[0] & 0xFu : 0;
	uint16_t seq = p.ptp ? get16(p.ptp + PTP_OFF_SEQ) : 0;

	c->latched += (unsigned)latched;
	kprintf("PTP RX n=%u kind=%s msg=%u seq=%u len=%u latched=%d rx_ts=%lu seq_latched=%u "
		"before=%lu after=%lu\n", c->rx++, p.kind, msg, seq, len, latched, ts, seq_latched,
		before, after);
	if (p.ethertype == PTP_TEST_STOP_ETHERTYPE)
		return 1;
	if (p.ptp && p.kind[0] == 'l' && msg == PTP_MSG_SYNC) {
		nic_rx_release(n); /* the frame is done with before the reply */
		int r = ptp_send_delay_req(n, seq);
		if (r < 0)
			return -1;
		c->tx_latched += (unsigned)r;
	}
	return 0;
}

int ptp_test(const struct hftos_config *cfg)
{
	(void)cfg;
	struct nic *n = nic_open();
	struct ptp_counts c = { 0, 0, 0 };

	if (!n)
		return -1;
	if (!nic_has_hw_timestamps(n)) {
		kprintf("ptp test: the %s driver has no hardware time stamps\n", n->name);
		return -1;
	}
	if (nic_ts_enable(n) < 0)
		return -1;
	uint64_t deadline = tsc_deadline(PTP_TEST_TIMEOUT_US), before = nic_ts_now(n), after = 0;
	kprintf("PTP READY nic=%s clock=%lu\n", n->name, before);
	for (;;) {
		uint16_t len;
		const uint8_t *f = ptp_poll(n, &len, &before, &after, deadline);
		if (!f) {
			kprintf("ptp test: no STOP frame within %u s\n", PTP_TEST_TIMEOUT_US / 1000000);
			return -1;
		}
		int r = ptp_handle(n, f, len, before, after, &c);
		nic_rx_release(n);
		if (r != 0) {
			kprintf("PTP TEST DONE rx=%u latched=%u tx_latched=%u\n", c.rx, c.latched,
				c.tx_latched);
			return r < 0 ? -1 : 0;
		}
	}
}
