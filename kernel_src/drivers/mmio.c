/*
 * mmio.c - the drivers' bounded register waits.
 *
 * A wait reads the register every MMIO_WAIT_POLL_US and spins on the TSC
 * in between, without PAUSE: under -icount both an MMIO read (an exit to
 * QEMU's device model) and PAUSE (which leaves QEMU's vCPU loop) cost the
 * host far more than the guest time they stand for. With either in a tight
 * loop, igb's 500 ms link wait took 40-50 s of host time; spaced reads made
 * igb's icount ready time 7 s.
 */
#include "drivers/mmio.h"
#include "arch/x86_64/tsc.h"

static void mmio_gap(void)
{
	for (uint64_t next = tsc_deadline(MMIO_WAIT_POLL_US); !tsc_expired(next);)
		compiler_barrier();
}

int reg_wait(volatile uint8_t *base, uint32_t off, uint32_t mask, uint32_t want,
	     uint32_t timeout_us)
{
	uint64_t deadline = tsc_deadline(timeout_us);

	while ((reg_read32(base, off) & mask) != want) {
		if (tsc_expired(deadline))
			return -1;
		mmio_gap();
	}
	return 0;
}

int reg_wait8(volatile uint8_t *base, uint32_t off, uint8_t mask, uint8_t want,
	      uint32_t timeout_us)
{
	uint64_t deadline = tsc_deadline(timeout_us);

	while ((reg_read8(base, off) & mask) != want) {
		if (tsc_expired(deadline))
			return -1;
		mmio_gap();
	}
	return 0;
}
