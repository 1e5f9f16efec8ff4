"""HFT-OS on QEMU's igb (Intel 82576): IEEE 1588 hardware time stamps
through the OS's PTP test mode, and the trading runs of tests/test_os.py on
igb (RITCH, a 100k-message synthetic feed, hostile frames, a ring wrap).

Real QEMU, a real tap in a network namespace, real frames (an AF_PACKET
socket in the namespace). Runs that need the tap skip without root.
"""
from __future__ import annotations

import os
import secrets
import socket
import struct
import time

import pytest

from hftlab.experiment.run import RunSpec, run
from hftlab.lab import exchange
from hftlab.lab.build import OsParams, build_os
from hftlab.lab.net import RunNetwork
from hftlab.lab.ptp import parse_ptp_log, ptp_test_image
from hftlab.lab.vm import GUEST_MAC, Vm, VmSpec, choose_accel, debug_exit_status
from hftlab.model import synth
from spans import check_spans

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="tap and netns need root")

PTP_MCAST = bytes.fromhex("011b19000000")
ETH_PTP, ETH_IPV4, ETH_STOP = 0x88F7, 0x0800, 0x88B5
SYNC, DELAY_REQ = 0x0, 0x1
ETH_P_ALL = 0x0003
EXIT_OK = 0x10


@pytest.fixture(scope="module")
def image():
    return build_os()


def _mac(text: str) -> bytes:
    return bytes(int(p, 16) for p in text.split(":"))


def _ptp(msg: int, seq: int) -> bytes:
    """A PTPv2 event message (IEEE 1588-2008 13.3): 34-byte header plus a
    zero originTimestamp, from clock 02:00:00:ff:fe:00:00:01 port 1."""
    hdr = struct.pack(">BBHBBH8s4s8sHHBb", msg, 2, 44, 0, 0, 0, bytes(8), bytes(4),
                      bytes.fromhex("020000fffe000001"), 1, seq, 0 if msg == SYNC else 1, 0)
    return hdr + bytes(10)


def _eth(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    return dst + src + struct.pack(">H", ethertype) + payload


def _udp(src_mac, dst_mac, src_ip, dst_ip, dport, payload) -> bytes:
    udp = struct.pack(">HHHH", 40000, dport, 8 + len(payload), 0) + payload  # no UDP checksum
    ip = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                               socket.inet_aton(src_ip), socket.inet_aton(dst_ip)))
    s = sum(struct.unpack(">10H", ip))
    s = (s & 0xFFFF) + (s >> 16)
    struct.pack_into(">H", ip, 10, ~((s & 0xFFFF) + (s >> 16)) & 0xFFFF)
    return _eth(dst_mac, src_mac, ETH_IPV4, bytes(ip) + udp)


