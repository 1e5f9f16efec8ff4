"""Seeded synthetic NASDAQ TotalView-ITCH 5.0 feeds for large runs.

`generate` writes a file in NASDAQ's own framing (each message behind a 2-byte
big-endian length) that an ITCH 5.0 reader, the C core and the golden model
accept like a real session file:

    S 'O'  start of messages
    R      one Stock Directory per symbol, stock locates 1..k
    body   A F E C X D U P: adds, executions, cancels, deletes, replaces, trades
    S 'C'  end of messages

The body is internally consistent: E, C, X, D and U only name orders that are
live; executed and cancelled shares never exceed what remains; a delete or a
full execution removes the order; U removes the original and adds its new,
never-seen reference. Prices are integer ticks of 1/10,000 dollar in whole
cents. Each symbol's quotes follow a latent mid (a one-cent random walk) but
never touch the opposite best, and executions take the best level, so the
book stays uncrossed while the price moves (details at the decision loop).
Timestamps (ns since midnight, from 09:30) never decrease and arrive in
bursts: a two-state Markov chain switches between a quiet regime (long
exponential gaps) and a burst regime (short gaps, mostly on one symbol).

How it is fast: a numba loop decides every message into integer columns, then
numpy writes each message type through a structured dtype onto a padded
(messages x 46) byte grid and compacts the grid with a per-type byte mask.
All randomness comes from numpy's PCG64, drawn a fixed number of times per
message, and the loop uses only integer and float arithmetic (no libm), so
the same arguments give the same bytes wherever numpy gives the same stream
(numpy may change a Generator's stream between releases, NEP 19).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from numba import njit

from hftlab.errors import ConfigError

__all__ = ["DEFAULT_SYMBOLS", "MESSAGE_LENGTHS", "generate"]

DEFAULT_SYMBOLS: tuple[str, ...] = ("AAPL", "MSFT", "AMZN", "NVDA", "GOOGL", "META", "TSLA", "INTC")

# ITCH 5.0 message lengths (type byte included) of the types this module writes.
MESSAGE_LENGTHS: dict[str, int] = {
    "S": 12, "R": 39, "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44,
}

_MAX_SYMBOLS = 1024           # locates are u16; this bounds the per-symbol order pools
_CHUNK = 1 << 18              # messages decided and written per step (bounds memory)
_PREFIX = 2                   # NASDAQ framing: u16 big-endian length before each message
_ROW = _PREFIX + max(MESSAGE_LENGTHS.values())  # one padded grid row: 46 bytes

_T_OPEN = 34_200 * 10**9      # 09:30:00 ns since midnight
_T_LAST = 86_400 * 10**9 - 1  # last ns of the day; timestamps saturate here (< 2**48)
_MPIDS = np.array([b"GSCO", b"MSCO", b"UBSS", b"NITE", b"CDRG", b"VIRT"], dtype="S4")
_N_MPIDS = len(_MPIDS)

# --- the decision loop ------------------------------------------------------
#
# Per symbol the loop keeps a pool of live orders (ref, shares, price level,
# side) and a price ladder: the count of live orders at each whole-cent level
# of a window, and the best bid and ask level. Levels are cents above the
# symbol's window base; a price in ticks is (base + level) * _CENT.
# Quotes follow a latent fair value (the "mid", a one-cent random walk): new
# bids rest 1..21 cents below it and asks above it, but never at or through
# the opposite best, so the book never crosses. Executions take the best
# level; deletes hit any order. When the mid walks onto or past the best bid
# (ask), that level is stale: executions hit it and most deletes pull from
# it, until the book has followed the mid.

_N_UNIFORM = 11     # uniforms per message: regime, sticky, symbol, event, throttle,
                    # pick, side, size choice, misc, mid move, pull
_N_EXP = 3          # standard exponentials per message: gap, price level, lot count

_CAP = 1024         # max live orders per symbol (pool size)
_TARGET = 512       # book size the mix steers to: below it deletes turn into adds,
                    # above it adds into deletes, the more the farther away
_WINDOW = 8192      # ladder levels per symbol: $81.92 of whole cents
_QUIET_GAP_NS = 100_000.0
_BURST_GAP_NS = 300.0
_P_BURST_START = 0.03   # per message, quiet -> burst
_P_BURST_END = 0.03     # per message, burst -> quiet
_P_STICKY = 0.8         # in a burst, chance the next message is on the same symbol
_CENT = 100             # ticks per cent
_MIN_BASE = 100         # window base >= $1.00, so every level is a positive price
_MAX_AWAY = 21          # quotes rest 1..21 cents from the mid
_P_MID_MOVE = 0.02      # per message on a symbol, its mid moves one cent
_P_PULL = 0.7           # share of deletes that pull a stale best quote, while there is one
_MID_MARGIN = _MAX_AWAY + 1  # the mid stays this far inside the window
_P_FULL = 0.4           # an execution takes the whole remainder
_P_ODD_LOT = 0.08
_MAX_LOTS = 50

# Event mix when the symbol's book is neither empty nor full (cumulative).
_EVENTS = np.frombuffer(b"AFDXECUP", dtype=np.uint8).copy()
_EVENT_CUM = np.cumsum([0.40, 0.02, 0.36, 0.05, 0.07, 0.01, 0.06, 0.03])
_EVENT_CUM[-1] = 1.0

# Message type bytes as plain ints, which numba folds as constants.
_S, _R, _A, _F, _E, _C, _X, _D, _U, _P = (ord(t) for t in "SRAFECXDUP")
_SIDE_CHAR = np.frombuffer(b"BS", dtype=np.uint8).copy()  # pool side 0 bid, 1 ask
_PRINTABLE = ord("Y")

# Indices into the small int64 state vector the loop carries between chunks.
_ST_TS, _ST_REF, _ST_MATCH, _ST_BURST, _ST_SYM = range(5)

# The loop's output: one int64 array per column, message i at index i. ref2 is U's new ref; aux is
# S's event code, F's attribution index or C's printable flag.
_OUT_COLS = ("type", "locate", "ts", "ref", "ref2", "side", "shares", "price", "match", "aux")
(_O_TYPE, _O_LOCATE, _O_TS, _O_REF, _O_REF2, _O_SIDE, _O_SHARES, _O_PRICE, _O_MATCH,
 _O_AUX) = range(len(_OUT_COLS))


@njit(cache=True, nogil=True)
def _lot(u_choice, e_count):
    """Order size: mostly round lots of 100 (geometric count), sometimes an odd lot."""
    if u_choice < _P_ODD_LOT:
        return 1 + min(int(e_count * 30.0), 98)
    return _CENT * (1 + min(int(e_count * 2.5), _MAX_LOTS - 1))


@njit(cache=True, nogil=True)
def _level_add(ladder, best, s, side, lvl):
    """Count one more order at a level; a better level becomes the best."""
    ladder[s, side, lvl] += 1
    if (side == 0 and lvl > best[s, 0]) or (side == 1 and lvl < best[s, 1]):
        best[s, side] = lvl


@njit(cache=True, nogil=True)
def _level_remove(ladder, best, s, side, lvl):
    """Count one order less at a level; an emptied best moves to the next level out."""
    ladder[s, side, lvl] -= 1
    if ladder[s, side, lvl] > 0 or lvl != best[s, side]:
        return
    step = -1 if side == 0 else 1
    lvl += step
    while 0 <= lvl < _WINDOW and ladder[s, side, lvl] == 0:
        lvl += step
    best[s, side] = lvl  # -1 (no bid) or _WINDOW (no ask) when the side is empty


@njit(cache=True, nogil=True)
def _remove(s, j, live_n, pool, ladder, best):
    """Drop live order j of symbol s: off its level, then the pool's last order fills its slot."""
    _level_remove(ladder, best, s, pool[s, j, 3], pool[s, j, 2])
    last = live_n[s] - 1
    pool[s, j, :] = pool[s, last, :]
    live_n[s] = last


