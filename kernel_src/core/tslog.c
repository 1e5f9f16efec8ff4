/*
 * tslog.c - timestamp ring and the framed serial dump (see tslog.h).
 *
 * Only formatting that a freestanding kernel can do: decimal and hex by hand,
 * a table-free bitwise CRC-32 (the dump runs once, after the measurement).
 */
#include "tslog.h"

void tslog_init(struct tslog *l, struct tslog_rec *recs, uint32_t cap)
{
	l->recs = recs;
	l->cap = cap;
	l->head = 0;
	l->total = 0;
}

uint32_t tslog_crc32(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

/* Write bytes that count towards the CRC. */
static void tslog_emit(struct tslog_dump *d, const char *s, size_t n)
{
	d->crc = tslog_crc32(d->crc, s, n);
	d->write(d->ctx, s, n);
}

static size_t tslog_strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

/* Decimal digits of v into buf (at least 20 bytes); returns the length. */
static size_t tslog_u64_dec(char *buf, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

static const char tslog_hex[] = "0123456789abcdef";

#define TSLOG_STR_(x) #x
#define TSLOG_STR(x) TSLOG_STR_(x)

void tslog_dump_begin(struct tslog_dump *d, tslog_write_fn write, void *ctx)
{
	static const char begin[] = "\n@@HFTDUMP " TSLOG_STR(TSLOG_DUMP_VERSION) " BEGIN\n";

	d->write = write;
	d->ctx = ctx;
	d->crc = 0;
	d->records = 0;
	write(ctx, begin, sizeof(begin) - 1);
}

void tslog_dump_counter(struct tslog_dump *d, const char *name, uint64_t value)
{
	char line[96];
	size_t n = tslog_strlen(name);

	if (n > 64)
		n = 64;
	line[0] = 'C';
	line[1] = ' ';
	core_memcpy(line + 2, name, n);
	n += 2;
	line[n++] = ' ';
	n += tslog_u64_dec(line + n, value);
	line[n++] = '\n';
	tslog_emit(d, line, n);
}

void tslog_dump_counters(struct tslog_dump *d, const struct tslog_counter *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		tslog_dump_counter(d, c[i].name, c[i].value);
}

static void tslog_dump_rec(struct tslog_dump *d, const struct tslog_rec *r)
{
	char line[2 + 2 * sizeof(*r) + 1];
	const uint8_t *p = (const uint8_t *)r;

	line[0] = 'R';
	line[1] = ' ';
	for (size_t i = 0; i < sizeof(*r); i++) {
		line[2 + 2 * i] = tslog_hex[p[i] >> 4];
		line[3 + 2 * i] = tslog_hex[p[i] & 15];
	}
	line[sizeof(line) - 1] = '\n';
	tslog_emit(d, line, sizeof(line));
	d->records++;
}

void tslog_dump_records(struct tslog_dump *d, const struct tslog *l)
{
	uint64_t n = l->total < l->cap ? l->total : l->cap;
	uint32_t i = (l->total < l->cap) ? 0 : l->head;  /* oldest first */

	for (uint64_t k = 0; k < n; k++) {
		tslog_dump_rec(d, &l->recs[i]);
		i = (i + 1 == l->cap) ? 0 : i + 1;
	}
}

void tslog_dump_end(struct tslog_dump *d)
{
	char line[64] = "@@HFTDUMP END records=";
	size_t n = 22;

	n += tslog_u64_dec(line + n, d->records);
	core_memcpy(line + n, " crc32=", 7);
	n += 7;
	for (int s = 28; s >= 0; s -= 4)
		line[n++] = tslog_hex[(d->crc >> s) & 15];
	line[n++] = '\n';
	d->write(d->ctx, line, n);
}
