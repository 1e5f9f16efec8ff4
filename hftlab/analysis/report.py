"""hftlab.analysis.report: the first latency report of a run directory.

`run_report(run_dir)` reads latency.parquet and run.json and writes, beside
them, latency.png (histograms of wire and internal tick-to-trade with log
counts, and wire latency over the run) and report.md (percentile table with
sample counts, counters, run metadata).

`study_report(runs, out)` is `hftlab report RUN [RUN ...] --out DIR`: one
self-contained HTML page (report.html, PNGs embedded and also written
beside it) organised by the study's own terms. Runs whose run.json name the
same configuration (`run_terms`: SUT, NIC, accel, rate, ...) are the reps of
one group, named by its SUT and the terms that differ between groups; when
every run differs, each run is its own group (per run). The page gives the
percentiles per group with the reps pooled and the min..max of each figure
over the reps, the A/B verdicts of the first group against each other one on
the pooled samples (wire_ns and internal_ns; one group: each rep against rep
0), the CCDF, histograms, per-stage breakdown (each quantile its own panel,
logarithmic scale) and latency over time coloured by group with the reps as
shades, a note that counts and explains negative outside_ns (docs/architecture.md
§3), and, in an appendix, the run ids, per-run tables and run metadata side
by side. Under tcg-icount internal figures are labelled as instruction
counts. Plus the latency rows exported as hive-partitioned Parquet
(parquet/study=S/sut=X/run=R/latency.parquet) that DuckDB, Spark or polars
scan as one dataset, and one HdrHistogram interval log per run (hdr/RUN.hlog).
"""
from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hftlab.util.io import AtomicPath, write_parquet
from hftlab.errors import ConfigError, DataError
from hftlab.analysis.latency import (PERCENTILES, RunData, Stats, describe, figures, load_run, over_time,
                                     percentiles)
from hftlab.model.suts import INTERNAL_SPAN

__all__ = ["run_report", "study_report", "StudyReport", "run_terms", "compare_table", "human", "log_histogram"]


def log_histogram(ax, v: np.ndarray, title: str, unit: str) -> None:
    """Histogram of positive values on log-spaced bins with log counts, the
    nearest-rank p50 marked and named in the title (a run's report, the
    notebook API's Run.plot)."""
    v = v[v > 0]
    if len(v) == 0:
        ax.set_title(f"{title}: no samples")
        return
    lo, hi = float(v.min()), float(max(v.max(), v.min() + 1))
    bins = np.logspace(np.log10(lo), np.log10(hi * 1.01), 40)
    ax.hist(v, bins=bins, color="#31688e")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(unit)
    ax.set_ylabel("orders")
    p50 = percentiles(v)["p50"]
    ax.axvline(p50, color="#e34a33", lw=1)
    ax.set_title(f"{title} (n={len(v)}, p50={p50:,.0f} {unit})", fontsize=10)


def internal_span(info: dict) -> str:
    """Where a run's internal span (tsc_rx .. tsc_tx) starts and ends: it
    differs between the SUTs (hftlab.model.suts.INTERNAL_SPAN)."""
    span = (info.get("baseline") or {}).get("internal_span")
    sut = (info.get("spec") or {}).get("sut", "?")
    return span or INTERNAL_SPAN.get(sut, "unknown for this SUT")


def _split_text(lat: pa.Table, icol: str, unit: str, inner: np.ndarray) -> str:
    """Where the internal span goes: decide (frame seen .. order ready, before
    the TX doorbell) and doorbell (the write until it returns), each one's p50
    and the median per-order share of the span; empty for a run recorded
    before the split."""
    cols = [icol.replace("internal", s) for s in ("decide", "doorbell")]
    if not all(c in lat.column_names for c in cols) or not len(inner):
        return ""
    dec, door = (percentiles(lat.column(c).drop_null().to_numpy())["p50"] for c in cols)
    both = lat.select([icol, cols[1]]).drop_null()
    whole = both.column(icol).to_numpy().astype(float)
    ok = whole > 0
    share = float(np.median(both.column(cols[1]).to_numpy()[ok] / whole[ok])) if ok.any() else float("nan")
    return (f"It splits at the TX doorbell: decide (frame seen to order complete, before the doorbell) "
            f"p50 {dec:,.0f} {unit}, doorbell (the doorbell write, or the baseline's send call, until "
            f"it returns) p50 {door:,.0f} {unit}; per order the doorbell is {share:.0%} of the internal "
            "span (median). ")


