"""Every command the README shows exists, and its CLI example runs as written."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    """The lines of the README's ```sh blocks, comments dropped."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line:
                lines.append(line)
    return lines


def make_targets() -> set[str]:
    targets = set()
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_ .-]+):(?!=)", line)
        if match:
            targets.update(match.group(1).split())
    return targets


def test_readme_make_targets_exist():
    named = [t for c in readme_commands() if c.startswith("make ") for t in c.split()[1:]]
    assert named and set(named) <= make_targets()
    assert {"setup", "demo", "test"} <= set(named)


def test_readme_cli_commands_exist():
    from hftlab.cli import main

    used = {c.split()[1] for c in readme_commands() if c.startswith("hftlab ")}
    assert used and used <= set(main.commands)


@pytest.mark.timeout(300)
def test_readme_cli_example_runs(tmp_path):
    """Runs the README's hftlab lines in a scratch directory (they write runs/...)."""
    exe = shutil.which("hftlab")
    prefix = [exe] if exe else [sys.executable, "-m", "hftlab.cli"]
    for line in (c for c in readme_commands() if c.startswith("hftlab ")):
        argv = prefix + shlex.split(line)[1:]
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
    assert (tmp_path / "runs/synth/golden.parquet").stat().st_size > 0
