"""Log-linear latency histograms, HdrHistogram-compatible.

The bucket layout is HdrHistogram's (Gil Tene's design, described in the
HdrHistogram documentation): for `sig_figs` significant decimal digits there
are 2**ceil(log2(2 * 10**sig_figs)) sub-buckets; values below that count are
recorded exactly, and each further power of two is split into half as many
sub-buckets of width 2**k, so every value is kept to a relative error below
10**-sig_figs. Because the layout only depends on `sig_figs` (the lowest
discernible value is 1 ns), two histograms merge by adding their count arrays,
and a histogram that covers a larger range has the smaller one's array as a
prefix.

`Histogram.encode()` / `Histogram.decode()` speak the V2 compressed encoding
(big-endian header, ZigZag LEB128 counts with negative numbers for runs of
empty buckets, zlib, base64), and `write_log` / `read_log` the text interval
log ("#[Histogram log format version 1.3]", one CSV line per interval), so
histograms move to and from the Java, C and Python HdrHistogram tools.
"""
from __future__ import annotations

import base64
import math
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros

from hftlab.errors import ConfigError, DataError

__all__ = ["Histogram", "Interval", "write_log", "read_log"]

_ENCODING_COOKIE = 0x1C849303 | 0x10  # V2 encoding; 0x10: word size nibble as the reference writers set it
_COMPRESSED_COOKIE = 0x1C849304 | 0x10
_HEADER = struct.Struct(">iiiiqqd")  # cookie, payload length, normalizing offset, sig figs, lowest, highest, ratio
_INT64_MAX = (1 << 63) - 1


@dataclass(frozen=True)
class Layout:
    """Where a value goes in the counts array, for a lowest value of 1."""

    sig_figs: int
    highest: int

    @property
    def sub_bucket_count_magnitude(self) -> int:
        return int(math.ceil(math.log2(2 * 10 ** self.sig_figs)))

    @property
    def half_magnitude(self) -> int:
        return max(self.sub_bucket_count_magnitude, 1) - 1

    @property
    def sub_bucket_count(self) -> int:
        return 1 << self.sub_bucket_count_magnitude

    @property
    def bucket_count(self) -> int:
        smallest_untrackable, buckets = self.sub_bucket_count, 1
        while smallest_untrackable <= self.highest:
            if smallest_untrackable > _INT64_MAX // 2:
                return buckets + 1
            smallest_untrackable <<= 1
            buckets += 1
        return buckets

    @property
    def counts_len(self) -> int:
        return (self.bucket_count + 1) << self.half_magnitude


@numba.njit(inline="always")
def _index(v, half_mag, sub_mask):
    """Counts-array index of value v >= 0 (HdrHistogram's countsArrayIndex)."""
    bucket = 64 - leading_zeros(np.uint64(v | sub_mask)) - (half_mag + 1)
    sub = v >> bucket
    return ((bucket + 1) << half_mag) + sub - (1 << half_mag)


