"""Capture ingestion throughput: hftlab vs dpkt, python-pcapng and scapy.

Generates (with numpy, in a temporary directory) a nanosecond pcap of
--packets Ethernet/IPv4/UDP/MoldUDP64 frames, one ITCH 5.0 Add Order per
frame, and a pcapng copy of the same packets (editcap). Every reader gets
the same protocol, in its own child process pinned to one core: the whole
file, --warmup untimed passes, then --reps timed passes; the table gives the
median, min and max of the timed passes, packets/s at the median, and how
many times faster hftlab is (median against median, on the same file):

  pcap input:   hftlab (layers), hftlab (+ITCH decode), dpkt (pcap Reader +
                Ethernet/IP/UDP parse), scapy (PcapReader + layer fields);
  pcapng input: hftlab (layers), hftlab (+ITCH decode), dpkt (pcapng Reader
                + Ethernet/IP/UDP parse), python-pcapng (FileScanner: block
                fields only, no layer decode).

Every reader must count every packet of the file, or the script fails. The
slowest reader (scapy, ~2 k packets/s on this 2-core machine) sets the
default size: the input is shrunk for everyone, never for one reader.

Separately, hftlab alone (not a comparison) streams a --rss-small and a
--rss-big packet file, same protocol: its throughput at scale and its peak
RSS (memory flat in file size). Prints the environment (hftlab.util.env plus
library versions) and the tables. Usage:
    python benchmarks/ingest.py [--packets 30000] [--reps 5] [--warmup 1]
                                [--rss-small 1000000] [--rss-big 4000000] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

FRAME = 14 + 20 + 8 + 20 + 2 + 36     # Ethernet, IPv4, UDP, MoldUDP64 header, one ITCH 'A'


def write_pcap(path: Path, n: int, seed: int = 1) -> None:
    """n MoldUDP64 frames as a little-endian nanosecond pcap, written in chunks."""
    rng = np.random.default_rng(seed)
    rec = np.dtype([("sec", "<u4"), ("nsec", "<u4"), ("cap", "<u4"), ("orig", "<u4"), ("data", "u1", FRAME)])
    tmpl = np.zeros(FRAME, np.uint8)
    eth = bytes.fromhex("01005e000001" "020000000001" "0800")
    ip = bytes.fromhex("4500") + (FRAME - 14).to_bytes(2, "big") + bytes.fromhex("0000400040110000") \
        + bytes([10, 0, 0, 1]) + bytes([233, 54, 12, 1])
    udp = (26400).to_bytes(2, "big") + (26400).to_bytes(2, "big") + (FRAME - 34).to_bytes(2, "big") + b"\0\0"
    mold = b"HFTLAB0001" + b"\0" * 8 + (1).to_bytes(2, "big")
    itch = ((36).to_bytes(2, "big") + b"A" + b"\0" * 18 + b"B" + (100).to_bytes(4, "big") + b"AAPL    "
            + (1_500_000).to_bytes(4, "big"))
    tmpl[:] = np.frombuffer(eth + ip + udp + mold + itch, np.uint8)
    t0 = 1_700_000_000 * 10**9
    with open(path, "wb") as fh:
        fh.write(bytes.fromhex("4d3cb2a1") + (2).to_bytes(2, "little") + (4).to_bytes(2, "little")
                 + b"\0" * 8 + (65535).to_bytes(4, "little") + (1).to_bytes(4, "little"))
        for start in range(0, n, 1 << 20):
            k = min(1 << 20, n - start)
            r = np.zeros(k, rec)
            ts = t0 + (np.arange(start, start + k, dtype=np.int64) * 1000 + rng.integers(0, 999, k))
            r["sec"], r["nsec"] = ts // 10**9, ts % 10**9
            r["cap"] = r["orig"] = FRAME
            r["data"] = tmpl
            seq = np.arange(start + 1, start + k + 1, dtype=">u8")
            r["data"][:, 52:60] = seq.view(np.uint8).reshape(k, 8)       # MoldUDP64 sequence
            r["data"][:, 65:67] = (np.arange(start, start + k) % 9000).astype(">u2").view(np.uint8).reshape(k, 2)
            r["data"][:, 75:83] = (np.arange(start, start + k, dtype=">u8")).view(np.uint8).reshape(k, 8)
            fh.write(r.tobytes())


# ------------------------------------------------------------------ child measurements
def _pin() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def read_hftlab(path: str, payloads: bool) -> int:
    from hftlab.capture import iter_batches
    return sum(b.packets.num_rows for b in iter_batches(path, payloads=payloads))


def read_dpkt(path: str) -> int:
    import dpkt
    n = 0
    with open(path, "rb") as fh:
        reader = dpkt.pcapng.Reader(fh) if path.endswith(".pcapng") else dpkt.pcap.Reader(fh)
        for ts, buf in reader:
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            _ = (ts, eth.src, eth.dst, eth.type, ip.src, ip.dst, ip.p, ip.data.sport, ip.data.dport)
            n += 1
    return n


def read_pcapng(path: str) -> int:
    from pcapng import FileScanner
    from pcapng.blocks import EnhancedPacket
    n = 0
    with open(path, "rb") as fh:
        for block in FileScanner(fh):
            if isinstance(block, EnhancedPacket):
                _ = (block.timestamp, block.packet_len, block.packet_data)
                n += 1
    return n


def read_scapy(path: str) -> int:
    from scapy.all import IP, UDP, Ether, PcapReader
    n = 0
    with PcapReader(path) as reader:
        for pkt in reader:
            _ = (pkt.time, pkt[Ether].src, pkt[IP].src, pkt[UDP].dport)
            n += 1
    return n


READERS = {
    "hftlab": ("hftlab (layers)", "Arrow batches, Ethernet/IP/UDP columns",
               lambda p: read_hftlab(p, False)),
    "hftlab_itch": ("hftlab (+ITCH decode)", "as above + MoldUDP64/ITCH tables",
                    lambda p: read_hftlab(p, True)),
    "dpkt": ("dpkt", "Reader + Ethernet/IP/UDP objects", read_dpkt),
    "scapy": ("scapy PcapReader", "packets + Ether/IP/UDP fields", read_scapy),
    "pcapng": ("python-pcapng FileScanner", "blocks: ts, len, data (no layers)", read_pcapng),
}
PEERS = {"pcap": ("hftlab", "hftlab_itch", "dpkt", "scapy"),
         "pcapng": ("hftlab", "hftlab_itch", "dpkt", "pcapng")}


def child(argv: list[str]) -> None:
    """One reader on one file: warmup untimed passes, then reps timed ones."""
    _pin()
    kind, path, warmup, reps = argv[0], argv[1], int(argv[2]), int(argv[3])
    fn = READERS[kind][2]
    counts, times = [], []
    for i in range(warmup + reps):
        t = time.perf_counter()
        n = fn(path)
        dt_s = time.perf_counter() - t
        counts.append(n)
        if i >= warmup:
            times.append(dt_s)
    out = {"counts": counts, "times_s": times,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(json.dumps(out))


def measure(kind: str, path: Path, warmup: int, reps: int, expect: int) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, str(path), str(warmup), str(reps)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{kind} on {path.name} failed (exit {res.returncode}):\n{res.stderr[-2000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if set(out["counts"]) != {expect}:
        raise SystemExit(f"{kind} on {path.name} counted {out['counts']} packets, the file has {expect:,}")
    t = out["times_s"]
    out.update(packets=expect, reps=len(t), warmup=warmup, median_s=statistics.median(t), min_s=min(t),
               max_s=max(t), pps=expect / statistics.median(t))
    return out


def environment() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from hftlab.util.env import environment as hftlab_env
    versions = {}
    for dist in ("numpy", "numba", "pyarrow", "dpkt", "python-pcapng", "scapy"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = "not installed"
    return {**hftlab_env(), "cores_used": 1, "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "versions": versions}


def _table(title: str, rows: list[tuple[str, str, dict]], ref: dict) -> list[str]:
    head = (f"{'reader':26} {'work per packet':40} {'packets':>8} {'median s':>9} {'min s':>8} "
            f"{'max s':>8} {'M pkt/s':>8} {'hftlab x':>9} {'RSS MB':>7}")
    lines = [title, head, "-" * len(head)]
    for name, work, m in rows:
        lines.append(f"{name:26} {work:40} {m['packets']:>8,} {m['median_s']:>9.4f} {m['min_s']:>8.4f} "
                     f"{m['max_s']:>8.4f} {m['pps'] / 1e6:>8.3f} {m['median_s'] / ref['median_s']:>9.1f} "
                     f"{m['peak_rss_mb']:>7.0f}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=30_000,
                    help="packets of the compared file, the same for every reader")
    ap.add_argument("--reps", type=int, default=5, help="timed passes per reader")
    ap.add_argument("--warmup", type=int, default=1, help="untimed passes per reader first")
    ap.add_argument("--rss-small", type=int, default=1_000_000, help="hftlab-only scale/RSS file (0: off)")
    ap.add_argument("--rss-big", type=int, default=4_000_000, help="hftlab-only scale/RSS file (0: off)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.reps < 1 or args.warmup < 0 or args.packets < 1:
        ap.error("--packets and --reps must be >= 1, --warmup >= 0")
    if not shutil.which("editcap"):
        raise SystemExit("editcap (Wireshark tools, installed by make setup) is missing")
    env = environment()
    r: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="hftlab-bench-") as tmp:
        files = {"pcap": Path(tmp, "input.pcap"), "pcapng": Path(tmp, "input.pcapng")}
        t = time.perf_counter()
        write_pcap(files["pcap"], args.packets)
        subprocess.run(["editcap", "-F", "pcapng", str(files["pcap"]), str(files["pcapng"])], check=True,
                       capture_output=True)
        gen_s = time.perf_counter() - t
        sizes = {k: f.stat().st_size for k, f in files.items()}
        for fmt, peers in PEERS.items():
            for kind in peers:
                print(f"  measuring {kind} on {fmt} ...", file=sys.stderr, flush=True)
                r[f"{fmt}:{kind}"] = measure(kind, files[fmt], args.warmup, args.reps, args.packets)
        for label, n in (("small", args.rss_small), ("big", args.rss_big)):
            if n:
                f = Path(tmp, f"{label}.pcap")
                write_pcap(f, n)
                sizes[label] = f.stat().st_size
                print(f"  measuring hftlab on the {n:,}-packet file ...", file=sys.stderr, flush=True)
                r[f"scale_{label}"] = measure("hftlab", f, args.warmup, args.reps, n)
                f.unlink()
    print(f"environment: {json.dumps(env)}")
    print(f"input: {args.packets:,} MoldUDP64 frames ({FRAME} B, one ITCH 'A' each) generated in {gen_s:.1f} s; "
          f"pcap {sizes['pcap'] / 2**20:.1f} MiB, pcapng copy {sizes['pcapng'] / 2**20:.1f} MiB")
    print(f"protocol, every reader alike: the whole file, {args.warmup} untimed warm-up pass(es), then "
          f"{args.reps} timed passes, in a child process pinned to one core; median/min/max of the "
          f"{args.reps}; 'hftlab x' = reader's median / hftlab (layers)'s median on the same file\n")
    for fmt, peers in PEERS.items():
        rows = [(READERS[k][0], READERS[k][1], r[f"{fmt}:{k}"]) for k in peers]
        print("\n".join(_table(f"{fmt} input ({args.packets:,} packets, {args.reps} reps each)", rows,
                               r[f"{fmt}:hftlab"])) + "\n")
    if "scale_small" in r or "scale_big" in r:
        print(f"hftlab alone at scale (not a comparison; same protocol, {args.reps} reps):")
        for label, n in (("small", args.rss_small), ("big", args.rss_big)):
            if f"scale_{label}" in r:
                m = r[f"scale_{label}"]
                print(f"  {n:>10,} packets ({sizes[label] / 2**20:4.0f} MiB): median {m['median_s']:.3f} s "
                      f"(min {m['min_s']:.3f}, max {m['max_s']:.3f}), {m['pps'] / 1e6:.2f} M pkt/s, "
                      f"peak RSS {m['peak_rss_mb']:.0f} MB")
    dpkt_x = r["pcap:dpkt"]["median_s"] / r["pcap:hftlab"]["median_s"]
    targets = {f">= 50x dpkt (pcap input, {args.packets:,} packets, medians)": dpkt_x >= 50}
    if "scale_big" in r:
        targets[f">= 5 M packets/s (hftlab, {args.rss_big:,} packets, median)"] = r["scale_big"]["pps"] >= 5e6
    if "scale_small" in r and "scale_big" in r:
        targets["RSS flat (4x file, < 1.25x RSS)"] = (r["scale_big"]["peak_rss_mb"]
                                                      < 1.25 * r["scale_small"]["peak_rss_mb"])
    print("targets: " + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in targets.items()))
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "results": r, "sizes": sizes,
                                         "protocol": {"packets": args.packets, "warmup": args.warmup,
                                                      "reps": args.reps},
                                         "targets": targets}, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
