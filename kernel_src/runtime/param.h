/*
 * param.h - the runtime's fixed sizes and timeouts, one line each.
 *
 * Everything the trading loop uses is allocated statically in .bss from
 * these sizes (stage 2 identity maps 4 GiB; _start zeroes .bss). The book
 * sizes bound what one run can hold: an add beyond them is counted in
 * book_full_orders / book_full_levels, never corrupts the book.
 */
#ifndef HFTOS_RUNTIME_PARAM_H
#define HFTOS_RUNTIME_PARAM_H

#define TRADE_BOOK_ORDERS   (1u << 18) /* live orders, 16 B each: 4 MiB */
#define TRADE_BOOK_INDEX    (1u << 19) /* order hash slots (2x orders, power of two): 2 MiB */
#define TRADE_BOOK_LEVELS   (1u << 15) /* live price levels, 64 B each: 2 MiB */
#define TRADE_BOOK_LINDEX   (1u << 16) /* level hash slots (2x levels, power of two): 256 KiB */
#define TRADE_RX_BATCH      32         /* frames per batched RDT write while busy */
#define TRADE_RX_KICK_US    100000     /* an idle loop writes RDT this often (trade_poll) */
#define TRADE_ARP_EVERY_US  200000     /* ARP for the peer this often until it answers */
#define TRADE_READY_MAX_US  3000000    /* give up waiting for the answer after this long;
					* past QEMU's 1 s RX hold-off either way */

#endif
