/*
 * bench_engine.c - host throughput of the trading core, in ns per message.
 *
 *   bench_engine ITCH_FILE [--reps N] [--config FILE] [--order-cap N] [--no-level-hash]
 *                [--small-pages] [--json]
 *
 * Paths timed over the whole file, each N times after one untimed warm-up:
 *   decode        itch_decode alone over messages framed beforehand
 *   frame+decode  itch_frame_next + itch_decode straight off the mapping
 *   on_message    engine_on_message: decode + book + strategy + risk, and the
 *                 emit callback OUCH-encodes every accepted order
 *   on_packet     engine_on_packet over MoldUDP64 datagrams packed beforehand
 *                 (1400-byte payloads, at most 64 messages, as the golden
 *                 model packs them): sequencing on top of on_message
 * The engine is re-initialised, untimed, before every repetition. --config
 * reads a raw struct engine_config (hftlab: EngineConfig.to_bytes()); without
 * it a built-in config is used. --order-cap sizes the book (a power of two,
 * default 2^20 orders as hftlab.model.core.Engine; the hash index is twice that):
 * the book's memory, not its code, decides how many lookups miss the cache.
 * The book has its level hash (book_mem.lindex, 2^19 slots for 2^18 levels)
 * as every build's does; --no-level-hash leaves it out (the treap alone).
 * The book's arrays ask for 2 MiB pages (madvise(MADV_HUGEPAGE): HFT-OS maps
 * everything with 2 MiB pages); --small-pages leaves them on 4 KiB pages.
 * How much the kernel granted is printed (huge_page_kib, host_pages.h). Both engine paths must emit the same orders
 * (count and a checksum of the OUCH bytes), or the program fails.
 *
 * Output: a table (min / median / max ns per message and M messages/s at the
 * median) preceded by the environment, or with --json one JSON object
 * (each path also lists its passes in order, "ns": pass k of every path ran
 * in the same round, so decode's pass k tells how fast the machine was
 * during the others' pass k).
 * Times come from clock_gettime(CLOCK_MONOTONIC).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "host_pages.h"  /* baselines/: the book on 2 MiB pages, as the baselines' */
#include "ouch.h"

#define BENCH_MAX_REPS 50
#define BENCH_ORDER_CAP (1u << 20)  /* default book: as hftlab.model.core.Engine */
#define BENCH_LEVEL_CAP (1u << 18)
#define BENCH_USAGE "usage: bench_engine ITCH_FILE [--reps 1..50] [--config FILE] " \
	"[--order-cap POWER_OF_TWO] [--no-level-hash] [--small-pages] [--json]"
#define BENCH_MOLD_PAYLOAD 1400
#define BENCH_MOLD_COUNT 64

static const uint8_t bench_session[MOLD_SESSION_LEN] = "BENCH00001";

/* The messages of the file, framed once. */
struct msgs {
	const uint8_t **p;
	uint16_t *len;
	size_t n;
};

/* The same messages as MoldUDP64 datagrams, back to back. */
struct packets {
	uint8_t *buf;
	size_t *off;    /* n + 1 offsets into buf */
	size_t n;
};

struct result {
	const char *name;
	double ns[BENCH_MAX_REPS];  /* per message, one per repetition */
	int reps;
};

/* Emit callback state: the OUCH bytes go to a scratch buffer, as they would
 * go to a TX descriptor. */
struct sink {
	uint8_t ouch[OUCH_ENTER_LEN];
	uint8_t instance;
	uint64_t orders;
	uint64_t sum;
};

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *msg)
{
	fprintf(stderr, "bench_engine: %s\n", msg);
	exit(1);
}

static void bench_emit(void *ctx, const struct order_intent *o)
{
	struct sink *s = ctx;
	ouch_encode_order(s->ouch, sizeof s->ouch, o, s->instance);
	uint64_t w;
	memcpy(&w, s->ouch + 1, sizeof w);  /* token bytes: differ per order */
	s->sum = s->sum * 31 + w + rd_be32(s->ouch + 28);
	s->orders++;
}

static const uint8_t *map_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		die("cannot open the ITCH file");
	*len = (size_t)st.st_size;
	if (*len == 0)
		die("empty ITCH file");
	void *p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		die("mmap failed");
	return p;
}

