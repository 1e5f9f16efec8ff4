"""Decode the SUT's framed serial dump (kernel_src/core/tslog.h) into Arrow.

HFT-OS and the baselines end a run by writing one block:

    @@HFTDUMP 1 BEGIN
    C <name> <value>        counters
    R <80 hex digits>       struct tslog_rec, little-endian
    @@HFTDUMP END records=<n> crc32=<hex>

Anything around the block (boot messages, other console output) is ignored.
The CRC-32 and the record count are checked: a block that was cut short or
garbled raises DataError naming the file and byte offset, it is never
half-used.
"""
from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from hftlab.errors import DataError

__all__ = ["SutLog", "parse_dump", "read_dump", "boot_phases", "REC_DTYPE"]

_BEGIN = b"\n@@HFTDUMP 1 BEGIN\n"
_END = re.compile(rb"@@HFTDUMP END records=(\d+) crc32=([0-9a-f]{8})\n")

#: struct tslog_rec (40 bytes, little-endian on x86_64)
REC_DTYPE = np.dtype([("trigger_seq", "<u8"), ("tsc_rx", "<u8"), ("tsc_tx", "<u8"),
                      ("price", "<u4"), ("shares", "<u4"), ("stock_locate", "<u2"),
                      ("side", "S1"), ("flags", "u1"), ("pad", "<u4")])
assert REC_DTYPE.itemsize == 40


@dataclass
class SutLog:
    """A decoded dump: counters by name and the per-order records."""

    counters: dict[str, int]
    records: pa.Table  #: trigger_seq, tsc_rx, tsc_tx, price, shares, stock_locate, side

    @property
    def tsc_hz(self) -> int | None:
        return self.counters.get("tsc_hz")


def parse_dump(data: bytes, *, source: str = "<serial>") -> SutLog:
    """Find and decode the last complete dump block in console output."""
    start = data.rfind(_BEGIN)
    if start < 0:
        raise DataError(source, None, "no @@HFTDUMP block (the SUT did not finish its run)")
    body_at = start + len(_BEGIN)
    m = _END.search(data, body_at)
    if m is None:
        raise DataError(source, body_at, "@@HFTDUMP block has no END line (output cut short)")
    body = data[body_at: m.start()]
    n_rec, crc = int(m.group(1)), int(m.group(2), 16)
    if zlib.crc32(body) != crc:
        raise DataError(source, body_at, f"@@HFTDUMP CRC-32 mismatch: block says {crc:08x}, "
                        f"content gives {zlib.crc32(body):08x}")
    counters: dict[str, int] = {}
    hexrecs: list[bytes] = []
    off = body_at
    for line in body.split(b"\n")[:-1]:
        if line.startswith(b"C "):
            parts = line.split(b" ")
            if len(parts) != 3 or not parts[2].isdigit():
                raise DataError(source, off, f"bad counter line {line[:60]!r}")
            counters[parts[1].decode("ascii")] = int(parts[2])
        elif line.startswith(b"R ") and len(line) == 2 + 2 * REC_DTYPE.itemsize:
            hexrecs.append(line[2:])
        else:
            raise DataError(source, off, f"unexpected line in @@HFTDUMP block {line[:60]!r}")
        off += len(line) + 1
    if len(hexrecs) != n_rec:
        raise DataError(source, body_at, f"@@HFTDUMP END says {n_rec} records, block has {len(hexrecs)}")
    raw = bytes.fromhex(b"".join(hexrecs).decode("ascii")) if hexrecs else b""
    rec = np.frombuffer(raw, REC_DTYPE)
    table = pa.table({
        "trigger_seq": pa.array(rec["trigger_seq"]),
        "tsc_rx": pa.array(rec["tsc_rx"]),
        "tsc_tx": pa.array(rec["tsc_tx"]),
        "price": pa.array(rec["price"].astype(np.int64)),
        "shares": pa.array(rec["shares"].astype(np.int64)),
        "stock_locate": pa.array(rec["stock_locate"]),
        "side": pa.array([s.decode("ascii", "replace") for s in rec["side"]], pa.string()),
    })
    return SutLog(counters=counters, records=table)


def read_dump(path: str | os.PathLike[str]) -> SutLog:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DataError(p, None, f"cannot read: {exc.strerror}") from None
    return parse_dump(data, source=str(p))


_PHASE = re.compile(rb"boot: phase (\S+) tsc=(\d+)")


def boot_phases(console: bytes, tsc_hz: int | None) -> dict[str, float]:
    """The OS's `boot: phase NAME tsc=N` lines as ms after the first one."""
    stamps = [(m.group(1).decode(), int(m.group(2))) for m in _PHASE.finditer(console)]
    if not stamps or not tsc_hz:
        return {}
    t0 = stamps[0][1]
    return {name: round((t - t0) / tsc_hz * 1e3, 3) for name, t in stamps}
