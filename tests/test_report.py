"""hftlab report: organised by the runs' own terms (issue 12, item 4), files
exist, PNGs decode, Parquet exports scan as one hive-partitioned dataset
(issue 5). Run directories are synthesised here with run.json in the shape
`hftlab run` writes, so the test needs neither root nor QEMU; the same
structure is checked on a real study in tests/test_study.py."""
from __future__ import annotations

import json
import re

import numpy as np
import polars
import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from hftlab.cli import main
from hftlab.analysis.report import run_report, study_report


def _fake_run(d, run_id, *, sut="hftos", rate=20_000.0, accel="tcg", shift=0, n=2_000, seed=0, negative=0):
    """A run directory: `negative` orders get an internal span longer than their wire span."""
    rng = np.random.default_rng(seed)
    t_in = np.cumsum(rng.integers(10_000, 50_000, n)).astype(np.int64) + 1_700_000_000_000_000_000
    internal = (2_000 + rng.lognormal(7, 0.5, n)).astype(np.int64)
    wire = internal + 40_000 + shift + rng.integers(0, 5_000, n)
    internal[:negative] = wire[:negative] + 1_000 + np.arange(negative)
    d.mkdir(parents=True)
    pq.write_table(pa.table({"token": [f"01{i:012x}" for i in range(n)], "trigger_seq": np.arange(n, dtype=np.uint64),
                             "t_wire_in": t_in, "t_wire_out": t_in + wire, "wire_ns": wire,
                             "tsc_rx": np.zeros(n, np.uint64), "tsc_tx": np.zeros(n, np.uint64),
                             "internal_ns": internal, "internal_cycles": internal * 2}), d / "latency.parquet")
    (d / "run.json").write_text(json.dumps({
        "run_id": run_id, "status": "ok",
        "spec": {"sut": sut, "accel": accel, "where": "guest", "nic": "e1000", "dataset": "/data/feed.itch",
                 "messages": None, "rate_msgs_per_s": rate, "max_count": 64, "config": {"instance": 1}},
        "orders": {"sut": n, "golden": n, "equal": True},
        "environment": {"cpu": "test", "git": "abc1234"}}))
    return d


def _section(page: str, start: str) -> str:
    """The HTML from the h2 whose text starts with `start` to the next h2."""
    i = page.index(start)
    j = page.find("<h2", i)
    return page[i:j if j > 0 else len(page)]


def _study_dirs(tmp_path):
    """hftos and linux-socket, two reps each, run ids that name neither; hftos
    has 7 + 5 orders with a negative outside span."""
    runs = []
    for rep in range(2):
        runs.append(_fake_run(tmp_path / f"hftos-r{rep}", f"2026-aaa{rep}", sut="hftos", seed=rep,
                              negative=(7, 5)[rep]))
        runs.append(_fake_run(tmp_path / f"linux-socket-r{rep}", f"2026-bbb{rep}", sut="linux-socket",
                              shift=30_000, n=1_500, seed=10 + rep))
    return runs


