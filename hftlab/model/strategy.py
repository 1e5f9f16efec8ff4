"""hftlab.model.strategy: strategy C files in the golden model (the research loop).

A strategy is one freestanding C file against kernel_src/core/strategy.h.
:func:`load_strategy` builds the golden model (hftlab._core's sources, with
that strategy instead of the bundled trigger) into a cache keyed by the
hash of every C source involved, so the first use of a strategy compiles
it (a progress line says so, ~30-60 s) and every later use imports it at
once. Before the cffi build, the file goes through exactly the rule HFT-OS
builds it with (kernel_src/core/core.mk: freestanding, -Werror, then
kernel_src/tools/strategy_check.sh), so a strategy the golden model accepts
is one HFT-OS and the baselines accept, and a bad one is refused with the
compiler's file:line or the offending symbol's name.

:func:`run_strategy` runs one over an ITCH file natively and returns its
orders with the book state at each order as Arrow; :func:`compare` puts two
runs side by side with P&L-free statistics.
"""
from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hftlab.errors import BuildError, ConfigError
from hftlab.util.paths import ROOT

__all__ = ["BUNDLED", "StrategyRun", "load_strategy", "check_strategy", "resolve_strategy",
           "run_strategy", "compare", "fill_proxy", "cache_dir"]

KERNEL_SRC = ROOT / "kernel_src"
STRATEGIES = KERNEL_SRC / "strategies"
#: The strategies that ship with hftlab, by name (``--strategy trigger`` works too).
BUNDLED = {p.stem: p for p in sorted(STRATEGIES.glob("*.c"))}
DEFAULT = STRATEGIES / "trigger.c"
_loaded: dict[str, ModuleType] = {}


def resolve_strategy(strategy: str | os.PathLike[str] | None) -> Path:
    """A strategy argument as a path: None is the bundled trigger, a bare
    bundled name (``imbalance``) is kernel_src/strategies/<name>.c."""
    if strategy is None:
        return DEFAULT
    s = os.fspath(strategy)
    if s in BUNDLED:
        return BUNDLED[s]
    p = Path(s).expanduser().resolve()
    if not p.is_file():
        raise ConfigError(f"strategy {s!r}: no such file (bundled: {', '.join(BUNDLED)})")
    if p.suffix != ".c":
        raise ConfigError(f"strategy {p}: a strategy is a C file (.c)")
    return p


def cache_dir() -> Path:
    """Where compiled strategies live: $HFTLAB_CACHE/strategies, else
    ~/.cache/hftlab/strategies."""
    base = os.environ.get("HFTLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hftlab")
    return Path(base) / "strategies"


def _sources(path: Path) -> list[Path]:
    core = sorted((KERNEL_SRC / "core").glob("*.[ch]"))
    csrc = sorted((ROOT / "hftlab" / "csrc").glob("*.[ch]"))
    return [path, *core, *csrc, ROOT / "hftlab" / "_core_cdef.h", ROOT / "hftlab" / "_build_core.py",
            KERNEL_SRC / "include" / "hftos_abi.h", KERNEL_SRC / "tools" / "strategy_check.sh",
            KERNEL_SRC / "core" / "core.mk"]


def source_hash(path: Path) -> str:
    """sha256 over the strategy and every source the golden model is built from."""
    h = hashlib.sha256()
    for p in _sources(path):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def check_strategy(strategy: str | os.PathLike[str], build: Path | None = None) -> Path:
    """Build the strategy as HFT-OS does (core.mk's freestanding rule and
    strategy_check.sh) into `build` (a temporary directory by default);
    BuildError with the compiler's or the checker's message when refused.
    Returns the path of the strategy."""
    path = resolve_strategy(strategy)
    with tempfile.TemporaryDirectory(prefix="hftlab-strat-") as tmp:
        out = Path(build or tmp)
        p = subprocess.run(["make", "-s", "-C", str(KERNEL_SRC), f"BUILD={out}", f"STRATEGY={path}",
                            str(out / "core-k" / "strategy_impl.o")],
                           capture_output=True, text=True, check=False)
    if p.returncode != 0:
        lines = [ln for ln in (p.stderr + p.stdout).splitlines()
                 if ln.strip() and not ln.startswith(("make", "cc ", "gcc "))]
        msg = "\n".join(lines[-25:]) or f"make exited with {p.returncode}"
        if "No such file or directory" in msg and "#include <" in msg:
            msg += ("\n(a strategy is freestanding: it includes strategy.h only, and the "
                    "compiler's own stdint.h/stddef.h/stdbool.h; no libc header)")
        raise BuildError(f"strategy {path} refused:\n{msg}")
    return path


def _compile(path: Path, digest: str, dest: Path) -> Path:
    from hftlab._build_core import make_builder  # cffi, only when compiling

    name = f"_hftlab_strategy_{digest[:16]}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        builder = make_builder(module=name, strategy=str(path), rel=False)
        so = builder.compile(tmpdir=str(tmp), verbose=False)
        (tmp / "strategy.txt").write_text(f"{path}\n{digest}\n")
        for junk in tmp.glob("*.[co]"):
            junk.unlink()
        try:
            os.replace(tmp, dest)
        except OSError:  # another process won the race: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, BuildError):
            raise
        raise BuildError(f"strategy {path}: golden model build failed: {exc}") from None
    return dest / Path(so).name


def load_strategy(strategy: str | os.PathLike[str] | None, *, quiet: bool = False) -> ModuleType:
    """The golden model (a cffi module with .ffi and .lib) with `strategy`
    compiled in; compiled on first use, from the cache afterwards."""
    path = resolve_strategy(strategy)
    digest = source_hash(path)
    if digest in _loaded:
        return _loaded[digest]
    name = f"_hftlab_strategy_{digest[:16]}"
    dest = cache_dir() / digest[:16]
    found = sorted(dest.glob(f"{name}*.so")) if dest.is_dir() else []
    if found:
        so = found[0]
    else:
        t0 = time.monotonic()
        if not quiet:
            print(f"hftlab: compiling strategy {path.name} into the golden model (first use of this "
                  f"source; ~30-60 s) -> {dest}", file=sys.stderr, flush=True)
        check_strategy(path)
        so = _compile(path, digest, dest)
        if not quiet:
            print(f"hftlab: strategy {path.name} compiled in {time.monotonic() - t0:.1f} s",
                  file=sys.stderr, flush=True)
    loader = importlib.machinery.ExtensionFileLoader(name, str(so))
    spec = importlib.util.spec_from_file_location(name, str(so), loader=loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    _loaded[digest] = mod
    return mod


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
    from hftlab.model.core import Engine

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
