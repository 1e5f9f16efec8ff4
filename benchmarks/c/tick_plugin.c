/*
 * tick_plugin.c - a QEMU TCG plugin that counts, per guest instruction
 * address, what HFT-OS executes between two marks: from a START
 * instruction (the RX stamp) to a STOP instruction (the stamp just before
 * the TX doorbell). Run by benchmarks/tick_profile.py, which finds the
 * marks in the image's symbols and maps the addresses to source lines.
 *
 *   qemu-system-x86_64 ... -plugin tick_plugin.so,lo=0x...,hi=0x...,
 *       start=0x...[:0x...],stop=0x...[:0x...],out=FILE
 *
 * Every instruction in [lo, hi) gets an execution callback (nothing else is
 * instrumented). A START begins a tick (a START during a tick restarts it:
 * that frame sent no order); a STOP ends it and writes it to the
 * file. FILE gets, per tick, a line "tick LENGTH" (the instructions from
 * the START up to, not including, the STOP: under -icount shift=0 the TSC
 * difference of the two stamps) and a line of their addresses in hex, in
 * the order executed; written to FILE.tmp and renamed at exit.
 *
 * Only the plugin API's stable core is used (QEMU's include/qemu/qemu-plugin.h
 * documents it; the declarations below are the ones this file needs, so no
 * QEMU source is required to build it: cc -shared -fPIC -O2).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct {
	const char *target_name;
	struct { int min, cur; } version;
	bool system_emulation;
} tp_info_t;  /* the leading fields of qemu_info_t */
typedef void (*tp_tb_trans_cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*tp_vcpu_udata_cb)(unsigned int vcpu_index, void *userdata);
typedef void (*tp_udata_cb)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tp_tb_trans_cb cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, tp_vcpu_udata_cb cb,
					    int flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, tp_udata_cb cb, void *userdata);

/* API level this file is written against (QEMU checks it against its
 * supported range at load). */
__attribute__((visibility("default"))) int qemu_plugin_version = 2;

#define TP_MAX_MARKS 64
#define TP_TICK_MAX 8192        /* instructions recorded per tick */

static uint64_t lo, hi, starts[TP_MAX_MARKS], stops[TP_MAX_MARKS];
static int n_starts, n_stops;
static const char *out_path;
static char tmp_path[4096];
static FILE *out;
static bool in_tick;
static uint32_t tick_len;
static uint64_t tick_buf[TP_TICK_MAX];

static bool is_mark(const uint64_t *marks, int n, uint64_t a)
{
	for (int i = 0; i < n; i++)
		if (marks[i] == a)
			return true;
	return false;
}

/* Per executed instruction in [lo, hi): userdata carries its address, and
 * bit 0 of the flags word in the top bits says START / STOP. */
#define TP_F_START (1ull << 62)
#define TP_F_STOP (1ull << 63)
static void on_insn(unsigned int vcpu, void *udata)
{
	uint64_t v = (uint64_t)(uintptr_t)udata, a = v & ~(TP_F_START | TP_F_STOP);

	(void)vcpu;
	if (v & TP_F_STOP) {
		if (in_tick) {
			fprintf(out, "tick %" PRIu32 "\n", tick_len);
			for (uint32_t k = 0; k < tick_len && k < TP_TICK_MAX; k++)
				fprintf(out, "%" PRIx64 "%c", tick_buf[k], k + 1 < tick_len ? ' ' : '\n');
		}
		in_tick = false;
	}
	if (v & TP_F_START) {  /* the stamp is its span's first instruction */
		in_tick = true;
		tick_len = 0;
	}
	if (in_tick) {
		if (tick_len < TP_TICK_MAX)
			tick_buf[tick_len] = a;
		tick_len++;
	}
}

static void on_tb(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	(void)id;
	for (size_t i = 0, n = qemu_plugin_tb_n_insns(tb); i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		uint64_t a = qemu_plugin_insn_vaddr(insn);
		if (a < lo || a >= hi)
			continue;
		uint64_t v = a | (is_mark(starts, n_starts, a) ? TP_F_START : 0) |
			     (is_mark(stops, n_stops, a) ? TP_F_STOP : 0);
		qemu_plugin_register_vcpu_insn_exec_cb(insn, on_insn, 0 /* no regs */,
						       (void *)(uintptr_t)v);
	}
}

static void on_exit_cb(qemu_plugin_id_t id, void *udata)
{
	(void)id;
	(void)udata;
	if (fclose(out) == 0)
		rename(tmp_path, out_path);
}

static int parse_marks(const char *s, uint64_t *marks)
{
	int n = 0;
	while (*s && n < TP_MAX_MARKS) {
		char *end;
		marks[n++] = strtoull(s, &end, 0);
		s = *end == ':' ? end + 1 : end;
		if (end == s && *s)
			break;
	}
	return n;
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const tp_info_t *info, int argc, char **argv)
{
	(void)info;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strncmp(a, "lo=", 3))
			lo = strtoull(a + 3, NULL, 0);
		else if (!strncmp(a, "hi=", 3))
			hi = strtoull(a + 3, NULL, 0);
		else if (!strncmp(a, "start=", 6))
			n_starts = parse_marks(a + 6, starts);
		else if (!strncmp(a, "stop=", 5))
			n_stops = parse_marks(a + 5, stops);
		else if (!strncmp(a, "out=", 4))
			out_path = a + 4;
		else {
			fprintf(stderr, "tick_plugin: unknown argument %s\n", a);
			return 1;
		}
	}
	if (!out_path || lo >= hi || !n_starts || !n_stops) {
		fprintf(stderr, "tick_plugin: needs lo=, hi=, start=, stop= and out=\n");
		return 1;
	}
	snprintf(tmp_path, sizeof tmp_path, "%s.tmp", out_path);
	out = fopen(tmp_path, "w");
	if (!out) {
		fprintf(stderr, "tick_plugin: cannot write %s\n", tmp_path);
		return 1;
	}
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb);
	qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
	return 0;
}