@needs_root
def test_ptp_hardware_timestamps(image, tmp_path):
    """Sync frames over Ethernet latch an RX time inside the NIC-clock
    readings around the poll that found them, increasing frame by frame, at
    1 ns per unit; the OS's own Delay_Req latches a TX time after them; a
    non-PTP frame, a received Delay_Req (TSYNCRXCFG selects Sync) and a
    Sync over UDP/319 (the driver enables L2 time stamping only) latch
    nothing."""
    guest = _mac(GUEST_MAC)
    with RunNetwork(f"ptp{secrets.token_hex(6)}") as net:
        host = _mac(net.host_mac)
        img = tmp_path / "hftos.img"
        ptp_test_image(image, img, OsParams(ip_self=net.guest_ip, ip_peer=net.host_ip,
                                            mac_peer=net.host_mac))
        sync = lambda seq: _eth(PTP_MCAST, host, ETH_PTP, _ptp(SYNC, seq))  # noqa: E731
        plan = [  # (kind, frame); the OS prints one "PTP RX n=<i>" line per frame
            ("sync", sync(101)),
            ("other", _udp(host, guest, net.host_ip, net.guest_ip, 9, b"not ptp" * 8)),
            ("sync", sync(102)),
            ("delay_req", _eth(PTP_MCAST, host, ETH_PTP, _ptp(DELAY_REQ, 7))),
            ("sync", sync(103)),
            ("udp319", _udp(host, guest, net.host_ip, net.guest_ip, 319, _ptp(SYNC, 104))),
            ("sync", sync(105)),
            ("stop", _eth(guest, host, ETH_STOP, b"HFTOS PTP STOP".ljust(46, b"\0"))),
        ]
        spec = VmSpec(image=img, workdir=tmp_path, accel=choose_accel("tcg"), nic="igb",
                      netdev=f"tap,id=n0,ifname={net.tap},script=no,downscript=no",
                      mac=GUEST_MAC, netns=net.netns, vcpu_core=None)
        sent_at = []
        with exchange.raw_socket(net.netns, net.tap) as raw, _sniffer(net) as sniff, \
                Vm(spec) as vm:
            vm.wait_serial(b"PTP READY", 60)
            for i, (kind, frame) in enumerate(plan):
                time.sleep(0.2)  # a span long enough to check the clock's rate
                sent_at.append(time.monotonic_ns())
                raw.send(frame)
                vm.wait_serial(f"PTP RX n={i} ".encode(), 30)
                if kind == "sync":
                    vm.wait_serial(f"PTP TX seq={_seq(frame)} ".encode(), 30)
            status = vm.wait(30)
            wire = _drain(sniff)
        serial = vm.serial_path.read_text(errors="replace")
    assert status == debug_exit_status(EXIT_OK), serial[-3000:]
    rx, tx = parse_ptp_log(serial)
    print("\n".join(l for l in serial.splitlines() if l.startswith("PTP")))
    assert [r["n"] for r in rx] == list(range(len(plan)))
    kinds = dict(sync="l2", other="other", delay_req="l2", udp319="udp319", stop="other")
    assert [r["kind"] for r in rx] == [kinds[k] for k, _ in plan]

    syncs = [r for r, (k, _) in zip(rx, plan) if k == "sync"]
    assert [r["seq"] for r in syncs] == [101, 102, 103, 105]
    for r in syncs:
        assert r["latched"] == 1, r
        assert r["before"] <= r["rx_ts"] <= r["after"], r
    for r, (k, _) in zip(rx, plan):
        if k != "sync":
            assert r["latched"] == 0, (k, r)
    rx_ts = [r["rx_ts"] for r in syncs]
    assert rx_ts == sorted(set(rx_ts)), "RX time stamps must increase with the frames"

    # 1 unit of SYSTIM is 1 ns: the NIC clock between the first and last
    # Sync against the host's clock between sending them (TCG: QEMU's
    # virtual clock runs at the host's rate).
    host_span = sent_at[6] - sent_at[0]
    ratio = (syncs[-1]["rx_ts"] - syncs[0]["rx_ts"]) / host_span
    assert 0.9 < ratio < 1.1, (ratio, host_span)

    assert [t["seq"] for t in tx] == [101, 102, 103, 105]
    for t, r in zip(tx, syncs):
        assert t["latched"] == 1, t
        assert t["before"] <= t["tx_ts"] <= t["after"], t
        assert t["tx_ts"] > r["rx_ts"], (t, r)
    assert tx[-1]["tx_ts"] > max(r["rx_ts"] for r in rx if r["latched"])
    assert [t["tx_ts"] for t in tx] == sorted(set(t["tx_ts"] for t in tx))

    # The Delay_Reqs are on the wire, from the guest, to PTP's multicast address.
    out = [f for f in wire if f[6:12] == guest and f[12:14] == b"\x88\xf7"]
    assert [(f[:6], f[14] & 0xF, struct.unpack(">H", f[44:46])[0]) for f in out] == \
        [(PTP_MCAST, DELAY_REQ, s) for s in (101, 102, 103, 105)]


def _seq(frame: bytes) -> int:
    return struct.unpack(">H", frame[14 + 30: 14 + 32])[0]