static void frame_all(const uint8_t *buf, size_t len, struct msgs *m)
{
	struct itch_frame f;
	size_t off = 0, cap = len / 12 + 1;  /* the shortest message is 12 bytes */

	m->p = malloc(cap * sizeof *m->p);
	m->len = malloc(cap * sizeof *m->len);
	m->n = 0;
	while (itch_frame_next(buf, len, &off, &f) == ITCH_FRAME_OK && m->n < cap) {
		m->p[m->n] = f.msg;
		m->len[m->n++] = f.len;
	}
	if (off != len)
		die("the ITCH file does not frame to its end");
}

static void pack_all(const struct msgs *m, struct packets *pk)
{
	struct mold_writer w;
	size_t i = 0, used = 0, bytes = 0;

	for (size_t k = 0; k < m->n; k++)
		bytes += 2 + (size_t)m->len[k];
	/* At worst one message per packet: a header each. */
	pk->buf = malloc(bytes + MOLD_HDR_LEN * (m->n + 1));
	pk->off = malloc((m->n + 2) * sizeof *pk->off);
	if (!pk->buf || !pk->off)
		die("out of memory");
	pk->n = 0;
	while (i < m->n) {
		/* A message too long for a 1400-byte payload travels alone. */
		size_t cap = MOLD_HDR_LEN + 2 + (size_t)m->len[i];
		cap = cap > BENCH_MOLD_PAYLOAD ? cap : BENCH_MOLD_PAYLOAD;
		mold_pack_begin(&w, pk->buf + used, cap, bench_session, i + 1);
		while (i < m->n && w.count < BENCH_MOLD_COUNT && mold_pack_add(&w, m->p[i], m->len[i]))
			i++;
		pk->off[pk->n++] = used;
		used += mold_pack_end(&w, false);
	}
	pk->off[pk->n] = used;
}

static void default_config(struct engine_config *c)
{
	memset(c, 0, sizeof *c);
	c->magic = ENGINE_CONFIG_MAGIC;
	c->version = ENGINE_CONFIG_VERSION;
	c->instance = 1;
	c->strat = (struct strategy_config){ .order_shares = 100, .imbalance_num = 3,
		.imbalance_den = 1, .min_top_shares = 1, .max_spread = 10000, .cross_trigger = 1 };
	c->risk = (struct risk_config){ .max_position = 5000, .max_notional = 100000000000ull,
		.max_order_shares = 1000, .max_orders_per_sec = 100, .price_band_bps = 500 };
}

static void read_config(const char *path, struct engine_config *c)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL || fread(c, 1, sizeof *c, f) != sizeof *c)
		die("cannot read a struct engine_config from --config");
	fclose(f);
}

/* Book memory for the engine paths, allocated once. */
static struct book_mem book_mem_alloc(uint32_t order_cap, uint32_t level_cap, bool level_hash,
				      bool huge_pages)
{
	struct book_mem m = {
		.orders = host_book_array(order_cap, sizeof(struct book_order), huge_pages),
		.order_cap = order_cap,
		.index = host_book_array(2 * (size_t)order_cap, sizeof(uint32_t), huge_pages),
		.index_cap = 2 * order_cap,
		.levels = host_book_array(level_cap, sizeof(struct book_level), huge_pages),
		.level_cap = level_cap,
	};
	if (level_hash) {
		m.lindex = host_book_array(2 * (size_t)level_cap, sizeof(uint32_t), huge_pages);
		m.lindex_cap = 2 * level_cap;
	}
	if (!m.orders || !m.index || !m.levels || (level_hash && !m.lindex))
		die("out of memory");
	return m;
}

/* --------------------------------------------------------- timed paths */

static volatile uint64_t sink_u64;

static double run_decode(const struct msgs *m)
{
	struct itch_msg im;
	uint64_t acc = 0;
	double t0 = now_ns();
	for (size_t i = 0; i < m->n; i++)
		if (itch_decode(m->p[i], m->len[i], &im) == ITCH_OK)
			acc += im.order_ref ^ im.price;
	double t1 = now_ns();
	sink_u64 = acc;
	return t1 - t0;
}

