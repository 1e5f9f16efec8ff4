/*
 * loader.c - BOOTX64.EFI: the UEFI path from the firmware to the runtime.
 *
 * A UEFI application (PE32+, subsystem 10) that carries the runtime
 * (build/runtime.bin, config block included) inside itself, in the .hftrt
 * section of enter.asm: it needs no disk, so the same file boots from the
 * EFI System Partition of build/hftos.img, from a USB stick, or by PXE or
 * iPXE (the firmware fetches BOOTX64.EFI over TFTP/HTTP and starts it; no
 * second file to find). Each step is one function, in this order:
 *   print_hello          "hftos uefi tsc=0x...": the TSC at entry
 *   check_runtime        the embedded image header (runtime/image_header.h):
 *                        magic, version, addresses, size against what we carry
 *   check_placement      our trampoline, tables, stack and boot_info lie under
 *                        4 GiB, so they stay mapped when CR3 changes, and
 *                        outside the runtime's range
 *   place_runtime        every page of [load address, end of .bss) must be
 *                        EfiConventionalMemory or boot services code/data
 *                        (free after ExitBootServices; OVMF has its DXE core
 *                        there); the conventional pieces are claimed with
 *                        AllocatePages(AllocateAddress) as LoaderData
 *   exit_boot_services   GetMemoryMap into a static buffer, ExitBootServices
 *                        with its key, once more with a fresh map if refused
 *   build_e820           the final UEFI map as the E820 table stage 2 reads
 *                        from the BIOS: sorted, merged, UEFI types mapped
 *   uefi_enter           (enter.asm) stage 2's GDT, page tables (shared
 *                        boot/page_tables.inc) and long-mode state, our
 *                        stack, the runtime's bytes copied to its load
 *                        address, then _start with rdi = &boot_info
 * Errors print "hftos boot error: <letter>" (boot/boot_errors.h) and, when a
 * firmware call failed, its name and the EFI status it returned; then the
 * loader writes HFTOS_EXIT_BOOT_FAILED to isa-debug-exit and halts. Before
 * ExitBootServices the text goes to ConOut (OVMF puts ConOut on the screen
 * and on the serial port), after it straight to COM1.
 */
#include <stdint.h>

#include "boot/uefi/efi.h"
#include "boot/boot_errors.h"
#include "arch/x86_64/boot_info.h"
#include "runtime/image_header.h"
#include "runtime/exit_codes.h"

#define RUNTIME_MIN_LOAD  0x100000ull    /* as stage 2: below 1 MiB is firmware's */
#define LOW_LIMIT         0x100000000ull /* the boot page tables map [0, 4 GiB) */
#define MAP_BUFFER_SIZE   (64 * 1024)    /* OVMF's map: ~100 descriptors of 48 bytes */
#define MAP_MAX_ENTRIES   (MAP_BUFFER_SIZE / sizeof(struct efi_memory_descriptor))
#define COM1_BASE         0x3F8
#define UART_LSR          5
#define UART_LSR_THRE     0x20
#define UART_SPIN_LIMIT   0xFFFF

/* enter.asm */
extern const uint8_t runtime_payload[], runtime_payload_end[];
extern const uint8_t uefi_enter_start[], uefi_enter_end[];
__attribute__((noreturn)) void uefi_enter(struct boot_info *bi, uint64_t entry,
					 const uint8_t *runtime, uint64_t runtime_size);

struct runtime_image {
	const uint8_t *bytes; /* the header's first byte, inside .hftrt */
	uint64_t load, file_end, entry, mem_end;
};

static struct efi_text_out *con_out; /* NULL after ExitBootServices: COM1 */
static struct boot_info boot_info;
static uint8_t map_buffer[MAP_BUFFER_SIZE] __attribute__((aligned(8)));
static struct e820_entry e820_scratch[MAP_MAX_ENTRIES];

