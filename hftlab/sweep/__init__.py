"""Sweeps: a grid of runs on Ray, its results one Parquet dataset (issue 18).

    import hftlab
    s = hftlab.sweep("sweeps/packing.yaml")       # or a dict of the same shape; returns a Sweep
    s                                              # in Jupyter: counts, failures, per-run table
    lf = hftlab.sweep_results(s.path)              # polars LazyFrame: every latency sample + spec columns
    hftlab.sweep_results(s.path, "runs")           # one row per run: status, error, percentiles ...

The layers: grid (the spec and its points, each with a stable key), store
(the sweep directory and its hive-partitioned dataset), execute (one Ray
task per run through hftlab.experiment.run; retries, Ctrl-C). `hftlab
sweep SPEC.yaml` is the CLI over `sweep`.

This package is itself callable, so that ``hftlab.sweep(spec)`` works
whether or not the package has been imported as a module.
"""
from __future__ import annotations

import html
import sys
import types
from pathlib import Path
from typing import Any, Callable, Mapping

from hftlab.errors import ConfigError, DataError
from hftlab.sweep.grid import SweepSpec, load_spec

__all__ = ["sweep", "sweep_results", "load_spec", "Sweep", "SweepSpec", "TABLES"]

TABLES = ("runs", "latency", "orders", "counters", "hiccups")


class Sweep:
    """The outcome of `sweep`: the sweep directory and what this call did."""

    def __init__(self, outcome) -> None:  # hftlab.sweep.execute.SweepOutcome
        self.outcome = outcome
        self.spec: SweepSpec = outcome.spec
        self.path = self.spec.out

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def counts(self) -> dict[str, int]:
        o = self.outcome
        return {"runs": len(o.points), "skipped": len(o.skipped), "ok": len(o.ok),
                "failed": len(o.failed)}

    @property
    def failed(self) -> dict[str, str]:
        """key -> error of every run that failed (after its retries) in this call."""
        return dict(self.outcome.failed)

    def results(self, table: str = "latency", *, status: str | None = "ok"):
        """sweep_results of this sweep."""
        return sweep_results(self.path, table, sweep=self.name, status=status)

    def __repr__(self) -> str:
        c = self.counts
        return (f"<hftlab.Sweep {self.name} -> {self.path}: {c['runs']} runs, {c['skipped']} already "
                f"complete, {c['ok']} ok, {c['failed']} failed, {self.outcome.wall_s:.1f} s>")

    def _repr_html_(self) -> str:
        c = self.counts
        head = (f"<div><b>hftlab sweep</b> <code>{html.escape(self.name)}</code> &rarr; "
                f"<code>{html.escape(str(self.path))}</code><br>" +
                " &middot; ".join(f"<b>{k}</b> {v}" for k, v in c.items()) +
                f" &middot; <b>wall</b> {self.outcome.wall_s:.1f} s</div>")
        fails = "".join(f"<li><code>{html.escape(k)}</code>: {html.escape(v)}</li>"
                        for k, v in self.failed.items())
        return head + (f"<div style='color:#b00'>failed:<ul>{fails}</ul></div>" if fails else "")


def sweep(spec: "str | Path | Mapping[str, Any] | SweepSpec", *, out: str | None = None,
          address: str | None = None, workers: int | None = None, retries: int | None = None,
          progress: bool | Callable[[str, float], None] = True) -> Sweep:
    """Run a sweep (a YAML file, a dict of the same shape, or a SweepSpec; see
    hftlab.sweep.grid) on Ray: the embedded local Ray (`workers` CPUs, default
    the machine's) or the cluster at `address`. Runs already complete in the
    sweep directory are skipped; a failed run is retried `retries` times (the
    spec's, default 1) and recorded; the others go on. Returns a Sweep; raises
    ConfigError on a bad spec, before anything runs."""
    import dataclasses

    from hftlab.experiment import progress as prog
    from hftlab.sweep.execute import run_sweep

    s = load_spec(spec, out=out)
    if retries is not None:
        if retries < 0:
            raise ConfigError(f"retries {retries}: >= 0")
        s = dataclasses.replace(s, retries=retries)
    if workers is not None and workers < 1:
        raise ConfigError(f"workers {workers}: >= 1")
    cb, bar = prog.resolve(progress, f"hftlab sweep {s.name}")
    ok = False
    try:
        res = run_sweep(s, address=address, workers=workers, progress=cb)
        ok = True  # every run ended (ok or failed, as the counts say)
    finally:
        if bar is not None:
            bar.close(ok)
    return Sweep(res)


def sweep_results(path: str | Path, table: str = "latency", *, sweep: str | None = None,
                  status: str | None = "ok"):
    """One table of a sweep directory's dataset as a polars LazyFrame: the table's
    own columns, the run's parameters (key, rep, rate, max_count, strategy_* ...)
    and the partition columns sweep, sut, nic, accel. `table`: runs, latency,
    orders, counters or hiccups. status="ok" (default) keeps complete runs only
    (for "runs": the rows of that status; None: every row)."""
    import polars as pl

    from hftlab.sweep.store import Store

    if table not in TABLES:
        raise ConfigError(f"table {table!r}: one of {', '.join(TABLES)}")
    store = Store(str(path))
    d = store.dataset(table)
    if d is None:
        if store.dataset("runs") is None:
            raise DataError(str(path), None, "not a sweep directory (no data/runs)")
        raise DataError(str(path), None, f"no run wrote the {table!r} table")
    lf = pl.scan_pyarrow_dataset(d)
    if sweep is not None:
        lf = lf.filter(pl.col("sweep") == sweep)
    if status is not None:
        if table == "runs":
            lf = lf.filter(pl.col("status") == status)
        else:
            keys = pl.scan_pyarrow_dataset(store.dataset("runs")).filter(
                pl.col("status") == status).select("key", "sweep")
            lf = lf.join(keys, on=["key", "sweep"], how="semi")
    return lf


class _CallableModule(types.ModuleType):
    """hftlab.sweep(spec) calls `sweep` even once the package is imported."""

    def __call__(self, *args: Any, **kwargs: Any) -> Sweep:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
