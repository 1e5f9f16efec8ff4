"""Per bundled strategy: HFT-OS's tick in instructions, and the host core's ns per message.

    python benchmarks/strategies.py [--reps 5] [--passes 20] [--strategies trigger,imbalance,quoter] [--no-boot]
        [--dataset ITCH_FILE] [--rate 2000]

For each strategy (kernel_src/strategies/<name>.c, with the parameters
tests/test_strategies.py uses):
  - tick: `hftlab run` of HFT-OS under tcg-icount (-icount shift=0: the guest
    TSC counts instructions) on the dataset (RITCH by default), one ITCH
    message per datagram at --rate messages/s: tsc_doorbell - tsc_rx per
    order (decide: RX seen to the TX doorbell), min, median, max;
    identical at every repetition, so one boot each;
  - core: the host core alone, as benchmarks/core.py measures it:
    build/bench_engine (benchmarks/c/bench_engine.c, -O2) built with this
    strategy (make -C tests/fuzz STRATEGY=... bench_engine, in a temporary
    directory) and run with the strategy's EngineConfig (--config): the
    whole file through engine_on_packet (64 messages per datagram), ns per
    message; --reps runs, each the median of --passes timed passes after
    one warm-up, the strategies' runs alternating; median of the runs with
    min and max, and the median (min-max) over the full-speed passes only
    (benchmarks/machine_speed.py: this VM's speed changes by ~1.5x from one
    second to the next). Its order count must be the golden model's;
  - golden: the golden model's engine (the same C, -O2, through cffi) over
    the whole file, ns per message, median of --reps with min and max (wall
    clock around Engine.feed_file; the file is mapped and warm): what a
    notebook sees, cffi and the per-order records included.
The machine is shared: the host figures are noisy, compare them side by side.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hftlab.experiment.run import RunSpec, run  # noqa: E402
from hftlab.model import core  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_speed import FULL_SPEED_TOL, describe, full_speed, passes_of  # noqa: E402

RITCH = ROOT / "datasets" / "ritch" / "ex20101224.TEST_ITCH_50"
CONFIGS = {
    "trigger": core.StrategyConfig(),
    "imbalance": core.StrategyConfig(file="imbalance", imbalance_num=150, imbalance_den=3,
                                     min_top_shares=10, max_spread=10_000),
    "quoter": core.StrategyConfig(file="quoter", imbalance_num=1, imbalance_den=100, max_spread=2000),
}


def host_ns_per_message(cfg: core.EngineConfig, reps: int, feed: Path) -> tuple[float, float, float, int]:
    core.Engine(cfg).feed_file(feed)  # compile (first use) and warm the file
    out, n = [], 0
    for _ in range(reps):
        eng = core.Engine(cfg)
        t0 = time.perf_counter()
        n = eng.feed_file(feed)
        out.append((time.perf_counter() - t0) * 1e9 / n)
    return statistics.median(out), min(out), max(out), n


def build_core(name: str, cfg: core.EngineConfig, tmp: Path) -> tuple[Path, Path]:
    """bench_engine built with strategy `name`, and its config file."""
    from hftlab.model.strategy_cache import resolve_strategy

    build = tmp / f"bench-{name}"
    mk = subprocess.run(["make", "-s", "-C", str(ROOT / "tests" / "fuzz"), f"BUILD={build}",
                         f"STRATEGY={resolve_strategy(CONFIGS[name].file)}", "bench_engine"],
                        capture_output=True, text=True)
    if mk.returncode != 0:
        raise SystemExit(f"strategies: {name}: building bench_engine failed:\n{mk.stderr[-2000:]}")
    conf = tmp / f"{name}.cfg"
    conf.write_bytes(cfg.to_bytes())
    return build / "bench_engine", conf


def core_ns_per_message(builds: dict[str, tuple[Path, Path]], reps: int, passes: int,
                        feed: Path) -> dict[str, dict[str, Any]]:
    """Every strategy's bench_engine, `reps` runs each, the strategies
    alternating (round k starts at strategy k mod n, so that each meets the
    machine's states alike): on_packet ns per message, median, min and max
    over the runs (each the median of `passes`), the full-speed figure
    (machine_speed.full_speed over every pass, against the fastest decode of
    the whole benchmark) and the order count."""
    names = list(builds)
    runs: dict[str, list[float]] = {n: [] for n in names}
    by_pass: dict[str, list[tuple[float, float | None, float]]] = {n: [] for n in names}
    orders: dict[str, int] = {}
    for k in range(reps):
        for i in range(len(names)):
            name = names[(k + i) % len(names)]
            exe, conf = builds[name]
            r = subprocess.run([str(exe), str(feed), "--reps", str(passes), "--config", str(conf), "--json"],
                               capture_output=True, text=True, check=True)
            j = json.loads(r.stdout)
            runs[name].append(j["paths"]["on_packet"]["ns_median"])
            by_pass[name].extend(passes_of(j, "on_packet"))
            orders[name] = j["orders"]
    best = min(d for ps in by_pass.values() for d, _, _ in ps)
    return {n: {"median": statistics.median(runs[n]), "min": min(runs[n]), "max": max(runs[n]),
                "full_speed": full_speed(by_pass[n], best), "orders": orders[n]} for n in names}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--passes", type=int, default=20, help="timed bench_engine passes per core run (<= 50)")
    ap.add_argument("--strategies", default=",".join(CONFIGS))
    ap.add_argument("--no-boot", action="store_true", help="host figures only")
    ap.add_argument("--dataset", type=Path, default=RITCH)
    ap.add_argument("--rate", type=float, default=2000.0)
    args = ap.parse_args()
    print(f"# strategies  dataset={args.dataset.name}  rate={args.rate:g}  "
          f"host={platform.node()} {platform.platform()}")
    names = args.strategies.split(",")
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise SystemExit(f"strategies: unknown strategy {', '.join(unknown)} (bundled: {', '.join(CONFIGS)})")
    cfgs = {n: core.EngineConfig(strategy=CONFIGS[n]) for n in names}
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="hftlab-strat-") as tmp:
        for name in names:
            print(f"strategies: {name}: golden model, {args.reps} runs", file=sys.stderr)
            med, lo, hi, _ = host_ns_per_message(cfgs[name], args.reps, args.dataset)
            rows[name] = {"golden": (med, lo, hi), "orders": core.golden(args.dataset, cfgs[name]).orders.num_rows,
                          "tick": ("-",) * 3}
        builds = {n: build_core(n, cfgs[n], Path(tmp)) for n in names}
        print(f"strategies: host core, {args.reps} rounds of {len(names)} bench_engine runs", file=sys.stderr)
        for name, c in core_ns_per_message(builds, args.reps, args.passes, args.dataset).items():
            if c["orders"] != rows[name]["orders"]:
                raise SystemExit(f"strategies: {name}: bench_engine sent {c['orders']} orders, the golden "
                                 f"model {rows[name]['orders']}")
            rows[name]["core"] = c
        for name in names if not args.no_boot else ():
            print(f"strategies: {name}: HFT-OS under tcg-icount", file=sys.stderr)
            res = run(RunSpec(accel="tcg-icount", config=cfgs[name], max_count=1, rate=args.rate,
                              dataset=args.dataset, out=Path(tmp) / name))
            cyc = res.latency.column("decide_cycles").drop_null().to_numpy()
            rows[name]["tick"] = (int(cyc.min()), int(np.median(cyc)), int(cyc.max()))
            if not res.info["orders"]["equal"]:
                raise SystemExit(f"strategies: {name}: HFT-OS's orders differ from the golden model's")
    print(f"{'strategy':10} {'orders':>6} {'decide min':>10} {'p50':>6} {'max':>6}   "
          f"{'core ns/msg p50':>15} {'min':>6} {'max':>6} {'full speed: p50 (min-max) passes':>34}   "
          f"{'golden ns/msg p50':>17} {'min':>6} {'max':>6}")
    for name, r in rows.items():
        tick, c, (med, lo, hi) = r["tick"], r["core"], r["golden"]
        print(f"{name:10} {r['orders']:>6} {tick[0]:>10} {tick[1]:>6} {tick[2]:>6}   "
              f"{c['median']:>15.1f} {c['min']:>6.1f} {c['max']:>6.1f} {describe(c['full_speed']):>34}   "
              f"{med:>17.1f} {lo:>6.1f} {hi:>6.1f}")
    print(f"core full speed: the passes run between two itch_decode passes (their own and the next one) "
          f"both at most {FULL_SPEED_TOL:.2f}x the fastest decode of this benchmark "
          f"(benchmarks/machine_speed.py).")


if __name__ == "__main__":
    main()
