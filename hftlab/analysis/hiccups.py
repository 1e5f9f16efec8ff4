"""hftlab.analysis.hiccups: the SUT's poll-loop gap recorder, as tables.

With ``RunSpec(hiccups_s=...)`` each SUT (HFT-OS, the Linux baselines)
spins its own poll loop on its core for that long after READY and before
the feed, reading the TSC every iteration (kernel_src/core/hiccup.h). Every
gap above the threshold is a hiccup: time the loop did not run. The SUT
logs them as ``hiccup_*`` counters of its dump; this module turns a run's
counters into

* `table`: the log2 histogram, one row per bucket [2^k, 2^(k+1)) ns with
  the hiccup count and the time they took;
* `largest`: the longest gaps and when they happened;
* `summary`: one dict (iterations, gaps, gaps per second, time lost, max).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pyarrow as pa

from hftlab.errors import DataError

__all__ = ["table", "largest", "summary", "from_run", "has_hiccups"]

_BUCKET = re.compile(r"hiccup_bucket_(\d+)$")
_TOP = re.compile(r"hiccup_top_(\d+)_ns$")


def has_hiccups(counters: dict[str, int]) -> bool:
    """True when the SUT ran the gap recorder."""
    return "hiccup_iterations" in counters


def _need(counters: dict[str, int]) -> None:
    if not has_hiccups(counters):
        raise DataError("counters", None, "no hiccup_* counters: the run had the gap recorder off "
                        "(RunSpec.hiccups_s = 0)")


def table(counters: dict[str, int]) -> pa.Table:
    """The histogram: bucket, lower_ns, upper_ns (exclusive), count, time_ns;
    non-empty buckets only, shortest first. Its counts sum to hiccup_gaps."""
    _need(counters)
    ks = sorted(int(m.group(1)) for name in counters if (m := _BUCKET.match(name)))
    return pa.table({
        "bucket": pa.array(ks, pa.int32()),
        "lower_ns": pa.array([1 << k if k else 0 for k in ks], pa.int64()),
        "upper_ns": pa.array([1 << (k + 1) for k in ks], pa.int64()),
        "count": pa.array([counters[f"hiccup_bucket_{k}"] for k in ks], pa.int64()),
        "time_ns": pa.array([counters.get(f"hiccup_bucket_{k}_ns", 0) for k in ks], pa.int64()),
    })


def largest(counters: dict[str, int]) -> pa.Table:
    """The longest gaps, longest first: rank, gap_ns, at_ns (end of the gap,
    ns after the recorder started)."""
    _need(counters)
    ranks = sorted(int(m.group(1)) for name in counters if (m := _TOP.match(name)))
    return pa.table({"rank": pa.array(ranks, pa.int32()),
                     "gap_ns": pa.array([counters[f"hiccup_top_{i}_ns"] for i in ranks], pa.int64()),
                     "at_ns": pa.array([counters.get(f"hiccup_top_{i}_at_ns", 0) for i in ranks],
                                       pa.int64())})


def summary(counters: dict[str, int]) -> dict[str, float | int]:
    """iterations, span, gaps (and per second), loop time per iteration,
    the fraction of the span lost in gaps, and the longest gap."""
    _need(counters)
    span = counters.get("hiccup_span_ns", 0)
    it = counters["hiccup_iterations"]
    gaps, lost = counters.get("hiccup_gaps", 0), counters.get("hiccup_gap_ns_total", 0)
    return {"threshold_ns": counters.get("hiccup_threshold_ns", 0), "span_s": span / 1e9,
            "iterations": it, "ns_per_iteration": span / it if it else 0.0,
            "gaps": gaps, "gaps_per_s": gaps / (span / 1e9) if span else 0.0,
            "gap_ns_total": lost, "lost_fraction": lost / span if span else 0.0,
            "max_ns": counters.get("hiccup_max_ns", 0)}


def from_run(run_dir: str | os.PathLike[str]) -> dict[str, int]:
    """The SUT counters of a run directory (run.json)."""
    p = Path(run_dir) / "run.json"
    try:
        return dict(json.loads(p.read_text()).get("counters") or {})
    except (OSError, ValueError) as exc:
        raise DataError(p, None, f"cannot read: {exc}") from None
