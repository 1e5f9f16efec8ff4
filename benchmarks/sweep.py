"""Sweeps on Ray (issue 18): a 24-run icount grid on Ray against the same runs in sequence,
and Ray's overhead per run.

1. The grid: HFT-OS under tcg-icount on the bundled RITCH sample, nic [e1000, virtio, igb] x
   max_count [1, 8, 32, 64] x 2 reps = 24 runs. Once in sequence in this process (each run
   through hftlab.sweep.execute.run_point, the Ray task's own function, so the work is the
   same), once by hftlab.sweep on the embedded local Ray with 2 workers (Ray's start
   included). Prints both wall times and their ratio, and checks that every run's
   instruction counts (internal_cycles of every order) are the same in both.
2. Start to first QEMU instruction, taken as the QEMU process's start (its starttime in
   /proc, 10 ms ticks; QEMU's own set-up before the first guest instruction is the same
   on every path), from:
     hftlab run        the command spawned (`python -m hftlab.cli run`), N times;
     sweep, cold       hftlab.sweep of a 1-run grid called (Ray started and stopped), N times;
     sweep, in grid    each run of the Ray grid above, from its submission;
     in-process        each run of the sequential grid, from the call.
   A thread watches /proc every 20 ms for QEMU processes whose command line names the
   benchmark's directory.

The machine is shared: the load average is printed before and after each part.
Usage: python benchmarks/sweep.py [--reps-overhead 3] [--out DIR] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RITCH = str(ROOT / "datasets" / "ritch" / "ex20101224.TEST_ITCH_50")
TICK = os.sysconf("SC_CLK_TCK")


def boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class QemuWatch(threading.Thread):
    """QEMU processes whose command line contains `marker`: {pid: (start in CLOCK_BOOTTIME s,
    command line)}."""

    def __init__(self, marker: str) -> None:
        super().__init__(daemon=True)
        self.marker, self.seen, self.stop = marker, {}, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for d in os.listdir("/proc"):
                if not d.isdigit() or int(d) in self.seen:
                    continue
                try:
                    cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                    if "qemu-system" not in cmd.split(" ", 1)[0] or self.marker not in cmd:
                        continue
                    stat = Path(f"/proc/{d}/stat").read_text()
                    start = int(stat.rsplit(")", 1)[1].split()[19]) / TICK
                    self.seen[int(d)] = (start, cmd)
                except OSError:
                    continue
            time.sleep(0.02)

    def start_of(self, fragment: str) -> float | None:
        got = [s for s, cmd in self.seen.values() if fragment in cmd]
        return min(got) if got else None


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def stats(xs: list[float]) -> str:
    return (f"median {statistics.median(xs):.2f} s (min {min(xs):.2f}, max {max(xs):.2f}, n={len(xs)})"
            if xs else "-")


def grid_spec(name: str, out: Path) -> dict:
    return {"name": name, "out": str(out), "retries": 0, "reps": 2,
            "base": {"dataset": RITCH, "sut": "hftos", "accel": "tcg-icount"},
            "axes": {"nic": ["e1000", "virtio", "igb"], "max_count": [1, 8, 32, 64]}}


def instructions(out: Path) -> dict[str, list[int]]:
    import polars as pl

    import hftlab

    lat = hftlab.sweep_results(out).select("key", "token", "internal_cycles").sort("key", "token").collect()
    return {k: g["internal_cycles"].to_list() for (k,), g in lat.group_by("key")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps-overhead", type=int, default=3)
    ap.add_argument("--out", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--skip-grid", action="store_true")
    a = ap.parse_args()

    import hftlab
    from hftlab.sweep import grid
    from hftlab.sweep.execute import run_point

    base = Path(a.out or tempfile.mkdtemp(prefix="hftlab-bench-sweep-"))
    base.mkdir(parents=True, exist_ok=True)
    watch = QemuWatch(str(base))
    watch.start()
    res: dict = {"load_start": load(), "cpus": os.cpu_count()}
    print(f"load average at start: {res['load_start']} ({os.cpu_count()} CPUs, shared machine)", flush=True)

    if not a.skip_grid:
        # -- 1. sequential, in this process
        seq = base / "seq"
        spec = grid.load_spec(grid_spec("bench", seq))
        pts = grid.expand(spec)
        assert len(pts) == 24
        off = time.time() - boottime()
        t0 = time.monotonic()
        call = {}
        for p in pts:
            call[p.key] = boottime()
            row = run_point(str(seq), spec.name, p, 1, [], time.time())
            assert row["status"] == "ok", row
        res["seq_s"] = time.monotonic() - t0
        res["load_after_seq"] = load()
        print(f"sequential: 24 runs in {res['seq_s']:.1f} s; load {res['load_after_seq']}", flush=True)
        inproc = [watch.start_of(f"{seq}/runs/{k}/") - call[k] for k in call if watch.start_of(f"{seq}/runs/{k}/")]

        # -- 2. the same grid on Ray, 2 workers
        par = base / "ray"
        t0 = time.monotonic()
        s = hftlab.sweep(grid_spec("bench", par), workers=2, progress=False)
        res["ray_s"] = time.monotonic() - t0
        res["load_after_ray"] = load()
        assert s.counts["ok"] == 24, s.failed
        print(f"Ray, 2 workers: 24 runs in {res['ray_s']:.1f} s (Ray's start and stop included); "
              f"load {res['load_after_ray']}", flush=True)
        res["speedup"] = res["seq_s"] / res["ray_s"]
        a_ins, b_ins = instructions(seq), instructions(par)
        res["instructions_identical"] = a_ins == b_ins
        res["orders"] = sum(len(v) for v in a_ins.values())
        nic = {p.key: p.params["nic"] for p in pts}
        for n in sorted(set(nic.values())):
            ks = [k for k in a_ins if nic[k] == n]
            same = sum(x == y for k in ks for x, y in zip(a_ins[k], b_ins.get(k, [])))
            res[f"identical_orders_{n}"] = f"{same}/{sum(len(a_ins[k]) for k in ks)}"
        # the same point's two reps within each mode (icount's run-to-run repeatability)
        pair = {}
        for p in pts:
            pair.setdefault((p.params["nic"], p.params["max_count"]), []).append(p.key)
        for name, ins_ in (("seq", a_ins), ("ray", b_ins)):
            res[f"rep_pairs_differing_orders_{name}"] = sum(
                x != y for k0, k1 in pair.values() for x, y in zip(ins_[k0], ins_[k1]))
        print("  orders with identical instruction counts, sequential vs Ray, per NIC: "
              + ", ".join(f"{n} {res[f'identical_orders_{n}']}" for n in sorted(set(nic.values())))
              + f"; orders differing between a point's two reps: sequential "
              f"{res['rep_pairs_differing_orders_seq']}, Ray {res['rep_pairs_differing_orders_ray']} "
              f"(of {res['orders'] // 2})", flush=True)
        print(f"speed-up sequential/Ray: {res['speedup']:.2f}x; instruction counts identical in all "
              f"{len(a_ins)} runs ({res['orders']} orders): {res['instructions_identical']}", flush=True)
        runs = hftlab.sweep_results(par, "runs").select("key", "submitted", "started").sort("started").collect()
        first, in_task = [], []
        for i, (k, sub, started) in enumerate(runs.iter_rows()):
            st = watch.start_of(f"{par}/runs/{k}/")
            if st is not None:
                in_task.append(st + off - started.timestamp())
                if i < 2:  # the first wave: no queueing, a new worker process each
                    first.append(st + off - sub.timestamp())
        res["overhead_first_wave"], res["overhead_in_task"] = first, in_task
        res["overhead_inproc"] = inproc

    # -- 3. start to QEMU: hftlab run, and a cold 1-run sweep
    cli, cold = [], []
    for i in range(a.reps_overhead):
        d = base / f"cli-{i}"
        t0 = boottime()
        subprocess.run([sys.executable, "-m", "hftlab.cli", "run", "--accel", "tcg-icount", "--out", str(d)],
                       cwd=ROOT, check=True, capture_output=True)
        cli.append(watch.start_of(f"{d}/") - t0)
        o = base / f"cold-{i}"
        t0 = boottime()
        s = hftlab.sweep({"name": f"cold{i}", "out": str(o), "retries": 0,
                          "base": {"dataset": RITCH, "accel": "tcg-icount"}}, progress=False)
        assert s.counts["ok"] == 1, s.failed
        cold.append(watch.start_of(f"{o}/runs/") - t0)
        print(f"  rep {i}: hftlab run {cli[-1]:.2f} s, cold sweep {cold[-1]:.2f} s; load {load()}", flush=True)
    res["overhead_cli"], res["overhead_cold"] = cli, cold
    res["load_end"] = load()
    watch.stop.set()

    print(f"\nload average at start {res['load_start']}, at end {res['load_end']} (1, 5, 15 min; 2 CPUs, "
          "shared with six other engineers' builds and QEMUs)")
    if "seq_s" in res:
        print(f"24-run tcg-icount grid: sequential {res['seq_s']:.1f} s, Ray with 2 workers {res['ray_s']:.1f} s, "
              f"{res['speedup']:.2f}x; instructions identical: {res['instructions_identical']}")
    print("start to QEMU process start:")
    print(f"  hftlab run (new process)        {stats(cli)}")
    print(f"  sweep, cold (Ray start, 1 run)  {stats(cold)}")
    if "seq_s" in res:
        print(f"  Ray grid, first 2 tasks         {stats(res['overhead_first_wave'])} (from submission: "
              "a worker process started, hftlab imported)")
        print(f"  Ray grid, every task            {stats(res['overhead_in_task'])} (from the task's start)")
        print(f"  in-process, sequential grid     {stats(res['overhead_inproc'])} (from the call)")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
