"""Capture ingestion throughput: hftlab vs dpkt, python-pcapng and scapy.

Generates (with numpy, in a temporary directory) nanosecond pcaps of
Ethernet/IPv4/UDP/MoldUDP64 frames, one ITCH 5.0 Add Order per frame, then
measures in child processes pinned to one core:
  * hftlab streaming batches over the whole file: packets only (layers) and
    with ITCH decoding, packets/s;
  * dpkt (pcap reader + Ethernet/IP/UDP parse), python-pcapng (FileScanner
    over a pcapng copy made by editcap) and scapy (PcapReader) on a slice,
    packets/s, and hftlab's ratio to each;
  * peak RSS of hftlab streaming a 1 M and a 4 M packet file (memory flat in
    file size).
Prints the environment (CPU, versions, git revision) and a table. Usage:
    python benchmarks/ingest.py [--packets 4000000] [--slice 200000] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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


def run_hftlab(path: str, payloads: bool, limit: int | None) -> dict:
    from hftlab.capture import iter_batches
    for _ in iter_batches(path, batch_size=1 << 10, payloads=payloads):   # warm the JIT cache
        break
    t = time.perf_counter()
    n = 0
    for b in iter_batches(path, payloads=payloads):
        n += b.packets.num_rows
        if limit and n >= limit:
            break
    return {"packets": n, "seconds": time.perf_counter() - t}


def run_dpkt(path: str, limit: int) -> dict:
    import dpkt
    t = time.perf_counter()
    n = 0
    with open(path, "rb") as fh:
        for ts, buf in dpkt.pcap.Reader(fh):
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            _ = (ts, eth.src, eth.dst, eth.type, ip.src, ip.dst, ip.p, ip.data.sport, ip.data.dport)
            n += 1
            if n >= limit:
                break
    return {"packets": n, "seconds": time.perf_counter() - t}


def run_pcapng(path: str, limit: int) -> dict:
    from pcapng import FileScanner
    from pcapng.blocks import EnhancedPacket
    t = time.perf_counter()
    n = 0
    with open(path, "rb") as fh:
        for block in FileScanner(fh):
            if isinstance(block, EnhancedPacket):
                _ = (block.timestamp, block.packet_len, block.packet_data)
                n += 1
                if n >= limit:
                    break
    return {"packets": n, "seconds": time.perf_counter() - t}


def run_scapy(path: str, limit: int) -> dict:
    from scapy.all import IP, UDP, Ether, PcapReader
    t = time.perf_counter()
    n = 0
    for pkt in PcapReader(path):
        _ = (pkt.time, pkt[Ether].src, pkt[IP].src, pkt[UDP].dport)
        n += 1
        if n >= limit:
            break
    return {"packets": n, "seconds": time.perf_counter() - t}


def child(argv: list[str]) -> None:
    _pin()
    kind, path, arg = argv[0], argv[1], argv[2]
    limit = int(arg) if arg != "-" else None
    fn = {"hftlab": lambda: run_hftlab(path, False, limit), "hftlab_itch": lambda: run_hftlab(path, True, limit),
          "dpkt": lambda: run_dpkt(path, limit), "pcapng": lambda: run_pcapng(path, limit),
          "scapy": lambda: run_scapy(path, limit)}[kind]
    out = fn()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def measure(kind: str, path: Path, limit: int | None) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, str(path), str(limit) if limit else "-"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["pps"] = out["packets"] / out["seconds"]
    return out


def environment() -> dict:
    import dpkt
    import numba
    import pyarrow
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "hftlab/capture"], capture_output=True,
                               text=True, cwd=Path(__file__).parent.parent).stdout.strip()
    except OSError:
        rev, dirty = "?", ""
    versions = {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
                "pyarrow": pyarrow.__version__, "dpkt": dpkt.__version__}
    for mod in ("pcapng", "scapy"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:
            versions[mod] = "?"
    return {"cpu": cpu, "cores_used": 1, "kernel": platform.release(), "git": rev + ("+dirty" if dirty else ""),
            "versions": versions}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=4_000_000)
    ap.add_argument("--small", type=int, default=1_000_000, help="packets of the second file (RSS check)")
    ap.add_argument("--slice", type=int, default=200_000, help="packets for dpkt and python-pcapng")
    ap.add_argument("--scapy-slice", type=int, default=20_000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    env = environment()
    with tempfile.TemporaryDirectory(prefix="hftlab-bench-") as tmp:
        big, small, ng = Path(tmp, "big.pcap"), Path(tmp, "small.pcap"), Path(tmp, "slice.pcapng")
        t = time.perf_counter()
        write_pcap(big, args.packets)
        write_pcap(small, args.small)
        gen_s = time.perf_counter() - t
        have_editcap = shutil.which("editcap") is not None
        if have_editcap:
            subprocess.run(["editcap", "-F", "pcapng", "-r", str(big), str(ng), f"1-{args.slice}"], check=True,
                           capture_output=True)
        r = {"hftlab": measure("hftlab", big, None), "hftlab_itch": measure("hftlab_itch", big, None),
             "hftlab_small": measure("hftlab", small, None),
             "dpkt": measure("dpkt", big, args.slice), "scapy": measure("scapy", big, args.scapy_slice)}
        if have_editcap:
            r["pcapng"] = measure("pcapng", ng, args.slice)
            r["hftlab_pcapng"] = measure("hftlab", ng, None)
        sizes = {"big": big.stat().st_size, "small": small.stat().st_size}
    print(f"environment: {json.dumps(env)}")
    print(f"generated {args.packets:,} + {args.small:,} MoldUDP64 frames ({FRAME} B) in {gen_s:.1f} s; "
          f"files {sizes['big'] / 2**20:.0f} MiB and {sizes['small'] / 2**20:.0f} MiB")
    h = r["hftlab"]["pps"]
    rows = [("hftlab (layers)", "whole file", r["hftlab"]), ("hftlab (+ITCH decode)", "whole file", r["hftlab_itch"]),
            ("dpkt 1.9 eth/ip/udp", f"first {args.slice:,}", r["dpkt"]),
            ("scapy PcapReader", f"first {args.scapy_slice:,}", r["scapy"])]
    if "pcapng" in r:
        rows += [("python-pcapng FileScanner", f"{args.slice:,} pcapng", r["pcapng"]),
                 ("hftlab on the same pcapng", f"{args.slice:,} pcapng", r["hftlab_pcapng"])]
    print(f"{'reader':28} {'input':18} {'packets':>10} {'seconds':>8} {'M pkt/s':>8} {'hftlab x':>9} {'peak RSS MB':>11}")
    for name, inp, m in rows:
        ratio = h / m["pps"]
        if name.startswith("python-pcapng"):
            ratio = r["hftlab_pcapng"]["pps"] / m["pps"]
        print(f"{name:28} {inp:18} {m['packets']:>10,} {m['seconds']:>8.3f} {m['pps'] / 1e6:>8.3f} "
              f"{ratio:>9.1f} {m['peak_rss_mb']:>11.0f}")
    print(f"peak RSS streaming: {args.small:,} pkts ({sizes['small'] / 2**20:.0f} MiB) "
          f"{r['hftlab_small']['peak_rss_mb']:.0f} MB; {args.packets:,} pkts ({sizes['big'] / 2**20:.0f} MiB) "
          f"{r['hftlab']['peak_rss_mb']:.0f} MB")
    targets = {">= 5 M packets/s": h >= 5e6, ">= 50x dpkt": h / r["dpkt"]["pps"] >= 50,
               "RSS flat (4x file, < 1.25x RSS)": r["hftlab"]["peak_rss_mb"] < 1.25 * r["hftlab_small"]["peak_rss_mb"]}
    print("targets: " + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in targets.items()))
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "results": r, "sizes": sizes,
                                         "targets": targets}, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
