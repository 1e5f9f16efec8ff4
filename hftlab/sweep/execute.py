"""hftlab.sweep.execute: a sweep's runs as Ray tasks.

Ray schedules; hftlab only submits, retries and records. Each run is one
Ray task (`run_point`) that calls hftlab's single-run API
(hftlab.experiment.run.run on the point's RunSpec) and appends its tables
to the sweep's dataset (hftlab.sweep.store). What a task asks of Ray:

* a tcg-icount run in the guest: 1 CPU and 0.01 of the custom resource
  ``hftlab_host``; instruction counts are exact whatever else runs, so as
  many run side by side on a machine as it has CPUs;
* any other run (a timing run): 1 CPU and the whole ``hftlab_host`` (1 per
  machine), so it never shares a machine with another run of the sweep.

The embedded local Ray (the default) declares ``hftlab_host: 1`` and as many
CPUs as `workers` (default: the machine's); on a cluster (`address`) every
node must be started with it: ``ray start ... --resources '{"hftlab_host": 1}'``.

A failed run (an exception of hftlab's run, orders not equal to the golden
model's, a worker that died) is recorded with its error and submitted again,
up to `retries` more times; the others go on. Ctrl-C (KeyboardInterrupt in
the driver) cancels every task with a KeyboardInterrupt in its worker, the
signal `hftlab run` cleans up on (QEMU, network namespace, capture, run.json
"failed"), waits for them to finish, then stops the local Ray.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from hftlab.errors import ConfigError, HftlabError, RunError
from hftlab.sweep.grid import Point, SweepSpec, expand, run_spec
from hftlab.sweep.store import Store

__all__ = ["run_sweep", "run_point", "SweepOutcome", "HOST_RESOURCE", "ICOUNT_SHARE",
           "task_options", "start_ray"]

HOST_RESOURCE = "hftlab_host"
ICOUNT_SHARE = 0.01
#: how long a cancelled run gets to clean up (QEMU, namespace) before Ray is stopped
CANCEL_GRACE_S = 90.0


def _utc(t: float | None):
    return None if t is None else dt.datetime.fromtimestamp(t, dt.timezone.utc)


def task_options(point: Point) -> dict[str, Any]:
    """The Ray resources of a run (see the module)."""
    share = 1.0 if point.timing else ICOUNT_SHARE
    return {"num_cpus": 1, "resources": {HOST_RESOURCE: share}, "max_retries": 0}


# ---------------------------------------------------------------------- the task
def _summary(latency: pa.Table, accel: str) -> dict[str, Any]:
    from hftlab.analysis import latency as lat

    out: dict[str, Any] = {"internal_unit": lat.internal_unit(accel)}
    for fig, col in (("wire", "wire_ns"), ("internal", "internal_cycles" if accel == "tcg-icount"
                                           else "internal_ns")):
        v = latency.column(col).drop_null().to_numpy()
        p = lat.percentiles(v, (50.0, 99.0, 99.9))
        for q, name in (("p50", "p50"), ("p99", "p99"), ("p99.9", "p99_9"), ("max", "max")):
            out[f"{fig}_{name}"] = None if p.get(q) is None else int(p[q])
    if accel == "tcg-icount":
        out["instructions_sum"] = int(latency.column("internal_cycles").drop_null().to_numpy().sum())
    return out


def _tables(run_dir: Path, info: dict) -> dict[str, pa.Table]:
    import pyarrow.parquet as pq

    from hftlab.analysis import hiccups as hic

    c = info.get("counters") or {}
    out = {"latency": pq.read_table(run_dir / "latency.parquet"),
           "orders": pq.read_table(run_dir / "orders.parquet"),
           "counters": pa.table({"counter": pa.array(list(c), pa.string()),
                                 "value": pa.array([int(v) for v in c.values()], pa.int64())})}
    if hic.has_hiccups(c):
        out["hiccups"] = hic.table(c)
    return out


def run_point(uri: str, sweep: str, point: Point, attempt: int, errors: list[str],
              submitted: float) -> dict[str, Any]:
    """One run of the sweep, in a Ray worker (or in-process): hftlab's run into
    runs/<key>/, then its tables into the dataset and, last, its row in runs.
    Returns the row's values. A failed run returns status "failed" with the
    error (and writes its row); KeyboardInterrupt (Ray's cancel) propagates
    after hftlab's run has cleaned up."""
    from hftlab.experiment.run import run as run_one

    started = time.time()
    store = Store(uri)
    rel = f"runs/{point.key}"
    tmp = None
    if store.local:
        run_dir = Path(store.path(rel))
        shutil.rmtree(run_dir, ignore_errors=True)  # an earlier attempt's
    else:
        tmp = Path(tempfile.mkdtemp(prefix=f"hftlab-sweep-{point.key}-"))
        run_dir = tmp / point.key
        store.delete_dir(rel)
    values: dict[str, Any] = {"attempts": attempt, "submitted": _utc(submitted),
                              "started": _utc(started), "node": socket.gethostname(),
                              "run_dir": rel}
    try:
        try:
            res = run_one(run_spec(point, run_dir))
            orders = res.info.get("orders") or {}
            values.update(orders_sut=orders.get("sut"), orders_golden=orders.get("golden"),
                          orders_equal=orders.get("equal"),
                          ready_s=(res.info.get("phases_s") or {}).get("ready"))
            if res.status != "ok" or not orders.get("equal"):
                raise RunError(f"run ended with status {res.status!r}, orders {orders}")
            tables = _tables(run_dir, res.info)
            values.update(_summary(tables["latency"], res.info["spec"]["accel"]))
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of one run is that run's, recorded
            err = f"attempt {attempt}: {type(exc).__name__}: {exc}"
            values.update(status="failed", error=err, errors=[*errors, err])
        else:
            values.update(status="ok", error=None, errors=list(errors))
            for name, t in tables.items():
                store.write_run_table(name, t, sweep, point)
        if tmp is not None and run_dir.is_dir():
            store.upload_dir(run_dir, rel)
        values["ended"] = _utc(time.time())
        values["wall_s"] = round(time.time() - started, 3)
        store.write_table(store.runs_row(point, values), store.part("runs", sweep, point))
        return {"key": point.key, **values}
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------- Ray
#: Every process of a local Ray (GCS, raylet, its two agents, each worker) imports
#: ray, which imports jsonschema, which builds rfc3987_syntax's Earley grammar when
#: that package is installed (Jupyter's jsonschema[format-nongpl] installs it): 7.4 s
#: of `import ray`'s 12.2 s on this 2-core machine at load 9-12, against a raylet
#: that gives its agents a fixed 15 s to start (ray-project/ray#65983): the local Ray
#: failed to start 4 times in 4 at that load. Ray's processes never check IRI formats,
#: so the embedded Ray's processes get a PYTHONPATH entry where importing
#: rfc3987_syntax fails (jsonschema then leaves those two format checks out):
#: `import ray` 4.4 s, Ray started in 20.5 s at load 7.8. Only the embedded local
#: Ray; a cluster's nodes are started by whoever runs it.
_LEAN = 'raise ImportError("hftlab.sweep: rfc3987_syntax is left out of Ray\'s processes")\n'
_lean_dir: str | None = None


class _lean_ray_imports:
    """PYTHONPATH (inherited by the Ray processes started within) with the lean entry first."""

    def __enter__(self) -> None:
        global _lean_dir
        if _lean_dir is None or not os.path.isdir(_lean_dir):
            _lean_dir = tempfile.mkdtemp(prefix="hftlab-ray-")
            Path(_lean_dir, "rfc3987_syntax.py").write_text(_LEAN)
        self.old = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join([_lean_dir] + ([self.old] if self.old else []))

    def __exit__(self, *exc: object) -> None:
        if self.old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = self.old


def _stop_ray(ray) -> None:
    global _lean_dir
    ray.shutdown()
    if _lean_dir is not None:
        shutil.rmtree(_lean_dir, ignore_errors=True)
        _lean_dir = None


def start_ray(address: str | None, workers: int | None, attempts: int = 3):
    """Connect to the cluster at `address`, or start the embedded local Ray (CPUs:
    `workers`, default the machine's; hftlab_host: 1). Returns (ray, started_here)."""
    try:
        import ray
    except ImportError:
        raise ConfigError("hftlab sweep runs on Ray: pip install ray") from None
    if ray.is_initialized():
        started = False
    elif address:
        try:
            ray.init(address=address, configure_logging=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RunError(f"cannot connect to the Ray cluster at {address}: {exc}") from None
        started = False
    else:
        ncpu = workers or os.cpu_count() or 1
        last = None
        for _ in range(attempts):
            try:
                with _lean_ray_imports():
                        ray.init(num_cpus=ncpu, resources={HOST_RESOURCE: 1.0}, include_dashboard=False,
                             configure_logging=False, log_to_driver=False,
                             _system_config={"worker_register_timeout_seconds": 300})
                break
            except Exception as exc:  # noqa: BLE001 - Ray raises a bare Exception on a start timeout
                # Ray's raylet gives its agents 15 s to start (ray-project/ray#65983); a
                # loaded machine can miss that: try again before giving up.
                last = exc
                ray.shutdown()
        else:
            _stop_ray(ray)
            raise RunError(f"the local Ray did not start in {attempts} attempts: {last} (its logs: "
                           "/tmp/ray/session_latest/logs/raylet.out; on a loaded machine the "
                           "raylet's 15 s wait for its agents can run out, ray-project/ray#65983)")
        started = True
    have = ray.cluster_resources().get(HOST_RESOURCE, 0)
    if have < 1:
        if started:
            _stop_ray(ray)
        raise ConfigError(f"the Ray cluster has no {HOST_RESOURCE!r} resource: start every node with "
                          f"ray start ... --resources '{{\"{HOST_RESOURCE}\": 1}}' (one per machine: "
                          "a timing run takes all of it)")
    return ray, started


# ---------------------------------------------------------------------- the driver
@dataclass
class SweepOutcome:
    spec: SweepSpec
    points: list[Point]
    skipped: list[str] = field(default_factory=list)  #: keys complete before this call
    ok: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  #: key -> last error
    wall_s: float = 0.0
    rows: dict[str, dict] = field(default_factory=dict)  #: key -> its runs row (this call's runs)


class _Tracker:
    """done/failed/remaining and an ETA from this call's completion rate."""

    def __init__(self, total: int, skipped: int, say: Callable[[str, float], None] | None) -> None:
        self.total, self.skipped, self.say = total, skipped, say
        self.ok = self.failed = self.retried = 0
        self.t0 = self.t_last = time.monotonic()

    def finished(self, ok: bool) -> None:
        self.ok += ok
        self.failed += not ok
        self.t_last = time.monotonic()

    def text(self, running: int) -> str:
        done = self.ok + self.failed
        left = self.total - self.skipped - done
        el = self.t_last - self.t0  # the ETA moves when a run ends, not on every redraw
        eta = f"{el / done * left:.0f} s" if done and left else ("?" if left else "0 s")
        skip = f", {self.skipped} skipped" if self.skipped else ""
        retry = f", {self.retried} retried" if self.retried else ""
        return (f"{self.ok} ok, {self.failed} failed, {left} left ({running} running){skip}{retry}, "
                f"ETA {eta}")

    def update(self, running: int) -> None:
        if self.say is not None:
            todo = max(1, self.total - self.skipped)
            self.say(self.text(running), (self.ok + self.failed) / todo)


def run_sweep(spec: SweepSpec, *, address: str | None = None, workers: int | None = None,
              progress: Callable[[str, float], None] | None = None) -> SweepOutcome:
    """Run every point of the spec whose key has no complete result yet (see the module)."""
    points = expand(spec)
    store = Store(spec.out)
    store.write_json("sweep.json", {"spec": spec.to_dict(), "source": spec.source,
                                    "points": [{"key": p.key, "rep": p.rep, "timing": p.timing,
                                                "params": p.params} for p in points]})
    status = store.statuses(spec.name)
    out = SweepOutcome(spec, points, skipped=[p.key for p in points if status.get(p.key) == "ok"])
    todo = [p for p in points if status.get(p.key) != "ok"]
    track = _Tracker(len(points), len(out.skipped), progress)
    t0 = time.monotonic()
    if not todo:
        track.update(0)
        return out
    ray, started = start_ray(address, workers)
    remote = ray.remote(run_point)
    pending: dict[Any, tuple[Point, int, list[str]]] = {}

    def submit(p: Point, attempt: int, errors: list[str]) -> None:
        ref = remote.options(**task_options(p)).remote(store.uri, spec.name, p, attempt, errors,
                                                       time.time())
        pending[ref] = (p, attempt, errors)

    try:
        # timing runs first: each needs a machine to itself, the icount runs then fill the cores
        for p in sorted(todo, key=lambda p: not p.timing):
            submit(p, 1, [])
        track.update(len(pending))
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                p, attempt, errors = pending.pop(ref)
                try:
                    row = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the worker died, or Ray lost the task
                    err = f"attempt {attempt}: {type(exc).__name__}: {str(exc).splitlines()[0]}"
                    row = {"key": p.key, "status": "failed", "error": err, "errors": [*errors, err],
                           "attempts": attempt}
                    store.write_table(store.runs_row(p, row), store.part("runs", spec.name, p))
                if row["status"] == "ok":
                    out.ok.append(p.key)
                    track.finished(True)
                elif attempt <= spec.retries:
                    track.retried += 1
                    submit(p, attempt + 1, row["errors"])
                    continue
                else:
                    out.failed[p.key] = row["error"]
                    track.finished(False)
                out.rows[p.key] = row
            track.update(len(pending))
    except KeyboardInterrupt:
        _cancel(ray, list(pending))
        raise
    finally:
        out.wall_s = time.monotonic() - t0
        if started:
            _stop_ray(ray)
    return out


def _cancel(ray, refs: list) -> None:
    """Cancel the running runs with a KeyboardInterrupt in their workers and wait until
    each has cleaned up (hftlab run's teardown), before Ray stops."""
    for ref in refs:
        try:
            ray.cancel(ref, force=False)
        except Exception:  # noqa: BLE001 - a task that ended meanwhile
            pass
    deadline = time.monotonic() + CANCEL_GRACE_S
    left = list(refs)
    while left and time.monotonic() < deadline:
        try:
            _, left = ray.wait(left, num_returns=len(left), timeout=1.0)
        except KeyboardInterrupt:  # a second Ctrl-C: keep waiting, the runs are cleaning up
            continue