/* The compiler may call these for struct copies and clears. */
void *memset(void *dst, int c, uint64_t n);
void *memcpy(void *dst, const void *src, uint64_t n);
void *memset(void *dst, int c, uint64_t n)
{
	uint8_t *d = dst;
	while (n--)
		*d++ = (uint8_t)c;
	return dst;
}
void *memcpy(void *dst, const void *src, uint64_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* --- output ---------------------------------------------------------------- */

/* com1_putc - after ExitBootServices: the UART as the firmware left it
 * (OVMF: 115200 8N1), with a bounded wait for THRE as stage 2 does. */
static void com1_putc(char c)
{
	for (uint32_t i = 0; i < UART_SPIN_LIMIT; i++)
		if (inb(COM1_BASE + UART_LSR) & UART_LSR_THRE)
			break;
	outb(COM1_BASE, (uint8_t)c);
}

/* print - ASCII text to ConOut (as UTF-16, in chunks) or, after
 * ExitBootServices, to COM1. */
static void print(const char *s)
{
	char16 buf[64];
	while (*s) {
		uint32_t n = 0;
		for (; *s && n < 63; s++) {
			if (!con_out)
				com1_putc(*s);
			buf[n++] = (char16)*s;
		}
		buf[n] = 0;
		if (con_out)
			con_out->output_string(con_out, buf);
	}
}

static void print_hex(uint64_t v)
{
	char s[17];
	for (int i = 15; i >= 0; i--, v >>= 4)
		s[i] = "0123456789abcdef"[v & 0xF];
	s[16] = 0;
	print(s);
}

/* fatal - the one-letter code, the failed call and its EFI status (if
 * `call` is set) or the reason; exit QEMU as "boot failed"; halt. */
static __attribute__((noreturn)) void fatal(uint8_t code, const char *call, efi_status status,
					    const char *reason)
{
	char letter[2] = { (char)code, 0 };
	print("hftos boot error: ");
	print(letter);
	if (call) {
		print(" (");
		print(call);
		print(": EFI status 0x");
		print_hex(status);
		print(")");
	} else if (reason) {
		print(" (");
		print(reason);
		print(")");
	}
	print("\r\n");
	outb(HFTOS_DEBUG_EXIT_PORT, HFTOS_EXIT_BOOT_FAILED);
	for (;;)
		__asm__ volatile("cli; hlt");
}

static void print_hello(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	print("hftos uefi tsc=0x");
	print_hex((uint64_t)hi << 32 | lo);
	print("\r\n");
}

/* --- boot steps -------------------------------------------------------------- */

static uint64_t read_u64(const uint8_t *p, uint32_t off)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[off + (uint32_t)i];
	return v;
}

/* check_runtime - the embedded runtime's header must be ours and describe
 * an image that fits what BOOTX64.EFI carries: a missing or cut runtime,
 * or one linked where the firmware lives, stops here with 'H'. */
static void check_runtime(struct runtime_image *rt)
{
	uint64_t carried = (uint64_t)(runtime_payload_end - runtime_payload);
	rt->bytes = runtime_payload;
	if (carried < HFTOS_CONFIG_OFFSET)
		fatal(ERR_BAD_HEADER, 0, 0, "no runtime in BOOTX64.EFI");
	if ((uint32_t)read_u64(rt->bytes, HFTOS_IMAGE_OFF_MAGIC) != HFTOS_IMAGE_MAGIC ||
	    (uint32_t)read_u64(rt->bytes, HFTOS_IMAGE_OFF_VERSION) != HFTOS_IMAGE_VERSION)
		fatal(ERR_BAD_HEADER, 0, 0, "runtime header: bad magic or version");
	rt->load = read_u64(rt->bytes, HFTOS_IMAGE_OFF_LOAD);
	rt->file_end = read_u64(rt->bytes, HFTOS_IMAGE_OFF_FILE_END);
	rt->entry = read_u64(rt->bytes, HFTOS_IMAGE_OFF_ENTRY);
	rt->mem_end = read_u64(rt->bytes, HFTOS_IMAGE_OFF_MEM_END);
	if (rt->load < RUNTIME_MIN_LOAD || rt->file_end <= rt->load || rt->mem_end < rt->file_end ||
	    rt->mem_end > LOW_LIMIT || rt->entry < rt->load || rt->entry >= rt->file_end ||
	    rt->load % EFI_PAGE_SIZE)
		fatal(ERR_BAD_HEADER, 0, 0, "runtime header: addresses out of range");
	if (rt->file_end - rt->load > carried)
		fatal(ERR_BAD_HEADER, 0, 0, "runtime truncated: header says more bytes than carried");
}

