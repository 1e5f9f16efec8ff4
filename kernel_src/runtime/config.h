/*
 * config.h - the run's configuration block, as the runtime sees it.
 *
 * The layout is the host contract, include/hftos_abi.h (struct
 * hftos_config): one definition, shared with hftlab. The block itself is
 * defined in runtime/config.c with defaults that work with QEMU user
 * networking and equal hftlab.core.EngineConfig.default(); the linker puts
 * it at HFTOS_CONFIG_OFFSET of the image (runtime/image_header.h), where
 * hftlab (by its magic) and the Makefile (by offset) patch it.
 */
#ifndef HFTOS_CONFIG_H
#define HFTOS_CONFIG_H

#include "include/hftos_abi.h"

/* The block, placed by the linker script at HFTOS_CONFIG_OFFSET. */
extern struct hftos_config hftos_config;

/* Check magic, version, size and the limits the runtime relies on (ports,
 * log_capacity); panic naming the first bad field. engine_init checks the
 * engine part. */
void config_check(const struct hftos_config *c);

#endif
