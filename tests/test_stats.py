"""hftlab.analysis.latency statistics and hftlab.analysis.hdr histograms (issue 5).

Statistics equal numpy's on the same data; histogram percentiles, encodings
and interval logs agree with the reference `hdrhistogram` package; a merge
equals the histogram of the union.
"""
from __future__ import annotations

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
from hypothesis import given, settings, strategies as st

from hftlab.analysis import latency
from hftlab.analysis.hdr import Histogram, Interval, read_log, write_log

QS = latency.PERCENTILES


def _data():
    rng = np.random.default_rng(5)
    return {
        "lognormal_int": (20_000 + rng.lognormal(8, 0.8, 300_001)).astype(np.int64),
        "normal_float": rng.normal(1e4, 300, 100_000),
        "negative_int": rng.integers(-5_000, 5_000, 80_000),
        "constant": np.full(70_000, 12_345, np.int64),
        "small": np.array([7, 3, 9], np.int64),
        "uint": rng.integers(0, 2**40, 200_000).astype(np.uint64),
    }


@pytest.mark.parametrize("name", list(_data()))
@pytest.mark.parametrize("method,numpy_method", [("nearest", "inverted_cdf"), ("linear", "linear")])
def test_describe_equals_numpy(name, method, numpy_method):
    v = _data()[name]
    s = latency.describe(v, method=method, min_beyond=0)
    ref = np.percentile(v, QS, method=numpy_method)
    got = np.array([s.percentiles[f"p{q:g}"] for q in QS], float)
    if method == "nearest":
        assert np.array_equal(got, ref)
    else:
        np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert s.count == len(v)
    assert s.min == v.min() and s.max == v.max()
    np.testing.assert_allclose(s.mean, v.mean(), rtol=1e-12)
    np.testing.assert_allclose(s.stddev, v.std(), rtol=1e-9, atol=1e-9)
    assert s.jitter["p99-p50"] == pytest.approx(s.percentiles["p99"] - s.percentiles["p50"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2**45), min_size=1, max_size=400))
def test_describe_matches_numpy_on_any_integers(xs):
    v = np.array(xs, np.int64)
    s = latency.describe(v, min_beyond=0)
    assert [s.percentiles[f"p{q:g}"] for q in QS] == list(np.percentile(v, QS, method="inverted_cdf"))


def test_tail_percentiles_say_how_many_samples_back_them():
    v = np.arange(1, 1001)  # distinct values: "beyond" is the count of larger samples
    s = latency.describe(v)
    for k, val in s.percentiles.items():
        if val is None:
            assert s.beyond[k] == 0
        else:
            assert s.beyond[k] == np.count_nonzero(v > val) and (s.beyond[k] >= 1 or k == "p50")
    assert s.percentiles["p99"] is not None and s.beyond["p99"] >= 9
    assert s.percentiles["p99.99"] is None and s.beyond["p99.99"] == 0
    assert s.jitter["p99.99-p50"] is None
    # the earlier helper withholds the same figures
    old = latency.percentiles(v)
    assert [k for k in s.percentiles if s.percentiles[k] is None] == [k for k in s.percentiles if old[k] is None]


def test_histogram_agrees_with_the_hdrhistogram_package():
    v = (1_000 + np.random.default_rng(1).lognormal(9, 1.2, 20_000)).astype(np.int64)
    ours = Histogram.from_values(v)
    ref = HdrHistogram(1, int(v.max()), 3)
    for x in v:
        ref.record_value(int(x))
    for q in (0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0):
        assert ours.value_at_percentile(q) == ref.get_value_at_percentile(q), q
    assert ours.total == ref.get_total_count()
    assert ours.mean() == pytest.approx(ref.get_mean_value(), rel=1e-12)
    assert ours.stddev() == pytest.approx(ref.get_stddev(), rel=1e-9)
    # encodings cross both ways
    assert Histogram.decode(ref.encode()) == ours
    back = HdrHistogram.decode(ours.encode())
    assert back.get_total_count() == ours.total
    assert back.get_value_at_percentile(99.9) == ours.value_at_percentile(99.9)


def test_describe_histogram_is_the_recorded_one():
    v = np.random.default_rng(3).integers(0, 10**7, 100_000)
    assert latency.describe(v, histogram=True).histogram == Histogram.from_values(v)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 2**50), max_size=300), st.lists(st.integers(0, 2**36), max_size=300))
def test_merge_equals_histogram_of_the_union(a, b):
    ha, hb = Histogram.from_values(np.array(a, np.int64)), Histogram.from_values(np.array(b, np.int64))
    union = Histogram.from_values(np.array(a + b, np.int64))
    merged = ha + hb
    assert merged == union
    assert merged.total == len(a) + len(b)
    assert (merged.min, merged.max) == (union.min, union.max)
    assert merged.values_at_percentiles([50, 99]) == union.values_at_percentiles([50, 99])


def test_interval_log_round_trip_and_reference_reader(tmp_path):
    rng = np.random.default_rng(2)
    hs = [Histogram.from_values(rng.integers(100, 10**6, 5_000)) for _ in range(3)]
    path = write_log(tmp_path / "a.hlog", [Interval(i * 1.0, 1.0, h, tag="wire") for i, h in enumerate(hs)])
    got = read_log(path)
    assert [iv.histogram for iv in got.intervals] == hs
    assert got.intervals[1].tag == "wire" and got.total() == hs[0] + hs[1] + hs[2]
    reader = HistogramLogReader(str(path), HdrHistogram(1, 10**12, 3))
    first = reader.get_next_interval_histogram()
    assert first.get_total_count() == 5_000
    assert first.get_value_at_percentile(99) == hs[0].value_at_percentile(99)


def test_over_time_and_hiccups():
    t = np.arange(0, 10_000, 10, dtype=np.int64)
    v = np.where(t >= 5_000, 200, 100)
    ot = latency.over_time(t, v, 1_000)
    assert ot.column("count").to_pylist() == [100] * 10
    assert ot.column("p50").to_pylist() == [100] * 5 + [200] * 5
    ts = np.cumsum(np.r_[0, np.full(999, 100), 50_000, np.full(500, 100)])
    h = latency.hiccups(ts, 10_000)
    assert h.count == 1 and h.gap_ns[0] == 50_000 and h.at[0] == 1000
    assert h.typical_ns == 100 and h.lost_ns == 49_900
    probe = latency.poll_loop_timestamps(0.02)
    assert len(probe) > 100 and np.all(np.diff(probe) >= 0)
