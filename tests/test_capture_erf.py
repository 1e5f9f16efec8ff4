"""Endace ERF: hftlab.capture._erf against tshark's reading of the same files
and against the pcaps they were converted from.

captures/erf/ holds ERF files Wireshark's own ERF writer made from the
repository's pcaps (captures/erf/README.md): Ethernet records with a Host ID
extension header, the 2-byte pad, a synthesised FCS, 8-byte alignment and
META (provenance) records. Records the writer does not produce (several
extension headers, loss counters, colour types, IPv4 records, bad lengths,
other types) are written byte by byte here, and each hand-made file that is
well formed is read by tshark too. Timestamps are compared as exact integers
(tshark's decimal string parsed digit by digit).

Until the reader dispatches to the ERF scanner these tests call the module's
functions and build the packets table from the index with the reader's own
decoder and table builder (`erf_table` below mirrors CaptureReader._decode).
"""
from __future__ import annotations

import shutil
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from hftlab.capture import _decode as D
from hftlab.capture import _erf as E
from hftlab.capture._payload import itch_table
from hftlab.capture._table import packet_batch, ptp_table
from hftlab.errors import DataError

from repo_paths import CAPTURES

ERF_DIR = CAPTURES / "erf"
CONVERTED = {   # ERF file -> the pcap it was made from (captures/erf/README.md)
    "ritch-packed.erf": CAPTURES / "moldudp64" / "ritch-packed.pcap",
    "ritch-single-vlan100.erf": CAPTURES / "moldudp64" / "ritch-single-vlan100.pcap",
    "ptp_ethernet.erf": CAPTURES / "ptp" / "tcpdump" / "ptp_ethernet.pcap",
}
# the layer columns an ERF record must decode to exactly as its source pcap frame
LAYER_COLUMNS = ["linktype", "eth_src", "eth_dst", "ethertype", "vlan", "vlan_inner", "ip_version",
                 "ip_src", "ip_dst", "ip_proto", "ip_fragment", "src_port", "dst_port",
                 "payload_len", "app", "mold_session", "mold_seq", "mold_count"]


# ----------------------------------------------------------------------------- helpers
def need_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: `make setup` (scripts/setup-system.sh) installs it")
    return path


def epoch_ns(text: str) -> int:
    sec, _, frac = text.partition(".")
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])


def tshark(path: Path, fields: list[str]) -> list[dict[str, str]]:
    cmd = [need_tool("tshark"), "-r", str(path), "-n", "-T", "fields", "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [dict(zip(fields, line.split("\t"))) for line in out.splitlines()]


TSHARK_FIELDS = ["frame.time_epoch", "frame.len", "frame.cap_len", "erf.types.type", "erf.flags.cap",
                 "erf.lctr", "erf.color", "erf.flags"]


def scan(buf: np.ndarray, maxn: int = 1 << 16, pos: int = 0):
    """Run the scanner once; (index dict, n, next pos, status, skipped)."""
    idx = {"off": np.empty(maxn, np.int64), "ts": np.empty(maxn, np.int64),
           "cap": np.empty(maxn, np.int64), "orig": np.empty(maxn, np.int64),
           "iface": np.zeros(maxn, np.int32), "lt": np.empty(maxn, np.int32), **E.alloc_extra(maxn)}
    skipped = np.zeros(128, np.int64)
    n, pos, st = E.scan_erf(buf, pos, buf.size, maxn, idx["off"], idx["ts"], idx["cap"], idx["orig"],
                            idx["iface"], idx["lt"], idx["erf_lctr"], idx["erf_type"], idx["erf_flags"],
                            idx["erf_ext"], skipped)
    return {k: v[:n] for k, v in idx.items()}, n, pos, st, skipped


def load(path: Path) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), np.uint8)


def erf_table(buf: np.ndarray, idx: dict) -> tuple[pa.Table, pa.Table]:
    """packets and ITCH tables from an index, as CaptureReader._decode builds them."""
    packets, itch, _ = erf_tables(buf, idx)
    return packets, itch


