"""Kernels that run as plain Python until numba pays for itself.

The capture kernels (scanners, the layer decoder, the trailer and payload
loops) are written once, in the subset of Python that numba compiles, and
decorated with `jit` instead of ``numba.njit``. Each is then available in
two forms made from the same code object:

* ``kernel.numba()``: a ``numba.njit(cache=True, ...)`` dispatcher whose
  global names (other kernels) are the other kernels' dispatchers; loading
  it costs a process numba's set-up (import numba, its typing registries,
  which import scipy.linalg: ~0.6-1 s on the 2-core lab machine, more than
  a small capture takes to decode in Python);
* ``kernel.python``: the same function run by the interpreter, its global
  names bound to the other kernels' Python forms (so a Python run never
  calls compiled code, and gives the same values: tests/test_capture_engine.py
  reads every capture of captures/ both ways and compares the tables).

`activate` creates every kernel's dispatcher and puts it in its module in
place of the `Kernel` (where ``numba.njit`` would have put it), so tools that
look for dispatchers in modules (hftlab.experiment.warm) find them; `form`
finds a kernel's chosen form from either object. The reader picks the form
per file (hftlab.capture._reader: `use_numba`).

Why a second set of globals rather than the module's own: once `activate`
has run, the module names are dispatchers; a Python run through the module
globals would then call compiled helpers and need numba.
"""
from __future__ import annotations

import sys
import types
from typing import Callable

import numpy as np

#: numba options of every capture kernel (as the decorators had them)
JIT = dict(cache=True, nogil=True, boundscheck=False, error_model="numpy")

_KERNELS: dict[str, "Kernel"] = {}      # "module.name" -> Kernel
_OWNER: dict[int, "Kernel"] = {}        # id(Kernel or its dispatcher) -> Kernel
_GLOBALS: dict[tuple[str, str], dict] = {}
_active = False


class Kernel:
    """One kernel's source function and its Python and numba forms."""

    def __init__(self, fn: Callable, inline: bool) -> None:
        self.fn = fn
        self.inline = inline
        self.__name__, self.__qualname__ = fn.__name__, fn.__qualname__
        self.__module__, self.__doc__, self.__wrapped__ = fn.__module__, fn.__doc__, fn
        self._python: Callable | None = None
        self._numba = None

    def __repr__(self) -> str:
        return f"<capture kernel {self.__module__}.{self.__name__}>"

    def __call__(self, *args):
        """A call from Python (error paths, one record): the Python form."""
        return self.python(*args)

    @property
    def python(self) -> Callable:
        if self._python is None:
            g, fresh = _globals(self.fn.__module__, "python")
            self._python = self._copy(g)
            if fresh:
                _fill(g, self.fn.__module__, "python")
        return self._python

    def numba(self):
        if self._numba is None:
            import numba

            g, fresh = _globals(self.fn.__module__, "numba")
            opts = dict(JIT, inline="always") if self.inline else JIT
            self._numba = numba.njit(**opts)(self._copy(g))
            _OWNER[id(self._numba)] = self
            if fresh:        # numba reads the globals when it compiles: filled in time
                _fill(g, self.fn.__module__, "numba")
        return self._numba

    def _copy(self, g: dict) -> Callable:
        """fn with other globals: same code object, so numba's cache (keyed on
        the source file, qualified name and bytecode) finds its entries."""
        f = types.FunctionType(self.fn.__code__, g, self.fn.__name__, self.fn.__defaults__,
                               self.fn.__closure__)
        f.__qualname__, f.__doc__ = self.fn.__qualname__, self.fn.__doc__
        return f


def _globals(module: str, which: str) -> tuple[dict, bool]:
    """The copy of a module's globals for its kernels' `which` forms, and
    whether it is new (then the caller fills it with `_fill` once its own
    form exists: kernels refer to each other, and each must have one form)."""
    key = (module, which)
    g = _GLOBALS.get(key)
    if g is not None:
        return g, False
    g = _GLOBALS[key] = dict(vars(sys.modules[module]))
    return g, True


def _fill(g: dict, module: str, which: str) -> None:
    """Bind every kernel named in g to its `which` form."""
    for name, value in vars(sys.modules[module]).items():
        k = _OWNER.get(id(value))
        if k is not None:
            g[name] = k.python if which == "python" else k.numba()


def jit(fn: Callable | None = None, *, inline: bool = False):
    """Decorator: register fn as a capture kernel (``inline=True``: numba
    inlines it into its callers, as ``inline="always"``)."""
    def wrap(f: Callable) -> Kernel:
        k = Kernel(f, inline)
        _KERNELS[f"{f.__module__}.{f.__name__}"] = k
        _OWNER[id(k)] = k
        return k
    return wrap(fn) if fn is not None else wrap


def active() -> bool:
    return _active


def activate() -> None:
    """Load numba and give every registered kernel its dispatcher (compiled
    or loaded from the cache on its first call); the non-inline ones replace
    their Kernel in their module."""
    global _active
    if _active:
        return
    for name, k in list(_KERNELS.items()):
        d = k.numba()
        mod = sys.modules[k.__module__]
        if not k.inline and getattr(mod, k.__name__, None) is k:
            setattr(mod, k.__name__, d)
    _active = True


def form(kernel, use_numba: bool) -> Callable:
    """The numba dispatcher or the Python function of a kernel, given the
    module attribute (a Kernel, or its dispatcher once `activate` ran). The
    Python form runs with numpy's scalar warnings off: numba's
    error_model="numpy" wraps and divides silently, and so must it."""
    k = _OWNER[id(kernel)]
    if use_numba:
        return k.numba()
    fn = k.python

    def quiet(*args):
        with np.errstate(all="ignore"):
            return fn(*args)
    return quiet
