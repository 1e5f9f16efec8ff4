"""Suite-wide rule: a test skips only for a fact of the machine.

Every skip, whether of a test (skip, skipif) or of a whole module at
collection (importorskip, allow_module_level), is checked here against the
allowed reasons, and each reason is checked against the fact it claims:

* no root (tap, netns, capturing): the reason says "need(s) root", and the
  tests do not run as root;
* no hardware virtualization (the KVM boot test): the reason says "no hardware
  virtualization", and the CPU shows neither vmx nor svm;
* clang without libFuzzer: the reason names libFuzzer;
* Debian's registry cannot be reached and no guest kernel is cached (the
  guest baselines): the reason says so (hftlab.lab.guest's
  RegistryUnreachableError), and the kernel cache holds no complete kernel.

Any other skip, or an allowed reason whose fact does not hold here, turns into
a failure that names the reason: a missing tool or package that `make setup`
installs, missing data, a tool that failed, are failures, not skips.
"""
from __future__ import annotations

import os
import re

import pytest


def _no_root() -> bool:
    return os.geteuid() != 0


def _no_hw_virt() -> bool:
    from hftlab.lab.vm import cpu_flags

    return not cpu_flags() & {"vmx", "svm"}


def _no_cached_kernel() -> bool:
    from hftlab.lab import guest

    return not guest.cached_kernels()


#: (what the reason says, the machine fact it claims, the fact's name)
ALLOWED_SKIPS = (
    (re.compile(r"\bneeds? root\b", re.I), _no_root, "the tests run as root"),
    (re.compile(r"\bno hardware virtualization\b", re.I), _no_hw_virt, "the CPU shows vmx or svm"),
    (re.compile(r"\blibFuzzer\b"), lambda: True, ""),
    (re.compile(r"Debian's registry cannot be reached"), _no_cached_kernel,
     "a guest kernel is cached"),
)


def skip_verdict(reason: str) -> str | None:
    """None when `reason` is an allowed skip whose fact holds here, else why not."""
    for pattern, fact, contrary in ALLOWED_SKIPS:
        if pattern.search(reason):
            if fact():
                return None
            return f"the skip claims a machine fact that does not hold here ({contrary})"
    return ("not a fact of the machine (allowed: no root, no hardware virtualization, "
            "clang without libFuzzer, Debian's registry unreachable with no cached kernel)")


def _reason(longrepr) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _refuse(report, reason: str, why: str) -> None:
    report.outcome = "failed"
    report.longrepr = f"skip refused: {reason!r}: {why}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and not hasattr(rep, "wasxfail"):
        reason = _reason(rep.longrepr)
        why = skip_verdict(reason)
        if why:
            _refuse(rep, reason, why)


#: Module-level skips refused at collection. Failing the collection itself
#: would stop the whole session (pytest aborts on a collection error), so they
#: stay reported as skips, renamed "skip refused", and fail the session.
_REFUSED_MODULES: list[str] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped:  # a module skipped whole: importorskip, allow_module_level
        reason = _reason(rep.longrepr)
        why = skip_verdict(reason)
        if why:
            text = f"skip refused: {reason!r}: {why}"
            _REFUSED_MODULES.append(f"{rep.nodeid}: {text}")
            if isinstance(rep.longrepr, tuple) and len(rep.longrepr) == 3:
                rep.longrepr = (rep.longrepr[0], rep.longrepr[1], text)


def pytest_terminal_summary(terminalreporter):
    if _REFUSED_MODULES:
        terminalreporter.section("skips refused at collection (the session fails)", red=True)
        for line in _REFUSED_MODULES:
            terminalreporter.write_line(line)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if _REFUSED_MODULES and session.exitstatus in (pytest.ExitCode.OK,
                                                   pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
