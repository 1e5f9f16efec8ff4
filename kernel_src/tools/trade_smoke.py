#!/usr/bin/env python3
"""trade_smoke.py - HFT-OS trades the bundled ITCH sample over QEMU user networking.

Standalone proof of the OS hot loop (`make -C kernel_src run-trade`), no root
and no tap needed: QEMU's slirp forwards 127.0.0.1:30001 (market data) and
127.0.0.1:30002 (control) to the guest, and the guest's orders to 10.0.2.2:30003
arrive at 127.0.0.1:30003. The script

  1. boots the image (TCG, or TCG with -icount shift=0,sleep=off),
  2. waits for the READY line, replays the MoldUDP64 feed at --rate msg/s,
  3. lets the guest drain (--drain s), sends STOP with the image's ctl_key,
  4. checks: QEMU exit status 33, the orders equal the golden model bit for
     bit, every message counted (no gaps), the dump parses,
  5. prints boot phases and the internal tsc_tx - tsc_rx figures.

Exit status 0 when every check passed.
"""
from __future__ import annotations

import argparse
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hftlab import core, exchange, sutlog

ROOT = Path(__file__).resolve().parents[2]
DATASET = ROOT / "datasets" / "ritch" / "ex20101224.TEST_ITCH_50"
CONFIG_MAGIC = 0x4746434F53544648          # include/hftos_abi.h
CONFIG_OFF_CTL_KEY = 48
CTL_STOP = 1
EXIT_OK_STATUS = (0x10 << 1) | 1           # isa-debug-exit encoding of HFTOS_EXIT_OK
READY = re.compile(rb"HFTOS READY ip=(\S+) mac=(\S+) md_port=(\d+) tsc_hz=(\d+)")
PHASE = re.compile(rb"boot: phase (\w+) tsc=(\d+)")


def image_ctl_key(image: Path) -> int:
    data = image.read_bytes()
    at = data.find(CONFIG_MAGIC.to_bytes(8, "little"))
    if at < 0:
        raise SystemExit(f"{image}: no config block")
    return struct.unpack_from("<Q", data, at + CONFIG_OFF_CTL_KEY)[0]


def qemu_cmd(args: argparse.Namespace, serial: Path) -> list[str]:
    fwd = "".join(f",hostfwd=udp:127.0.0.1:{p}-10.0.2.15:{p}" for p in (30001, 30002))
    cmd = [args.qemu, "-accel", "tcg", "-cpu", "max", "-m", "256", "-display", "none",
           "-monitor", "none", "-serial", f"file:{serial}", "-no-reboot",
           "-drive", f"format=raw,file={args.image}",
           "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
           "-netdev", f"user,id=n0{fwd}",
           "-device", "e1000,netdev=n0,romfile=,autonegotiation=off"]
    if args.icount:
        cmd += ["-icount", "shift=0,sleep=off"]
    return cmd


def wait_ready(proc: subprocess.Popen, serial: Path, timeout: float) -> re.Match:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = READY.search(serial.read_bytes()) if serial.exists() else None
        if m:
            return m
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    tail = serial.read_bytes()[-2000:].decode("utf-8", "replace") if serial.exists() else ""
    raise SystemExit(f"no READY line (qemu status {proc.poll()}):\n{tail}")


def wait_quiet(sink: exchange.OrderSink, want: int, quiet_s: float) -> None:
    """Until `want` orders arrived, or none for quiet_s seconds."""
    last, since = -1, time.monotonic()
    while sink.count < want:
        if sink.count != last:
            last, since = sink.count, time.monotonic()
        elif time.monotonic() - since > quiet_s:
            return
        time.sleep(0.02)


