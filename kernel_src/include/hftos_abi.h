/*
 * hftos_abi.h - the contract between HFT-OS and hftlab.
 *
 * 1. The config block: one 4 KiB-aligned struct hftos_config inside the disk
 *    image, found by its magic. hftlab rewrites it in a copy of the image for
 *    each run (addresses, ports, strategy and risk, run length), so a run
 *    never recompiles the OS. The runtime reads it once at boot.
 * 2. The control message: a UDP datagram to ctl_port from ip_peer, carrying
 *    struct hftos_ctl with the run's key; anything else is counted as foreign.
 * 3. The end of a run: the OS writes the tslog dump (kernel_src/core/tslog.h)
 *    on COM1 and leaves through isa-debug-exit with HFTOS_EXIT_OK.
 * Every struct here is a wire format: fixed-width fields, sizes pinned.
 */
#ifndef HFTOS_ABI_H
#define HFTOS_ABI_H

#include "../core/engine.h"

#define HFTOS_CONFIG_MAGIC 0x4746434F53544648ull  /* "HFTOSCFG" little-endian */
#define HFTOS_CONFIG_VERSION 1u

enum hftos_flags {
	HFTOS_F_FAULT = 1u << 0,       /* fault on purpose after init (#PF test) */
	HFTOS_F_ICOUNT = 1u << 1,      /* informational: run under -icount */
	HFTOS_F_HICCUPS = 1u << 2,     /* run the poll-loop gap recorder first */
};

struct hftos_config {
	uint64_t magic;
	uint32_t version;
	uint32_t size;              /* sizeof(struct hftos_config) */
	uint8_t mac_peer[6];        /* where orders go (the replayer's tap) */
	uint8_t pad0[2];
	uint32_t ip_self;           /* host byte order */
	uint32_t ip_peer;
	uint16_t md_port;           /* UDP port the OS receives MoldUDP64 on */
	uint16_t order_port;        /* UDP port on the peer that receives OUCH */
	uint16_t ctl_port;          /* UDP port the OS receives control on */
	uint16_t src_port;          /* UDP source port of orders */
	uint64_t max_messages;      /* stop and dump after this many ITCH messages, 0 = never */
	uint64_t ctl_key;           /* the run's control key */
	uint32_t flags;             /* enum hftos_flags */
	uint32_t log_capacity;      /* tslog records kept (ring), <= HFTOS_LOG_MAX */
	uint64_t hiccup_ns;         /* gap recorder: run time */
	uint64_t hiccup_threshold_ns; /* gap recorder: gaps above this are hiccups */
	struct engine_config engine;
};
CORE_STATIC_ASSERT(sizeof(struct hftos_config) == 80 + sizeof(struct engine_config),
		   "hftos_config is a wire format");

#define HFTOS_LOG_MAX (1u << 20)

#define HFTOS_CTL_MAGIC 0x4C544348u  /* "HCTL" little-endian */
enum hftos_ctl_cmd {
	HFTOS_CTL_STOP = 1,  /* dump the log and exit */
	HFTOS_CTL_KILL = 2,  /* risk kill switch on */
};

struct hftos_ctl {
	uint32_t magic;
	uint32_t cmd;
	uint64_t key;
};
CORE_STATIC_ASSERT(sizeof(struct hftos_ctl) == 16, "hftos_ctl is a wire format");

#endif