def erf_tables(buf: np.ndarray, idx: dict) -> tuple[pa.Table, pa.Table, pa.Table]:
    """packets, ITCH and PTP tables from an index, as CaptureReader._decode builds them."""
    n = len(idx["ts"])
    # the columns the reader adds before decoding (interface number within its
    # section, section, timestamp error code): ERF has one section, its port
    # number as interface, and no timestamp that int64 ns cannot hold
    idx = {**idx, "if_id": idx["iface"], "section": np.zeros(n, np.int32), "ts_err": np.zeros(n, np.int8)}
    lay = D.Layers(n)
    lay.run(buf, idx["off"], idx["cap"], idx["lt"], idx["ts"], n, np.zeros(0, np.int64), 0, -2)
    packets = packet_batch(buf, idx, lay, 0)
    return pa.Table.from_batches([packets]), itch_table(buf, idx["off"], packets, lay), ptp_table(packets, lay)


def record(data: bytes, *, sec: int = 1_700_000_000, frac: int = 0, typ: int = E.T_ETH, flags: int = 0x04,
           lctr: int = 0, wlen: int | None = None, ext: list[int] = (), rlen: int | None = None,
           pad: bytes | None = None, align: bool = True) -> bytes:
    """One ERF record: header, extension headers (8-byte words given as ints;
    the 'more' bit is set on all but the last), the Ethernet pad for Ethernet
    types, data, and zero padding to 8 bytes."""
    ehdrs = b""
    for i, word in enumerate(ext):
        more = 0x80 if i < len(ext) - 1 else 0
        ehdrs += bytes([(word >> 56) & 0x7F | more]) + (word & ((1 << 56) - 1)).to_bytes(7, "big")
    if pad is None:
        pad = b"\x00\x00" if typ & 0x7F in E.ETH_TYPES else b""
    body = ehdrs + pad + data
    if align:
        body += b"\x00" * (-(E.RECORD_HEADER + len(body)) % 8)
    t = typ | (0x80 if ext else 0)
    rl = E.RECORD_HEADER + len(body) if rlen is None else rlen
    return (struct.pack("<II", frac, sec) + bytes([t, flags])
            + struct.pack(">HHH", rl, lctr, len(data) if wlen is None else wlen) + body)