/* check_placement - uefi_enter switches to page tables that map [0, 4 GiB)
 * only: its code, GDT, tables and stack and boot_info must lie there (OVMF
 * loads images in RAM below 4 GiB; a firmware that did not is refused).
 * And it copies the runtime out of this image to the runtime's range,
 * which must not overlap the image. */
static void check_placement(const struct runtime_image *rt)
{
	uint64_t lo = (uint64_t)uefi_enter_start, hi = (uint64_t)uefi_enter_end;
	uint64_t bi = (uint64_t)&boot_info + sizeof(boot_info);
	uint64_t src = (uint64_t)runtime_payload, src_end = (uint64_t)runtime_payload_end;
	if (hi > LOW_LIMIT || lo > LOW_LIMIT || bi > LOW_LIMIT)
		fatal(ERR_UEFI_LOW_MEMORY, 0, 0, "BOOTX64.EFI was loaded above 4 GiB");
	if ((src < rt->mem_end && src_end > rt->load) || (lo < rt->mem_end && hi > rt->load) ||
	    (bi > rt->load && (uint64_t)&boot_info < rt->mem_end))
		fatal(ERR_UEFI_NO_RAM, 0, 0, "BOOTX64.EFI was loaded inside the runtime's range");
}

struct memory_map {
	uint64_t size, key, descriptor_size;
	uint32_t version;
};

static efi_status get_memory_map(struct efi_boot_services *bs, struct memory_map *m)
{
	m->size = sizeof(map_buffer);
	return bs->get_memory_map(&m->size, (struct efi_memory_descriptor *)map_buffer, &m->key,
				  &m->descriptor_size, &m->version);
}

/* A free piece of the runtime's range: claimed by place_runtime. */
struct free_piece {
	uint64_t base, pages;
};
#define MAX_FREE_PIECES 16

/* range_piece - the part of descriptor d inside [lo, hi), in pages; 0 if
 * none. *base receives its first address. */
static uint64_t range_piece(const struct efi_memory_descriptor *d, uint64_t lo, uint64_t hi,
			    uint64_t *base)
{
	uint64_t start = d->physical_start, end = start + d->pages * EFI_PAGE_SIZE;
	if (end <= lo || start >= hi)
		return 0;
	*base = start > lo ? start : lo;
	return ((end < hi ? end : hi) - *base) / EFI_PAGE_SIZE;
}

/* fatal_range - 'S': the runtime's range holds memory it may not use. */
static __attribute__((noreturn)) void fatal_range(const char *why, uint64_t at, uint32_t type)
{
	print("uefi: runtime range: ");
	print(why);
	print(" at 0x");
	print_hex(at);
	print(", UEFI memory type 0x");
	print_hex(type);
	print("\r\n");
	fatal(ERR_UEFI_NO_RAM, 0, 0, "no free RAM for the runtime at its load address");
}

/* check_runtime_range - the runtime is linked at a fixed address
 * (linker.ld): every page of [load, mem_end) must be RAM that is free once
 * boot services are gone: EfiConventionalMemory (collected in `free`) or
 * boot services code/data (OVMF keeps its DXE core and page tables between
 * 1 and 41 MiB). Anything else, or a hole (too little RAM), stops with 'S'. */