@numba.njit(cache=True, parallel=True)
def _record(values, half_mag, sub_mask, counts_len, nthreads):
    """Counts, min and max of values (all >= 0), one chunk per thread."""
    n = values.shape[0]
    nchunks = max(1, min(nthreads, n // 65536))
    part = np.zeros((nchunks, counts_len), np.int64)
    mins = np.full(nchunks, 9223372036854775807, np.int64)
    maxs = np.zeros(nchunks, np.int64)
    for c in numba.prange(nchunks):
        lo, hi = c * n // nchunks, (c + 1) * n // nchunks
        row, mn, mx = part[c], mins[c], maxs[c]
        for i in range(lo, hi):
            v = np.int64(values[i])
            row[_index(v, half_mag, sub_mask)] += 1
            mn = min(mn, v)
            mx = max(mx, v)
        mins[c], maxs[c] = mn, mx
    return part.sum(axis=0), mins.min(), maxs.max()


@numba.njit(cache=True)
def _values_of(counts_len, half_mag):
    """Lowest value and width of every bucket."""
    low = np.empty(counts_len, np.int64)
    width = np.empty(counts_len, np.int64)
    half = 1 << half_mag
    for i in range(counts_len):
        bucket = (i >> half_mag) - 1
        sub = (i & (half - 1)) + half
        if bucket < 0:
            sub -= half
            bucket = 0
        low[i] = sub << bucket
        width[i] = 1 << bucket
    return low, width


class Histogram:
    """A log-linear histogram of non-negative integer values (ns).

    Build with `Histogram.from_values(array)` or `record(array)`; merge with
    `+` / `add`; ask `value_at_percentile`, `mean`, `stddev`; move it with
    `encode` / `decode`. Percentiles follow HdrHistogram: the highest value
    equivalent to the bucket where the cumulative count first reaches
    round(q * total), so they match the reference libraries exactly.
    """

    def __init__(self, sig_figs: int = 3, highest: int = 3_600_000_000_000) -> None:
        if not 1 <= sig_figs <= 5:
            raise ConfigError(f"sig_figs {sig_figs}: 1 to 5 significant digits")
        if highest < 2:
            raise ConfigError("highest trackable value must be >= 2")
        self.layout = Layout(sig_figs, int(highest))
        self.counts = np.zeros(self.layout.counts_len, np.int64)
        self.min: int | None = None
        self.max: int | None = None

    # ------------------------------------------------------------------ recording
    @classmethod
    def from_values(cls, values, sig_figs: int = 3) -> "Histogram":
        h = cls(sig_figs)
        h.record(values)
        return h

    def record(self, values) -> "Histogram":
        """Add every value of an integer array (negative values are an error)."""
        v = np.ascontiguousarray(values)
        if v.size == 0:
            return self
        if v.dtype.kind not in "iu":
            if v.dtype.kind != "f" or not np.all(np.isfinite(v)):
                raise ConfigError("a histogram records finite numbers")
            v = np.rint(v).astype(np.int64)
        if v.dtype.kind == "u" and v.max() > _INT64_MAX:
            raise ConfigError("value beyond int64")
        lay = Layout(self.layout.sig_figs, _INT64_MAX)  # record into the full range, then trim
        counts, mn, mx = _record(v, lay.half_magnitude, lay.sub_bucket_count - 1, lay.counts_len,
                                   numba.get_num_threads())
        if mn < 0:
            raise ConfigError(f"a histogram records values >= 0, got {mn}")
        self._grow(max(self.layout.highest, int(mx)))
        self.counts += counts[: len(self.counts)]
        self._extend(int(mn), int(mx))
        return self

    def _grow(self, highest: int) -> None:
        if highest > self.layout.highest:
            self.layout = Layout(self.layout.sig_figs, highest)
            grown = np.zeros(self.layout.counts_len, np.int64)
            grown[: len(self.counts)] = self.counts
            self.counts = grown

    def _extend(self, mn: int | None, mx: int | None) -> None:
        if mn is not None:
            self.min = mn if self.min is None else min(self.min, mn)
        if mx is not None:
            self.max = mx if self.max is None else max(self.max, mx)

    def add(self, other: "Histogram") -> "Histogram":
        """Merge other into self (same sig_figs); returns self."""
        if other.layout.sig_figs != self.layout.sig_figs:
            raise ConfigError("histograms with different significant digits do not merge")
        self._grow(other.layout.highest)
        self.counts[: len(other.counts)] += other.counts
        self._extend(other.min, other.max)
        return self

    def __add__(self, other: "Histogram") -> "Histogram":
        return self.copy().add(other)

    def copy(self) -> "Histogram":
        h = Histogram(self.layout.sig_figs, self.layout.highest)
        h.counts[:] = self.counts
        h.min, h.max = self.min, self.max
        return h

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram) or other.layout.sig_figs != self.layout.sig_figs:
            return NotImplemented
        n = max(len(self.counts), len(other.counts))
        a, b = np.zeros(n, np.int64), np.zeros(n, np.int64)
        a[: len(self.counts)], b[: len(other.counts)] = self.counts, other.counts
        return bool(np.array_equal(a, b))

    # ------------------------------------------------------------------ queries
    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def buckets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lowest value, highest value, count) of every non-empty bucket."""
        low, width = _values_of(len(self.counts), self.layout.half_magnitude)
        nz = np.nonzero(self.counts)[0]
        return low[nz], low[nz] + width[nz] - 1, self.counts[nz]

    def value_at_percentile(self, q: float) -> int | None:
        """HdrHistogram's percentile (q in 0..100); None when empty."""
        return self.values_at_percentiles([q])[0]

    def values_at_percentiles(self, qs) -> list[int | None]:
        total = self.total
        if total == 0:
            return [None for _ in qs]
        lo, hi, cnt = self.buckets()
        cum = np.cumsum(cnt)
        out: list[int | None] = []
        for q in qs:
            target = max(int(min(q, 100.0) * total / 100 + 0.5), 1)
            i = int(np.searchsorted(cum, target, side="left"))
            out.append(int(hi[i]) if q else int(lo[i]))
        return out

    def mean(self) -> float:
        lo, hi, cnt = self.buckets()
        mid = lo + (hi - lo + 1) // 2  # HdrHistogram's median-equivalent value
        return float((mid * cnt).sum() / cnt.sum()) if len(cnt) else 0.0

    def stddev(self) -> float:
        lo, hi, cnt = self.buckets()
        if not len(cnt):
            return 0.0
        mid = (lo + (hi - lo + 1) // 2).astype(float)
        dev = mid - self.mean()
        return float(math.sqrt((dev * dev * cnt).sum() / cnt.sum()))

    # ------------------------------------------------------------------ V2 encoding
    def encode(self) -> str:
        """Base64 of the compressed V2 encoding (what an interval log line carries)."""
        used = np.nonzero(self.counts)[0]
        counts = self.counts[: used[-1] + 1] if len(used) else self.counts[:0]
        payload = _zigzag_runs(counts)
        highest = max(self.layout.highest, 2)
        raw = _HEADER.pack(_ENCODING_COOKIE, len(payload), 0, self.layout.sig_figs, 1, highest, 1.0) + payload
        packed = zlib.compress(raw)
        return base64.b64encode(struct.pack(">ii", _COMPRESSED_COOKIE, len(packed)) + packed).decode()

    @classmethod
    def decode(cls, text: str | bytes, source: str = "<histogram>") -> "Histogram":
        try:
            blob = base64.b64decode(text, validate=True)
            cookie, length = struct.unpack_from(">ii", blob)
            if cookie & ~0xF0 != _COMPRESSED_COOKIE & ~0xF0:
                raise DataError(source, 0, f"not a compressed V2 histogram (cookie {cookie:#x})")
            raw = zlib.decompress(blob[8: 8 + length])
            cookie, plen, _norm, sig, lowest, highest, _ratio = _HEADER.unpack_from(raw)
        except (ValueError, struct.error, zlib.error) as exc:
            raise DataError(source, None, f"bad HdrHistogram encoding: {exc}") from None
        if cookie & ~0xF0 != _ENCODING_COOKIE & ~0xF0:
            raise DataError(source, 8, f"not a V2 histogram payload (cookie {cookie:#x})")
        if lowest != 1:
            raise DataError(source, 24, f"lowest discernible value {lowest}: hftlab reads 1 (ns) only")
        h = cls(sig, highest)
        counts = _unzigzag_runs(raw[_HEADER.size: _HEADER.size + plen], source)
        if len(counts) > len(h.counts):
            raise DataError(source, None, "more buckets than the highest trackable value allows")
        h.counts[: len(counts)] = counts
        lo, hi, _ = h.buckets()
        if len(lo):
            h.min, h.max = int(lo[0]), int(hi[-1])
        return h


def _zigzag_runs(counts: np.ndarray) -> bytes:
    """Counts as ZigZag LEB128 varints; a run of k > 1 empty buckets is written as -k."""
    out = bytearray()
    i = 0
    nz = np.flatnonzero(counts)
    for j in nz:
        gap = int(j) - i
        if gap == 1:
            _varint(out, 0)
        elif gap > 1:
            _varint(out, -gap)
        _varint(out, int(counts[j]))
        i = int(j) + 1
    return bytes(out)


def _varint(out: bytearray, v: int) -> None:
    z = ((v << 1) ^ (v >> 63)) & 0xFFFFFFFFFFFFFFFF
    for _ in range(8):
        if z < 0x80:
            out.append(z)
            return
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z & 0xFF)  # ninth byte: the last 8 bits, no continuation flag


