"""ITCH decode and trading-path throughput: hftlab vs Python decoders, same input (issue 2, "Benchmark").

    python3 benchmarks/core.py [--messages 1000000] [--reps 5] [--warmup 1]
                               [--c-reps N] [--no-install] [--json OUT.json]
                               [--before REV] [--only-books]

Figures, not assertions. On one synthetic ITCH 5.0 file of --messages
messages (hftlab.model.synth when it is importable, else the repository's RITCH
sample, datasets/ritch/ex20101224.TEST_ITCH_50, repeated with its zero
length prefixes replaced by the real lengths), built in a temporary
directory, every decoder reads the whole file:

* hftlab.model.core.read_itch: the file into an Arrow table (C decoder);
* a plain-Python struct decoder written below, into the same Arrow columns
  (checked equal to read_itch's);
* an ITCH parser from PyPI (itchfeed, pure Python, parse into its message
  objects, no Arrow; pip-installed here if missing unless --no-install);

with the same protocol: --warmup untimed runs each, then --reps timed runs
each, interleaved (repetition k starts at decoder k mod n), in this process.
The table gives the median, min and max of the timed runs, messages/s at the
median and how many times faster read_itch is (median against median).
The pure-Python peers decode ~0.15-0.2 M msg/s here (2 cores shared), which
sets the default size; it is the same for every decoder.

Then build/bench_engine (benchmarks/c/bench_engine.c, -O2) on the same file,
1 untimed warm-up and --c-reps (default --reps) timed passes of each path: ns
per message of itch_decode alone and of the whole engine path, with
hftlab's default EngineConfig, for the default 2^20-order book and a
2^14-order one.

Then the book comparison (issue 16): ns per message of engine_on_packet,
engine_on_message and, as the machine's speed at the time, itch_decode alone, over a deep book (the RITCH sample: 3 symbols, hundreds of
price levels a side) and a shallow one (the synthetic file above), for this
checkout's core and, with --before REV, for the core of git revision REV
(git archive REV, its own bench_engine and built-in config; when its harness
keeps the book on 4 KiB pages, this checkout's also runs with --small-pages as
"after-4k", so the code's change shows apart from the pages'), the builds run
alternately, --reps runs each (a run: 1 warm-up pass and 50 timed passes on
RITCH, 5 on the synthetic file, its figure their median), median/min/max over the runs and after/before at the
median, and after/before round by round (a round runs the two builds back to
back, so its ratio sees one machine state: median, min, max); the order counts are printed
so that a reader sees both made the same decisions. Each build's on_packet
figure is also given over its full-speed passes only (benchmarks/machine_speed.py:
the passes run between two decodes, their own and the next pass's, both
within 10% of the feed's fastest): this VM's speed changes by ~1.5x from one second to the next.
Host-core goal (issue 16): <= 40 ns per message. --only-books skips the
Python decoders.

Targets (issue 2): >= 20 M msg/s decode in C, >= 5 M msg/s into Arrow from
Python. The environment (hftlab.util.env: CPU, kernel, Python, git revision,
plus numpy, pyarrow, load) is printed first and stored with the results by
--json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
RITCH = ROOT / "datasets" / "ritch" / "ex20101224.TEST_ITCH_50"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without `pip install -e .`

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from hftlab.model import core  # noqa: E402
from hftlab.util.env import cpu_model, git_rev  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_speed import FULL_SPEED_TOL, describe, full_speed, passes_of  # noqa: E402

TARGET_C_DECODE = 20.0  # M msg/s
TARGET_ARROW = 5.0      # M msg/s
TARGET_CORE_NS = 40.0   # ns per message, whole feed (issue 16)
PYPI_CANDIDATES = (("itchfeed", "itch"),)  # (distribution, module); at most 3 tried


# --------------------------------------------------------------------------- environment
def environment() -> dict[str, Any]:
    gov = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(), "nproc": os.cpu_count(), "kernel": platform.release(),
        "governor": gov.read_text().strip() if gov.exists() else "n/a",
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(), "numpy": np.__version__, "pyarrow": pa.__version__,
        "git": git_rev(),
    }


# --------------------------------------------------------------------------- input
def build_input(path: Path, n: int) -> str:
    """Write an n-message ITCH file at `path`; return how it was made."""
    try:
        from hftlab.model import synth
    except ImportError as exc:  # the generator is a colleague's and may be absent
        return _repeat_ritch(path, n, f"hftlab.model.synth unavailable ({exc})")
    synth.generate(path, n, seed=0)
    return f"hftlab.model.synth.generate(n={n:,}, seed=0)"


def _repeat_ritch(path: Path, n: int, why: str) -> str:
    """The RITCH sample (12,012 messages, length prefixes all 0) with the real
    lengths written into the prefixes, repeated to n messages."""
    raw = RITCH.read_bytes()
    one, off = bytearray(), 0
    while off < len(raw):
        ln = core.ITCH_LENGTHS[chr(raw[off + 2])]
        one += ln.to_bytes(2, "big") + raw[off + 2: off + 2 + ln]
        off += 2 + ln
    per = core.read_itch(RITCH).num_rows
    with open(path, "wb") as out:
        for _ in range(n // per):
            out.write(one)
        rest, off = n % per, 0
        for _ in range(rest):
            off += 2 + int.from_bytes(one[off:off + 2], "big")
        out.write(one[:off])
    return f"RITCH sample repeated to {n:,} messages, real length prefixes ({why})"


# --------------------------------------------------------------------------- plain Python
# ITCH 5.0 §4 layouts, big-endian, type byte first: (struct format, {column: field index}).
# Common header: type @0, locate u16, tracking u16, timestamp u48 (6 bytes).
_H = ">cHH6s"
_PLAIN: dict[bytes, tuple[str, dict[str, int]]] = {
    b"S": (_H + "c", {}),
    b"R": (_H + "8sccIcc2scccccIc", {"stock": 4}),
    b"H": (_H + "8scc4s", {"stock": 4}),
    b"Y": (_H + "8sc", {"stock": 4}),
    b"L": (_H + "4s8sccc", {"stock": 5}),
    b"V": (_H + "QQQ", {}),
    b"W": (_H + "c", {}),
    b"K": (_H + "8sIcI", {"stock": 4}),
    b"J": (_H + "8sIIII", {"stock": 4}),
    b"h": (_H + "8scc", {"stock": 4}),
    b"A": (_H + "QcI8sI", {"order_ref": 4, "side": 5, "shares": 6, "stock": 7, "price": 8}),
    b"F": (_H + "QcI8sI4s", {"order_ref": 4, "side": 5, "shares": 6, "stock": 7, "price": 8}),
    b"E": (_H + "QIQ", {"order_ref": 4, "shares": 5, "match_number": 6}),
    b"C": (_H + "QIQcI", {"order_ref": 4, "shares": 5, "match_number": 6, "price": 8}),
    b"X": (_H + "QI", {"order_ref": 4, "shares": 5}),
    b"D": (_H + "Q", {"order_ref": 4}),
    b"U": (_H + "QQII", {"order_ref": 4, "new_order_ref": 5, "shares": 6, "price": 7}),
    b"P": (_H + "QcI8sIQ", {"order_ref": 4, "side": 5, "shares": 6, "stock": 7, "price": 8,
                            "match_number": 9}),
    b"Q": (_H + "Q8sIQc", {"shares": 4, "stock": 5, "price": 6, "match_number": 7}),
    b"B": (_H + "Q", {"match_number": 4}),
    b"I": (_H + "QQc8sIIIcc", {"shares": 4, "side": 6, "stock": 7, "price": 10}),
    b"N": (_H + "8sc", {"stock": 4}),
    b"O": (_H + "8scIIIQII", {"stock": 4}),
}
_PLAIN_COLS = ("order_ref", "new_order_ref", "side", "shares", "stock", "price", "match_number")


def plain_decode(buf: bytes, limit: int | None = None) -> pa.Table:
    """Decode up to `limit` framed messages (all: None) with struct into Arrow columns."""
    plan = {}
    for t, (fmt, fields) in _PLAIN.items():
        s = struct.Struct(fmt)
        assert s.size == core.ITCH_LENGTHS[t.decode()], f"plain layout of {t!r} is wrong"
        plan[t[0]] = (s.size, s.unpack_from, tuple(fields.get(c) for c in _PLAIN_COLS))
    cols: dict[str, list] = {c: [] for c in ("msg_type", "stock_locate", "tracking", "timestamp_ns",
                                             *_PLAIN_COLS)}
    mt, loc, trk, ts = cols["msg_type"], cols["stock_locate"], cols["tracking"], cols["timestamp_ns"]
    rest = [cols[c] for c in _PLAIN_COLS]
    off, n, end = 0, 0, len(buf)
    limit = end if limit is None else limit
    while n < limit and off + 2 < end:
        size, unpack, idx = plan[buf[off + 2]]
        off += 2
        v = unpack(buf, off)
        off += size
        n += 1
        mt.append(v[0].decode())
        loc.append(v[1])
        trk.append(v[2])
        ts.append(int.from_bytes(v[3], "big"))
        for col, i in zip(rest, idx):
            col.append(None if i is None else v[i])
    cols["side"] = [None if s is None else s.decode() for s in cols["side"]]
    cols["stock"] = [None if s is None else s.decode().rstrip() for s in cols["stock"]]
    return pa.table(cols)


def _agrees(plain: pa.Table, ref: pa.Table) -> bool:
    """Did the plain decoder read the same values as the C one?"""
    return plain.num_rows == ref.num_rows and all(
        plain.column(c).to_pylist() == ref.column(c).to_pylist()
        for c in ("stock_locate", "timestamp_ns", "order_ref", "new_order_ref", "shares", "price",
                  "match_number", "side"))


# --------------------------------------------------------------------------- PyPI parser
def pypi_parser(allow_install: bool) -> tuple[str, Callable[[Path], int] | None]:
    """Import (or pip-install, at most len(PYPI_CANDIDATES) attempts) an ITCH
    parser. Returns (description, parse function or None)."""
    notes = []
    for dist, module in PYPI_CANDIDATES:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            if not allow_install:
                notes.append(f"{dist}: not installed (--no-install)")
                continue
            r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", dist],
                               capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                notes.append(f"{dist}: pip install failed: {r.stderr.strip().splitlines()[-1:]}")
                continue
            importlib.invalidate_caches()
            mod = importlib.import_module(module)
        if dist == "itchfeed":
            from itch.parser import MessageParser  # type: ignore[import-not-found]

            backend = "C++ backend itchcpp" if getattr(mod, "USING_CPP_BACKEND", False) else "pure Python"

            def parse(path: Path) -> int:
                with open(path, "rb") as fh:
                    return sum(1 for _ in MessageParser().parse_file(fh))

            return f"{dist} {getattr(mod, '__version__', '?')} ({backend})", parse
    return "none: " + "; ".join(notes), None


# --------------------------------------------------------------------------- C benchmark
def bench_c(path: Path, cfg: Path, order_cap: int, reps: int) -> dict[str, Any]:
    exe = ROOT / "build" / "bench_engine"
    subprocess.run(["make", "-s", "-C", str(ROOT / "tests" / "fuzz"), "bench_engine"], check=True,
                   stdout=subprocess.DEVNULL)
    out = subprocess.run([str(exe), str(path), "--reps", str(reps), "--config", str(cfg),
                          "--order-cap", str(order_cap), "--json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def build_bench(rev: str | None, where: Path) -> Path:
    """bench_engine of this checkout (rev None) or of git revision `rev`,
    built from `git archive rev` under `where`."""
    if rev is None:
        subprocess.run(["make", "-s", "-C", str(ROOT / "tests" / "fuzz"), "bench_engine"], check=True,
                       stdout=subprocess.DEVNULL)
        return ROOT / "build" / "bench_engine"
    src, build = where / "src", where / "build"
    src.mkdir(parents=True)
    arch = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True)
    if arch.returncode != 0:
        raise SystemExit(f"--before {rev}: git archive failed in {ROOT}: "
                         f"{arch.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(src)], input=arch.stdout, check=True)
    mk = subprocess.run(["make", "-s", "-C", str(src / "tests" / "fuzz"), f"BUILD={build}", "bench_engine"],
                        capture_output=True, text=True)
    if mk.returncode != 0:
        raise SystemExit(f"--before {rev}: building its bench_engine failed:\n{mk.stderr[-2000:]}")
    return build / "bench_engine"


def has_huge_pages(exe: Path) -> bool:
    """Does this bench_engine put the book on 2 MiB pages (and take
    --small-pages)? Its usage line says so; older ones used 4 KiB pages."""
    out = subprocess.run([str(exe)], capture_output=True, text=True)
    return "--small-pages" in out.stderr


def compare_books(exes: dict[str, tuple[Path, list[str]]], feeds: dict[str, tuple[Path, int]],
                  reps: int) -> list[dict[str, Any]]:
    """Every build on every feed, reps runs each (1 warm-up + the feed's
    number of timed passes per run, the run's figure their median: one pass
    over RITCH's 12,012 messages is shorter than a scheduler slice; the
    builds alternate and the first of each round rotates); ns per message of
    on_packet, on_message and decode (itch_decode alone: the machine's speed)."""
    got: dict[tuple[str, str, str], list[float]] = {}
    by_pass: dict[tuple[str, str, str], list[tuple[float, float | None, float]]] = {}
    orders: dict[tuple[str, str], int] = {}
    names = list(exes)
    for k in range(reps):
        for feed, (path, passes) in feeds.items():
            for i in range(len(names)):
                name = names[(k + i) % len(names)]
                exe, extra = exes[name]
                out = subprocess.run([str(exe), str(path), "--reps", str(passes), "--json", *extra],
                                     capture_output=True, text=True, check=True).stdout
                r = json.loads(out)
                orders[(feed, name)] = r["orders"]
                for p in ("on_packet", "on_message", "decode"):
                    got.setdefault((feed, name, p), []).append(r["paths"][p]["ns_median"])
                    by_pass.setdefault((feed, name, p), []).extend(passes_of(r, p))
    best = {feed: min(d for (f, _, p), ps in by_pass.items() if f == feed and p == "decode" for d, _, _ in ps)
            for feed in feeds}
    rows = []
    for (feed, name, p), ns in got.items():
        rows.append({"feed": feed, "build": name, "path": p, "reps": len(ns), "ns": ns,
                     "ns_median": statistics.median(ns), "ns_min": min(ns), "ns_max": max(ns),
                     "full_speed": full_speed(by_pass[(feed, name, p)], best[feed]),
                     "orders": orders[(feed, name)]})
    return rows


def measure(fns: dict[str, Callable[[], Any]], warmup: int, reps: int) -> dict[str, dict[str, Any]]:
    """warmup untimed then reps timed calls of every function, interleaved:
    repetition k starts at function k mod n. Each result is dropped before
    the next call (a large table is never alive twice); the last one of each
    is kept for the checks."""
    names = list(fns)
    out: dict[str, dict[str, Any]] = {k: {"times_s": [], "result": None} for k in names}
    for k in range(warmup + reps):
        for i in range(len(names)):
            name = names[(k + i) % len(names)]
            out[name]["result"] = None
            t0 = time.perf_counter()
            res = fns[name]()
            dt_s = time.perf_counter() - t0
            out[name]["result"] = res
            del res
            if k >= warmup:
                out[name]["times_s"].append(dt_s)
    for m in out.values():
        t = m["times_s"]
        m.update(reps=len(t), median_s=statistics.median(t), min_s=min(t), max_s=max(t))
    return out


# --------------------------------------------------------------------------- main
def run(args: argparse.Namespace) -> dict[str, Any]:
    env = environment()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hftlab-bench-") as tmp:
        path = Path(tmp) / "feed.itch"
        made = build_input(path, args.messages)
        env["input"] = f"{made}; {path.stat().st_size / 1e6:.1f} MB"
        after = build_bench(None, Path(tmp))
        exes = {"after": (after, [])}
        if args.before:
            before = build_bench(args.before, Path(tmp) / "before")
            exes = {"before": (before, []), **exes}
            env["before"] = args.before
            if not has_huge_pages(before) and has_huge_pages(after):
                # the before's harness keeps the book on 4 KiB pages: this
                # build on 4 KiB pages too tells the code's change from the pages'
                exes["after-4k"] = (after, ["--small-pages"])
        books = compare_books(exes, {"RITCH (deep)": (RITCH, 50), "synthetic (shallow)": (path, 5)},
                              args.reps)
        if args.only_books:
            return {"env": env, "books": books, "protocol": {"messages": args.messages, "reps": args.reps}}
        desc, parse = pypi_parser(not args.no_install)
        env["pypi_parser"] = desc
        fns: dict[str, Callable[[], Any]] = {
            "hftlab": lambda: core.read_itch(path),
            "plain": lambda: plain_decode(path.read_bytes()),
        }
        if parse is not None:
            fns["pypi"] = lambda: parse(path)
        res = measure(fns, args.warmup, args.reps)
        n = res["hftlab"]["result"].num_rows
        env["plain_agrees"] = _agrees(res["plain"]["result"], res["hftlab"]["result"])
        if not env["plain_agrees"]:
            raise SystemExit("the plain Python decoder disagrees with hftlab.model.core.read_itch")
        if parse is not None and res["pypi"]["result"] != n:
            raise SystemExit(f"{desc} parsed {res['pypi']['result']:,} messages, read_itch {n:,}")
        labels = {"hftlab": ("hftlab.model.core.read_itch -> Arrow", "C decoder, whole file"),
                  "plain": ("plain Python struct -> Arrow", "same columns, checked equal"),
                  "pypi": (f"PyPI {desc} -> objects", "its message objects, no Arrow")}
        for key, m in res.items():
            rows.append({"path": labels[key][0], "messages": n, "reps": m["reps"], "warmup": args.warmup,
                         "seconds": m["min_s"], "median_s": m["median_s"], "min_s": m["min_s"],
                         "max_s": m["max_s"], "times_s": m["times_s"], "note": labels[key][1]})
        del res, fns

        cfg = Path(tmp) / "engine_config.bin"
        cfg.write_bytes(core.EngineConfig.default().to_bytes())
        c_reps = args.c_reps or args.reps
        c_runs = {cap: bench_c(path, cfg, cap, c_reps) for cap in (1 << 20, 1 << 14)}
    first = c_runs[1 << 20]
    env["c_cpu"] = first["cpu"]
    c_rows: list[dict[str, Any]] = []
    for cap, r in c_runs.items():
        if r["messages"] != n:
            raise SystemExit(f"bench_engine read {r['messages']:,} messages, read_itch {n:,}")
        names = ("decode", "frame+decode", "on_message", "on_packet") if cap == 1 << 20 else (
            "on_message", "on_packet")
        for name in names:
            p = r["paths"][name]
            label = {"decode": "C itch_decode (pre-framed)", "frame+decode": "C itch_frame_next + itch_decode",
                     "on_message": "C engine_on_message", "on_packet": "C engine_on_packet"}[name]
            if name.startswith("on_"):
                label += f" (2^{cap.bit_length() - 1} book)"
            c_rows.append({"path": label, "messages": r["messages"], "reps": r["reps"],
                           "ns_median": p["ns_median"], "ns_min": p["ns_min"], "ns_max": p["ns_max"],
                           "seconds": p["ns_min"] * r["messages"] / 1e9,
                           "median_s": p["ns_median"] * r["messages"] / 1e9,
                           "note": f"{r['orders']} orders, full_orders {r['full_orders']}"})
    return {"env": env, "rows": rows, "c_rows": c_rows, "books": books, "protocol": {
        "messages": n, "warmup": args.warmup, "reps": args.reps, "c_reps": c_reps},
        "c": {str(k): v for k, v in c_runs.items()}}


def report_books(res: dict[str, Any]) -> None:
    books, reps = res["books"], res["protocol"]["reps"]
    print(f"\nbook comparison (bench_engine, each build's built-in config; {reps} runs per build and "
          f"feed, alternating, each the median of 50 (RITCH) or 5 passes; ns per message, median/min/max over the runs; "
          f"x = after/before at the median; pair x = the median (min-max) of after/before over the rounds, "
          f"the two builds' runs of a round back to back; load average {res['env']['loadavg']}):")
    head = (f"{'feed':20} {'path':11} {'build':8} {'median ns':>9} {'min ns':>8} {'max ns':>8} {'x':>6} "
            f"{'pair x':>16} {'full speed: ns (min-max) passes':>34} {'orders':>7}")
    print(head + "\n" + "-" * len(head))
    paths = ("on_packet", "on_message", "decode")
    for r in sorted(books, key=lambda r: (r["feed"], paths.index(r["path"]), r["build"] != "before")):
        ref = next((b for b in books if b["feed"] == r["feed"] and b["path"] == r["path"]
                    and b["build"] == "before"), None)
        x = f"{r['ns_median'] / ref['ns_median']:6.2f}" if ref and r["build"] != "before" else " " * 6
        pair = " " * 16
        if ref and r["build"] != "before":
            # run k of each build ran back to back: their ratio sees the same machine state
            ratios = [a / b for a, b in zip(r["ns"], ref["ns"])]
            pair = f"{statistics.median(ratios):5.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
        print(f"{r['feed']:20} {r['path']:11} {r['build']:8} {r['ns_median']:>9.1f} {r['ns_min']:>8.1f} "
              f"{r['ns_max']:>8.1f} {x} {pair:>16} {describe(r['full_speed']):>34} {r['orders']:>7}")
    print("decode: itch_decode alone in the same runs (the same instructions in both builds unless "
          "itch.c changed): how fast the machine was during them; this shared VM has been seen to switch "
          "between ~8 and ~12 ns on RITCH from one run to the next. Where decode's own x is far from 1, "
          "the builds' runs met different machine states (or code layouts): trust pair x over x.")
    if any(r["build"] == "after-4k" for r in books):
        print("after-4k: this checkout's build with the book on 4 KiB pages (--small-pages), as the "
              "before's harness keeps it: its x is the code's change alone; after's adds the 2 MiB pages.")
    print(f"full speed: the passes (of all the runs' passes) that ran between two decodes (their own and the "
          f"next pass's) both at most {FULL_SPEED_TOL:.2f}x the feed's fastest decode in this benchmark, every "
          f"build's; their median (min-max). Nothing rescaled: benchmarks/machine_speed.py says why and how.")
    for r in books:
        if r["build"] == "after" and r["path"] == "on_packet":
            fs = r["full_speed"]
            verdict = lambda v: "-" if v is None else f"{v:.1f} {'met' if v <= TARGET_CORE_NS else 'MISSED'}"
            print(f"target <= {TARGET_CORE_NS:.0f} ns/message, {r['feed']}: all runs {verdict(r['ns_median'])}; "
                  f"full-speed passes ({fs['n']}/{fs['of']}) {verdict(fs['median'])}")


def report(res: dict[str, Any]) -> None:
    env, proto = res["env"], res["protocol"]
    print("environment:")
    for k, v in env.items():
        print(f"  {k:12} {v}")
    report_books(res)
    if "rows" not in res:
        return
    rows, c_rows = res["rows"], res["c_rows"]
    print(f"\nPython decoders, the whole file ({proto['messages']:,} messages) for each: {proto['warmup']} "
          f"untimed warm-up run(s), then {proto['reps']} timed runs each, interleaved; median/min/max of the "
          f"{proto['reps']}; 'hftlab x' = decoder's median / read_itch's median")
    head = (f"{'decoder':44} {'messages':>10} {'median s':>9} {'min s':>9} {'max s':>9} {'M msg/s':>8} "
            f"{'hftlab x':>9}  note")
    print(head + "\n" + "-" * len(head))
    base = rows[0]["median_s"]
    for r in rows:
        r["mmsgs"] = r["messages"] / r["median_s"] / 1e6
        r["mmsgs_best"] = r["messages"] / r["min_s"] / 1e6
        print(f"{r['path']:44} {r['messages']:>10,} {r['median_s']:>9.3f} {r['min_s']:>9.3f} "
              f"{r['max_s']:>9.3f} {r['mmsgs']:>8.2f} {r['median_s'] / base:>9.1f}  {r['note']}")
    print(f"\nC core (build/bench_engine), the same file: 1 untimed warm-up, then {proto['c_reps']} timed "
          f"passes of each path; ns per message, median/min/max of the {proto['c_reps']}")
    head = f"{'path':44} {'messages':>10} {'median ns':>9} {'min ns':>9} {'max ns':>9} {'M msg/s':>8}  note"
    print(head + "\n" + "-" * len(head))
    for r in c_rows:
        r["mmsgs"] = 1e3 / r["ns_median"]
        print(f"{r['path']:44} {r['messages']:>10,} {r['ns_median']:>9.1f} {r['ns_min']:>9.1f} "
              f"{r['ns_max']:>9.1f} {r['mmsgs']:>8.2f}  {r['note']}")
    c_dec = next(r["mmsgs"] for r in c_rows if r["path"].startswith("C itch_decode"))
    arrow = rows[0]["mmsgs"]
    print("\ntargets, judged at the median:")
    print(f"target >= {TARGET_C_DECODE:.0f} M msg/s decode in C:      {c_dec:6.1f}  "
          f"{'met' if c_dec >= TARGET_C_DECODE else 'MISSED'}")
    print(f"target >= {TARGET_ARROW:.0f} M msg/s into Arrow (Python):  {arrow:6.1f}  "
          f"{'met' if arrow >= TARGET_ARROW else 'MISSED'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1_000_000,
                    help="messages in the test file, the same for every decoder")
    ap.add_argument("--reps", type=int, default=5, help="timed runs per Python decoder")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs per Python decoder first")
    ap.add_argument("--c-reps", type=int, default=None, help="timed passes inside bench_engine "
                    "(default: --reps; at most 50)")
    ap.add_argument("--no-install", action="store_true", help="do not pip-install a PyPI parser")
    ap.add_argument("--json", type=Path, help="also write the results and environment here")
    ap.add_argument("--before", metavar="REV", help="also measure the core of git revision REV "
                    "(the book comparison: before/after side by side)")
    ap.add_argument("--only-books", action="store_true", help="only the book comparison")
    args = ap.parse_args(argv)
    if args.reps < 1 or args.warmup < 0 or args.messages < 1:
        ap.error("--messages and --reps must be >= 1, --warmup >= 0")
    res = run(args)
    report(res)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
