"""`make setup`'s warm-up (python -m hftlab.cli.warm) compiles every numba
kernel of hftlab with the signatures the library passes, so that a new
process, such as the first `make demo`, loads them all from numba's cache and
compiles nothing.

Each process below gets the same fresh NUMBA_CACHE_DIR: the first warms it;
the second runs the analysis a run and the notebooks do (a run's wire.pcapng
read by `steps.wire_events`, the join, `describe` on Arrow columns,
histograms, latency over time, hiccups, the bootstrap, classic pcaps,
keyframe trailers, synth) and records every compilation numba makes; then,
as a control that the check can fail, it calls one kernel with a signature
the warm-up does not make (int32), which must show as a compilation.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

WARM = """
import dataclasses, json
from hftlab.experiment.warm import compile_all, kernels
s = compile_all()
out = dataclasses.asdict(s)
out["modules"] = sorted({n.rsplit(".", 1)[0] for n in kernels()})
print(json.dumps(out))
"""

ANALYSIS = r"""
import json, sys
from pathlib import Path
import numpy as np
from numba.core import event

compiled = []

class Record(event.Listener):
    depth = 0
    def on_start(self, ev):
        if self.depth == 0:
            d = ev.data["dispatcher"]
            compiled.append(f"{d.py_func.__module__}.{d.py_func.__name__}{tuple(str(a) for a in ev.data['args'])}")
        self.depth += 1
    def on_end(self, ev):
        self.depth -= 1

root, work = Path(sys.argv[1]), Path(sys.argv[2])
with event.install_listener("numba:compile", Record()):
    from hftlab import capture
    from hftlab.analysis import compare, latency
    from hftlab.analysis.hdr import Histogram
    from hftlab.experiment import steps
    from hftlab.experiment.spec import DEFAULT_DATASET
    from hftlab.lab import exchange
    from hftlab.lab.net import write_pcapng
    from hftlab.model import core, synth

    # a run's wire: market data to port 31000, orders to 42000, other sizes than the warm-up's
    host = exchange.Endpoint("02:00:00:00:00:01", "10.9.0.1", 42000)
    guest = exchange.Endpoint("02:00:00:00:00:02", "10.9.0.2", 31000)
    md = exchange.pack_feed(DEFAULT_DATASET, max_count=8).frames(host, guest)
    ouch = core.golden(DEFAULT_DATASET).ouch
    k = len(ouch) // 49
    orders = exchange.Feed(np.frombuffer(ouch, np.uint8).copy(), np.arange(k + 1, dtype=np.uint64) * 49,
                           np.ones(k, np.uint16), 1, md.session).frames(guest, host)
    frames = [(1_000_000_000 + 7_000 * i, md.packet(i)) for i in range(md.n_packets)]
    frames += [(1_000_000_000 + 7_000 * md.n_packets + 50_000 * i, orders.packet(i)) for i in range(k)]
    write_pcapng(work / "wire.pcapng", frames)
    ticks, worders, _ = steps.wire_events(work / "wire.pcapng", 31000, 42000)
    lat = latency.join(ticks, worders, None, None)
    wire = lat.column("wire_ns").drop_null().to_numpy()
    assert len(wire) == k > 0, (len(wire), k)
    st = latency.describe(wire, histogram=True)              # what Run.describe() and the report do
    latency.describe(wire.astype(float), method="linear")
    Histogram.from_values(wire).values_at_percentiles([50, 99])
    latency.over_time(lat.column("t_wire_out").to_numpy(), wire.astype(np.int64), 10_000)
    latency.over_time(lat.column("t_wire_out").to_numpy(), wire.astype(float), 10_000)
    compare.compare(wire, wire + 5, n_boot=100)
    latency.hiccups(lat.column("t_wire_out").to_numpy(), 1_000)
    latency.hiccups(latency.poll_loop_timestamps(0.01), 1_000)
    # the notebooks' capture ingest: classic pcaps, keyframe trailers
    capture.read(root / "captures/moldudp64/ritch-session.pcap")
    for p in sorted((root / "captures/trailers").rglob("*.pcap*"))[:2]:
        capture.read(p, trailer="auto")
    synth.generate(work / "s.itch", 500, seed=3)

