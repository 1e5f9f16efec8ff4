"""Timestamps are exact or flagged, never wrong (issue 11, item 1).

Crafted pcap (microsecond and nanosecond magic) and pcapng files (every
if_tsresol form: the default, powers of 10 and of 2; if_tsoffset), in both
byte orders, hold times at and beyond what int64 ns holds and out-of-range
sub-second fields. The expected value of every packet is computed here with
Python's unbounded integers from the raw fields: exact ns when it fits int64,
else null ts_ns with the reason in ts_error. tcpdump's own test captures are
checked against its .out files (which print "(invalid us)"-style markers).
"""
from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from hftlab import capture
from hftlab.errors import DataError

from repo_paths import CAPTURES as DATA

TCPDUMP = DATA / "other" / "tcpdump-timestamps"
NS = 10**9
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
FRAME = bytes(range(60))                     # an Ethernet frame (payload irrelevant here)
U32 = 2**32 - 1


# ---------------------------------------------------------------------- crafted files
def pcap_file(order: str, nano: bool, records: list[tuple[int, int]]) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)
    for sec, frac in records:
        out += struct.pack(order + "IIII", sec, frac, len(FRAME), len(FRAME)) + FRAME
    return out


def block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def shb(order: str) -> bytes:
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(order: str, tsresol: int | None, tsoffset: int = 0) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += option(order, 9, bytes([tsresol]))
    if tsoffset:
        opts += option(order, 14, struct.pack(order + "q", tsoffset))
    if opts:
        opts += option(order, 0, b"")
    return block(order, 1, struct.pack(order + "HHI", 1, 0, 0) + opts)


def epb(order: str, iface: int, t: int) -> bytes:
    return block(order, 6, struct.pack(order + "IIIII", iface, t >> 32, t & U32, len(FRAME), len(FRAME)) + FRAME)


def expected_pcapng(t: int, tsresol: int | None, tsoffset: int) -> tuple[int | None, str | None]:
    """ns = floor(t * 10^9 / units per s) + tsoffset * 10^9, exactly; null and a reason if it
    does not fit int64 (values within 3 of int64 min are the reader's sentinels: year 1677)."""
    units = 10**6 if tsresol is None else (2 ** (tsresol & 0x7F) if tsresol & 0x80 else 10 ** tsresol)
    ns = t * NS // units + tsoffset * NS
    if I64_MIN + 3 <= ns <= I64_MAX:
        return ns, None
    return None, "overflow_int64_ns"


# timestamps in units: small, around 2^63 ns, u64 max and friends
UNIT_VALUES = [0, 1, 1_700_000_000_123_456, 2**32 - 1, 2**32, 2**62, 2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1]


def boundary_units(tsresol: int | None) -> list[int]:
    """Unit counts right at and past the last representable ns (2262-04-11T23:47:16.854775807)."""
    units = 10**6 if tsresol is None else (2 ** (tsresol & 0x7F) if tsresol & 0x80 else 10 ** tsresol)
    last = ((I64_MAX + 1) * units - 1) // NS        # largest t with floor(t * 10^9 / units) <= I64_MAX
    return [v for v in (last - 1, last, last + 1, last + 2) if 0 <= v < 2**64]


TSRESOLS = [None, 0, 1, 3, 6, 9, 10, 12, 15, 19, 0x80, 0x80 | 1, 0x80 | 10, 0x80 | 20, 0x80 | 30,
            0x80 | 32, 0x80 | 33, 0x80 | 40, 0x80 | 63]


def resol_id(r: int | None) -> str:
    return "default" if r is None else (f"2^-{r & 0x7F}" if r & 0x80 else f"10^-{r}")


@pytest.mark.parametrize("order", ["<", ">"], ids=["le", "be"])
@pytest.mark.parametrize("tsresol", TSRESOLS, ids=resol_id)
def test_pcapng_every_tsresol_exact_or_overflow(tmp_path: Path, order: str, tsresol: int | None) -> None:
    values = sorted(set(UNIT_VALUES + boundary_units(tsresol)))
    offsets = [0, 1_000_000_000, -1_000_000_000, -(2**62)]
    data = shb(order) + b"".join(idb(order, tsresol, off) for off in offsets)
    want = []
    for t in values:
        for k, off in enumerate(offsets):
            data += epb(order, k, t)
            want.append(expected_pcapng(t, tsresol, off))
    path = tmp_path / "t.pcapng"
    path.write_bytes(data)
    cap = capture.read(path)
    got = list(zip(cap.packets.column("ts_ns").to_pylist(), cap.packets.column("ts_error").to_pylist()))
    assert got == want
    n_bad = sum(1 for _, e in want if e)
    assert cap.metadata["ts_errors"] == ({"overflow_int64_ns": n_bad} if n_bad else {})
    assert n_bad and n_bad < len(want)          # both kinds present in every file


