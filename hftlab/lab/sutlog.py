"""Decode the SUT's framed serial dump (kernel_src/core/tslog.h) into Arrow.

HFT-OS and the baselines end a run by writing one block:

    @@HFTDUMP 2 BEGIN
    C <name> <value>        counters
    R <112 hex digits>      struct tslog_rec, little-endian
    @@HFTDUMP END records=<n> crc32=<hex>

Anything around the block (boot messages, other console output) is ignored.
The number after @@HFTDUMP is the format version: this module reads version
2 (56-byte records with tsc_doorbell and ptp_ns) and refuses any other with
a DataError naming it (version 1, 40-byte records without the doorbell
stamp, came from SUTs built before the split of the internal span).
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

__all__ = ["SutLog", "parse_dump", "read_dump", "boot_phases", "REC_DTYPE", "DUMP_VERSION"]

#: The dump format this module reads (TSLOG_DUMP_VERSION in kernel_src/core/tslog.h).
DUMP_VERSION = 2
_BEGIN = re.compile(rb"\n@@HFTDUMP (\S+) BEGIN\n")
_END = re.compile(rb"@@HFTDUMP END records=(\d+) crc32=([0-9a-f]{8})\n")

#: struct tslog_rec (56 bytes, little-endian on x86_64)
REC_DTYPE = np.dtype([("trigger_seq", "<u8"), ("tsc_rx", "<u8"), ("tsc_doorbell", "<u8"),
                      ("tsc_tx", "<u8"), ("ptp_ns", "<u8"),
                      ("price", "<u4"), ("shares", "<u4"), ("stock_locate", "<u2"),
                      ("side", "S1"), ("flags", "u1"), ("pad", "<u4")])
assert REC_DTYPE.itemsize == 56


@dataclass
class SutLog:
    """A decoded dump: counters by name and the per-order records."""

    counters: dict[str, int]
    #: trigger_seq, tsc_rx, tsc_doorbell, tsc_tx, ptp_ns (0: none), price, shares,
    #: stock_locate, side
    records: pa.Table

    @property
    def tsc_hz(self) -> int | None:
        return self.counters.get("tsc_hz")


def parse_dump(data: bytes, *, source: str = "<serial>") -> SutLog:
    """Find and decode the last complete dump block in console output."""
    begins = list(_BEGIN.finditer(data))
    if not begins:
        raise DataError(source, None, "no @@HFTDUMP block (the SUT did not finish its run)")
    begin = begins[-1]
    version, body_at = begin.group(1), begin.end()
    if version != str(DUMP_VERSION).encode():
        raise DataError(source, begin.start() + 1,
                        f"@@HFTDUMP format version {version.decode('ascii', 'replace')!r} is not "
                        f"supported: this hftlab reads version {DUMP_VERSION} (rebuild the SUT "
                        "from this tree, or read the dump with the hftlab that wrote it)")
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
        "tsc_doorbell": pa.array(rec["tsc_doorbell"]),
        "tsc_tx": pa.array(rec["tsc_tx"]),
        "ptp_ns": pa.array(rec["ptp_ns"]),
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


_REFUSED = re.compile(rb"trade: first refused frame: #(\d+) len (\d+) status (-?\d+) bytes ([0-9a-f]*)")
#: kernel_src/core/net.h enum net_status; 0 (NET_OK) there: a good frame not to ip_self
NET_STATUS = {0: "not to ip_self", -1: "short", -3: "IP version", -4: "IP header length",
              -5: "IP checksum", -6: "IP total length", -7: "fragment", -8: "not UDP",
              -9: "UDP length"}


def refused_frame(console: bytes) -> dict | None:
    """The OS's first refused IPv4 frame (trade.c, `trade: first refused
    frame`): its number among the frames received, length, why, and its
    first bytes in hex; None if it refused none."""
    m = _REFUSED.search(console)
    if m is None:
        return None
    status = int(m.group(3))
    return {"frame": int(m.group(1)), "len": int(m.group(2)),
            "why": NET_STATUS.get(status, f"status {status}"), "head_hex": m.group(4).decode()}