@njit(cache=True, nogil=True)
def _pick_event(r, n_live, u_throttle):
    """Event type from the mix, given the symbol's live order count."""
    ev = _EVENTS[-1]
    for k in range(_EVENT_CUM.size):
        if r < _EVENT_CUM[k]:
            ev = _EVENTS[k]
            break
    is_add = ev == _A or ev == _F
    if n_live == 0 and not is_add and ev != _P:
        return _A
    if ev == _D and n_live < _TARGET and u_throttle >= n_live / _TARGET:
        return _A
    if is_add and n_live >= _TARGET:
        if n_live >= _CAP or u_throttle < (n_live - _TARGET) / (_CAP - _TARGET):
            return _D
    return ev


@njit(cache=True, nogil=True)
def _best_order(s, side, n_live, pool, best):
    """Index of a live order at the best level of one side (the first slot found)."""
    for j in range(n_live):
        if pool[s, j, 3] == side and pool[s, j, 2] == best[s, side]:
            return j
    raise AssertionError("synth: ladder and order pool disagree")


@njit(cache=True, nogil=True)
def _advance_clock(st, u_regime, e_gap):
    """Two-state Markov arrivals: exponential gaps, short in a burst, long when quiet."""
    if st[_ST_BURST] == 1:
        if u_regime < _P_BURST_END:
            st[_ST_BURST] = 0
    elif u_regime < _P_BURST_START:
        st[_ST_BURST] = 1
    gap = _BURST_GAP_NS if st[_ST_BURST] == 1 else _QUIET_GAP_NS
    st[_ST_TS] = min(st[_ST_TS] + int(gap * e_gap), _T_LAST)


