"""Latency statistics: hftlab vs numpy and hdrhistogram, same input (issue 5, "Benchmark").

    python3 benchmarks/stats.py [--samples 10000000] [--reps 5] [--warmup 1]
                                [--peers hftlab,numpy,hdrhistogram] [--json OUT]

Figures, not assertions. --samples synthetic tick-to-trade latencies (int64
ns: a 20 us floor plus a lognormal body and a sparse heavy tail), and every
peer computes the latency summary of the whole array:

* hftlab: latency.describe(..., histogram=True): exact count, mean, stddev,
  min, p50 ... p99.99, max (nearest rank) and the HdrHistogram (3 digits);
* numpy: np.percentile(method="inverted_cdf") for the same percentiles,
  plus mean, std, min, max (no histogram);
* hdrhistogram (PyPI, pure Python): a 3-digit HdrHistogram, record_value per
  sample (fed from ndarray.tolist()), then the percentiles, mean, stddev.

Same protocol for every peer: --warmup untimed runs each, then --reps timed
runs each, interleaved (repetition k starts at peer k mod n), on the same
array in this process. The table gives the median, min and max of the timed
runs, samples/s at the median and how many times faster hftlab is (median
against median). Checks that hftlab's percentiles equal numpy's, and that
hdrhistogram's are within its 3-digit precision (0.1 %) of a sample within
two ranks of the exact one (it rounds the rank differently).

Pure-Python hdrhistogram records ~0.4 M samples/s here (2 cores shared), so
the default is 10 M samples for everyone, not the 100 M of the issue-5
target (<= 1 s for hftlab), which is judged only at --samples >= 100000000
(then hdrhistogram takes ~5 min a run: --peers hftlab,numpy leaves it out,
and the table says who ran). The environment (hftlab.util.env) is printed first.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numba  # noqa: E402
import numpy as np  # noqa: E402

from hftlab.analysis import latency  # noqa: E402
from hftlab.util.env import environment  # noqa: E402

QS = latency.PERCENTILES
TARGET_S = 1.0
TARGET_SAMPLES = 100_000_000
HDR_DIGITS = 3
HDR_RELATIVE = 1e-3  # 3 significant digits


def _data(n: int) -> np.ndarray:
    rng = np.random.default_rng(42)
    v = (20_000 + rng.lognormal(8.0, 0.7, n)).astype(np.int64)
    tail = rng.random(n) < 1e-4
    v[tail] += rng.integers(100_000, 5_000_000, int(tail.sum()))
    return v


def _hftlab(v: np.ndarray) -> dict[str, Any]:
    st = latency.describe(v, histogram=True)
    return {"percentiles": [st.percentiles[f"p{q:g}"] for q in QS], "mean": st.mean, "std": st.stddev,
            "min": st.min, "max": st.max,
            "note": f"histogram buckets used {np.count_nonzero(st.histogram.counts):,}"}


def _numpy(v: np.ndarray) -> dict[str, Any]:
    ref = np.percentile(v, QS, method="inverted_cdf")
    return {"percentiles": [int(x) for x in ref], "mean": float(v.mean()), "std": float(v.std()),
            "min": int(v.min()), "max": int(v.max()), "note": "no histogram"}


def _hdrhistogram(v: np.ndarray) -> dict[str, Any]:
    from hdrh.histogram import HdrHistogram

    h = HdrHistogram(1, 3_600_000_000_000, HDR_DIGITS)
    rec = h.record_value
    for x in v.tolist():
        rec(x)
    return {"percentiles": [h.get_value_at_percentile(q) for q in QS], "mean": h.get_mean_value(),
            "std": h.get_stddev(), "min": h.get_min_value(), "max": h.get_max_value(),
            "note": f"{HDR_DIGITS}-digit histogram"}


PEERS: dict[str, tuple[str, str, Callable[[np.ndarray], dict[str, Any]]]] = {
    "hftlab": ("hftlab describe+histogram", "numba, exact + HdrHistogram", _hftlab),
    "numpy": ("numpy percentile+mean+std", "inverted_cdf, exact", _numpy),
    "hdrhistogram": ("hdrhistogram (PyPI)", "pure Python, record_value each", _hdrhistogram),
}


def _hdr_agrees(v: np.ndarray, hq: list[int]) -> bool:
    """hdrhistogram rounds the rank (round(q n / 100), not nearest rank's
    ceiling) and answers the top of a bucket 0.1 % wide: in the sparse tail
    that can differ from the exact percentile by more than 0.1 %. Its answer
    is right when it is within 0.1 % of a sample two ranks or fewer from the
    nearest rank."""
    s = np.sort(v)
    for q, h in zip(QS, hq):
        r = max(int(np.ceil(q / 100 * len(s))) - 1, 0)
        near = s[max(r - 2, 0):r + 3]
        if not np.any(np.abs(near - h) <= HDR_RELATIVE * near + 1):
            return False
    return True


def measure(peers: list[str], v: np.ndarray, warmup: int, reps: int) -> dict[str, dict[str, Any]]:
    """warmup untimed then reps timed runs of every peer on v, interleaved:
    repetition k starts at peer k mod n. Each result is dropped before the
    next run; the last one is kept for the checks."""
    out: dict[str, dict[str, Any]] = {p: {"times_s": []} for p in peers}
    n = len(peers)
    for k in range(warmup + reps):
        for i in range(n):
            p = peers[(k + i) % n]
            out[p].pop("result", None)
            t0 = time.perf_counter()
            res = PEERS[p][2](v)
            dt_s = time.perf_counter() - t0
            out[p]["result"] = res
            if k >= warmup:
                out[p]["times_s"].append(dt_s)
    for p, m in out.items():
        t = m["times_s"]
        m.update(reps=len(t), warmup=warmup, median_s=statistics.median(t), min_s=min(t), max_s=max(t),
                 samples_per_s=len(v) / statistics.median(t))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10_000_000, help="samples, the same for every peer")
    ap.add_argument("--reps", type=int, default=5, help="timed runs per peer")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs per peer first")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated, from " + ", ".join(PEERS))
    ap.add_argument("--json", type=Path, default=None, help="also write the results and environment here")
    args = ap.parse_args()
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    if "hftlab" not in peers or any(p not in PEERS for p in peers):
        ap.error(f"--peers: hftlab and any of {', '.join(PEERS)}")
    if args.reps < 1 or args.warmup < 0 or args.samples < 1:
        ap.error("--samples and --reps must be >= 1, --warmup >= 0")
    if "hdrhistogram" in peers:
        import hdrh  # noqa: F401  (installed by pip install -e '.[test]'; missing is an error)
    env = {**environment(), "numba_threads": numba.get_num_threads(), "numpy": np.__version__,
           "numba": numba.__version__, "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    print("environment: " + json.dumps(env))
    v = _data(args.samples)
    res = measure(peers, v, args.warmup, args.reps)
    print(f"input: {args.samples:,} int64 latencies (seed 42), the whole array for every peer; "
          f"{args.warmup} untimed warm-up run(s) then {args.reps} timed runs per peer, interleaved "
          f"(rep k starts at peer k mod {len(peers)}); median/min/max of the {args.reps}; "
          f"'hftlab x' = peer's median / hftlab's median\n")
    head = (f"{'peer':28} {'method':32} {'samples':>12} {'median s':>9} {'min s':>9} {'max s':>9} "
            f"{'M samples/s':>11} {'hftlab x':>9}")
    print(head + "\n" + "-" * len(head))
    base = res["hftlab"]["median_s"]
    for p in peers:
        m = res[p]
        print(f"{PEERS[p][0]:28} {PEERS[p][1]:32} {args.samples:>12,} {m['median_s']:>9.3f} "
              f"{m['min_s']:>9.3f} {m['max_s']:>9.3f} {m['samples_per_s'] / 1e6:>11.2f} "
              f"{m['median_s'] / base:>9.1f}")
    ours = res["hftlab"]["result"]
    print("\nhftlab: " + " ".join(f"p{q:g}={x:,}" for q, x in zip(QS, ours["percentiles"]))
          + f" mean={ours['mean']:,.1f} stddev={ours['std']:,.1f} min={ours['min']:,} max={ours['max']:,}"
          + f"  ({ours['note']})")
    checks: dict[str, bool] = {}
    if "numpy" in res:
        ref = res["numpy"]["result"]
        same = ours["percentiles"] == ref["percentiles"]
        checks["hftlab percentiles == numpy's"] = same
        print(f"numpy:  equal percentiles {same}, "
              f"mean diff {abs(ref['mean'] - ours['mean']):.2e}, std diff {abs(ref['std'] - ours['std']):.2e}")
    if "hdrhistogram" in res:
        hq = res["hdrhistogram"]["result"]["percentiles"]
        rel = max(abs(a - b) / b for a, b in zip(hq, ours["percentiles"]))
        checks[f"hdrhistogram within {HDR_RELATIVE:.1%} of a sample within 2 ranks of each percentile"] = \
            _hdr_agrees(v, hq)
        print("hdrhistogram: " + " ".join(f"p{q:g}={x:,}" for q, x in zip(QS, hq))
              + f"; largest relative difference to the exact (nearest-rank) percentiles {rel:.2e}")
    t_ours = res["hftlab"]["median_s"]
    if args.samples >= TARGET_SAMPLES:
        target = f"met ({t_ours:.3f} s)" if t_ours <= TARGET_S else f"MISSED ({t_ours:.3f} s)"
    else:
        target = f"not judged at {args.samples:,} samples (run --samples {TARGET_SAMPLES})"
    print(f"target <= {TARGET_S} s for {TARGET_SAMPLES:,} samples (hftlab, median): {target}")
    print("checks: " + ", ".join(f"{k}: {'yes' if ok else 'NO'}" for k, ok in checks.items()))
    if args.json:
        for m in res.values():
            m.pop("result", None)
        args.json.write_text(json.dumps({"environment": env, "samples": args.samples, "warmup": args.warmup,
                                         "reps": args.reps, "results": res, "checks": checks,
                                         "target": target}, indent=2))
    if not all(checks.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
