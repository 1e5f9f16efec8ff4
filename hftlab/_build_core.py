"""cffi build script for hftlab._core (API mode).

Compiles kernel_src/core/*.c (the very sources HFT-OS links), one strategy
file (kernel_src/strategies/trigger.c unless told otherwise) and
hftlab/csrc/{hostcore,exchange}.c into one extension, with the HFT-OS config
block layout from kernel_src/include/hftos_abi.h. Nothing is copied: the C
files are read where they live. Run by `pip install` through setup.py's
cffi_modules; hftlab.model.strategy calls make_builder() to build the same
extension around another strategy file (the research loop).
"""
from __future__ import annotations

import glob
import os

from cffi import FFI

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
_CORE = os.path.join(_ROOT, "kernel_src", "core")
_CSRC = os.path.join(_HERE, "csrc")
DEFAULT_STRATEGY = os.path.join(_ROOT, "kernel_src", "strategies", "trigger.c")
CFLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"]


def _rel(path: str) -> str:
    """setuptools wants source paths relative to the project root."""
    return os.path.relpath(path, _ROOT) if os.getcwd() == _ROOT else path


def make_builder(module: str = "hftlab._core", strategy: str = DEFAULT_STRATEGY,
                 rel: bool = True) -> FFI:
    """An FFI builder for the golden model with `strategy` compiled in."""
    fix = _rel if rel else os.path.abspath
    builder = FFI()
    with open(os.path.join(_HERE, "_core_cdef.h"), encoding="utf-8") as fh:
        builder.cdef(fh.read())
    builder.set_source(
        module,
        '#include "engine.h"\n#include "ouch.h"\n#include "net.h"\n#include "tslog.h"\n'
        '#include "ptp.h"\n#include "hostcore.h"\n#include "exchange.h"\n#include "hftos_abi.h"\n',
        sources=[fix(p) for p in sorted(glob.glob(os.path.join(_CORE, "*.c")))]
        + [fix(strategy)] + [fix(os.path.join(_CSRC, f)) for f in ("hostcore.c", "exchange.c")],
        include_dirs=[fix(_CORE), fix(_CSRC), fix(os.path.join(_ROOT, "kernel_src", "include"))],
        extra_compile_args=CFLAGS,
    )
    return builder


ffibuilder = make_builder()

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
