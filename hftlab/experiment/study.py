"""hftlab.experiment.study: HFT-OS against the Linux baselines, like for like (issue 6).

`study(spec, out)` runs every SUT of ``spec.suts`` in the guest on the
same dataset, NIC, accel and rate, interleaved over ``spec.reps``
repetitions, so that a slow drift of the host hits every SUT alike. The
order rotates (`run_order`): repetition k starts at SUT k mod n and keeps
the cyclic order (three SUTs a, b, c: rep 0 a b c, rep 1 b c a, rep 2 c a b),
so that no SUT always runs first, on a cold host, or last, after the
others warmed it. The first SUT of ``spec.suts`` stays the reference of the
ratios and A/B verdicts. Each run has its own directory ``OUT/<sut>-r<rep>``,
and each runs the poll-loop gap recorder first (``hiccups_s``). Then it
writes, into OUT:

* the study report (hftlab.analysis.report.study_report, report.html) of all
  runs, organised by SUT: percentiles per SUT with the reps pooled and the
  spread over reps, the A/B verdicts of the reference against each baseline
  on the pooled samples (wire_ns and internal_ns), plots coloured by SUT;
  the study adds the ratio table, the hiccup summary and the run order, and
  to the appendix (beside the run ids) the hiccup histograms;
* figures.parquet (p50, p99, p99.9, max of wire_ns and internal_ns per SUT,
  repetitions pooled, with their unit, the reps and the min..max of the
  per-rep p50; under tcg-icount also internal_cycles; internal figures are
  then instruction counts), ratios.parquet (HFT-OS / baseline for each),
  hiccups.parquet (each run's histogram) and hiccup_summary.parquet;
* order.parquet: the order the runs actually ran in (rep, position, sut,
  run directory, start and end time), also a section of report.html and
  lines of `format_table`.

`format_table(result)` is the text table `hftlab study` prints.
"""
from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa

from hftlab.model import core
from hftlab.analysis import hiccups
from hftlab.util.io import write_parquet
from hftlab.errors import ConfigError
from hftlab.analysis.latency import load_run, percentiles
from hftlab.analysis.report import StudyReport, study_report
from hftlab.experiment.run import DEFAULT_DATASET, SUTS, RunSpec, run

__all__ = ["StudySpec", "StudyResult", "study", "format_table", "run_order", "QUANTILES", "COLUMNS"]

QUANTILES = ("p50", "p99", "p99.9", "max")
COLUMNS = ("wire_ns", "internal_ns")
#: Under TCG-icount (-icount shift=0) the guest TSC counts instructions: the
#: internal span in cycles is then the exact software cost, free of noise.
ICOUNT_COLUMN = "internal_cycles"


def run_order(suts: Sequence[str], reps: int) -> list[tuple[str, ...]]:
    """The SUT order of each repetition: repetition k starts at SUT k mod n
    (n = len(suts)) and goes on in the cyclic order of `suts`. Over any n
    consecutive repetitions every SUT runs once in every position."""
    if reps < 0:
        raise ValueError(f"reps must be >= 0, not {reps}")
    n = len(suts)
    if n == 0:
        return [() for _ in range(reps)]
    return [tuple(suts[(k + i) % n] for i in range(n)) for k in range(reps)]


def columns(accel: str) -> tuple[str, ...]:
    """The latency columns a study of `accel` reports."""
    return COLUMNS + ((ICOUNT_COLUMN,) if accel == "tcg-icount" else ())