@pytest.mark.parametrize("order", ["<", ">"], ids=["le", "be"])
@pytest.mark.parametrize("nano", [False, True], ids=["us", "ns"])
def test_pcap_subsecond_out_of_range_is_flagged(tmp_path: Path, order: str, nano: bool) -> None:
    lim = NS if nano else 10**6
    records = [(1418145369, lim - 1), (1418145370, lim), (1418145370, 2**31), (U32, lim - 1), (U32, U32),
               (0, 0), (2**31, 0), (1, lim + 1)]
    path = tmp_path / "t.pcap"
    path.write_bytes(pcap_file(order, nano, records))
    cap = capture.read(path)
    mult = NS // lim
    want = [(s * NS + f * mult, None) if f < lim else (None, "subsecond_out_of_range") for s, f in records]
    got = list(zip(cap.packets.column("ts_ns").to_pylist(), cap.packets.column("ts_error").to_pylist()))
    assert got == want
    assert cap.metadata["ts_errors"] == {"subsecond_out_of_range": 4}
    assert got[3][0] == 4294967295 * NS + (lim - 1) * mult     # 2106: unsigned seconds, exact
    # the other columns of a flagged packet are decoded as usual
    assert cap.packets.column("caplen").to_pylist() == [len(FRAME)] * len(records)


def test_strict_names_file_and_offset_and_partial_keeps_packets_before(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    path.write_bytes(pcap_file("<", False, [(10, 1), (11, 2), (12, 1_000_000), (13, 3)]))
    off = 24 + 2 * (16 + len(FRAME))           # the third record
    with pytest.raises(DataError) as ei:
        capture.read(path, strict=True)
    assert ei.value.offset == off and str(path) in str(ei.value) and "subsecond_out_of_range" in str(ei.value)
    cap = capture.read(path, strict=True, partial=True)
    assert cap.packets.column("ts_ns").to_pylist() == [10 * NS + 1000, 11 * NS + 2000]
    assert cap.error is not None and cap.error.offset == off
    # pcapng: the offset is the Enhanced Packet Block's
    data = shb("<") + idb("<", 9) + epb("<", 0, 5) + epb("<", 0, 2**64 - 1)
    p2 = tmp_path / "t.pcapng"
    p2.write_bytes(data)
    with pytest.raises(DataError, match="overflow_int64_ns") as ei:
        capture.read(p2, strict=True)
    assert ei.value.offset == len(data) - len(epb("<", 0, 0))


def test_cli_warns_and_strict_fails(tmp_path: Path) -> None:
    from hftlab.cli.ingest import ingest_cmd
    path = tmp_path / "t.pcap"
    path.write_bytes(pcap_file(">", True, [(10, 1), (11, NS), (12, 2**31 + 5), (13, 3)]))
    res = CliRunner().invoke(ingest_cmd, [str(path), "--out", str(tmp_path / "o.parquet")])
    assert res.exit_code == 0, res.output
    assert re.search(r"warning: 2 packet\(s\) with an invalid timestamp.*subsecond_out_of_range=2", res.output)
    import pyarrow.parquet as pq
    t = pq.read_table(tmp_path / "o.parquet")
    assert t.column("ts_ns").null_count == 2 and t.column("ts_error").to_pylist()[1] == "subsecond_out_of_range"
    res = CliRunner().invoke(ingest_cmd, [str(path), "--strict"])
    assert res.exit_code == 2
    assert f"{path}: byte {24 + 16 + len(FRAME)}:" in res.output and "subsecond_out_of_range" in res.output


# ---------------------------------------------------------------------- tcpdump's captures
def tcpdump_times(out: Path) -> list[tuple[str, bool]]:
    """(printed time, invalid marker) per packet line of a tcpdump .out file."""
    rows = []
    for line in out.read_text().splitlines():
        m = re.match(r"\s*\d+\s+((?:\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d\.\d+)( \(invalid [un]s\))?", line)
        assert m, line
        rows.append((m.group(1), m.group(2) is not None))
    return rows


def format_like(ns: int, text: str) -> str:
    import datetime as dt
    digits = len(text.rpartition(".")[2])
    t = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=ns // NS)
    frac = f"{ns % NS:09d}"[:digits]
    return t.strftime("%Y-%m-%d %H:%M:%S" if "-" in text else "%H:%M:%S") + "." + frac


@pytest.mark.parametrize("name", ["timestamp_invalid_micro.pcap", "timestamp_invalid_nano.pcap",
                                  "time_2038_max.pcap", "time_2038_overflow.pcap", "time_2106_max.pcap",
                                  "time_2106_overflow.pcapng", "time_2107.pcapng"])
def test_tcpdump_timestamp_captures(name: str) -> None:
    path = TCPDUMP / name
    cap = capture.read(path)
    rows = tcpdump_times(path.with_suffix(".out"))
    ts = cap.packets.column("ts_ns").to_pylist()
    errs = cap.packets.column("ts_error").to_pylist()
    assert len(ts) == len(rows)
    for (text, invalid), t, e in zip(rows, ts, errs):
        if invalid:
            assert t is None and e == "subsecond_out_of_range"
        else:
            assert e is None and format_like(t, text) == text
    assert sum(inv for _, inv in rows) == sum(cap.metadata["ts_errors"].values())
