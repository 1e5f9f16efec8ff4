"""Which timed passes of bench_engine ran while the machine was at full speed.

This machine is a shared VM whose throughput changes from one second to the
next: the same binary on the same input reads ~35 or ~55 ns per message
from one run to the next, and itch_decode alone (a loop no change to the
book or the strategy touches) ~8-10 or ~13-14 ns at the same moments. A
median over all passes therefore reports the machine's state as much as the
code. bench_engine times decode first in every pass (--json lists the
passes in order), so each engine pass ran between two measures of the
machine's speed: its own pass's decode and the next pass's.

A pass counts as a full-speed pass when both of those decodes took no more
than FULL_SPEED_TOL times the fastest decode seen on that feed in the whole
benchmark (every build and run: the builds compared decode with the same
code unless itch.c changed between them); a run's last pass, with no decode
after it, does not count. One decode alone let through passes during which
the machine slowed down: two identical binaries then differed by 12% at the
full-speed median. The full-speed figure is then the
median, min and max of the engine path over those passes only: real
measured passes, none rescaled. The all-pass figure is always reported
beside it, with how many passes counted.
"""
from __future__ import annotations

import statistics
from typing import Any, Iterable

FULL_SPEED_TOL = 1.10


def passes_of(run: dict[str, Any], path: str) -> list[tuple[float, float | None, float]]:
    """(decode ns of pass k, decode ns of pass k+1 or None for the last
    pass, `path` ns of pass k) per pass of one bench_engine --json run:
    `path`'s pass k ran between those two decodes. A harness older than the
    per-pass lists gives its run medians as one pass, bracketed by its own
    decode median on both sides."""
    paths = run["paths"]
    if "ns" in paths["decode"] and "ns" in paths[path]:
        dec, ns = paths["decode"]["ns"], paths[path]["ns"]
        return [(dec[k], dec[k + 1] if k + 1 < len(dec) else None, ns[k]) for k in range(len(ns))]
    d = paths["decode"]["ns_median"]
    return [(d, d, paths[path]["ns_median"])]


def full_speed(passes: Iterable[tuple[float, float | None, float]], best_decode: float,
               tol: float = FULL_SPEED_TOL) -> dict[str, Any]:
    """The engine figures of the passes whose decode before and after (the
    next pass's) were both within `tol` of `best_decode`: n (of all),
    median, min, max (None when no pass counted). A run's last pass has no
    decode after it and does not count."""
    passes = list(passes)
    if not passes:
        raise ValueError("full_speed: no passes")
    if best_decode <= 0:
        raise ValueError(f"full_speed: best decode {best_decode} ns is not positive")
    lim = best_decode * tol
    fast = [ns for before, after, ns in passes if before <= lim and after is not None and after <= lim]
    out: dict[str, Any] = {"n": len(fast), "of": len(passes), "tol": tol, "best_decode": best_decode,
                           "median": None, "min": None, "max": None}
    if fast:
        out.update(median=statistics.median(fast), min=min(fast), max=max(fast))
    return out


def describe(fs: dict[str, Any]) -> str:
    """'35.1 (33.0-37.2) 41/100' or '- 0/100'."""
    if fs["median"] is None:
        return f"- {fs['n']}/{fs['of']}"
    return f"{fs['median']:.1f} ({fs['min']:.1f}-{fs['max']:.1f}) {fs['n']}/{fs['of']}"
