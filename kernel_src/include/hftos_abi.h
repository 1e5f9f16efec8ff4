/*
 * hftos_abi.h - the contract between HFT-OS and hftlab.
 *
 * 1. The config block: one struct hftos_config in the runtime image (at
 *    HFTOS_CONFIG_OFFSET of build/runtime.bin, 8-byte aligned), found by its
 *    magic, which occurs nowhere else in the image. hftlab rewrites it in a
 *    copy of the image for each run (addresses, ports, strategy and risk,
 *    run length), so a run never recompiles the OS. The runtime checks it
 *    once at boot (magic, version, size, engine_init) and panics with the
 *    reason when it is unusable.
 * 2. The control message: a UDP datagram to ctl_port from ip_peer, carrying
 *    struct hftos_ctl with the run's key; anything else is counted and
 *    ignored.
 * 3. The end of a run (HFTOS_CTL_STOP, or max_messages ITCH messages): the OS
 *    writes the tslog dump (kernel_src/core/tslog.h) on COM1 and leaves
 *    through isa-debug-exit with HFTOS_EXIT_OK.
 *
 * Every struct here is a wire format: fixed-width fields, little-endian
 * (x86_64), sizes and offsets pinned by static asserts. The numeric
 * #defines are also read by the Makefile (build/gen/config.inc), so keep one
 * plain numeric #define per line.
 */
#ifndef HFTOS_ABI_H
#define HFTOS_ABI_H

#include "../core/engine.h"

#define HFTOS_CONFIG_MAGIC 0x4746434F53544648ull  /* "HFTOSCFG" as a little-endian u64 */
#define HFTOS_CONFIG_VERSION 1
#define HFTOS_CONFIG_SIZE 672         /* sizeof(struct hftos_config) */

/* flags (a u32 at HFTOS_CONFIG_OFF_FLAGS; each fits its low byte) */
#define HFTOS_F_FAULT    0x01  /* fault on purpose after init (#PF test), exit "crashed" */
#define HFTOS_F_ICOUNT   0x02  /* informational: the run is under -icount */
#define HFTOS_F_HICCUPS  0x04  /* after READY, run the poll-loop gap recorder (core/hiccup.h) */
#define HFTOS_F_NIC_TEST 0x08  /* NIC self-test (ARP out and back) instead of trading */
#define HFTOS_F_BOOT_ONLY 0x10 /* boot test: exit "ok" after init, no NIC needed, no trading */
#define HFTOS_F_PTP_TEST 0x20  /* NIC time-stamp test (runtime/ptp_test.c) instead of trading */
#define HFTOS_F_PTP      0x40  /* run the PTP slave (core/ptp.h) in ptp_domain while trading */
#define HFTOS_F_PTP_NOWAIT 0x80 /* with HFTOS_F_PTP: trade at once, do not wait for its lock */

/* Byte offsets, for tools that patch the block without a C compiler. */
#define HFTOS_CONFIG_OFF_MAC_PEER     16
#define HFTOS_CONFIG_OFF_IP_SELF      24
#define HFTOS_CONFIG_OFF_IP_PEER      28
#define HFTOS_CONFIG_OFF_MD_PORT      32
#define HFTOS_CONFIG_OFF_ORDER_PORT   34
#define HFTOS_CONFIG_OFF_CTL_PORT     36
#define HFTOS_CONFIG_OFF_SRC_PORT     38
#define HFTOS_CONFIG_OFF_MAX_MESSAGES 40
#define HFTOS_CONFIG_OFF_CTL_KEY      48
#define HFTOS_CONFIG_OFF_FLAGS        56
#define HFTOS_CONFIG_OFF_LOG_CAPACITY 60
#define HFTOS_CONFIG_OFF_ENGINE       80

#define HFTOS_LOG_MAX 262144          /* upper bound of log_capacity (1 << 18 records, 10 MiB) */

