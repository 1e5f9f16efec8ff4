"""hftlab.latency: tick-to-trade from a run's capture and SUT log.

The join is exact, never heuristic (ARCHITECTURE.md section 3): each order's
OUCH token carries the MoldUDP64 sequence number of the message that
triggered it; the tick frame is the market-data datagram whose
[seq, seq + count) holds that number. t_wire_in and t_wire_out are capture
timestamps on the SUT's link; internal_ns is (tsc_tx - tsc_rx) / tsc_hz.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .errors import DataError

__all__ = ["WireTicks", "WireOrders", "join", "percentiles", "PERCENTILES", "format_summary"]

PERCENTILES = (50.0, 90.0, 99.0, 99.9, 99.99)


@dataclass
class WireTicks:
    """Market-data datagrams seen on the link, in capture order."""

    ts_ns: np.ndarray  #: int64, capture timestamps
    first_seq: np.ndarray  #: uint64
    count: np.ndarray  #: uint16


@dataclass
class WireOrders:
    """Order frames seen on the link."""

    ts_ns: np.ndarray  #: int64
    token: list[str]


def _trigger_seq(token: str) -> int:
    try:
        return int(token[2:], 16)
    except ValueError:
        raise DataError("<capture>", None, f"order token {token!r} is not an hftlab token") from None


def join(ticks: WireTicks, orders: WireOrders, sut: pa.Table | None, tsc_hz: int | None) -> pa.Table:
    """One row per order seen on the wire: the columns of ARCHITECTURE.md
    section 3 (token, trigger_seq, t_wire_in, t_wire_out, wire_ns, tsc_rx,
    tsc_tx, internal_ns). A tick that was sent more than once (a duplicate
    datagram) joins to its first appearance."""
    seqs = np.array([_trigger_seq(t) for t in orders.token], dtype=np.uint64)
    order = np.argsort(ticks.first_seq, kind="stable")
    fs, cnt, tts = ticks.first_seq[order], ticks.count[order].astype(np.uint64), ticks.ts_ns[order]
    # first datagram whose first_seq <= seq, then check seq < first_seq + count
    idx = np.searchsorted(fs, seqs, side="right") - 1
    ok = (idx >= 0) & (seqs < fs[np.clip(idx, 0, None)] + cnt[np.clip(idx, 0, None)])
    if len(fs):
        # among equal first_seq (duplicates) take the earliest capture
        first_of = np.searchsorted(fs, fs[np.clip(idx, 0, None)], side="left")
        t_in = np.where(ok, tts[first_of], 0).astype(np.int64)
    else:
        t_in = np.zeros(len(seqs), np.int64)
    t_out = orders.ts_ns.astype(np.int64)
    wire = np.where(ok, t_out - t_in, 0)
    tsc_rx = np.zeros(len(seqs), np.uint64)
    tsc_tx = np.zeros(len(seqs), np.uint64)
    have = np.zeros(len(seqs), bool)
    if sut is not None and sut.num_rows:
        s_seq = sut.column("trigger_seq").to_numpy()
        pos = {int(s): i for i, s in enumerate(s_seq)}
        rx, tx = sut.column("tsc_rx").to_numpy(), sut.column("tsc_tx").to_numpy()
        for i, s in enumerate(seqs):
            j = pos.get(int(s))
            if j is not None:
                tsc_rx[i], tsc_tx[i], have[i] = rx[j], tx[j], True
    if tsc_hz:
        internal = ((tsc_tx.astype(np.int64) - tsc_rx.astype(np.int64)) * (1e9 / tsc_hz)).round()
    else:
        internal = np.zeros(len(seqs))
    return pa.table({
        "token": pa.array(orders.token, pa.string()),
        "trigger_seq": pa.array(seqs),
        "t_wire_in": pa.array(t_in, mask=~ok),
        "t_wire_out": pa.array(t_out),
        "wire_ns": pa.array(wire, mask=~ok),
        "tsc_rx": pa.array(tsc_rx, mask=~have),
        "tsc_tx": pa.array(tsc_tx, mask=~have),
        "internal_ns": pa.array(internal.astype(np.int64), mask=~have | (not tsc_hz)),
        "internal_cycles": pa.array((tsc_tx.astype(np.int64) - tsc_rx.astype(np.int64)), mask=~have),
    })


def percentiles(values: np.ndarray, qs: tuple[float, ...] = PERCENTILES) -> dict[str, float | int | None]:
    """count, min, the percentiles and max. A tail percentile is given only
    when at least one sample lies beyond it (n * (1 - q) >= 1): p99.99 from
    1,000 samples is None, not a number."""
    v = np.asarray(values)
    v = v[~np.isnan(v)] if v.dtype.kind == "f" else v
    n = len(v)
    out: dict[str, float | int | None] = {"count": n}
    if n == 0:
        return out | {f"p{q:g}": None for q in qs} | {"min": None, "max": None}
    s = np.sort(v)
    out["min"] = s[0].item()
    for q in qs:
        backed = n * (1 - q / 100) >= 1 or q == 50.0
        # nearest-rank, so every figure is a sample that was measured
        out[f"p{q:g}"] = s[min(n - 1, int(np.ceil(q / 100 * n)) - 1)].item() if backed else None
    out["max"] = s[-1].item()
    return out


def format_summary(name: str, p: dict, unit: str = "ns") -> str:
    cells = [f"{k}={'-' if v is None else f'{v:,.0f}'}" for k, v in p.items() if k != "count"]
    return f"{name:<12} count={p['count']:<7} " + " ".join(cells) + f" ({unit})"
