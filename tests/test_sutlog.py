"""The SUT's dump format (kernel_src/core/tslog.h) as hftlab.lab.sutlog reads
it: records written by the C tslog (the cffi build of the source HFT-OS and
the baselines link) come back field for field, and a dump of another format
version, older or newer, is refused with an error naming the version.
"""
from __future__ import annotations

import zlib

import pytest

from hftlab._core import ffi, lib
from hftlab.errors import DataError
from hftlab.lab import sutlog


def _c_dump(recs: list[dict], counters: dict[str, int], cap: int = 8) -> bytes:
    log = ffi.new("struct tslog *")
    ring = ffi.new("struct tslog_rec[]", cap)
    lib.tslog_init(log, ring, cap)
    for r in recs:
        slot = lib.tslog_next(log)
        for k, v in r.items():
            setattr(slot, k, v)
    names = [ffi.new("char[]", k.encode()) for k in counters]
    values = ffi.new("uint64_t[]", list(counters.values()))
    buf = ffi.new("char[]", 1 << 16)
    n = lib.hc_tslog_dump(buf, 1 << 16, log, ffi.new("char *[]", names), values, len(counters))
    return ffi.buffer(buf, n)[:]


def _block(version: str, lines: list[bytes]) -> bytes:
    body = b"".join(l + b"\n" for l in lines)
    return (b"boot noise\n\n@@HFTDUMP " + version.encode() + b" BEGIN\n" + body
            + b"@@HFTDUMP END records=%d crc32=%08x\n" % (sum(l.startswith(b"R ") for l in lines),
                                                         zlib.crc32(body)))


def test_records_round_trip_with_the_doorbell_and_ptp_stamps():
    recs = [dict(trigger_seq=7 + i, tsc_rx=1000 * i + 1, tsc_doorbell=1000 * i + 600,
                 tsc_tx=1000 * i + 650, ptp_ns=(1_700_000_000_123_456_789 + i) if i % 2 else 0,
                 price=1_000_000 + i, shares=100 * (i + 1), locate=13, side=b"BS"[i % 2:i % 2 + 1],
                 ) for i in range(11)]  # 11 into a ring of 8: the oldest 3 overwritten
    data = _c_dump(recs, {"tsc_hz": 2_445_000_000, "os_orders_sent": 11})
    assert data.startswith(b"\n@@HFTDUMP %d BEGIN\n" % sutlog.DUMP_VERSION)
    log = sutlog.parse_dump(data)
    assert log.tsc_hz == 2_445_000_000 and log.counters["os_orders_sent"] == 11
    t = log.records.to_pydict()
    kept = recs[3:]
    assert t["trigger_seq"] == [r["trigger_seq"] for r in kept]
    for col in ("tsc_rx", "tsc_doorbell", "tsc_tx", "ptp_ns", "price", "shares"):
        assert t[col] == [r[col] for r in kept], col
    assert t["stock_locate"] == [13] * 8 and t["side"] == [r["side"].decode() for r in kept]


@pytest.mark.parametrize("version", ["1", "3", "x"])
def test_other_format_versions_are_refused_by_name(version):
    rec = b"R " + b"00" * (40 if version == "1" else sutlog.REC_DTYPE.itemsize)
    data = _block(version, [b"C tsc_hz 1000", rec])
    with pytest.raises(DataError, match=rf"format version '{version}' is not supported.*"
                                        rf"reads version {sutlog.DUMP_VERSION}"):
        sutlog.parse_dump(data, source="serial.log")


def test_a_record_of_the_old_size_in_a_new_block_is_refused():
    data = _block(str(sutlog.DUMP_VERSION), [b"C tsc_hz 1000", b"R " + b"00" * 40])
    with pytest.raises(DataError, match="unexpected line"):
        sutlog.parse_dump(data)


def test_the_last_block_counts():
    """A console holding an old run's block and then a new one reads the new one."""
    old = _block("1", [b"C tsc_hz 1"])
    new = _c_dump([dict(trigger_seq=1, tsc_rx=1, tsc_doorbell=2, tsc_tx=3)], {"tsc_hz": 5})
    assert sutlog.parse_dump(old + new).tsc_hz == 5
    with pytest.raises(DataError, match="version '1'"):
        sutlog.parse_dump(new + old)
