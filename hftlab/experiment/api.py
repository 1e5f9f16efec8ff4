"""hftlab.experiment.api: the objects a notebook holds (Run, Study, Comparison).

    import hftlab
    r = hftlab.run(sut="hftos", accel="tcg")   # a Run; raises when the run fails
    r                                           # in Jupyter: header, describe table, histogram, counters
    r.describe()                                # one row per figure, with its unit
    r.latency, r.orders                         # polars DataFrames (backend="pandas": pandas)
    hftlab.load(r.path)                         # the same run, reopened from its directory
    s = hftlab.study(suts=("hftos", "linux-dpdk"), reps=1)
    hftlab.compare(a, b)                        # bootstrap CIs, Mann-Whitney U, KS

`hftlab run` and `hftlab study` are thin layers over `run` and `study`.
The figures and their units come from hftlab.analysis.latency.figures: under
tcg-icount a run's internal span is an instruction count, and every table
and plot here says "instructions" there.
"""
from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import secrets
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hftlab.analysis.report import log_histogram
from hftlab.analysis import latency as lat
from hftlab.errors import ConfigError, DataError, RunError
from hftlab.experiment import progress as prog
from hftlab.util.paths import ROOT

__all__ = ["run", "load", "study", "compare", "Run", "Study", "Comparison", "BACKENDS"]

BACKENDS = ("polars", "pandas", "arrow")
_DESCRIBE_COLUMNS = ("count", "min", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean", "stddev")
#: the counters a run's summary shows, when the SUT has them
_KEY_COUNTERS = ("itch_messages", "mold_packets", "mold_gaps", "mold_duplicates", "strategy_signals",
                 "risk_accepted", "engine_orders", "os_rx_missed", "os_tx_ring_full", "hiccup_gaps")
_SUT_COLOURS = ("#31688e", "#e34a33", "#35b779", "#8856a7", "#fdae61", "#636363")


# ---------------------------------------------------------------------- helpers
def _frame(table: pa.Table, backend: str):
    """An Arrow table as the backend's frame."""
    if backend == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if backend == "pandas":
        return table.to_pandas()
    return table


def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ConfigError(f"backend {backend!r}: one of {', '.join(BACKENDS)}")
    return backend


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    return html.escape(str(v))


def _html_table(table: pa.Table, columns: Iterable[str] | None = None) -> str:
    """A small HTML table of an Arrow table (numbers with thousands separators,
    withheld values as -)."""
    cols = list(columns) if columns is not None else table.column_names
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    rows = "".join("<tr>" + "".join(f"<td>{_cell(r[c])}</td>" for c in cols) + "</tr>"
                   for r in table.select(cols).to_pylist())
    return f"<table class='hftlab'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _png(fig) -> str:
    """A matplotlib figure as an <img> tag with the PNG inline (base64)."""
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(_png_bytes(fig)).decode()}">'


def _png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72, bbox_inches="tight")
    return buf.getvalue()


def _show_figures_in_notebook(figure_type) -> None:
    """In Jupyter, render a Figure that is the last line of a cell as PNG.
    Without pyplot nothing registers that formatter (matplotlib-inline does
    when pyplot is imported), and our figures never touch pyplot: a figure
    pyplot holds would be shown twice, once by pyplot at the cell's end."""
    if not prog.in_notebook():
        return
    from IPython import get_ipython

    png = get_ipython().display_formatter.formatters["image/png"]
    if figure_type not in png.type_printers:  # matplotlib-inline's, when pyplot is in use
        png.for_type(figure_type, _png_bytes)


