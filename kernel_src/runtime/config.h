/*
 * config.h - the run's configuration block, stored in the image.
 *
 * The block sits at HFTOS_CONFIG_OFFSET in build/runtime.bin (and so at
 * runtime-LBA * 512 + HFTOS_CONFIG_OFFSET in the disk image), so a tool can
 * change a run's behaviour by patching bytes, without a compiler. Fields are
 * fixed-width and at pinned offsets; add new ones at the end and bump the
 * version.
 */
#ifndef HFTOS_CONFIG_H
#define HFTOS_CONFIG_H

#include <stdint.h>

#define HFTOS_CONFIG_MAGIC          0x47464348 /* "HCFG" as a little-endian u32 */
#define HFTOS_CONFIG_VERSION        1
#define HFTOS_CONFIG_SIZE           64         /* bytes, pinned */
#define HFTOS_CONFIG_OFF_FAULT_TEST 8          /* byte offset of fault_test */
#define HFTOS_CONFIG_OFF_NIC_TEST   9          /* byte offset of nic_test */
#define HFTOS_CONFIG_OFF_LOCAL_IP   12         /* our IPv4 address, network order */
#define HFTOS_CONFIG_OFF_PEER_IP    16         /* IPv4 address the NIC test ARPs for */

struct hftos_config {
	uint32_t magic;      /* HFTOS_CONFIG_MAGIC */
	uint16_t version;    /* HFTOS_CONFIG_VERSION */
	uint16_t size;       /* sizeof(struct hftos_config) */
	uint8_t fault_test;  /* nonzero: fault on purpose after init (#PF test) */
	uint8_t nic_test;    /* nonzero: bring up the NIC, announce local_ip (gratuitous
			      * ARP), ARP for peer_ip and wait for the reply */
	uint8_t pad0[2];
	uint8_t local_ip[4]; /* network order; default 10.0.2.15 (QEMU user net) */
	uint8_t peer_ip[4];  /* network order; default 10.0.2.2 (QEMU user net gateway) */
	uint8_t reserved[44];
};

_Static_assert(sizeof(struct hftos_config) == HFTOS_CONFIG_SIZE, "config block size is pinned");
_Static_assert(__builtin_offsetof(struct hftos_config, nic_test) == HFTOS_CONFIG_OFF_NIC_TEST, "nic_test");
_Static_assert(__builtin_offsetof(struct hftos_config, local_ip) == HFTOS_CONFIG_OFF_LOCAL_IP, "local_ip");
_Static_assert(__builtin_offsetof(struct hftos_config, peer_ip) == HFTOS_CONFIG_OFF_PEER_IP, "peer_ip");
_Static_assert(__builtin_offsetof(struct hftos_config, fault_test) == HFTOS_CONFIG_OFF_FAULT_TEST,
	       "fault_test offset is patched by the Makefile");

/* The block itself, placed by the linker script at HFTOS_CONFIG_OFFSET. */
extern struct hftos_config hftos_config;

#endif