def run_report(run_dir: str | Path) -> Path:
    """Write latency.png and report.md into run_dir; returns report.md."""
    # A Figure on the Agg canvas, without pyplot: no GUI backend, no global
    # figure registry, and about a second less import on a run's first report.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    d = Path(run_dir)
    try:
        lat = pq.read_table(d / "latency.parquet")
        info = json.loads((d / "run.json").read_text())
    except (OSError, ValueError) as exc:
        raise DataError(d, None, f"not a complete run directory: {exc}") from None
    wire = lat.column("wire_ns").drop_null().to_numpy()
    cycles = lat.column("internal_cycles").drop_null().to_numpy()
    (_, icol, iunit) = figures(info["spec"]["accel"])[1]
    inner = lat.column(icol).drop_null().to_numpy()
    pacing = _pacing_rows(d)
    fig = Figure(figsize=(15, 7.5 if pacing is not None else 4))
    FigureCanvasAgg(fig)
    if pacing is not None:
        grid = fig.add_gridspec(2, 6)
        axes = [fig.add_subplot(grid[0, 2 * k: 2 * k + 2]) for k in range(3)]
        _pacing_axes(fig, grid, lat, pacing, info)
    else:
        axes = fig.subplots(1, 3)
    log_histogram(axes[0], wire.astype(float), "wire tick-to-trade", "ns")
    log_histogram(axes[1], inner.astype(float), "internal (RX seen -> TX doorbell)", iunit)
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
    rows = [("wire_ns", "ns", percentiles(wire)), (f"internal ({icol})", iunit, percentiles(inner))]
    split = _split_text(lat, icol, iunit, inner)
    for span in ("decide", "doorbell"):  # the internal span split at the TX doorbell
        if (col := icol.replace("internal", span)) in lat.column_names:
            rows.append((f"{span} ({col})", iunit, percentiles(lat.column(col).drop_null().to_numpy())))
    if icol != "internal_cycles":  # under tcg-icount the cycles are the instructions above
        rows.append(("internal_cycles", "cycles", percentiles(cycles)))
    keys = [k for k in rows[0][2] if k != "count"]
    lines = [f"# Run {info.get('run_id')}", "",
             f"SUT `{info['spec']['sut']}`, accel `{info['spec']['accel']}` ({info['spec']['accel_reason']}), "
             f"NIC `{info['spec']['nic']}`, dataset `{Path(info['spec']['dataset']).name}`, "
             f"{_pace_term(info) or 'rate ' + str(info['spec']['rate_msgs_per_s']) + ' msg/s'}, capture: {info['capture']['tool']} on "
             f"{info['capture']['link']}.", "",
             f"Orders: {info['orders']['sut']} sent, golden model {info['orders']['golden']}, "
             f"bit-for-bit equal: {info['orders']['equal']}.", "",
             "wire_ns spans the tick frame to the order frame on the link. internal "
             f"(`{info['spec']['sut']}`): {internal_span(info)}. {split}A percentile is "
             "shown only when at least one sample lies beyond it (-).", "",
             "| figure | unit | count | " + " | ".join(keys) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in keys) + " |"]
    for name, u, p in rows:
        cells = ["-" if p[k] is None else f"{p[k]:,.0f}" for k in keys]
        lines.append(f"| {name} | {u} | {p['count']} | " + " | ".join(cells) + " |")
    lines += ["", "![latency](latency.png)", ""] + _pacing_md(info) + ["## Phases (s)", "",
              json.dumps(info.get("phases_s", {})), "", "## Counters", ""]
    lines += [f"- {k}: {v}" for k, v in sorted(info.get("counters", {}).items()) if v]
    with AtomicPath(d / "report.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return d / "report.md"


def _pacing_rows(d: Path):
    """replay.parquet's rows with a due time (None: no file, or back to back)."""
    try:
        t = pq.read_table(d / "replay.parquet")
    except OSError:
        return None
    if not t.num_rows or t.column("due_ns").null_count:
        return None
    return t


def _pacing_axes(fig, grid, lat, pacing, info: dict) -> None:
    """The second row: wire latency and the replayer's pacing error over the
    same time axis (seconds from the first datagram's due time)."""
    due = pacing.column("due_ns").to_numpy()
    t0 = int(due[0])
    col = "wire_error_ns" if pacing.column("wire_error_ns").null_count == 0 else "send_error_ns"
    err = pacing.column(col).to_numpy().astype(float)
    p = info.get("pacing") or {}
    thr = int(p.get("late_threshold_ns") or 10_000)  # hftlab.lab.exchange.LATE_NS, as run.json says
    ax_l = fig.add_subplot(grid[1, :3])
    ax_p = fig.add_subplot(grid[1, 3:], sharex=ax_l)
    t_out = lat.column("t_wire_out").to_numpy(zero_copy_only=False)
    ok = ~np.isnan(t_out.astype(float))
    ax_l.plot((t_out[ok].astype(float) - t0) / 1e9,
              lat.column("wire_ns").to_numpy(zero_copy_only=False)[ok], ".", ms=3)
    ax_l.set_yscale("log")
    ax_l.set_xlabel("s since the first datagram was due")
    ax_l.set_ylabel("wire tick-to-trade ns")
    ax_l.set_title("wire latency over time")
    x = (due - t0) / 1e9
    late = err > thr
    ax_p.plot(x[~late], np.maximum(np.abs(err[~late]), 1), ".", ms=3, label="on time")
    ax_p.plot(x[late], err[late], ".", ms=3, color="tab:red", label=f"late > {thr // 1000} us")
    ax_p.axhline(thr, color="tab:red", lw=0.8, ls="--")
    ax_p.set_yscale("log")
    ax_p.set_xlabel("s since the first datagram was due")
    ax_p.set_ylabel(f"|{col.replace('_ns', '')}| ns")
    ax_p.set_title(f"pacing error ({'wire' if col.startswith('wire') else 'send'} - due), "
                   f"pace {p.get('mode')}")
    ax_p.legend(loc="best", fontsize=8)


def _pacing_md(info: dict) -> list[str]:
    """report.md's pacing section: asked vs got, the error's percentiles,
    and each warning."""
    p = info.get("pacing")
    if not p or "datagrams" not in p:
        return []
    asked = {"rate": f"{p.get('rate_msgs_per_s')} msg/s", "recorded": f"recorded x{p.get('speed')}",
             "burst": f"{p.get('burst')} datagrams every {p.get('every_s')} s",
             "max": "back to back"}.get(p.get("mode"), str(p.get("mode")))
    out = ["## Pacing", "",
           f"Asked: pace {p.get('mode')} ({asked}); got {p['datagrams']} datagrams, "
           f"{p['messages']} messages in {p.get('span_s')} s "
           f"({p.get('achieved_msgs_per_s')} msg/s on average)."]
    e = p.get("error_ns")
    if e:
        out += ["", f"{p.get('error_of')} time - due time, |error| ns: p50 {e['p50']:,}, p99 {e['p99']:,}, "
                    f"p99.9 {e['p99.9']:,}, max {e['max']:,}; late by more than "
                    f"{int(p.get('late_threshold_ns') or 10_000) // 1000} us: {p.get('late')} "
                    f"(replay.parquet has every datagram)."]
    out += [""] + [f"> **Warning:** {w}" for w in p.get("warnings", [])]
    return out + [""]


# ---------------------------------------------------------------------- study report
@dataclass
class StudyReport:
    html: Path
    pngs: list[Path]
    parquet_root: Path
    hdr_logs: list[Path]
    stats: dict[str, dict[str, Stats]]  #: group (SUT, or SUT and the terms that differ) -> column -> Stats, reps pooled
    comparison: pa.Table | None  #: wire_ns verdicts, each group against the first (one group: each rep against r0)
    groups: dict[str, list[str]] = field(default_factory=dict)  #: group -> its runs' ids, in rep order
    run_stats: dict[str, dict[str, Stats]] = field(default_factory=dict)  #: run id -> column -> Stats
    negative: dict[str, tuple[int, int]] = field(default_factory=dict)  #: group -> (outside_ns < 0, orders)
    verdicts: dict[str, pa.Table] = field(default_factory=dict)  #: column -> the verdict table behind it
    legends: dict[str, list[str]] = field(default_factory=dict)  #: figure -> its legend entries


#: One colour per group; a group's reps are shades of it.
_COLOURS = ("#1f5fa8", "#d9480f", "#2b8a3e", "#7b2cbf", "#b08900", "#0b7285", "#c2255c", "#495057")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: What each latency figure is, in a reader's words.
FIGURE_TEXT = {
    "wire_ns": "wire tick-to-trade: tick frame to order frame on the SUT's link",
    "internal_ns": "internal: the SUT's own software span (tsc_rx to tsc_tx)",
    "outside_ns": "outside = wire - internal: NIC, VM and tap on both sides",
    "internal_cycles": "internal in counter ticks",
}
_TAIL = ("p99.9", "p99", "p90")


def run_terms(info: dict) -> dict[str, object]:
    """A run described in a study's terms: SUT, NIC, accel, rate (msg/s),
    where, dataset, messages, datagram size, engine config, git revision.
    Runs whose terms are all equal are repetitions of one configuration."""
    spec = info.get("spec") or {}
    env = info.get("environment") or {}
    ds, cfg = spec.get("dataset"), spec.get("config")
    return {"sut": str(spec.get("sut", "unknown")), "nic": spec.get("nic"), "accel": spec.get("accel"),
            "rate": _pace_term(info) or spec.get("rate_msgs_per_s"), "where": spec.get("where"),
            "dataset": Path(ds).name if ds else None, "messages": spec.get("messages"),
            "max_count": spec.get("max_count"),
            "config": None if cfg is None else json.dumps(cfg, sort_keys=True), "git": env.get("git")}


def _pace_term(info: dict) -> str | None:
    """A pace other than a message rate (run.json "pacing"), as text; None
    for a rate or back to back (the rate term says those)."""
    p = info.get("pacing") or {}
    rp = (p.get("replay") or {}).get("capture")
    src = f"replay of {Path(rp).name}, " if rp else ""
    if p.get("mode") == "recorded":
        return f"{src}recorded pace x{p.get('speed'):g}"
    if p.get("mode") == "burst":
        return f"{src}bursts of {p.get('burst')} every {p.get('every_s'):g} s"
    return f"{src}{p.get('mode')} pace" if src else None


def _term_text(key: str, v, configs: list) -> str:
    if key == "sut" or isinstance(v, str) and key == "rate":
        return str(v)
    if v is None:
        return {"rate": "unpaced", "messages": "all messages"}.get(key, f"{key} unset")
    if key == "rate":
        return f"{float(v):,.0f} msg/s"
    if key == "nic":
        return f"NIC {v}"
    if key == "accel":
        return f"accel {v}"
    if key == "where":
        return f"in the {v}" if v in ("guest", "host") else f"where {v}"
    if key == "messages":
        return f"{int(v):,} messages"
    if key == "max_count":
        return f"<= {v} msgs/datagram"
    if key == "config":
        return f"engine config {configs.index(v) + 1}"
    if key == "git":
        return f"git {v}"
    return str(v)


@dataclass
class _Group:
    label: str
    terms: dict
    runs: list[RunData]
    colour: str
    values: list[dict[str, np.ndarray]] = field(default_factory=list)  #: per run: column -> samples
    run_stats: list[dict[str, Stats]] = field(default_factory=list)
    pooled: dict[str, np.ndarray] = field(default_factory=dict)
    stats: dict[str, Stats] = field(default_factory=dict)

    @property
    def icount(self) -> bool:
        return self.terms.get("accel") == "tcg-icount"

    def columns(self) -> tuple[str, ...]:
        # under tcg-icount the internal span counts instructions: wire - internal mixes units
        return (("wire_ns", "internal_ns", "internal_cycles") if self.icount
                else ("wire_ns", "internal_ns", "outside_ns"))

    def unit(self, col: str) -> str:
        if col in ("internal_ns", "internal_cycles"):
            return "instructions" if self.icount else ("ns" if col == "internal_ns" else "cycles")
        return "ns"


def _group(runs: list[RunData]) -> list[_Group]:
    terms = [run_terms(r.info) for r in runs]
    keys: dict[str, list[int]] = {}
    for i, t in enumerate(terms):
        keys.setdefault(json.dumps(t, sort_keys=True, default=str), []).append(i)
    firsts = [terms[ix[0]] for ix in keys.values()]
    configs = list(dict.fromkeys(t["config"] for t in firsts))
    varying = [k for k in run_terms({}) if k != "sut" and len({json.dumps(t[k], default=str) for t in firsts}) > 1]
    groups, seen = [], set()
    for n, (t, ix) in enumerate(zip(firsts, keys.values())):
        label = " · ".join([t["sut"]] + [_term_text(k, t[k], configs) for k in varying])
        while label in seen:  # terms that print alike (never expected)
            label += "'"
        seen.add(label)
        groups.append(_Group(label, t, [runs[i] for i in ix], _COLOURS[n % len(_COLOURS)]))
    return groups


def shared_terms(groups) -> str:
    """The terms every group shares, for a figure's or the page's subtitle."""
    terms = [g.terms for g in groups]
    configs = list(dict.fromkeys(t["config"] for t in terms))
    keys = ("nic", "accel", "rate", "where", "dataset", "messages")
    return ", ".join(_term_text(k, terms[0][k], configs) for k in keys
                     if len({json.dumps(t[k], default=str) for t in terms}) == 1 and terms[0][k] is not None)


def _values(r: RunData, col: str) -> np.ndarray:
    if col == "outside_ns":
        wire, inner = r.latency.column("wire_ns"), r.latency.column("internal_ns")
        both = pa.compute.and_(pa.compute.is_valid(wire), pa.compute.is_valid(inner))
        return pa.compute.subtract(wire.filter(both), inner.filter(both)).to_numpy()
    if col not in r.latency.column_names:
        return np.array([], np.int64)
    return r.column(col)


def _shades(colour: str, n: int) -> list:
    """n shades of colour, darkest first (rep 0), for a group's reps."""
    from matplotlib.colors import to_rgb

    base = np.array(to_rgb(colour))
    if n == 1:
        return [tuple(base)]
    out = []
    for k in range(n):
        t = -0.4 + 0.95 * k / (n - 1)
        c = base * (1 + t) if t < 0 else base + (1 - base) * t * 0.75
        out.append(tuple(np.clip(c, 0, 1)))
    return out


def human(v, unit: str = "ns") -> str:
    """A latency figure as a reader says it: 812 ns, 155.8 µs, 4.27 ms; counts as counts."""
    if v is None:
        return "-"
    if unit != "ns":
        return f"{v:,.0f} {'instr.' if unit == 'instructions' else unit}"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:,.2f} ms"
    if a >= 1e4:
        return f"{v / 1e3:,.1f} µs"
    if a >= 1e3:
        return f"{v / 1e3:,.2f} µs"
    return f"{v:,.0f} ns"