static double run_frame_decode(const uint8_t *buf, size_t len)
{
	struct itch_frame f;
	struct itch_msg im;
	uint64_t acc = 0;
	size_t off = 0;
	double t0 = now_ns();
	while (itch_frame_next(buf, len, &off, &f) == ITCH_FRAME_OK)
		if (itch_decode(f.msg, f.len, &im) == ITCH_OK)
			acc += im.order_ref ^ im.price;
	double t1 = now_ns();
	sink_u64 = acc;
	return t1 - t0;
}

static double run_on_message(struct engine *e, const struct msgs *m, struct sink *s)
{
	double t0 = now_ns();
	for (size_t i = 0; i < m->n; i++)
		engine_on_message(e, m->p[i], m->len[i], i + 1, bench_emit, s);
	return now_ns() - t0;
}

static double run_on_packet(struct engine *e, const struct packets *pk, struct sink *s)
{
	double t0 = now_ns();
	for (size_t i = 0; i < pk->n; i++)
		engine_on_packet(e, pk->buf + pk->off[i], pk->off[i + 1] - pk->off[i], bench_emit, s);
	return now_ns() - t0;
}

/* ---------------------------------------------------------- reporting */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void stats(const struct result *r, double *mn, double *med, double *mx)
{
	double v[BENCH_MAX_REPS];
	memcpy(v, r->ns, (size_t)r->reps * sizeof v[0]);
	qsort(v, (size_t)r->reps, sizeof v[0], cmp_double);
	*mn = v[0];
	*mx = v[r->reps - 1];
	*med = r->reps % 2 ? v[r->reps / 2] : (v[r->reps / 2 - 1] + v[r->reps / 2]) / 2;
}

static void cpu_model(char *out, size_t cap)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	snprintf(out, cap, "unknown");
	while (f && fgets(line, sizeof line, f)) {
		char *c = strchr(line, ':');
		if (strncmp(line, "model name", 10) == 0 && c) {
			snprintf(out, cap, "%s", c + 2);
			out[strcspn(out, "\n")] = 0;
			break;
		}
	}
	if (f)
		fclose(f);
}

static void report(const struct result *res, int nres, size_t n, size_t npk,
		   const struct sink *s, const struct engine *e, const char *file, bool huge_pages, bool json)
{
	char cpu[256];
	struct utsname u;
	cpu_model(cpu, sizeof cpu);
	uname(&u);
	if (json) {
		printf("{\"cpu\": \"%s\", \"kernel\": \"%s\", \"nproc\": %ld, \"file\": \"%s\", "
		       "\"messages\": %zu, \"packets\": %zu, \"orders\": %llu, \"order_cap\": %u, "
		       "\"level_hash\": %s, \"huge_pages\": %s, \"huge_page_kib\": %ld, "
		       "\"full_orders\": %llu, \"reps\": %d, \"paths\": {",
		       cpu, u.release, sysconf(_SC_NPROCESSORS_ONLN), file, n, npk,
		       (unsigned long long)s->orders, e->book.m.order_cap,
		       e->book.m.lindex ? "true" : "false", huge_pages ? "true" : "false", host_huge_kib(),
		       (unsigned long long)e->book.c.full_orders, res[0].reps);
	} else {
		printf("cpu: %s (%ld online), kernel %s\n", cpu, sysconf(_SC_NPROCESSORS_ONLN), u.release);
		printf("file: %s: %zu messages, %zu MoldUDP64 packets, %llu orders per engine pass\n",
		       file, n, npk, (unsigned long long)s->orders);
		printf("book: %u order slots%s, %s pages (%ld KiB of 2 MiB pages granted), %llu adds, "
		       "%llu full_orders, %llu full_levels; risk accepted %llu\n", e->book.m.order_cap,
		       e->book.m.lindex ? " + level hash" : "", huge_pages ? "2 MiB" : "4 KiB", host_huge_kib(), (unsigned long long)e->book.c.adds, (unsigned long long)e->book.c.full_orders,
		       (unsigned long long)e->book.c.full_levels, (unsigned long long)e->risk.c.accepted);
		printf("%-14s %9s %9s %9s %12s   (%d reps, ns per message)\n",
		       "path", "min", "median", "max", "M msg/s", res[0].reps);
	}
	for (int i = 0; i < nres; i++) {
		double mn, med, mx;
		stats(&res[i], &mn, &med, &mx);
		if (json) {
			printf("%s\"%s\": {\"ns_min\": %.3f, \"ns_median\": %.3f, \"ns_max\": %.3f, "
			       "\"mmsgs_median\": %.3f, \"mmsgs_best\": %.3f, \"ns\": [", i ? ", " : "",
			       res[i].name, mn, med, mx, 1e3 / med, 1e3 / mn);
			/* every pass in order: pass k of each path ran back to back */
			for (int k = 0; k < res[i].reps; k++)
				printf("%s%.3f", k ? ", " : "", res[i].ns[k]);
			printf("]}");
		} else
			printf("%-14s %9.2f %9.2f %9.2f %12.2f\n", res[i].name, mn, med, mx, 1e3 / med);
	}
	if (json)
		printf("}}\n");
}

