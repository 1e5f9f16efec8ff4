/*
 * kprintf.h - formatted console output.
 *
 * Conversions: %s %c %d %i %u %x %X %p %%, length modifiers l, ll, z, flags
 * '0' and '-', a decimal width. No floating point (the kernel has no FPU
 * state). Output goes to the serial console.
 */
#ifndef HFTOS_KPRINTF_H
#define HFTOS_KPRINTF_H

#include <stdarg.h>
#include <stddef.h>

int kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int kvprintf(const char *fmt, va_list ap);

#endif
