"""hftlab.analysis.latency: tick-to-trade from a run's capture and SUT log.

Statistics (`describe`) are exact and computed in numba (hftlab.analysis.kernels);
histograms are HdrHistogram-compatible (hftlab.analysis.hdr). Every tail percentile
says how many samples lie beyond it, and is withheld when none does.

The join is exact, never heuristic (docs/architecture.md §3): each order's
OUCH token carries the MoldUDP64 sequence number of the message that
triggered it; the tick frame is the market-data datagram whose
[seq, seq + count) holds that number. t_wire_in and t_wire_out are capture
timestamps on the SUT's link; internal_ns is (tsc_tx - tsc_rx) / tsc_hz,
split at tsc_doorbell (the SUT's stamp just before its TX doorbell write, or
before the baseline's send call) into decide_ns, (tsc_doorbell - tsc_rx) /
tsc_hz, the software path, and doorbell_ns, (tsc_tx - tsc_doorbell) /
tsc_hz, what ringing the NIC costs. The *_cycles columns are the same spans
in TSC cycles (instructions under tcg-icount).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from hftlab.errors import ConfigError, DataError

__all__ = ["WireTicks", "WireOrders", "join", "percentiles", "PERCENTILES", "format_summary",
           "Stats", "describe", "internal_unit", "figures", "beyond", "RunData", "load_run",
           "over_time", "Hiccups", "hiccups", "poll_loop_timestamps"]

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
    """One row per order seen on the wire: the columns of docs/architecture.md
    §3 and §5 (token, trigger_seq, t_wire_in, t_wire_out, wire_ns, tsc_rx,
    tsc_doorbell, tsc_tx, internal_ns, decide_ns, doorbell_ns and the spans
    in cycles). A tick that was sent more than once (a duplicate datagram)
    joins to its first appearance."""
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
    tsc_db = np.zeros(len(seqs), np.uint64)
    tsc_tx = np.zeros(len(seqs), np.uint64)
    have = np.zeros(len(seqs), bool)
    if sut is not None and sut.num_rows:
        s_seq = sut.column("trigger_seq").to_numpy()
        pos = {int(s): i for i, s in enumerate(s_seq)}
        rx, tx = sut.column("tsc_rx").to_numpy(), sut.column("tsc_tx").to_numpy()
        db = sut.column("tsc_doorbell").to_numpy()
        for i, s in enumerate(seqs):
            j = pos.get(int(s))
            if j is not None:
                tsc_rx[i], tsc_db[i], tsc_tx[i], have[i] = rx[j], db[j], tx[j], True
    rx64, db64, tx64 = tsc_rx.astype(np.int64), tsc_db.astype(np.int64), tsc_tx.astype(np.int64)
    spans = {"internal": tx64 - rx64, "decide": db64 - rx64, "doorbell": tx64 - db64}
    ns = {k: (v * (1e9 / tsc_hz)).round().astype(np.int64) if tsc_hz else np.zeros(len(seqs), np.int64)
          for k, v in spans.items()}
    no_ns = ~have | (not tsc_hz)
    return pa.table({
        "token": pa.array(orders.token, pa.string()),
        "trigger_seq": pa.array(seqs),
        "t_wire_in": pa.array(t_in, mask=~ok),
        "t_wire_out": pa.array(t_out),
        "wire_ns": pa.array(wire, mask=~ok),
        "tsc_rx": pa.array(tsc_rx, mask=~have),
        "tsc_doorbell": pa.array(tsc_db, mask=~have),
        "tsc_tx": pa.array(tsc_tx, mask=~have),
        "internal_ns": pa.array(ns["internal"], mask=no_ns),
        "decide_ns": pa.array(ns["decide"], mask=no_ns),
        "doorbell_ns": pa.array(ns["doorbell"], mask=no_ns),
        "internal_cycles": pa.array(spans["internal"], mask=~have),
        "decide_cycles": pa.array(spans["decide"], mask=~have),
        "doorbell_cycles": pa.array(spans["doorbell"], mask=~have),
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
    """One line: the figure's name, count, then min, the percentiles and max
    (withheld ones as -), and the unit, which the caller must name: under
    tcg-icount a run's internal figures are instructions (`figures`)."""
    cells = [f"{k}={'-' if v is None else f'{v:,.0f}'}" for k, v in p.items() if k != "count"]
    return f"{name:<12} count={p['count']:<7} " + " ".join(cells) + f" ({unit})"


def internal_unit(accel: str) -> str:
    """The unit of a run's internal span under `accel` (run.json's
    spec.accel): under tcg-icount (-icount shift=0) the guest's TSC counts
    instructions, so the span is an instruction count; otherwise ns."""
    return "instructions" if accel == "tcg-icount" else "ns"


