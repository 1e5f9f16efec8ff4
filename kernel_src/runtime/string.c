/*
 * string.c - memcpy, memset, memmove, memcmp for the freestanding build.
 *
 * GCC may emit calls to these four even with -ffreestanding (struct copies,
 * zero-initialisation, __builtin_memcpy in core/platform.h), so the runtime
 * must define them. Byte loops with rep movsb/stosb: simple and fast enough
 * on CPUs with ERMSB; the hot path copies nothing anyway (zero copy).
 */
#include <stddef.h>
#include <stdint.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return dst;
}

/* Overlap-safe: copy backwards (direction flag set for the one rep movsb)
 * when dst lies inside [src, src + n). */
void *memmove(void *dst, const void *src, size_t n)
{
	uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;

	if (d <= s || d >= s + n)
		return memcpy(dst, src, n);
	if (n == 0)
		return dst;
	void *dl = (uint8_t *)dst + n - 1;
	const void *sl = (const uint8_t *)src + n - 1;
	__asm__ volatile("std; rep movsb; cld" : "+D"(dl), "+S"(sl), "+c"(n) : : "memory");
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;

	for (size_t i = 0; i < n; i++) {
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	}
	return 0;
}
