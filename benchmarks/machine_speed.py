"""Which timed passes of bench_engine ran while the machine was at full speed.

This machine is a shared VM whose throughput changes from one second to the
next: the same binary on the same input reads ~35 or ~55 ns per message
from one run to the next, and itch_decode alone (a loop no change to the
book or the strategy touches) ~8-10 or ~13-14 ns at the same moments. A
median over all passes therefore reports the machine's state as much as the
code. bench_engine times decode in every pass, right before the engine
paths of that pass (--json lists the passes in order), so each engine pass
carries a measure of the machine's speed taken alongside it.

A pass counts as a full-speed pass when its decode took no more than
FULL_SPEED_TOL times the fastest decode seen on that feed in the whole
benchmark (every build and run: the builds compared decode with the same
code unless itch.c changed between them). The full-speed figure is then the
median, min and max of the engine path over those passes only: real
measured passes, none rescaled. The all-pass figure is always reported
beside it, with how many passes counted.
"""
from __future__ import annotations

import statistics
from typing import Any, Iterable

FULL_SPEED_TOL = 1.10


def passes_of(run: dict[str, Any], path: str) -> list[tuple[float, float]]:
    """(decode ns, `path` ns) per pass of one bench_engine --json run; a
    harness older than the per-pass lists gives its run medians as one pass."""
    paths = run["paths"]
    if "ns" in paths["decode"] and "ns" in paths[path]:
        return list(zip(paths["decode"]["ns"], paths[path]["ns"]))
    return [(paths["decode"]["ns_median"], paths[path]["ns_median"])]


def full_speed(passes: Iterable[tuple[float, float]], best_decode: float,
               tol: float = FULL_SPEED_TOL) -> dict[str, Any]:
    """The engine figures of the passes whose decode was within `tol` of
    `best_decode`: n (of all), median, min, max (None when no pass counted)."""
    passes = list(passes)
    if not passes:
        raise ValueError("full_speed: no passes")
    if best_decode <= 0:
        raise ValueError(f"full_speed: best decode {best_decode} ns is not positive")
    fast = [ns for dec, ns in passes if dec <= best_decode * tol]
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
