/*
 * main.c - HFT-OS runtime: bring-up, then (later) the trading hot loop.
 *
 * Order: console, descriptor tables, what the loader found (E820), TSC
 * frequency, PCI devices, the optional fault and NIC tests, then the run
 * ends with HFTOS_EXIT_OK. The config block (runtime/config.h) lives here, at a fixed
 * place in the image, so a run can be configured by patching bytes.
 */
#include "arch/x86_64/boot_info.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/trap.h"
#include "arch/x86_64/tsc.h"
#include "drivers/pci.h"
#include "drivers/serial.h"
#include "runtime/config.h"
#include "runtime/exit_codes.h"
#include "runtime/kprintf.h"
#include "runtime/nic_selftest.h"
#include "runtime/panic.h"

/* First address above the identity map: stage 2 maps [0, 4 GiB) only, so a
 * write here must raise #PF with CR2 = this address. */
#define FAULT_TEST_ADDR 0x100000000ull

struct hftos_config hftos_config __attribute__((section(".config"), used)) = {
	.magic = HFTOS_CONFIG_MAGIC,
	.version = HFTOS_CONFIG_VERSION,
	.size = sizeof(struct hftos_config),
	.local_ip = { 10, 0, 2, 15 },
	.peer_ip = { 10, 0, 2, 2 },
};

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

static void print_tsc(void)
{
	struct tsc_info t;

	tsc_init(&t);
	kprintf("tsc: %lu Hz from %s (PIT check %lu Hz), invariant %s\n", t.hz,
		tsc_source_name(t.source), t.pit_hz, t.invariant ? "yes" : "no");
	if (t.source == TSC_SOURCE_NONE)
		panic("no TSC frequency: CPUID 15h/16h absent and PIT did not respond");
}

static void fault_test(void)
{
	kprintf("fault test: writing to 0x%llx (unmapped)\n", FAULT_TEST_ADDR);
	*(volatile uint64_t *)FAULT_TEST_ADDR = 0xDEADBEEF;
	panic("fault test: the write to 0x%llx did not fault", FAULT_TEST_ADDR);
}

void kmain(const struct boot_info *bi)
{
	bool have_serial = serial_init();

	kprintf("\nHFT-OS runtime (config v%u, serial %s)\n", hftos_config.version,
		have_serial ? "ok" : "missing");
	gdt_init();
	idt_init();
	print_boot_info(bi);
	print_tsc();
	pci_list();
	if (hftos_config.fault_test)
		fault_test();
	if (hftos_config.nic_test && nic_selftest(&hftos_config) < 0) {
		kprintf("nic test failed: exit code nic failed (0x%x)\n", HFTOS_EXIT_NIC_FAILED);
		machine_exit(HFTOS_EXIT_NIC_FAILED);
	}
	kprintf("boot ok: exit code ok (0x%x)\n", HFTOS_EXIT_OK);
	machine_exit(HFTOS_EXIT_OK);
}