def _axis_unit(groups, col: str) -> str:
    units = list(dict.fromkeys(g.unit(col) for g in groups if col in g.columns()))
    return " / ".join(units) if units else "ns"


def _ns_axis(ax, which: str = "x") -> None:
    """Tick labels of a latency axis in ns, µs or ms as a reader says them."""
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _pos: human(v) if v else "0")
    (ax.xaxis if which == "x" else ax.yaxis).set_major_formatter(fmt)


def _legend(ax, **kw) -> None:
    h, lab = ax.get_legend_handles_labels()
    if h:
        ax.legend(fontsize=8, **kw)


def _fig_ccdf(plt, groups, subtitle):
    fig, ax = plt.subplots(figsize=(10, 4.8))
    for g in groups:
        if len(g.runs) > 1:
            for k, (v, c) in enumerate(zip(g.values, _shades(g.colour, len(g.runs)))):
                s = np.sort(v["wire_ns"])
                if len(s):
                    ax.step(s, 1.0 - np.arange(len(s)) / len(s), where="post", color=c, lw=1, alpha=0.85,
                            ls="--", label=f"{g.label} rep {k} (n={len(s):,})")
        s = np.sort(g.pooled["wire_ns"])
        if len(s):
            pooled = f", {len(g.runs)} reps pooled" if len(g.runs) > 1 else ""
            ax.step(s, 1.0 - np.arange(len(s)) / len(s), where="post", color=g.colour, lw=2.6,
                    label=f"{g.label}{pooled} (n={len(s):,})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _ns_axis(ax)
    ax.set_xlabel("wire tick-to-trade")
    ax.set_ylabel("fraction of orders at least this slow")
    ax.set_title(f"Tail of wire tick-to-trade (CCDF, log-log)\n{subtitle}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax, loc="lower left")
    return fig


def _fig_hist(plt, groups, subtitle):
    cols = ("wire_ns", "internal_ns")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    for ax, col in zip(axes, cols):
        pos = [g.pooled[col][g.pooled[col] > 0] for g in groups if col in g.pooled]
        allv = np.concatenate(pos) if pos else np.array([])
        if len(allv) == 0:
            ax.set_title(f"{col}: no samples")
            continue
        edges = np.logspace(np.log10(max(1, allv.min())), np.log10(allv.max() * 1.01 + 1), 50)
        for g in groups:
            v = g.pooled.get(col, np.array([]))
            v = v[v > 0]
            if len(v):
                counts, _ = np.histogram(v, bins=edges)
                ax.stairs(counts, edges, color=g.colour, lw=1.8, label=f"{g.label} (n={len(v):,})")
                ax.axvline(percentiles(v)["p50"], color=g.colour, lw=1, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        unit = _axis_unit(groups, col)
        if unit == "ns":
            _ns_axis(ax)
        ax.set_xlabel(f"{col} ({unit})" if unit != "ns" else col)
        ax.set_ylabel("orders per bin (log)")
        ax.set_title(FIGURE_TEXT[col].split(":")[0] + " (dotted: p50)", fontsize=10)
        _legend(ax)
    fig.suptitle(f"Histograms, reps pooled\n{subtitle}", fontsize=10)
    return fig


def _fig_time(plt, groups, subtitle):
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(10, 4.6))
    for g in groups:
        for k, (r, c) in enumerate(zip(g.runs, _shades(g.colour, len(g.runs)))):
            lat = r.latency.filter(pa.compute.is_valid(r.latency.column("wire_ns")))
            if lat.num_rows == 0:
                continue
            t = lat.column("t_wire_out").to_numpy()
            w = lat.column("wire_ns").to_numpy()
            name = f"{g.label} rep {k}" if len(g.runs) > 1 else g.label
            ax.plot((t - t.min()) / 1e6, w, ".", color=c, ms=3, alpha=0.6)
            span = max(1, int(t.max() - t.min()))
            ot = over_time(t, w, max(1, span // 40 + 1))
            p50 = ot.column("p50").to_numpy(zero_copy_only=False).astype(float)
            x = (ot.column("window_start_ns").to_numpy() - t.min()) / 1e6
            keep = ~np.isnan(p50)  # empty windows are skipped, not drawn as gaps
            ax.plot(x[keep], p50[keep], "-", color=c, lw=1.6, label=name)
    ax.set_yscale("log")
    _ns_axis(ax, "y")
    ax.set_xlabel("time into the run (ms)")
    ax.set_ylabel("wire tick-to-trade")
    ax.set_title(f"Wire latency over each run (dots: orders, line: p50 per 1/40 of the run)\n{subtitle}",
                 fontsize=10)
    h, lab = ax.get_legend_handles_labels()
    h += [Line2D([], [], color="k", ls="", marker=".")]
    lab += ["one order"]
    ax.legend(h, lab, fontsize=8)
    return fig


def _stage_quantiles(groups) -> list[str]:
    tail = next((q for q in _TAIL if all(g.stats["wire_ns"].percentiles.get(q) is not None for g in groups)),
                None)
    return ["p50"] + ([tail] if tail else []) + ["max"]


def _q(st: Stats, q: str):
    return st.max if q == "max" else st.percentiles.get(q)


def _fig_stages(plt, groups, subtitle):
    from matplotlib.patches import Patch

    qs = _stage_quantiles(groups)
    icount = any(g.icount for g in groups)
    inside = "internal (SUT software, instructions: right axis)" if icount else "internal (SUT software)"
    stages = [("wire_ns", "wire", dict(alpha=1.0)), ("internal_ns", inside, dict(alpha=0.55, hatch="//"))]
    if not icount:
        stages.append(("outside_ns", "outside = wire - internal", dict(alpha=0.25, hatch="..")))
    fig, axes = plt.subplots(1, len(qs), figsize=(4.6 * len(qs), 4.6), squeeze=False)
    width = 0.8 / len(stages)
    words = {"p50": "p50: the typical order", "max": "max: the slowest order"}
    for ax, q in zip(axes[0], qs):
        tw = ax.twinx() if icount else None
        for i, g in enumerate(groups):
            for j, (col, _name, style) in enumerate(stages):
                st = g.stats.get(col)
                v = None if st is None else _q(st, q)
                if v is None:
                    continue
                target = tw if (icount and col == "internal_ns") else ax
                unit = g.unit(col)
                bars = target.bar(i + (j - (len(stages) - 1) / 2) * width, v, width, color=g.colour,
                                  edgecolor=g.colour, **style)
                target.bar_label(bars, labels=[human(v, unit)], fontsize=7, rotation=90, padding=2)
        for a in (ax, tw):
            if a is not None:
                # symlog: p50 and max of SUTs decades apart all readable, and a negative
                # outside_ns still drawn (below the line at 0)
                lo, hi = a.get_ylim()
                a.set_yscale("symlog", linthresh=1000, linscale=0.4)
                lo, hi = min(0.0, lo * 3), max(hi, 1e3) * 12  # room for the value labels
                a.set_ylim(lo, hi)
                ticks = [10.0 ** e for e in range(3, int(np.log10(hi)) + 1)]
                ticks = [-t for t in ticks if -t >= lo][::-1] + [0.0] + ticks
                a.set_yticks(ticks)
                a.minorticks_off()
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(range(len(groups)), [g.label for g in groups], fontsize=8,
                      rotation=0 if len(groups) < 4 else 20)
        ax.set_title(words.get(q, f"{q}: the tail"), fontsize=10)
        _ns_axis(ax, "y")
        if tw is not None:
            tw.set_ylabel("internal (instructions, tcg-icount)")
    axes[0][0].set_ylabel("each stage's own percentile")
    handles = [Patch(color=g.colour, label=g.label) for g in groups]
    handles += [Patch(facecolor="#888", alpha=s.get("alpha", 1), hatch=s.get("hatch"), label=name)
                for _c, name, s in stages]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8)
    fig.suptitle("Where the time goes, per stage (each panel its own scale, logarithmic above 1 µs)"
                 f"\n{subtitle}", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 0.93))
    return fig


_FIGURES = (("ccdf", "The tail: CCDF of wire tick-to-trade", _fig_ccdf),
            ("histogram", "Histograms of wire and internal latency", _fig_hist),
            ("stages", "Per-stage breakdown", _fig_stages),
            ("over_time", "Latency over time", _fig_time))


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not v.is_integer() and abs(v) < 100:
        return f"{v:,.1f}"
    return f"{v:,.0f}" if isinstance(v, (int, float, np.integer, np.floating)) else html.escape(str(v))


def _tip(st: Stats, k: str) -> str:
    return f' title="{st.beyond[k]:,} samples beyond it"' if k in st.beyond else ""


def _swatch(g: _Group) -> str:
    return (f'<span class="sw" style="background:{g.colour}"></span>{html.escape(g.label)}')


_KEYS = ("min", *[f"p{q:g}" for q in PERCENTILES], "max")


def _pooled_table(groups: list[_Group]) -> str:
    cols = list(dict.fromkeys(c for g in groups for c in g.columns()))
    # a percentile no group can back (too few samples) is a column of "-": left out, and said so
    keys = [k for k in _KEYS if any(st.to_dict().get(k) is not None for g in groups for st in g.stats.values())]
    gone = [k for k in _KEYS if k not in keys]
    jitter = any(st.jitter.get("p99-p50") is not None for g in groups for st in g.stats.values())
    head = ("<tr><th class=l>SUT</th><th>unit</th><th>reps</th><th>orders</th>"
            + "".join(f"<th>{k}</th>" for k in keys) + ("<th>p99 - p50</th>" if jitter else "") + "</tr>")
    rows = []
    for col in cols:
        rows.append(f'<tr class=fig><td class=l colspan="{len(keys) + 4 + jitter}"><b>{col}</b>: '
                    f"{html.escape(FIGURE_TEXT[col].split(': ', 1)[-1])}</td></tr>")
        for g in groups:
            if col not in g.stats:
                continue
            st = g.stats[col]
            d = st.to_dict()
            cells = []
            for k in keys:
                tip = _tip(st, k)
                per = [r[col].to_dict().get(k) for r in g.run_stats]
                per = [p for p in per if p is not None]
                spread = (f'<br><span class=rep>reps {_cell(min(per))}..{_cell(max(per))}</span>'
                          if len(g.runs) > 1 and per else "")
                neg = " neg" if col == "outside_ns" and k == "min" and d.get(k) is not None and d[k] < 0 else ""
                cells.append(f'<td class="{neg.strip()}"{tip}>{_cell(d.get(k))}{spread}</td>')
            rows.append(f"<tr><td class=l>{_swatch(g)}</td><td>{g.unit(col)}</td><td>{len(g.runs)}</td>"
                        f"<td>{st.count:,}</td>" + "".join(cells)
                        + (f"<td>{_cell(st.jitter.get('p99-p50'))}</td>" if jitter else "") + "</tr>")
    note = (f"<p class=small>Not shown: {', '.join(gone)}: no sample lies beyond them in these sample "
            "sizes.</p>" if gone else "")
    return "<table>" + head + "".join(rows) + "</table>" + note


def compare_table(cmp: pa.Table, unit: str = "ns") -> str:
    """A verdict table (hftlab.analysis.compare) as HTML: A, B, B - A and its CI per percentile."""
    rows = [f"<tr><th>A</th><th>B</th><th>percentile</th><th>A {unit}</th><th>B {unit}</th><th>B - A</th>"
            "<th>CI low</th><th>CI high</th><th class=l>verdict</th></tr>"]
    for r in cmp.to_pylist():
        cls = {"a_faster": "a", "b_faster": "b"}.get(r.get("outcome"), "")
        rows.append(f'<tr class="{cls}">' + "".join(f"<td>{_cell(r[k])}</td>" for k in
                    ("a_name", "b_name", "percentile", "a", "b", "delta", "ci_low", "ci_high"))
                    + f"<td class=l>{_cell(r['verdict'])}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _verdict_html(cmp: pa.Table, unit: str, conf: float) -> str:
    parts = []
    for b in dict.fromkeys(cmp.column("b_name").to_pylist()):
        t = cmp.filter(pa.compute.equal(cmp.column("b_name"), b))
        r0 = t.to_pylist()[0]
        rows = [f"<tr><th>percentile</th><th>{html.escape(r0['a_name'])} (A)</th><th>{html.escape(b)} (B)</th>"
                f"<th>B - A</th><th>{conf:.0%} CI of B - A</th><th class=l>verdict</th></tr>"]
        for r in t.to_pylist():
            cls = {"a_faster": "a", "b_faster": "b"}.get(r["outcome"], "")
            rows.append(f'<tr class="{cls}"><td>{r["percentile"]}</td><td>{_cell(r["a"])}</td>'
                        f'<td>{_cell(r["b"])}</td><td>{_cell(r["delta"])}</td>'
                        f'<td>[{_cell(r["ci_low"])}, {_cell(r["ci_high"])}]</td>'
                        f"<td class=l>{html.escape(r['verdict'])}</td></tr>")
        tests = ""
        if r0.get("mannwhitney_p") is not None:
            tests = (f"<p class=small>Whole distributions: Mann-Whitney U p = {r0['mannwhitney_p']:.3g}, "
                     f"P({html.escape(b)} faster than {html.escape(r0['a_name'])} on a random pair) = "
                     f"{r0['prob_b_faster']:.3f}; Kolmogorov-Smirnov D = {r0['ks_d']:.3f}, "
                     f"p = {r0['ks_p']:.3g}.</p>")
        parts.append(f"<h4>{html.escape(r0['a_name'])} vs {html.escape(b)} "
                     f"(n = {r0['n_a']:,} vs {r0['n_b']:,}; {unit})</h4><table>" + "".join(rows)
                     + "</table>" + tests)
    return "".join(parts)


def _negative_note(groups: list[_Group]) -> str:
    have = [g for g in groups if "outside_ns" in g.pooled]
    if not have:
        return ""
    counts = [(g, int((g.pooled["outside_ns"] < 0).sum()), len(g.pooled["outside_ns"])) for g in have]
    if not any(n for _g, n, _t in counts):
        return ("<p class=small>outside_ns = wire_ns - internal_ns is positive for every order "
                "of every SUT here.</p>")
    each = "; ".join(f"{html.escape(g.label)}: <b>{n:,} of {t:,}</b> ({n / t:.0%}, min {human(g.stats['outside_ns'].min)})"
                     if t else f"{html.escape(g.label)}: no orders" for g, n, t in counts)
    accels = sorted({str(g.terms.get("accel")) for g, n, _t in counts if n})
    tcg = all(a.startswith("tcg") for a in accels)
    why = ("QEMU emulates the NIC's TX doorbell synchronously: the register write that hands the order to "
           "the NIC (HFT-OS's TDT write, or the guest kernel's for the Linux SUTs) transmits the frame "
           "before it returns, so the order is on the tap before the SUT reads tsc_tx and the internal "
           "span ends after the wire span (docs/architecture.md §3). On hardware the doorbell is a posted "
           "write and outside_ns is positive. Once the frame has left, any stall of the vCPU before it reads "
           "tsc_tx (QEMU's own work, the host scheduling the vCPU thread) counts in internal_ns and not in "
           "wire_ns, which is why a negative span can be as large as the vCPU's stalls.")
    lead = ("Expected under TCG (these runs: accel " + ", ".join(accels) + "): " if tcg else
            "These runs are not all under TCG (accel " + ", ".join(accels) + "); under TCG the cause is known: ")
    return (f"<div class=note><b>Negative outside_ns</b> (orders whose wire span is shorter than their "
            f"internal span): {each}. {lead}{why} The figures are shown as measured, not clipped; "
            "wire_ns is unaffected.</div>")


def _spans(groups) -> str:
    spans = dict((g.terms["sut"], internal_span(g.runs[0].info)) for g in groups)
    return "<ul>" + "".join(f"<li><b>{html.escape(s)}</b>: {html.escape(sp)}</li>"
                            for s, sp in spans.items()) + "</ul>"


def _ab_title(groups: list[_Group], ref: str) -> str:
    suts = {g.terms["sut"] for g in groups}
    pooled = any(len(g.runs) > 1 for g in groups)
    if len(groups) == 1:
        return f"A/B: each rep of {groups[0].label} against rep 0 (repeatability)"
    if len(suts) > 1:
        return f"A/B: {ref} against each baseline" + (" (repetitions pooled)" if pooled else "")
    if not pooled:
        return f"A/B: each run against {ref}"
    return f"A/B: each configuration against {ref} (repetitions pooled)"


def _meta_table(names, runs, labels) -> str:
    def get(info, path):
        for k in path.split("."):
            info = info.get(k, {}) if isinstance(info, dict) else {}
        return info if info != {} else None

    fields = ("spec.sut", "spec.accel", "spec.nic", "spec.dataset", "spec.messages", "spec.rate_msgs_per_s",
              "spec.max_count", "spec.config", "orders.sut", "orders.golden", "orders.equal",
              "environment.cpu", "environment.host_kernel", "environment.qemu", "environment.hftlab",
              "environment.git", "phases_s.total", "status")
    rows = ["<tr><th class=l>field</th>" + "".join(f"<th>{html.escape(n)}<br><span class=rep>"
                                                   f"{html.escape(lab)}</span></th>"
                                                   for n, lab in zip(names, labels)) + "</tr>"]
    for f in fields:
        vals = [get(r.info, f) for r in runs]
        txt = [html.escape(json.dumps(v) if isinstance(v, (dict, list)) else str(v)) for v in vals]
        differ = len(set(txt)) > 1
        style = ' style="background:#fff3cd"' if differ else ""
        rows.append(f"<tr{style}><td class=l>{f}</td>" + "".join(f"<td class=l><code>{t}</code></td>" for t in txt)
                    + "</tr>")
    return "<table class=meta>" + "".join(rows) + "</table>"


def _runs_table(groups: list[_Group], names: dict[int, str]) -> str:
    rows = ["<tr><th class=l>SUT</th><th>rep</th><th class=l>run id</th><th class=l>directory</th>"
            "<th>status</th><th>orders = golden</th><th>orders</th><th>wire p50 ns</th><th>wire max ns</th>"
            "<th>internal p50</th><th>outside_ns &lt; 0</th></tr>"]
    for g in groups:
        for k, (r, st, v) in enumerate(zip(g.runs, g.run_stats, g.values)):
            o = r.info.get("orders") or {}
            neg = int((v["outside_ns"] < 0).sum()) if "outside_ns" in v else None
            rows.append(f"<tr><td class=l>{_swatch(g)}</td><td>{k}</td><td class=l><code>"
                        f"{html.escape(names[id(r)])}</code></td><td class=l><code>{html.escape(str(r.path))}"
                        f"</code></td><td>{html.escape(str(r.info.get('status', '?')))}</td>"
                        f"<td>{html.escape(str(o.get('equal', '?')))}</td><td>{st['wire_ns'].count:,}</td>"
                        f"<td>{_cell(st['wire_ns'].percentiles.get('p50'))}</td><td>{_cell(st['wire_ns'].max)}</td>"
                        f"<td>{human(st['internal_ns'].percentiles.get('p50'), g.unit('internal_ns'))}</td>"
                        f"<td>{'-' if neg is None else f'{neg:,}'}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _per_run_table(groups: list[_Group], names: dict[int, str]) -> str:
    keys = ["count", "mean", "stddev", *_KEYS, "p99-p50", "p99.9-p50", "p99.99-p50"]
    rows = ["<tr><th class=l>run id</th><th class=l>SUT, rep</th><th>figure</th><th>unit</th>"
            + "".join(f"<th>{k}</th>" for k in keys) + "</tr>"]
    for g in groups:
        for k, (r, st) in enumerate(zip(g.runs, g.run_stats)):
            for col, s in st.items():
                d = s.to_dict()
                cells = "".join(f"<td{_tip(s, x)}>{_cell(d.get(x))}</td>" for x in keys)
                rows.append(f"<tr><td class=l><code>{html.escape(names[id(r)])}</code></td><td class=l>"
                            f"{_swatch(g)} rep {k}</td><td>{col}</td><td>{g.unit(col)}</td>{cells}</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _export(run: RunData, name: str, study: str, root: Path) -> Path:
    part = root / f"study={_SAFE.sub('_', study)}" / f"sut={_SAFE.sub('_', run.sut)}" / f"run={_SAFE.sub('_', name)}"
    meta = {"hftlab.run": json.dumps(run.info, default=str)}
    return write_parquet(run.latency, part / "latency.parquet", meta)


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1250px;margin:2em auto;color:#222;line-height:1.4}"
        "table{border-collapse:collapse;font-size:12px;margin:.6em 0 1.2em}td,th{border:1px solid #ccc;"
        "padding:3px 7px;text-align:right;vertical-align:top}th{background:#eee}.l{text-align:left}"
        "tr.fig td{background:#f4f6fa}.rep{color:#777;font-size:10px}td.neg{background:#fde2e1}"
        "tr.a td,tr.b td{background:#eef7ee}.sw{display:inline-block;width:.9em;height:.9em;"
        "border-radius:2px;margin-right:.4em;vertical-align:-1px}img{max-width:100%}"
        ".note{background:#fff8e1;border-left:4px solid #f0b400;padding:.6em 1em;margin:1em 0;font-size:14px}"
        ".small{font-size:12px;color:#444}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}"
        "h4{margin:.8em 0 .2em}nav{font-size:13px}table.meta td{max-width:260px;overflow-wrap:anywhere}"
        "code{font-size:11px}")


def study_report(runs: Sequence[str | Path], out: str | Path, *, study: str | None = None,
                 n_boot: int = 2000, conf: float = 0.95,
                 progress: Callable[[str, float], None] | None = None,
                 sections: Sequence[tuple[str, str]] = (),
                 appendix: Sequence[tuple[str, str]] = ()) -> StudyReport:
    """The report of one or more run directories into directory `out`.

    Runs whose run.json describe the same configuration (`run_terms`: SUT,
    NIC, accel, rate ...) are repetitions of one group, named by its SUT and
    the terms that differ between groups; each group's samples are pooled,
    its percentiles shown with the min..max of the per-rep figure, and the
    first group is the A side of every verdict. When every run is its own
    group the report is per run, named the same way. Run ids, per-run tables
    and metadata go to the appendix. `progress(step, fraction)` is called as
    it goes; `sections` are extra (title, HTML) sections placed after the
    verdicts, `appendix` extra sections of the appendix (hftlab.experiment.study)."""
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
    names: dict[int, str] = {}
    for r in loaded:
        name = r.run_id
        while name in names.values():
            name += "'"
        names[id(r)] = name
    groups = _group(loaded)
    for i, g in enumerate(groups):
        say("stats", i / len(groups))
        for r in g.runs:
            v = {c: _values(r, c) for c in g.columns()}
            g.values.append(v)
            g.run_stats.append({c: describe(x, histogram=(c == "wire_ns")) for c, x in v.items()})
        g.pooled = {c: np.concatenate([v[c] for v in g.values]) for c in g.columns()}
        g.stats = {c: describe(x, histogram=(c == "wire_ns")) for c, x in g.pooled.items()}
    subtitle = shared_terms(groups) or "see the appendix for each run's terms"
    pngs, imgs, legends = [], [], {}
    for i, (key, title, draw) in enumerate(_FIGURES):
        say("figures", i / len(_FIGURES))
        fig = draw(plt, groups, subtitle)
        legends[key] = [t.get_text() for leg in [ax.get_legend() for ax in fig.axes] + list(fig.legends)
                        if leg is not None for t in leg.get_texts()]
        if key != "stages":
            fig.tight_layout()
        with AtomicPath(out / f"{key}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=90)
        plt.close(fig)
        pngs.append(out / f"{key}.png")
        imgs.append((key, title, base64.b64encode(pngs[-1].read_bytes()).decode()))
    say("compare", 0.0)
    verdicts: dict[str, pa.Table] = {}
    ref = groups[0].label
    if len(groups) == 1 and len(groups[0].runs) > 1:
        sides = {f"{ref} rep {k}": v for k, v in enumerate(groups[0].values)}
        ref = f"{ref} rep 0"
    else:
        sides = {g.label: g.pooled for g in groups}
    if len(sides) > 1:
        for col in ("wire_ns", "internal_ns"):
            units = {g.unit(col) for g in groups}
            samples = {k: v[col] for k, v in sides.items() if col in v}
            if len(units) == 1 and len(samples) > 1 and all(len(x) for x in samples.values()):
                verdicts[col] = compare_many(samples, baseline=ref, n_boot=n_boot, conf=conf,
                                             unit=units.pop())
    cmp = verdicts.get("wire_ns")
    say("export", 0.0)
    root = out / "parquet"
    logs = []
    for g in groups:
        for r, st in zip(g.runs, g.run_stats):
            _export(r, names[id(r)], study, root)
            if st["wire_ns"].histogram is not None:
                logs.append(write_log(out / "hdr" / f"{_SAFE.sub('_', names[id(r)])}.hlog",
                                      [Interval(0.0, 0.0, st["wire_ns"].histogram, tag=names[id(r)])],
                                      comment=f"hftlab wire_ns of run {names[id(r)]} ({g.label})"))
    page = _page(study, groups, loaded, names, subtitle, imgs, verdicts, ref, conf, n_boot, sections,
                 appendix, root, out)
    with AtomicPath(out / "report.html") as tmp:
        tmp.write_text(page)
    say("done", 1.0)
    return StudyReport(out / "report.html", pngs, root, logs, {g.label: g.stats for g in groups}, cmp,
                       groups={g.label: [names[id(r)] for r in g.runs] for g in groups},
                       run_stats={names[id(r)]: st for g in groups for r, st in zip(g.runs, g.run_stats)},
                       negative={g.label: (int((g.pooled["outside_ns"] < 0).sum()), len(g.pooled["outside_ns"]))
                                 for g in groups if "outside_ns" in g.pooled},
                       verdicts=verdicts, legends=legends)


def _headline(groups: list[_Group], verdicts: dict[str, pa.Table]) -> str:
    items = []
    for g in groups:
        st = g.stats["wire_ns"]
        per = [s["wire_ns"].percentiles.get("p50") for s in g.run_stats]
        per = [p for p in per if p is not None]
        spread = f" (reps {human(min(per))} to {human(max(per))})" if len(g.runs) > 1 and per else ""
        tail = next((q for q in _TAIL if st.percentiles.get(q) is not None), None)
        tail_txt = f", {tail} {human(st.percentiles[tail])}" if tail else ""
        items.append(f"<li>{_swatch(g)}: wire p50 <b>{human(st.percentiles.get('p50'))}</b>{spread}"
                     f"{tail_txt}, max {human(st.max)}; internal p50 "
                     f"{human(g.stats['internal_ns'].percentiles.get('p50'), g.unit('internal_ns'))} "
                     f"({st.count:,} orders, {len(g.runs)} rep{'s' if len(g.runs) > 1 else ''})</li>")
    cmp = verdicts.get("wire_ns")
    if cmp is not None:
        for r in cmp.to_pylist():
            if r["percentile"] == "p50":
                items.append(f"<li>Verdict, wire p50: {html.escape(r['verdict'])}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _page(study, groups, loaded, names, subtitle, imgs, verdicts, ref, conf, n_boot, sections, appendix,
          root, out) -> str:
    n_suts = len({g.terms["sut"] for g in groups})
    reps = sorted({len(g.runs) for g in groups})
    what = "SUTs" if n_suts == len(groups) else "configurations"
    shape = (f"{len(groups)} {what if len(groups) > 1 else what[:-1]} ({', '.join(html.escape(g.label) for g in groups)})"
             f" x {'/'.join(map(str, reps))} rep{'s' if reps != [1] else ''}, {len(loaded)} run(s)")
    icount = any(g.icount for g in groups)
    body = [f"<h1>hftlab report: {html.escape(study)}</h1>",
            f"<p><b>{shape}</b>; shared by every run: {html.escape(subtitle)}.</p>",
            _headline(groups, verdicts),
            "<p class=small>wire_ns runs from the tick frame to the order frame on the SUT's link (dumpcap, "
            "one clock); internal_ns is the SUT's own span, measured by its cycle counter; outside_ns = "
            "wire - internal. Reps of one configuration are pooled (all their orders in one sample); "
            "under each pooled figure, <span class=rep>reps a..b</span> is the range of that figure over "
            "the single reps. Percentiles are nearest-rank; a tail percentile with no sample beyond it "
            "is shown as -. Run ids, per-run tables and metadata are in the appendix.</p>"]
    if icount:
        body.append("<div class=note>Under tcg-icount the SUT's counter counts guest instructions: internal "
                    "figures are <b>instruction counts</b>, not times, and wire - internal is not computed.</div>")
    toc = ["Percentiles", "Verdicts", *[t for t, _ in sections], *[t for _k, t, _b in imgs], "Appendix"]
    body.insert(2, "<nav>" + " · ".join(f'<a href="#s{i}">{html.escape(t)}</a>' for i, t in enumerate(toc))
                + "</nav>")
    sec = iter(range(len(toc)))
    body += [f'<a id="s{next(sec)}"></a><h2>Percentiles per {"SUT" if n_suts > 1 or len(groups) == 1 else "configuration"}'
             f"{', reps pooled' if reps != [1] else ''}</h2>", _pooled_table(groups),
             _negative_note(groups),
             "<h3>Where each SUT's internal span starts and ends</h3>", _spans(groups)]
    body.append(f'<a id="s{next(sec)}"></a><h2>{html.escape(_ab_title(groups, ref))}</h2>')
    if verdicts:
        body.append(f"<p class=small>B - A per percentile with its {conf:.0%} bootstrap confidence interval "
                    f"({n_boot} replicates); a side is called faster only when the interval excludes 0, and a "
                    "tail percentile needs 10 samples beyond it on both sides. Rows in green carry a "
                    "verdict.</p>")
        for col, t in verdicts.items():
            unit = groups[0].unit(col)
            body += [f"<h3>{col} ({unit})</h3>", _verdict_html(t, unit, conf)]
    else:
        body.append("<p>One run: nothing to compare.</p>")
    for title, part in sections:
        body += [f'<a id="s{next(sec)}"></a><h2>{html.escape(title)}</h2>', part]
    for key, title, b64 in imgs:
        body += [f'<a id="s{next(sec)}"></a><h2>{html.escape(title)}</h2>',
                 f'<img alt="{key}" src="data:image/png;base64,{b64}">']
        if key == "stages":
            body.append("<p class=small>Each bar is that stage's own percentile over all orders (percentiles "
                        "do not add: internal p50 + outside p50 need not equal wire p50).</p>")
            body.append(_negative_note(groups))
        if key == "ccdf" and any(len(g.runs) > 1 for g in groups):
            body.append("<p class=small>Thick lines: reps pooled; dashed shades of the same colour: the "
                        "single reps (rep 0 darkest).</p>")
    body += [f'<a id="s{next(sec)}"></a><h2>Appendix</h2>', "<h3>A.1 Runs</h3>", _runs_table(groups, names),
             "<h3>A.2 Per-run percentiles</h3>", _per_run_table(groups, names),
             "<h3>A.3 Runs side by side (fields that differ are highlighted)</h3>",
             _meta_table([names[id(r)] for g in groups for r in g.runs], [r for g in groups for r in g.runs],
                         [f"{g.label} rep {k}" for g in groups for k in range(len(g.runs))])]
    for i, (title, part) in enumerate(appendix):
        body += [f"<h3>A.{i + 4} {html.escape(title)}</h3>", part]
    body.append(f"<p class=small>Latency rows as hive-partitioned Parquet: <code>{html.escape(str(root))}</code>; "
                f"HdrHistogram logs: <code>{html.escape(str(out / 'hdr'))}</code>.</p>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>hftlab report {html.escape(study)}"
            f"</title><style>{_CSS}</style></head><body>" + "\n".join(body) + "</body></html>\n")