def figures(accel: str) -> list[tuple[str, str, str]]:
    """(figure, latency column, unit) of a run's headline figures: wire_ns
    (capture clock, ns) and internal, the SUT's span: internal_ns in ns, or,
    under tcg-icount, internal_cycles in instructions (internal_ns there is
    an instruction count scaled by the calibrated TSC rate, not a time)."""
    inner = "internal_cycles" if accel == "tcg-icount" else "internal_ns"
    return [("wire_ns", "wire_ns", "ns"), ("internal", inner, internal_unit(accel))]


# ---------------------------------------------------------------------- statistics
JITTER = ((99.0, 50.0), (99.9, 50.0), (99.99, 50.0))


def beyond(n: int, q: float) -> int:
    """How many of n samples lie above the nearest-rank q-th percentile's rank."""
    return n - max(int(np.ceil(q / 100 * n)), 1) if n else 0


@dataclass
class Stats:
    """The figures of one latency distribution.

    percentiles maps "p50" ... to the nearest-rank value, or None when no
    sample lies beyond it (n * (1 - q) < 1); `beyond` says how many samples
    back each one; jitter holds p99 - p50, p99.9 - p50, p99.99 - p50.
    """

    count: int
    mean: float | None
    stddev: float | None
    min: int | float | None
    max: int | float | None
    percentiles: dict[str, int | float | None]
    beyond: dict[str, int]
    jitter: dict[str, int | float | None]
    histogram: object | None = field(default=None, repr=False)  #: hftlab.analysis.hdr.Histogram

    def to_dict(self) -> dict:
        return {"count": self.count, "mean": self.mean, "stddev": self.stddev, "min": self.min,
                **self.percentiles, "max": self.max, **self.jitter,
                **{f"beyond_{k}": v for k, v in self.beyond.items()}}


def describe(values, qs: tuple[float, ...] = PERCENTILES, *, method: str = "nearest",
             histogram: bool = False, min_beyond: int = 1) -> Stats:
    """Exact statistics of a latency array (NaNs dropped): count, mean,
    stddev (ddof=0), min, max, percentiles qs (in percent; nearest-rank, or
    numpy's "linear"), jitter spreads and the samples beyond each percentile.
    A percentile other than p50 with fewer than `min_beyond` samples beyond
    it is None. histogram=True also builds the HdrHistogram (3 digits)."""
    from hftlab.analysis import kernels
    from hftlab.analysis.hdr import Histogram, Layout

    if method not in ("nearest", "linear"):
        raise ConfigError(f"method {method!r}: nearest or linear")
    v = np.asarray(values)
    if v.ndim != 1:
        raise ConfigError("describe takes a 1-D array")
    if v.dtype.kind == "f":
        v = v[~np.isnan(v)]
    elif v.dtype.kind not in "iub":
        raise ConfigError(f"describe takes numbers, not {v.dtype}")
    fracs = [q / 100 for q in qs]  # as numpy.percentile does, so the ranks agree
    s = kernels.summary(v, fracs, method)
    n = s["count"]
    names = [f"p{q:g}" for q in qs]
    back = {k: beyond(n, q) for k, q in zip(names, qs)}
    pct = {k: (val if (back[k] >= min_beyond or q == 50.0) else None)
           for k, q, val in zip(names, qs, s["quantiles"])}
    jit = {}
    for hi, lo in JITTER:
        a, b = pct.get(f"p{hi:g}"), pct.get(f"p{lo:g}")
        jit[f"p{hi:g}-p{lo:g}"] = None if a is None or b is None else a - b
    h = None
    if histogram and n:
        if s["hdr_counts"] is not None:
            h = Histogram(3, max(2, int(s["max"])))
            h.counts[:] = s["hdr_counts"][: Layout(3, h.layout.highest).counts_len]
            h.min, h.max = int(s["min"]), int(s["max"])
        else:
            h = Histogram.from_values(v)
    return Stats(n, s["mean"], s["stddev"], s["min"], s["max"], pct, back, jit, h)


# ---------------------------------------------------------------------- run directories
@dataclass
class RunData:
    """A run directory's latency table and run.json."""

    path: Path
    info: dict
    latency: pa.Table

    @property
    def run_id(self) -> str:
        return str(self.info.get("run_id") or self.path.name)

    @property
    def sut(self) -> str:
        return str(self.info.get("spec", {}).get("sut", "unknown"))

    def column(self, name: str = "wire_ns") -> np.ndarray:
        return self.latency.column(name).drop_null().to_numpy()


