/*
 * ptp_slave.h - the PTP slave (core/ptp.h) inside the trading loop
 * (HFTOS_F_PTP).
 *
 * The frame dispatch (runtime/trade.c) hands PTP frames to ptp_slave_frame:
 * Ethernet 0x88F7, or IPv4/UDP to 319/320 (multicast 224.0.1.129 or to us).
 * That only copies the message and its TSC stamp into a small queue, so a
 * market-data frame behind it waits for a copy, not for the servo. The
 * servo work (the message itself, NIC hardware stamps, the Delay_Req) runs
 * in ptp_slave_idle, which the loop calls when the RX ring is empty, i.e.
 * when no tick is waiting. Cycles spent in both are counted (under
 * tcg-icount, instructions) and dumped as ptp_rt_* counters.
 *
 * Time stamps: on a NIC with hardware stamps (igb: PTP over Ethernet only)
 * a Sync's receive time and a Delay_Req's send time are the NIC's, turned
 * into TSC values by their age on the NIC clock (TSC now minus (NIC clock
 * now - stamp) in cycles); otherwise (e1000, virtio, and UDP on igb) the
 * TSC stamp the poll loop took when it saw the frame, and the TSC right
 * after the Delay_Req's doorbell. ptp_rt_hw_rx / ptp_rt_tsc_rx say which
 * were used.
 */
#ifndef HFTOS_PTP_SLAVE_H
#define HFTOS_PTP_SLAVE_H

#include "core/ptp.h"
#include "core/tslog.h"
#include "drivers/nic.h"
#include "runtime/config.h"

#define PTP_SLAVE_QUEUE 8      /* messages waiting for an idle poll */
#define PTP_SLAVE_MSG_MAX 256  /* bytes of a message kept (longer: counted oversized) */

extern bool ptp_slave_on;      /* HFTOS_F_PTP */
extern bool ptp_slave_work;    /* something queued for ptp_slave_idle */
extern bool ptp_slave_wait;    /* trade only once locked (not HFTOS_F_PTP_NOWAIT) */

/* Set up from the config (nothing when HFTOS_F_PTP is clear): the slave,
 * and the NIC's time stamps when it has them. */
void ptp_slave_start(struct nic *n, const struct hftos_config *cfg, uint64_t tsc_hz,
		     const uint8_t mac[6], uint32_t ip_self);

/* A PTP message at msg (len bytes, transport stripped) of a frame stamped
 * tsc_rx; udp: it came over IPv4/UDP. */
void ptp_slave_frame(const uint8_t *msg, uint16_t len, uint64_t tsc_rx, bool udp);

/* Queued messages through the slave; a Delay_Req out when asked for. A TX
 * buffer used for it loses its order template: its slot is set in
 * tx_dirty. */
void ptp_slave_idle(bool *tx_dirty);

extern struct ptp *ptp_slave_clock; /* the slave, NULL when off */

/* PTP time (ns since the PTP epoch) at a TSC value by the slave's mapping;
 * 0 while the slave has no time yet or is off. Inline: a tslog record per
 * order takes one (a load and a branch without PTP). */
static inline uint64_t ptp_slave_time(uint64_t tsc)
{
	if (CORE_LIKELY(!ptp_slave_clock))
		return 0;
	int64_t ns = ptp_time(ptp_slave_clock, tsc);
	return ns > 0 ? (uint64_t)ns : 0;
}

/* The servo is locked. */
bool ptp_slave_locked(void);

/* At ring 0 (console): "PTP LOCKED offset=<ns> mpd=<ns> after_ms=<ms>", or
 * "PTP NOT LOCKED after_ms=<ms>". */
void ptp_slave_report_lock(uint64_t after_ms);

/* End of run: counters into the tslog dump, the series after it. */
void ptp_slave_dump_counters(struct tslog_dump *d);
void ptp_slave_dump_series(tslog_write_fn write, void *ctx);

#endif
