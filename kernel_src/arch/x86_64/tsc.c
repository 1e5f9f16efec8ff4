/*
 * tsc.c - find the TSC frequency, which turns cycle stamps into ns.
 *
 * CPUID 15h (Intel SDM vol. 2A): TSC = crystal Hz (ECX) * EBX / EAX, when
 * all three are nonzero. CPUID 16h EAX: processor base frequency in MHz,
 * which equals the nominal TSC rate on Intel parts that lack ECX in 15h.
 * Neither exists under QEMU TCG, so the fallback measures the TSC against
 * PIT channel 2 (8254, 1.193182 MHz): mode 0 counts down once, and its
 * OUT2 line is visible in bit 5 of port 61h; bit 0 of port 61h is the gate.
 */
#include "arch/x86_64/tsc.h"
#include "arch/x86_64/cpu.h"

#define CPUID_TSC_LEAF          0x15
#define CPUID_FREQ_LEAF         0x16
#define CPUID_EXT_BASE          0x80000000
#define CPUID_EXT_POWER         0x80000007
#define  CPUID_EXT_POWER_INVARIANT_TSC (1u << 8)

#define PIT_HZ                  1193182u
#define PIT_CH2_DATA            0x42
#define PIT_MODE_CMD            0x43
#define  PIT_SEL_CH2            (2u << 6)
#define  PIT_ACCESS_LOHI        (3u << 4)
#define  PIT_MODE0              (0u << 1) /* interrupt on terminal count */
#define PORT_NMI_SC             0x61      /* NMI status and control */
#define  NMI_SC_GATE2           0x01      /* PIT channel 2 gate */
#define  NMI_SC_SPEAKER         0x02      /* speaker data enable */
#define  NMI_SC_OUT2            0x20      /* PIT channel 2 output */
#define  NMI_SC_WRITABLE        0x0F      /* bits 7:4 are read-only status */
#define CALIBRATION_US          10000
#define PIT_SPIN_LIMIT          100000000 /* polls of port 61h; far beyond 10 ms */
#define TSC_HZ_ASSUMED          3000000000u /* until tsc_init() has run */

static uint64_t tsc_hz_in_use = TSC_HZ_ASSUMED;

static uint64_t tsc_from_cpuid_15h(void)
{
	if (cpuid(0, 0).eax < CPUID_TSC_LEAF)
		return 0;
	struct cpuid_regs r = cpuid(CPUID_TSC_LEAF, 0);
	if (r.eax == 0 || r.ebx == 0 || r.ecx == 0)
		return 0;
	return (uint64_t)r.ecx * r.ebx / r.eax;
}

static uint64_t tsc_from_cpuid_16h(void)
{
	if (cpuid(0, 0).eax < CPUID_FREQ_LEAF)
		return 0;
	return (uint64_t)(cpuid(CPUID_FREQ_LEAF, 0).eax & 0xFFFF) * 1000000u;
}

uint64_t tsc_measure_pit(uint32_t window_us)
{
	uint32_t count = (uint32_t)((uint64_t)PIT_HZ * window_us / 1000000u);
	uint8_t saved = inb(PORT_NMI_SC);

	if (count == 0 || count > 0xFFFF)
		return 0;
	/* Gate low while programming, speaker off; the count starts when the
	 * high byte is written with the gate high. */
	outb(PORT_NMI_SC, (uint8_t)((saved & ~(NMI_SC_SPEAKER | NMI_SC_GATE2)) & NMI_SC_WRITABLE));
	outb(PIT_MODE_CMD, PIT_SEL_CH2 | PIT_ACCESS_LOHI | PIT_MODE0);
	outb(PIT_CH2_DATA, (uint8_t)count);
	outb(PIT_CH2_DATA, (uint8_t)(count >> 8));
	outb(PORT_NMI_SC, (uint8_t)(((saved & ~NMI_SC_SPEAKER) | NMI_SC_GATE2) & NMI_SC_WRITABLE));
	uint64_t start = tsc_read_ordered();
	for (uint32_t i = 0; i < PIT_SPIN_LIMIT; i++) {
		if (inb(PORT_NMI_SC) & NMI_SC_OUT2) {
			uint64_t end = tsc_read_ordered();
			outb(PORT_NMI_SC, (uint8_t)(saved & NMI_SC_WRITABLE));
			return end - start;
		}
	}
	outb(PORT_NMI_SC, (uint8_t)(saved & NMI_SC_WRITABLE));
	return 0;
}

void tsc_init(struct tsc_info *out)
{
	uint64_t cycles = tsc_measure_pit(CALIBRATION_US);

	out->pit_hz = cycles * (1000000u / CALIBRATION_US);
	out->invariant = cpuid(CPUID_EXT_BASE, 0).eax >= CPUID_EXT_POWER &&
			 (cpuid(CPUID_EXT_POWER, 0).edx & CPUID_EXT_POWER_INVARIANT_TSC);
	if ((out->hz = tsc_from_cpuid_15h()) != 0)
		out->source = TSC_SOURCE_CPUID_15H;
	else if ((out->hz = tsc_from_cpuid_16h()) != 0)
		out->source = TSC_SOURCE_CPUID_16H;
	else if ((out->hz = out->pit_hz) != 0)
		out->source = TSC_SOURCE_PIT;
	else
		out->source = TSC_SOURCE_NONE;
	if (out->hz)
		tsc_hz_in_use = out->hz;
}

uint64_t tsc_us_to_cycles(uint64_t us)
{
	return us * (tsc_hz_in_use / 1000000u);
}

const char *tsc_source_name(enum tsc_source s)
{
	switch (s) {
	case TSC_SOURCE_CPUID_15H: return "CPUID 15h";
	case TSC_SOURCE_CPUID_16H: return "CPUID 16h";
	case TSC_SOURCE_PIT: return "PIT channel 2";
	default: return "none";
	}
}
