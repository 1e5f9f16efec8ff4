"""hftlab.report: the first latency report of a run directory.

`run_report(run_dir)` reads latency.parquet and run.json and writes, beside
them, latency.png (histograms of wire and internal tick-to-trade with log
counts, and wire latency over the run) and report.md (percentile table with
sample counts, counters, run metadata). `hftlab report` builds on this.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ._io import AtomicPath
from .errors import DataError
from .latency import percentiles

__all__ = ["run_report"]


def _hist(ax, v: np.ndarray, title: str, unit: str) -> None:
    if len(v) == 0:
        ax.set_title(f"{title}: no samples")
        return
    lo, hi = max(1, v.min()), max(v.max(), v.min() + 1)
    bins = np.logspace(np.log10(lo), np.log10(hi * 1.01), 40)
    ax.hist(v, bins=bins, color="#31688e")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(unit)
    ax.set_ylabel("orders")
    p50 = percentiles(v)["p50"]
    ax.axvline(p50, color="#e34a33", lw=1)
    ax.set_title(f"{title} (n={len(v)}, p50={p50:,.0f})")


def run_report(run_dir: str | Path) -> Path:
    """Write latency.png and report.md into run_dir; returns report.md."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = Path(run_dir)
    try:
        lat = pq.read_table(d / "latency.parquet")
        info = json.loads((d / "run.json").read_text())
    except (OSError, ValueError) as exc:
        raise DataError(d, None, f"not a complete run directory: {exc}") from None
    wire = lat.column("wire_ns").drop_null().to_numpy()
    internal = lat.column("internal_ns").drop_null().to_numpy()
    cycles = lat.column("internal_cycles").drop_null().to_numpy()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    _hist(axes[0], wire.astype(float), "wire tick-to-trade", "ns")
    _hist(axes[1], internal.astype(float), "internal (RX seen -> TX doorbell)", "ns")
    order = np.argsort(lat.column("t_wire_out").to_numpy())
    axes[2].plot((lat.column("wire_ns").to_numpy(zero_copy_only=False)[order]), ".", ms=3)
    axes[2].set_yscale("log")
    axes[2].set_xlabel("order # (time order)")
    axes[2].set_ylabel("wire ns")
    axes[2].set_title("wire latency over the run")
    fig.suptitle(f"run {info.get('run_id')} - {info['spec']['sut']} on {info['spec']['accel']}")
    fig.tight_layout()
    with AtomicPath(d / "latency.png") as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    unit = "instructions" if info["spec"]["accel"] == "tcg-icount" else "cycles"
    rows = [("wire_ns", "ns", percentiles(wire)), ("internal_ns", "ns", percentiles(internal)),
            ("internal", unit, percentiles(cycles))]
    keys = [k for k in rows[0][2] if k != "count"]
    lines = [f"# Run {info.get('run_id')}", "",
             f"SUT `{info['spec']['sut']}`, accel `{info['spec']['accel']}` ({info['spec']['accel_reason']}), "
             f"NIC `{info['spec']['nic']}`, dataset `{Path(info['spec']['dataset']).name}`, "
             f"rate {info['spec']['rate_msgs_per_s']} msg/s, capture: {info['capture']['tool']} on "
             f"{info['capture']['link']}.", "",
             f"Orders: {info['orders']['sut']} sent, golden model {info['orders']['golden']}, "
             f"bit-for-bit equal: {info['orders']['equal']}.", "",
             "wire_ns spans the tick frame to the order frame on the link; internal spans the TSC read when "
             "the RX descriptor is seen done to the TSC read right after the TX doorbell. A percentile is "
             "shown only when at least one sample lies beyond it (-).", "",
             "| figure | unit | count | " + " | ".join(keys) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in keys) + " |"]
    for name, u, p in rows:
        cells = ["-" if p[k] is None else f"{p[k]:,.0f}" for k in keys]
        lines.append(f"| {name} | {u} | {p['count']} | " + " | ".join(cells) + " |")
    lines += ["", "![latency](latency.png)", "", "## Phases (s)", "",
              json.dumps(info.get("phases_s", {})), "", "## Counters", ""]
    lines += [f"- {k}: {v}" for k, v in sorted(info.get("counters", {}).items()) if v]
    with AtomicPath(d / "report.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return d / "report.md"
