"""hftlab.model.strategy_cache: strategy C files compiled into the golden model.

A strategy is one freestanding C file against kernel_src/core/strategy.h.
:func:`load_strategy` builds the golden model (hftlab._core's sources, with
that strategy instead of the bundled trigger) into a cache keyed by the
hash of every C source involved, so the first use of a strategy compiles
it (a progress line says so, ~30-60 s) and every later use imports it at
once. Before the cffi build, the file goes through exactly the rule HFT-OS
builds it with (kernel_src/core/core.mk: freestanding, -Werror, then
kernel_src/tools/strategy_check.sh), so a strategy the golden model accepts
is one HFT-OS and the baselines accept, and a bad one is refused with the
compiler's file:line or the offending symbol's name.

hftlab.model.strategy (the research loop) and hftlab.model.core's Engine
load strategies through here.
"""
from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Callable

from hftlab.errors import BuildError, ConfigError
from hftlab.util.paths import ROOT

__all__ = ["BUNDLED", "DEFAULT", "STRATEGIES", "load_strategy", "check_strategy", "resolve_strategy",
           "cache_dir", "source_hash"]

KERNEL_SRC = ROOT / "kernel_src"
STRATEGIES = KERNEL_SRC / "strategies"
#: The strategies that ship with hftlab, by name (``--strategy trigger`` works too).
BUNDLED = {p.stem: p for p in sorted(STRATEGIES.glob("*.c"))}
DEFAULT = STRATEGIES / "trigger.c"
_loaded: dict[str, ModuleType] = {}


def resolve_strategy(strategy: str | os.PathLike[str] | None) -> Path:
    """A strategy argument as a path: None is the bundled trigger, a bare
    bundled name (``imbalance``) is kernel_src/strategies/<name>.c."""
    if strategy is None:
        return DEFAULT
    s = os.fspath(strategy)
    if s in BUNDLED:
        return BUNDLED[s]
    p = Path(s).expanduser().resolve()
    if not p.is_file():
        raise ConfigError(f"strategy {s!r}: no such file (bundled: {', '.join(BUNDLED)})")
    if p.suffix != ".c":
        raise ConfigError(f"strategy {p}: a strategy is a C file (.c)")
    return p


def cache_dir() -> Path:
    """Where compiled strategies live: $HFTLAB_CACHE/strategies, else
    ~/.cache/hftlab/strategies."""
    base = os.environ.get("HFTLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hftlab")
    return Path(base) / "strategies"


def _sources(path: Path) -> list[Path]:
    core = sorted((KERNEL_SRC / "core").glob("*.[ch]"))
    csrc = sorted((ROOT / "hftlab" / "csrc").glob("*.[ch]"))
    return [path, *core, *csrc, ROOT / "hftlab" / "_core_cdef.h", ROOT / "hftlab" / "_build_core.py",
            KERNEL_SRC / "include" / "hftos_abi.h", KERNEL_SRC / "tools" / "strategy_check.sh",
            KERNEL_SRC / "core" / "core.mk"]


def source_hash(path: Path) -> str:
    """sha256 over the strategy and every source the golden model is built from."""
    h = hashlib.sha256()
    for p in _sources(path):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def check_strategy(strategy: str | os.PathLike[str], build: Path | None = None) -> Path:
    """Build the strategy as HFT-OS does (core.mk's freestanding rule and
    strategy_check.sh) into `build` (a temporary directory by default);
    BuildError with the compiler's or the checker's message when refused.
    Returns the path of the strategy."""
    path = resolve_strategy(strategy)
    with tempfile.TemporaryDirectory(prefix="hftlab-strat-") as tmp:
        out = Path(build or tmp)
        p = subprocess.run(["make", "-s", "-C", str(KERNEL_SRC), f"BUILD={out}", f"STRATEGY={path}",
                            str(out / "core-k" / "strategy_impl.o")],
                           capture_output=True, text=True, check=False)
    if p.returncode != 0:
        lines = [ln for ln in (p.stderr + p.stdout).splitlines()
                 if ln.strip() and not ln.startswith(("make", "cc ", "gcc "))]
        msg = "\n".join(lines[-25:]) or f"make exited with {p.returncode}"
        if "No such file or directory" in msg and "#include <" in msg:
            msg += ("\n(a strategy is freestanding: it includes strategy.h only, and the "
                    "compiler's own stdint.h/stddef.h/stdbool.h; no libc header)")
        raise BuildError(f"strategy {path} refused:\n{msg}")
    return path


def _compile(path: Path, digest: str, dest: Path) -> Path:
    from hftlab._build_core import make_builder  # the extension's build script; cffi only here

    name = f"_hftlab_strategy_{digest[:16]}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        builder = make_builder(module=name, strategy=str(path), rel=False)
        so = builder.compile(tmpdir=str(tmp), verbose=False)
        (tmp / "strategy.txt").write_text(f"{path}\n{digest}\n")
        for junk in tmp.glob("*.[co]"):
            junk.unlink()
        try:
            os.replace(tmp, dest)
        except OSError:  # another process won the race: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, BuildError):
            raise
        raise BuildError(f"strategy {path}: golden model build failed: {exc}") from None
    return dest / Path(so).name


def _to_stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def load_strategy(strategy: str | os.PathLike[str] | None, *, quiet: bool = False,
                  progress: Callable[[str], None] | None = None) -> ModuleType:
    """The golden model (a cffi module with .ffi and .lib) with `strategy`
    compiled in; compiled on first use, from the cache afterwards. A first
    compile is announced through `progress` (default: a line on stderr)
    unless quiet."""
    say = (lambda _line: None) if quiet else (progress or _to_stderr)
    path = resolve_strategy(strategy)
    digest = source_hash(path)
    if digest in _loaded:
        return _loaded[digest]
    name = f"_hftlab_strategy_{digest[:16]}"
    dest = cache_dir() / digest[:16]
    found = sorted(dest.glob(f"{name}*.so")) if dest.is_dir() else []
    if found:
        so = found[0]
    else:
        t0 = time.monotonic()
        say(f"hftlab: compiling strategy {path.name} into the golden model (first use of this "
            f"source; ~15-60 s) -> {dest}")
        check_strategy(path)
        so = _compile(path, digest, dest)
        say(f"hftlab: strategy {path.name} compiled in {time.monotonic() - t0:.1f} s")
    loader = importlib.machinery.ExtensionFileLoader(name, str(so))
    spec = importlib.util.spec_from_file_location(name, str(so), loader=loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    _loaded[digest] = mod
    return mod