struct hftos_config {
	uint64_t magic;             /* HFTOS_CONFIG_MAGIC */
	uint32_t version;           /* HFTOS_CONFIG_VERSION */
	uint32_t size;              /* sizeof(struct hftos_config) */
	uint8_t mac_peer[6];        /* where orders go (next hop towards ip_peer) */
	uint8_t ptp_domain;         /* HFTOS_F_PTP: the PTP domainNumber the slave follows */
	uint8_t pad0;
	uint32_t ip_self;           /* host byte order: 10.0.2.15 is 0x0A00020F */
	uint32_t ip_peer;           /* orders go here; control is accepted only from here */
	uint16_t md_port;           /* UDP port the OS receives MoldUDP64 on */
	uint16_t order_port;        /* UDP port on the peer that receives OUCH */
	uint16_t ctl_port;          /* UDP port the OS receives control on */
	uint16_t src_port;          /* UDP source port of orders */
	uint64_t max_messages;      /* stop and dump after this many ITCH messages, 0 = never */
	uint64_t ctl_key;           /* the run's control key */
	uint32_t flags;             /* HFTOS_F_* */
	uint32_t log_capacity;      /* tslog records kept (ring), 1..HFTOS_LOG_MAX */
	uint64_t hiccup_ns;         /* HFTOS_F_HICCUPS: how long the gap recorder spins */
	uint64_t hiccup_threshold_ns; /* HFTOS_F_HICCUPS: gaps longer than this are recorded */
	struct engine_config engine;
};
CORE_STATIC_ASSERT(sizeof(struct hftos_config) == HFTOS_CONFIG_SIZE, "hftos_config is a wire format");
CORE_STATIC_ASSERT(sizeof(struct hftos_config) == 80 + sizeof(struct engine_config),
		   "hftos_config is a wire format");
CORE_STATIC_ASSERT(__builtin_offsetof(struct hftos_config, mac_peer) == HFTOS_CONFIG_OFF_MAC_PEER, "mac_peer");
CORE_STATIC_ASSERT(__builtin_offsetof(struct hftos_config, ip_self) == HFTOS_CONFIG_OFF_IP_SELF, "ip_self");
CORE_STATIC_ASSERT(__builtin_offsetof(struct hftos_config, ip_peer) == HFTOS_CONFIG_OFF_IP_PEER, "ip_peer");
CORE_STATIC_ASSERT(__builtin_offsetof(struct hftos_config, md_port) == HFTOS_CONFIG_OFF_MD_PORT, "md_port");
CORE_STATIC_ASSERT(__builtin_offsetof(struct hftos_config, order_port) == HFTOS_CONFIG_OFF_ORDER_PORT, "order_port");
CORE_STATIC_ASSERT(__builtin_offsetof(struct hftos_config, ctl_port) == HFTOS_CONFIG_OFF_CTL_PORT, "ctl_port");
CORE_STATIC_ASSERT(__builtin_offsetof(struct hftos_config, src_port) == HFTOS_CONFIG_OFF_SRC_PORT, "src_port");
CORE_STATIC_ASSERT(__builtin_offsetof(struct hftos_config, max_messages) == HFTOS_CONFIG_OFF_MAX_MESSAGES, "max_messages");
CORE_STATIC_ASSERT(__builtin_offsetof(struct hftos_config, ctl_key) == HFTOS_CONFIG_OFF_CTL_KEY, "ctl_key");
CORE_STATIC_ASSERT(__builtin_offsetof(struct hftos_config, flags) == HFTOS_CONFIG_OFF_FLAGS, "flags");
CORE_STATIC_ASSERT(__builtin_offsetof(struct hftos_config, log_capacity) == HFTOS_CONFIG_OFF_LOG_CAPACITY, "log_capacity");
CORE_STATIC_ASSERT(__builtin_offsetof(struct hftos_config, engine) == HFTOS_CONFIG_OFF_ENGINE, "engine");

#define HFTOS_CTL_MAGIC 0x4C544348u  /* "HCTL" as a little-endian u32 */
#define HFTOS_CTL_STOP 1             /* dump the log and exit */
#define HFTOS_CTL_KILL 2             /* risk kill switch on: reject every further order */

struct hftos_ctl {
	uint32_t magic;  /* HFTOS_CTL_MAGIC */
	uint32_t cmd;    /* HFTOS_CTL_STOP or HFTOS_CTL_KILL */
	uint64_t key;    /* must equal hftos_config.ctl_key */
};
CORE_STATIC_ASSERT(sizeof(struct hftos_ctl) == 16, "hftos_ctl is a wire format");

#endif
