/*
 * exit_codes.h - every value HFT-OS writes to QEMU's isa-debug-exit port.
 *
 * QEMU is started with -device isa-debug-exit,iobase=0xf4,iosize=0x04 and
 * exits with status (value << 1) | 1 when the guest writes value to port
 * 0xf4. 0 is never used: QEMU's own failures also exit with 1. On hardware
 * the write goes nowhere and the code halts instead.
 *
 * This header is the single definition: the Makefile turns its #defines into
 * build/gen/exit_codes.inc for the NASM boot code, so keep one numeric
 * #define per line.
 */
#ifndef HFTOS_EXIT_CODES_H
#define HFTOS_EXIT_CODES_H

#define HFTOS_DEBUG_EXIT_PORT   0xf4 /* isa-debug-exit iobase */
#define HFTOS_EXIT_OK           0x10 /* QEMU status 33: run finished normally */
#define HFTOS_EXIT_PANIC        0x11 /* QEMU status 35: panic(), a broken invariant */
#define HFTOS_EXIT_CRASHED      0x12 /* QEMU status 37: CPU exception, registers dumped */
#define HFTOS_EXIT_BOOT_FAILED  0x13 /* QEMU status 39: stage 1/2 error, one-letter code printed */
#define HFTOS_EXIT_NIC_FAILED   0x14 /* QEMU status 41: NIC missing or failed to initialise */

#endif
