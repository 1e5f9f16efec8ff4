"""hftlab.sweep (issue 18): the grid, and a tiny sweep on the embedded local Ray.

The Ray tests run real HFT-OS boots: two tcg-icount runs side by side (one
per core), a run that fails (a 0.5 s boot timeout) and is retried, then the
same sweep resumed with two timing (tcg) runs added, which run alone; then a
sweep interrupted by SIGINT while its QEMUs run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest

import hftlab
from hftlab.errors import ConfigError
from hftlab.sweep import grid

ROOT = Path(__file__).resolve().parents[1]
RITCH = str(ROOT / "datasets" / "ritch" / "ex20101224.TEST_ITCH_50")


def _spec(out, **more):
    d = {"name": "tiny", "out": str(out), "retries": 1, "reps": 2,
         "base": {"dataset": RITCH, "sut": "hftos"}, "axes": {"accel": ["tcg-icount"]},
         "include": [{"accel": "tcg-icount", "boot_timeout": 0.5}]}
    d.update(more)
    return d


# ---------------------------------------------------------------------- the grid
def test_grid_product_includes_excludes_and_stable_keys(tmp_path):
    spec = grid.load_spec({"name": "g", "out": str(tmp_path), "reps": 2, "base": {"dataset": RITCH},
                           "axes": {"sut": ["hftos", "linux-socket"], "packing": [1, 8, 64]},
                           "include": [{"sut": "hftos", "max_count": 16}],
                           "exclude": [{"sut": "linux-socket", "max_count": [1, 8]}]})
    pts = grid.expand(spec, validate=False)
    combos = sorted((p.params["sut"], p.params["max_count"], p.rep) for p in pts)
    assert combos == sorted([(s, m, r) for s, m in [("hftos", 1), ("hftos", 8), ("hftos", 64),
                                                    ("linux-socket", 64), ("hftos", 16)]
                             for r in (0, 1)])
    assert len({p.key for p in pts}) == len(pts)
    # the same runs written another way (axes reversed, a default written out): the same keys
    again = grid.load_spec({"name": "h", "out": str(tmp_path), "reps": 2,
                            "base": {"dataset": RITCH, "rate": 20000, "nic": "e1000"},
                            "axes": {"max_count": [64, 8, 1], "sut": ["linux-socket", "hftos"]},
                            "include": [{"sut": "hftos", "max_count": 16}],
                            "exclude": [{"sut": "linux-socket", "max_count": [1, 8]}]})
    assert {p.key for p in grid.expand(again, validate=False)} == {p.key for p in pts}
    changed = grid.load_spec({"name": "g", "out": str(tmp_path), "base": {"dataset": RITCH},
                              "axes": {"strategy.order_shares": [100, 200]}})
    a, b = grid.expand(changed)
    assert a.key != b.key and a.params["strategy.order_shares"] == 100
    assert grid.config_of(b.params).strategy.order_shares == 200
    assert a.timing  # accel auto: a timing run
    assert not grid.is_timing({"accel": "tcg-icount", "where": "guest"})
    assert grid.is_timing({"accel": "tcg-icount", "where": "host"}) and grid.is_timing({"accel": "tcg"})


def test_bad_specs_say_what_and_where(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("name: s\naxes:\n  nicc: [e1000]\n")
    with pytest.raises(ConfigError, match=r"s\.yaml: axes: unknown parameter 'nicc'"):
        grid.load_spec(f)
    f.write_text("name: s\naxes:\n  nic: [e1000, token-ring]\n")
    with pytest.raises(ConfigError, match=r"s\.yaml: axes .*token-ring.*nic 'token-ring'"):
        grid.expand(grid.load_spec(f))
    f.write_text("name: s\naxes:\n  sut: [hftos]\nexclude:\n  - {sut: hftos}\n")
    with pytest.raises(ConfigError, match="empty"):
        grid.expand(grid.load_spec(f))
    f.write_text("name: s\nbase: {dataset: /nonexistent/feed.itch}\n")
    with pytest.raises(ConfigError, match="/nonexistent/feed.itch does not exist"):
        grid.expand(grid.load_spec(f))
    f.write_text("name: s\nreps: 0\n")
    with pytest.raises(ConfigError, match="reps 0"):
        grid.load_spec(f)
    f.write_text("name: s\naxes: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        grid.load_spec(f)


def test_hftlab_sweep_is_callable_after_import():
    import hftlab.sweep.store  # noqa: F401 - the package is now an attribute of hftlab

    assert callable(hftlab.sweep) and hftlab.sweep.sweep_results is hftlab.sweep_results


# ---------------------------------------------------------------------- on Ray
def _intervals(rows):
    return [(r["key"], r["started"], r["ended"], r["timing"]) for r in rows]


def _overlap(a, b) -> bool:
    return a[1] < b[2] and b[1] < a[2]


def _no_leftovers(out: Path, keys) -> None:
    procs = subprocess.run(["pgrep", "-af", str(out)], capture_output=True, text=True).stdout
    assert not [l for l in procs.splitlines() if "pgrep" not in l], procs
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for k in keys:
        info = json.loads((out / "runs" / k / "run.json").read_text())
        ns = (info.get("network") or {}).get("netns")
        assert not ns or ns not in netns, ns
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_tiny_sweep_parallel_icount_failure_retry_and_resume(tmp_path):
    out = tmp_path / "sweep"
    first = hftlab.sweep(_spec(out), workers=2, progress=False)
    assert first.counts == {"runs": 4, "skipped": 0, "ok": 2, "failed": 2}, first.failed
    rows = hftlab.sweep_results(out, "runs", status=None).collect().to_dicts()
    byok = {r["key"]: r for r in rows}
    ok = [r for r in rows if r["status"] == "ok"]
    bad = [r for r in rows if r["status"] == "failed"]
    assert len(ok) == 2 and len(bad) == 2
    # the two icount runs ran side by side, one per core
    assert _overlap(*_intervals(ok)), _intervals(ok)
    for r in bad:  # tried twice, both errors kept, the other runs unaffected
        assert r["attempts"] == 2 and len(r["errors"]) == 2
        assert all("HFTOS READY" in e for e in r["errors"]) and r["error"] == r["errors"][-1]
    # tcg-icount: the two reps executed the same instructions, order for order
    lat = hftlab.sweep_results(out).sort("key", "token").collect()
    assert set(lat["key"]) == {r["key"] for r in ok} and lat.height == sum(r["orders_sut"] for r in ok)
    per = lat.group_by("rep", maintain_order=True).agg("internal_cycles")["internal_cycles"].to_list()
    assert per[0] == per[1] and sum(per[0]) == ok[0]["instructions_sum"] == ok[1]["instructions_sum"]
    _no_leftovers(out, byok)

    # resumed, with two timing runs added: the complete runs are skipped, the failed one
    # tried again, the timing runs run alone
    again = hftlab.sweep(_spec(out, axes={"accel": ["tcg-icount", "tcg"]}), workers=2, progress=False)
    assert again.counts == {"runs": 6, "skipped": 2, "ok": 2, "failed": 2}, again.failed
    rows2 = hftlab.sweep_results(out, "runs", status=None).collect().to_dicts()
    assert {r["key"]: r["started"] for r in rows2 if r["key"] in {k["key"] for k in ok}} == \
        {r["key"]: r["started"] for r in ok}  # not run again
    this_call = [r for r in rows2 if r["key"] in again.outcome.rows]
    timing = [i for i in _intervals(this_call) if i[3]]
    assert len(timing) == 2
    for t in timing:
        assert not any(_overlap(t, o) for o in _intervals(this_call) if o[0] != t[0]), _intervals(this_call)

    # the dataset without hftlab: pyarrow, polars and DuckDB see the same rows
    import duckdb
    import polars as pl

    glob = f"{out}/data/latency/**/*.parquet"
    n = sum(r["orders_sut"] for r in rows2 if r["status"] == "ok")
    assert ds.dataset(out / "data" / "latency", partitioning="hive").count_rows() == n
    assert pl.scan_parquet(glob, hive_partitioning=True).select(pl.len()).collect().item() == n
    by = duckdb.sql(f"SELECT accel, count(*) FROM read_parquet('{glob}', hive_partitioning=true) "
                    "GROUP BY accel ORDER BY accel").fetchall()
    assert by == [("tcg", n // 2), ("tcg-icount", n // 2)]
    cols = set(hftlab.sweep_results(out).collect_schema())
    assert {"sweep", "sut", "nic", "accel", "key", "rep", "rate", "max_count",
            "strategy_order_shares", "wire_ns", "internal_cycles"} <= cols
    assert hftlab.sweep_results(out, "counters").filter(
        pl.col("counter") == "itch_messages").collect().height == 4
    _no_leftovers(out, {r["key"] for r in rows2})


def test_sigint_cancels_runs_and_leaves_nothing(tmp_path):
    out = tmp_path / "cc"
    spec = tmp_path / "cc.yaml"
    spec.write_text(f"name: cc\nout: {out}\nreps: 2\nbase: {{dataset: {RITCH}, accel: tcg-icount}}\n")
    p = subprocess.Popen([sys.executable, "-m", "hftlab.cli", "sweep", str(spec), "--workers", "2"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        logs = list(out.glob("runs/*/serial.log"))
        if len(logs) == 2 and all(b"HFTOS" in s.read_bytes() for s in logs):
            break  # both QEMUs are up
        assert p.poll() is None, p.stdout.read().decode()
        time.sleep(0.2)
    else:
        p.kill()
        pytest.fail("the runs did not start")
    os.kill(p.pid, signal.SIGINT)  # the driver only: Ray's cancel has to reach the runs
    text = p.communicate(timeout=180)[0].decode()
    assert p.returncode != 0, text
    keys = [d.name for d in (out / "runs").iterdir()]
    _no_leftovers(out, keys)
    for k in keys:
        info = json.loads((out / "runs" / k / "run.json").read_text())
        assert info["status"] == "failed" and "KeyboardInterrupt" in info["error"], info.get("error")
    runs = ds.dataset(out / "data" / "runs", partitioning="hive") if (out / "data" / "runs").exists() else None
    assert runs is None or runs.count_rows() == 0  # an interrupted run is not a result