@njit(cache=True, nogil=True)
def _pick_symbol(st, u_sticky, u_symbol, sym_cum):
    """Bursts mostly stay on one name; otherwise names are drawn by activity weight."""
    if st[_ST_BURST] == 1 and u_sticky < _P_STICKY:
        return st[_ST_SYM]
    s = 0
    while s < sym_cum.size - 1 and u_symbol >= sym_cum[s]:
        s += 1
    st[_ST_SYM] = s
    return s


@njit(cache=True, nogil=True)
def _walk_mid(mid, s, u_move):
    """The symbol's latent mid moves one cent now and then, staying inside its window."""
    if u_move < _P_MID_MOVE:
        step = 1 if u_move < _P_MID_MOVE / 2 else -1
        mid[s] = min(max(mid[s] + step, _MID_MARGIN), _WINDOW - 1 - _MID_MARGIN)


@njit(cache=True, nogil=True)
def _choose(i, s, u, mid, live_n, pool, best):
    """(event type, the live order it names, the side an E or C executes) for symbol s.

    X, U and most D name a random live order; E and C take the best level of a
    random side, or of the stale side while there is one, as do most D then.
    """
    n_live = live_n[s]
    ev = _pick_event(u[i, 3], n_live, u[i, 4])
    j = min(int(u[i, 5] * n_live), n_live - 1)
    hit = 0 if u[i, 6] < 0.5 else 1
    bid_lvl, ask_lvl = best[s, 0], best[s, 1]
    stale = 0 if mid[s] <= bid_lvl else (1 if mid[s] >= ask_lvl else -1)
    if stale >= 0 and ev == _D and u[i, 10] < _P_PULL:
        j = _best_order(s, stale, n_live, pool, best)
    elif ev == _E or ev == _C:
        if stale >= 0:
            hit = stale
        elif (hit == 0 and bid_lvl < 0) or (hit == 1 and ask_lvl >= _WINDOW):
            hit = 1 - hit
        j = _best_order(s, hit, n_live, pool, best)
    if ev == _X and pool[s, j, 1] < 2:
        ev = _D  # X is a partial cancel; the last share goes with a D
    return ev, j, hit


@njit(cache=True, nogil=True)
def _emit_add(out, i, s, u, e, st, mid, live_n, pool, ladder, best, base):
    """A or F: a new order 1..21 cents from the mid, never at or through the opposite best."""
    sd = 0 if u[i, 6] < 0.5 else 1
    away = 1 + min(int(e[i, 1] * 1.5), _MAX_AWAY - 1)
    if sd == 0:
        lvl = min(mid[s] - away, best[s, 1] - 1)
    else:
        lvl = max(mid[s] + away, best[s, 0] + 1)
    sh = _lot(u[i, 7], e[i, 2])
    n = live_n[s]
    oref = st[_ST_REF]
    st[_ST_REF] += 1
    pool[s, n, 0], pool[s, n, 1], pool[s, n, 2], pool[s, n, 3] = oref, sh, lvl, sd
    live_n[s] = n + 1
    _level_add(ladder, best, s, sd, lvl)
    out[_O_REF, i], out[_O_SIDE, i], out[_O_SHARES, i] = oref, _SIDE_CHAR[sd], sh
    out[_O_PRICE, i] = (base[s] + lvl) * _CENT
    out[_O_AUX, i] = int(u[i, 8] * _N_MPIDS)  # F's attribution


