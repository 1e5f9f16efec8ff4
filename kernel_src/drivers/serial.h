/*
 * serial.h - COM1 console output (16550 UART, polled, 115200 8N1).
 */
#ifndef HFTOS_SERIAL_H
#define HFTOS_SERIAL_H

#include <stdbool.h>
#include <stddef.h>

/* Program COM1 for 115200 8N1 without interrupts and check that a UART
 * answers (loopback test). Returns false when none does; output is then
 * dropped silently, so a board without COM1 still boots. */
bool serial_init(void);

/* serial_init() ran and found the UART (false before it, e.g. for an
 * exception raised while _start sets up the rings). */
bool serial_ready(void);

/* Write one byte; "\n" becomes "\r\n". Waits a bounded time for the
 * transmitter, then drops the byte. */
void serial_putc(char c);

void serial_write(const char *s, size_t len);

/* Write bytes as they are, without the "\n" -> "\r\n" translation: for
 * framed, checksummed output (the end-of-run dump). */
void serial_write_raw(const char *s, size_t len);

#endif
