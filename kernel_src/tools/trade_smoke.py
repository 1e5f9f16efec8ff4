#!/usr/bin/env python3
"""trade_smoke.py - HFT-OS trades the bundled ITCH sample over QEMU user networking.

Standalone proof of the OS hot loop (`make -C kernel_src run-trade`), no root
and no tap needed: QEMU's slirp forwards 127.0.0.1:30001 (market data) and
127.0.0.1:30002 (control) to the guest, and the guest's orders to 10.0.2.2:30003
arrive at 127.0.0.1:30003. The script

  1. boots the image (TCG, or TCG with -icount shift=0,sleep=off),
  2. waits for the READY line, replays the MoldUDP64 feed at --rate msg/s,
  3. lets the guest drain (--drain s), sends a control message with a wrong
     key and a truncated MoldUDP64 datagram (both must only be counted),
     then STOP with the image's ctl_key; or, with --max-messages N, runs a
     copy of the image whose config says max_messages=N and sends nothing,
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
CONFIG_OFF_MAX_MESSAGES = 40
CONFIG_OFF_CTL_KEY = 48
CTL_STOP = 1
CTL_KILL = 2
EXIT_OK_STATUS = (0x10 << 1) | 1           # isa-debug-exit encoding of HFTOS_EXIT_OK
READY = re.compile(rb"HFTOS READY ip=(\S+) mac=(\S+) md_port=(\d+) tsc_hz=(\d+)")
PHASE = re.compile(rb"boot: phase (\w+) tsc=(\d+)")


def config_at(data: bytes, image: Path) -> int:
    at = data.find(CONFIG_MAGIC.to_bytes(8, "little"))
    if at < 0 or data.find(CONFIG_MAGIC.to_bytes(8, "little"), at + 1) >= 0:
        raise SystemExit(f"{image}: not exactly one config block")
    return at


def image_ctl_key(image: Path) -> int:
    data = image.read_bytes()
    return struct.unpack_from("<Q", data, config_at(data, image) + CONFIG_OFF_CTL_KEY)[0]


def image_with_max_messages(image: Path, n: int, out: Path) -> Path:
    data = bytearray(image.read_bytes())
    struct.pack_into("<Q", data, config_at(data, image) + CONFIG_OFF_MAX_MESSAGES, n)
    dst = out / "hftos-max.img"
    dst.write_bytes(data)
    return dst


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
    ap.add_argument("--max-messages", type=int, default=0,
                    help="run a copy of the image with this max_messages; no control messages")
    ap.add_argument("--kill", action="store_true",
                    help="send KILL before the replay: no order may go out")
    ap.add_argument("--out", type=Path, help="keep serial.log here (default: a temp dir)")
    args = ap.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="hftos-trade-"))
    out.mkdir(parents=True, exist_ok=True)
    serial = out / "serial.log"
    serial.unlink(missing_ok=True)
    key = image_ctl_key(args.image)
    if args.max_messages:
        args.image = image_with_max_messages(args.image, args.max_messages, out)
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
        ctl = exchange.udp_socket(None, "127.0.0.1", 0)
        if args.kill:
            ctl.sendto(exchange.control_message(CTL_KILL, key), ("127.0.0.1", 30002))
            time.sleep(0.2)
        rep = exchange.Replayer(tx, feed, ("127.0.0.1", 30001), rate=args.rate or None)
        rep.start()
        rep.join()
        if rep.error and not (args.max_messages and proc.poll() is not None):
            raise SystemExit(f"replayer: {rep.error}")  # (an exited guest refuses the rest)
        if not args.max_messages:
            # The STOP must not overtake the feed: slirp reads the two
            # forwarded ports independently, so let the guest drain first.
            wait_quiet(sink, 0 if args.kill else n_gold, quiet_s=args.drain)
            time.sleep(args.drain)
            ctl.sendto(exchange.control_message(CTL_STOP, key ^ 1), ("127.0.0.1", 30002))
            ctl.sendto(b"HFTLAB", ("127.0.0.1", 30001))  # shorter than a MoldUDP64 header
            time.sleep(0.2)
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
    n_msgs = feed.n_messages
    if args.max_messages:  # the OS stops after the datagram that reached the limit
        n_msgs = c.get("mold_messages", 0)
        gold = core.golden(args.dataset, messages=n_msgs)
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

    hostile = 0 if args.max_messages else 1
    kills = 1 if args.kill else 0
    checks = {
        f"qemu exit status {status} == {EXIT_OK_STATUS}": status == EXIT_OK_STATUS,
        "orders equal golden bit for bit" if not args.kill else "no orders after KILL":
            b"".join(got) == (b"" if args.kill else gold.ouch),
        f"mold_messages {c.get('mold_messages')} == {n_msgs}": c.get("mold_messages") == n_msgs,
        "no gaps or duplicates": c.get("mold_gaps") == 0 and c.get("mold_duplicates") == 0,
        f"itch_messages {c.get('itch_messages')} == {n_msgs}": c.get("itch_messages") == n_msgs,
        "every order logged": len(internal) == c.get("os_orders_sent") == len(got),
        f"control: {hostile + kills} accepted, {hostile} wrong key rejected":
            c.get("os_ctl_ok") == hostile + kills and c.get("os_ctl_rejected") == hostile,
        f"truncated datagram counted (mold_malformed == {hostile})":
            c.get("mold_malformed") == hostile,
    }
    if args.kill:
        checks[f"risk_rejected_kill {c.get('risk_rejected_kill')} > 0"] = \
            c.get("risk_rejected_kill", 0) > 0
    if args.max_messages:
        checks[f"stopped at max_messages: {n_msgs} >= {args.max_messages}"] = \
            args.max_messages <= n_msgs < args.max_messages + args.max_count
    for what, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    print(f"serial log: {serial}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
