"""hftlab.capture against captures written by other tools, with tshark (or
tcpdump's own .out files) as the reference for every value compared.

Timestamps are compared as exact integers: tshark's frame.time_epoch decimal
string is parsed digit by digit, never through a float. The captures are the
repository's own (captures/, see captures/README.md). tshark, tcpdump, editcap
and mergecap are installed by `make setup`: one missing is a failure. The only
skip is for capturing live on loopback without root.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scapy.all as scapy
from hypothesis import given, settings, strategies as st

from hftlab import capture
from hftlab.errors import DataError

from repo_paths import CAPTURES as DATA

MOLD_PACKED = DATA / "moldudp64" / "ritch-packed.pcap"      # 3,000 RITCH messages in 87 datagrams


def need_tool(name: str) -> str:
    """The path of a tool `make setup` installs; its absence fails the test."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: `make setup` (scripts/setup-system.sh) installs it")
    return path


def epoch_ns(text: str) -> int | None:
    """'1340954905.298858000' -> exact int ns (None for an empty field)."""
    if not text:
        return None
    sec, _, frac = text.partition(".")
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])


def tshark(path: Path, fields: list[str], *extra: str) -> list[list[str]]:
    cmd = [need_tool("tshark"), "-r", str(path), "-n", "-T", "fields", "-E", "occurrence=f"] + list(extra)
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def compare_frames(path: Path, cap: capture.Capture) -> None:
    """ts_ns, origlen, caplen, interface and section of every packet equal tshark's
    (interface ids restart at 0 in each pcapng section, as tshark's do)."""
    rows = [r for r in tshark(path, ["frame.interface_id", "frame.time_epoch", "frame.len", "frame.cap_len",
                                     "frame.section_number"])
            if r[0] != "" or path.suffix == ".pcap"]
    t = cap.packets
    assert t.num_rows == len(rows)
    assert t.column("ts_ns").to_pylist() == [epoch_ns(r[1]) for r in rows]
    assert t.column("origlen").to_pylist() == [int(r[2]) for r in rows]
    assert t.column("caplen").to_pylist() == [int(r[3]) for r in rows]
    if path.suffix == ".pcapng":
        assert t.column("interface").to_pylist() == [int(r[0]) for r in rows]
        assert t.column("section").to_pylist() == [int(r[4]) - 1 for r in rows]   # tshark counts from 1
    else:
        assert set(t.column("interface").to_pylist()) <= {0} and set(t.column("section").to_pylist()) <= {0}


# ------------------------------------------------------------------ pcapng suite
SUITE = sorted((DATA / "pcapng-suite").glob("output_*/*/test*.pcapng"))
assert len(SUITE) == 2 * 24, f"captures/pcapng-suite: {len(SUITE)} files"


