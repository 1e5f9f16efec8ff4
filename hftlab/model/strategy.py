"""hftlab.model.strategy: the research loop over strategy C files.

A strategy is one freestanding C file against kernel_src/core/strategy.h
(bundled: kernel_src/strategies/). :func:`run_strategy` compiles it into the
golden model (once: hftlab.model.strategy_cache keeps it by the hash of its
sources) and runs it over an ITCH file natively, returning its orders with
the book's top at each order as Arrow; :func:`compare` puts two runs side by
side with P&L-free statistics (orders, orders in common, a fill proxy,
spread at the order, reaction in messages). `hftlab run --strategy` then
boots the same file in HFT-OS.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hftlab.model.core import Engine
from hftlab.model.strategy_cache import (BUNDLED, DEFAULT, STRATEGIES, cache_dir, check_strategy,
                                         load_strategy, resolve_strategy, source_hash)

__all__ = ["BUNDLED", "STRATEGIES", "StrategyRun", "run_strategy", "compare", "fill_proxy",
           "load_strategy", "check_strategy", "resolve_strategy", "cache_dir", "source_hash"]


# --------------------------------------------------------------------------- research
@dataclass
class StrategyRun:
    """One strategy over one feed in the golden model."""

    strategy: Path
    orders: pa.Table  #: orders_from_ouch's columns + the book at each order (bid, ask, ...)
    ouch: bytes
    counters: dict[str, Any]
    messages: int


def run_strategy(dataset: str | os.PathLike[str], strategy: str | os.PathLike[str] | None = None,
                 config: Any = None, *, messages: int | None = None) -> StrategyRun:
    """Run a strategy over an ITCH file in the golden model (natively, in C)."""
    path = resolve_strategy(strategy)
    eng = Engine(config, strategy=None if path == DEFAULT else path)
    n = eng.feed_file(dataset, messages=messages)
    orders = eng.orders()
    book = eng.order_book()
    for name in book.column_names:
        orders = orders.append_column(name, book.column(name))
    return StrategyRun(strategy=path, orders=orders, ouch=eng.ouch(), counters=eng.counters(),
                       messages=n)


def fill_proxy(orders: pa.Table, feed: pa.Table, horizon: int = 1000) -> np.ndarray:
    """Per order, whether the feed printed a trade at the order's price or
    better (E C P: an execution or a trade print of that stock) within
    `horizon` messages after its trigger: a P&L-free fill proxy (no queue
    model). `feed` is read_itch's table of the same file (row i = sequence
    number i + 1, as the golden model numbers messages)."""
    typ = feed.column("msg_type").to_numpy(zero_copy_only=False)
    stock_col = feed.column("stock")
    loc = feed.column("stock_locate").to_numpy(zero_copy_only=False)
    price = feed.column("price").fill_null(0).to_numpy(zero_copy_only=False)
    # Executions (E) carry no price or stock: they are resolved by the
    # golden model's book only, so the proxy counts C and P prints.
    is_trade = np.isin(typ, np.frombuffer(b"CP", np.uint8)) if typ.dtype != object else \
        np.isin(typ, ["C", "P"])
    seqs = orders.column("trigger_seq").to_numpy()
    stocks = orders.column("stock").to_pylist()
    sides = orders.column("side").to_pylist()
    prices = orders.column("price").to_numpy()
    names = stock_col.to_pylist()
    locate_of: dict[str, int] = {}
    for i, s in enumerate(names):
        if s is not None and s.rstrip() not in locate_of:
            locate_of[s.rstrip()] = int(loc[i])
    out = np.zeros(len(seqs), bool)
    for k, (seq, st, sd, px) in enumerate(zip(seqs, stocks, sides, prices)):
        lo, hi = int(seq), min(int(seq) + horizon, len(typ))
        sel = is_trade[lo:hi] & (loc[lo:hi] == locate_of.get(st, -1))
        p = price[lo:hi][sel]
        out[k] = bool((p <= px).any() if sd == "B" else (p >= px).any())
    return out


def _reaction(a: pa.Table, b: pa.Table) -> np.ndarray:
    """For each order of `a`, messages until `b`'s first order in the same
    stock and side at or after it (NaN: never)."""
    bs: dict[tuple[str, str], np.ndarray] = {}
    for st, sd, sq in zip(b.column("stock").to_pylist(), b.column("side").to_pylist(),
                          b.column("trigger_seq").to_numpy()):
        bs.setdefault((st, sd), []).append(int(sq))
    bs = {k: np.asarray(v) for k, v in bs.items()}
    out = np.full(a.num_rows, np.nan)
    for i, (st, sd, sq) in enumerate(zip(a.column("stock").to_pylist(), a.column("side").to_pylist(),
                                         a.column("trigger_seq").to_numpy())):
        arr = bs.get((st, sd))
        if arr is None:
            continue
        j = np.searchsorted(arr, sq)
        if j < len(arr):
            out[i] = arr[j] - sq
    return out


def compare(a: StrategyRun, b: StrategyRun, feed: pa.Table | None = None, *,
            horizon: int = 1000) -> pa.Table:
    """P&L-free statistics of two runs over the same feed, one row per
    strategy: orders, buys/sells, symbols traded, shares, orders that both
    sent (same trigger, stock, side), the fill proxy rate (with `feed`), the
    median spread at order time, and the median reaction time in messages
    to the other strategy's same-side order in the same stock."""
    rows = []
    for me, other in ((a, b), (b, a)):
        o = me.orders
        key = set(zip(o.column("trigger_seq").to_pylist(), o.column("stock").to_pylist(),
                      o.column("side").to_pylist()))
        okey = set(zip(other.orders.column("trigger_seq").to_pylist(),
                       other.orders.column("stock").to_pylist(), other.orders.column("side").to_pylist()))
        spread = (pc.subtract(o.column("ask"), o.column("bid")).to_numpy()
                  if o.num_rows else np.array([], np.int64))
        react = _reaction(o, other.orders)
        fills = fill_proxy(o, feed, horizon) if feed is not None and o.num_rows else np.array([], bool)
        rows.append({
            "strategy": me.strategy.stem,
            "orders": o.num_rows,
            "buys": int(pc.sum(pc.equal(o.column("side"), "B")).as_py() or 0),
            "sells": int(pc.sum(pc.equal(o.column("side"), "S")).as_py() or 0),
            "symbols": len(set(o.column("stock").to_pylist())),
            "shares": int(pc.sum(o.column("shares")).as_py() or 0),
            "common_orders": len(key & okey),
            "fill_proxy_rate": float(fills.mean()) if len(fills) else float("nan"),
            "median_spread": float(np.median(spread)) if len(spread) else float("nan"),
            "median_reaction_msgs": float(np.nanmedian(react)) if np.isfinite(react).any() else float("nan"),
            "risk_rejected": sum(v for k, v in me.counters["risk"].items() if k.startswith("rejected")),
        })
    return pa.Table.from_pylist(rows)