@njit(cache=True, nogil=True)
def _emit_execute(out, i, ev, s, j, hit, u, st, live_n, pool, ladder, best, base):
    """E or C on order j: all that remains or part of it; a full execution removes it."""
    rem = pool[s, j, 1]
    q = rem if (rem == 1 or u[i, 8] < _P_FULL) else 1 + int(u[i, 7] * (rem - 1))
    out[_O_REF, i], out[_O_SHARES, i], out[_O_MATCH, i] = pool[s, j, 0], q, st[_ST_MATCH]
    st[_ST_MATCH] += 1
    if ev == _C:  # executed 1-2 cents away from the display price, in the order's favour
        better = 1 + int(u[i, 4] * 2)
        lvl = pool[s, j, 2] - better if hit == 0 else pool[s, j, 2] + better
        out[_O_PRICE, i] = (base[s] + lvl) * _CENT
        out[_O_AUX, i] = _PRINTABLE
    if q == rem:
        _remove(s, j, live_n, pool, ladder, best)
    else:
        pool[s, j, 1] = rem - q


@njit(cache=True, nogil=True)
def _emit_cancel(out, i, s, j, u, pool):
    """X on order j: 1 .. remaining-1 shares (the caller turned a 1-share X into D)."""
    rem = pool[s, j, 1]
    q = 1 + int(u[i, 7] * (rem - 1))
    out[_O_REF, i], out[_O_SHARES, i] = pool[s, j, 0], q
    pool[s, j, 1] = rem - q


@njit(cache=True, nogil=True)
def _emit_replace(out, i, s, j, u, e, st, pool, ladder, best, base):
    """U on order j: a new ref, a new size, the price moved up to 3 cents, same side, uncrossed."""
    sd, old = pool[s, j, 3], pool[s, j, 2]
    _level_remove(ladder, best, s, sd, old)
    lvl = old + int(u[i, 8] * 7) - 3
    if sd == 0:
        lvl = max(min(lvl, best[s, 1] - 1), 0)
    else:
        lvl = min(max(lvl, best[s, 0] + 1, 1), _WINDOW - 1)  # asks >= 1: bids fit below
    _level_add(ladder, best, s, sd, lvl)
    nref = st[_ST_REF]
    st[_ST_REF] += 1
    sh = _lot(u[i, 7], e[i, 2])
    out[_O_REF, i], out[_O_REF2, i], out[_O_SHARES, i] = pool[s, j, 0], nref, sh
    out[_O_PRICE, i] = (base[s] + lvl) * _CENT
    pool[s, j, 0], pool[s, j, 1], pool[s, j, 2] = nref, sh, lvl


@njit(cache=True, nogil=True)
def _emit_trade(out, i, s, u, e, st, mid, best, base):
    """P: a hidden order trades at or inside the spread, near the mid; NASDAQ sends ref 0."""
    lvl = min(max(mid[s] + int(u[i, 8] * 3) - 1, best[s, 0]), best[s, 1])
    out[_O_REF, i], out[_O_SIDE, i] = 0, _SIDE_CHAR[0 if u[i, 6] < 0.5 else 1]
    out[_O_SHARES, i] = _lot(u[i, 7], e[i, 2])
    out[_O_PRICE, i] = (base[s] + lvl) * _CENT
    out[_O_MATCH, i] = st[_ST_MATCH]
    st[_ST_MATCH] += 1


