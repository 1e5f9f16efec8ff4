"""numba kernels behind hftlab.analysis.latency and hftlab.analysis.compare.

Exact order statistics of large latency arrays without a full sort:

1. one parallel pass: min, max, sum;
2. one parallel pass: a log-linear histogram of the keys (value - min, or the
   raw values when they are non-negative integers: then that histogram *is*
   the HdrHistogram of the data) and the sum of squared deviations;
3. the cumulative counts say which bucket holds each wanted rank; a bucket of
   width 1 gives its value directly, the others are collected in one more pass
   and sorted (they hold a small share of the samples for any real latency
   distribution, whose buckets are 1/1024 of the value wide).

So the results are numpy's, to the last bit for nearest-rank and to
floating-point rounding for the mean, stddev and linear interpolation, at
about three reads of the data.

Bootstrap of a quantile uses the fact that the k-th smallest of n draws from
the empirical distribution is the sample at rank ceil(n * U) where U is the
k-th smallest of n uniforms, distributed Beta(k, n + 1 - k): one draw per
replicate instead of n.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros

__all__ = ["summary", "bootstrap_quantiles", "windowed", "gaps"]

_HALF_MAG = 10  # log-linear keys at 3 significant digits, as HdrHistogram(sig_figs=3)
_SUB_MASK = (1 << (_HALF_MAG + 1)) - 1
_COUNTS_LEN = (64 - _HALF_MAG) << _HALF_MAG  # enough for every key in 0 .. 2**63 - 1
_BLOCK = 4096


@numba.njit(inline="always")
def _key_index(k):
    bucket = 64 - leading_zeros(np.uint64(k | _SUB_MASK)) - (_HALF_MAG + 1)
    return ((bucket + 1) << _HALF_MAG) + (k >> bucket) - (1 << _HALF_MAG)


@numba.njit(inline="always")
def _key(x, offset, scale, is_float):
    if is_float:
        return np.int64((x - offset) * scale)
    return np.int64(x - offset)


@numba.njit(cache=True, parallel=True)
def _minmax_sum(values, nchunks):
    n = values.shape[0]
    mins = np.empty(nchunks, values.dtype)
    maxs = np.empty(nchunks, values.dtype)
    sums = np.zeros(nchunks, np.float64)
    for c in numba.prange(nchunks):
        lo, hi = c * n // nchunks, (c + 1) * n // nchunks
        mn, mx, total = values[lo], values[lo], 0.0
        for b in range(lo, hi, _BLOCK):
            part = 0.0
            for i in range(b, min(hi, b + _BLOCK)):
                x = values[i]
                mn = min(mn, x)
                mx = max(mx, x)
                part += x
            total += part
        mins[c], maxs[c], sums[c] = mn, mx, total
    return mins.min(), maxs.max(), sums.sum()


@numba.njit(cache=True, parallel=True)
def _hist_dev(values, nchunks, offset, scale, is_float, mean):
    n = values.shape[0]
    part = np.zeros((nchunks, _COUNTS_LEN), np.int64)
    dev = np.zeros(nchunks, np.float64)
    for c in numba.prange(nchunks):
        lo, hi = c * n // nchunks, (c + 1) * n // nchunks
        row, total = part[c], 0.0
        for b in range(lo, hi, _BLOCK):
            acc = 0.0
            for i in range(b, min(hi, b + _BLOCK)):
                x = values[i]
                row[_key_index(_key(x, offset, scale, is_float))] += 1
                d = x - mean
                acc += d * d
            total += acc
        dev[c] = total
    return part.sum(axis=0), dev.sum()


@numba.njit(cache=True)
def _collect(values, offset, scale, is_float, slot_of, starts):
    """Values whose bucket has a slot, grouped by slot (starts: slot offsets)."""
    out = np.empty(starts[-1], values.dtype)
    fill = starts[:-1].copy()
    for i in range(values.shape[0]):
        s = slot_of[_key_index(_key(values[i], offset, scale, is_float))]
        if s >= 0:
            out[fill[s]] = values[i]
            fill[s] += 1
    return out


def _bucket_bounds(idx: int) -> tuple[int, int]:
    bucket = (idx >> _HALF_MAG) - 1
    sub = (idx & ((1 << _HALF_MAG) - 1)) + (1 << _HALF_MAG)
    if bucket < 0:
        sub -= 1 << _HALF_MAG
        bucket = 0
    return sub << bucket, 1 << bucket


def _ranks(n: int, fracs: np.ndarray, method: str) -> list[tuple[int, int, float]]:
    """(lower rank, upper rank, weight of the upper) per quantile, 0-based ranks."""
    out = []
    for q in fracs:
        if method == "nearest":  # numpy's inverted_cdf: smallest x with F(x) >= q
            r = max(int(math.ceil(n * q)) - 1, 0)
            out.append((r, r, 0.0))
        else:  # numpy's linear (type 7)
            vi = (n - 1) * q
            lo = int(math.floor(vi))
            out.append((lo, min(lo + 1, n - 1), vi - lo))
    return out


def _lerp(a: float, b: float, t: float) -> float:
    # numpy's _lerp, written the same way so the rounding is the same
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def summary(values: np.ndarray, qs, method: str = "nearest", nthreads: int | None = None) -> dict:
    """count, mean, stddev (ddof=0), min, max and the quantiles qs (fractions
    in [0, 1]) of a 1-D numeric array without NaN. method: "nearest" (numpy's
    inverted_cdf, every figure a measured sample) or "linear" (numpy's
    default). Also returns "hdr_counts" when the input is non-negative
    integers (the HdrHistogram counts at 3 significant digits, full range)."""
    v = np.ascontiguousarray(values)
    n = len(v)
    fracs = np.asarray(qs, float)
    if n == 0:
        return {"count": 0, "mean": None, "stddev": None, "min": None, "max": None,
                "quantiles": [None] * len(fracs), "hdr_counts": None}
    if v.dtype.kind == "b":
        v = v.astype(np.int64)
    nchunks = max(1, min(nthreads or numba.get_num_threads(), n // 65536))
    mn, mx, total = _minmax_sum(v, nchunks)
    is_float = v.dtype.kind == "f"
    if is_float:
        offset, scale = float(mn), (2.0 ** 52 / (float(mx) - float(mn)) if mx > mn else 1.0)
    else:
        offset, scale = (0 if mn >= 0 else int(mn)), 1.0
        if mx - offset > 2 ** 62:
            raise OverflowError("integer range beyond 2**62")
    mean = total / n
    counts, dev = _hist_dev(v, nchunks, v.dtype.type(offset), scale, is_float, mean)
    ranks = _ranks(n, fracs, method)
    cum = np.cumsum(counts)
    wanted = sorted({r for lo, hi, _ in ranks for r in (lo, hi)})
    exact_ok = not is_float
    bucket_of = {r: int(np.searchsorted(cum, r + 1, side="left")) for r in wanted}
    slots = sorted({b for b in bucket_of.values() if not (exact_ok and _bucket_bounds(b)[1] == 1)})
    slot_of = np.full(_COUNTS_LEN, -1, np.int32)
    sizes = np.array([counts[b] for b in slots], np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    for s, b in enumerate(slots):
        slot_of[b] = s
    got = _collect(v, v.dtype.type(offset), scale, is_float, slot_of, starts) if slots else v[:0]
    sorted_slots = {b: np.sort(got[starts[s]: starts[s + 1]]) for s, b in enumerate(slots)}
    order_stat = {}
    for r, b in bucket_of.items():
        within = r - int(cum[b] - counts[b])
        if b in sorted_slots:
            order_stat[r] = sorted_slots[b][within].item()
        else:
            order_stat[r] = int(_bucket_bounds(b)[0] + offset)
    out_q = []
    for lo, hi, t in ranks:
        a = order_stat[lo]
        out_q.append(a if method == "nearest" else _lerp(float(a), float(order_stat[hi]), t))
    hdr = counts if (not is_float and offset == 0) else None
    return {"count": n, "mean": float(mean), "stddev": math.sqrt(dev / n), "min": np.asarray(mn).item(),
            "max": np.asarray(mx).item(), "quantiles": out_q, "hdr_counts": hdr}


# ---------------------------------------------------------------------- bootstrap
@numba.njit(cache=True)
def _boot_delta(sa, sb, fracs, n_boot, seed):
    """Replicates of quantile(B*) - quantile(A*) for sorted samples sa, sb."""
    np.random.seed(seed)
    out = np.empty((len(fracs), n_boot), np.float64)
    na, nb = len(sa), len(sb)
    for j in range(len(fracs)):
        ka = max(int(math.ceil(na * fracs[j])), 1)
        kb = max(int(math.ceil(nb * fracs[j])), 1)
        for i in range(n_boot):
            ua = np.random.beta(ka, na + 1 - ka)
            ub = np.random.beta(kb, nb + 1 - kb)
            ia = min(max(int(math.ceil(na * ua)) - 1, 0), na - 1)
            ib = min(max(int(math.ceil(nb * ub)) - 1, 0), nb - 1)
            out[j, i] = np.float64(sb[ib]) - np.float64(sa[ia])
    return out


def bootstrap_quantiles(sa: np.ndarray, sb: np.ndarray, fracs, n_boot: int, seed: int) -> np.ndarray:
    """(len(fracs), n_boot) bootstrap replicates of the nearest-rank quantile
    difference B - A, from two *sorted* samples of any sizes."""
    return _boot_delta(sa, sb, np.asarray(fracs, float), int(n_boot), int(seed))


# ---------------------------------------------------------------------- over time
@numba.njit(cache=True)
def _windowed(t, v, edges, fracs):
    nw = len(edges) - 1
    out = np.full((nw, len(fracs) + 2), np.nan)
    j = 0
    for w in range(nw):
        lo = j
        while j < len(t) and t[j] < edges[w + 1]:
            j += 1
        if j > lo:
            s = np.sort(v[lo:j].astype(np.float64))
            m = j - lo
            out[w, 0] = m
            for k in range(len(fracs)):
                out[w, k + 1] = s[max(int(math.ceil(m * fracs[k])) - 1, 0)]
            out[w, len(fracs) + 1] = s[m - 1]
    return out


def windowed(t: np.ndarray, v: np.ndarray, width: int, fracs) -> tuple[np.ndarray, np.ndarray]:
    """Window starts and [count, quantiles..., max] per window of `width` (t's
    unit); t sorted ascending."""
    edges = np.arange(t[0], t[-1] + width + 1, width, dtype=np.int64)
    return edges[:-1], _windowed(t.astype(np.int64), v, edges, np.asarray(fracs, float))


@numba.njit(cache=True)
def gaps(ts: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions and lengths of gaps between consecutive timestamps above threshold."""
    pos = np.empty(len(ts), np.int64)
    length = np.empty(len(ts), np.int64)
    k = 0
    for i in range(1, len(ts)):
        d = ts[i] - ts[i - 1]
        if d > threshold:
            pos[k], length[k] = i, d
            k += 1
    return pos[:k], length[:k]
