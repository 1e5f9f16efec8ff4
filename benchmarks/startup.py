"""CLI start-up and the first read of a capture in a fresh process.

Issue 11, item 5 ("a CLI that starts at once"). Every figure is a new
process, timed from the outside (wall clock, spawn to exit) or, for reads,
from inside the child; --reps processes per row, the table gives median,
min and max:

  python (floor)           `python3 -c pass`: the interpreter and site alone
  numba (floor)            import numba + one call of a cached @njit kernel:
                           what any process running a numba kernel pays
  hftlab --help            `python3 -m hftlab.cli --help`
  hftlab ingest (10 pkts)  `python3 -m hftlab.cli ingest` of a 10-packet pcap
                           (kernels run in Python: no numba, see
                           hftlab.capture._jit)
  import hftlab.capture.CaptureReader   in a fresh child (numpy, pyarrow and
                           the decoders' modules; not numba)
  1M read: first           the first full read of a 1 M-packet pcap in that
                           child (numba is imported, set up and its kernels
                           loaded from its cache here)
  1M read: second          the second read of the same file in that child
  1M read: first/second    the ratio, per child
  1M read after warm read  a child that first reads the 10-packet file, then
                           the 1 M one: the first-read cost that is not the
                           kernels' loading

Inputs are generated (the MoldUDP64/ITCH pcap of benchmarks/ingest.py) in a
temporary directory. The kernels must be in numba's cache (`make setup`
warms it); one untimed run of each command goes first. Timings on a shared
2-core machine are noisy: the load average before and after is printed.
Usage:
    python benchmarks/startup.py [--reps 5] [--packets 1000000] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

_READ_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from hftlab.capture import CaptureReader
t1 = time.perf_counter()
def read(path):
    t = time.perf_counter()
    n = sum(b.packets.num_rows for b in CaptureReader(path))
    return time.perf_counter() - t, n
out = {"import": t1 - t0}
if len(sys.argv) > 2:
    out["warm"], _ = read(sys.argv[2])
out["first"], n1 = read(sys.argv[1])
out["second"], n2 = read(sys.argv[1])
out["packets"] = [n1, n2]
out["modules"] = sorted(m for m in ("numba", "scipy", "pandas", "polars", "pyarrow.parquet", "rich")
                        if m in sys.modules)
print(json.dumps(out))
"""

_NUMBA_FLOOR = """
import numba as nb, numpy as np
@nb.njit(cache=True)
def f(a):
    return a.sum()
f(np.arange(3))
"""


def _wall(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def _stats(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from ingest import write_pcap  # benchmarks/ingest.py's generator

    from hftlab.util.env import environment

    env = dict(os.environ)
    py = sys.executable
    load_before = _load()
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="hftlab-startup-") as tmp:
        tmp = Path(tmp)
        small, big = tmp / "ten.pcap", tmp / "big.pcap"
        write_pcap(small, 10)
        write_pcap(big, args.packets)
        floor = tmp / "numba_floor.py"
        floor.write_text(_NUMBA_FLOOR)

        commands = {
            "python -c pass (floor)": [py, "-c", "pass"],
            "numba + cached kernel (floor)": [py, str(floor)],
            "hftlab --help": [py, "-m", "hftlab.cli", "--help"],
            "hftlab ingest (10 packets)": [py, "-m", "hftlab.cli", "ingest", str(small)],
        }
        for name, cmd in commands.items():
            _wall(cmd, env)                                   # untimed: caches, page cache
            rows[name] = _stats([_wall(cmd, env) for _ in range(args.reps)])

        def child(*paths: Path) -> dict:
            p = subprocess.run([py, "-c", _READ_CHILD, *map(str, paths)], cwd=ROOT, env=env,
                               check=True, capture_output=True, text=True)
            return json.loads(p.stdout.strip().splitlines()[-1])

        child(big)                                            # untimed
        runs = [child(big) for _ in range(args.reps)]
        for r in runs:
            if r["packets"] != [args.packets, args.packets]:
                raise SystemExit(f"read {r['packets']} packets, expected {args.packets}")
        rows["import hftlab.capture.CaptureReader"] = _stats([r["import"] for r in runs])
        rows[f"{args.packets} pkts: first read"] = _stats([r["first"] for r in runs])
        rows[f"{args.packets} pkts: second read"] = _stats([r["second"] for r in runs])
        rows[f"{args.packets} pkts: first/second (ratio)"] = _stats([r["first"] / r["second"] for r in runs])
        warm = [child(big, small) for _ in range(args.reps)]
        rows[f"{args.packets} pkts: first read after a 10-pkt read"] = _stats([r["first"] for r in warm])
        rows[f"{args.packets} pkts: (after 10-pkt) first/second"] = _stats(
            [r["first"] / r["second"] for r in warm])
        modules = runs[0]["modules"]

    envd = {**environment(), "load_before": load_before, "load_after": _load()}
    print(f"environment: {json.dumps(envd)}")
    print(f"modules loaded by a reading child: {', '.join(modules)}")
    w = max(len(k) for k in rows)
    print(f"{'':<{w}}  {'median':>8}  {'min':>8}  {'max':>8}  (s; ratio rows: x)")
    for name, s in rows.items():
        print(f"{name:<{w}}  {s['median']:8.3f}  {s['min']:8.3f}  {s['max']:8.3f}")
    if args.json:
        args.json.write_text(json.dumps({"environment": envd, "rows": rows, "reps": args.reps,
                                         "packets": args.packets}, indent=1))


if __name__ == "__main__":
    main()
