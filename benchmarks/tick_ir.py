"""Instructions of the core's triggering ticks on the host, by callgrind (issue 16).

    python benchmarks/tick_ir.py [--dataset ITCH_FILE] [--synthetic N] [--tree PATH] [--top 15] [--whole]

The host build of kernel_src/core (libhftcore.a, this checkout's or that of
--tree PATH, another checkout such as a git worktree of an older revision)
runs every message of the feed in its own MoldUDP64 datagram through
engine_on_packet (benchmarks/c/tick_ir.c); callgrind counts the instructions
of exactly the datagrams that emit an order, from the call up to the order
written (the emit callback, where HFT-OS rings the doorbell: what the engine
does after it, risk_commit and the book's deferred work, is off the
tick-to-trade path; --whole counts the whole call). Printed: per-trigger
instructions (count, median, min, max: deterministic, no timing), and the
functions they go to (self cost, summed over the triggers, and per trigger;
tick_ir.c:main is the ~20 instructions of the client requests around each).
The feed is the RITCH sample by default; --synthetic N adds a synthetic file
of N messages (hftlab.model.synth, seed 0). The OS figure (RX seen to the
doorbell, tcg-icount: benchmarks/tick_to_trade.py --max-count 1) is this plus
the driver, the frame parse and the doorbell, and differs by the kernel's
flags (-mno-sse ...). Needs valgrind (Debian: apt-get install valgrind).
"""
from __future__ import annotations

import argparse
import glob
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RITCH = ROOT / "datasets" / "ritch" / "ex20101224.TEST_ITCH_50"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise SystemExit(f"tick_ir: {tool} not found; it comes with valgrind (apt-get install valgrind)")
    return path


def build(tree: Path, tmp: Path) -> Path:
    lib = tmp / "b" / "libhftcore.a"
    mk = subprocess.run(["make", "-s", "-C", str(tree / "kernel_src"), f"BUILD={tmp / 'b'}", "core-host"],
                        capture_output=True, text=True)
    if mk.returncode != 0 or not lib.exists():
        raise SystemExit(f"tick_ir: building {tree}'s libhftcore.a failed:\n{mk.stderr[-2000:]}")
    exe = tmp / "tick_ir"
    cc = subprocess.run(["cc", "-std=c11", "-O2", "-g", f"-I{tree / 'kernel_src' / 'core'}",
                         str(ROOT / "benchmarks" / "c" / "tick_ir.c"), str(lib), "-o", str(exe)],
                        capture_output=True, text=True)
    if cc.returncode != 0:
        raise SystemExit(f"tick_ir: compiling benchmarks/c/tick_ir.c failed (valgrind/callgrind.h is in "
                         f"Debian's valgrind package):\n{cc.stderr[-2000:]}")
    return exe


def measure(exe: Path, feed: Path, cfg: Path, tmp: Path, top: int, whole: bool = False) -> None:
    vg = need("valgrind")
    need("callgrind_annotate")
    out = tmp / f"cg-{feed.name}"
    per = subprocess.run([vg, "--tool=callgrind", "--collect-atstart=no", f"--callgrind-out-file={out}.d",
                          str(exe), str(feed), str(cfg), "dump"] + (["whole"] if whole else []),
                         capture_output=True, text=True)
    if per.returncode != 0:
        raise SystemExit(f"tick_ir: {exe.name} failed on {feed}:\n{per.stderr[-2000:]}")
    counts = []
    for f in glob.glob(f"{out}.d.*"):
        for line in Path(f).read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                counts.append(int(line.split()[1]))
                break
    agg = subprocess.run([vg, "--tool=callgrind", "--collect-atstart=no", f"--callgrind-out-file={out}.a",
                          str(exe), str(feed), str(cfg)] + (["whole"] if whole else []),
                         capture_output=True, text=True, check=True)
    print(f"\n{feed.name}: {agg.stdout.strip()}")
    if not counts:
        print("  no order was sent: nothing to count")
        return
    span = "the whole engine_on_packet call" if whole else "up to the order written"
    print(f"  instructions per triggering tick (core only, {span}): n={len(counts)} "
          f"median={statistics.median(counts):.0f} min={min(counts)} max={max(counts)}")
    ann = subprocess.run(["callgrind_annotate", "--auto=no", "--inclusive=no", f"{out}.a"], capture_output=True,
                         text=True, check=True).stdout
    rows = []
    for line in ann.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S+)", line)
        if m and "PROGRAM TOTALS" not in line:
            fn = m.group(2).rsplit("/", 1)[-1]
            rows.append((int(m.group(1).replace(",", "")), fn))
    print(f"  {'function (file:function, self)':52} {'total':>8} {'/trigger':>9}")
    for ir, fn in rows[:top]:
        print(f"  {fn[:52]:52} {ir:>8,} {ir / len(counts):>9.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=RITCH)
    ap.add_argument("--synthetic", type=int, default=0, metavar="N", help="also a synthetic feed of N messages")
    ap.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose core is measured")
    ap.add_argument("--top", type=int, default=15, help="functions listed")
    ap.add_argument("--whole", action="store_true",
                    help="count the whole call, with the work after the order (risk_commit, book_settle)")
    args = ap.parse_args(argv)
    need("valgrind")
    from hftlab.model import core
    with tempfile.TemporaryDirectory(prefix="hftlab-tickir-") as t:
        tmp = Path(t)
        exe = build(args.tree.resolve(), tmp)
        cfg = tmp / "engine_config.bin"
        cfg.write_bytes(core.EngineConfig().to_bytes())
        feeds = [args.dataset]
        if args.synthetic:
            from hftlab.model import synth
            feeds.append(tmp / f"synthetic-{args.synthetic}.itch")
            synth.generate(feeds[-1], args.synthetic, seed=0)
        print(f"tick_ir: core of {args.tree.resolve()}, default EngineConfig, one message per datagram")
        for feed in feeds:
            measure(exe, feed, cfg, tmp, args.top, args.whole)
    return 0


if __name__ == "__main__":
    sys.exit(main())
