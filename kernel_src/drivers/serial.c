/*
 * serial.c - polled 16550 driver for COM1, the console of HFT-OS.
 *
 * Registers and bits as in the NS16550A datasheet. No interrupts, no input:
 * the console only carries boot messages, the fault dump and the framed
 * end-of-run log. Under QEMU the transmitter is never busy: a byte written
 * to THR goes straight to the chardev (one write(2) per byte for a file)
 * and THRE is set again before the next LSR read, so the THRE wait costs
 * one port read, which serial_write_raw pays once per 16-byte FIFO load.
 */
#include "drivers/serial.h"
#include "arch/x86_64/cpu.h"
#include <stdint.h>

#define COM1_BASE        0x3F8
#define UART_THR         0    /* transmit holding, DLAB = 0 */
#define UART_RBR         0    /* receive buffer, DLAB = 0 */
#define UART_DLL         0    /* divisor latch low, DLAB = 1 */
#define UART_IER         1    /* interrupt enable, DLAB = 0 */
#define UART_DLM         1    /* divisor latch high, DLAB = 1 */
#define UART_FCR         2    /* FIFO control */
#define  UART_FCR_ENABLE 0x01
#define  UART_FCR_CLR_RX 0x02
#define  UART_FCR_CLR_TX 0x04
#define UART_LCR         3    /* line control */
#define  UART_LCR_8N1    0x03
#define  UART_LCR_DLAB   0x80
#define UART_MCR         4    /* modem control */
#define  UART_MCR_DTR    0x01
#define  UART_MCR_RTS    0x02
#define  UART_MCR_OUT1   0x04
#define  UART_MCR_OUT2   0x08
#define  UART_MCR_LOOP   0x10
#define UART_LSR         5    /* line status */
#define  UART_LSR_DR     0x01
#define  UART_LSR_THRE   0x20

#define UART_CLOCK_DIV   115200 /* 1.8432 MHz / 16 */
#define CONSOLE_BAUD     115200
#define LOOPBACK_PROBE   0xA5
#define THRE_SPIN_LIMIT  1000000 /* ~0.1 s of polls at 115200 is plenty */
#define UART_TX_FIFO     16      /* 16550A transmit FIFO, enabled in serial_init */

static bool serial_present;

static void uart_set_baud(uint32_t baud)
{
	uint16_t div = (uint16_t)(UART_CLOCK_DIV / baud);

	outb(COM1_BASE + UART_LCR, UART_LCR_DLAB);
	outb(COM1_BASE + UART_DLL, (uint8_t)div);
	outb(COM1_BASE + UART_DLM, (uint8_t)(div >> 8));
	outb(COM1_BASE + UART_LCR, UART_LCR_8N1);
}

/* A byte written in loopback mode must come back on RBR. */
static bool uart_loopback_ok(void)
{
	outb(COM1_BASE + UART_MCR, UART_MCR_LOOP | UART_MCR_OUT1 | UART_MCR_OUT2 | UART_MCR_RTS);
	outb(COM1_BASE + UART_THR, LOOPBACK_PROBE);
	for (int i = 0; i < THRE_SPIN_LIMIT; i++) {
		if (inb(COM1_BASE + UART_LSR) & UART_LSR_DR)
			return inb(COM1_BASE + UART_RBR) == LOOPBACK_PROBE;
	}
	return false;
}

bool serial_init(void)
{
	outb(COM1_BASE + UART_IER, 0);
	uart_set_baud(CONSOLE_BAUD);
	outb(COM1_BASE + UART_FCR, UART_FCR_ENABLE | UART_FCR_CLR_RX | UART_FCR_CLR_TX);
	serial_present = uart_loopback_ok();
	outb(COM1_BASE + UART_MCR, UART_MCR_DTR | UART_MCR_RTS);
	return serial_present;
}

bool serial_ready(void)
{
	return serial_present;
}

/* Wait (bounded) until THRE says the transmitter holding register, or in
 * FIFO mode the whole transmit FIFO, is empty. */
static bool uart_wait_thre(void)
{
	for (int i = 0; i < THRE_SPIN_LIMIT; i++) {
		if (inb(COM1_BASE + UART_LSR) & UART_LSR_THRE)
			return true;
		cpu_pause();
	}
	serial_present = false; /* stuck transmitter: stop paying the timeout */
	return false;
}

static void uart_tx(uint8_t b)
{
	if (uart_wait_thre())
		outb(COM1_BASE + UART_THR, b);
}

void serial_putc(char c)
{
	if (!serial_present)
		return;
	if (c == '\n')
		uart_tx('\r');
	uart_tx((uint8_t)c);
}

void serial_write(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		serial_putc(s[i]);
}

/* THRE in FIFO mode means the 16-byte transmit FIFO is empty, so one LSR
 * read covers 16 bytes: half the port accesses of uart_tx per byte, which
 * is what the end-of-run dump (megabytes) costs under QEMU. */
void serial_write_raw(const char *s, size_t len)
{
	while (serial_present && len > 0) {
		size_t n = len < UART_TX_FIFO ? len : UART_TX_FIFO;
		if (!uart_wait_thre())
			return;
		for (size_t i = 0; i < n; i++)
			outb(COM1_BASE + UART_THR, (uint8_t)s[i]);
		s += n;
		len -= n;
	}
}