static uint32_t check_runtime_range(struct efi_boot_services *bs, const struct runtime_image *rt,
				    struct free_piece *free)
{
	struct memory_map m;
	uint64_t covered = 0, base;
	uint64_t end = (rt->mem_end + EFI_PAGE_SIZE - 1) & ~(uint64_t)(EFI_PAGE_SIZE - 1);
	uint32_t n = 0;
	efi_status st = get_memory_map(bs, &m);
	if (st != EFI_SUCCESS)
		fatal(ERR_E820, "GetMemoryMap", st, 0);
	for (uint64_t off = 0; off + m.descriptor_size <= m.size; off += m.descriptor_size) {
		const struct efi_memory_descriptor *d = (const void *)(map_buffer + off);
		uint64_t pages = range_piece(d, rt->load, end, &base);
		if (!pages)
			continue;
		if (d->type == EFI_CONVENTIONAL_MEMORY) {
			if (n == MAX_FREE_PIECES)
				fatal_range("too many free pieces", base, d->type);
			free[n++] = (struct free_piece){ base, pages };
		} else if (d->type != EFI_BOOT_SERVICES_CODE && d->type != EFI_BOOT_SERVICES_DATA) {
			fatal_range("memory in use", base, d->type);
		}
		covered += pages;
	}
	if (covered * EFI_PAGE_SIZE < end - rt->load)
		fatal_range("not all of it is RAM (too little memory?)", rt->load + covered * EFI_PAGE_SIZE, 0);
	return n;
}

/* place_runtime - claim the free pieces of the runtime's range as
 * LoaderData, so no firmware allocation lands there before
 * ExitBootServices; the boot services pieces are free after it. The bytes
 * are copied by uefi_enter, on our stack and page tables: the range may
 * hold the firmware's own stack and tables until then. */
static void place_runtime(struct efi_boot_services *bs, const struct runtime_image *rt)
{
	struct free_piece free[MAX_FREE_PIECES];
	uint32_t n = check_runtime_range(bs, rt, free);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t at = free[i].base;
		efi_status st = bs->allocate_pages(EFI_ALLOCATE_ADDRESS, EFI_LOADER_DATA, free[i].pages, &at);
		if (st != EFI_SUCCESS)
			fatal(ERR_UEFI_NO_RAM, "AllocatePages in the runtime's range", st, 0);
	}
	print("uefi: runtime 0x");
	print_hex(rt->file_end - rt->load);
	print(" bytes for 0x");
	print_hex(rt->load);
	print(", .bss to 0x");
	print_hex(rt->mem_end);
	print("\r\n");
}

/* exit_boot_services - the spec (7.4.6) lets ExitBootServices fail when the
 * map changed since GetMemoryMap: then take the map again and retry once.
 * Nothing between the two calls may allocate (no ConOut output). */
static void exit_boot_services(efi_handle image, struct efi_boot_services *bs,
			       struct memory_map *m)
{
	print("uefi: exiting boot services\r\n");
	efi_status st = get_memory_map(bs, m);
	if (st != EFI_SUCCESS)
		fatal(ERR_UEFI_EXIT_BOOT, "GetMemoryMap", st, 0);
	st = bs->exit_boot_services(image, m->key);
	if (st != EFI_SUCCESS) {
		st = get_memory_map(bs, m);
		if (st != EFI_SUCCESS)
			fatal(ERR_UEFI_EXIT_BOOT, "GetMemoryMap (second)", st, 0);
		st = bs->exit_boot_services(image, m->key);
	}
	if (st != EFI_SUCCESS)
		fatal(ERR_UEFI_EXIT_BOOT, "ExitBootServices", st, 0);
	con_out = 0; /* boot services are gone: COM1 from here on */
	if (m->descriptor_size < sizeof(struct efi_memory_descriptor))
		fatal(ERR_E820, 0, 0, "memory map descriptors too small");
}

/* e820_type - what a UEFI memory type is once boot services are gone: the
 * loader's and boot services' memory is free RAM, as conventional memory
 * (our boot_info, tables and the runtime lie in LoaderData, as stage 2's lie
 * in E820 RAM); runtime services, MMIO and the rest stay reserved. */