from hftlab.experiment.warm import cache_counts
counts = cache_counts()
checked = list(compiled)
del compiled[:]
# the control: a signature no warm-up makes must show as a compilation
from hftlab.analysis import kernels
with event.install_listener("numba:compile", Record()):
    kernels.gaps(np.arange(10, dtype=np.int32), 1)
print(json.dumps({"compiled": checked, "counts": counts, "control": list(compiled)}))
"""


def _python(code: str, cache: Path, *args: str) -> str:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    env.pop("NUMBA_DISABLE_JIT", None)
    r = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=ROOT, capture_output=True,
                       text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


@pytest.fixture(scope="module")
def warmed(tmp_path_factory):
    """A fresh numba cache and what the first warm-up into it reported."""
    cache = tmp_path_factory.mktemp("numba-cache")
    return cache, json.loads(_python(WARM, cache).splitlines()[-1])


def test_the_warm_up_compiles_every_kernel_of_every_module_that_has_one(warmed):
    _, s = warmed
    assert s["compiled"] > 0 and s["loaded"] == 0, s  # a fresh cache: all compiled now
    assert s["untouched"] == [], f"kernels no warm-up input reaches: {s['untouched']}"
    jit_modules = set()
    for p in (ROOT / "hftlab").rglob("*.py"):
        if re.search(r"^@(?:(?:nb|numba)\.)?n?jit\(", p.read_text(), re.M):
            jit_modules.add(".".join(p.relative_to(ROOT).with_suffix("").parts))
    jit_modules -= {"hftlab.capture._bytes"}  # inline="always" helpers only (and rd32, reached)
    missing = jit_modules - set(s["modules"])
    assert not missing, f"modules with numba kernels the warm-up never imports: {sorted(missing)}"


def test_a_second_warm_up_loads_everything_and_prints_one_line(warmed):
    cache, first = warmed
    out = subprocess.run([sys.executable, "-m", "hftlab.cli.warm"], cwd=ROOT, capture_output=True,
                         text=True, timeout=1800, env=dict(os.environ, NUMBA_CACHE_DIR=str(cache)))
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warm: "), out.stdout
    m = re.search(r"(\d+) signatures: (\d+) compiled .*?, (\d+) loaded from the cache", lines[0])
    assert m, lines[0]
    assert int(m.group(2)) == 0, lines[0]
    assert int(m.group(3)) > 0, lines[0]


def test_after_the_warm_up_the_analysis_compiles_nothing(warmed, tmp_path):
    cache, _ = warmed
    res = json.loads(_python(ANALYSIS, cache, str(ROOT), str(tmp_path)).splitlines()[-1])
    assert res["compiled"] == [], f"numba compiled after the warm-up: {res['compiled']}"
    missed = {k: v for k, v in res["counts"].items() if v[1]}
    assert not missed, f"cache misses: {missed}"
    loaded = {k.rsplit(".", 1)[1] for k, (hits, _) in res["counts"].items() if hits}
    # the kernels of a run's collection and report, and of the notebooks, all came from the cache
    for name in ("scan_pcapng", "decode_layers", "_gather_mold", "_minmax_sum", "_hist_dev", "_collect",
                 "_record", "_windowed", "gaps", "scan_pcap", "decode_counter_trailers", "_simulate"):
        assert name in loaded, f"{name} was not loaded from the cache: {sorted(loaded)}"
    # the control: an unwarmed signature is seen as a compilation, so the check above can fail
    assert any(c.startswith("hftlab.analysis.kernels.gaps(") and "int32" in c for c in res["control"]), res


def test_the_makefile_warms_up_at_set_up():
    mk = (ROOT / "Makefile").read_text()
    setup = mk.split("\nsetup:", 1)[1].split("\n\n", 1)[0]
    assert "-m hftlab.cli.warm" in setup.splitlines()[-1], setup
