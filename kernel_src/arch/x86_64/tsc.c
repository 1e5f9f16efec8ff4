/*
 * tsc.c - find the TSC frequency, which turns cycle stamps into ns.
 *
 * CPUID 15h (Intel SDM vol. 2A): TSC = crystal Hz (ECX) * EBX / EAX, when
 * all three are nonzero. CPUID 16h EAX: processor base frequency in MHz,
 * which equals the nominal TSC rate on Intel parts that lack ECX in 15h.
 * Neither exists under QEMU TCG, so the fallback measures the TSC against
 * PIT channel 2 (8254, 1.193182 MHz): mode 0 counts down from 0xFFFF once
 * bit 0 of port 61h (the gate) goes high; the count is read by the latch
 * command, low byte then high byte.
 * Under KVM (hardware or PVM) neither leaf exists either; KVM's pvclock
 * (kvmclock, Linux Documentation/virt/kvm/x86/msr.rst) gives the host's
 * own TSC-to-ns scale: one wrmsr, then tsc_to_system_mul and tsc_shift;
 * the PIT figure stays as the cross-check (check_ppm).
 */
#include "arch/x86_64/tsc.h"
#include "arch/x86_64/cpu.h"

#define CPUID_TSC_LEAF          0x15
#define CPUID_FREQ_LEAF         0x16
#define CPUID_EXT_BASE          0x80000000
#define CPUID_EXT_POWER         0x80000007
#define  CPUID_EXT_POWER_INVARIANT_TSC (1u << 8)

#define CPUID_HV_BASE           0x40000000u /* EBX ECX EDX: "KVMKVMKVM\0\0\0" */
#define CPUID_KVM_FEATURES      0x40000001u
#define  KVM_FEATURE_CLOCKSOURCE2 (1u << 3)
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01u
#define  KVM_SYSTEM_TIME_ENABLE 1u
#define PVCLOCK_TRIES           1000       /* reads of an odd (updating) version */
#define PIT_HZ                  1193182u
#define PIT_CH2_DATA            0x42
#define PIT_MODE_CMD            0x43
#define  PIT_SEL_CH2            (2u << 6)
#define  PIT_ACCESS_LOHI        (3u << 4)
#define  PIT_ACCESS_LATCH       (0u << 4) /* counter latch command */
#define  PIT_MODE0              (0u << 1) /* interrupt on terminal count */
#define PIT_MAX_TICKS           0xF000u   /* a window well inside one count-down from 0xFFFF */
#define PORT_NMI_SC             0x61      /* NMI status and control */
#define  NMI_SC_GATE2           0x01      /* PIT channel 2 gate */
#define  NMI_SC_SPEAKER         0x02      /* speaker data enable */
#define  NMI_SC_OUT2            0x20      /* PIT channel 2 output */
#define  NMI_SC_WRITABLE        0x0F      /* bits 7:4 are read-only status */
#define CALIBRATION_US          4000      /* per window; 3 windows, ~12 ms of boot */
#define CALIBRATION_WINDOWS     3
#define PIT_SAMPLES             8         /* bracketed reads per window end */
#define PIT_SPIN_LIMIT          10000000  /* count reads; far beyond a window */
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

/* struct pvclock_vcpu_time_info (Linux arch/x86/include/asm/pvclock-abi.h):
 * ns = ((tsc - tsc_timestamp) << tsc_shift, or >> -tsc_shift) * mul >> 32. */
struct pvclock_time {
	uint32_t version;
	uint32_t pad0;
	uint64_t tsc_timestamp;
	uint64_t system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags;
	uint8_t pad[2];
} __attribute__((packed));

_Static_assert(sizeof(struct pvclock_time) == 32, "pvclock_vcpu_time_info is 32 bytes");

static volatile struct pvclock_time kvm_time __attribute__((aligned(64)));

static uint64_t tsc_from_kvmclock(void)
{
	struct cpuid_regs sig = cpuid(CPUID_HV_BASE, 0);

	if (sig.ebx != 0x4b4d564bu || sig.ecx != 0x564b4d56u || sig.edx != 0x4du ||
	    sig.eax < CPUID_KVM_FEATURES ||
	    !(cpuid(CPUID_KVM_FEATURES, 0).eax & KVM_FEATURE_CLOCKSOURCE2))
		return 0;
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)(uintptr_t)&kvm_time | KVM_SYSTEM_TIME_ENABLE);
	uint32_t mul = 0;
	int8_t shift = 0;
	for (int i = 0; i < PVCLOCK_TRIES; i++) {
		uint32_t v = kvm_time.version;
		__asm__ volatile("" : : : "memory");
		mul = kvm_time.tsc_to_system_mul;
		shift = kvm_time.tsc_shift;
		__asm__ volatile("" : : : "memory");
		if (!(v & 1) && v == kvm_time.version && mul)
			break;
		mul = 0;
	}
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, 0); /* the host stops writing kvm_time */
	if (!mul)
		return 0;
	/* 1 ns per (2^32 / mul) shifted TSC ticks: hz = 1e9 * 2^32 / mul, then
	 * undo the shift. */
	uint64_t hz = (1000000000ull << 32) / mul;
	return shift >= 0 ? hz >> shift : hz << -shift;
}

/* One PIT read bracketed by two TSC reads. Under a hypervisor the vCPU can
 * be descheduled anywhere, also for milliseconds between a TSC read and the
 * PIT read it should pair with: a 10 ms window timed by OUT2 alone read
 * 1.99-4.33 GHz for this host's 2.445 GHz TSC under TCG on a loaded 2-core
 * machine. A bracket shows such a gap as its width, so each end of a window
 * keeps the tightest of PIT_SAMPLES reads and pairs the count with the
 * bracket's midpoint; a stall in the middle of the window costs nothing,
 * as both clocks run through it. */