static uint32_t e820_type(uint32_t efi_type)
{
	switch (efi_type) {
	case EFI_LOADER_CODE:
	case EFI_LOADER_DATA:
	case EFI_BOOT_SERVICES_CODE:
	case EFI_BOOT_SERVICES_DATA:
	case EFI_CONVENTIONAL_MEMORY:
		return E820_TYPE_RAM;
	case EFI_ACPI_RECLAIM_MEMORY:
		return E820_TYPE_ACPI;
	case EFI_ACPI_MEMORY_NVS:
		return E820_TYPE_NVS;
	case EFI_UNUSABLE_MEMORY:
		return E820_TYPE_BAD;
	default:
		return E820_TYPE_RESERVED;
	}
}

/* e820_insert - add [base, base+length) of `type` to the first n sorted
 * entries (insertion sort: the spec does not promise an ordered map). */
static uint32_t e820_insert(uint32_t n, uint64_t base, uint64_t length, uint32_t type)
{
	uint32_t i = n;
	while (i > 0 && e820_scratch[i - 1].base > base) {
		e820_scratch[i] = e820_scratch[i - 1];
		i--;
	}
	e820_scratch[i] = (struct e820_entry){ base, length, type, 1 /* ACPI 3.0 "enabled" */ };
	return n + 1;
}

/* e820_merge - join neighbours of one type that touch; returns the count. */
static uint32_t e820_merge(uint32_t n)
{
	uint32_t out = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct e820_entry *last = out ? &e820_scratch[out - 1] : 0;
		if (last && last->type == e820_scratch[i].type &&
		    last->base + last->length == e820_scratch[i].base)
			last->length += e820_scratch[i].length;
		else
			e820_scratch[out++] = e820_scratch[i];
	}
	return out;
}

/* build_e820 - the final map into boot_info: sorted, merged, at most
 * BOOT_INFO_E820_MAX entries kept (more are dropped, as stage 2 does). */
static void build_e820(const struct memory_map *m, struct boot_info *bi)
{
	uint32_t n = 0, usable = 0;
	for (uint64_t off = 0; off + m->descriptor_size <= m->size && n < MAP_MAX_ENTRIES;
	     off += m->descriptor_size) {
		const struct efi_memory_descriptor *d = (const void *)(map_buffer + off);
		if (d->pages)
			n = e820_insert(n, d->physical_start, d->pages * EFI_PAGE_SIZE,
					e820_type(d->type));
	}
	n = e820_merge(n);
	for (uint32_t i = 0; i < n && bi->e820_count < BOOT_INFO_E820_MAX; i++) {
		bi->e820[bi->e820_count++] = e820_scratch[i];
		usable += e820_scratch[i].type == E820_TYPE_RAM;
	}
	if (!usable)
		fatal(ERR_E820, 0, 0, "no RAM in the UEFI memory map");
	print("uefi: E820 entries 0x");
	print_hex(bi->e820_count);
	print("\r\n");
}

EFIAPI efi_status efi_main(efi_handle image, struct efi_system_table *st);
EFIAPI efi_status efi_main(efi_handle image, struct efi_system_table *st)
{
	struct efi_boot_services *bs = st->boot_services;
	struct runtime_image rt;
	struct memory_map map;

	con_out = st->con_out;
	print_hello();
	check_runtime(&rt);
	check_placement(&rt);
	place_runtime(bs, &rt);
	exit_boot_services(image, bs, &map);
	boot_info.magic = BOOT_INFO_MAGIC;
	boot_info.boot_drive = 0; /* no BIOS drive on this path */
	boot_info.runtime_load = rt.load;
	boot_info.runtime_size = rt.file_end - rt.load;
	build_e820(&map, &boot_info);
	print("uefi: entering the runtime\r\n");
	/* copies the runtime to its load address, sets boot_info.mapped_top */
	uefi_enter(&boot_info, rt.entry, rt.bytes, rt.file_end - rt.load);
}