def _unzigzag_runs(data: bytes, source: str) -> np.ndarray:
    vals: list[int] = []
    pos, n = 0, len(data)
    while pos < n:
        z, shift = 0, 0
        for k in range(9):
            if pos >= n:
                raise DataError(source, pos, "truncated varint")
            b = data[pos]
            pos += 1
            if k == 8:
                z |= b << 56
                break
            z |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        v = (z >> 1) ^ -(z & 1)
        if v < 0:
            vals.extend([0] * -v)
        else:
            vals.append(v)
    return np.array(vals, np.int64)


# ---------------------------------------------------------------------- interval log
@dataclass
class Interval:
    """One line of an interval log: start (s, from the log's base time), length (s), histogram."""

    start_s: float
    length_s: float
    histogram: Histogram
    tag: str | None = None


@dataclass
class IntervalLog:
    intervals: list[Interval] = field(default_factory=list)
    start_time_s: float | None = None
    base_time_s: float | None = None

    def total(self) -> Histogram | None:
        out = None
        for iv in self.intervals:
            out = iv.histogram.copy() if out is None else out.add(iv.histogram)
        return out


def write_log(path: str | os.PathLike[str], intervals: list[Interval], *, start_time_s: float = 0.0,
              comment: str | None = None, max_unit_ratio: float = 1e6) -> Path:
    """Write an HdrHistogram interval log (format 1.3). Interval_Max is the
    interval's maximum divided by max_unit_ratio (ns -> ms by default)."""
    from hftlab.util.io import AtomicPath

    lines = ["#[Histogram log format version 1.3]"]
    if comment:
        lines.append(f"#{comment}")
    lines += [f"#[StartTime: {start_time_s:.3f} (seconds since epoch)]",
              f"#[BaseTime: {start_time_s:.3f} (seconds since epoch)]",
              '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"']
    for iv in intervals:
        tag = f"Tag={iv.tag}," if iv.tag else ""
        mx = (iv.histogram.max or 0) / max_unit_ratio
        lines.append(f"{tag}{iv.start_s:.3f},{iv.length_s:.3f},{mx:.3f},{iv.histogram.encode()}")
    with AtomicPath(Path(path)) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return Path(path)


def read_log(path: str | os.PathLike[str]) -> IntervalLog:
    """Read an HdrHistogram interval log (versions 1.2 and 1.3)."""
    log = IntervalLog()
    offset = 0
    for line in Path(path).read_text().splitlines(keepends=True):
        text = line.strip()
        if text.startswith("#[StartTime:"):
            log.start_time_s = float(text.split()[1])
        elif text.startswith("#[BaseTime:"):
            log.base_time_s = float(text.split()[1])
        elif text and not text.startswith("#") and not text.startswith('"'):
            tag = None
            if text.startswith("Tag="):
                tag, text = text[4:].split(",", 1)
            parts = text.split(",")
            if len(parts) != 4:
                raise DataError(path, offset, f"interval line with {len(parts)} fields, 4 expected")
            try:
                start, length = float(parts[0]), float(parts[1])
            except ValueError:
                raise DataError(path, offset, "interval timestamps are not numbers") from None
            log.intervals.append(Interval(start, length, Histogram.decode(parts[3], str(path)), tag))
        offset += len(line.encode())
    return log
