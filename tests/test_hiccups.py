"""The poll-loop gap recorder (kernel_src/core/hiccup.c, hftlab.analysis.hiccups).

The C recorder runs here through the cffi build of the same source HFT-OS
and the baselines link: synthetic TSC readings in, the dump's hiccup_*
counters out, decoded by hftlab.lab.sutlog and tabled by hftlab.analysis.hiccups.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from hftlab.analysis import hiccups
from hftlab.lab import sutlog
from hftlab._core import ffi, lib
from hftlab.errors import DataError


def _record(readings: list[int], hz: int, threshold_ns: int, duration_ns: int = 10**15) -> dict:
    h = ffi.new("struct hiccup *")
    lib.hiccup_start(h, hz, duration_ns, threshold_ns, readings[0])
    for t in readings[1:]:
        lib.hiccup_note(h, t)
    buf = ffi.new("char[]", 1 << 16)
    n = lib.hc_hiccup_dump(buf, 1 << 16, h)
    return sutlog.parse_dump(ffi.buffer(buf, n)[:]).counters


def test_known_gaps_land_in_their_log2_buckets():
    # 1 GHz: a cycle is a ns. Gaps 10, 1500, 3000, 3000, 70000 ns; threshold 1000.
    t = [0]
    for gap in (10, 1500, 10, 3000, 3000, 70_000, 10):
        t.append(t[-1] + gap)
    c = _record(t, 10**9, 1000)
    assert c["hiccup_iterations"] == 7 and c["hiccup_gaps"] == 4
    assert c["hiccup_gap_ns_total"] == 1500 + 3000 + 3000 + 70_000
    assert c["hiccup_max_ns"] == 70_000 and c["hiccup_span_ns"] == t[-1]
    tab = hiccups.table(c).to_pylist()
    assert [(r["lower_ns"], r["upper_ns"], r["count"], r["time_ns"]) for r in tab] == [
        (1024, 2048, 1, 1500), (2048, 4096, 2, 6000), (65536, 131072, 1, 70_000)]
    top = hiccups.largest(c).to_pylist()
    assert [r["gap_ns"] for r in top] == [70_000, 3000, 3000, 1500]
    assert top[0]["at_ns"] == 1520 + 6000 + 70_000
    s = hiccups.summary(c)
    assert s["gaps"] == 4 and s["max_ns"] == 70_000


def test_cycles_convert_to_ns_without_overflow():
    hz = 3_000_000_000
    assert lib.hiccup_cycles_to_ns(hz * 3600, hz) == 3600 * 10**9
    assert lib.hiccup_ns_to_cycles(3600 * 10**9, hz) == hz * 3600
    assert lib.hiccup_cycles_to_ns(3, hz) == 1


def test_no_recorder_no_counters():
    h = ffi.new("struct hiccup *")
    buf = ffi.new("char[]", 4096)
    n = lib.hc_hiccup_dump(buf, 4096, h)
    c = sutlog.parse_dump(ffi.buffer(buf, n)[:]).counters
    assert c == {} and not hiccups.has_hiccups(c)
    with pytest.raises(DataError):
        hiccups.table(c)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**7), min_size=1, max_size=300), st.integers(1, 10**5),
       st.sampled_from([10**9, 2_400_000_000, 3_000_000_123]))
def test_histogram_sums_to_the_gaps(gaps, threshold_ns, hz):
    t = [5]
    for g in gaps:
        t.append(t[-1] + g)
    c = _record(t, hz, threshold_ns)
    tab = hiccups.table(c)
    assert sum(tab.column("count").to_pylist()) == c["hiccup_gaps"]
    assert sum(tab.column("time_ns").to_pylist()) == c["hiccup_gap_ns_total"]
    assert c["hiccup_iterations"] == len(gaps)
    thr = lib.hiccup_ns_to_cycles(threshold_ns, hz)
    assert c["hiccup_gaps"] == sum(g > thr for g in gaps)
    top = hiccups.largest(c).column("gap_ns").to_pylist()
    assert top == sorted(top, reverse=True) and len(top) <= lib.HICCUP_TOP