def load_run(run_dir: str | os.PathLike[str]) -> RunData:
    """Read latency.parquet and run.json of a run directory."""
    import pyarrow.parquet as pq

    d = Path(run_dir)
    try:
        info = json.loads((d / "run.json").read_text())
        lat = pq.read_table(d / "latency.parquet")
    except (OSError, ValueError) as exc:
        raise DataError(d, None, f"not a complete run directory: {exc}") from None
    missing = {"wire_ns", "t_wire_out", "internal_ns"} - set(lat.column_names)
    if missing:
        raise DataError(d / "latency.parquet", None, f"columns missing: {sorted(missing)}")
    return RunData(d, info, lat)


def over_time(t_ns, values, width_ns: int, qs: tuple[float, ...] = (50.0, 99.0)) -> pa.Table:
    """Latency over time: per window of width_ns on the t_ns clock, the
    count, nearest-rank percentiles qs and max (empty windows: count 0)."""
    from hftlab.analysis import kernels

    t = np.asarray(t_ns, np.int64)
    v = np.asarray(values)
    if len(t) != len(v):
        raise ConfigError("t_ns and values differ in length")
    if width_ns <= 0:
        raise ConfigError("width_ns must be > 0")
    cols: dict[str, pa.Array] = {"window_start_ns": pa.array([], pa.int64()), "count": pa.array([], pa.int64())}
    if len(t) == 0:
        return pa.table(cols | {f"p{q:g}": pa.array([], pa.float64()) for q in qs}
                        | {"max": pa.array([], pa.float64())})
    order = np.argsort(t, kind="stable")
    starts, res = kernels.windowed(t[order], v[order], int(width_ns), [q / 100 for q in qs])
    out = {"window_start_ns": pa.array(starts), "count": pa.array(np.nan_to_num(res[:, 0]).astype(np.int64))}
    for k, q in enumerate(qs):
        out[f"p{q:g}"] = pa.array(res[:, k + 1], mask=np.isnan(res[:, k + 1]))
    out["max"] = pa.array(res[:, -1], mask=np.isnan(res[:, -1]))
    return pa.table(out)


# ---------------------------------------------------------------------- hiccups
@dataclass
class Hiccups:
    """Gaps between consecutive iterations of a poll loop above a threshold."""

    threshold_ns: int
    iterations: int
    span_ns: int
    at: np.ndarray  #: index of the iteration after each gap
    gap_ns: np.ndarray  #: length of each gap
    typical_ns: float  #: median gap of all iterations

    @property
    def count(self) -> int:
        return len(self.gap_ns)

    @property
    def lost_ns(self) -> int:
        """Time the loop did not run: the hiccups' length beyond the typical gap."""
        return int(np.sum(self.gap_ns - self.typical_ns)) if self.count else 0

    def per_second(self) -> float:
        return self.count / (self.span_ns / 1e9) if self.span_ns else 0.0

    def summary(self) -> dict:
        st = describe(self.gap_ns) if self.count else None
        return {"iterations": self.iterations, "span_s": self.span_ns / 1e9,
                "threshold_ns": self.threshold_ns, "typical_gap_ns": self.typical_ns,
                "hiccups": self.count, "per_second": self.per_second(),
                "lost_fraction": self.lost_ns / self.span_ns if self.span_ns else 0.0,
                "longest_ns": int(self.gap_ns.max()) if self.count else 0,
                "p50_gap_ns": st.percentiles["p50"] if st else None,
                "p99_gap_ns": st.percentiles["p99"] if st else None}


def hiccups(timestamps_ns, threshold_ns: int) -> Hiccups:
    """Hiccup analysis of a poll loop's iteration timestamps (ns, ascending):
    every gap between consecutive iterations longer than threshold_ns."""
    from hftlab.analysis import kernels

    ts = np.asarray(timestamps_ns, np.int64)
    if len(ts) < 2:
        raise ConfigError("hiccups need at least two timestamps")
    if np.any(np.diff(ts) < 0):
        raise ConfigError("timestamps must be ascending")
    at, gap = kernels.gaps(ts, int(threshold_ns))
    typical = float(np.median(np.diff(ts)))
    return Hiccups(int(threshold_ns), len(ts), int(ts[-1] - ts[0]), at, gap, typical)


def poll_loop_timestamps(seconds: float = 0.5, max_iterations: int = 20_000_000) -> np.ndarray:
    """Timestamps (CLOCK_MONOTONIC ns) of every iteration of a busy loop on
    this host, a jHiccup-style probe: the gaps show when the core was taken
    away (interrupts, preemption, a noisy neighbour)."""
    if seconds <= 0:
        raise ConfigError("seconds must be > 0")
    out = np.empty(max_iterations, np.int64)
    clock = time.monotonic_ns
    end = clock() + int(seconds * 1e9)
    i = 0
    while i < max_iterations:
        t = clock()
        out[i] = t
        i += 1
        if t >= end:
            break
    return out[:i]