@njit(cache=True, nogil=True)
def _simulate(u, e, out, sym_cum, st, mid, base, live_n, pool, ladder, best):
    """Decide out.shape[1] body messages into out's columns, updating the state in place.

    u: (m, _N_UNIFORM) uniforms in [0, 1); e: (m, _N_EXP) standard exponentials;
    out: (len(_OUT_COLS), m) int64, zeroed. State: st (timestamp, next order
    ref, next match number, burst flag, last symbol); per symbol the mid
    level, the window base in cents, the live order pool (k, _CAP, 4: ref,
    shares, level, side) of which live_n[s] are in use, the ladder
    (k, 2, _WINDOW) and the best levels (k, 2).
    """
    for i in range(out.shape[1]):
        _advance_clock(st, u[i, 0], e[i, 0])
        s = _pick_symbol(st, u[i, 1], u[i, 2], sym_cum)
        _walk_mid(mid, s, u[i, 9])
        ev, j, hit = _choose(i, s, u, mid, live_n, pool, best)
        out[_O_TYPE, i], out[_O_LOCATE, i], out[_O_TS, i] = ev, s + 1, st[_ST_TS]
        if ev == _A or ev == _F:
            _emit_add(out, i, s, u, e, st, mid, live_n, pool, ladder, best, base)
        elif ev == _E or ev == _C:
            _emit_execute(out, i, ev, s, j, hit, u, st, live_n, pool, ladder, best, base)
        elif ev == _X:
            _emit_cancel(out, i, s, j, u, pool)
        elif ev == _D:
            out[_O_REF, i] = pool[s, j, 0]
            _remove(s, j, live_n, pool, ladder, best)
        elif ev == _U:
            _emit_replace(out, i, s, j, u, e, st, pool, ladder, best, base)
        else:
            _emit_trade(out, i, s, u, e, st, mid, best, base)


# --- writing records ----------------------------------------------------------


def _layout(fields: list[tuple[str, str, int]]) -> np.dtype:
    """A grid-row dtype: the frame header plus `fields` at their ITCH 5.0 offsets.

    Offsets are given as in the specification (type byte at 0); the 2-byte
    length prefix shifts them all by two.
    """
    header = [("length", ">u2", -2), ("type", "u1", 0), ("locate", ">u2", 1),
              ("tracking", ">u2", 3), ("ts_hi", ">u2", 5), ("ts_lo", ">u4", 7)]
    allf = header + fields
    return np.dtype({
        "names": [f[0] for f in allf],
        "formats": [f[1] for f in allf],
        "offsets": [f[2] + _PREFIX for f in allf],
        "itemsize": _ROW,
    })


_ADD = [("ref", ">u8", 11), ("side", "u1", 19), ("shares", ">u4", 20),
        ("stock", "S8", 24), ("price", ">u4", 32)]
_EXEC = [("ref", ">u8", 11), ("shares", ">u4", 19), ("match", ">u8", 23)]
_DIRECTORY = [("stock", "S8", 11), ("market_category", "S1", 19),
              ("financial_status", "S1", 20), ("round_lot_size", ">u4", 21),
              ("round_lots_only", "S1", 25), ("issue_classification", "S1", 26),
              ("issue_subtype", "S2", 27), ("authenticity", "S1", 29),
              ("short_sale_threshold", "S1", 30), ("ipo_flag", "S1", 31),
              ("luld_tier", "S1", 32), ("etp_flag", "S1", 33),
              ("etp_leverage", ">u4", 34), ("inverse", "S1", 38)]
_DIRECTORY_VALUES = {
    "market_category": b"Q", "financial_status": b"N", "round_lot_size": 100,
    "round_lots_only": b"N", "issue_classification": b"C", "issue_subtype": b"Z ",
    "authenticity": b"P", "short_sale_threshold": b"N", "ipo_flag": b" ",
    "luld_tier": b"1", "etp_flag": b"N", "etp_leverage": 0, "inverse": b"N",
}

