"""hftlab.sweep.grid: a sweep spec (YAML or a dict) and the runs it expands into.

A spec names the runs of a study as a grid::

    name: packing                 # the sweep= partition (default: the file's stem)
    out: runs/sweep-packing       # the sweep directory: a path or a filesystem URI
    retries: 1                    # a failed run is tried again this many times
    reps: 2                       # every point of the grid this many times (column rep)
    base:                         # what every run shares (RunSpec fields)
      dataset: datasets/ritch/ex20101224.TEST_ITCH_50
      accel: tcg-icount
    axes:                         # the product of these
      sut: [hftos, linux-socket]
      max_count: [1, 8, 64]       # packing: ITCH messages per MoldUDP64 datagram
      strategy.order_shares: [100, 200]   # a strategy or risk parameter
    include:                      # runs added as they are (over base)
      - {sut: linux-dpdk, max_count: 64}
    exclude:                      # grid points matching every key of an entry are dropped
      - {sut: linux-socket, max_count: [1, 8]}   # a list matches any of its values

`expand(spec)` gives one `Point` per run: its parameters with every default
filled in, and `key`, a stable hash of them (16 hex digits of SHA-256 over
canonical JSON, the dataset by the SHA-256 of its bytes rather than its
path): the same run in another spec, another order of axes, or with a
default written out, has the same key, so a sweep resumes by key.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from hftlab.errors import ConfigError
from hftlab.experiment.spec import DEFAULT_DATASET, RunSpec
from hftlab.model import core

__all__ = ["SweepSpec", "Point", "load_spec", "expand", "PARAMS", "CONFIG_PARAMS", "PARTITIONS",
           "is_timing", "run_spec"]

#: the RunSpec fields a sweep may set, with their defaults (RunSpec's own)
_RUNSPEC_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunSpec)
                     if f.default is not dataclasses.MISSING}
PARAMS: dict[str, Any] = {k: _RUNSPEC_DEFAULTS[k] for k in (
    "sut", "accel", "nic", "where", "boot", "messages", "rate", "max_count", "max_payload",
    "guest_cpus", "hiccups_s", "hiccup_threshold_ns", "boot_timeout", "drain_timeout", "network")}
PARAMS["dataset"] = str(DEFAULT_DATASET)
#: the strategy's and risk checks' parameters, as "strategy.<field>" / "risk.<field>", and instance
_DEFAULT_CONFIG = core.EngineConfig.default().to_dict()
CONFIG_PARAMS: dict[str, Any] = {
    **{f"strategy.{k}": v for k, v in _DEFAULT_CONFIG["strategy"].items()},
    **{f"risk.{k}": v for k, v in _DEFAULT_CONFIG["risk"].items()},
    "instance": _DEFAULT_CONFIG["instance"],
}
#: the hive partition keys of the dataset, after sweep=
PARTITIONS = ("sut", "nic", "accel")
_TOP_KEYS = {"name", "out", "retries", "reps", "base", "axes", "include", "exclude"}
_ALIASES = {"hiccups": "hiccups_s", "packing": "max_count"}


@dataclass
class Point:
    """One run of the sweep: every parameter (defaults filled in), its rep and its key."""

    params: dict[str, Any]
    rep: int
    key: str
    dataset_sha256: str

    @property
    def timing(self) -> bool:
        return is_timing(self.params)

    def partition(self) -> dict[str, str]:
        return {k: str(self.params[k]) for k in PARTITIONS}


@dataclass
class SweepSpec:
    name: str
    out: str
    retries: int = 1
    reps: int = 1
    base: dict[str, Any] = field(default_factory=dict)
    axes: dict[str, list] = field(default_factory=dict)
    include: list[dict[str, Any]] = field(default_factory=list)
    exclude: list[dict[str, Any]] = field(default_factory=list)
    source: str = "<dict>"  #: where the spec came from, for messages

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "out": self.out, "retries": self.retries, "reps": self.reps,
                "base": self.base, "axes": self.axes, "include": self.include, "exclude": self.exclude}


def is_timing(params: Mapping[str, Any]) -> bool:
    """A timing run needs a machine's cores to itself; a tcg-icount run in the guest counts
    instructions, exact whatever else the machine does, and takes one core."""
    return not (params.get("accel") == "tcg-icount" and params.get("where", "guest") == "guest")


def _key_name(k: str, where: str, src: str) -> str:
    k = _ALIASES.get(k, k)
    if k not in PARAMS and k not in CONFIG_PARAMS:
        raise ConfigError(f"{src}: {where}: unknown parameter {k!r}; known: "
                          f"{', '.join(sorted(PARAMS))}, strategy.<field>, risk.<field>, instance "
                          f"({', '.join(sorted(CONFIG_PARAMS))})")
    return k


def _params(d: Any, where: str, src: str) -> dict[str, Any]:
    if d is None:
        return {}
    if not isinstance(d, Mapping):
        raise ConfigError(f"{src}: {where}: a mapping of parameter: value, not {type(d).__name__}")
    return {_key_name(str(k), where, src): v for k, v in d.items()}


def load_spec(spec: "str | Path | Mapping[str, Any] | SweepSpec", *, out: str | None = None) -> SweepSpec:
    """A SweepSpec from a YAML file, a dict of the same shape, or a SweepSpec; `out`
    overrides the spec's."""
    if isinstance(spec, SweepSpec):
        return dataclasses.replace(spec, out=out) if out else spec
    src, name = "<dict>", None
    if isinstance(spec, (str, Path)):
        import yaml

        p = Path(spec)
        src, name = str(p), p.stem
        try:
            d = yaml.safe_load(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read the sweep spec: {exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    elif isinstance(spec, Mapping):
        d = dict(spec)
    else:
        raise ConfigError(f"sweep spec: a YAML file, a dict or a SweepSpec, not {type(spec).__name__}")
    if not isinstance(d, Mapping):
        raise ConfigError(f"{src}: the sweep spec is a mapping (name, out, base, axes, ...)")
    unknown = sorted(set(d) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{src}: unknown key(s) {unknown}; a sweep spec has {', '.join(sorted(_TOP_KEYS))}")
    name = str(d.get("name") or name or "")
    if not name or any(c in name for c in "/=\\ ") or name.startswith((".", "_")):
        raise ConfigError(f"{src}: name {name!r}: a sweep needs a name without '/', '=', spaces "
                          "or a leading '.' or '_' (it is the sweep= partition)")
    axes_in = d.get("axes") or {}
    if not isinstance(axes_in, Mapping):
        raise ConfigError(f"{src}: axes: a mapping of parameter: [values]")
    axes = {}
    for k, v in axes_in.items():
        kk = _key_name(str(k), "axes", src)
        if not isinstance(v, list) or not v:
            raise ConfigError(f"{src}: axes.{k}: a non-empty list of values, not {v!r}")
        axes[kk] = v
    include = d.get("include") or []
    exclude = d.get("exclude") or []
    for what, lst in (("include", include), ("exclude", exclude)):
        if not isinstance(lst, list):
            raise ConfigError(f"{src}: {what}: a list of mappings")
    reps, retries = d.get("reps", 1), d.get("retries", 1)
    if not isinstance(reps, int) or reps < 1:
        raise ConfigError(f"{src}: reps {reps!r}: an integer >= 1")
    if not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"{src}: retries {retries!r}: an integer >= 0")
    out_dir = out or d.get("out") or f"runs/sweep-{name}"
    return SweepSpec(name=name, out=str(out_dir), retries=retries, reps=reps,
                     base=_params(d.get("base"), "base", src), axes=axes,
                     include=[_params(x, f"include[{i}]", src) for i, x in enumerate(include)],
                     exclude=[_params(x, f"exclude[{i}]", src) for i, x in enumerate(exclude)],
                     source=src)


def _normal(k: str, v: Any) -> Any:
    """One parameter value in the canonical form the key hashes."""
    if k == "rate":
        return None if v in (None, 0) else float(v)
    if k in ("hiccups_s", "boot_timeout", "drain_timeout"):
        return float(v)
    if k == "dataset":
        return str(v)
    if k == "strategy.symbols":
        return [v] if isinstance(v, str) else list(v or [])
    return v


def _matches(params: Mapping[str, Any], rule: Mapping[str, Any]) -> bool:
    for k, want in rule.items():
        opts = want if isinstance(want, list) and k != "strategy.symbols" else [want]
        if params.get(k) not in [_normal(k, o) for o in opts]:
            return False
    return True


def config_of(params: Mapping[str, Any]) -> core.EngineConfig:
    d: dict[str, Any] = {"strategy": {}, "risk": {}, "instance": params["instance"]}
    for k in CONFIG_PARAMS:
        if "." in k:
            sec, f = k.split(".", 1)
            d[sec][f] = params[k]
    return core.EngineConfig.from_dict(d)


def run_spec(point: Point, out: Path) -> RunSpec:
    """The RunSpec of a point, its run directory `out`. An icount run leaves the vCPU
    unpinned: two side by side would otherwise share the one core RunSpec pins to."""
    p = point.params
    kw = {k: p[k] for k in PARAMS if k != "dataset"}
    return RunSpec(**kw, dataset=Path(p["dataset"]), config=config_of(p), out=out,
                   vcpu_core=RunSpec.vcpu_core if point.timing else None)


def _sha256(path: Path, cache: dict[str, str]) -> str:
    k = str(path)
    if k not in cache:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        cache[k] = h.hexdigest()
    return cache[k]


def expand(spec: SweepSpec, *, validate: bool = True) -> list[Point]:
    """The runs of the sweep, in grid order (axes as written, the last varying fastest),
    then the includes; reps of a point next to each other. Each point is checked as a
    RunSpec (validate=True): a bad value fails here, before anything runs, naming the point."""
    src = spec.source
    names = list(spec.axes)
    combos = [dict(zip(names, vals)) for vals in itertools.product(*spec.axes.values())] \
        if names else [{}]
    raw = [(c, "axes") for c in combos if not any(_matches({k: _normal(k, v) for k, v in
                                                            {**spec.base, **c}.items()}, r)
                                                  for r in spec.exclude)]
    raw += [(x, f"include[{i}]") for i, x in enumerate(spec.include)]
    if not raw:
        raise ConfigError(f"{src}: the grid is empty (every point excluded)")
    points, seen, digests = [], set(), {}
    for over, where in raw:
        params = {**PARAMS, **CONFIG_PARAMS, **spec.base, **over}
        params = {k: _normal(k, v) for k, v in params.items()}
        ds = Path(params["dataset"])
        if not ds.is_file():
            raise ConfigError(f"{src}: {where} {over}: dataset {ds} does not exist")
        params["dataset"] = str(ds.resolve())
        digest = _sha256(ds.resolve(), digests)
        for rep in range(spec.reps):
            canon = {k: v for k, v in params.items() if k != "dataset"}
            canon.update(dataset_sha256=digest, rep=rep)
            key = hashlib.sha256(json.dumps(canon, sort_keys=True, default=str).encode()).hexdigest()[:16]
            if key in seen:
                continue
            seen.add(key)
            pt = Point(params=dict(params), rep=rep, key=key, dataset_sha256=digest)
            if validate:
                try:
                    run_spec(pt, Path("/nonexistent")).validate()
                except ConfigError as exc:
                    raise ConfigError(f"{src}: {where} {over}: {exc}") from None
            points.append(pt)
    return points