@dataclass
class StudySpec:
    """What every run of the study shares, and how many of each."""

    suts: tuple[str, ...] = ("hftos", "linux-socket", "linux-dpdk")  #: the first is the reference
    reps: int = 3
    accel: str = "tcg"
    nic: str = "e1000"
    boot: str = "auto"  #: HFT-OS's boot path (RunSpec.boot); baselines' runs keep auto
    where: str = "guest"
    dataset: Path = DEFAULT_DATASET
    messages: int | None = None
    rate: float | None = 20_000.0
    max_count: int = 64  #: ITCH messages per MoldUDP64 datagram at most
    guest_cpus: int = 2  #: Linux guests (RunSpec.guest_cpus)
    config: core.EngineConfig = field(default_factory=core.EngineConfig.default)
    hiccups_s: float = 1.0  #: gap recorder per run (0: off)
    hiccup_threshold_ns: int = 1000
    n_boot: int = 2000
    pace: str | None = None  #: the replayer's pacing (RunSpec.pace, speed, burst, every_s, replay)
    speed: float = 1.0
    burst: int | None = None
    every_s: float | None = None
    replay: Path | None = None

    def validate(self) -> None:
        if not self.suts or len(set(self.suts)) != len(self.suts):
            raise ConfigError("suts: one or more distinct systems under test")
        unknown = [s for s in self.suts if s not in SUTS]
        if unknown:
            raise ConfigError(f"suts {unknown}: available: {', '.join(SUTS)}")
        if self.reps < 1:
            raise ConfigError("reps must be >= 1")
        self.run_spec(self.suts[0], Path(".")).pacing().validate()  # a bad pace: before any run
        if self.replay is not None and not Path(self.replay).is_file():
            raise ConfigError(f"replay capture {self.replay} does not exist")

    def run_spec(self, sut: str, out: Path) -> RunSpec:
        return RunSpec(sut=sut, accel=self.accel, nic=self.nic, dataset=Path(self.dataset),
                       boot=self.boot if sut == "hftos" else "auto",
                       messages=self.messages, rate=self.rate, max_count=self.max_count,
                       guest_cpus=self.guest_cpus,
                       config=self.config, out=out,
                       where=self.where, hiccups_s=self.hiccups_s,
                       hiccup_threshold_ns=self.hiccup_threshold_ns, pace=self.pace,
                       speed=self.speed, burst=self.burst, every_s=self.every_s,
                       replay=Path(self.replay) if self.replay else None)


@dataclass
class StudyResult:
    out: Path
    runs: dict[str, list[Path]]  #: sut -> run directories, rep order
    figures: pa.Table  #: sut, column, count, p50, p99, p99.9, max (reps pooled)
    ratios: pa.Table  #: baseline, column, quantile, reference, value, ratio
    hiccups: pa.Table  #: sut, rep, bucket, lower_ns, upper_ns, count, time_ns
    hiccup_summary: pa.Table  #: sut, rep, gaps, gaps_per_s, lost_fraction, max_ns, ...
    report: StudyReport
    order: pa.Table  #: rep, position, sut, run, started, ended: the order the runs ran in


def _pooled(dirs: list[Path], column: str) -> np.ndarray:
    parts = [load_run(d).column(column) for d in dirs]
    return np.concatenate(parts) if parts else np.array([])


def unit(column: str, accel: str) -> str:
    """The unit of a latency column of a study under `accel`."""
    if column.startswith("internal") and accel == "tcg-icount":
        return "instructions"
    return "cycles" if column == ICOUNT_COLUMN else "ns"


def _figures(runs: dict[str, list[Path]], cols: tuple[str, ...] = COLUMNS, accel: str = "tcg") -> pa.Table:
    rows: dict[str, list] = {k: [] for k in ("sut", "column", "count", *QUANTILES, "unit", "reps",
                                             "p50_rep_min", "p50_rep_max")}
    for sut, dirs in runs.items():
        for col in cols:
            per = [percentiles(load_run(d).column(col))["p50"] for d in dirs]
            per = [float(v) for v in per if v is not None]
            p = percentiles(_pooled(dirs, col))
            rows["sut"].append(sut)
            rows["column"].append(col)
            rows["count"].append(p["count"])
            for q in QUANTILES:
                rows[q].append(None if p.get(q) is None else float(p[q]))
            rows["unit"].append(unit(col, accel))
            rows["reps"].append(len(dirs))
            rows["p50_rep_min"].append(min(per) if per else None)
            rows["p50_rep_max"].append(max(per) if per else None)
    return pa.table(rows)