# Per type: its row dtype and, per body field, the column it comes from.
_RECORDS: dict[int, tuple[np.dtype, dict[str, str]]] = {
    _S: (_layout([("event", "u1", 11)]), {"event": "aux"}),
    _R: (_layout(_DIRECTORY), {"stock": "stock"}),
    _A: (_layout(_ADD), {f[0]: f[0] for f in _ADD}),
    _F: (_layout(_ADD + [("attribution", "S4", 36)]),
         {**{f[0]: f[0] for f in _ADD}, "attribution": "mpid"}),
    _E: (_layout(_EXEC), {f[0]: f[0] for f in _EXEC}),
    _C: (_layout(_EXEC + [("printable", "u1", 31), ("price", ">u4", 32)]),
         {"ref": "ref", "shares": "shares", "match": "match", "printable": "aux",
          "price": "price"}),
    _X: (_layout([("ref", ">u8", 11), ("shares", ">u4", 19)]),
         {"ref": "ref", "shares": "shares"}),
    _D: (_layout([("ref", ">u8", 11)]), {"ref": "ref"}),
    _U: (_layout([("ref", ">u8", 11), ("new_ref", ">u8", 19), ("shares", ">u4", 27),
                  ("price", ">u4", 31)]),
         {"ref": "ref", "new_ref": "ref2", "shares": "shares", "price": "price"}),
    _P: (_layout(_ADD + [("match", ">u8", 36)]),
         {**{f[0]: f[0] for f in _ADD}, "match": "match"}),
}

_FRAME_LEN = np.zeros(256, dtype=np.int64)   # message length by type byte
for _t, _n in MESSAGE_LENGTHS.items():
    _FRAME_LEN[ord(_t)] = _n
# Which bytes of a grid row belong to the framed message, by type byte.
_KEEP = np.arange(_ROW)[None, :] < (_FRAME_LEN + _PREFIX)[:, None]
_HEADER = _layout([])


