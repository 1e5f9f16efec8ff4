"""benchmarks/machine_speed.py: which bench_engine passes count as full speed.

The selection on hand-made passes, and bench_engine's --json per-pass lists
(real build, real RITCH run) that it reads.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RITCH = ROOT / "datasets" / "ritch" / "ex20101224.TEST_ITCH_50"
sys.path.insert(0, str(ROOT / "benchmarks"))
try:
    import machine_speed as ms
finally:
    sys.path.remove(str(ROOT / "benchmarks"))


def test_full_speed_keeps_only_passes_between_two_fast_decodes():
    # (decode before, decode after, engine ns)
    passes = [(10.0, 10.5, 35.0), (15.0, 10.0, 55.0), (10.9, 10.0, 36.0), (11.2, 10.0, 60.0),
              (10.0, 14.0, 50.0), (10.0, None, 34.0)]
    fs = ms.full_speed(passes, best_decode=10.0)
    assert (fs["n"], fs["of"]) == (2, 6)
    assert fs["median"] == 35.5 and fs["min"] == 35.0 and fs["max"] == 36.0
    assert ms.describe(fs) == "35.5 (35.0-36.0) 2/6"


def test_full_speed_with_no_fast_pass_says_so():
    fs = ms.full_speed([(14.0, 14.0, 55.0)], best_decode=10.0)
    assert fs["n"] == 0 and fs["median"] is None
    assert ms.describe(fs) == "- 0/1"


@pytest.mark.parametrize("passes,best", [([], 10.0), ([(10.0, 10.0, 30.0)], 0.0)])
def test_full_speed_refuses_nonsense(passes, best):
    with pytest.raises(ValueError, match="full_speed"):
        ms.full_speed(passes, best)


def test_an_old_harness_gives_its_medians_as_one_pass():
    run = {"paths": {"decode": {"ns_median": 9.0}, "on_packet": {"ns_median": 40.0}}}
    assert ms.passes_of(run, "on_packet") == [(9.0, 9.0, 40.0)]


def test_bench_engine_lists_every_pass(tmp_path):
    build = tmp_path / "build"
    subprocess.run(["make", "-s", "-C", str(ROOT / "tests" / "fuzz"), f"BUILD={build}", "bench_engine"],
                   check=True, capture_output=True)
    out = subprocess.run([str(build / "bench_engine"), str(RITCH), "--reps", "3", "--json"],
                         check=True, capture_output=True, text=True).stdout
    run = json.loads(out)
    for name, p in run["paths"].items():
        assert len(p["ns"]) == 3, name
        assert p["ns_median"] == pytest.approx(statistics.median(p["ns"]), abs=1e-3), name
        assert p["ns_min"] == pytest.approx(min(p["ns"]), abs=1e-3), name
    dec, ns = run["paths"]["decode"]["ns"], run["paths"]["on_packet"]["ns"]
    passes = ms.passes_of(run, "on_packet")
    assert passes == [(dec[0], dec[1], ns[0]), (dec[1], dec[2], ns[1]), (dec[2], None, ns[2])]
    # against a bar no pass misses, every pass but the last counts
    fs = ms.full_speed(passes, max(dec))
    assert (fs["n"], fs["of"]) == (2, 3)
    assert fs["median"] == pytest.approx(statistics.median(ns[:2]))
