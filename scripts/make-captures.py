#!/usr/bin/env python3
"""Write captures/moldudp64/*.pcap: real captures of MoldUDP64/ITCH 5.0 traffic.

No public MoldUDP64 capture under a redistributable license was found, so we
make our own, on a real (virtual) wire: two network namespaces joined by a
veth pair, hftlab's own packer (hftlab.lab.exchange.pack_feed, the C packer of
the golden model) and replayer (hftlab.lab.exchange.Replayer, a C send loop
over a UDP socket) on one side, tcpdump (-w, nanosecond precision) on the
other. The VLAN capture is sent as whole Ethernet frames (built by the
core's net_build_udp through Feed.frames, an 802.1Q tag inserted) on an
AF_PACKET socket, because a kernel without the 8021q module (as on the
machine these were made on) has no VLAN sub-interface to send through.
The ITCH messages are those of datasets/ritch/ex20101224.TEST_ITCH_50 (MIT,
simulated data by the RITCH project). captures/moldudp64/README.md says what each file holds.

Run as root, from anywhere (paths are relative to this file):

    python3 scripts/make-captures.py            # rewrite every capture
    python3 scripts/make-captures.py --check    # capture again into a temp dir, compare contents

Needs ip (iproute2) and tcpdump (both installed by `make setup`). The tests do
not run this script; they read the committed pcaps. Re-running it gives the
same frames (addresses, ports, payloads) with new timestamps and, for the
frames the kernel's UDP socket sent, new IPv4 identification fields (and so
IPv4 header checksums); --check compares everything else.
"""
from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hftlab.lab.exchange import Endpoint, Feed, Replayer, pack_feed, raw_socket, udp_socket  # noqa: E402

RITCH = ROOT / "datasets" / "ritch" / "ex20101224.TEST_ITCH_50"
OUT = ROOT / "captures" / "moldudp64"

# Addresses for documentation (RFC 5737 TEST-NET-1 / TEST-NET-2), never routed.
TX_MAC, RX_MAC = "02:00:5e:00:53:01", "02:00:5e:00:53:02"
TX_IP, RX_IP = "192.0.2.1", "192.0.2.2"
VLAN = 100
TX_VIP, RX_VIP = "198.51.100.1", "198.51.100.2"     # the VLAN's addresses
SRC_PORT, DST_PORT = 26400, 26477
RATE = 20_000            # messages per second: spaced, so nothing is dropped anywhere


def sh(*cmd: str) -> None:
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")


class Wire:
    """Two namespaces and a veth pair between them (eth0 in each); IPv6 off
    and static neighbours, so the wire carries nothing but the datagrams we
    send (no ARP, no ND, no MLD)."""

    def __init__(self) -> None:
        tag = f"{os.getpid()}"
        self.tx, self.rx = f"mkcap-tx-{tag}", f"mkcap-rx-{tag}"

    def __enter__(self) -> "Wire":
        try:
            self._up()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _up(self) -> None:
        for ns in (self.tx, self.rx):
            sh("ip", "netns", "add", ns)
            for key in ("all", "default"):
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1")
        a, b = f"mkc{os.getpid()}a", f"mkc{os.getpid()}b"
        sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        for dev, ns, mac, ip, peer_ip, peer_mac in ((a, self.tx, TX_MAC, TX_IP, RX_IP, RX_MAC),
                                                    (b, self.rx, RX_MAC, RX_IP, TX_IP, TX_MAC)):
            sh("ip", "link", "set", dev, "netns", ns)
            n = ("ip", "-n", ns)
            sh(*n, "link", "set", dev, "name", "eth0")
            sh(*n, "link", "set", "eth0", "address", mac)
            sh(*n, "addr", "add", f"{ip}/24", "dev", "eth0")
            sh(*n, "link", "set", "lo", "up")
            sh(*n, "link", "set", "eth0", "up")
            sh(*n, "neigh", "replace", peer_ip, "lladdr", peer_mac, "dev", "eth0", "nud", "permanent")

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "link", "del", f"mkc{os.getpid()}a"], capture_output=True)
        for ns in (self.tx, self.rx):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def heartbeat(session: bytes, next_seq: int, end: bool = False) -> bytes:
    """MoldUDP64 header alone: count 0 is a heartbeat, 0xFFFF the end of the
    session; the sequence number is the next one expected. (hftlab's packer
    writes data datagrams only, so these two are written here.)"""
    return struct.pack(">10sQH", session, next_seq, 0xFFFF if end else 0)