struct options {
	const char *file;
	const char *config;
	int reps;
	unsigned long order_cap;
	bool no_level_hash;
	bool small_pages;
	bool json;
};

static void parse_args(int argc, char **argv, struct options *o)
{
	*o = (struct options){ .reps = 5, .order_cap = BENCH_ORDER_CAP };
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			o->reps = atoi(argv[++i]);
		else if (strcmp(argv[i], "--order-cap") == 0 && i + 1 < argc)
			o->order_cap = strtoul(argv[++i], NULL, 0);
		else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			o->config = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			o->json = true;
		else if (strcmp(argv[i], "--no-level-hash") == 0)
			o->no_level_hash = true;
		else if (strcmp(argv[i], "--small-pages") == 0)
			o->small_pages = true;
		else if (o->file == NULL && argv[i][0] != '-')
			o->file = argv[i];
		else
			die(BENCH_USAGE);
	}
	if (o->file == NULL || o->reps < 1 || o->reps > BENCH_MAX_REPS || o->order_cap == 0 ||
	    o->order_cap > (1ul << 30) || (o->order_cap & (o->order_cap - 1)))
		die(BENCH_USAGE);
}

/* One pass of each path; t[] gets the four wall times. The engine paths
 * start from a fresh engine and must emit identical orders. */
static void one_pass(struct engine *e, const struct engine_config *cfg, const struct book_mem *mem,
		     const struct msgs *m, const struct packets *pk, const uint8_t *buf, size_t len,
		     struct sink *s_msg, struct sink *s_pkt, double t[4])
{
	t[0] = run_decode(m);
	t[1] = run_frame_decode(buf, len);
	if (!engine_init(e, cfg, mem))
		die("engine_init refused the configuration");
	s_msg->orders = s_msg->sum = 0;
	t[2] = run_on_message(e, m, s_msg);
	if (!engine_init(e, cfg, mem))
		die("engine_init refused the configuration");
	s_pkt->orders = s_pkt->sum = 0;
	t[3] = run_on_packet(e, pk, s_pkt);
	if (s_msg->orders != s_pkt->orders || s_msg->sum != s_pkt->sum)
		die("on_message and on_packet emitted different orders");
}

int main(int argc, char **argv)
{
	struct options opt;
	struct engine_config cfg;
	struct msgs m;
	struct packets pk;
	size_t len;
	static struct engine e;

	parse_args(argc, argv, &opt);
	if (opt.config)
		read_config(opt.config, &cfg);
	else
		default_config(&cfg);
	const uint8_t *buf = map_file(opt.file, &len);
	frame_all(buf, len, &m);
	pack_all(&m, &pk);  /* outside every timed loop */
	struct book_mem mem = book_mem_alloc((uint32_t)opt.order_cap, BENCH_LEVEL_CAP, !opt.no_level_hash,
					     !opt.small_pages);
	struct sink s_msg = { .instance = (uint8_t)cfg.instance }, s_pkt = s_msg;
	struct result res[4] = { { .name = "decode" }, { .name = "frame+decode" },
				 { .name = "on_message" }, { .name = "on_packet" } };

	for (int r = -1; r < opt.reps; r++) {  /* r == -1: warm-up, not recorded */
		double t[4];
		one_pass(&e, &cfg, &mem, &m, &pk, buf, len, &s_msg, &s_pkt, t);
		for (int i = 0; r >= 0 && i < 4; i++) {
			res[i].ns[r] = t[i] / (double)m.n;
			res[i].reps = r + 1;
		}
	}
	report(res, 4, m.n, pk.n, &s_pkt, &e, opt.file, !opt.small_pages, opt.json);
	return 0;
}
