/*
 * kprintf.c - a small printf for the serial console.
 *
 * Enough for boot messages and register dumps; see kprintf.h for the
 * supported subset. Unknown conversions are printed literally so a typo shows
 * up in the log instead of consuming an argument.
 */
#include "runtime/kprintf.h"
#include "drivers/serial.h"
#include <stdbool.h>
#include <stdint.h>

struct fmt_spec {
	bool zero_pad;
	bool left;
	int width;
	int length; /* 0 int, 1 long, 2 long long, 3 size_t */
};

static int emit(const char *s, size_t n)
{
	serial_write(s, n);
	return (int)n;
}

static int emit_padded(const char *s, size_t n, const struct fmt_spec *spec, bool numeric)
{
	int out = 0;
	int pad = spec->width > (int)n ? spec->width - (int)n : 0;
	char fill = (spec->zero_pad && numeric && !spec->left) ? '0' : ' ';

	if (fill == '0' && n > 0 && s[0] == '-') { /* sign before the zeros */
		out += emit(s, 1);
		s++;
		n--;
	}
	for (; !spec->left && pad > 0; pad--)
		out += emit(&fill, 1);
	out += emit(s, n);
	for (; pad > 0; pad--)
		out += emit(" ", 1);
	return out;
}

/* Format v in base 10 or 16 into the end of buf; returns the first char. */
static char *format_unsigned(char *end, uint64_t v, unsigned base, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char *p = end;

	do {
		*--p = digits[v % base];
		v /= base;
	} while (v);
	return p;
}

static uint64_t fetch_unsigned(va_list *ap, int length)
{
	switch (length) {
	case 1: return va_arg(*ap, unsigned long);
	case 2: return va_arg(*ap, unsigned long long);
	case 3: return va_arg(*ap, size_t);
	default: return va_arg(*ap, unsigned int);
	}
}

static int64_t fetch_signed(va_list *ap, int length)
{
	switch (length) {
	case 1: return va_arg(*ap, long);
	case 2: return va_arg(*ap, long long);
	case 3: return (int64_t)va_arg(*ap, size_t);
	default: return va_arg(*ap, int);
	}
}

static const char *parse_spec(const char *f, struct fmt_spec *spec)
{
	*spec = (struct fmt_spec){ 0 };
	for (;; f++) {
		if (*f == '0')
			spec->zero_pad = true;
		else if (*f == '-')
			spec->left = true;
		else
			break;
	}
	while (*f >= '0' && *f <= '9')
		spec->width = spec->width * 10 + (*f++ - '0');
	if (*f == 'z') {
		spec->length = 3;
		f++;
	}
	while (*f == 'l' && spec->length < 2) {
		spec->length++;
		f++;
	}
	return f;
}

/* One conversion: c is the conversion character, spec what preceded it. */
static int convert(char c, const struct fmt_spec *spec, va_list *ap)
{
	char buf[24];
	char *end = buf + sizeof(buf);
	char *p;

	switch (c) {
	case 'd':
	case 'i': {
		int64_t v = fetch_signed(ap, spec->length);
		p = format_unsigned(end, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, 10, false);
		if (v < 0)
			*--p = '-';
		return emit_padded(p, (size_t)(end - p), spec, true);
	}
	case 'u':
	case 'x':
	case 'X':
		p = format_unsigned(end, fetch_unsigned(ap, spec->length), c == 'u' ? 10 : 16, c == 'X');
		return emit_padded(p, (size_t)(end - p), spec, true);
	case 'p':
		p = format_unsigned(end, (uintptr_t)va_arg(*ap, void *), 16, false);
		*--p = 'x';
		*--p = '0';
		return emit_padded(p, (size_t)(end - p), spec, false);
	case 'c':
		buf[0] = (char)va_arg(*ap, int);
		return emit_padded(buf, 1, spec, false);
	case 's': {
		const char *s = va_arg(*ap, const char *);
		size_t n = 0;
		if (!s)
			s = "(null)";
		while (s[n])
			n++;
		return emit_padded(s, n, spec, false);
	}
	case '%':
		return emit("%", 1);
	default:
		buf[0] = '%';
		buf[1] = c;
		return emit(buf, c ? 2 : 1);
	}
}

int kvprintf(const char *fmt, va_list ap)
{
	va_list args;
	int out = 0;

	va_copy(args, ap);
	while (*fmt) {
		const char *run = fmt;
		while (*fmt && *fmt != '%')
			fmt++;
		out += emit(run, (size_t)(fmt - run));
		if (!*fmt)
			break;
		struct fmt_spec spec;
		fmt = parse_spec(fmt + 1, &spec);
		out += convert(*fmt, &spec, &args);
		if (*fmt)
			fmt++;
	}
	va_end(args);
	return out;
}

int kprintf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = kvprintf(fmt, ap);
	va_end(ap);
	return n;
}