def _ratios(fig: pa.Table, ref: str) -> pa.Table:
    by = {(r["sut"], r["column"]): r for r in fig.to_pylist()}
    rows: dict[str, list] = {k: [] for k in ("baseline", "column", "quantile", "reference", "value",
                                             "ratio")}
    for (sut, col), r in by.items():
        if sut == ref:
            continue
        for q in QUANTILES:
            a, b = by[(ref, col)][q], r[q]
            for k, v in (("baseline", sut), ("column", col), ("quantile", q), ("reference", a),
                         ("value", b), ("ratio", a / b if a is not None and b else None)):
                rows[k].append(v)
    return pa.table(rows)


def _hiccup_tables(runs: dict[str, list[Path]]) -> tuple[pa.Table, pa.Table]:
    hist, summ = [], []
    for sut, dirs in runs.items():
        for rep, d in enumerate(dirs):
            c = hiccups.from_run(d)
            if not hiccups.has_hiccups(c):
                continue
            t = hiccups.table(c)
            hist.append(t.add_column(0, "rep", pa.array([rep] * t.num_rows, pa.int32()))
                         .add_column(0, "sut", pa.array([sut] * t.num_rows)))
            summ.append({"sut": sut, "rep": rep, **hiccups.summary(c)})
    empty = pa.table({"sut": pa.array([], pa.string()), "rep": pa.array([], pa.int32())})
    return (pa.concat_tables(hist) if hist else empty,
            pa.Table.from_pylist(summ) if summ else empty)


def _html_table(t: pa.Table) -> str:
    def cell(v) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.0f}"
        return html.escape(f"{v:,}" if isinstance(v, int) else str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.column_names)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r.values()) + "</tr>"
                   for r in t.to_pylist())
    return f"<table><tr>{head}</tr>{body}</table>"


