"""The README's layout table tells the truth about the tree: every top-level
folder of the repository is in it, every hftlab module it names exists, and
every public hftlab module is named."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _layout_rows() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] not in ("path", "---"):
            rows.append((cells[0], cells[1]))
    assert rows, "README.md has no layout table"
    return rows


def _tracked_top_dirs() -> set[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return {p.split("/", 1)[0] for p in out.splitlines() if "/" in p}


def _named_paths() -> set[str]:
    """Paths the table's first column names; `kernel_src/boot/`, `arch/` means
    kernel_src/arch (a name after the first is relative to the first's parent)."""
    names = set()
    for path, _ in _layout_rows():
        parts = [m.rstrip("/") for m in re.findall(r"`([^`]+)`", path)]
        parent = parts[0].rsplit("/", 1)[0] if "/" in parts[0] else ""
        names.add(parts[0])
        names.update(f"{parent}/{p}" if parent and "/" not in p else p for p in parts[1:])
    return names


def test_every_top_level_folder_is_in_the_layout_table():
    named = _named_paths()
    missing = sorted(_tracked_top_dirs() - {n.split("/", 1)[0] for n in named})
    assert not missing, f"README layout table lacks {missing}"
    for name in named - {"runs", "build"}:   # outputs, not committed
        assert (ROOT / name).exists(), f"README layout names {name}, which does not exist"


def _package_tree() -> set[str]:
    """'util/io', 'capture/', 'errors' ...: every module and subpackage of hftlab
    (a subpackage's private modules are its own business)."""
    pkg = ROOT / "hftlab"
    out = set()
    for p in pkg.rglob("*.py"):
        rel = p.relative_to(pkg)
        if "__pycache__" in rel.parts or rel.name.startswith("_") and rel.name != "_build_core.py":
            continue
        if len(rel.parts) == 1:
            out.add(rel.stem)
        elif rel.parts[0] != "capture":
            out.add(f"{rel.parts[0]}/{rel.stem}")
    out |= {f"{d.name}/" for d in pkg.iterdir() if d.is_dir() and not d.name.startswith("__")
            and d.name != "csrc"}
    return out | {"_core"}


def test_hftlab_modules_in_the_table_exist_and_none_is_missing():
    """The hftlab row names each subpackage with its modules in parentheses
    (`lab/` (`build`, `vm` ...)), then the top-level modules."""
    desc = dict(_layout_rows())["`hftlab/`"].split("):", 1)[1]  # after the layer diagram
    named = set()
    for sub, inner in re.findall(r"`(\w+)/` \(([^)]*)\)", desc):
        named.add(f"{sub}/")
        named.update(f"{sub}/{m}" for m in re.findall(r"`(\w+)`", inner))
    rest = re.sub(r"`\w+/` \([^)]*\)", "", desc)
    named.update(re.findall(r"`(\w+)`", rest))
    actual = _package_tree()
    assert not sorted(named - actual), f"README names hftlab modules that do not exist: {sorted(named - actual)}"
    assert not sorted(actual - named), f"hftlab modules missing from the README: {sorted(actual - named)}"
