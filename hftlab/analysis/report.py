"""hftlab.analysis.report: the first latency report of a run directory.

`run_report(run_dir)` reads latency.parquet and run.json and writes, beside
them, latency.png (histograms of wire and internal tick-to-trade with log
counts, and wire latency over the run) and report.md (percentile table with
sample counts, counters, run metadata).

`study_report(runs, out)` is `hftlab report RUN [RUN ...] --out DIR`: one
HTML page (report.html, PNGs embedded and also written beside it) with the
histograms (log counts), the CCDF overlay (log-log), the percentile table
with the samples behind each tail figure, latency over time, the per-stage
breakdown (internal = the SUT's software, wire - internal = NIC, link and
virtualisation), the run metadata side by side and, for two or more runs,
the A/B verdicts against the first run; plus the latency rows exported as
hive-partitioned Parquet (parquet/study=S/sut=X/run=R/latency.parquet) that
DuckDB, Spark or polars scan as one dataset, and one HdrHistogram interval
log per run (hdr/RUN.hlog).
"""
from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hftlab.util.io import AtomicPath, write_parquet
from hftlab.errors import ConfigError, DataError
from hftlab.analysis.latency import PERCENTILES, RunData, Stats, describe, load_run, over_time, percentiles
from hftlab.model.suts import INTERNAL_SPAN

__all__ = ["run_report", "study_report", "StudyReport"]


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


def internal_span(info: dict) -> str:
    """Where a run's internal span (tsc_rx .. tsc_tx) starts and ends: it
    differs between the SUTs (hftlab.model.suts.INTERNAL_SPAN)."""
    span = (info.get("baseline") or {}).get("internal_span")
    sut = (info.get("spec") or {}).get("sut", "?")
    return span or INTERNAL_SPAN.get(sut, "unknown for this SUT")


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
             "wire_ns spans the tick frame to the order frame on the link. internal "
             f"(`{info['spec']['sut']}`): {internal_span(info)}. A percentile is "
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


# ---------------------------------------------------------------------- study report
@dataclass
class StudyReport:
    html: Path
    pngs: list[Path]
    parquet_root: Path
    hdr_logs: list[Path]
    stats: dict[str, dict[str, Stats]]  #: run name -> column -> Stats
    comparison: pa.Table | None


_COLOURS = ("#31688e", "#e34a33", "#35b779", "#8856a7", "#fdae61", "#2c7fb8", "#636363")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _names(runs: list[RunData]) -> list[str]:
    out: list[str] = []
    for r in runs:
        name = r.run_id
        while name in out:
            name += "'"
        out.append(name)
    return out


