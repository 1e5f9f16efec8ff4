"""hftlab study: HFT-OS against linux-socket in the guest (issue 6, item 6;
issue 12, item 4).

Two repetitions on the bundled sample, each SUT with the poll-loop gap
recorder on: both SUTs log hiccup counters whose histogram sums to their gap
count, the study writes the ratio table, and its report is organised by SUT
on this real data: one pooled row per SUT and figure, verdicts SUT vs SUT,
run ids only in the appendix, negative outside_ns counted and explained when
there are any, legends in SUT names; `hftlab report` on the same runs groups
them by SUT too, and falls back to per run when every run differs. The study
needs root (tap) and QEMU (installed by `make setup`: missing is a failure);
it skips only without root, or when Debian's registry cannot be reached and
no guest kernel is cached. The validation test needs neither.
"""
from __future__ import annotations

import os
import re

import numpy as np
import pyarrow.parquet as pq
import pytest

from hftlab.lab import guest
from hftlab.analysis import hiccups
from hftlab.analysis.latency import load_run
from hftlab.analysis.report import study_report
from hftlab.errors import ConfigError, RegistryUnreachableError
from hftlab.experiment.study import QUANTILES, StudySpec, format_table, study

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="tap and netns need root")
SUTS = ("hftos", "linux-socket")


def test_study_spec_refuses_bad_suts():
    with pytest.raises(ConfigError):
        StudySpec(suts=("hftos", "no-such-os")).validate()
    with pytest.raises(ConfigError):
        StudySpec(reps=0).validate()


def _section(page: str, start: str) -> str:
    i = page.index(start)
    j = page.find("<h2", i)
    return page[i:j if j > 0 else len(page)]


@pytest.fixture(scope="module")
def real_study(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("tap and netns need root")
    try:
        guest.fetch_kernel()
    except RegistryUnreachableError as exc:  # any other failure of the fetch fails the test
        pytest.skip(f"no guest kernel: {exc}")
    out = tmp_path_factory.mktemp("study") / "s"
    return study(StudySpec(suts=SUTS, reps=2, hiccups_s=0.2, n_boot=200), out)


@needs_root
def test_two_rep_study_reports_ratios_and_hiccups(real_study):
    res = real_study
    assert list(res.runs) == list(SUTS)
    for sut, dirs in res.runs.items():
        assert len(dirs) == 2
        for d in dirs:
            assert (d / "latency.parquet").is_file()
            c = hiccups.from_run(d)
            assert c["hiccup_iterations"] > 0 and c["hiccup_span_ns"] >= 0.2e9 * 0.99, sut
            assert sum(hiccups.table(c).column("count").to_pylist()) == c["hiccup_gaps"], sut
    html = res.report.html.read_text()
    for title in ("A/B: hftos against each baseline", "Ratios hftos / baseline", "Hiccups"):
        assert title in html
    r = res.ratios.to_pylist()
    assert {(x["baseline"], x["column"], x["quantile"]) for x in r} == {
        ("linux-socket", c, q) for c in ("wire_ns", "internal_ns") for q in QUANTILES}
    p50 = next(x for x in r if x["column"] == "wire_ns" and x["quantile"] == "p50")
    assert p50["ratio"] == pytest.approx(p50["reference"] / p50["value"])
    assert pq.read_table(res.out / "ratios.parquet").num_rows == len(r)
    fig = pq.read_table(res.out / "figures.parquet")
    assert {"sut", "column", "count", *QUANTILES, "unit", "reps", "p50_rep_min", "p50_rep_max"} <= set(fig.column_names)
    for row in fig.to_pylist():
        assert row["reps"] == 2 and row["unit"] == "ns"
        assert row["p50_rep_min"] <= row["p50"] <= row["p50_rep_max"], row
    text = format_table(res)
    assert "hftos/linux-socket" in text and "hiccups" in text


@needs_root
def test_study_report_is_organised_by_sut(real_study):
    res = real_study
    page = res.report.html.read_text()
    ids = {sut: [load_run(d).run_id for d in dirs] for sut, dirs in res.runs.items()}
    assert res.report.groups == ids

    # one pooled row per SUT and figure, its count the sum of the reps'
    table = _section(page, "Percentiles per SUT, reps pooled")
    rows = re.findall(r"<tr><td class=l>.*?</tr>", table)
    assert [re.search(r"</span>([^<]+)</td>", x).group(1) for x in rows] == list(SUTS) * 3
    for sut, dirs in res.runs.items():
        n = sum(len(load_run(d).column("wire_ns")) for d in dirs)
        assert res.report.stats[sut]["wire_ns"].count == n > 0

    # verdicts: hftos against linux-socket, the reps pooled
    cmp = res.report.comparison
    assert set(cmp.column("a_name").to_pylist()) == {"hftos"}
    assert set(cmp.column("b_name").to_pylist()) == {"linux-socket"}
    assert set(res.report.verdicts) == {"wire_ns", "internal_ns"}

    # run ids only in the appendix
    appendix = page.index("<h2>Appendix</h2>")
    for rid in sum(ids.values(), []):
        assert rid in page[appendix:] and rid not in page[:appendix], rid

    # legends name SUTs (and their reps), never runs
    for key, entries in res.report.legends.items():
        assert entries and not any(rid in e for e in entries for rid in sum(ids.values(), [])), key
        assert any(e.startswith("hftos") for e in entries) and any(e.startswith("linux-socket") for e in entries)

    # negative outside_ns: counted from the latency files here, and explained when there are any
    for sut, dirs in res.runs.items():
        neg = 0
        total = 0
        for d in dirs:
            lat = pq.read_table(d / "latency.parquet").to_pandas().dropna(subset=["wire_ns", "internal_ns"])
            out = lat["wire_ns"].to_numpy(np.int64) - lat["internal_ns"].to_numpy(np.int64)
            neg += int((out < 0).sum())
            total += len(out)
        assert res.report.negative[sut] == (neg, total)
        if neg:
            assert f"{sut}: <b>{neg:,} of {total:,}</b>" in page
    if any(n for n, _t in res.report.negative.values()):
        assert "<b>Negative outside_ns</b>" in page and "TX doorbell synchronously" in page
    else:
        assert "positive for every order" in page


@needs_root
def test_report_cli_groups_real_runs_by_sut_or_per_run(real_study, tmp_path):
    dirs = real_study.runs
    # any order of the directories: grouped by what run.json names, reps in the order given
    rep = study_report([dirs["linux-socket"][1], dirs["hftos"][0], dirs["linux-socket"][0], dirs["hftos"][1]],
                       tmp_path / "grouped", n_boot=200)
    assert list(rep.groups) == ["linux-socket", "hftos"]
    assert all(len(v) == 2 for v in rep.groups.values())
    # one run of each: every run is a different thing, each its own group, still named by SUT
    rep = study_report([dirs["hftos"][0], dirs["linux-socket"][0]], tmp_path / "single", n_boot=200)
    assert list(rep.groups) == ["hftos", "linux-socket"]
    page = rep.html.read_text()
    assert "reps " not in _section(page, "Percentiles per SUT")
    assert "A/B: hftos against each baseline</h2>" in page
