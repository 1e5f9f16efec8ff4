"""The capture kernels give the same tables run by numba or by Python.

hftlab.capture._jit runs each kernel either compiled (numba) or as the same
code in the interpreter (small captures, so that `hftlab ingest` of one does
not pay numba's set-up). Every capture file of captures/ is read both ways,
with and without trailer detection, and the four tables, the metadata and
the error must be equal.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from repo_paths import ROOT

import hftlab.capture as capture
from hftlab.capture import _jit
from hftlab.errors import ConfigError

NOT_CAPTURES = {".md", ".txt", ".out", ".tsv"}
FILES = sorted(p for p in (ROOT / "captures").rglob("*") if p.is_file() and p.suffix not in NOT_CAPTURES)


def _read(path: Path, engine: str, trailer: str | None):
    try:
        cap = capture.read(path, engine=engine, partial=True, trailer=trailer, allow_unknown_linktype=True)
    except Exception as exc:  # a file both engines refuse must be refused alike
        return repr(exc)
    return cap


def test_every_capture_is_covered():
    kinds = {p.suffix for p in FILES}
    assert len(FILES) > 90 and {".pcap", ".pcapng", ".erf"} <= kinds, kinds


@pytest.mark.parametrize("trailer", [None, "auto"])
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT / "captures")))
def test_python_and_numba_give_identical_tables(path, trailer):
    py, nb = _read(path, "python", trailer), _read(path, "numba", trailer)
    if isinstance(py, str) or isinstance(nb, str):
        assert py == nb
        return
    for name in ("packets", "itch", "ouch", "ptp"):
        a, b = getattr(py, name), getattr(nb, name)
        assert a.schema == b.schema, name
        assert a.equals(b), f"{name} differs between the engines"
    assert py.metadata == nb.metadata
    assert str(py.error) == str(nb.error)


def test_the_python_form_calls_no_compiled_code():
    """The Python form's global names are Python forms, also after
    activate() put the dispatchers into the modules."""
    from hftlab.capture import _decode

    _jit.activate()
    assert type(_decode.decode_layers).__name__ == "CPUDispatcher"   # where warm.kernels() looks
    py = _jit.form(_decode.decode_layers, False)
    g = _jit._OWNER[id(_decode.decode_layers)].python.__globals__
    assert isinstance(g["_link"], type(_jit._OWNER[id(_decode.decode_layers)].python))
    assert callable(py)


def test_engine_is_checked():
    with pytest.raises(ConfigError, match="engine"):
        capture.CaptureReader(ROOT / "captures/moldudp64/ritch-session.pcap", engine="cython")


def test_ouch_schema_is_the_order_tables():
    from hftlab.model import core

    assert capture.OUCH_SCHEMA.names[:2] == ["packet_index", "ts_ns"]
    assert capture.OUCH_SCHEMA.remove(0).remove(0) == core.orders_from_ouch(b"").schema

