"""Per bundled strategy: HFT-OS's tick in instructions, and the host core's ns per message.

    python benchmarks/strategies.py [--reps 5] [--strategies trigger,imbalance,quoter] [--no-boot]

For each strategy (kernel_src/strategies/<name>.c, with the parameters
tests/test_strategies.py uses):
  - tick: `hftlab run` of HFT-OS under tcg-icount (-icount shift=0: the guest
    TSC counts instructions) on RITCH, one ITCH message per datagram:
    tsc_tx - tsc_rx per order (the internal span, RX seen to after the TX
    doorbell), count, min, median, max; identical at every repetition, so one
    boot each;
  - host: the golden model's engine (the same C, -O2, through cffi) over the
    whole RITCH file, ns per message, median of --reps with min and max
    (wall clock around Engine.feed_file; the file is mapped and warm).
The machine is shared: the host figures are noisy, compare them side by side.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hftlab.experiment.run import RunSpec, run  # noqa: E402
from hftlab.model import core  # noqa: E402

RITCH = ROOT / "datasets" / "ritch" / "ex20101224.TEST_ITCH_50"
CONFIGS = {
    "trigger": core.StrategyConfig(),
    "imbalance": core.StrategyConfig(file="imbalance", imbalance_num=150, imbalance_den=3,
                                     min_top_shares=10, max_spread=10_000),
    "quoter": core.StrategyConfig(file="quoter", imbalance_num=1, imbalance_den=100, max_spread=2000),
}


def host_ns_per_message(cfg: core.EngineConfig, reps: int) -> tuple[float, float, float, int]:
    core.Engine(cfg).feed_file(RITCH)  # compile (first use) and warm the file
    out, n = [], 0
    for _ in range(reps):
        eng = core.Engine(cfg)
        t0 = time.perf_counter()
        n = eng.feed_file(RITCH)
        out.append((time.perf_counter() - t0) * 1e9 / n)
    return statistics.median(out), min(out), max(out), n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--strategies", default=",".join(CONFIGS))
    ap.add_argument("--no-boot", action="store_true", help="host figures only")
    args = ap.parse_args()
    print(f"# strategies  dataset={RITCH.name}  host={platform.node()} {platform.platform()}")
    print(f"{'strategy':10} {'orders':>6} {'tick min':>9} {'tick p50':>9} {'tick max':>9}   "
          f"{'host ns/msg p50':>15} {'min':>6} {'max':>6}")
    with tempfile.TemporaryDirectory(prefix="hftlab-strat-") as tmp:
        for name in args.strategies.split(","):
            cfg = core.EngineConfig(strategy=CONFIGS[name])
            med, lo, hi, _ = host_ns_per_message(cfg, args.reps)
            tick = ("-",) * 3
            orders = core.golden(RITCH, cfg).orders.num_rows
            if not args.no_boot:
                res = run(RunSpec(accel="tcg-icount", config=cfg, max_count=1, out=Path(tmp) / name))
                cyc = res.latency.column("internal_cycles").drop_null().to_numpy()
                tick = (int(cyc.min()), int(np.median(cyc)), int(cyc.max()))
                assert res.info["orders"]["equal"]
            print(f"{name:10} {orders:>6} {tick[0]:>9} {tick[1]:>9} {tick[2]:>9}   "
                  f"{med:>15.1f} {lo:>6.1f} {hi:>6.1f}")


if __name__ == "__main__":
    main()
