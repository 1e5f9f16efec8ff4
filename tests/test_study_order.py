"""hftlab study rotates the order of the SUTs across repetitions (issue 10,
item 4): repetition k starts at SUT k mod n. No QEMU: the schedule is a pure
function, and study() is driven with its runs and report replaced by
stand-ins to check that it follows the schedule and records the order it
used (order.parquet, the report section, format_table)."""
from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hftlab.experiment import study as study_mod
from hftlab.experiment.study import QUANTILES, StudySpec, format_table, run_order, study

SUTS = ("hftos", "linux-socket", "linux-dpdk")


def test_rep_k_starts_at_sut_k_mod_n():
    sched = run_order(SUTS, 7)
    assert len(sched) == 7
    for k, order in enumerate(sched):
        assert order[0] == SUTS[k % 3]
        assert sorted(order) == sorted(SUTS), "each repetition runs every SUT once"
        # the cyclic order of the spec is kept: each SUT is followed by its successor
        for a, b in zip(order, order[1:]):
            assert SUTS.index(b) == (SUTS.index(a) + 1) % 3


def test_three_suts_three_reps_is_the_expected_latin_square():
    assert run_order(SUTS, 3) == [
        ("hftos", "linux-socket", "linux-dpdk"),
        ("linux-socket", "linux-dpdk", "hftos"),
        ("linux-dpdk", "hftos", "linux-socket"),
    ]


@pytest.mark.parametrize("n, reps", [(2, 4), (3, 6), (4, 4), (4, 9)])
def test_every_sut_takes_every_position_equally_over_full_cycles(n, reps):
    suts = tuple(f"s{i}" for i in range(n))
    sched = run_order(suts, reps)
    full = reps - reps % n
    counts = Counter((pos, sut) for order in sched[:full] for pos, sut in enumerate(order))
    assert set(counts) == set(itertools.product(range(n), suts))
    assert set(counts.values()) == {full // n}
    # any window of n consecutive repetitions has each SUT first exactly once
    for start in range(reps - n + 1):
        assert sorted(o[0] for o in sched[start:start + n]) == sorted(suts)


def test_edge_cases():
    assert run_order(SUTS, 0) == []
    assert run_order(("hftos",), 3) == [("hftos",)] * 3
    assert run_order(("a", "b"), 3) == [("a", "b"), ("b", "a"), ("a", "b")]
    with pytest.raises(ValueError):
        run_order(SUTS, -1)


def test_study_runs_in_the_rotated_order_and_records_it(tmp_path, monkeypatch):
    calls: list[tuple[str, str]] = []

    def fake_run(spec):
        calls.append((spec.sut, Path(spec.out).name))
        Path(spec.out).mkdir(parents=True)

    class FakeReport:
        html = tmp_path / "report.html"

    seen_sections: list[tuple[str, str]] = []

    def fake_report(dirs, out, n_boot, sections, appendix):
        seen_sections.extend(sections)
        return FakeReport()

    def fake_figures(runs, cols, accel):
        return pa.table({"sut": pa.array([], pa.string()), "column": pa.array([], pa.string()),
                         "count": pa.array([], pa.int64()),
                         **{q: pa.array([], pa.float64()) for q in QUANTILES}})

    empty = pa.table({"sut": pa.array([], pa.string()), "rep": pa.array([], pa.int32())})
    monkeypatch.setattr(study_mod, "run", fake_run)
    monkeypatch.setattr(study_mod, "_figures", fake_figures)
    monkeypatch.setattr(study_mod, "_hiccup_tables", lambda runs: (empty, empty))
    monkeypatch.setattr(study_mod, "study_report", fake_report)

    res = study(StudySpec(suts=SUTS, reps=4), tmp_path / "s")

    want = run_order(SUTS, 4)
    assert calls == [(sut, f"{sut}-r{rep}") for rep, order in enumerate(want) for sut in order]
    # the runs mapping keeps the spec's order (the first SUT is the reference), rep order inside
    assert list(res.runs) == list(SUTS)
    for sut, dirs in res.runs.items():
        assert [d.name for d in dirs] == [f"{sut}-r{k}" for k in range(4)]

    on_disk = pq.read_table(tmp_path / "s" / "order.parquet")
    assert on_disk.column_names == ["rep", "position", "sut", "run", "started", "ended"]
    rows = on_disk.to_pylist()
    assert [(r["rep"], r["position"], r["sut"]) for r in rows] == [
        (rep, pos, sut) for rep, order in enumerate(want) for pos, sut in enumerate(order)]
    assert all(r["started"] <= r["ended"] for r in rows)
    assert all(a["ended"] <= b["started"] for a, b in zip(rows, rows[1:])), "rows in run order"

    title, body = next(s for s in seen_sections if s[0].startswith("Run order"))
    assert "linux-socket → linux-dpdk → hftos" in body

    text = format_table(res)
    for rep, order in enumerate(want):
        assert f"rep {rep}: {', '.join(order)}" in text
