"""pyproject.toml and environment.yml name the same dependencies, and they install.

environment.yml is read by a small reader of the one YAML shape it uses (a
`dependencies:` list, with a nested `- pip:` list), checked against PyYAML
(in the test extra, so installed by `make setup`).
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
# In environment.yml but not Python dependencies of the project.
ENV_ONLY = {"python", "pip"}
_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*?)\s*$")


def canonical(name: str) -> str:
    """PEP 503 name: case-folded, runs of - _ . as one -, so qemu.qmp == qemu-qmp."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirement(text: str) -> tuple[str, str]:
    """'numpy >= 1.26' -> ('numpy', '>=1.26'); conda's 'python=3.11' -> ('python', '==3.11')."""
    match = _REQ.match(text.split(";")[0])
    assert match, f"not a requirement: {text!r}"
    name, spec = match.groups()
    spec = spec.replace(" ", "")
    if re.fullmatch(r"=[^=].*", spec):  # conda's single '=' pins a version prefix
        spec = "=" + spec
    return canonical(name), spec


def pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def read_env_dependencies(text: str) -> list[str]:
    """The entries of `dependencies:` in an environment.yml, the `- pip:` list flattened."""
    out: list[str] = []
    in_deps = False
    for raw in text.splitlines():
        line = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            in_deps = line.strip() == "dependencies:"
            continue
        if in_deps:
            item = line.strip()
            assert item.startswith("- "), f"environment.yml: unexpected line {raw!r}"
            item = item[2:].strip().strip("'\"")
            if item != "pip:":
                out.append(item)
    return out


def project_requirements() -> dict[str, str]:
    """Every requirement pyproject.toml states: build, runtime and the test extra."""
    data = pyproject()
    reqs = (data["build-system"]["requires"] + data["project"]["dependencies"]
            + data["project"]["optional-dependencies"]["test"])
    merged: dict[str, str] = {}
    for req in reqs:
        name, spec = parse_requirement(req)
        assert merged.setdefault(name, spec) == spec, f"pyproject.toml: {name} with two specs"
    return merged


def env_requirements() -> dict[str, str]:
    items = read_env_dependencies((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pairs = [parse_requirement(item) for item in items]
    names = [name for name, _ in pairs]
    assert len(names) == len(set(names)), "environment.yml lists a package twice"
    return {name: spec for name, spec in pairs if name not in ENV_ONLY}


def test_environment_yml_and_pyproject_name_the_same_dependencies():
    assert env_requirements() == project_requirements()


def test_environment_pins_the_python_pyproject_requires():
    items = read_env_dependencies((ROOT / "environment.yml").read_text(encoding="utf-8"))
    python = dict(parse_requirement(i) for i in items)["python"]
    assert python == "==3.11"
    assert pyproject()["project"]["requires-python"] == ">=3.11"


def test_env_reader_agrees_with_pyyaml():
    doc = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    flat: list[str] = []
    for item in doc["dependencies"]:
        flat.extend(item["pip"] if isinstance(item, dict) else [item])
    assert read_env_dependencies((ROOT / "environment.yml").read_text(encoding="utf-8")) == flat
    assert doc["channels"] == ["conda-forge"]


def test_name_normalisation():
    assert canonical("qemu.qmp") == canonical("qemu-qmp") == canonical("Qemu_QMP")
    assert parse_requirement("PyArrow >= 15") == ("pyarrow", ">=15")
    assert parse_requirement("pytest-timeout[x]>=2.2") == ("pytest-timeout", ">=2.2")


def test_installed_versions_satisfy_the_lower_bounds():
    data = pyproject()
    runtime = [parse_requirement(r) for r in data["project"]["dependencies"]]
    tests = [parse_requirement(r) for r in data["project"]["optional-dependencies"]["test"]]
    missing = []
    for name, spec in runtime + tests:
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        assert Version(installed) in SpecifierSet(spec), (name, installed)
    # `make setup` installs the runtime set and the test extra: every one is there
    assert not missing, f"not installed: {missing}"


def test_version_and_console_script():
    import hftlab

    data = pyproject()
    assert hftlab.__version__ == data["project"]["version"]
    assert data["project"]["scripts"]["hftlab"] == "hftlab.cli:main"
    assert (ROOT / "setup.py").read_text().count("hftlab/_build_core.py:ffibuilder") == 1
