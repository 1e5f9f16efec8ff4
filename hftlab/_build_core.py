"""cffi build script for hftlab._core (API mode).

Compiles kernel_src/core/*.c (the very sources HFT-OS links) and
hftlab/csrc/{hostcore,exchange}.c into one extension, with the HFT-OS config
block layout from kernel_src/include/hftos_abi.h. Nothing is copied: the C files are
read where they live. Run by `pip install` through setup.py's cffi_modules.
"""
from __future__ import annotations

import glob
import os

from cffi import FFI

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
_CORE = os.path.join(_ROOT, "kernel_src", "core")
_CSRC = os.path.join(_HERE, "csrc")


def _rel(path: str) -> str:
    """setuptools wants source paths relative to the project root."""
    return os.path.relpath(path, _ROOT) if os.getcwd() == _ROOT else path


ffibuilder = FFI()
with open(os.path.join(_HERE, "_core_cdef.h"), encoding="utf-8") as fh:
    ffibuilder.cdef(fh.read())

ffibuilder.set_source(
    "hftlab._core",
    '#include "engine.h"\n#include "ouch.h"\n#include "net.h"\n#include "tslog.h"\n'
    '#include "hostcore.h"\n#include "exchange.h"\n#include "hftos_abi.h"\n',
    sources=[_rel(p) for p in sorted(glob.glob(os.path.join(_CORE, "*.c")))]
    + [_rel(os.path.join(_CSRC, f)) for f in ("hostcore.c", "exchange.c")],
    include_dirs=[_rel(_CORE), _rel(_CSRC), _rel(os.path.join(_ROOT, "kernel_src", "include"))],
    extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