def _sniffer(net: RunNetwork) -> socket.socket:
    """An AF_PACKET socket that sees every frame on the run's tap (the
    sending socket of exchange.raw_socket, protocol 0, receives none)."""
    from hftlab._core import ffi, lib

    err = ffi.new("char[256]")
    fd = lib.hx_netns_socket(ffi.new("char[]", net.netns_path.encode()), socket.AF_PACKET,
                             socket.SOCK_RAW, socket.htons(ETH_P_ALL), err, 256)
    assert fd >= 0, ffi.string(err).decode()
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL), fileno=fd)
    s.bind((net.tap, 0))
    return s


def _drain(raw: socket.socket) -> list[bytes]:
    raw.setblocking(False)
    frames = []
    while True:
        try:
            frames.append(raw.recv(65536))
        except BlockingIOError:
            return frames


# --- trading on igb: the checks of tests/test_os.py ------------------------

@needs_root
def test_igb_trades_ritch(tmp_path):
    res = run(RunSpec(accel="tcg", nic="igb", out=tmp_path / "run"))
    c = res.info["counters"]
    assert res.info["orders"]["equal"] and res.info["orders"]["sut"] > 0
    assert c["mold_messages"] == c["itch_messages"] == 12012
    assert c["mold_gaps"] == c["mold_duplicates"] == 0
    assert "-> igb (82576)" in (tmp_path / "run" / "serial.log").read_text()
    print("igb tcg spans:", check_spans(res.latency))


@needs_root
def test_igb_synthetic_100k(tmp_path):
    feed = tmp_path / "feed.itch"
    synth.generate(feed, 100_000, seed=3)
    res = run(RunSpec(accel="tcg", nic="igb", dataset=feed, rate=50_000, out=tmp_path / "run"))
    c = res.info["counters"]
    assert res.info["orders"]["equal"] and res.info["orders"]["sut"] > 100
    assert c["mold_messages"] == c["itch_messages"] == 100_000 and c["mold_gaps"] == 0


HOSTILE_COUNTERS = ("os_foreign_ethertype", "os_ip_errors", "os_udp_errors", "os_wrong_port",
                    "os_rx_oversize", "mold_gaps", "mold_duplicates", "mold_malformed")


@needs_root
def test_igb_hostile_frames(tmp_path):
    """tests/test_os.py::test_hostile_frames on igb, unchanged: the
    oversized frame lands in os_rx_oversize because the driver counts frames
    longer than one buffer itself (QEMU's 82576 counts ROC only in VMDq
    mode)."""
    res = run(RunSpec(accel="tcg", nic="igb", hostile=True, network="tap", out=tmp_path / "run"))
    c = res.info["counters"]
    assert res.info["orders"]["equal"] and res.info["orders"]["sut"] > 0
    for name in HOSTILE_COUNTERS:
        assert c[name] >= 1, name
    assert c["os_rx_oversize"] == 1
    assert c["mold_gaps"] == 1 and c["mold_duplicates"] == 1
    assert c["mold_messages"] + c["mold_gap_messages"] == 12012


@needs_root
def test_igb_ring_wrap_100k_frames(tmp_path):
    """One ITCH message per frame: 100,000 frames through the 4096-entry RX
    ring (24 wraps), none lost: every message arrives, no MoldUDP64 gap, and
    the orders equal the golden model's."""
    feed = tmp_path / "feed.itch"
    synth.generate(feed, 100_000, seed=5)
    res = run(RunSpec(accel="tcg", nic="igb", dataset=feed, max_count=1, rate=25_000,
                      out=tmp_path / "run"))
    c = res.info["counters"]
    # On a miss, what tells where the frame went: refused by the OS (its
    # bytes), dropped at the tap, or sent late.
    why = {k: res.info.get(k) for k in ("refused_frame", "replay")}
    why["tap_stats"] = res.info["network"].get("tap_stats")
    why["counters"] = {k: v for k, v in c.items() if k.startswith(("os_", "mold_"))}
    assert res.info["orders"]["equal"]
    assert c["os_md_packets"] == c["mold_packets"] == 100_000, why
    assert c["mold_messages"] == 100_000 and c["mold_gaps"] == 0
    assert c["os_rx_missed"] == c["os_rx_no_buffer"] == c["os_rx_oversize"] == 0
