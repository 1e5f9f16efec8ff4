/*
 * param.h - fixed limits of the trading core, one line each.
 *
 * Everything is sized at compile time or at init from caller-owned memory;
 * nothing grows. Hitting a limit is counted, never a corruption.
 */
#ifndef CORE_PARAM_H
#define CORE_PARAM_H

#define ITCH_NTYPES          256   /* counters are indexed by the type byte */
#define BOOK_NLOCATES        65536 /* stock locate is a u16 (ITCH 5.0 §1.1) */
#define STRAT_MAX_SYMBOLS    64    /* symbols one strategy instance trades */
#define STRAT_SLOT_NONE      0xFFFF
#ifndef STRAT_STATE_MAX
#define STRAT_STATE_MAX      16384 /* bytes of strategy state (strategy.h) */
#endif
#define RISK_MAX_RATE        4096  /* upper bound of max_orders_per_sec */
#define RISK_LIVE_PER_SLOT   4     /* resting orders risk tracks per symbol */
#define MOLD_MAX_SESSIONS    4     /* MoldUDP64 sessions tracked at once */
#define MOLD_SESSION_LEN     10    /* MoldUDP64 session field, bytes */
#define MOLD_HDR_LEN         20    /* session + seq u64 + count u16 */
#define MOLD_END_OF_SESSION  0xFFFF
#define OUCH_TOKEN_LEN       14
#define OUCH_ENTER_LEN       49    /* OUCH 4.2 Enter Order, §2.1 */

#endif