def test_report_of_a_study_is_organised_by_sut(tmp_path):
    runs = _study_dirs(tmp_path)
    out = tmp_path / "rep"
    res = CliRunner().invoke(main, ["report", *map(str, runs), "--out", str(out), "--study", "s1", "--boot", "300"])
    assert res.exit_code == 0, res.output
    # the CLI prints one pooled line per SUT (4,000 and 3,000 orders), and verdicts SUT vs SUT
    assert re.search(r"^hftos\s+count=4000 ", res.output, re.M), res.output
    assert re.search(r"^linux-socket\s+count=3000 ", res.output, re.M), res.output
    assert "hftos is faster at p50" in res.output
    page = (out / "report.html").read_text()

    # pooled table: one row per SUT and figure, not per run; spread over the reps under each figure
    table = _section(page, "Percentiles per SUT, reps pooled")
    rows = re.findall(r"<tr><td class=l>.*?</tr>", table)
    assert len(rows) == 2 * 3, "wire_ns, internal_ns, outside_ns x hftos, linux-socket"
    assert [re.search(r"</span>([^<]+)</td>", r).group(1) for r in rows] == ["hftos", "linux-socket"] * 3
    assert all(">2</td>" in r for r in rows), "reps column"
    assert table.count("reps ") >= 6 and "2026-" not in table

    # verdicts: hftos (A) against linux-socket (B) on the pooled samples, for wire and internal
    verdicts = _section(page, "A/B: hftos against each baseline (repetitions pooled)")
    assert "hftos vs linux-socket (n = 4,000 vs 3,000" in verdicts
    assert "2026-" not in verdicts

    # run ids only in the appendix
    appendix = page.index("<h2>Appendix</h2>")
    for rid in ("2026-aaa0", "2026-aaa1", "2026-bbb0", "2026-bbb1"):
        assert rid in page[appendix:] and rid not in page[:appendix], rid

    # negative spans counted and explained, next to the table and the stage figure
    assert page.count("<b>Negative outside_ns</b>") == 2
    assert "hftos: <b>12 of 4,000</b>" in page and "linux-socket: <b>0 of 3,000</b>" in page
    assert "TX doorbell synchronously" in page and "docs/architecture.md §3" in page

    # figures: four PNGs embedded; legends in the study's words (SUT names, reps), never run ids
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(imgs) == 4
    import matplotlib.image as mpimg

    for name in ("histogram", "ccdf", "over_time", "stages"):
        img = mpimg.imread(out / f"{name}.png")  # decodes, or raises
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100

    # exports: per run, as before
    ds = pq.ParquetDataset(out / "parquet", partitioning="hive").read()
    assert ds.num_rows == 7_000
    assert set(ds.column("run").to_pylist()) == {"2026-aaa0", "2026-aaa1", "2026-bbb0", "2026-bbb1"}
    assert set(ds.column("study").to_pylist()) == {"s1"}
    assert set(ds.column("sut").to_pylist()) == {"hftos", "linux-socket"}
    assert polars.scan_parquet(out / "parquet", hive_partitioning=True).select(polars.len()).collect().item() == 7_000
    from hftlab.analysis.hdr import read_log

    assert read_log(out / "hdr" / "2026-aaa0.hlog").total().total == 2_000


def test_report_object_groups_legends_and_spread(tmp_path):
    runs = _study_dirs(tmp_path)
    rep = study_report(runs, tmp_path / "rep", n_boot=200)
    assert rep.groups == {"hftos": ["2026-aaa0", "2026-aaa1"], "linux-socket": ["2026-bbb0", "2026-bbb1"]}
    assert list(rep.stats) == ["hftos", "linux-socket"]
    assert rep.stats["hftos"]["wire_ns"].count == 4_000
    assert rep.negative == {"hftos": (12, 4_000), "linux-socket": (0, 3_000)}
    assert set(rep.comparison.column("a_name").to_pylist()) == {"hftos"}
    assert set(rep.comparison.column("b_name").to_pylist()) == {"linux-socket"}
    assert set(rep.verdicts) == {"wire_ns", "internal_ns"}
    for fig, entries in rep.legends.items():
        assert entries, fig
        assert not any("2026-" in e for e in entries), (fig, entries)
    assert {"hftos", "linux-socket"} <= {e.split(",")[0].split(" (")[0] for e in rep.legends["stages"]}
    assert "hftos rep 0 (n=2,000)" in rep.legends["ccdf"] and "hftos, 2 reps pooled (n=4,000)" in rep.legends["ccdf"]
    # the spread under the pooled p50 is the min..max of the reps' own p50
    p50 = [rep.run_stats[r]["wire_ns"].percentiles["p50"] for r in rep.groups["hftos"]]
    page = rep.html.read_text()
    assert f"reps {min(p50):,.0f}..{max(p50):,.0f}" in _section(page, "Percentiles per SUT")


