"""Capture ingestion throughput: hftlab against dpkt, first and second read.

Issue 11's table. Generates (with numpy, in --cache or a temporary
directory, never in git) a nanosecond pcap of N Ethernet/IPv4/UDP/MoldUDP64
frames (one ITCH 5.0 Add Order each) for every --sizes N, and from it the
same packets as pcapng (editcap), Endace ERF (Ethernet records, as
Wireshark writes them but without extension headers), and the pcap
compressed by the gzip (-1) and zstd (-3) tools.

For every file and reader: the file is read once with `cat` (page cache,
the same warm-up for every reader), then --reps fresh child processes, each
pinned to one core, time their import, then a first and a second full read
of the file. Both readers decode the same layers:

  hftlab  CaptureReader(payloads=False): Arrow batches with the Ethernet,
          IPv4, UDP and MoldUDP64-header columns (its `engine="auto"`:
          numba for files this size, so the first read pays numba's set-up)
  dpkt    dpkt.pcap/pcapng.Reader (through gzip.open / zstandard for the
          compressed files) + Ethernet/IP/UDP objects + the MoldUDP64 header
          (struct.unpack_from); dpkt reads no ERF: the ERF row's ratio is
          against dpkt on the pcap of the same packets

The table gives, per row, first and second read (median, min, max of the
reps, seconds), M packets/s at the medians and hftlab's speed-up over dpkt
(dpkt's median / hftlab's, first against first, second against second).
Every reader must count every packet, or the script fails. Prints the
environment (hftlab.util.env plus library versions). Usage:
    python benchmarks/ingest.py [--sizes 1000000,4000000] [--reps 3]
        [--formats pcap,pcapng,erf,pcap.gz,pcap.zst] [--readers hftlab,dpkt]
        [--cache DIR] [--json OUT]
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


# ------------------------------------------------------------------ other formats
def write_erf(src: Path, dst: Path) -> None:
    """The packets of a nanosecond little-endian pcap made by write_pcap as
    ERF ETH records (varying length, no padding): 16-byte header (32.32
    fixed-point time, type 2, flags 0x04, rlen, lctr 0, wlen), 2-byte pad,
    frame. Written in chunks."""
    raw = np.memmap(src, np.uint8, mode="r")
    rec = np.dtype([("sec", "<u4"), ("nsec", "<u4"), ("cap", "<u4"), ("orig", "<u4"), ("data", "u1", FRAME)])
    out = np.dtype([("frac", "<u4"), ("sec", "<u4"), ("type", "u1"), ("flags", "u1"), ("rlen", ">u2"),
                    ("lctr", ">u2"), ("wlen", ">u2"), ("pad", "u1", 2), ("data", "u1", FRAME)])
    recs = raw[24:].view(rec)
    with open(dst, "wb") as fh:
        for start in range(0, len(recs), 1 << 20):
            r = recs[start:start + (1 << 20)]
            e = np.zeros(len(r), out)
            e["sec"] = r["sec"]
            e["frac"] = (r["nsec"].astype(np.uint64) << np.uint64(32)) // np.uint64(10**9)
            e["type"], e["flags"], e["rlen"], e["wlen"] = 2, 0x04, 18 + FRAME, FRAME
            e["data"] = r["data"]
            fh.write(e.tobytes())


def make_files(cache: Path, sizes: list[int], formats: list[str]) -> dict[tuple[int, str], Path]:
    """{(packets, format): path}, generated when absent from the cache."""
    out = {}
    for n in sizes:
        pcap = cache / f"mold-{n}.pcap"
        if not pcap.exists():
            write_pcap(pcap.with_suffix(".tmp"), n)
            pcap.with_suffix(".tmp").rename(pcap)
        makers = {
            "pcap": None,
            "pcapng": lambda d: subprocess.run(["editcap", "-F", "pcapng", str(pcap), str(d)], check=True),
            "erf": lambda d: write_erf(pcap, d),
            "pcap.gz": lambda d: _shell(["gzip", "-1", "-c", str(pcap)], d),
            "pcap.zst": lambda d: _shell(["zstd", "-3", "-q", "-c", str(pcap)], d),
        }
        for fmt in formats:
            path = pcap if fmt == "pcap" else cache / f"mold-{n}.{fmt}"
            if not path.exists():
                tmp = path.with_name(path.name + ".tmp")
                makers[fmt](tmp)
                tmp.rename(path)
            out[(n, fmt)] = path
    return out


def _shell(cmd: list[str], dst: Path) -> None:
    with open(dst, "wb") as fh:
        subprocess.run(cmd, stdout=fh, check=True)


# ------------------------------------------------------------------ child measurements
def _pin() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def read_hftlab(path: str) -> int:
    from hftlab.capture import CaptureReader
    return sum(b.packets.num_rows for b in CaptureReader(path, payloads=False))


def _open_dpkt(path: str):
    if path.endswith(".gz"):
        import gzip
        return gzip.open(path, "rb")
    if path.endswith(".zst"):
        import zstandard
        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
    return open(path, "rb")


def read_dpkt(path: str) -> int:
    import struct

    import dpkt
    mold = struct.Struct(">10sQH")              # MoldUDP64 header: session, sequence, count
    n = 0
    with _open_dpkt(path) as fh:
        reader = dpkt.pcapng.Reader(fh) if path.endswith(".pcapng") else dpkt.pcap.Reader(fh)
        for ts, buf in reader:
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            udp = ip.data
            session, seq, count = mold.unpack_from(udp.data)
            _ = (ts, eth.src, eth.dst, eth.type, ip.src, ip.dst, ip.p, udp.sport, udp.dport, session, seq,
                 count)
            n += 1
    return n


READERS = {"hftlab": ("hftlab.capture", read_hftlab), "dpkt": ("dpkt", read_dpkt)}


def child(argv: list[str]) -> None:
    """One fresh process: import the reader, then read the file twice."""
    _pin()
    kind, path = argv[0], argv[1]
    module, fn = READERS[kind]
    t = time.perf_counter()
    __import__(module)
    out = {"import_s": time.perf_counter() - t}
    for name in ("first", "second"):
        t = time.perf_counter()
        out[f"{name}_count"] = fn(path)
        out[f"{name}_s"] = time.perf_counter() - t
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def _stats(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def measure(kind: str, path: Path, reps: int, expect: int) -> dict:
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)   # page cache
    runs = []
    for _ in range(reps):
        cmd = [sys.executable, __file__, "--child", kind, str(path)]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if res.returncode != 0:
            raise SystemExit(f"{kind} on {path.name} failed (exit {res.returncode}):\n{res.stderr[-2000:]}")
        out = json.loads(res.stdout.strip().splitlines()[-1])
        if (out["first_count"], out["second_count"]) != (expect, expect):
            raise SystemExit(f"{kind} on {path.name} counted {out['first_count']}/{out['second_count']} "
                             f"packets, the file has {expect:,}")
        runs.append(out)
    return {"runs": runs, "packets": expect, "reps": reps,
            **{k: _stats([r[f"{k}_s"] for r in runs]) for k in ("import", "first", "second")},
            "ratio_first_second": _stats([r["first_s"] / r["second_s"] for r in runs]),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def environment() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from hftlab.util.env import environment as hftlab_env
    versions = {}
    for dist in ("numpy", "numba", "pyarrow", "dpkt", "zstandard"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = "not installed"
    return {**hftlab_env(), "cores_used": 1, "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "versions": versions}


def table(r: dict, sizes: list[int], formats: list[str]) -> list[str]:
    def cell(s: dict) -> str:
        return f"{s['median']:.3f} ({s['min']:.3f}-{s['max']:.3f})"

    lines = ["| packets | format | reader | first read s, median (min-max) | M pkt/s | x dpkt "
             "| second read s, median (min-max) | M pkt/s | x dpkt | first/second |",
             "| ---: | --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: |"]
    for n in sizes:
        for fmt in formats:
            ref = r.get(f"{n}:{fmt}:dpkt") or r.get(f"{n}:pcap:dpkt")
            for kind in ("hftlab", "dpkt"):
                m = r.get(f"{n}:{fmt}:{kind}")
                if m is None:
                    continue
                xs = []
                for k in ("first", "second"):
                    x = ref[k]["median"] / m[k]["median"] if ref else float("nan")
                    mark = "*" if fmt == "erf" and kind == "hftlab" else ""
                    xs.append(f"{x:.1f}{mark}" if kind == "hftlab" else "1")
                if not ref:
                    xs = ["-", "-"]
                lines.append(f"| {n:,} | {fmt} | {kind} | {cell(m['first'])} | {n / m['first']['median'] / 1e6:.2f} "
                             f"| {xs[0]} | {cell(m['second'])} | {n / m['second']['median'] / 1e6:.2f} | {xs[1]} "
                             f"| {m['ratio_first_second']['median']:.2f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,4000000", help="packets per file, comma-separated")
    ap.add_argument("--formats", default="pcap,pcapng,erf,pcap.gz,pcap.zst")
    ap.add_argument("--reps", type=int, default=3, help="fresh processes per reader and file")
    ap.add_argument("--cache", type=Path, default=None,
                    help="keep the generated files here (default: a temporary directory)")
    ap.add_argument("--readers", default="hftlab,dpkt", help="hftlab, dpkt or both")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    formats = args.formats.split(",")
    if args.reps < 1 or min(sizes) < 1 or not set(formats) <= {"pcap", "pcapng", "erf", "pcap.gz", "pcap.zst"}:
        ap.error("--reps and --sizes must be >= 1; formats: pcap, pcapng, erf, pcap.gz, pcap.zst")
    for tool in ("editcap", "gzip", "zstd", "cat"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing (make setup installs it)")
    env = environment()
    r: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="hftlab-bench-") as tmp:
        cache = args.cache or Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        files = make_files(cache, sizes, formats)
        gen_s = time.perf_counter() - t
        sizes_b = {f"{n}:{fmt}": p.stat().st_size for (n, fmt), p in files.items()}
        for (n, fmt), path in files.items():
            for kind in args.readers.split(","):
                if kind == "dpkt" and fmt == "erf":
                    continue
                print(f"  {kind} on {path.name} ...", file=sys.stderr, flush=True)
                r[f"{n}:{fmt}:{kind}"] = measure(kind, path, args.reps, n)
    env["loadavg_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"environment: {json.dumps(env)}")
    print(f"inputs: MoldUDP64 frames ({FRAME} B, one ITCH 'A' each), generated/converted in {gen_s:.0f} s; "
          + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in sizes_b.items()))
    print(f"protocol: per reader and file, `cat` once (page cache), then {args.reps} fresh processes pinned "
          "to one core, each: import, first read, second read; median (min-max) of the processes; "
          "x dpkt = dpkt's median / hftlab's; * ERF: against dpkt on the pcap (dpkt reads no ERF)\n")
    print("\n".join(table(r, sizes, formats)))
    hft_first = {k: v for k, v in r.items() if k.endswith(":hftlab") and k.split(":")[1] in ("pcap", "pcapng", "erf")}
    goals = {}
    for k, m in hft_first.items():
        n, fmt, _ = k.split(":")
        ref = r.get(f"{n}:{fmt}:dpkt") or r.get(f"{n}:pcap:dpkt")
        pps = int(n) / m["first"]["median"]
        goals[f"{n} {fmt} first read >= 5 M pkt/s"] = (pps >= 5e6, round(pps / 1e6, 2))
        if ref:
            x = ref["first"]["median"] / m["first"]["median"]
            goals[f"{n} {fmt} first read >= 50x dpkt"] = (x >= 50, round(x, 1))
    print("\ngoals (first reads of uncompressed files): "
          + "; ".join(f"{k}: {'met' if ok else 'NOT met'} ({v})" for k, (ok, v) in goals.items()))
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "results": r, "sizes": sizes_b,
                                         "protocol": {"reps": args.reps, "sizes": sizes, "formats": formats},
                                         "goals": goals}, indent=1))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