def _fig_hist(plt, runs, names, stats):
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for i, (name, st) in enumerate(zip(names, stats)):
        h = st["wire_ns"].histogram
        if h is None:
            continue
        lo, hi, cnt = h.buckets()
        # re-bin HdrHistogram buckets into 60 log bins per decade-ish so runs share one x axis
        edges = np.logspace(np.log10(max(1, lo.min())), np.log10(hi.max() + 1), 60)
        counts, _ = np.histogram(lo, bins=edges, weights=cnt)
        ax.stairs(counts, edges, color=_COLOURS[i % len(_COLOURS)], label=f"{name} (n={h.total:,})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("wire tick-to-trade (ns)")
    ax.set_ylabel("orders per bin (log)")
    ax.set_title("Histogram of wire_ns")
    ax.legend(fontsize=8)
    return fig


def _fig_ccdf(plt, runs, names, stats):
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for i, (name, r) in enumerate(zip(names, runs)):
        v = np.sort(r.column("wire_ns"))
        if len(v) == 0:
            continue
        ccdf = 1.0 - np.arange(len(v)) / len(v)  # P(X >= v[i]), never 0 so log scale works
        ax.step(v, ccdf, where="post", color=_COLOURS[i % len(_COLOURS)], label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("wire tick-to-trade (ns)")
    ax.set_ylabel("P(latency >= x)")
    ax.set_title("CCDF (log-log): the tail")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _fig_time(plt, runs, names, stats):
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for i, (name, r) in enumerate(zip(names, runs)):
        lat = r.latency.filter(pa.compute.is_valid(r.latency.column("wire_ns")))
        if lat.num_rows == 0:
            continue
        t = lat.column("t_wire_out").to_numpy()
        span = max(1, int(t.max() - t.min()))
        ot = over_time(t, lat.column("wire_ns").to_numpy(), max(1, span // 40 + 1))
        x = (ot.column("window_start_ns").to_numpy() - t.min()) / 1e6
        c = _COLOURS[i % len(_COLOURS)]
        ax.plot(x, ot.column("p50").to_numpy(zero_copy_only=False), "-", color=c, label=f"{name} p50")
        ax.plot(x, ot.column("max").to_numpy(zero_copy_only=False), ":", color=c, label=f"{name} max")
    ax.set_yscale("log")
    ax.set_xlabel("time into the run (ms)")
    ax.set_ylabel("wire ns")
    ax.set_title("Latency over time (p50 and max per window)")
    ax.legend(fontsize=8)
    return fig


def _fig_stages(plt, runs, names, stats):
    fig, ax = plt.subplots(figsize=(8, 4.2))
    qs = ("p50", "p90", "p99", "max")
    width = 0.8 / max(1, len(runs))
    for i, (name, st) in enumerate(zip(names, stats)):
        inside = [st["internal_ns"].percentiles.get(q) if q != "max" else st["internal_ns"].max for q in qs]
        outside = [st["outside_ns"].percentiles.get(q) if q != "max" else st["outside_ns"].max for q in qs]
        x = np.arange(len(qs)) + i * width
        inside = [v or 0 for v in inside]
        outside = [v or 0 for v in outside]
        c = _COLOURS[i % len(_COLOURS)]
        ax.bar(x, inside, width, color=c, label=f"{name}: internal (SUT software)")
        ax.bar(x, outside, width, bottom=inside, color=c, alpha=0.45, hatch="//",
               label=f"{name}: wire - internal (NIC, link, VM)")
    ax.set_xticks(np.arange(len(qs)) + width * (len(runs) - 1) / 2, qs)
    ax.set_ylabel("ns (percentiles of each stage; linear, so stacks add)")
    ax.set_title("Per-stage breakdown (a missing bar: too few samples for that percentile)")
    ax.legend(fontsize=7)
    return fig


_FIGURES = (("histogram", _fig_hist), ("ccdf", _fig_ccdf), ("over_time", _fig_time), ("stages", _fig_stages))


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.1f}"
    return f"{v:,.0f}" if isinstance(v, (int, float, np.integer)) else html.escape(str(v))


def _stats_table(names, stats) -> str:
    keys = ["count", "mean", "stddev", "min", *[f"p{q:g}" for q in PERCENTILES], "max",
            "p99-p50", "p99.9-p50", "p99.99-p50"]
    rows = ["<tr><th>run</th><th>figure</th>" + "".join(f"<th>{k}</th>" for k in keys) + "</tr>"]
    for name, st in zip(names, stats):
        for col, s in st.items():
            d = s.to_dict()
            cells = []
            for k in keys:
                tip = f' title="{s.beyond[k]:,} samples beyond"' if k in s.beyond else ""
                cells.append(f"<td{tip}>{_cell(d.get(k))}</td>")
            rows.append(f"<tr><td>{html.escape(name)}</td><td>{col}</td>" + "".join(cells) + "</tr>")
    backing = ["<tr><th>run</th>" + "".join(f"<th>{k}</th>" for k in stats[0]["wire_ns"].beyond) + "</tr>"]
    for name, st in zip(names, stats):
        backing.append(f"<tr><td>{html.escape(name)}</td>"
                       + "".join(f"<td>{v:,}</td>" for v in st["wire_ns"].beyond.values()) + "</tr>")
    return ("<table>" + "".join(rows) + "</table><p>Samples beyond each wire_ns percentile "
            "(a figure with none beyond it is not printed):</p><table>" + "".join(backing) + "</table>")


def _meta_table(names, runs) -> str:
    def get(info, path):
        for k in path.split("."):
            info = info.get(k, {}) if isinstance(info, dict) else {}
        return info if info != {} else None

    fields = ("spec.sut", "spec.accel", "spec.nic", "spec.dataset", "spec.messages", "spec.rate_msgs_per_s",
              "spec.max_count", "spec.config", "orders.sut", "orders.golden", "orders.equal",
              "environment.cpu", "environment.host_kernel", "environment.qemu", "environment.hftlab",
              "environment.git", "phases_s.total", "status")
    rows = ["<tr><th>field</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in names) + "</tr>"]
    for f in fields:
        vals = [get(r.info, f) for r in runs]
        txt = [html.escape(json.dumps(v) if isinstance(v, (dict, list)) else str(v)) for v in vals]
        differ = len(set(txt)) > 1
        style = ' style="background:#fff3cd"' if differ else ""
        rows.append(f"<tr{style}><td>{f}</td>" + "".join(f"<td><code>{t}</code></td>" for t in txt) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def compare_table(cmp: pa.Table) -> str:
    rows = ["<tr><th>A</th><th>B</th><th>percentile</th><th>A ns</th><th>B ns</th><th>B - A</th>"
            "<th>CI low</th><th>CI high</th><th>verdict</th></tr>"]
    for r in cmp.to_pylist():
        rows.append("<tr>" + "".join(f"<td>{_cell(r[k])}</td>" for k in
                    ("a_name", "b_name", "percentile", "a", "b", "delta", "ci_low", "ci_high", "verdict"))
                    + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _export(run: RunData, name: str, study: str, root: Path) -> Path:
    part = root / f"study={_SAFE.sub('_', study)}" / f"sut={_SAFE.sub('_', run.sut)}" / f"run={_SAFE.sub('_', name)}"
    meta = {"hftlab.run": json.dumps(run.info, default=str)}
    return write_parquet(run.latency, part / "latency.parquet", meta)


_CSS = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:12px;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:3px 6px;text-align:right}th{background:#eee}img{max-width:100%}")


def study_report(runs: Sequence[str | Path], out: str | Path, *, study: str | None = None,
                 n_boot: int = 2000, conf: float = 0.95,
                 progress: Callable[[str, float], None] | None = None,
                 sections: Sequence[tuple[str, str]] = ()) -> StudyReport:
    """The report of one or more run directories into directory `out`.
    `progress(step, fraction)` is called as it goes; `sections` are extra
    (title, HTML) sections placed after the A/B verdicts (hftlab.experiment.study)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hftlab.analysis.hdr import Interval, write_log
    from hftlab.analysis.compare import compare_many

    if not runs:
        raise ConfigError("report needs at least one run directory")
    say = progress or (lambda step, frac: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    study = study or out.name
    loaded: list[RunData] = []
    for i, d in enumerate(runs):
        say("load", i / len(runs))
        loaded.append(load_run(d))
    names = _names(loaded)
    stats: list[dict[str, Stats]] = []
    for i, r in enumerate(loaded):
        say("stats", i / len(loaded))
        wire = r.latency.column("wire_ns")
        inner = r.latency.column("internal_ns")
        both = pa.compute.and_(pa.compute.is_valid(wire), pa.compute.is_valid(inner))
        outside = pa.compute.subtract(wire.filter(both), inner.filter(both)).to_numpy()
        stats.append({"wire_ns": describe(r.column("wire_ns"), histogram=True),
                      "internal_ns": describe(r.column("internal_ns")),
                      "outside_ns": describe(outside)})
    pngs, imgs = [], []
    for i, (key, draw) in enumerate(_FIGURES):
        say("figures", i / len(_FIGURES))
        fig = draw(plt, loaded, names, stats)
        fig.tight_layout()
        with AtomicPath(out / f"{key}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=90)
        plt.close(fig)
        pngs.append(out / f"{key}.png")
        imgs.append((key, base64.b64encode(pngs[-1].read_bytes()).decode()))
    cmp = None
    if len(loaded) > 1:
        say("compare", 0.0)
        cmp = compare_many({n: r.column("wire_ns") for n, r in zip(names, loaded)}, n_boot=n_boot,
                           conf=conf)
    say("export", 0.0)
    root = out / "parquet"
    logs = []
    for name, r, st in zip(names, loaded, stats):
        _export(r, name, study, root)
        if st["wire_ns"].histogram is not None:
            logs.append(write_log(out / "hdr" / f"{_SAFE.sub('_', name)}.hlog",
                                  [Interval(0.0, 0.0, st["wire_ns"].histogram, tag=name)],
                                  comment=f"hftlab wire_ns of run {name}"))
    body = [f"<h1>hftlab report: {html.escape(study)}</h1>",
            f"<p>{len(loaded)} run(s). wire_ns: tick frame to order frame on the SUT's link; internal_ns: "
            "the SUT's TSC from the frame seen to the order handed to the NIC (per SUT below); "
            "outside_ns = wire - internal. "
            "Percentiles are nearest-rank; one with no sample beyond it is shown as -.</p>",
            "<h2>Where each SUT's internal span starts and ends</h2>",
            "<ul>" + "".join(f"<li><b>{html.escape(sut)}</b>: {html.escape(span)}</li>"
                             for sut, span in dict(((r.info.get("spec") or {}).get("sut", "?"),
                                                    internal_span(r.info)) for r in loaded).items())
            + "</ul>",
            "<h2>Percentiles</h2>", _stats_table(names, stats)]
    if cmp is not None:
        body += [f"<h2>A/B: each run against {html.escape(names[0])} (B - A, {conf:.0%} bootstrap CI, "
                 f"{n_boot} replicates)</h2>", compare_table(cmp)]
    for title, part in sections:
        body += [f"<h2>{html.escape(title)}</h2>", part]
    titles = {"histogram": "Histogram (log counts)", "ccdf": "CCDF overlay (log-log)",
              "over_time": "Latency over time", "stages": "Per-stage breakdown"}
    for key, b64 in imgs:
        body += [f"<h2>{titles[key]}</h2>", f'<img alt="{key}" src="data:image/png;base64,{b64}">']
    body += ["<h2>Runs side by side</h2>", _meta_table(names, loaded),
             f"<p>Parquet (hive-partitioned): <code>{html.escape(str(root))}</code>; HdrHistogram logs: "
             f"<code>{html.escape(str(out / 'hdr'))}</code></p>"]
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>hftlab report {html.escape(study)}"
            f"</title><style>{_CSS}</style></head><body>" + "\n".join(body) + "</body></html>\n")
    with AtomicPath(out / "report.html") as tmp:
        tmp.write_text(page)
    say("done", 1.0)
    return StudyReport(out / "report.html", pngs, root, logs,
                       dict(zip(names, stats)), cmp)
