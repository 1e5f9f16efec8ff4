/*
 * trap.c - CPU exceptions: dump everything useful, then end the run.
 *
 * The dump names the vector, the error code, RIP, CR2 (the faulting address
 * for #PF) and every general register, so a crash under QEMU or on hardware
 * can be diagnosed from the serial log alone. The run then ends with
 * HFTOS_EXIT_CRASHED (QEMU) or halts (hardware). Exceptions are never
 * resumed: the runtime has nothing to fix up.
 */
#include "arch/x86_64/trap.h"
#include "arch/x86_64/cpu.h"
#include "runtime/exit_codes.h"
#include "runtime/kprintf.h"
#include "drivers/serial.h"

#define VECTOR_PAGE_FAULT 14
#define PF_ERR_PRESENT    (1u << 0) /* #PF error code, SDM vol. 3A 4.7 */
#define PF_ERR_WRITE      (1u << 1)
#define PF_ERR_USER       (1u << 2)
#define PF_ERR_FETCH      (1u << 4)

/* Intel SDM vol. 3A table 6-1 mnemonics. */
static const char *const exception_names[EXCEPTION_VECTORS] = {
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint",
	"#OF overflow", "#BR bound range", "#UD invalid opcode", "#NM no FPU",
	"#DF double fault", "coprocessor overrun", "#TS invalid TSS",
	"#NP segment not present", "#SS stack fault", "#GP general protection",
	"#PF page fault", "reserved 15", "#MF x87 error", "#AC alignment check",
	"#MC machine check", "#XM SIMD exception", "#VE virtualization",
	"#CP control protection", "reserved 22", "reserved 23", "reserved 24",
	"reserved 25", "reserved 26", "reserved 27", "#HV hypervisor injection",
	"#VC VMM communication", "#SX security", "reserved 31",
};

static void print_page_fault_cause(uint64_t err)
{
	kprintf("  cause: %s, %s, %s%s\n",
		(err & PF_ERR_PRESENT) ? "protection violation" : "page not present",
		(err & PF_ERR_WRITE) ? "write" : "read",
		(err & PF_ERR_USER) ? "user" : "supervisor",
		(err & PF_ERR_FETCH) ? ", instruction fetch" : "");
}

static void print_registers(const struct trap_frame *f)
{
	kprintf("  rax %016lx  rbx %016lx  rcx %016lx\n", f->rax, f->rbx, f->rcx);
	kprintf("  rdx %016lx  rsi %016lx  rdi %016lx\n", f->rdx, f->rsi, f->rdi);
	kprintf("  rbp %016lx  rsp %016lx  r8  %016lx\n", f->rbp, f->rsp, f->r8);
	kprintf("  r9  %016lx  r10 %016lx  r11 %016lx\n", f->r9, f->r10, f->r11);
	kprintf("  r12 %016lx  r13 %016lx  r14 %016lx\n", f->r12, f->r13, f->r14);
	kprintf("  r15 %016lx  rflags %016lx\n", f->r15, f->rflags);
	kprintf("  cs %04lx (CPL%lu)  ss %04lx  cr0 %016lx  cr3 %016lx  cr4 %016lx\n",
		f->cs, f->cs & 3, f->ss, read_cr0(), read_cr3(), read_cr4());
}

void trap_dispatch(struct trap_frame *f)
{
	uint64_t cr2 = read_cr2();
	const char *name = f->vector < EXCEPTION_VECTORS ? exception_names[f->vector] : "?";

	if (!serial_ready()) /* raised in _start, before kmain's serial_init */
		serial_init();

	kprintf("\n*** CPU EXCEPTION: vector %lu (%s) error code 0x%lx\n", f->vector, name,
		f->error_code);
	kprintf("  rip %016lx  cr2 %016lx\n", f->rip, cr2);
	if (f->vector == VECTOR_PAGE_FAULT)
		print_page_fault_cause(f->error_code);
	print_registers(f);
	kprintf("*** halted: exit code crashed (0x%x)\n", HFTOS_EXIT_CRASHED);
	machine_exit(HFTOS_EXIT_CRASHED);
}