def _columns(m: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Zeroed output for m messages, one contiguous int64 row per column, and the rows by name."""
    out = np.zeros((len(_OUT_COLS), m), dtype=np.int64)
    return out, dict(zip(_OUT_COLS, out))


def _encode(cols: dict[str, np.ndarray], stocks: np.ndarray) -> np.ndarray:
    """Frame the messages in `cols` into one uint8 array, in order."""
    typ = cols["type"]
    grid = np.zeros((typ.size, _ROW), dtype=np.uint8)
    flat = grid.reshape(-1)
    head = flat.view(_HEADER)
    head["length"] = _FRAME_LEN[typ]
    head["type"] = typ
    head["locate"] = cols["locate"]
    head["ts_hi"] = cols["ts"] >> 32
    head["ts_lo"] = cols["ts"] & 0xFFFF_FFFF
    derived = {"stock": lambda idx: stocks[cols["locate"][idx]],
               "mpid": lambda idx: _MPIDS[cols["aux"][idx]]}
    for code in np.flatnonzero(np.bincount(typ, minlength=256)):
        dtype, sources = _RECORDS[int(code)]
        idx = np.flatnonzero(typ == code)
        rows = flat.view(dtype)
        for field, source in sources.items():
            values = derived[source](idx) if source in derived else cols[source][idx]
            rows[field][idx] = values
        if code == _R:
            for field, value in _DIRECTORY_VALUES.items():
                rows[field][idx] = value
    return grid[_KEEP[typ]]


# --- public API ------------------------------------------------------------------


def _check_args(n_messages: int, seed: int, symbols: Sequence[str], framing: str) -> None:
    if framing != "nasdaq":
        raise ConfigError(f"framing must be 'nasdaq' (2-byte length per message), not {framing!r}")
    if isinstance(symbols, str) or not 1 <= len(symbols) <= _MAX_SYMBOLS:
        raise ConfigError(f"symbols must be a sequence of 1 to {_MAX_SYMBOLS} tickers")
    for name in symbols:
        if not (isinstance(name, str) and 1 <= len(name) <= 8 and name.isascii()
                and name.isprintable() and " " not in name):
            raise ConfigError(f"bad symbol {name!r}: 1 to 8 printable ASCII characters, no spaces")
    if len(set(symbols)) != len(symbols):
        raise ConfigError("symbols must be unique")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, not {seed!r}")
    if (isinstance(n_messages, bool) or not isinstance(n_messages, (int, np.integer))
            or n_messages < len(symbols) + 2):
        raise ConfigError(f"n_messages must be an integer >= {len(symbols) + 2} "
                          f"(S, one R per symbol, S), not {n_messages!r}")


def _preamble(k: int) -> dict[str, np.ndarray]:
    """S 'O' then one R per symbol, 1 us apart from 09:30:00."""
    _, cols = _columns(k + 1)
    cols["type"][:] = _R
    cols["type"][0] = _S
    cols["aux"][0] = ord("O")
    cols["locate"][1:] = np.arange(1, k + 1)
    cols["ts"][:] = _T_OPEN + 1_000 * np.arange(k + 1)
    return cols


def _closing(ts: int) -> dict[str, np.ndarray]:
    _, cols = _columns(1)
    cols["type"][0] = _S
    cols["aux"][0] = ord("C")
    cols["ts"][0] = min(ts + 1_000, _T_LAST)
    return cols


def _initial_state(k: int, g_init: np.random.Generator) -> dict[str, np.ndarray]:
    """Empty books for k symbols, each with a mid between $20 and $500."""
    mid_cents = g_init.integers(2_000, 50_000, size=k).astype(np.int64)
    base = np.maximum(mid_cents - _WINDOW // 2, _MIN_BASE)
    weights = 1.0 / np.arange(1, k + 1)  # Zipf-like: the first names trade most
    sym_cum = np.cumsum(weights / weights.sum())
    sym_cum[-1] = 1.0
    best = np.empty((k, 2), np.int64)
    best[:, 0], best[:, 1] = -1, _WINDOW
    return {
        "sym_cum": sym_cum,
        "st": np.array([_T_OPEN + 1_000 * k, 1, 1, 0, 0], dtype=np.int64),
        "mid": mid_cents - base,
        "live_n": np.zeros(k, np.int64),
        "pool": np.zeros((k, _CAP, 4), np.int64),
        "ladder": np.zeros((k, 2, _WINDOW), np.int32),
        "best": best,
        "base": base,
    }


def _messages(n_body: int, state: dict[str, np.ndarray], g_unif: np.random.Generator,
              g_exp: np.random.Generator) -> Iterator[dict[str, np.ndarray]]:
    """The session in column chunks: preamble, body of n_body messages, closing S."""
    k = state["sym_cum"].size
    yield _preamble(k)
    u_buf = np.empty((min(n_body, _CHUNK), _N_UNIFORM))  # reused: no page faults per chunk
    e_buf = np.empty((min(n_body, _CHUNK), _N_EXP))
    for start in range(0, n_body, _CHUNK):
        m = min(n_body - start, _CHUNK)
        u, e = u_buf[:m], e_buf[:m]
        g_unif.random(out=u)
        g_exp.standard_exponential(out=e)
        out, cols = _columns(m)
        _simulate(u, e, out, state["sym_cum"], state["st"], state["mid"], state["base"],
                  state["live_n"], state["pool"], state["ladder"], state["best"])
        yield cols
    yield _closing(int(state["st"][_ST_TS]))


def generate(
    path: str | os.PathLike[str],
    n_messages: int,
    *,
    seed: int = 0,
    symbols: Sequence[str] = DEFAULT_SYMBOLS,
    framing: str = "nasdaq",
) -> dict[str, int]:
    """Write a synthetic ITCH 5.0 session of exactly `n_messages` messages to `path`.

    n_messages counts every message in the file: the opening S, one R per
    symbol, the body and the closing S, so the body has n_messages - k - 2
    messages for k symbols (n_messages must be at least k + 2). The file is
    written under a temporary name and renamed, so it is whole or absent.
    The same arguments give byte-identical files.

    Returns the number of messages per type, keys "S R A F E C X D U P" in
    that order (a type that did not occur counts 0); the counts sum to
    n_messages. Raises ConfigError for bad arguments.
    """
    _check_args(n_messages, seed, symbols, framing)
    k = len(symbols)
    root = np.random.SeedSequence(int(seed))
    g_init, g_unif, g_exp = (np.random.Generator(np.random.PCG64(s)) for s in root.spawn(3))
    stocks = np.array([b" " * 8] + [s.encode("ascii").ljust(8) for s in symbols], dtype="S8")
    state = _initial_state(k, g_init)

    counts = np.zeros(256, np.int64)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as out:
            for cols in _messages(n_messages - k - 2, state, g_unif, g_exp):
                counts += np.bincount(cols["type"], minlength=256)
                _encode(cols, stocks).tofile(out)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return {t: int(counts[ord(t)]) for t in MESSAGE_LENGTHS}
