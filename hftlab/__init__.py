"""hftlab: build, run and measure HFT-OS, a bare-metal x86_64 trading OS.

The notebook API, one call per experiment::

    import hftlab
    r = hftlab.run(sut="hftos", accel="tcg", dataset="datasets/ritch/ex20101224.TEST_ITCH_50")
    r                      # in Jupyter: summary table, histogram, counters
    r.describe()           # one row per figure (wire_ns, internal) with its unit
    r.latency              # polars DataFrame, one row per order (backend="pandas": pandas)
    s = hftlab.study(suts=("hftos", "linux-dpdk"), reps=3)
    w = hftlab.sweep("sweep.yaml")              # a grid of runs on Ray (hftlab.sweep)
    hftlab.sweep_results(w.path)                # its latency samples, a polars LazyFrame
    hftlab.compare(hftlab.load("runs/a"), hftlab.load("runs/b"))

The package's layers, each importing only those below it::

    cli ─► sweep ─► experiment ─► lab, analysis ─► capture ─► model ─► util, errors

``import hftlab`` stays cheap: the API objects load on first use.
"""
from __future__ import annotations

from hftlab.errors import (
    BuildError,
    ConfigError,
    DataError,
    HftlabError,
    RunError,
    ToolMissingError,
)

_API = {"run": "hftlab.experiment.api", "load": "hftlab.experiment.api",
        "study": "hftlab.experiment.api", "compare": "hftlab.experiment.api",
        "Run": "hftlab.experiment.api", "Study": "hftlab.experiment.api",
        "Comparison": "hftlab.experiment.api", "sweep_results": "hftlab.sweep"}

__all__ = [
    "run", "load", "study", "compare", "Run", "Study", "Comparison", "sweep", "sweep_results",
    "BuildError", "ConfigError", "DataError", "HftlabError", "RunError", "ToolMissingError",
    "__version__",
]


def __getattr__(name: str):
    if name == "__version__":  # importlib.metadata costs ~20 ms: only when asked
        from hftlab.util.env import version

        globals()["__version__"] = v = version()
        return v
    if name == "sweep":  # the package hftlab.sweep is itself callable: hftlab.sweep(spec)
        import importlib

        return importlib.import_module("hftlab.sweep")
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'hftlab' has no attribute {name!r}")
