/*
 * trade.h - the trading run: NIC RX ring -> engine -> OUCH in the TX ring.
 *
 * trade_start brings up the NIC and the engine from the config block,
 * trade_wait_ready returns once frames sent to us will really be received
 * and prints the READY line, trade_hiccups (optional) records the poll
 * loop's gaps, trade_loop is the hot loop, trade_finish
 * writes the end-of-run dump (core/tslog.h) on COM1.
 */
#ifndef HFTOS_TRADE_H
#define HFTOS_TRADE_H

#include "runtime/config.h"
#include <stdint.h>

/* Open the NIC (panic if there is none) and initialise the engine and the
 * log from *cfg (panic naming the reason if engine_init refuses it). */
void trade_start(const struct hftos_config *cfg, uint64_t tsc_hz);

/* ARP for ip_peer until it answers (or TRADE_READY_MAX_US passed), then
 * print "HFTOS READY ip=... mac=... md_port=... tsc_hz=...". */
void trade_wait_ready(void);

/* The poll-loop gap recorder (core/hiccup.h): spin trade_loop's poll
 * loop for duration_ns, every TSC gap above threshold_ns recorded, then
 * print "HICCUPS DONE ..."; the counters go into trade_finish's dump. */
void trade_hiccups(uint64_t duration_ns, uint64_t threshold_ns);

/* Poll, decode, trade until a STOP control message or max_messages ITCH
 * messages. */
void trade_loop(void);

/* Read the NIC's drop counters and write the framed dump of counters and
 * timestamp records to COM1. */
void trade_finish(void);

#endif