@pytest.mark.parametrize("path", SUITE, ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_pcapng_suite_matches_tshark(path: Path) -> None:
    expected = path.with_suffix(".txt").read_text()
    if re.search(r"Block counts:\n(\s+(CB|DCB|SHB): \d+\n)+\n", expected) and "IDB" not in expected:
        # no Interface Description Block at all: libpcap refuses such files, so do we
        with pytest.raises(DataError, match="no Interface Description Blocks"):
            capture.read(path)
        return
    cap = capture.read(path)
    compare_frames(path, cap)
    shb = int(re.search(r"SHB: (\d+)", expected).group(1))
    idb = int(re.search(r"IDB: (\d+)", expected).group(1))
    assert len(cap.metadata["sections"]) == shb
    assert len(cap.metadata["interfaces"]) == idb
    packets = sum(int(m) for m in re.findall(r"\b(?:EPB|SPB|PB|OPB): (\d+)", expected))
    assert cap.packets.num_rows == packets


@pytest.mark.parametrize("path", sorted((DATA / "pcapng-suite").glob("output_*/difficult/test20*.pcapng")),
                         ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_pcapng_sections_number_interfaces_like_tshark(path: Path) -> None:
    """Several sections (test202 mixes byte orders): `section` is the SHB index and
    `interface` restarts at 0 in each, as tshark's frame.interface_id; the metadata
    lists every IDB once with its file-wide index, section and id."""
    cap = capture.read(path)
    compare_frames(path, cap)
    md = cap.metadata
    assert len(md["sections"]) >= 2
    assert [f["index"] for f in md["interfaces"]] == list(range(len(md["interfaces"])))
    for s in range(len(md["sections"])):
        ids = [f["id"] for f in md["interfaces"] if f["section"] == s]
        assert ids == list(range(len(ids)))
    pairs = set(zip(cap.packets.column("section").to_pylist(), cap.packets.column("interface").to_pylist()))
    assert pairs <= {(f["section"], f["id"]) for f in md["interfaces"]}
    if path.name != "test200.pcapng":      # test200: sections and interfaces, no packets
        assert len({s for s, _ in pairs}) >= 2 and len(pairs) > len({i for _, i in pairs})   # ids repeat


def test_pcapng_suite_both_byte_orders_decode_alike() -> None:
    for le in sorted((DATA / "pcapng-suite/output_le").glob("*/*.pcapng")):
        be = DATA / "pcapng-suite/output_be" / le.relative_to(DATA / "pcapng-suite/output_le")
        try:
            a = capture.read(le).packets
        except DataError:
            with pytest.raises(DataError):
                capture.read(be)
            continue
        b = capture.read(be).packets
        assert a.drop_columns(["epb_hash"]).equals(b.drop_columns(["epb_hash"])), le.name


def test_pcapng_options_are_columns() -> None:
    cap = capture.read(DATA / "pcapng-suite/output_le/basic/test009.pcapng")   # EPBs with all options
    t = cap.packets
    assert t.column("comment").to_pylist() == ["test009-1", "test009-2"]
    assert t.column("epb_flags").to_pylist() == [0, 0x48000000]
    assert t.column("epb_dropcount").to_pylist() == [0, 12345]
    cap8 = capture.read(DATA / "pcapng-suite/output_le/basic/test008.pcapng")   # if_tsresol 9
    assert {f["tsresol"] for f in cap8.metadata["interfaces"]} == {"10^-9"}


# ------------------------------------------------------------------ libpcap strictness
REJECTS = {}
for line in (DATA / "pcapng-suite/libpcap-reject/EXPECTED-libpcap-errors.tsv").read_text().splitlines():
    if line and not line.startswith("#"):
        name, msg = line.split("\t", 1)
        REJECTS[name] = msg


@pytest.mark.parametrize("name", sorted(REJECTS))
def test_libpcap_reject_files(name: str) -> None:
    path = DATA / "pcapng-suite/libpcap-reject" / name
    msg = REJECTS[name]
    if msg.startswith("OPENS OK"):
        cap = capture.read(path)
        assert cap.packets.num_rows == 1
        # 2^-63 s units: floor((2^63 - 1) * 1e9 / 2^63) = 999999999, exactly, no overflow
        assert cap.packets.column("ts_ns")[0].as_py() == 999_999_999
        return
    with pytest.raises(DataError) as info:
        capture.read(path)
    err = info.value
    assert err.path == str(path) and err.offset is not None
    key = re.sub(r"^Failed opening: ", "", msg)
    words = [w for w in re.findall(r"[A-Za-z_]{4,}", key) if w not in ("BT_SHB_INSANE_MAX",)][:4]
    for w in words:
        assert w.lower() in str(err).lower(), (w, str(err))


def test_other_reject_and_partial() -> None:
    path = DATA / "pcapng-suite/libpcap-reject/shb-option-too-long.pcapng"
    with pytest.raises(DataError, match="Section Header"):
        capture.read(path)


# ------------------------------------------------------------------ third-party pcaps
PCAPS = ["other/wireshark-dhcp/dhcp.pcap", "other/wireshark-dhcp/dhcp-nanosecond.pcap",
         "other/wireshark-dhcp/dhcp.pcapng", "other/wireshark-dhcp/dhcp-nanosecond.pcapng",
         "other/tcpdump-bigendian/pptp.pcap", "other/tcpdump-bigendian/unaligned-nfs-1.pcap",
         "other/tcpdump-timestamps/tcp-handshake-nano.pcap", "other/tcpdump-timestamps/time_2038_max.pcap",
         "other/tcpdump-timestamps/time_2106_max.pcap", "other/tcpdump-timestamps/time_2107.pcapng",
         "ptp/tcpdump/ptp_ethernet.pcap", "ptp/ndpi/ptpv2.pcap",
         "trailers/cisco-n3550-exablaze/exnic-fcsu.pcap",
         "moldudp64/ritch-packed.pcap", "moldudp64/ritch-single-vlan100.pcap", "moldudp64/ritch-session.pcap"]


@pytest.mark.parametrize("rel", PCAPS)
def test_third_party_frames_and_fields_match_tshark(rel: str) -> None:
    path = DATA / rel
    cap = capture.read(path)
    compare_frames(path, cap)
    rows = tshark(path, ["eth.src", "ip.src", "ip.dst", "ipv6.src", "udp.srcport", "udp.dstport",
                         "tcp.srcport", "tcp.dstport", "ip.proto"])
    t = cap.packets
    assert [capture.format_mac(v) for v in t.column("eth_src").to_pylist()] == [r[0] or None for r in rows]
    ips = [capture.format_ip(v) for v in t.column("ip_src").to_pylist()]
    assert ips == [r[1] or r[3] or None for r in rows]
    sport = t.column("src_port").to_pylist()
    assert sport == [int(r[4] or r[6]) if (r[4] or r[6]) else None for r in rows]


def test_sll_and_timestamps_nano() -> None:
    cap = capture.read(DATA / "other/tcpdump-timestamps/tcp-handshake-nano.pcap")
    t = cap.packets
    assert set(t.column("linktype").to_pylist()) == {113}
    # tcp-handshake-nano.out: "2014-12-09 17:16:09.924505488"
    assert t.column("ts_ns")[0].as_py() == 1418145369_924505488
    assert t.column("ip_proto").to_pylist() == [6, 6, 6]


# ------------------------------------------------------------------ PTP
@pytest.mark.parametrize("name", ["ptp.pcap", "ptp_corrections.pcap", "ptp_ethernet.pcap",
                                  "ptp_management.pcap", "ptp_v2_1.pcap"])
def test_ptp_fields_match_tshark(name: str) -> None:
    path = DATA / "ptp/tcpdump" / name
    cap = capture.read(path)
    rows = [r for r in tshark(path, ["ptp.v2.messagetype", "ptp.v2.sequenceid", "ptp.v2.clockidentity",
                                     "ptp.v2.sourceportid", "ptp.v2.domainnumber", "ptp.v2.correction.ns"])
            if r[0]]
    p = cap.ptp
    assert p.num_rows == len(rows)
    assert p.column("msg_type").to_pylist() == [int(r[0], 16) for r in rows]
    assert p.column("seq_id").to_pylist() == [int(r[1]) for r in rows]
    assert p.column("clock_id").to_pylist() == [int(r[2], 16) for r in rows]
    assert p.column("port").to_pylist() == [int(r[3]) for r in rows]
    assert p.column("domain").to_pylist() == [int(r[4]) for r in rows]
    assert p.column("correction_ns").to_pylist() == [int(r[5]) for r in rows]


def test_ptp_corrections_against_tcpdump_out() -> None:
    cap = capture.read(DATA / "ptp/tcpdump/ptp_corrections.pcap")
    p = cap.ptp.to_pylist()
    # ptp_corrections.out: delay resp "NS correction: 36035", "receiveTimeStamp: 1665510783.679015501",
    # "port identity: 0xa0369ffffe856e8a, port id: 1"; sync "originTimeStamp: 1665510783.681548698"
    assert p[1]["msg_name"] == "Delay_Resp" and p[1]["correction_ns"] == 36035
    assert p[1]["origin_ts_ns"] == 1665510783_679015501
    assert p[1]["requesting_clock_id"] == 0xA0369FFFFE856E8A and p[1]["requesting_port"] == 1
    assert p[2]["msg_name"] == "Sync" and p[2]["origin_ts_ns"] == 1665510783_681548698
    assert p[2]["correction_ns"] == 105045


def test_ptp_offset_and_path_delay(tmp_path: Path) -> None:
    """Two-step exchange with known times: delay 1000 ns, slave 500 ns ahead."""
    master, slave = 0x0011223344556677, 0x8899AABBCCDDEEFF

    def ptp(mt: int, seq: int, clock: int, port: int, ts: int, corr: int = 0, two_step: bool = False,
            req: tuple[int, int] | None = None) -> bytes:
        sec, ns = divmod(ts, 10**9)
        body = struct.pack(">HII", sec >> 32, sec & 0xFFFFFFFF, ns)
        if req:
            body += struct.pack(">QH", *req)
        hdr = struct.pack(">BBHBBHqIQHHBb", mt, 2, 34 + len(body), 0, 0, 0x0200 if two_step else 0,
                          corr << 16, 0, clock, port, seq, 0, 0)
        return hdr + body

    base = 1_700_000_000 * 10**9
    e = scapy.Ether(src="02:00:00:00:00:01", dst="01:1b:19:00:00:00", type=0x88F7)
    # master sends Sync at master time t1 = base; wire delay 1000 ns; slave (capture) clock 500 ns ahead
    t1, d, off = base, 1000, 500
    frames = [
        (t1 + d + off, ptp(0, 7, master, 1, 0, corr=0, two_step=True)),              # Sync, t2
        (t1 + d + off + 10, ptp(8, 7, master, 1, t1, corr=0)),                     # Follow_Up
        (t1 + 5000, ptp(1, 3, slave, 1, 0)),                                       # Delay_Req, t3
        (t1 + 5100, ptp(9, 3, master, 1, t1 + 5000 - off + d, req=(slave, 1))),    # Delay_Resp, t4
        (t1 + 10**9 + d + off, ptp(0, 8, master, 1, 0, two_step=True)),            # next Sync
        (t1 + 10**9 + d + off + 10, ptp(8, 8, master, 1, t1 + 10**9, corr=0)),
    ]
    pkts = []
    for ts, payload in frames:
        p = e / scapy.Raw(payload)
        p.time = scapy.EDecimal(ts) / scapy.EDecimal(10**9)
        pkts.append(p)
    path = tmp_path / "ptp.pcap"
    scapy.wrpcap(str(path), pkts, nano=True)
    cap = capture.read(path)
    assert cap.ptp.column("msg_name").to_pylist() == ["Sync", "Follow_Up", "Delay_Req", "Delay_Resp",
                                                      "Sync", "Follow_Up"]
    series = capture.ptp_offsets(cap.ptp)
    delay = series.delay.to_pylist()
    assert len(delay) == 1 and delay[0]["mean_path_delay_ns"] == d and delay[0]["offset_ns"] == off
    sync = series.sync.to_pylist()
    assert [s["offset_ns"] for s in sync] == [None, off]       # the first Sync precedes any delay
    assert sync[1]["mean_path_delay_ns"] == d and sync[1]["t1_ns"] == t1 + 10**9


# ------------------------------------------------------------------ trailers
def test_arista_d28b_header_against_tcpdump_out() -> None:
    cap = capture.read(DATA / "trailers/tcpdump-arista/arista_ether.pcap")
    out = (DATA / "trailers/tcpdump-arista/arista_ether.out").read_text().splitlines()
    t = cap.packets
    assert t.num_rows == len(out)
    for i, line in enumerate(out):
        m = re.search(r"Timescale (\w+) .*?Format (\d\d)-bit.*?Timestamp "
                      r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+|\d+\.\d+)", line)
        kind = t.column("trailer_kind")[i].as_py()
        got = t.column("trailer_ts_ns")[i].as_py()
        assert kind == f"arista_d28b_{m.group(1).lower()}"
        stamp = m.group(3)
        if m.group(2) == "64":
            day, clock = stamp.split(" ")
            import calendar
            sec = calendar.timegm(time.strptime(day + " " + clock.split(".")[0], "%Y-%m-%d %H:%M:%S"))
            assert got == sec * 10**9 + int(clock.split(".")[1])
        else:                                  # 48-bit: 16-bit seconds, completed from capture time
            s16, ns = stamp.split(".")
            assert (got // 10**9) % 65536 == int(s16) % 65536 and got % 10**9 == int(ns)
            assert abs(got - t.column("ts_ns")[i].as_py()) < 3600 * 10**9
    # the IP header after the Arista header is decoded ("IP 10.136.1.32 > 10.2.23.24")
    assert capture.format_ip(t.column("ip_src")[0].as_py()) == "10.136.1.32"


def test_exablaze_hpt_trailer_matches_wireshark() -> None:
    path = DATA / "trailers/cisco-n3550-exablaze/fusion_hpt_example.pcap"
    cap = capture.read(path, trailer="exablaze")
    rows = tshark(path, ["exablaze.timestamp.seconds", "exablaze.timestamp.fractional_seconds",
                         "exablaze.device", "exablaze.port"], "--enable-heuristic", "exablaze_eth")
    t = cap.packets
    for i, r in enumerate(rows):
        got = t.column("trailer_ts_ns")[i].as_py()
        if not r[0]:
            assert got is None
            continue
        want = int(r[0]) * 10**9 + int(round(float(r[1]) * 1e9 - 0.5))   # Wireshark truncates
        assert abs(got - want) <= 1
        assert t.column("trailer_device")[i].as_py() == int(r[2])
        assert t.column("trailer_port")[i].as_py() == int(r[3])


def test_metamako_trailer_crafted(tmp_path: Path) -> None:
    """Frames with the 16-byte Metamako trailer (+FCS), as packet-metamako.c reads them."""
    ts = 1_700_000_123_456_789_012
    pkts = []
    for k, fcs in enumerate((b"", b"\x11\x22\x33\x44")):
        sec, ns = divmod(ts + k, 10**9)
        trailer = b"\xde\xad\xbe\xef" + struct.pack(">IIBHB", sec, ns, 0x01, 0x0102 + k, 7 + k) + fcs
        p = scapy.Ether() / scapy.IP(src="10.0.0.1", dst="10.0.0.2") / scapy.UDP(sport=1, dport=2) / (b"x" * 30)
        p = scapy.Ether(bytes(p) + trailer)
        p.time = scapy.EDecimal(ts + 5000) / scapy.EDecimal(10**9)
        pkts.append(p)
    path = tmp_path / "mm.pcap"
    scapy.wrpcap(str(path), pkts, nano=True)
    t = capture.read(path, trailer="metamako").packets
    assert t.column("trailer_ts_ns").to_pylist() == [ts, ts + 1]
    assert t.column("trailer_device").to_pylist() == [0x0102, 0x0103]
    assert t.column("trailer_port").to_pylist() == [7, 8]
    assert capture.read(path).packets.column("trailer_ts_ns").null_count == 2   # off by default


# ------------------------------------------------------------------ VLAN / QinQ, OUCH, MoldUDP64
def test_vlan_qinq_ipv6_ouch_crafted(tmp_path: Path) -> None:
    order = b"O" + b"0100000000002A" + b"B" + struct.pack(">I", 100) + b"AAPL    " + struct.pack(">I", 1500000) \
        + struct.pack(">I", 0) + b"\0" * 13
    pkts = [
        scapy.Ether() / scapy.Dot1Q(vlan=100) / scapy.IP(src="1.2.3.4", dst="5.6.7.8") / scapy.UDP(sport=9, dport=10) / order,
        scapy.Ether(type=0x88A8) / scapy.Dot1AD(vlan=200) / scapy.Dot1Q(vlan=300)
        / scapy.IPv6(src="2001:db8::1", dst="2001:db8::2") / scapy.TCP(sport=11, dport=12) / b"hello",
    ]
    path = tmp_path / "vlan.pcap"
    scapy.wrpcap(str(path), pkts)
    cap = capture.read(path)
    t = cap.packets
    assert t.column("vlan").to_pylist() == [100, 200]
    assert t.column("vlan_inner").to_pylist() == [None, 300]
    assert [capture.format_ip(v) for v in t.column("ip_dst").to_pylist()] == ["5.6.7.8", "2001:db8::2"]
    assert t.column("ip_version").to_pylist() == [4, 6]
    assert t.column("dst_port").to_pylist() == [10, 12]
    assert t.column("app").to_pylist() == ["ouch", None]
    assert cap.ouch.num_rows == 1 and cap.ouch.column("trigger_seq")[0].as_py() == 0x2A
    assert cap.ouch.column("packet_index")[0].as_py() == 0
    rows = tshark(path, ["ieee8021ad.id", "vlan.id", "ipv6.dst"])
    assert rows[0][1] == "100" and rows[1][:3] == ["200", "300", "2001:db8::2"]


def test_moldudp64_itch_linked_by_packet() -> None:
    """tcpdump's capture of a packed MoldUDP64 feed (scripts/make-captures.py):
    every message row points at its datagram, with consecutive sequence numbers."""
    cap = capture.read(MOLD_PACKED)
    t, itch = cap.packets, cap.itch
    counts = t.column("mold_count").to_pylist()
    assert t.num_rows == 87 and sum(counts) == itch.num_rows == 3000
    assert set(t.column("mold_session").to_pylist()) == {"RITCH00001"}
    assert set(t.column("app").to_pylist()) == {"moldudp64"}
    seq = 1
    for pkt in range(t.num_rows):
        rows = itch.filter(pa.compute.equal(itch.column("packet_index"), pkt))
        assert t.column("mold_seq")[pkt].as_py() == seq
        assert rows.column("mold_seq").to_pylist() == list(range(seq, seq + counts[pkt]))
        assert set(rows.column("ts_ns").to_pylist()) == {t.column("ts_ns")[pkt].as_py()}
        seq += counts[pkt]
    assert itch.column("msg_type").to_pylist()[:4] == ["S", "R", "R", "R"]


def test_moldudp64_vlan_and_session_control() -> None:
    """802.1Q-tagged datagrams of one message each; heartbeats (count 0) and
    the end of session (count 0xFFFF) carry no message rows; a retransmitted
    datagram's messages appear again under the same sequence numbers."""
    v = capture.read(DATA / "moldudp64/ritch-single-vlan100.pcap")
    assert v.packets.num_rows == v.itch.num_rows == 400
    assert set(v.packets.column("vlan").to_pylist()) == {100}
    assert set(v.packets.column("ethertype").to_pylist()) == {0x0800}
    assert v.itch.column("mold_seq").to_pylist() == list(range(1, 401))
    s = capture.read(DATA / "moldudp64/ritch-session.pcap")
    t = s.packets
    assert t.column("mold_count").to_pylist()[-4:] == [0, 0, 0, 0xFFFF]
    assert t.column("mold_seq").to_pylist()[-4:] == [601] * 4
    control = set(range(t.num_rows - 4, t.num_rows))
    assert not control & set(s.itch.column("packet_index").to_pylist())
    seqs = s.itch.column("mold_seq").to_pylist()
    assert len(seqs) == 608 and sorted(set(seqs)) == list(range(1, 601))
    twice = [q for q in set(seqs) if seqs.count(q) == 2]
    assert len(twice) == 8 and twice == list(range(min(twice), min(twice) + 8))


# ------------------------------------------------------------------ bad input
def _pcap_bytes(records: list[tuple[int, bytes]], nano: bool = True, big: bool = False) -> bytes:
    o = ">" if big else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(o + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)
    for ts, data in records:
        sec, frac = divmod(ts, 10**9)
        out += struct.pack(o + "IIII", sec, frac if nano else frac // 1000, len(data), len(data)) + data
    return out


def test_truncated_file_error_and_partial(tmp_path: Path) -> None:
    frame = bytes(60)
    raw = _pcap_bytes([(10**18 + k, frame) for k in range(5)])
    path = tmp_path / "cut.pcap"
    path.write_bytes(raw[:-10])
    with pytest.raises(DataError) as info:
        capture.read(path)
    assert info.value.offset == 24 + 4 * 76 and "truncated" in str(info.value)
    cap = capture.read(path, partial=True)
    assert cap.packets.num_rows == 4 and cap.error is not None
    assert cap.metadata["error"] == str(cap.error)
    # a streamed read with small batches yields the full batches, then raises
    got = 0
    with pytest.raises(DataError):
        for b in capture.iter_batches(path, batch_size=2):
            got += b.packets.num_rows
    assert got == 4


def test_garbage_and_unknown_linktype(tmp_path: Path) -> None:
    p = tmp_path / "junk.pcap"
    p.write_bytes(b"this is not a capture at all")
    with pytest.raises(DataError, match="not a pcap"):
        capture.read(p)
    raw = bytearray(_pcap_bytes([(1, bytes(20))]))
    raw[20:24] = struct.pack("<I", 147)            # LINKTYPE_USER0
    p.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="unknown link type 147") as info:
        capture.read(p)
    assert info.value.offset == 20
    cap = capture.read(p, allow_unknown_linktype=True)
    assert cap.packets.column("eth_src").null_count == 1


def test_pcapng_block_length_mismatch(tmp_path: Path) -> None:
    shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    idb = struct.pack("<IIHHI", 1, 20, 1, 0, 0) + struct.pack("<I", 20)
    epb = struct.pack("<IIIIIII", 6, 32 + 60, 0, 0, 1000, 60, 60) + bytes(60) + struct.pack("<I", 96)
    p = tmp_path / "bad.pcapng"
    p.write_bytes(shb + idb + epb)
    with pytest.raises(DataError, match="Enhanced Packet Block: total length 92 .* 96") as info:
        capture.read(p)
    assert info.value.offset == 48


# ------------------------------------------------------------------ real tools
def _send_udp(port: int, n: int, payloads: list[bytes]) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for k in range(n):
        s.sendto(payloads[k % len(payloads)], ("127.0.0.1", port))
        time.sleep(0.002)
    s.close()


@pytest.fixture(scope="module")
def tcpdump_capture(tmp_path_factory) -> Path:
    """A nanosecond pcap written by tcpdump on loopback (our own traffic only)."""
    tcpdump = need_tool("tcpdump")
    if os.geteuid() != 0:
        pytest.skip("capturing on loopback needs root (this user is not root)")
    out = tmp_path_factory.mktemp("tcpdump") / "lo.pcap"
    port = 40000 + os.getpid() % 20000
    proc = subprocess.Popen([tcpdump, "-i", "lo", "-n", "-U", "--time-stamp-precision=nano", "-w", str(out),
                             "-c", "30", f"udp port {port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    line = proc.stderr.readline()          # "listening on lo, ..." once capturing
    if "listening on" not in line:
        proc.kill()
        pytest.fail(f"tcpdump did not start: {line}{proc.stderr.read()}")
    mold = b"SESSION001" + struct.pack(">QH", 77, 1) + struct.pack(">H", 12) + b"S" + bytes(10) + b"O"
    try:
        _send_udp(port, 30, [mold, b"x" * 100, b"y" * 3])
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"tcpdump did not see our 30 loopback datagrams within 20 s: {proc.stderr.read()}")
    err = proc.stderr.read()
    assert proc.returncode == 0, f"tcpdump exit {proc.returncode}: {err}"
    assert out.exists(), f"tcpdump wrote no file: {err}"
    return out


def test_tcpdump_nano_and_editcap_mergecap(tcpdump_capture: Path, tmp_path: Path) -> None:
    src = tcpdump_capture
    cap = capture.read(src)
    compare_frames(src, cap)
    assert cap.metadata["interfaces"][0]["tsresol"] == "10^-9"
    assert cap.itch.num_rows == 10 and set(cap.itch.column("mold_seq").to_pylist()) == {77}
    ng = tmp_path / "lo.pcapng"
    us = tmp_path / "lo-us.pcap"
    editcap, mergecap = need_tool("editcap"), need_tool("mergecap")
    subprocess.run([editcap, "-F", "pcapng", str(src), str(ng)], check=True, capture_output=True)
    subprocess.run([editcap, "-F", "pcap", str(src), str(us)], check=True, capture_output=True)
    for f in (ng, us):
        c = capture.read(f)
        compare_frames(f, c)
    assert capture.read(ng).packets.column("ts_ns").equals(cap.packets.column("ts_ns"))
    assert capture.read(us).packets.column("ts_ns").to_pylist() == \
        [t // 1000 * 1000 for t in cap.packets.column("ts_ns").to_pylist()]
    # mergecap: two inputs become two interfaces of one pcapng (different link types)
    sll = tmp_path / "sll.pcap"
    subprocess.run([editcap, "-T", "linux-sll", str(src), str(sll)], check=True, capture_output=True)
    merged = tmp_path / "merged.pcapng"
    subprocess.run([mergecap, "-w", str(merged), str(ng), str(sll)], check=True, capture_output=True)
    m = capture.read(merged)
    compare_frames(merged, m)
    assert len(m.metadata["interfaces"]) == 2 and m.packets.num_rows == 2 * cap.packets.num_rows


def test_pcapng_binary_tsresol_and_offset(tmp_path: Path) -> None:
    """if_tsresol 2^-30 and if_tsoffset, big-endian section (built by hand,
    checked against tshark when present)."""
    o = ">"
    shb = struct.pack(o + "IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack(o + "I", 28)
    opts = struct.pack(o + "HHB3x", 9, 1, 0x80 | 30) + struct.pack(o + "HHq", 14, 8, 1_600_000_000) + b"\0" * 4
    idb_len = 20 + len(opts)
    idb = struct.pack(o + "IIHHI", 1, idb_len, 1, 0, 0) + opts + struct.pack(o + "I", idb_len)
    frame = bytes(60)
    units = (5 << 30) + 123456789                   # 5 s + 123456789 / 2^30 s
    epb = struct.pack(o + "IIIIIII", 6, 32 + 60, 0, units >> 32, units & 0xFFFFFFFF, 60, 60) + frame \
        + struct.pack(o + "I", 92)
    p = tmp_path / "bin.pcapng"
    p.write_bytes(shb + idb + epb)
    cap = capture.read(p)
    want = (1_600_000_000 + 5) * 10**9 + 123456789 * 10**9 // 2**30
    assert cap.packets.column("ts_ns")[0].as_py() == want
    assert cap.metadata["interfaces"][0]["tsresol"] == "2^-30"
    assert abs(epoch_ns(tshark(p, ["frame.time_epoch"])[0][0]) - want) <= 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 10**9 - 1), st.integers(0, 300)),
                min_size=0, max_size=40), st.booleans(), st.booleans())
def test_pcap_timestamps_exact_property(tmp_path_factory, recs, nano, big) -> None:
    """Any well-formed classic pcap (either byte order, us or ns) reads
    without error, every timestamp exact to the unit the file holds."""
    path = tmp_path_factory.mktemp("h") / "h.pcap"
    frac = (lambda f: f) if nano else (lambda f: f // 1000 * 1000)
    path.write_bytes(_pcap_bytes([(s * 10**9 + f, bytes(n)) for s, f, n in recs], nano=nano, big=big))
    cap = capture.read(path)            # a DataError here fails the test: the file is valid
    assert cap.error is None
    t = cap.packets
    assert cap.metadata["interfaces"][0]["tsresol"] == ("10^-9" if nano else "10^-6")
    assert t.column("ts_ns").to_pylist() == [s * 10**9 + frac(f) for s, f, _ in recs]
    assert t.column("caplen").to_pylist() == [n for _, _, n in recs]
    assert t.column("packet_index").to_pylist() == list(range(len(recs)))


# ------------------------------------------------------------------ outputs
def test_parquet_metadata_and_views(tmp_path: Path) -> None:
    cap = capture.read(MOLD_PACKED)
    paths = cap.write_parquet(tmp_path / "mp.parquet")
    assert set(paths) == {"packets", "itch"}
    import json
    md = json.loads(pq.read_table(paths["packets"]).schema.metadata[b"hftlab.capture"])
    assert md["format"] == "pcap" and md["interfaces"][0]["tsresol"] == "10^-9" and md["packets"] == 87
    assert pq.read_table(paths["itch"]).num_rows == 3000
    assert cap.to_polars().height == 87 and len(cap.to_pandas("itch")) == 3000


def test_cli_ingest(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from hftlab.cli.ingest import ingest_cmd
    src = DATA / "ptp/tcpdump/ptp_ethernet.pcap"
    res = CliRunner().invoke(ingest_cmd, [str(src), "--out", str(tmp_path / "p.parquet")])
    assert res.exit_code == 0, res.output
    assert "205 packets" in res.output and "ptp messages=205" in res.output
    assert pq.read_table(tmp_path / "p.ptp.parquet").num_rows == 205
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(src.read_bytes()[:-7])
    res = CliRunner().invoke(ingest_cmd, [str(bad)])
    assert res.exit_code == 2 and "byte" in res.output
    res = CliRunner().invoke(ingest_cmd, [str(bad), "--partial", "--out", str(tmp_path / "q.parquet")])
    assert res.exit_code == 1 and pq.read_table(tmp_path / "q.parquet").num_rows == 204