struct pit_stamp {
	uint64_t tsc;    /* midpoint of the bracket */
	uint64_t width;  /* cycles between the two TSC reads */
	uint16_t count;  /* channel 2's count, latched */
};

static uint16_t pit_ch2_count(void)
{
	outb(PIT_MODE_CMD, PIT_SEL_CH2 | PIT_ACCESS_LATCH);
	uint8_t lo = inb(PIT_CH2_DATA);

	return (uint16_t)(lo | (uint16_t)inb(PIT_CH2_DATA) << 8);
}

static struct pit_stamp pit_stamp(void)
{
	struct pit_stamp best = { 0, UINT64_MAX, 0 };

	for (int i = 0; i < PIT_SAMPLES; i++) {
		uint64_t a = tsc_read_ordered();
		uint16_t c = pit_ch2_count();
		uint64_t b = tsc_read_ordered();

		if (b - a < best.width)
			best = (struct pit_stamp){ a + (b - a) / 2, b - a, c };
	}
	return best;
}

uint64_t tsc_measure_pit(uint32_t window_us, uint32_t *bracket_ppm)
{
	uint32_t ticks = (uint32_t)((uint64_t)PIT_HZ * window_us / 1000000u);
	uint8_t saved = inb(PORT_NMI_SC);
	uint64_t hz = 0;

	if (ticks == 0 || ticks > PIT_MAX_TICKS)
		return 0;
	/* Gate low while programming, speaker off; mode 0 from the full count
	 * starts counting down when the gate goes high. */
	outb(PORT_NMI_SC, (uint8_t)((saved & ~(NMI_SC_SPEAKER | NMI_SC_GATE2)) & NMI_SC_WRITABLE));
	outb(PIT_MODE_CMD, PIT_SEL_CH2 | PIT_ACCESS_LOHI | PIT_MODE0);
	outb(PIT_CH2_DATA, 0xFF);
	outb(PIT_CH2_DATA, 0xFF);
	outb(PORT_NMI_SC, (uint8_t)(((saved & ~NMI_SC_SPEAKER) | NMI_SC_GATE2) & NMI_SC_WRITABLE));
	struct pit_stamp s = pit_stamp();

	for (uint32_t i = 0; i < PIT_SPIN_LIMIT; i++) {
		if ((uint16_t)(s.count - pit_ch2_count()) < ticks)
			continue;
		struct pit_stamp e = pit_stamp();
		uint16_t elapsed = (uint16_t)(s.count - e.count);

		if (e.tsc > s.tsc && elapsed) {
			hz = (e.tsc - s.tsc) * PIT_HZ / elapsed;
			*bracket_ppm = (uint32_t)((s.width + e.width) / 2 * 1000000u / (e.tsc - s.tsc));
		}
		break;
	}
	outb(PORT_NMI_SC, (uint8_t)(saved & NMI_SC_WRITABLE));
	return hz;
}

void tsc_init(struct tsc_info *out)
{
	uint64_t hz[CALIBRATION_WINDOWS];
	uint32_t ppm;

	out->pit_bracket_ppm = 0;
	for (int i = 0; i < CALIBRATION_WINDOWS; i++) {
		ppm = 0;
		hz[i] = tsc_measure_pit(CALIBRATION_US, &ppm);
		if (ppm > out->pit_bracket_ppm)
			out->pit_bracket_ppm = ppm;
	}
	/* Median of three, and the spread of all three: the cross-check. */
	uint64_t lo = hz[0] < hz[1] ? hz[0] : hz[1], hi = hz[0] < hz[1] ? hz[1] : hz[0];

	out->pit_hz = hz[2] < lo ? lo : hz[2] > hi ? hi : hz[2];
	lo = hz[2] < lo ? hz[2] : lo;
	hi = hz[2] > hi ? hz[2] : hi;
	out->pit_spread_ppm = (lo && out->pit_hz) ? (uint32_t)((hi - lo) * 1000000u / out->pit_hz) : 0;
	if (!lo)
		out->pit_hz = 0;
	out->invariant = cpuid(CPUID_EXT_BASE, 0).eax >= CPUID_EXT_POWER &&
			 (cpuid(CPUID_EXT_POWER, 0).edx & CPUID_EXT_POWER_INVARIANT_TSC);
	out->kvmclock_hz = tsc_from_kvmclock();
	if ((out->hz = tsc_from_cpuid_15h()) != 0)
		out->source = TSC_SOURCE_CPUID_15H;
	else if ((out->hz = tsc_from_cpuid_16h()) != 0)
		out->source = TSC_SOURCE_CPUID_16H;
	else if ((out->hz = out->kvmclock_hz) != 0)
		out->source = TSC_SOURCE_KVMCLOCK;
	else if ((out->hz = out->pit_hz) != 0)
		out->source = TSC_SOURCE_PIT;
	else
		out->source = TSC_SOURCE_NONE;
	out->check_ppm = 0;
	if (out->hz && out->pit_hz && out->source != TSC_SOURCE_PIT)
		out->check_ppm = ((int64_t)out->pit_hz - (int64_t)out->hz) * 1000000 / (int64_t)out->hz;
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
	case TSC_SOURCE_KVMCLOCK: return "kvmclock";
	case TSC_SOURCE_PIT: return "PIT channel 2";
	default: return "none";
	}
}
