"""Latency statistics at scale, in one run (issue 5, "Benchmark").

    python3 benchmarks/stats.py [--samples 100000000] [--hdrh-slice 1000000]

Figures, not assertions. --samples synthetic tick-to-trade latencies (int64
ns: a 20 us floor plus a lognormal body and a sparse heavy tail), then:

* hftlab: latency.describe(..., histogram=True): exact count, mean, stddev,
  min, p50 ... p99.99, max (nearest rank) and the HdrHistogram (3 digits);
* numpy: np.percentile(method="inverted_cdf") for the same percentiles
  (plus mean/std), on the whole array;
* hdrhistogram (PyPI, pure Python): record_value per sample, then the
  percentiles, on the first --hdrh-slice samples, extrapolated (labelled).

Checks that hftlab's percentiles equal numpy's. Target: <= 1 s for hftlab.
The environment is printed first.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numba  # noqa: E402
import numpy as np  # noqa: E402

from hftlab import latency  # noqa: E402
from hftlab._env import cpu_model  # noqa: E402

QS = latency.PERCENTILES
TARGET_S = 1.0


def _data(n: int) -> np.ndarray:
    rng = np.random.default_rng(42)
    v = (20_000 + rng.lognormal(8.0, 0.7, n)).astype(np.int64)
    tail = rng.random(n) < 1e-4
    v[tail] += rng.integers(100_000, 5_000_000, int(tail.sum()))
    return v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=100_000_000)
    ap.add_argument("--hdrh-slice", type=int, default=1_000_000)
    args = ap.parse_args()
    print(f"env: cpu={cpu_model()!r} cpus={os.cpu_count()} numba_threads={numba.get_num_threads()} "
          f"kernel={platform.release()} python={platform.python_version()} numpy={np.__version__} "
          f"numba={numba.__version__}")
    v = _data(args.samples)
    latency.describe(v[:100_000], histogram=True)  # compile / load the numba cache outside the clock
    t0 = time.perf_counter()
    st = latency.describe(v, histogram=True)
    t_ours = time.perf_counter() - t0
    print(f"hftlab describe+histogram  {args.samples:>12,} samples  {t_ours:8.3f} s  "
          f"target <= {TARGET_S} s: {'met' if t_ours <= TARGET_S else 'MISSED'}")
    print(f"  count={st.count:,} mean={st.mean:,.1f} stddev={st.stddev:,.1f} "
          + " ".join(f"{k}={val:,}" for k, val in st.percentiles.items() if val is not None)
          + f" max={st.max:,}  histogram buckets used={np.count_nonzero(st.histogram.counts):,}")
    t0 = time.perf_counter()
    ref = np.percentile(v, QS, method="inverted_cdf")
    mean, std = v.mean(), v.std()
    t_np = time.perf_counter() - t0
    same = list(ref) == [st.percentiles[f"p{q:g}"] for q in QS]
    print(f"numpy percentile+mean+std  {args.samples:>12,} samples  {t_np:8.3f} s  "
          f"(no histogram; equal percentiles: {same}, mean diff {abs(mean - st.mean):.2e}, "
          f"std diff {abs(std - st.stddev):.2e})")
    try:
        from hdrh.histogram import HdrHistogram
    except ImportError:
        print("hdrhistogram: not installed (pip install hdrhistogram)")
        return
    k = min(args.hdrh_slice, args.samples)
    h = HdrHistogram(1, 3_600_000_000_000, 3)
    t0 = time.perf_counter()
    for x in v[:k].tolist():
        h.record_value(x)
    hq = [h.get_value_at_percentile(q) for q in QS]
    t_h = time.perf_counter() - t0
    print(f"hdrhistogram (PyPI)        {k:>12,} samples  {t_h:8.3f} s  -> "
          f"{t_h * args.samples / k:8.1f} s for {args.samples:,} (EXTRAPOLATED from the slice); "
          f"its p99 on the slice {hq[2]:,}")
    print(f"speed-up: {t_np / t_ours:.1f}x numpy, {t_h * args.samples / k / t_ours:.0f}x hdrhistogram (extrapolated)")


if __name__ == "__main__":
    main()
