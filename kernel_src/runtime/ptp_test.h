/*
 * ptp_test.h - boot-time check of the NIC's IEEE 1588 time stamps, selected
 * by HFTOS_F_PTP_TEST (runtime/ptp_test.c has the console protocol).
 */
#ifndef HFTOS_PTP_TEST_H
#define HFTOS_PTP_TEST_H

#include "runtime/config.h"

/* Bring up the NIC with time stamps, print every received frame with its
 * latched RX time and the NIC clock around its poll, answer each PTP Sync
 * with a time-stamped Delay_Req, until the tester's STOP frame. 0 on STOP,
 * -1 (reason printed) when the NIC has no time stamps or something fails. */
int ptp_test(const struct hftos_config *cfg);

#endif