def eth_udp(payload: bytes, *, src_port: int = 4000, dst_port: int = 5000) -> bytes:
    """An Ethernet/IPv4/UDP frame (checksums zero, which no reader here checks)."""
    udp = struct.pack(">HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])) + udp
    return bytes.fromhex("020000005302" "020000005301" "0800") + ip


def ip_part(frame: bytes) -> bytes:
    return frame[14:]


# ------------------------------------------------------------------- converted captures
@pytest.mark.parametrize("name", sorted(CONVERTED))
def test_converted_file_is_detected(name: str) -> None:
    data = (ERF_DIR / name).read_bytes()
    info = E.parse_erf_header(str(ERF_DIR / name), data[:E.SNIFF_BYTES], len(data))
    assert info is not None
    assert (info["format"], info["type"], info["type_name"]) == ("erf", E.T_ETH, "ETH")
    assert info["extension_headers"] and info["interface"] == 0
    assert info["records_checked"] == E.SNIFF_RECORDS
    # the source pcap is not ERF
    src = CONVERTED[name].read_bytes()
    assert E.parse_erf_header(str(CONVERTED[name]), src[:E.SNIFF_BYTES], len(src)) is None


@pytest.mark.parametrize("name", sorted(CONVERTED))
def test_converted_file_matches_tshark(name: str) -> None:
    path = ERF_DIR / name
    buf = load(path)
    idx, n, pos, st, skipped = scan(buf)
    assert (st, pos) == (E.ST_EOF, buf.size)
    rows = tshark(path, TSHARK_FIELDS)
    meta = [r for r in rows if r["erf.types.type"] == str(E.T_META)]
    frames = [r for r in rows if r["erf.types.type"] != str(E.T_META)]
    assert meta, "Wireshark's writer adds META records; this file was expected to hold some"
    assert E.skipped_types(skipped) == {"META": len(meta)}
    assert n == len(frames)
    assert idx["ts"].tolist() == [epoch_ns(r["frame.time_epoch"]) for r in frames]
    assert idx["orig"].tolist() == [int(r["frame.len"]) for r in frames]
    assert idx["cap"].tolist() == [int(r["frame.cap_len"]) for r in frames]
    assert idx["iface"].tolist() == [int(r["erf.flags.cap"]) for r in frames]
    assert idx["erf_lctr"].tolist() == [int(r["erf.lctr"], 0) for r in frames]
    assert idx["erf_flags"].tolist() == [int(r["erf.flags"], 16) for r in frames]
    assert set(idx["erf_type"].tolist()) == {0x80 | E.T_ETH} and set(idx["erf_ext"].tolist()) == {1}
    assert set(idx["lt"].tolist()) == {1}


def pcap_index(path: Path) -> tuple[np.ndarray, dict]:
    """A reference walk of a classic pcap (either byte order, us or ns): its
    bytes and an index dict like the scanners' (Ethernet link type)."""
    raw = path.read_bytes()
    magic = raw[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    mult = 1 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1000
    assert struct.unpack_from(order + "I", raw, 20)[0] & 0xFFFF == 1, "Ethernet pcaps only"
    pos, rows = 24, []
    while pos < len(raw):
        sec, frac, cap, orig = struct.unpack_from(order + "IIII", raw, pos)
        rows.append((pos + 16, sec * 10**9 + frac * mult, cap, orig))
        pos += 16 + cap
    off, ts, cap, orig = (np.array(c, np.int64) for c in zip(*rows))
    n = len(rows)
    return np.frombuffer(raw, np.uint8), {"off": off, "ts": ts, "cap": cap, "orig": orig,
                                          "iface": np.zeros(n, np.int32), "lt": np.ones(n, np.int32)}


@pytest.mark.parametrize("name", sorted(CONVERTED))
def test_converted_file_has_the_source_frames_and_layers(name: str) -> None:
    """Same timestamps to the ns, same frame bytes (plus the 4-byte FCS the
    ERF writer adds), and the same decoded layers and ITCH messages as the
    source pcap's frames through the same decoder."""
    buf = load(ERF_DIR / name)
    idx, n, _, _, _ = scan(buf)
    sbuf, sidx = pcap_index(CONVERTED[name])
    assert n == len(sidx["ts"])
    assert idx["ts"].tolist() == sidx["ts"].tolist()
    assert (idx["cap"] == sidx["cap"] + 4).all() and (idx["orig"] == sidx["orig"] + 4).all()
    for i in range(n):
        o, so, c = int(idx["off"][i]), int(sidx["off"][i]), int(sidx["cap"][i])
        assert bytes(buf[o:o + c]) == bytes(sbuf[so:so + c]), f"frame {i}"
    packets, itch, ptp = erf_tables(buf, idx)
    spackets, sitch, sptp = erf_tables(sbuf, sidx)
    for col in LAYER_COLUMNS + ["ts_ns"]:
        if col != "payload_len":
            assert packets[col].to_pylist() == spackets[col].to_pylist(), col
    # the frame keeps its FCS (tshark's frame.cap_len counts it too): an IP
    # payload ends where IP says, a payload straight on Ethernet (PTP over
    # 0x88F7) runs to the end of the frame, 4 bytes longer than in the pcap
    ip = np.asarray(packets["ip_version"].is_valid())
    plen, splen = (np.asarray(t["payload_len"].fill_null(-1)) for t in (packets, spackets))
    assert (plen[ip] == splen[ip]).all()
    assert (plen[~ip & (splen >= 0)] == splen[~ip & (splen >= 0)] + 4).all()
    assert (~ip).all() if name == "ptp_ethernet.erf" else ip.all()
    assert packets["ethertype"].null_count == 0                         # layers were decoded
    if name.startswith("ritch"):
        assert set(packets["app"].to_pylist()) == {"moldudp64"} and itch.num_rows > 0
    if name.startswith("ptp"):
        assert ptp.num_rows == n
    for got, want in ((itch, sitch), (ptp, sptp)):
        assert got.num_rows == want.num_rows
        for col in got.column_names:
            assert got[col].to_pylist() == want[col].to_pylist(), col


def test_batches_resume_where_they_stopped() -> None:
    """Scanning in batches of 7 gives the one-shot index, ST_FULL in between."""
    buf = load(ERF_DIR / "ptp_ethernet.erf")
    whole, n, _, _, skipped_all = scan(buf)
    parts, pos, skipped = [], 0, np.zeros(128, np.int64)
    while True:
        idx, k, pos, st, sk = scan(buf, 7, pos)
        skipped += sk
        parts.append(idx)
        if st == E.ST_EOF:
            break
        assert (st, k) == (E.ST_FULL, 7)
    for key in whole:
        assert np.concatenate([p[key] for p in parts]).tolist() == whole[key].tolist(), key
    assert skipped.tolist() == skipped_all.tolist()


# ------------------------------------------------------------------- hand-made records
def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_timestamp_rounding_is_exact_and_matches_tshark(tmp_path: Path) -> None:
    """frac -> ns rounds to nearest, halves up, with the carry into the next
    second; checked against exact rationals and against tshark."""
    fracs = [0, 1, 2, 3, 4294, 4295, 1 << 22, (1 << 22) - 1, (1 << 22) + 1, 1 << 31,
             0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0x12345678, 0xDEADBEEF]
    frame = eth_udp(b"x" * 20)
    data = b"".join(record(frame, sec=1_700_000_000 + i, frac=f) for i, f in enumerate(fracs))
    path = write(tmp_path, "ts.erf", data)
    idx, n, _, st, _ = scan(load(path))
    assert (n, st) == (len(fracs), E.ST_EOF)
    want = []
    for i, f in enumerate(fracs):
        exact = Fraction(f * 10**9, 1 << 32)
        ns = int(exact) + (1 if exact - int(exact) >= Fraction(1, 2) else 0)
        want.append((1_700_000_000 + i) * 10**9 + ns)
    assert idx["ts"].tolist() == want
    assert want[fracs.index(1 << 22)] % 10**9 == 976563          # 976562.5 -> up
    assert want[fracs.index(0xFFFFFFFF)] == 1_700_000_011 * 10**9  # carry into the next second
    assert idx["ts"].tolist() == [E.ts_ns((1_700_000_000 + i) << 32 | f) for i, f in enumerate(fracs)]
    assert idx["ts"].tolist() == [epoch_ns(r["frame.time_epoch"]) for r in tshark(path, TSHARK_FIELDS)]


def test_largest_timestamp_fits_int64() -> None:
    buf = np.frombuffer(record(eth_udp(b"y"), sec=0xFFFFFFFF, frac=0xFFFFFFFF), np.uint8)
    idx, n, _, _, _ = scan(buf)
    assert idx["ts"].tolist() == [(0xFFFFFFFF + 1) * 10**9] and idx["ts"][0] > 0


def test_extension_headers_loss_counter_interfaces_colour(tmp_path: Path) -> None:
    frames = [eth_udp(bytes([i]) * (10 + i), src_port=1000 + i) for i in range(7)]
    recs = [
        record(frames[0], ext=[], lctr=0),                                   # no extension header
        record(frames[1], ext=[(17 << 56) | (1 << 48) | 0xABCDEF], lctr=5, flags=0x05),
        record(frames[2], ext=[(18 << 56) | 1, (17 << 56) | 2, (16 << 56) | 3], lctr=65535, flags=0x06),
        record(frames[3], typ=E.T_COLOR_ETH, lctr=0x1234, flags=0x07),       # lctr = colour
        record(frames[4], typ=E.T_DSM_COLOR_ETH, ext=[(17 << 56) | 9], lctr=0x00FF, flags=0x04),
        record(frames[5], flags=0x04 | 0x08 | 0x10 | 0x20, lctr=1),          # trunc, rx, ds errors
        record(frames[6], flags=0x41, lctr=2),                              # interface high bit
    ]
    path = write(tmp_path, "ext.erf", b"".join(recs))
    buf = load(path)
    idx, n, pos, st, skipped = scan(buf)
    assert (n, pos, st, skipped.sum()) == (7, buf.size, E.ST_EOF, 0)
    assert idx["erf_ext"].tolist() == [0, 1, 3, 0, 1, 0, 0]
    assert idx["erf_lctr"].tolist() == [0, 5, 65535, 0x1234, 0x00FF, 1, 2]
    assert (idx["erf_type"] & 0x7F).tolist() == [2, 2, 2, 11, 16, 2, 2]
    assert idx["iface"].tolist() == [0, 1, 2, 3, 0, 0, 5]
    ports = E.erf_interfaces()      # metadata["interfaces"]: iface indexes it, id = port
    assert [ports[i]["id"] for i in idx["iface"]] == idx["iface"].tolist()
    assert [ports[i]["name"] for i in (0, 5)] == ["Port A", "Port F"]
    assert idx["erf_flags"].tolist() == [0x04, 0x05, 0x06, 0x07, 0x04, 0x3C, 0x41]
    for i, f in enumerate(frames):
        o = int(idx["off"][i])
        assert (int(idx["cap"][i]), int(idx["orig"][i])) == (len(f), len(f))
        assert bytes(buf[o:o + len(f)]) == f, f"record {i}"
    packets, _ = erf_table(buf, idx)
    assert packets["src_port"].to_pylist() == [1000 + i for i in range(7)]
    assert packets["payload_len"].to_pylist() == [10 + i for i in range(7)]
    rows = tshark(path, TSHARK_FIELDS)
    assert [int(r["frame.len"]) for r in rows] == idx["orig"].tolist()
    assert [int(r["frame.cap_len"]) for r in rows] == idx["cap"].tolist()
    assert [epoch_ns(r["frame.time_epoch"]) for r in rows] == idx["ts"].tolist()
    # tshark 4.0 reads the interface from bits 0-1 only (bit 6 it shows as reserved)
    assert [int(r["erf.flags.cap"]) for r in rows] == (idx["iface"] & 3).tolist()
    assert [int(r["erf.flags"], 16) for r in rows] == idx["erf_flags"].tolist()
    lctr = [int(r["erf.lctr"], 0) if r["erf.lctr"] else int(r["erf.color"], 0) for r in rows]
    assert lctr == idx["erf_lctr"].tolist()
    assert [r["erf.color"] != "" for r in rows] == [False, False, False, True, True, False, False]


def test_fixed_length_and_snapped_records(tmp_path: Path) -> None:
    """A record padded past its frame (vlen clear) keeps caplen = wlen; a
    record shorter than wlen (snapped) has caplen = its data."""
    f = eth_udp(b"z" * 30)
    fixed = record(f, flags=0x00, rlen=None, align=False)
    fixed = fixed[:10] + struct.pack(">H", len(fixed) + 40) + fixed[12:] + b"\x00" * 40
    snapped = record(f[:40], wlen=len(f), align=False)
    path = write(tmp_path, "len.erf", fixed + snapped)
    idx, n, _, st, _ = scan(load(path))
    assert (n, st) == (2, E.ST_EOF)
    assert idx["cap"].tolist() == [len(f), 40] and idx["orig"].tolist() == [len(f), len(f)]
    rows = tshark(path, TSHARK_FIELDS)
    assert [int(r["frame.cap_len"]) for r in rows] == [len(f), 40]
    assert [int(r["frame.len"]) for r in rows] == [len(f), len(f)]


def test_ipv4_records_and_skipped_types(tmp_path: Path) -> None:
    """IPV4 (22) records are indexed as LINKTYPE_IPV4; HDLC, ATM, META and PAD
    records are skipped and counted by type, the records after them read."""
    f = eth_udp(b"ipv4 record", src_port=7777)
    recs = [
        record(b"\x0f\x00\x08\x00" + ip_part(f), typ=1),                    # HDLC_POS
        record(f),
        record(b"\x00" * 32, typ=E.T_PAD, sec=0),
        record(ip_part(f), typ=E.T_IPV4, lctr=3),
        record(b"\x00" * 24, typ=E.T_META, ext=[(17 << 56) | 1]),
        record(b"\x00" * 52, typ=3),                                         # ATM cell
        record(f, flags=0x01),
    ]
    buf = np.frombuffer(b"".join(recs), np.uint8)
    idx, n, pos, st, skipped = scan(buf)
    assert (n, pos, st) == (3, buf.size, E.ST_EOF)
    assert E.skipped_types(skipped) == {"HDLC_POS": 1, "PAD": 1, "META": 1, "ATM": 1}
    assert idx["lt"].tolist() == [1, 228, 1]
    packets, _ = erf_table(buf, idx)
    assert packets["src_port"].to_pylist() == [7777] * 3
    assert packets["ip_src"].to_pylist()[1] == packets["ip_src"].to_pylist()[0]
    assert packets["payload_len"].to_pylist() == [len(b"ipv4 record")] * 3
    assert idx["erf_lctr"].tolist() == [0, 3, 0] and idx["iface"].tolist() == [0, 0, 1]


@pytest.mark.parametrize("case", ["rlen_small", "truncated_record", "truncated_header", "ext_overrun",
                                  "no_eth_pad"])
def test_bad_record_refused_at_its_offset(tmp_path: Path, case: str) -> None:
    good = record(eth_udp(b"ok")) + record(eth_udp(b"ok too"), frac=1 << 30)
    if case == "rlen_small":
        bad, status, why = record(eth_udp(b"bad"), rlen=12), E.E_RLEN, "record length 12 is shorter"
    elif case == "truncated_record":
        bad, status, why = record(eth_udp(b"bad"))[:-9], E.E_TRUNC_RECORD, "truncated file; tried to read"
    elif case == "truncated_header":
        bad, status, why = record(eth_udp(b"bad"))[:11], E.E_TRUNC_HEADER, "tried to read 16 header bytes, only got 11"
    elif case == "ext_overrun":
        bad, status, why = (record(b"", typ=E.T_META, ext=[1 << 63 | 1], rlen=24, align=False, pad=b""),
                            E.E_EXT, "extension headers run past the end of the 24-byte record")
        bad = bad[:8] + bytes([0x80 | E.T_META]) + bad[9:16] + bytes([0x91]) + bad[17:24]
    else:
        bad, status, why = record(b"", rlen=16, align=False, pad=b""), E.E_ETH_PAD, "no room for the 2-byte Ethernet pad"
    after = b"" if case.startswith("truncated") else record(eth_udp(b"after"))
    path = write(tmp_path, f"{case}.erf", good + bad + after)
    buf = load(path)
    idx, n, pos, st, _ = scan(buf)
    assert (n, pos, st) == (2, len(good), status)
    assert [bytes(buf[o + 42:o + c]) for o, c in zip(idx["off"], idx["cap"])] == [b"ok", b"ok too"]
    err = E.erf_error(str(path), st, pos, buf)
    assert isinstance(err, DataError)
    assert str(path) in str(err) and str(len(good)) in str(err) and why in str(err), str(err)


def test_detection_refuses_what_is_not_erf(tmp_path: Path) -> None:
    ok = record(eth_udp(b"a")) + record(eth_udp(b"b"), frac=99)
    assert E.parse_erf_header("x", ok)["records_checked"] == 2
    pcap = (CAPTURES / "ptp" / "tcpdump" / "ptp.pcap").read_bytes()
    pcapng = next((CAPTURES / "pcapng-suite" / "output_le").rglob("*.pcapng")).read_bytes()
    cases = {
        "pcap": pcap, "pcapng": pcapng, "text": b"GET / HTTP/1.1\r\nHost: example\r\n\r\n" * 4,
        "short": ok[:15], "rlen<16": record(eth_udp(b"a"), rlen=8) + ok,
        "type 0": record(eth_udp(b"a"), typ=0) + ok, "unknown type": record(eth_udp(b"a"), typ=60),
        "zero time": record(eth_udp(b"a"), sec=0) + ok, "reserved flag": record(eth_udp(b"a"), flags=0x84),
        "first record past the end": record(eth_udp(b"a"))[:40],
        "time goes back": record(eth_udp(b"a")) + record(eth_udp(b"b"), sec=1_700_000_000 - 5),
        "time jumps a year": record(eth_udp(b"a")) + record(eth_udp(b"b"), sec=1_700_000_000 + 2 * E.YEAR_S),
    }
    for name, data in cases.items():
        assert E.parse_erf_header(name, data[:E.SNIFF_BYTES], len(data)) is None, name
    # a malformed record after a good first one is the scanner's to refuse at its offset
    late = ok + record(eth_udp(b"c"), rlen=4)
    assert E.parse_erf_header("late", late)["records_checked"] == 2
    # PAD and META records may carry no timestamp
    assert E.parse_erf_header("pad", record(b"\x00" * 8, typ=E.T_PAD, sec=0) + ok)["type_name"] == "PAD"


# ------------------------------------------------------------------- through the reader
@pytest.mark.parametrize("name", sorted(CONVERTED))
@pytest.mark.parametrize("compress", [None, "gzip", "zstd"])
def test_the_reader_reads_erf_like_its_source(name: str, compress: str | None, tmp_path: Path) -> None:
    """hftlab.capture.read on the ERF file (plain, or compressed by the real
    gzip/zstd tools) gives the source pcap's packets: the same timestamps to
    the ns, the same UDP ports, the same ITCH messages and PTP messages."""
    from hftlab import capture

    path = ERF_DIR / name
    if compress:
        out = tmp_path / f"{name}.{compress}"
        with open(out, "wb") as fh:
            subprocess.run([compress, "-c", str(path)], stdout=fh, check=True)
        path = out
    got, want = capture.read(path), capture.read(CONVERTED[name])
    assert got.metadata["format"] == "erf"
    assert got.metadata["skipped_records"].get("META", 0) >= 1     # the writer's metadata records
    assert got.packets.num_rows == want.packets.num_rows > 0
    for col in ("ts_ns", "src_port", "dst_port", "ethertype", "vlan"):
        assert got.packets.column(col).to_pylist() == want.packets.column(col).to_pylist(), col
    assert got.itch.num_rows == want.itch.num_rows
    assert got.itch.column("msg_type").to_pylist() == want.itch.column("msg_type").to_pylist()
    assert got.ptp.num_rows == want.ptp.num_rows
    # the ERF record columns are ERF's alone: null in the source pcap's table
    for col in ("erf_type", "erf_flags", "erf_lctr", "erf_ext_headers"):
        assert got.packets.column(col).null_count == 0, col
        assert want.packets.column(col).null_count == want.packets.num_rows, col


def test_the_packets_table_has_the_erf_record_columns(tmp_path: Path) -> None:
    """erf_type, erf_flags, erf_lctr (loss counter, or colour for COLOR_*
    types) and erf_ext_headers of each record, through hftlab.capture.read,
    equal to tshark's erf.* fields; interface is the port of the flags."""
    from hftlab import capture

    frames = [eth_udp(bytes([i]) * (10 + i), src_port=1000 + i) for i in range(6)]
    recs = [
        record(frames[0], lctr=0),
        record(frames[1], ext=[(17 << 56) | (1 << 48) | 0xABCDEF], lctr=5, flags=0x05),
        record(frames[2], ext=[(18 << 56) | 1, (17 << 56) | 2, (16 << 56) | 3], lctr=65535, flags=0x06),
        record(frames[3], typ=E.T_COLOR_ETH, lctr=0x1234, flags=0x07),
        record(frames[4], flags=0x04 | 0x08 | 0x10 | 0x20, lctr=1),
        record(b"\x00" * 8, typ=E.T_PAD, lctr=9),                            # skipped: no row
        record(frames[5], typ=E.T_DSM_COLOR_ETH, ext=[(17 << 56) | 9], lctr=0x00FF, flags=0x04),
    ]
    path = write(tmp_path, "cols.erf", b"".join(recs))
    p = capture.read(path).packets
    assert p["erf_type"].to_pylist() == [2, 2, 2, 11, 2, 16]
    assert p["erf_flags"].to_pylist() == [0x04, 0x05, 0x06, 0x07, 0x3C, 0x04]
    assert p["erf_lctr"].to_pylist() == [0, 5, 65535, 0x1234, 1, 0x00FF]
    assert p["erf_ext_headers"].to_pylist() == [0, 1, 3, 0, 0, 1]
    assert p["interface"].to_pylist() == [0, 1, 2, 3, 0, 0]
    rows = tshark(path, TSHARK_FIELDS)
    assert [int(r["erf.types.type"]) for r in rows] == p["erf_type"].to_pylist()
    assert [int(r["erf.flags"], 16) for r in rows] == p["erf_flags"].to_pylist()
    lctr = [int(r["erf.lctr"], 0) if r["erf.lctr"] else int(r["erf.color"], 0) for r in rows]
    assert lctr == p["erf_lctr"].to_pylist()
    for name in ("erf_type", "erf_flags", "erf_lctr", "erf_ext_headers"):
        assert p.schema.field(name) == capture.PACKET_SCHEMA.field(name)


@pytest.mark.parametrize("source", ["moldudp64/ritch-packed.pcap", "ptp/tcpdump/ptp_ethernet.pcap"])
def test_erf_columns_are_null_for_pcap_and_pcapng(source: str, tmp_path: Path) -> None:
    from hftlab import capture

    src = CAPTURES / source
    ng = tmp_path / "copy.pcapng"
    subprocess.run([need_tool("editcap"), "-F", "pcapng", str(src), str(ng)], check=True)
    for path in (src, ng):
        p = capture.read(path).packets
        assert p.num_rows > 0
        for col in ("erf_type", "erf_flags", "erf_lctr", "erf_ext_headers"):
            assert p.column(col).null_count == p.num_rows, (path, col)