def _figure(ncols: int, width: float = 5.0, height: float = 3.2):
    """A matplotlib Figure that no pyplot state holds (it renders when shown,
    never twice)."""
    from matplotlib.figure import Figure

    _show_figures_in_notebook(Figure)
    fig = Figure(figsize=(width * ncols, height))
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def _ccdf(ax, v: np.ndarray, label: str, colour: str, unit: str, alpha: float = 1.0) -> None:
    """Complementary CDF, log-log: the fraction of samples above each value."""
    v = np.sort(v[v > 0]) if len(v) else v
    if len(v) == 0:
        return
    frac = 1.0 - np.arange(len(v)) / len(v)
    ax.step(v, frac, where="post", label=label, color=colour, alpha=alpha, lw=1.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(unit)
    ax.set_ylabel("fraction above")



def _stats_row(figure: str, unit: str, values: np.ndarray) -> dict[str, Any]:
    if len(values) == 0:
        return {"figure": figure, "unit": unit, "count": 0}
    st = lat.describe(values)
    row: dict[str, Any] = {"figure": figure, "unit": unit, "count": st.count,
                           "min": st.min, **{k: st.percentiles.get(k) for k in ("p50", "p90", "p99",
                                                                                "p99.9", "p99.99")},
                           "max": st.max, "mean": st.mean, "stddev": st.stddev}
    return row


#: min, the percentiles and max are samples (int64, null when withheld); mean and stddev float
_DESCRIBE_SCHEMA = pa.schema([("figure", pa.string()), ("unit", pa.string()), ("count", pa.int64())]
                             + [(c, pa.int64()) for c in _DESCRIBE_COLUMNS[1:-2]]
                             + [("mean", pa.float64()), ("stddev", pa.float64())])


def _describe_table(rows: list[dict]) -> pa.Table:
    def conv(k, v):
        if v is None or k in ("figure", "unit", "count"):
            return v
        return float(v) if k in ("mean", "stddev") else int(round(float(v)))

    clean = [{k: conv(k, r.get(k)) for k in _DESCRIBE_SCHEMA.names} for r in rows]
    return pa.Table.from_pylist(clean, schema=_DESCRIBE_SCHEMA)


_CSS = ("<style>table.hftlab{border-collapse:collapse;font-size:12px;margin:4px 0}"
        "table.hftlab td,table.hftlab th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "table.hftlab th{background:#f0f0f0}</style>")


# ---------------------------------------------------------------------- Run
class Run:
    """One run directory: run.json, latency.parquet, orders.parquet ...

    Made by `run` (after the experiment) or `load` (a directory on disk).
    Tables come as polars DataFrames, or pandas with backend="pandas"."""

    def __init__(self, path: str | Path, info: dict, *, backend: str = "polars") -> None:
        self.path = Path(path)
        self.info = info
        self.backend = _check_backend(backend)
        self._latency: pa.Table | None = None
        self._orders: pa.Table | None = None

    # -- what the run was
    @property
    def status(self) -> str:
        return str(self.info.get("status", "unknown"))

    @property
    def spec(self) -> dict:
        return dict(self.info.get("spec") or {})

    @property
    def sut(self) -> str:
        return str(self.spec.get("sut", "?"))

    @property
    def accel(self) -> str:
        return str(self.spec.get("accel", "?"))

    @property
    def run_id(self) -> str:
        return str(self.info.get("run_id") or self.path.name)

    @property
    def internal_unit(self) -> str:
        """"instructions" under tcg-icount, else "ns"."""
        return lat.internal_unit(self.accel)

    def with_backend(self, backend: str) -> "Run":
        """The same run, its tables as another backend's frames."""
        other = Run(self.path, self.info, backend=backend)
        other._latency, other._orders = self._latency, self._orders
        return other

    # -- tables
    def _read(self, name: str) -> pa.Table:
        p = self.path / name
        try:
            return pq.read_table(p)
        except (OSError, pa.ArrowInvalid) as exc:
            why = f": {self.info['error']}" if self.info.get("error") else ""
            raise DataError(p, None, f"cannot read ({exc}); run status {self.status}{why}") from None

    def latency_table(self) -> pa.Table:
        """latency.parquet as Arrow (docs/architecture.md §5)."""
        if self._latency is None:
            self._latency = self._read("latency.parquet")
        return self._latency

    def orders_table(self) -> pa.Table:
        """orders.parquet as Arrow."""
        if self._orders is None:
            self._orders = self._read("orders.parquet")
        return self._orders

    @property
    def latency(self):
        """One row per order: token, trigger_seq, t_wire_in, t_wire_out, wire_ns, tsc_rx,
        tsc_doorbell, tsc_tx, internal_ns, decide_ns, doorbell_ns, internal_cycles,
        decide_cycles, doorbell_cycles (docs/architecture.md §3, §5)."""
        return _frame(self.latency_table(), self.backend)

    @property
    def orders(self):
        """One row per order seen on the wire (token, trigger_seq, side, shares, stock, price, tif, rx_ns)."""
        return _frame(self.orders_table(), self.backend)

    @property
    def pacing(self):
        """replay.parquet: one row per datagram sent (datagram, first_seq, last_seq, messages,
        due_ns, sent_ns, wire_ns, send_error_ns, wire_error_ns); info["pacing"] sums it up."""
        return _frame(self._read("replay.parquet"), self.backend)

    @property
    def counters(self):
        """The SUT's counters from its dump: a table (counter, value)."""
        c = self.info.get("counters") or {}
        t = pa.table({"counter": pa.array(list(c), pa.string()),
                      "value": pa.array([int(v) for v in c.values()], pa.int64())})
        return _frame(t, self.backend)

    def counter(self, name: str) -> int:
        """One counter's value, e.g. run.counter("itch_messages")."""
        c = self.info.get("counters") or {}
        if name not in c:
            raise ConfigError(f"no counter {name!r} in run {self.run_id}; it has: {', '.join(sorted(c))}")
        return int(c[name])

    def values(self, column: str) -> np.ndarray:
        """A latency column's non-null values as numpy."""
        return self.latency_table().column(column).drop_null().to_numpy()

    def figures(self) -> list[tuple[str, str, str]]:
        """(figure, column, unit): wire_ns in ns, internal in ns or, under tcg-icount, instructions."""
        return lat.figures(self.accel)

    # -- statistics and pictures
    def describe(self):
        """One row per figure (wire_ns, internal): unit, count, min, p50 ... p99.99, max, mean,
        stddev. Nearest-rank; a tail percentile with no sample beyond it is null."""
        return _frame(self._describe(), self.backend)

    def _describe(self) -> pa.Table:
        return _describe_table([_stats_row(fig, unit, self.values(col)) for fig, col, unit in self.figures()])

    def jitter(self):
        """One row per figure: unit, p99 - p50, p99.9 - p50, p99.99 - p50 (null when the tail is
        withheld), stddev."""
        rows = {k: [] for k in ("figure", "unit", "p99-p50", "p99.9-p50", "p99.99-p50", "stddev")}
        for fig, col, unit in self.figures():
            v = self.values(col)
            st = lat.describe(v) if len(v) else None
            rows["figure"].append(fig)
            rows["unit"].append(unit)
            for k in ("p99-p50", "p99.9-p50", "p99.99-p50"):
                rows[k].append(None if st is None or st.jitter[k] is None else int(st.jitter[k]))
            rows["stddev"].append(None if st is None else st.stddev)
        t = pa.table({k: pa.array(v, pa.string() if k in ("figure", "unit") else
                                  (pa.float64() if k == "stddev" else pa.int64())) for k, v in rows.items()})
        return _frame(t, self.backend)

    def over_time(self, width_ns: int = 50_000_000, figure: str = "wire_ns"):
        """A figure per window of width_ns of the capture clock (t_wire_out): window_start_ns,
        count, p50, p99, max (empty windows: count 0)."""
        cols = {f: c for f, c, _ in self.figures()}
        if figure not in cols:
            raise ConfigError(f"figure {figure!r}: one of {', '.join(cols)}")
        t = self.latency_table()
        t = t.filter(pa.compute.and_(t[cols[figure]].is_valid(), t["t_wire_out"].is_valid()))
        return _frame(lat.over_time(t["t_wire_out"].to_numpy(), t[cols[figure]].to_numpy(), width_ns),
                      self.backend)

    @property
    def hiccups(self):
        """The SUT's poll-loop gap recorder (run with hiccups=S): one row, iterations, span_s,
        gaps, lost_fraction, max_ns ...; None when the run did not record."""
        from hftlab.analysis import hiccups as hic

        c = self.info.get("counters") or {}
        if not hic.has_hiccups(c):
            return None
        return _frame(pa.Table.from_pylist([hic.summary(c)]), self.backend)

    @property
    def hiccup_histogram(self):
        """The recorded gaps in log2 buckets (bucket, lower_ns, upper_ns, count, time_ns); None
        when the run did not record."""
        from hftlab.analysis import hiccups as hic

        c = self.info.get("counters") or {}
        return _frame(hic.table(c), self.backend) if hic.has_hiccups(c) else None

    def plot(self):
        """A matplotlib Figure: histograms (log counts) of wire and internal, and their CCDFs."""
        fig, axes = _figure(3, 4.6, 3.2)
        for ax, (name, col, unit) in zip(axes, self.figures()):
            log_histogram(ax, self.values(col).astype(float), name, unit)
        units = sorted({unit for _, _, unit in self.figures()})
        for (name, col, unit), colour in zip(self.figures(), _SUT_COLOURS):
            _ccdf(axes[2], self.values(col).astype(float), f"{name} ({unit})", colour, " or ".join(units))
        axes[2].set_title("CCDF", fontsize=10)
        if axes[2].lines:
            axes[2].legend(fontsize=8)
        fig.suptitle(f"{self.sut} on {self.accel}, run {self.run_id}", fontsize=10)
        fig.tight_layout()
        return fig

    def report(self, out: str | Path | None = None) -> Path:
        """The HTML report of this run (hftlab.analysis.report.study_report) into `out`
        (default: report/ in the run directory); returns report.html's path."""
        from hftlab.analysis.report import study_report

        rep = study_report([self.path], Path(out) if out is not None else self.path / "report",
                           study=self.run_id)
        return Path(rep.html)

    # -- display
    def header(self) -> dict[str, Any]:
        s, o = self.spec, self.info.get("orders") or {}
        ds = s.get("dataset")
        return {"sut": self.sut, "where": s.get("where"), "accel": self.accel, "nic": s.get("nic"),
                "dataset": Path(ds).name if ds else None,
                "messages": (self.info.get("replay") or {}).get("messages", s.get("messages")),
                "status": self.status,
                "orders": f"{o.get('sut', '?')} (golden {o.get('golden', '?')}, equal {o.get('equal', '?')})"}

    def __repr__(self) -> str:
        h = self.header()
        return (f"<hftlab.Run {self.run_id} {h['sut']} on {h['accel']} {h['status']}: orders {h['orders']}; "
                f"{self.path}>")

    def _repr_html_(self) -> str:
        h = self.header()
        head = " &middot; ".join(f"<b>{k}</b> {_cell(v)}" for k, v in h.items())
        parts = [_CSS, f"<div><b>hftlab run</b> <code>{html.escape(self.run_id)}</code> "
                 f"<code>{html.escape(str(self.path))}</code><br>{head}</div>"]
        if self.status != "ok":
            parts.append(f"<p style='color:#b00'>{html.escape(str(self.info.get('error', 'no error recorded')))}"
                         "</p>")
            return "".join(parts)
        parts.append(_html_table(self._describe()))
        fig = self.plot()
        parts.append(_png(fig))
        c = self.info.get("counters") or {}
        keys = [k for k in _KEY_COUNTERS if k in c]
        if keys:
            parts.append("<div>" + ", ".join(f"{k} {int(c[k]):,}" for k in keys) + "</div>")
        return "".join(parts)


# ---------------------------------------------------------------------- run and load
def _config(config):
    from hftlab.model import core

    if config is None:
        return core.EngineConfig.default()
    if isinstance(config, core.EngineConfig):
        return config
    if isinstance(config, (str, Path)):
        return core.EngineConfig.from_file(config)
    raise ConfigError("config: an EngineConfig, a config file path, or None (the default)")


def run(sut: str = "hftos", *, accel: str = "auto", dataset: str | Path | None = None,
        messages: int | None = None, rate: float | None = 20_000.0, where: str = "guest",
        nic: str = "e1000", config=None, hiccups: float = 0.0, max_count: int = 64,
        guest_cpus: int = 2, out: str | Path | None = None,
        progress: bool | Callable[[str, float], None] = True, backend: str = "polars",
        strategy: str | Path | None = None, **more: Any) -> Run:
    """Run one experiment end to end (hftlab.experiment.run.run) and return its Run.

    dataset: an ITCH 5.0 file (default: the bundled RITCH sample); rate: ITCH
    messages per second (None or 0: back to back); pace: "rate", "recorded"
    (speed=X: the feed's ITCH timestamps, or replay's capture times, X times
    as fast), "burst" (burst=N datagrams every every_s=T seconds) or "max";
    replay: a pcap/pcapng whose MoldUDP64 datagrams are sent instead of the
    dataset (run.json "pacing" and replay.parquet say how well the load kept
    time); hiccups: seconds of the
    poll-loop gap recorder before the feed; config: an EngineConfig or a
    config file; strategy: a strategy C file or bundled name (trigger,
    imbalance, quoter) to build every SUT and the golden model with (it
    overrides the config's strategy.file); out: the run directory (default runs/<id>); progress: True
    draws a bar (in place in Jupyter, one line in a terminal), a callable
    gets (stage, fraction). More RunSpec fields by name (hiccup_threshold_ns,
    boot_timeout, max_payload, network ...). Raises ConfigError on a bad
    argument and RunError (with the cause, run.json says it too) when the
    run fails: a Run returned is a run whose orders equal the golden model's.
    """
    from dataclasses import fields

    from hftlab.experiment.run import run as run_spec
    from hftlab.experiment.spec import DEFAULT_DATASET, RunSpec

    _check_backend(backend)
    known = {f.name for f in fields(RunSpec)}
    unknown = sorted(set(more) - known)
    if unknown:
        raise ConfigError(f"run(): unknown argument(s) {unknown}; RunSpec fields: {', '.join(sorted(known))}")
    cfg = _config(config)
    if strategy is not None:
        cfg = dataclasses.replace(cfg, strategy=dataclasses.replace(cfg.strategy, file=str(strategy)))
        cfg.validate()
    spec = RunSpec(sut=sut, accel=accel, nic=nic, where=where,
                   dataset=Path(dataset) if dataset is not None else DEFAULT_DATASET,
                   messages=messages, rate=rate or None, max_count=max_count, config=cfg,
                   guest_cpus=guest_cpus, out=Path(out) if out is not None else None,
                   hiccups_s=hiccups, **more)
    cb, bar = prog.resolve(progress, f"hftlab run {sut}")
    ok = False
    try:
        res = run_spec(spec, progress=cb)
        ok = True
    finally:
        if bar is not None:
            bar.close(ok)
    r = Run(res.run_dir, res.info, backend=backend)
    orders = res.info.get("orders") or {}
    if res.status != "ok" or not orders.get("equal"):  # run() raises on these; never hand one out
        raise RunError(f"run {res.run_dir} ended with status {res.status!r}, orders {orders}")
    r._latency = res.latency
    return r


def load(path: str | Path, *, allow_failed: bool = False, backend: str = "polars") -> Run:
    """Reopen a run directory. A run that failed (or never finished) raises
    RunError with run.json's error, unless allow_failed=True."""
    _check_backend(backend)
    d = Path(path)
    try:
        info = json.loads((d / "run.json").read_text())
    except FileNotFoundError:
        raise DataError(d, None, "not a run directory: no run.json") from None
    except (OSError, ValueError) as exc:
        raise DataError(d / "run.json", None, f"cannot read: {exc}") from None
    status = info.get("status")
    if status != "ok" and not allow_failed:
        if status == "running":
            raise RunError(f"run {d} never finished (run.json says running: killed, or still going)")
        raise RunError(f"run {d} failed: {info.get('error', 'no error recorded')}")
    r = Run(d, info, backend=backend)
    if status == "ok":
        r.latency_table()  # a complete run has its table: fail here, not on first use
    return r


# ---------------------------------------------------------------------- Study
class Study:
    """A study directory (hftlab.experiment.study): its runs, the pooled figures,
    the ratios against the first SUT, the hiccups and the order the runs ran in."""

    def __init__(self, path: str | Path, runs: dict[str, list[Run]], *, backend: str = "polars") -> None:
        self.path = Path(path)
        self.runs = runs
        self.backend = _check_backend(backend)

    @classmethod
    def open(cls, path: str | Path, *, backend: str = "polars") -> "Study":
        """Reopen a study directory from its order.parquet and run directories."""
        d = Path(path)
        try:
            order = pq.read_table(d / "order.parquet").sort_by([("rep", "ascending"), ("position", "ascending")])
        except (OSError, pa.ArrowInvalid) as exc:
            raise DataError(d, None, f"not a study directory: {exc}") from None
        runs: dict[str, list[Run]] = {}
        for r in order.to_pylist():
            runs.setdefault(r["sut"], []).append(load(d / r["run"], backend=backend))
        return cls(d, runs, backend=backend)

    def _table(self, name: str) -> pa.Table:
        p = self.path / f"{name}.parquet"
        try:
            return pq.read_table(p)
        except (OSError, pa.ArrowInvalid) as exc:
            raise DataError(p, None, f"cannot read: {exc}") from None

    @property
    def suts(self) -> list[str]:
        return list(self.runs)

    @property
    def figures(self):
        """Per SUT and column, the reps pooled: count, p50, p99, p99.9, max."""
        return _frame(self._table("figures"), self.backend)

    @property
    def ratios(self):
        """First SUT / each other SUT, per column and quantile."""
        return _frame(self._table("ratios"), self.backend)

    @property
    def hiccups(self):
        """Each run's hiccup histogram (log2 buckets)."""
        return _frame(self._table("hiccups"), self.backend)

    @property
    def hiccup_summary(self):
        """Each run's hiccup summary (gaps, lost_fraction, max_ns ...)."""
        return _frame(self._table("hiccup_summary"), self.backend)

    @property
    def order(self):
        """The order the runs ran in: rep, position, sut, run, started, ended."""
        return _frame(self._table("order"), self.backend)

    def report(self) -> Path:
        """report.html, written by the study."""
        p = self.path / "report.html"
        if not p.is_file():
            raise DataError(p, None, "the study wrote no report")
        return p

    def pooled(self, figure: str = "wire_ns") -> dict[str, np.ndarray]:
        """SUT -> every run's samples of a figure ("wire_ns" or "internal"), reps pooled."""
        out = {}
        for sut, runs in self.runs.items():
            cols = {f: c for f, c, _ in runs[0].figures()}
            out[sut] = np.concatenate([r.values(cols[figure]) for r in runs]) if runs else np.array([])
        return out

    def describe(self):
        """Per SUT and figure, the reps pooled: unit, count, min, p50 ... max, mean, stddev."""
        return _frame(self._describe(), self.backend)

    def _describe(self) -> pa.Table:
        rows = []
        for sut, runs in self.runs.items():
            for fig, _col, unit in runs[0].figures():
                row = _stats_row(fig, unit, self.pooled(fig)[sut])
                rows.append({"sut": sut, "reps": len(runs), **row})
        t = _describe_table([{k: v for k, v in r.items() if k not in ("sut", "reps")} for r in rows])
        t = t.add_column(0, "reps", pa.array([r["reps"] for r in rows], pa.int64()))
        return t.add_column(0, "sut", pa.array([r["sut"] for r in rows], pa.string()))

    def plot(self):
        """CCDF of wire and internal per SUT (reps pooled), one colour per SUT."""
        first = next(iter(self.runs.values()))[0]
        fig, axes = _figure(2, 5.0, 3.4)
        for ax, (name, _col, unit) in zip(axes, first.figures()):
            for (sut, v), colour in zip(self.pooled(name).items(), _SUT_COLOURS):
                _ccdf(ax, v.astype(float), f"{sut} (n={len(v)})", colour, unit)
            ax.set_title(f"{name} CCDF, reps pooled", fontsize=10)
            if ax.lines:
                ax.legend(fontsize=8)
        fig.tight_layout()
        return fig

    def __repr__(self) -> str:
        return f"<hftlab.Study {self.path}: {', '.join(f'{s} x{len(r)}' for s, r in self.runs.items())}>"

    def _repr_html_(self) -> str:
        first = next(iter(self.runs.values()))[0]
        s = first.spec
        head = (f"<div><b>hftlab study</b> <code>{html.escape(str(self.path))}</code><br>"
                f"SUTs {html.escape(', '.join(f'{k} x{len(v)}' for k, v in self.runs.items()))} &middot; "
                f"accel {_cell(first.accel)} &middot; NIC {_cell(s.get('nic'))} &middot; rate "
                f"{_cell(s.get('rate_msgs_per_s'))} msg/s &middot; dataset "
                f"{_cell(Path(s['dataset']).name if s.get('dataset') else None)}</div>")
        parts = [_CSS, head, "<h4>Pooled per SUT</h4>", _html_table(self._describe())]
        ratios = self._table("ratios")
        if ratios.num_rows:
            parts += [f"<h4>Ratios {html.escape(self.suts[0])} / each SUT</h4>", _html_table(ratios)]
        parts.append(_png(self.plot()))
        return "".join(parts)


def study(suts: Iterable[str] = ("hftos", "linux-socket", "linux-dpdk"), reps: int = 3, *,
          accel: str = "tcg", nic: str = "e1000", where: str = "guest", boot: str = "auto",
          dataset: str | Path | None = None, messages: int | None = None,
          rate: float | None = 20_000.0, max_count: int = 64, guest_cpus: int = 2, config=None,
          hiccups: float = 1.0, hiccup_threshold_ns: int = 1000, n_boot: int = 2000,
          out: str | Path | None = None, progress: bool | Callable[[str, float], None] = True,
          backend: str = "polars", pace: str | None = None, speed: float = 1.0,
          burst: int | None = None, every_s: float | None = None,
          replay: str | Path | None = None) -> Study:
    """Every SUT on the same dataset, NIC, accel and rate, reps interleaved with the order
    rotated (hftlab.experiment.study.study) into `out` (default runs/study-<id>). The first SUT
    is the reference of the ratios. pace, speed, burst, every_s, replay: as hftlab.run.
    Raises when a run fails."""
    from hftlab.experiment.spec import DEFAULT_DATASET
    from hftlab.experiment.study import StudySpec, study as run_study

    _check_backend(backend)
    spec = StudySpec(suts=tuple(suts), reps=reps, accel=accel, nic=nic, where=where, boot=boot,
                     dataset=Path(dataset) if dataset is not None else DEFAULT_DATASET,
                     messages=messages, rate=rate or None, max_count=max_count, guest_cpus=guest_cpus,
                     config=_config(config), hiccups_s=hiccups, hiccup_threshold_ns=hiccup_threshold_ns,
                     n_boot=n_boot, pace=pace, speed=speed, burst=burst, every_s=every_s,
                     replay=Path(replay) if replay is not None else None)
    out = Path(out) if out is not None else ROOT / "runs" / (
        "study-" + time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3))
    cb, bar = prog.resolve(progress, f"hftlab study {', '.join(spec.suts)} x{reps}")
    ok = False
    try:
        res = run_study(spec, out, progress=cb)
        ok = True
    finally:
        if bar is not None:
            bar.close(ok)
    runs = {sut: [load(d, backend=backend) for d in dirs] for sut, dirs in res.runs.items()}
    return Study(out, runs, backend=backend)


# ---------------------------------------------------------------------- Comparison
class Comparison:
    """A against B on one figure: per percentile the delta B - A with its bootstrap CI and
    a verdict, plus Mann-Whitney U and Kolmogorov-Smirnov (hftlab.analysis.compare)."""

    def __init__(self, a: Run, b: Run, figure: str, unit: str, result, *, backend: str = "polars") -> None:
        self.a, self.b = a, b
        self.figure, self.unit = figure, unit
        self.result = result  # hftlab.analysis.compare.Comparison
        self.backend = _check_backend(backend)

    @property
    def names(self) -> tuple[str, str]:
        return self.result.name_a, self.result.name_b

    @property
    def table(self):
        """One row per percentile: a, b, delta (B - A), ci_low, ci_high, n, beyond, outcome, verdict."""
        return _frame(self.result.table, self.backend)

    @property
    def verdicts(self) -> list[str]:
        return self.result.verdicts

    @property
    def tests(self) -> dict:
        return dict(self.result.tests)

    @property
    def verdict(self) -> str:
        """Every percentile's verdict and the distribution tests, one per line."""
        return str(self.result)

    def plot(self):
        """The two CCDFs overlaid."""
        fig, (ax,) = _figure(1, 6.0, 3.4)
        for run_, name, colour in ((self.a, self.names[0], _SUT_COLOURS[0]),
                                   (self.b, self.names[1], _SUT_COLOURS[1])):
            col = {f: c for f, c, _ in run_.figures()}[self.figure]
            _ccdf(ax, run_.values(col).astype(float), name, colour, self.unit)
        ax.set_title(f"{self.figure} CCDF", fontsize=10)
        if ax.lines:
            ax.legend(fontsize=8)
        fig.tight_layout()
        return fig

    def __repr__(self) -> str:
        return f"<hftlab.Comparison {self.names[0]} vs {self.names[1]} on {self.figure} ({self.unit})>\n" + \
            self.verdict

    def _repr_html_(self) -> str:
        t = self.result
        tests = ""
        if t.tests:
            tests = (f"<div>Mann-Whitney U p = {t.tests['mannwhitney_p']:.3g}, P({html.escape(t.name_b)} faster) = "
                     f"{t.tests['prob_b_faster']:.3f}; Kolmogorov-Smirnov D = {t.tests['ks_d']:.3f}, "
                     f"p = {t.tests['ks_p']:.3g}</div>")
        return "".join([_CSS, f"<div><b>hftlab compare</b> A = {html.escape(t.name_a)}, B = "
                              f"{html.escape(t.name_b)}, {html.escape(self.figure)} in {html.escape(self.unit)}; "
                              "delta = B - A</div>",
                        _html_table(t.table, ["percentile", "a", "b", "delta", "ci_low", "ci_high",
                                              "beyond_a", "beyond_b", "outcome", "verdict"]),
                        tests, _png(self.plot())])


def _as_run(x, backend: str) -> Run:
    if isinstance(x, Run):
        return x
    if isinstance(x, (str, Path)):
        return load(x, backend=backend)
    raise ConfigError(f"compare takes Runs or run directories, not {type(x).__name__}")


def compare(a, b, column: str = "wire_ns", *, names: tuple[str, str] | None = None,
            n_boot: int = 2000, conf: float = 0.95, min_beyond: int = 10, seed: int = 0,
            backend: str = "polars") -> Comparison:
    """Compare runs (or run directories) A and B on a figure: "wire_ns" or
    "internal" (internal_ns, or instructions under tcg-icount; both runs must
    share the unit). Deltas are B - A: negative means B is faster."""
    from hftlab.analysis.compare import compare as compare_samples

    _check_backend(backend)
    ra, rb = _as_run(a, backend), _as_run(b, backend)
    figs_a = {f: (c, u) for f, c, u in ra.figures()}
    figs_b = {f: (c, u) for f, c, u in rb.figures()}
    alias = {"internal_ns": "internal", "internal_cycles": "internal"}
    fig = alias.get(column, column)
    if fig not in figs_a:
        raise ConfigError(f"column {column!r}: one of {', '.join(figs_a)}")
    (col_a, unit_a), (col_b, unit_b) = figs_a[fig], figs_b[fig]
    if unit_a != unit_b:
        raise ConfigError(f"{fig}: {ra.run_id} is in {unit_a} ({ra.accel}), {rb.run_id} in {unit_b} "
                          f"({rb.accel}): not comparable")
    if names is None:
        names = (f"{ra.sut} {ra.run_id}", f"{rb.sut} {rb.run_id}")
        if names[0] == names[1]:
            names = (names[0] + " (A)", names[1] + " (B)")
    res = compare_samples(ra.values(col_a), rb.values(col_b), names=names, n_boot=n_boot, conf=conf,
                          min_beyond=min_beyond, seed=seed, unit=unit_a)
    return Comparison(ra, rb, fig, unit_a, res, backend=backend)
