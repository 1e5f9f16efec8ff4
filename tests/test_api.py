"""The notebook API (hftlab.run, load, study, compare; Run, Comparison) and
its progress bar, on real runs (issue 12, item 2).

One HFT-OS run under TCG and one under TCG-icount (made by the CLI, which
must be the same code path and name the unit) serve the whole module; a
third run faults on purpose to show that errors raise with their cause.
"""
from __future__ import annotations

import html
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pyarrow.parquet as pq
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

import hftlab
from hftlab.errors import ConfigError, DataError, RunError
from hftlab.experiment.progress import Progress
from hftlab.model import core
from hftlab.experiment.spec import DEFAULT_DATASET

ROOT = Path(__file__).resolve().parents[1]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="HFT-OS on a tap in a netns needs root")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def tcg(tmp_path_factory):
    """One HFT-OS run under TCG, its progress drawn as lines into a buffer."""
    if os.geteuid() != 0:
        pytest.skip("HFT-OS on a tap in a netns needs root")
    buf = io.StringIO()
    bar = Progress("run", mode="lines", stream=buf)
    r = hftlab.run("hftos", accel="tcg", out=tmp_path_factory.mktemp("api") / "tcg", progress=bar)
    bar.close()
    return r, buf.getvalue()


@pytest.fixture(scope="module")
def icount(tmp_path_factory):
    """One HFT-OS run under TCG-icount through the CLI: (its directory, stdout)."""
    if os.geteuid() != 0:
        pytest.skip("HFT-OS on a tap in a netns needs root")
    out = tmp_path_factory.mktemp("api") / "icount"
    done = subprocess.run([sys.executable, "-m", "hftlab.cli", "run", "--accel", "tcg-icount",
                           "--max-count", "1", "--out", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return out, done.stdout


def test_import_hftlab_is_cheap():
    code = ("import sys, hftlab; heavy = [m for m in ('numba', 'pandas', 'polars', 'matplotlib', "
            "'hftlab.experiment.api', 'hftlab._core') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
    assert hftlab.run.__module__ == "hftlab.experiment.api"


@needs_root
def test_run_tables_match_the_run_directory(tcg):
    import polars as pl

    r, _ = tcg
    golden = core.golden(DEFAULT_DATASET, core.EngineConfig.default())
    n = golden.orders.num_rows
    assert r.status == "ok" and r.info["orders"] == {"sut": n, "golden": n, "equal": True} and n > 0
    assert isinstance(r.latency, pl.DataFrame) and isinstance(r.orders, pl.DataFrame)
    assert r.latency.height == n and r.latency["wire_ns"].null_count() == 0
    assert r.orders.drop("rx_ns").equals(pl.from_arrow(golden.orders))
    assert r.latency.equals(pl.from_arrow(pq.read_table(r.path / "latency.parquet")))
    c = r.counters
    assert c.columns == ["counter", "value"] and c.height == len(r.info["counters"])
    assert r.counter("itch_messages") == dict(zip(c["counter"], c["value"]))["itch_messages"] > 0
    with pytest.raises(ConfigError, match="no counter 'nope'"):
        r.counter("nope")


@needs_root
def test_describe_names_the_unit_and_withholds_unbacked_tails(tcg):
    r, _ = tcg
    d = r.describe()
    assert d["figure"].to_list() == ["wire_ns", "internal"] and d["unit"].to_list() == ["ns", "ns"]
    wire = r.latency["wire_ns"].sort().to_list()
    row = d.row(0, named=True)
    n = len(wire)
    assert row["count"] == n and row["min"] == wire[0] and row["max"] == wire[-1]
    assert row["p50"] == wire[(n + 1) // 2 - 1]  # nearest rank
    assert row["p99.99"] is None  # 30 samples: nothing lies beyond p99.99
    assert row["mean"] == pytest.approx(sum(wire) / n)
    inner = d.row(1, named=True)
    assert inner["max"] == r.latency["internal_ns"].max()


@needs_root
def test_icount_internal_figures_are_instructions(icount):
    out, stdout = icount
    lines = {ln.split()[0]: ln for ln in stdout.splitlines() if " count=" in ln}
    assert lines["wire_ns"].endswith("(ns)")
    assert lines["internal"].endswith("(instructions)"), stdout
    assert "internal_ns" not in lines, "under tcg-icount no internal line may claim ns"
    r = hftlab.load(out)
    assert r.accel == "tcg-icount" and r.internal_unit == "instructions"
    d = r.describe()
    assert d.filter(d["figure"] == "internal")["unit"].item() == "instructions"
    cycles = r.latency["internal_cycles"]
    assert d.filter(d["figure"] == "internal")["max"].item() == cycles.max()
    m = re.search(r"^internal .* max=([\d,]+) \(instructions\)", stdout, re.M)
    assert int(m.group(1).replace(",", "")) == cycles.max()
    assert "instructions" in r._repr_html_()


@needs_root
def test_load_reopens_the_same_run(tcg):
    r, _ = tcg
    again = hftlab.load(r.path)
    assert again.info == json.loads((r.path / "run.json").read_text()) == r.info
    assert again.latency.equals(r.latency) and again.orders.equals(r.orders)
    assert again.describe().equals(r.describe())


def test_load_of_a_missing_run_raises(tmp_path):
    with pytest.raises(DataError, match="no run.json"):
        hftlab.load(tmp_path / "nothing-here")


@needs_root
def test_a_failed_run_raises_with_its_cause_and_load_says_it(tmp_path):
    out = tmp_path / "fault"
    with pytest.raises(RunError) as exc:
        hftlab.run(fault=True, accel="tcg", out=out, progress=False)
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "failed" and str(exc.value) in info["error"]
    with pytest.raises(RunError, match="failed: RunError") as again:
        hftlab.load(out)
    assert str(exc.value) in str(again.value)
    r = hftlab.load(out, allow_failed=True)
    assert r.status == "failed" and html.escape(info["error"]) in r._repr_html_()
    with pytest.raises(DataError, match="latency.parquet"):
        r.latency


def test_bad_arguments_raise_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="sut 'nope'"):
        hftlab.run("nope", out=tmp_path / "x", progress=False)
    with pytest.raises(ConfigError, match="unknown argument"):
        hftlab.run(out=tmp_path / "x", progress=False, no_such_field=1)
    with pytest.raises(ConfigError, match="backend"):
        hftlab.run(out=tmp_path / "x", progress=False, backend="excel")


@needs_root
def test_compare_two_runs(tcg, icount):
    r, _ = tcg
    ic = hftlab.load(icount[0])
    c = hftlab.compare(r, icount[0])  # wire_ns: ns in both
    t = c.table
    assert t["percentile"].to_list() == ["p50", "p90", "p99", "p99.9", "p99.99"]
    assert t["a"][0] == r.describe()["p50"][0] and t["b"][0] == ic.describe()["p50"][0]
    assert set(t["outcome"]) <= {"a_faster", "b_faster", "no_difference", "insufficient"}
    assert c.verdict.startswith(t["verdict"][0]) and "Mann-Whitney U" in c.verdict
    h = c._repr_html_()
    assert ">verdict</th>" in h and "<img" in h
    with pytest.raises(ConfigError, match="not comparable"):
        hftlab.compare(r, ic, "internal")  # ns against instructions


@needs_root
def test_repr_html_shows_header_table_plot_counters(tcg):
    r, _ = tcg
    h = r._repr_html_()
    for text in ("<b>sut</b> hftos", "<b>accel</b> tcg", "<b>status</b> ok", "equal True",
                 ">p99.99</th>", ">unit</th>", "<td>wire_ns</td>", "<td>internal</td>",
                 "data:image/png;base64,", "itch_messages"):
        assert text in h, text
    fig = r.plot()
    assert len(fig.axes) == 3 and fig.axes[0].get_yscale() == "log"


@needs_root
def test_report_and_pandas_backend(tcg, tmp_path):
    import pandas as pd

    r, _ = tcg
    page = r.report(tmp_path / "rep")
    text = page.read_text()  # the report's sections are B's (issue 12 item 4): its run and a figure
    assert page == tmp_path / "rep" / "report.html" and r.run_id in text and "<img" in text
    p = hftlab.load(r.path, backend="pandas")
    assert isinstance(p.latency, pd.DataFrame) and isinstance(p.describe(), pd.DataFrame)
    assert p.describe()["p50"].tolist() == r.describe()["p50"].to_list()
    assert isinstance(p.counters, pd.DataFrame)


@needs_root
def test_progress_lines_follow_the_run_stages(tcg):
    _, text = tcg
    stages = [ln.split(":")[1].split()[0] for ln in text.splitlines()]
    assert stages[:3] == ["build", "boot", "replay"] and stages[-2:] == ["report", "done"], text
    assert text.count("\n") == len(stages) and "\r" not in text


def test_progress_in_a_terminal_rewrites_one_line():
    tty = Tty()
    with Progress("demo", stream=tty, min_interval=0.0) as bar:
        assert bar.mode == "tty"
        for i in range(50):
            bar("replay", i / 50)
    out = tty.getvalue()
    assert out.count("\r") == 51 and out.count("\n") == 1 and out.endswith("\n")
    assert "done" in out.split("\r")[-1] and "100%" in out.split("\r")[-1]
    piped = io.StringIO()
    with pytest.raises(KeyError):
        with Progress("demo", stream=piped) as bar:
            assert bar.mode == "lines"
            for stage in ("build", "build", "boot", "replay", "replay"):
                bar(stage, 0.5)
            raise KeyError("boom")
    lines = piped.getvalue().splitlines()
    assert [ln.split()[1] for ln in lines] == ["build", "boot", "replay", "failed"]


def test_progress_in_jupyter_updates_one_display(tmp_path):
    """In a kernel the bar is one display_data, then update_display_data
    messages for it: the cell keeps one output, no stream of frames."""
    class Recording(NotebookClient):
        seen: list = []

        def process_message(self, msg, cell, cell_index):
            self.seen.append((msg["msg_type"], (msg["content"].get("transient") or {}).get("display_id")))
            return super().process_message(msg, cell, cell_index)

    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                               "language": "python"}})
    nb.cells = [new_code_cell(
        "import time\nfrom hftlab.experiment.progress import Progress\n"
        "with Progress('demo', min_interval=0.01) as bar:\n"
        "    assert bar.mode == 'notebook', bar.mode\n"
        "    for i in range(200):\n"
        "        bar('build' if i < 100 else 'replay', i / 200)\n"
        "        time.sleep(0.002)\n")]
    client = Recording(nb, timeout=60, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outs = nb.cells[0].outputs
    assert [o.output_type for o in outs] == ["display_data"], outs
    assert "demo" in outs[0].data["text/html"] and "done" in outs[0].data["text/html"]
    ids = {d for kind, d in client.seen if kind == "display_data"}
    updates = [d for kind, d in client.seen if kind == "update_display_data"]
    assert len(ids) == 1 and len(updates) >= 3 and set(updates) == ids
    assert not [k for k, _ in client.seen if k == "stream"]
    assert len(updates) < 200, "updates are throttled"
