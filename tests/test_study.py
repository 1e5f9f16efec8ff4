"""hftlab study: HFT-OS against linux-socket in the guest (issue 6, item 6).

One repetition on the bundled sample, each SUT with the poll-loop gap
recorder on: both SUTs log hiccup counters whose histogram sums to their
gap count, and the study writes its report and the ratio table. The study
needs root (tap) and QEMU (installed by `make setup`: missing is a failure);
it skips only without root, or when Debian's registry cannot be reached and
no guest kernel is cached. The validation test needs neither.
"""
from __future__ import annotations

import os

import pyarrow.parquet as pq
import pytest

from hftlab.lab import guest
from hftlab.analysis import hiccups
from hftlab.errors import ConfigError, RegistryUnreachableError
from hftlab.experiment.study import QUANTILES, StudySpec, format_table, study

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="tap and netns need root")


def test_study_spec_refuses_bad_suts():
    with pytest.raises(ConfigError):
        StudySpec(suts=("hftos", "no-such-os")).validate()
    with pytest.raises(ConfigError):
        StudySpec(reps=0).validate()


@needs_root
def test_one_rep_study_reports_ratios_and_hiccups(tmp_path):
    try:
        guest.fetch_kernel()
    except RegistryUnreachableError as exc:  # any other failure of the fetch fails the test
        pytest.skip(f"no guest kernel: {exc}")
    res = study(StudySpec(reps=1, hiccups_s=0.3, n_boot=200), tmp_path / "s")
    assert list(res.runs) == ["hftos", "linux-socket", "linux-dpdk"]
    for sut, dirs in res.runs.items():
        assert len(dirs) == 1 and (dirs[0] / "latency.parquet").is_file()
        c = hiccups.from_run(dirs[0])
        assert c["hiccup_iterations"] > 0 and c["hiccup_span_ns"] >= 0.3e9 * 0.99, sut
        assert sum(hiccups.table(c).column("count").to_pylist()) == c["hiccup_gaps"], sut
    html = res.report.html.read_text()
    for title in ("A/B: hftos against each baseline", "Ratios hftos / baseline", "Hiccup histograms"):
        assert title in html
    r = res.ratios.to_pylist()
    assert {(x["baseline"], x["column"], x["quantile"]) for x in r} == {
        (b, c, q) for b in ("linux-socket", "linux-dpdk") for c in ("wire_ns", "internal_ns")
        for q in QUANTILES}
    p50 = next(x for x in r if x["column"] == "wire_ns" and x["quantile"] == "p50")
    assert p50["ratio"] == pytest.approx(p50["reference"] / p50["value"])
    assert pq.read_table(tmp_path / "s" / "ratios.parquet").num_rows == len(r)
    text = format_table(res)
    assert "hftos/linux-socket" in text and "hftos/linux-dpdk" in text and "hiccups" in text