def summarize(name: str, xs: list[int]) -> str:
    if not xs:
        return f"{name}: no records"
    return (f"{name}: n={len(xs)} min={min(xs)} median={int(statistics.median(xs))} "
            f"max={max(xs)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=Path, default=ROOT / "kernel_src/build/hftos.img")
    ap.add_argument("--dataset", type=Path, default=DATASET)
    ap.add_argument("--rate", type=float, default=20000, help="messages per second, 0 = back to back")
    ap.add_argument("--max-count", type=int, default=64, help="ITCH messages per datagram")
    ap.add_argument("--icount", action="store_true", help="-icount shift=0,sleep=off")
    ap.add_argument("--drain", type=float, default=1.0,
                    help="seconds to let the guest drain after the replay, before STOP")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--out", type=Path, help="keep serial.log here (default: a temp dir)")
    args = ap.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="hftos-trade-"))
    out.mkdir(parents=True, exist_ok=True)
    serial = out / "serial.log"
    serial.unlink(missing_ok=True)
    key = image_ctl_key(args.image)
    feed = exchange.pack_feed(args.dataset, max_count=args.max_count)
    gold = core.golden(args.dataset)
    n_gold = len(gold.ouch) // 49

    rx = exchange.udp_socket(None, "127.0.0.1", 30003)
    tx = exchange.udp_socket(None, "127.0.0.1", 0)
    sink = exchange.OrderSink(rx)
    sink.start()
    t0 = time.monotonic()
    proc = subprocess.Popen(qemu_cmd(args, serial), stdin=subprocess.DEVNULL)
    try:
        ready = wait_ready(proc, serial, args.timeout)
        t_ready = time.monotonic() - t0
        rep = exchange.Replayer(tx, feed, ("127.0.0.1", 30001), rate=args.rate or None)
        rep.start()
        rep.join()
        if rep.error:
            raise SystemExit(f"replayer: {rep.error}")
        # The STOP must not overtake the feed: slirp reads the two forwarded
        # ports independently, so let the guest drain before sending it.
        wait_quiet(sink, n_gold, quiet_s=args.drain)
        time.sleep(args.drain)
        ctl = exchange.udp_socket(None, "127.0.0.1", 0)
        ctl.sendto(exchange.control_message(CTL_STOP, key), ("127.0.0.1", 30002))
        status = proc.wait(timeout=args.timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sink.cancel()
        sink.join()
    t_total = time.monotonic() - t0

    got = sink.payloads()
    log = sutlog.read_dump(serial)
    c = log.counters
    recs = log.records.to_pydict()
    internal = [b - a for a, b in zip(recs["tsc_rx"], recs["tsc_tx"])]
    phases = {m.group(1).decode(): int(m.group(2)) for m in PHASE.finditer(serial.read_bytes())}
    hz = int(ready.group(4))

    print(f"image {args.image}, {'TCG -icount shift=0,sleep=off' if args.icount else 'TCG'}, "
          f"{feed.n_packets} datagrams / {feed.n_messages} messages at "
          f"{args.rate:.0f} msg/s ({args.max_count} per datagram)")
    print(f"ready line: {ready.group(0).decode()}  ({t_ready:.2f} s after qemu start)")
    if "entry" in phases:
        print("boot phases (ms after entry): " + ", ".join(
            f"{k} {(v - phases['entry']) * 1000 / hz:.1f}" for k, v in phases.items()))
    print(summarize("internal tsc_tx - tsc_rx (cycles)", internal))
    print(f"orders: {len(got)} received, golden {n_gold}; run {t_total:.1f} s")
    print("counters: " + " ".join(f"{k}={c[k]}" for k in (
        "os_frames_rx", "os_md_packets", "os_orders_sent", "os_rx_missed", "os_rx_no_buffer",
        "os_tx_ring_full", "mold_messages", "mold_gaps", "mold_gap_messages", "itch_messages",
        "os_ctl_ok", "os_arp_requests", "os_ip_errors", "os_wrong_port")))

    checks = {
        f"qemu exit status {status} == {EXIT_OK_STATUS}": status == EXIT_OK_STATUS,
        "orders equal golden bit for bit": b"".join(got) == gold.ouch,
        f"mold_messages {c.get('mold_messages')} == {feed.n_messages}":
            c.get("mold_messages") == feed.n_messages,
        "no gaps, duplicates or malformed datagrams":
            c.get("mold_gaps") == 0 and c.get("mold_duplicates") == 0 and c.get("mold_malformed") == 0,
        f"itch_messages {c.get('itch_messages')} == {feed.n_messages}":
            c.get("itch_messages") == feed.n_messages,
        "every order logged": len(internal) == c.get("os_orders_sent") == len(got),
        "control STOP accepted": c.get("os_ctl_ok") == 1,
    }
    for what, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    print(f"serial log: {serial}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
