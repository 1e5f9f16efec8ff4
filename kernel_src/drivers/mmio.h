/*
 * mmio.h - device register access for the NIC drivers: the only way a
 * driver touches a device's registers (STYLE: reg_read32, reg_write32,
 * reg_set_flags, reg_wait), and the DMA address of a buffer.
 *
 * base is the mapped BAR (or, for virtio, one capability's window), off the
 * register's byte offset as the datasheet or spec names it. Each access is
 * one volatile load or store between compiler barriers, so the compiler
 * neither merges nor reorders it with the descriptor and buffer writes
 * around it; x86 keeps stores in order, so no fence is needed for a
 * doorbell (a driver that needs one, as virtio does before reading the
 * device's suppression flags, says so where it does).
 */
#ifndef HFTOS_MMIO_H
#define HFTOS_MMIO_H

#include <stdint.h>

#define compiler_barrier() __asm__ volatile("" : : : "memory")

/* Microseconds between two reads of a register in reg_wait: see mmio.c. */
#define MMIO_WAIT_POLL_US 10

static inline uint8_t reg_read8(volatile uint8_t *base, uint32_t off)
{
	compiler_barrier();
	uint8_t v = *(base + off);
	compiler_barrier();
	return v;
}

static inline uint16_t reg_read16(volatile uint8_t *base, uint32_t off)
{
	compiler_barrier();
	uint16_t v = *(volatile uint16_t *)(base + off);
	compiler_barrier();
	return v;
}

static inline uint32_t reg_read32(volatile uint8_t *base, uint32_t off)
{
	compiler_barrier();
	uint32_t v = *(volatile uint32_t *)(base + off);
	compiler_barrier();
	return v;
}

static inline void reg_write8(volatile uint8_t *base, uint32_t off, uint8_t v)
{
	compiler_barrier();
	*(base + off) = v;
	compiler_barrier();
}

static inline void reg_write16(volatile uint8_t *base, uint32_t off, uint16_t v)
{
	compiler_barrier();
	*(volatile uint16_t *)(base + off) = v;
	compiler_barrier();
}

static inline void reg_write32(volatile uint8_t *base, uint32_t off, uint32_t v)
{
	compiler_barrier();
	*(volatile uint32_t *)(base + off) = v;
	compiler_barrier();
}

static inline void reg_set_flags(volatile uint8_t *base, uint32_t off, uint32_t flags)
{
	reg_write32(base, off, reg_read32(base, off) | flags);
}

static inline void reg_clear_flags(volatile uint8_t *base, uint32_t off, uint32_t flags)
{
	reg_write32(base, off, reg_read32(base, off) & ~flags);
}

/* Wait until (32-bit register & mask) == want: 0 when it is, -1 after
 * timeout_us. */
int reg_wait(volatile uint8_t *base, uint32_t off, uint32_t mask, uint32_t want,
	     uint32_t timeout_us);

/* The same for an 8-bit register (virtio's device status). */
int reg_wait8(volatile uint8_t *base, uint32_t off, uint8_t mask, uint8_t want,
	      uint32_t timeout_us);

/* Rings and buffers are static arrays, identity mapped: virtual = physical =
 * DMA address. */
static inline uint64_t dma_addr(const volatile void *p)
{
	return (uint64_t)(uintptr_t)p;
}

#endif
