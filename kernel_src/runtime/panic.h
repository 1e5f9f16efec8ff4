/*
 * panic.h - stop the machine on a broken invariant.
 */
#ifndef HFTOS_PANIC_H
#define HFTOS_PANIC_H

/* Print "panic: <message>" and the caller's address on the console, then
 * leave QEMU with HFTOS_EXIT_PANIC (halt on hardware). For invariants only;
 * recoverable errors return -1 to their caller. */
__attribute__((noreturn, format(printf, 1, 2))) void panic(const char *fmt, ...);

#endif
