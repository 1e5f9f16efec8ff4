"""hftlab.model.microbench: the cffi core's cost per ITCH message, by message type.

`ns_per_message(dataset)` splits an ITCH 5.0 file by message type and times,
for each type, (a) hftlab.model.core.decode_itch on a buffer holding only that
type (the C decoder plus the Arrow columns) and (b) the whole engine path
(MoldUDP64 unpack, decode, book, strategy, risk, OUCH) fed only that type.
The file needs real 2-byte length prefixes (hftlab.model.synth writes such files).
(b) is the type's cost out of context: a delete whose add was never seen
misses in the book, so read it as an order of magnitude, and the whole-feed
row as the figure that matters.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from hftlab.model import core
from hftlab.errors import ConfigError, DataError

__all__ = ["ns_per_message"]


def _split_by_type(data: bytes, limit: int | None, source: str) -> dict[str, bytearray]:
    out: dict[str, bytearray] = {}
    pos, n, seen = 0, len(data), 0
    while pos + 2 <= n and (limit is None or seen < limit):
        length = int.from_bytes(data[pos: pos + 2], "big")
        if length == 0 or pos + 2 + length > n:
            raise DataError(source, pos, f"bad frame length {length}")
        kind = chr(data[pos + 2])
        out.setdefault(kind, bytearray()).extend(data[pos: pos + 2 + length])
        pos += 2 + length
        seen += 1
    return out


def _best_of(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        fn()
        best = min(best, time.perf_counter_ns() - t0)
    return best


def _engine_ns(path: Path, reps: int) -> float:
    """Best time of feed_file alone; a fresh engine each time, built outside the clock."""
    best = float("inf")
    for _ in range(reps):
        eng = core.Engine()
        t0 = time.perf_counter_ns()
        eng.feed_file(path)
        best = min(best, time.perf_counter_ns() - t0)
    return best


def ns_per_message(dataset: str | os.PathLike[str], *, messages: int | None = None, reps: int = 3) -> pa.Table:
    """One row per ITCH message type, plus "all" (the feed in its order):
    messages, decode_ns_per_msg, engine_ns_per_msg (best of reps)."""
    if reps < 1:
        raise ConfigError("reps must be >= 1")
    src = Path(dataset)
    data = src.read_bytes()
    parts = _split_by_type(data, messages, str(src))
    rows = {"msg_type": [], "messages": [], "decode_ns_per_msg": [], "engine_ns_per_msg": []}
    with tempfile.TemporaryDirectory(prefix="hftlab-mb-") as tmp:
        whole = Path(tmp) / "all.itch"
        whole.write_bytes(b"".join(bytes(b) for b in parts.values()) if messages else data)
        items = sorted(parts.items()) + [("all", whole.read_bytes())]
        for kind, buf in items:
            buf = bytes(buf)
            path = Path(tmp) / f"{kind}.itch"
            path.write_bytes(buf)
            n = core.decode_itch(buf).num_rows
            dec = _best_of(lambda: core.decode_itch(buf), reps)
            eng = _engine_ns(path, reps)
            rows["msg_type"].append(kind)
            rows["messages"].append(n)
            rows["decode_ns_per_msg"].append(dec / n if n else None)
            rows["engine_ns_per_msg"].append(eng / n if n else None)
    return pa.table(rows)
