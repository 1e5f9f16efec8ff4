"""The repository stands alone, and its tests skip only for machine facts.

* No git-tracked text file names a path of the development machine: an
  absolute path under the development machine's work folder (its checkouts,
  its data folder), or the data folder beside the checkout. A user's clone
  has none of them; tests, benchmarks and notebooks find their files relative
  to the repository root. This file spells them from parts (DEV_ROOT, SHARED)
  and so checks itself too.
* tests/conftest.py's skip rule: allowed reasons pass only where their fact
  holds; any other skip becomes a failure (checked on its verdict function,
  and end to end on a scratch test module run by pytest).
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]

#: What a committed file must not name: an absolute path under DEV_ROOT (not
#: the tail of a relative one such as a/work/b), the data folder beside the
#: checkout.
#: Spelled from parts so that this file, which only forbids them, names none of them.
DEV_ROOT, SHARED = "/" + "work" + "/", "shared"
FORBIDDEN = re.compile(r"(?<![\w.~-])" + re.escape(DEV_ROOT) + r"|\.\./" + SHARED + r"\b|\b"
                       + SHARED + r"/data\b")


def tracked_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    files = []
    for name in out.decode().split("\0"):
        p = ROOT / name
        if name and p.is_file() and not p.is_symlink():
            files.append(p)
    return files


def forbidden_lines(path: Path) -> list[str]:
    """'path:line: text' for every line of a text file that names a forbidden path."""
    data = path.read_bytes()
    if b"\0" in data:  # binary: images, pcaps, parquet
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []
    rel = path.relative_to(ROOT).as_posix()
    return [f"{rel}:{n}: {line.strip()[:160]}" for n, line in enumerate(text.splitlines(), 1)
            if FORBIDDEN.search(line)]


def test_the_pattern_finds_what_it_should():
    for bad in (f"{DEV_ROOT}{SHARED}/data/x.pcap", f"open('{DEV_ROOT}main/datasets')",
                f"ROOT / '../{SHARED}/x'", f"see {SHARED}/data/README",
                f"Path('..') / '..' / '{SHARED}/data'"):
        assert FORBIDDEN.search(bad), bad
    for good in ("framework/", "a/work/b", "docs/architecture.md", "sharedata", "datasets/ritch"):
        assert not FORBIDDEN.search(good), good


def test_no_tracked_file_names_a_path_of_the_development_machine():
    files = tracked_text_files()
    assert len(files) > 50, "git ls-files listed almost nothing: not run in the repository?"
    hits = [h for p in files for h in forbidden_lines(p)]
    assert not hits, ("files name paths of the development machine (a clone has none):\n"
                      + "\n".join(hits))


# --- tests/conftest.py: a skip only for a fact of the machine ------------------

def _conftest():
    spec = importlib.util.spec_from_file_location("hftlab_tests_conftest", ROOT / "tests" / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_skip_verdicts():
    from hftlab.lab import guest
    from hftlab.lab.vm import cpu_flags

    verdict = _conftest().skip_verdict
    root = os.geteuid() == 0
    hw = bool(cpu_flags() & {"vmx", "svm"})
    assert (verdict("Skipped: netns, veth and tap need root") is None) == (not root)
    assert (verdict("capturing on loopback needs root") is None) == (not root)
    assert (verdict("no hardware virtualization: the CPU shows neither vmx nor svm") is None) == (not hw)
    assert verdict("clang cannot link libFuzzer (libclang-rt-14-dev missing?)") is None
    assert (verdict("no guest kernel: Debian's registry cannot be reached: Temporary failure "
                    "resolving 'deb.debian.org'") is None) == (not guest.cached_kernels())
    for refused in ("tcpdump not installed", "needs QEMU", f"../{SHARED}/data is not present",
                    "could not import 'hdrh': No module named 'hdrh'", "tcpdump failed: x",
                    "no guest kernel: `apt-get download` failed: 404 Not Found"):
        assert verdict(refused), refused


SCRATCH = '''
import pytest

def test_tool_missing():
    pytest.skip("tcpdump not installed")

@pytest.mark.skipif(True, reason="needs QEMU")
def test_marked_skip():
    pass

def test_root_only():
    pytest.skip("tap needs root")

def test_libfuzzer():
    pytest.skip("clang cannot link libFuzzer")

def test_plain():
    assert True
'''

SCRATCH_MODULE_SKIP = '''
import pytest

pytest.importorskip("hftlab_no_such_module")

def test_never():
    pass
'''


def test_conftest_turns_other_skips_into_failures(tmp_path):
    """pytest on a scratch module with our conftest: only the machine-fact
    skips stay skips; the rest fail and say why."""
    (tmp_path / "conftest.py").write_text(textwrap.dedent(f'''
        import importlib.util
        _s = importlib.util.spec_from_file_location("hftlab_tests_conftest", {str(ROOT / "tests" / "conftest.py")!r})
        _m = importlib.util.module_from_spec(_s)
        _s.loader.exec_module(_m)
        pytest_runtest_makereport = _m.pytest_runtest_makereport
        pytest_make_collect_report = _m.pytest_make_collect_report
        pytest_terminal_summary = _m.pytest_terminal_summary
        pytest_sessionfinish = _m.pytest_sessionfinish
    '''))
    (tmp_path / "test_scratch.py").write_text(SCRATCH)
    (tmp_path / "test_scratch_module.py").write_text(SCRATCH_MODULE_SKIP)
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                        str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = p.stdout
    print(out)
    assert p.returncode == 1, out + p.stderr
    root = os.geteuid() == 0
    line = out.strip().splitlines()[-1]
    counts = dict((k, int(n)) for n, k in re.findall(r"(\d+) (\w+)", line))
    # tool missing (call: failed), marked skip (setup: an error); the module
    # skip stays counted as skipped (failing a collection would stop the whole
    # session) but is renamed and fails the session
    assert counts.get("failed", 0) == 1 + root, out
    assert counts.get("error", counts.get("errors", 0)) == 1, out
    assert counts.get("skipped", 0) == 2 + (not root), out
    assert counts.get("passed", 0) == 1, out
    for reason in ("tcpdump not installed", "needs QEMU", "hftlab_no_such_module"):
        assert re.search(r"skip refused: .*" + re.escape(reason), out), (reason, out)
    assert "skips refused at collection" in out, out
    assert re.search(r"SKIPPED .*libFuzzer", out), out
    assert bool(re.search(r"SKIPPED .*tap needs root", out)) == (not root), out
    # the refused module skip alone fails the session
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                        str(tmp_path / "test_scratch_module.py")], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 1 and "1 skipped" in p.stdout, p.stdout + p.stderr
    # and the allowed skip alone does not
    (tmp_path / "test_scratch_ok.py").write_text(
        "import pytest\n\ndef test_f():\n    pytest.skip('clang cannot link libFuzzer')\n")
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                        str(tmp_path / "test_scratch_ok.py")], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0 and "1 skipped" in p.stdout, p.stdout + p.stderr