def test_report_falls_back_to_per_run_when_every_run_differs(tmp_path):
    a = _fake_run(tmp_path / "a", "run-a", rate=1_000, n=3_000, seed=1)
    b = _fake_run(tmp_path / "b", "run-b", rate=5_000, shift=-3_000, n=2_000, seed=2)
    rep = study_report([a, b], tmp_path / "rep", n_boot=300)
    # both are hftos: the rate is what differs, and the groups say so
    assert rep.groups == {"hftos · 1,000 msg/s": ["run-a"], "hftos · 5,000 msg/s": ["run-b"]}
    page = rep.html.read_text()
    assert "<h2>A/B: each run against hftos · 1,000 msg/s</h2>" in page
    assert "hftos · 5,000 msg/s is faster at p50" in page
    assert "reps " not in _section(page, "Percentiles per"), "one run per group: no spread to show"
    assert "outside_ns = wire_ns - internal_ns is positive for every order" in page
    assert "<b>Negative outside_ns</b>" not in page
    appendix = page.index("<h2>Appendix</h2>")
    assert "run-a" in page[appendix:] and "run-a" not in page[:appendix]


def test_one_configuration_compares_its_reps(tmp_path):
    a = _fake_run(tmp_path / "a", "run-a", n=1_000, seed=1)
    b = _fake_run(tmp_path / "b", "run-b", n=1_000, seed=2)
    rep = study_report([a, b], tmp_path / "rep", n_boot=200)
    assert rep.groups == {"hftos": ["run-a", "run-b"]}
    assert rep.comparison.column("b_name").to_pylist()[0] == "hftos rep 1"
    assert "A/B: each rep of hftos against rep 0 (repeatability)" in rep.html.read_text()


def test_icount_internal_figures_are_instruction_counts(tmp_path):
    a = _fake_run(tmp_path / "a", "run-a", sut="hftos", accel="tcg-icount", n=500, seed=1)
    b = _fake_run(tmp_path / "b", "run-b", sut="linux-socket", accel="tcg-icount", n=500, seed=2)
    rep = study_report([a, b], tmp_path / "rep", n_boot=200)
    assert set(rep.stats["hftos"]) == {"wire_ns", "internal_ns", "internal_cycles"}, "no wire - internal"
    table = _section(rep.html.read_text(), "Percentiles per SUT")
    rows = re.findall(r"<tr><td class=l>.*?</tr>", table)
    units = [re.findall(r"<td>([a-z]+)</td>", r)[0] for r in rows]
    assert units == ["ns", "ns", "instructions", "instructions", "instructions", "instructions"]
    assert "instructions" in rep.verdicts["internal_ns"].column("verdict").to_pylist()[0]


def test_report_rejects_a_non_run(tmp_path):
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(main, ["report", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "not a complete run directory" in res.output


def test_run_report_shows_where_the_internal_span_goes(tmp_path):
    """A run's report.md splits internal into decide and doorbell, in the
    accel's unit; a run recorded before the split (no such columns) still
    reports, without them."""
    d = _fake_run(tmp_path / "a", "run-a", accel="tcg-icount", n=200)
    info = json.loads((d / "run.json").read_text())
    info["spec"] |= {"accel_reason": "requested"}
    info |= {"capture": {"tool": "dumpcap", "link": "tap"}, "phases_s": {}, "counters": {}}
    (d / "run.json").write_text(json.dumps(info))
    old = run_report(d).read_text()
    assert "internal (internal_cycles)" in old and "decide" not in old
    lat = pq.read_table(d / "latency.parquet")
    internal = lat.column("internal_cycles").to_numpy()
    door = np.where(np.arange(len(internal)) % 2, 10, 16)
    for name, v in (("decide_cycles", internal - door), ("doorbell_cycles", door),
                    ("decide_ns", internal - door), ("doorbell_ns", door)):
        lat = lat.append_column(name, pa.array(v))
    pq.write_table(lat, d / "latency.parquet")
    page = run_report(d).read_text()
    rows = {r.split(" | ")[0].lstrip("| "): r.split(" | ") for r in page.splitlines() if r.startswith("| ")}
    assert rows["decide (decide_cycles)"][1] == rows["doorbell (doorbell_cycles)"][1] == "instructions"
    assert rows["doorbell (doorbell_cycles)"][2] == "200" and rows["doorbell (doorbell_cycles)"][-1] == "16 |"
    assert "doorbell (the doorbell write, or the baseline's send call, until it returns) p50 10 instructions" \
        in page
