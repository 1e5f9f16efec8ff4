"""The CLI starts without the heavy libraries (issue 11, item 5).

A structural check, not a timing one (benchmarks/startup.py measures the
times): `python3 -X importtime` lists every module a process imports, so a
fresh `hftlab --help` must not list numba, pandas, polars, scipy,
pyarrow.parquet or rich, and `import hftlab.capture` must not load the
decoders until a name of it is used. `hftlab ingest` of a small capture runs
the kernels in Python (hftlab.capture._jit): it must load neither numba nor
scipy, pandas (pa.array, to_numpy, empty_table import it), pyarrow.compute or
polars; a capture over the engine's threshold loads numba.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from repo_paths import ROOT

#: loaded by none of --help, --version, `import hftlab`, `import hftlab.capture`
HEAVY = ("numba", "numpy", "pandas", "polars", "scipy", "pyarrow", "pyarrow.parquet", "rich",
         "llvmlite", "matplotlib", "importlib.metadata")


def imported(*args: str) -> tuple[set[str], subprocess.CompletedProcess]:
    """The modules a fresh `python3 -X importtime ARGS` imports, and its result."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPROFILEIMPORTTIME"}
    p = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    mods = set()
    for line in p.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":            # the header line
                mods.add(name)
    return mods, p


def heavy(mods: set[str], allowed: tuple[str, ...] = ()) -> list[str]:
    """The HEAVY packages among mods, matched with their submodules too: a
    package loaded through importlib.import_module is not itself listed by
    -X importtime, but the modules its own import statements load are."""
    hit = {h for h in HEAVY for m in mods if m == h or m.startswith(h + ".")}
    return sorted(hit - set(allowed))


def test_help_imports_no_heavy_library():
    mods, p = imported("-m", "hftlab.cli", "--help")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "hftlab.cli" in mods and "click" in mods      # the parse really ran here
    for cmd in ("ingest", "run", "study", "report", "doctor"):
        assert f"  {cmd}" in p.stdout                     # every command is still listed
    assert heavy(mods) == []
    assert not [m for m in mods if m.startswith("hftlab.") and m.split(".")[1] in
                ("capture", "model", "lab", "analysis", "experiment")]


def test_subcommand_help_imports_no_heavy_library():
    mods, p = imported("-m", "hftlab.cli", "ingest", "--help")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "--trailer" in p.stdout
    assert heavy(mods) == []
    assert "hftlab.capture" not in mods


def test_version_still_reported():
    mods, p = imported("-m", "hftlab.cli", "--version")
    assert p.returncode == 0, p.stderr[-2000:]
    import hftlab

    assert hftlab.__version__ in p.stdout
    assert heavy(mods, allowed=("importlib.metadata",)) == []


def test_import_hftlab_is_light():
    mods, p = imported("-c", "import hftlab; hftlab.DataError")
    assert p.returncode == 0, p.stderr[-2000:]
    assert heavy(mods) == []


def test_import_capture_loads_decoders_on_first_use():
    mods, p = imported("-c", "import hftlab.capture")
    assert p.returncode == 0, p.stderr[-2000:]
    assert heavy(mods) == []
    assert not [m for m in mods if m.startswith("hftlab.capture.")]

    code = ("import sys, hftlab.capture as c; r = c.CaptureReader; "
            "print(' '.join(sorted(sys.modules)))")
    _, p = imported("-c", code)
    assert p.returncode == 0, p.stderr[-2000:]
    loaded = set(p.stdout.split())
    assert "hftlab.capture._reader" in loaded               # loaded when used ...
    assert not {"numba", "polars", "pandas", "hftlab.capture._ptp"} & loaded  # ... only what it needs


#: what the ingest of a small capture does without
NOT_FOR_SMALL = ("numba", "llvmlite", "scipy", "pandas", "polars", "pyarrow.compute", "rich")


def _write_pcap(path, n: int) -> None:
    """n Ethernet/IPv4/UDP/MoldUDP64 frames, one ITCH Add Order each (the
    benchmarks' generator)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from ingest import write_pcap
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    write_pcap(path, n)


def test_small_ingest_loads_neither_numba_nor_pandas(tmp_path):
    from hftlab.capture._reader import PYTHON_MAX_BYTES

    ten = tmp_path / "ten.pcap"
    _write_pcap(ten, 10)
    assert ten.stat().st_size <= PYTHON_MAX_BYTES
    mods, p = imported("-m", "hftlab.cli", "ingest", str(ten), "--out", str(tmp_path / "ten.parquet"))
    assert p.returncode == 0, p.stderr[-2000:]
    assert "10 packets" in p.stdout and "itch messages=10" in p.stdout   # it decoded the ITCH too
    hit = {h for h in NOT_FOR_SMALL for m in mods if m == h or m.startswith(h + ".")}
    assert not hit, f"a 10-packet ingest imported {sorted(hit)}"
    assert "hftlab.capture._decode" in mods


def test_a_capture_over_the_threshold_loads_numba(tmp_path):
    from hftlab.capture._reader import PYTHON_MAX_BYTES

    big = tmp_path / "big.pcap"
    _write_pcap(big, PYTHON_MAX_BYTES // 100 + 10)
    assert big.stat().st_size > PYTHON_MAX_BYTES
    mods, p = imported("-m", "hftlab.cli", "ingest", str(big))
    assert p.returncode == 0, p.stderr[-2000:]
    assert "numba" in mods


def test_capture_names_resolve():
    import hftlab.capture as capture

    for name in capture.__all__:
        assert getattr(capture, name) is not None
        assert name in dir(capture)
    with pytest.raises(AttributeError):
        capture.no_such_name  # noqa: B018
    from hftlab.capture import PtpSeries, read  # the from-import form works too

    assert callable(read) and PtpSeries.__name__ == "PtpSeries"
