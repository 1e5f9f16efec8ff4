"""The environment a result was measured in: every run and every benchmark
records it (CPU model, cores, host kernel, versions, git revision)."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from hftlab.util.paths import ROOT



def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_rev() -> str:
    """Short revision of the checkout, with +dirty when tracked files changed."""
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (rev or "?") + ("+dirty" if dirty else "")


def version() -> str:
    """hftlab's version as installed (pyproject.toml's)."""
    from importlib import metadata  # not at import: hftlab's start-up does not need it

    try:
        return metadata.version("hftlab")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def environment() -> dict[str, object]:
    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "host_kernel": platform.release(),
            "python": platform.python_version(), "hftlab": version(), "git": git_rev()}
