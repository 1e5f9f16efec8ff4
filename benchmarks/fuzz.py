"""Long libFuzzer run over the trading core (issue 2, item 5 "Fuzzing").

    python3 benchmarks/fuzz.py [--seconds 300] [--build DIR] [--strategy NAME|FILE]

Builds tests/fuzz (make -C tests/fuzz fuzz seeds) and runs the two harnesses
one after the other, splitting --seconds 4:1:

* fuzz_engine: MoldUDP64 datagrams -> ITCH -> book -> strategy -> risk ->
  OUCH round trip, with the book/risk invariants checked after every datagram;
* fuzz_net: raw Ethernet frames (UDP, ARP) and ITCH file framing.

The corpus grows across runs in BUILD/fuzz/corpus/; each run's crash
reproducers and logs go to BUILD/fuzz/runs/<time>/. Prints the environment,
then per harness: inputs executed, exec/s, coverage, crashes found (the
crash-/leak-/timeout-/oom- files libFuzzer wrote). Exits 1 when any harness
found a crash or failed, so it can gate a CI job. --strategy fuzzes the engine
with another strategy compiled in (kernel_src/strategies/<name>.c or a file;
default trigger), in BUILD/strategy-<name>/, so each strategy keeps its corpus.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from hftlab.util.env import cpu_model  # noqa: E402
HARNESSES = (("fuzz_engine", 4), ("fuzz_net", 1))  # (name, share of the time)
ARTIFACT_KINDS = ("crash-", "leak-", "timeout-", "oom-")


def _cmd(*args: str) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment() -> dict[str, str]:
    rev = _cmd("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD")
    dirty = _cmd("git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no")
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(), "nproc": str(os.cpu_count()), "kernel": platform.release(),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "clang": _cmd("clang", "--version").splitlines()[0] if _cmd("clang", "--version") else "missing",
        "git": rev + ("-dirty" if dirty and rev != "unknown" else ""),
    }


def parse_stats(log: str) -> dict[str, Any]:
    """libFuzzer's -print_final_stats lines and its last coverage line."""
    st: dict[str, Any] = {k: int(v) for k, v in re.findall(r"stat::(\w+):\s+(\d+)", log)}
    cov = re.findall(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/", log)
    if cov:
        st["cov"], st["ft"], st["corpus"] = (int(x) for x in cov[-1][1:])
    return st


def run_harness(build: Path, name: str, seconds: int, run_dir: Path) -> dict[str, Any]:
    fz = build / "fuzz"
    kind = name.removeprefix("fuzz_")
    corpus = fz / "corpus" / kind
    corpus.mkdir(parents=True, exist_ok=True)
    art = run_dir / kind
    art.mkdir(parents=True, exist_ok=True)
    cmd = [str(fz / name), f"-max_total_time={seconds}", "-print_final_stats=1",
           "-error_exitcode=77", "-timeout=10", "-rss_limit_mb=2048",
           f"-artifact_prefix={art}/", str(corpus), str(fz / "seeds" / kind)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    (art / f"{name}.log").write_text(p.stderr)
    found = sorted(f.name for f in art.iterdir() if f.name.startswith(ARTIFACT_KINDS))
    st = parse_stats(p.stderr)
    st.update(name=name, seconds=seconds, returncode=p.returncode, crashes=len(found),
              artifacts=[str(art / f) for f in found])
    if p.returncode not in (0, 77) or found:
        tail = [ln for ln in p.stderr.splitlines() if "ERROR" in ln or "check failed" in ln]
        st["why"] = tail[:3]
    return st


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=300, help="total fuzzing time, split 4:1")
    ap.add_argument("--build", type=Path, default=ROOT / "build", help="build directory")
    ap.add_argument("--strategy", default=None,
                    help="strategy compiled into the engine: a bundled name (trigger, imbalance, "
                         "quoter) or a C file; default trigger")
    args = ap.parse_args(argv)
    if args.seconds < 5:
        ap.error("--seconds must be at least 5")
    build = args.build.resolve()
    make = ["make", "-s", "-j2", "-C", str(ROOT / "tests" / "fuzz"), "fuzz", "seeds"]
    if args.strategy:
        src = ROOT / "kernel_src" / "strategies" / f"{args.strategy}.c"
        src = src if src.is_file() else Path(args.strategy).resolve()
        if not src.is_file():
            ap.error(f"--strategy {args.strategy}: no such strategy or file")
        build = build / f"strategy-{src.stem}"
        make.append(f"STRATEGY={src}")
        print(f"strategy: {src}")
    subprocess.run(make + [f"BUILD={build}"], check=True, stdout=subprocess.DEVNULL)
    run_dir = build / "fuzz" / "runs" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    env = environment()
    print("environment:")
    for k, v in env.items():
        print(f"  {k:8} {v}")
    total = sum(share for _, share in HARNESSES)
    results = [run_harness(build, name, max(1, args.seconds * share // total), run_dir)
               for name, share in HARNESSES]

    print(f"\n{'harness':12} {'seconds':>7} {'inputs executed':>16} {'exec/s':>8} {'cov':>6} "
          f"{'corpus':>7} {'crashes':>8}")
    for r in results:
        print(f"{r['name']:12} {r['seconds']:>7} {r.get('number_of_executed_units', 0):>16,} "
              f"{r.get('average_exec_per_sec', 0):>8,} {r.get('cov', 0):>6} {r.get('corpus', 0):>7} "
              f"{r['crashes']:>8}")
    print(f"logs and artifacts: {run_dir}")
    bad = [r for r in results if r["crashes"] or r["returncode"] != 0]
    for r in bad:
        print(f"{r['name']}: exit {r['returncode']}, {r['crashes']} crash file(s): "
              f"{r['artifacts']} {r.get('why', '')}")
    print(f"crashes found: {sum(r['crashes'] for r in results)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