def capture(wire: Wire, out: Path, feed: Feed, *, vlan: bool, extra: list[bytes]) -> int:
    """Send `feed` (then `extra` datagrams) from tx to rx; tcpdump on rx's
    eth0 writes `out`. Returns the frames written. With `vlan` the datagrams
    go out as Ethernet frames tagged with VLAN 100 on an AF_PACKET socket."""
    n_frames = feed.n_packets + len(extra)
    # a receiving socket in rx, so the kernel answers no ICMP port unreachable
    sink = udp_socket(wire.rx, "0.0.0.0", DST_PORT)
    dump = subprocess.Popen(["ip", "netns", "exec", wire.rx, "tcpdump", "-i", "eth0", "-n", "-U",
                             "--time-stamp-precision=nano", "-w", str(out), "-c", str(n_frames)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = dump.stderr.readline()          # "listening on eth0, ..." once the socket is open
    if "listening on" not in line:
        dump.kill()
        raise SystemExit(f"tcpdump did not start: {line}{dump.stderr.read()}")
    time.sleep(0.2)
    if vlan:
        assert not extra
        sock = raw_socket(wire.tx, "eth0")
        framed = feed.frames(Endpoint(TX_MAC, TX_VIP, SRC_PORT), Endpoint(RX_MAC, RX_VIP, DST_PORT))
        tag = struct.pack(">HH", 0x8100, VLAN)
        for i in range(framed.n_packets):
            f = framed.packet(i)
            sock.send(f[:12] + tag + f[12:])
            time.sleep(1 / RATE)
    else:
        sock = udp_socket(wire.tx, TX_IP, SRC_PORT)
        rep = Replayer(sock, feed, (RX_IP, DST_PORT), rate=RATE)
        rep.start()
        rep.join()
        if rep.error or rep.sent != feed.n_packets:
            raise SystemExit(f"replayer: {rep.error or f'sent {rep.sent} of {feed.n_packets}'}")
        for d in extra:
            time.sleep(0.001)
            sock.send(d)
    try:
        dump.wait(timeout=20)
    except subprocess.TimeoutExpired:
        dump.kill()
        raise SystemExit(f"tcpdump saw fewer than {n_frames} frames")
    err = dump.stderr.read()
    if dump.returncode != 0:
        raise SystemExit(f"tcpdump exit {dump.returncode}: {err}")
    sock.close()
    sink.close()
    return n_frames


def captures(outdir: Path) -> list[tuple[str, int]]:
    made = []
    with Wire() as wire:
        # 1. the first 3,000 RITCH messages packed as a feed handler sees them:
        #    up to 64 messages or 1,400 bytes per datagram, plain Ethernet
        feed = pack_feed(RITCH, messages=3000, max_payload=1400, max_count=64, session=b"RITCH00001")
        made.append(("ritch-packed.pcap", capture(wire, outdir / "ritch-packed.pcap", feed,
                                                  vlan=False, extra=[])))
        # 2. the first 400 messages, one per datagram, on VLAN 100 (802.1Q-tagged frames)
        feed = pack_feed(RITCH, messages=400, max_count=1, session=b"RITCH00002")
        made.append(("ritch-single-vlan100.pcap", capture(wire, outdir / "ritch-single-vlan100.pcap",
                                                          feed, vlan=True, extra=[])))
        # 3. a whole session's life: 600 messages in datagrams of up to 8, datagram 20
        #    sent twice (a retransmission: duplicates), heartbeats, then end of session
        feed = pack_feed(RITCH, messages=600, max_count=8, session=b"RITCH00003")
        order = list(range(21)) + [20] + list(range(21, feed.n_packets))
        feed = feed.select(order)
        nxt = 1 + 600
        extra = [heartbeat(feed.session, nxt)] * 3 + [heartbeat(feed.session, nxt, end=True)]
        made.append(("ritch-session.pcap", capture(wire, outdir / "ritch-session.pcap", feed,
                                                   vlan=False, extra=extra)))
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="capture into a temporary directory and compare the frames with the committed files")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces, tcpdump)")
    for tool in ("ip", "tcpdump"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: run `make setup`")
    if not args.check:
        OUT.mkdir(parents=True, exist_ok=True)
        for name, n in captures(OUT):
            print(f"{OUT.relative_to(ROOT) / name}: {n} frames, {(OUT / name).stat().st_size} bytes")
        return
    with tempfile.TemporaryDirectory() as tmp:
        bad = 0
        for name, _ in captures(Path(tmp)):
            same = _frames(Path(tmp) / name) == _frames(OUT / name)
            bad += not same
            print(f"{name}: {'same frames' if same else 'DIFFERENT frames'}")
        raise SystemExit(1 if bad else 0)


def _frames(path: Path) -> list[bytes]:
    """The frames of a little-endian pcap, timestamps left out, and the IPv4
    identification and header checksum of untagged frames zeroed (the kernel
    picks the identification per datagram)."""
    b = path.read_bytes()
    pos, out = 24, []
    while pos + 16 <= len(b):
        cl = struct.unpack_from("<I", b, pos + 8)[0]
        f = bytearray(b[pos + 16: pos + 16 + cl])
        if f[12:14] == b"\x08\x00":
            f[18:20] = f[24:26] = b"\0\0"
        out.append(bytes(f))
        pos += 16 + cl
    return out


if __name__ == "__main__":
    main()