def _ratio_html(ratios: pa.Table, accel: str) -> str:
    """The ratios as one row per baseline and column, one cell per quantile."""
    by: dict[tuple[str, str], dict] = {}
    for r in ratios.to_pylist():
        by.setdefault((r["baseline"], r["column"]), {})[r["quantile"]] = r
    head = ("<tr><th>baseline</th><th>figure</th><th>unit</th>"
            + "".join(f"<th>{q}</th>" for q in QUANTILES) + "</tr>")
    rows = []
    for (base, col), qs in by.items():
        cells = []
        for q in QUANTILES:
            r = qs.get(q)
            if r is None or r["ratio"] is None:
                cells.append("<td>-</td>")
            else:
                cells.append(f'<td title="{r["reference"]:,.0f} / {r["value"]:,.0f}">{r["ratio"]:.3f}</td>')
        rows.append(f"<tr><td>{html.escape(base)}</td><td>{col}</td><td>{unit(col, accel)}</td>"
                    + "".join(cells) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _order_table(done: list[dict]) -> pa.Table:
    schema = pa.schema([("rep", pa.int32()), ("position", pa.int32()), ("sut", pa.string()),
                        ("run", pa.string()), ("started", pa.timestamp("us", tz="UTC")),
                        ("ended", pa.timestamp("us", tz="UTC"))])
    return pa.Table.from_pylist(done, schema=schema)


def order_by_rep(order: pa.Table) -> dict[int, list[str]]:
    """rep -> the SUTs in the order they ran, from an order table."""
    by: dict[int, list[tuple[int, str]]] = {}
    for r in order.to_pylist():
        by.setdefault(r["rep"], []).append((r["position"], r["sut"]))
    return {rep: [s for _, s in sorted(v)] for rep, v in sorted(by.items())}


def _order_html(order: pa.Table) -> str:
    rows = "".join(f"<tr><td>{rep}</td><td>{html.escape(' → '.join(suts))}</td></tr>"
                   for rep, suts in order_by_rep(order).items())
    return f"<table><tr><th>rep</th><th>order</th></tr>{rows}</table>"


def study(spec: StudySpec, out: str | Path, *,
          progress: Callable[[str, float], None] | None = None) -> StudyResult:
    """Run the study into directory `out` and write its report (see the module)."""
    spec.validate()
    say = progress or (lambda stage, frac: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[Path]] = {s: [] for s in spec.suts}
    total = spec.reps * len(spec.suts)
    done: list[dict] = []  # appended as each run ends: the order used, not the one planned
    for rep, order in enumerate(run_order(spec.suts, spec.reps)):
        for i, sut in enumerate(order):
            say(f"{sut} r{rep}", (rep * len(spec.suts) + i) / total)
            d = out / f"{sut}-r{rep}"
            started = dt.datetime.now(dt.timezone.utc)
            run(spec.run_spec(sut, d))
            done.append({"rep": rep, "position": i, "sut": sut, "run": d.name,
                         "started": started, "ended": dt.datetime.now(dt.timezone.utc)})
            runs[sut].append(d)
    say("report", 1.0)
    order_t = _order_table(done)
    ref = spec.suts[0]
    cols = columns(spec.accel)
    fig = _figures(runs, cols, spec.accel)
    ratios = _ratios(fig, ref)
    hist, summ = _hiccup_tables(runs)
    sections = [(f"Ratios {ref} / baseline (repetitions pooled; below 1: {ref} is faster)",
                 _ratio_html(ratios, spec.accel)),
                ("Hiccups: the poll loop's gaps before the feed (per SUT and rep)", _html_table(summ)),
                ("Run order (repetition k starts at SUT k mod n)", _order_html(order_t))]
    appendix = [("Hiccup histograms (log2 buckets, per SUT and rep)", _html_table(hist))]
    rep_ = study_report([d for dirs in runs.values() for d in dirs], out, n_boot=spec.n_boot,
                        sections=sections, appendix=appendix)
    for name, t in (("figures", fig), ("ratios", ratios), ("hiccups", hist),
                    ("hiccup_summary", summ), ("order", order_t)):
        write_parquet(t, out / f"{name}.parquet", {})
    return StudyResult(out, runs, fig, ratios, hist, summ, rep_, order_t)


def _num(v) -> str:
    return "-" if v is None else f"{v:,.0f}"


def format_table(res: StudyResult) -> str:
    """Per SUT the pooled p50/p99/p99.9/max of wire_ns and internal_ns, the
    ratios reference / baseline under them, and each SUT's hiccups."""
    ref = next(iter(res.runs))
    w = max(12, *(len(s) + 8 for s in res.runs))
    head = (f"{'figure':<15} {'sut':<{w}} {'count':>7} " + " ".join(f"{q:>11}" for q in QUANTILES)
            + "  unit")
    lines = [head, "-" * len(head)]
    ratios = res.ratios.to_pylist()
    cols = list(dict.fromkeys(res.figures.column("column").to_pylist()))
    for col in cols:
        for r in res.figures.to_pylist():
            if r["column"] == col:
                lines.append(f"{col:<15} {r['sut']:<{w}} {r['count']:>7} "
                             + " ".join(f"{_num(r[q]):>11}" for q in QUANTILES)
                             + f"  {r.get('unit') or 'ns'}")
        for base in list(res.runs)[1:]:
            by_q = {r["quantile"]: r["ratio"] for r in ratios if r["baseline"] == base and r["column"] == col}
            cells = " ".join(f"{'-' if by_q.get(q) is None else f'{by_q[q]:.3f}':>11}" for q in QUANTILES)
            lines.append(f"{col:<15} {(ref + '/' + base)[:w]:<{w}} {'ratio':>7} {cells}")
    if res.hiccup_summary.num_rows:
        lines += ["", f"{'hiccups':<15} {'sut':<{w}} {'rep':>4} {'iterations':>11} {'ns/iter':>8} "
                  f"{'gaps':>8} {'lost %':>7} {'max ns':>11}"]
        for h in res.hiccup_summary.to_pylist():
            lines.append(f"{'':<15} {h['sut']:<{w}} {h['rep']:>4} {h['iterations']:>11,} "
                         f"{h['ns_per_iteration']:>8.1f} {h['gaps']:>8,} "
                         f"{100 * h['lost_fraction']:>7.2f} {h['max_ns']:>11,}")
    if res.order.num_rows:
        lines += ["", "run order (repetition k starts at SUT k mod n):"]
        for rep, suts in order_by_rep(res.order).items():
            lines.append(f"  rep {rep}: {', '.join(suts)}")
    return "\n".join(lines)
