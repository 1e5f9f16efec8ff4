/*
 * nic_selftest.h - boot-time NIC check selected by hftos_config.nic_test.
 */
#ifndef HFTOS_NIC_SELFTEST_H
#define HFTOS_NIC_SELFTEST_H

#include "runtime/config.h"

/* Bring up the NIC, send a gratuitous ARP and an ARP request for
 * cfg->peer_ip, wait for the reply. 0 on success, -1 (reason printed). */
int nic_selftest(const struct hftos_config *cfg);

#endif
