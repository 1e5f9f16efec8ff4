/*
 * nic_selftest.h - boot-time NIC check selected by HFTOS_F_NIC_TEST.
 */
#ifndef HFTOS_NIC_SELFTEST_H
#define HFTOS_NIC_SELFTEST_H

#include "runtime/config.h"

/* Bring up the NIC, send a gratuitous ARP and an ARP request for
 * cfg->ip_peer, wait for the reply. 0 on success, -1 (reason printed). */
int nic_selftest(const struct hftos_config *cfg);

#endif
