/*
 * main.c - HFT-OS runtime: bring-up, then the trading run.
 *
 * _start (arch/x86_64/entry.asm) has loaded the descriptor tables, cleared
 * .bss at CPL3 and entered kmain at ring 0 by syscall (arch/x86_64/ring.h).
 * Order: console, what the loader found (E820), TSC
 * frequency, the config block (runtime/config.h, checked before use), PCI
 * devices; then, by the config's flags, the fault test, the NIC self-test,
 * the NIC time-stamp test, a boot-only exit, or the trading run
 * (runtime/trade.c): NIC and engine up, READY once frames can be received,
 * the hot loop until STOP or max_messages, the dump, exit "ok". Boot
 * phases are stamped with the TSC ("boot: phase <name> tsc=<n>") so hftlab
 * can time them.
 */
#include "arch/x86_64/boot_info.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/ring.h"
#include "arch/x86_64/trap.h"
#include "arch/x86_64/tsc.h"
#include "drivers/pci.h"
#include "drivers/serial.h"
#include "runtime/config.h"
#include "runtime/exit_codes.h"
#include "runtime/kprintf.h"
#include "runtime/nic_selftest.h"
#include "runtime/panic.h"
#include "runtime/ptp_test.h"
#include "runtime/trade.h"

/* First address above the identity map: stage 2 maps [0, 4 GiB) only, so a
 * write here must raise #PF with CR2 = this address. */
#define FAULT_TEST_ADDR 0x100000000ull

__attribute__((noreturn)) void kmain(const struct boot_info *bi);

static const char *e820_type_name(uint32_t type)
{
	switch (type) {
	case E820_TYPE_RAM: return "usable";
	case E820_TYPE_RESERVED: return "reserved";
	case E820_TYPE_ACPI: return "ACPI reclaimable";
	case E820_TYPE_NVS: return "ACPI NVS";
	case E820_TYPE_BAD: return "bad";
	default: return "unknown";
	}
}

static void print_boot_info(const struct boot_info *bi)
{
	uint64_t usable = 0;

	if (bi->magic != BOOT_INFO_MAGIC)
		panic("boot_info magic %x, expected %x", bi->magic, BOOT_INFO_MAGIC);
	kprintf("boot: drive 0x%x, runtime %lu bytes at 0x%lx, identity map 0-0x%lx\n",
		bi->boot_drive, bi->runtime_size, bi->runtime_load, bi->mapped_top);
	kprintf("e820: %u entries\n", bi->e820_count);
	for (uint32_t i = 0; i < bi->e820_count && i < BOOT_INFO_E820_MAX; i++) {
		const struct e820_entry *e = &bi->e820[i];
		kprintf("  %016lx-%016lx %s\n", e->base, e->base + e->length - 1,
			e820_type_name(e->type));
		if (e->type == E820_TYPE_RAM)
			usable += e->length;
	}
	kprintf("e820: %lu KiB usable\n", usable >> 10);
}

static uint64_t init_tsc(void)
{
	struct tsc_info t;

	tsc_init(&t);
	kprintf("tsc: %lu Hz from %s (PIT check %lu Hz, %ld ppm, 3 windows spread %u ppm, "
		"bracket %u ppm; kvmclock %lu Hz), invariant %s\n", t.hz, tsc_source_name(t.source),
		t.pit_hz, t.check_ppm, t.pit_spread_ppm, t.pit_bracket_ppm, t.kvmclock_hz,
		t.invariant ? "yes" : "no");
	if (t.source == TSC_SOURCE_NONE)
		panic("no TSC frequency: CPUID 15h/16h absent and PIT did not respond");
	return t.hz;
}

/* At CPL3, where the trading loop runs: the #PF must reach the ring-0
 * handler (TSS RSP0) and be dumped like one at ring 0. */
static uint64_t fault_test_cpl3(uint64_t addr)
{
	*(volatile uint64_t *)addr = 0xDEADBEEF;
	return 0;
}

static void fault_test(void)
{
	kprintf("fault test: writing to 0x%llx (unmapped) at CPL3\n", FAULT_TEST_ADDR);
	ring_user_call(fault_test_cpl3, FAULT_TEST_ADDR);
	panic("fault test: the write to 0x%llx did not fault", FAULT_TEST_ADDR);
}

static __attribute__((noreturn)) void exit_with(const char *what, uint8_t code)
{
	kprintf("%s: exit code 0x%x\n", what, code);
	machine_exit(code);
}

void kmain(const struct boot_info *bi)
{
	uint64_t tsc_entry = tsc_read();
	bool have_serial = serial_init();
	const struct hftos_config *cfg = &hftos_config;

	kprintf("\nHFT-OS runtime (serial %s)\n", have_serial ? "ok" : "missing");
	kprintf("boot: phase entry tsc=%lu\n", tsc_entry);
	print_boot_info(bi);
	uint64_t tsc_hz = init_tsc();
	config_check(cfg);
	kprintf("config: v%u flags 0x%x max_messages %lu log_capacity %u\n", cfg->version,
		cfg->flags, cfg->max_messages, cfg->log_capacity);
	pci_list();
	if (cfg->flags & HFTOS_F_FAULT)
		fault_test();
	if (cfg->flags & HFTOS_F_NIC_TEST) {
		if (nic_selftest(cfg) < 0)
			exit_with("nic test failed", HFTOS_EXIT_NIC_FAILED);
		exit_with("nic test ok", HFTOS_EXIT_OK);
	}
	if (cfg->flags & HFTOS_F_PTP_TEST) {
		if (ptp_test(cfg) < 0)
			exit_with("ptp test failed", HFTOS_EXIT_NIC_FAILED);
		exit_with("ptp test ok", HFTOS_EXIT_OK);
	}
	if (cfg->flags & HFTOS_F_BOOT_ONLY)
		exit_with("boot ok (boot-only flag)", HFTOS_EXIT_OK);
	trade_start(cfg, tsc_hz);
	kprintf("boot: phase init tsc=%lu\n", tsc_read());
	trade_wait_ready();
	if (cfg->flags & HFTOS_F_HICCUPS)
		trade_hiccups(cfg->hiccup_ns, cfg->hiccup_threshold_ns);
	trade_loop();
	trade_finish();
	machine_exit(HFTOS_EXIT_OK);
}
