"""Every notebook in notebooks/ executes headless and shows its key result (issues 5, 10).

Each notebook checks its own key result with asserts (orders equal to the
golden model's, report written, verdict table, ingest row counts ...) and,
after them, prints one line "CHECKED <notebook>: ...". This test executes
each notebook with nbclient: an exception in any cell raises
CellExecutionError out of execute(), which fails the test. Then it checks the
executed outputs: every code cell ran, no cell has an error output, the last
code cell printed the CHECKED line, and the notebook's key table or figure is
among the outputs. A notebook that runs HFT-OS needs root (a tap in a network
namespace) and skips only without it; QEMU, dumpcap and the rest come with
`make setup`, so a missing one fails the notebook. Each notebook must finish
in under 120 s. The committed notebooks carry no outputs. The notebooks use the
API (hftlab.run, load, study, compare), whose progress bar is one display updated
in place: the executed outputs hold one bar per run or study, no text frames.
"""
from __future__ import annotations

import ast
import os
import re
import time
from pathlib import Path

import nbclient
import nbformat
import pytest
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NEEDS_ROOT = {"01-quickstart", "02-ab-study", "03-jitter", "04-capture-ingest", "06-baselines",
              "07-strategies"}
TIME_LIMIT_S = 120

#: Besides its CHECKED line, what each notebook's executed outputs must show:
#: (output kind, text it contains); kinds are "stdout" and MIME types.
KEY_OUTPUTS: dict[str, list[tuple[str, str]]] = {
    "01-quickstart": [("text/html", "<b>hftlab run</b>"),  # the Run as the last line of a cell
                      ("text/html", ">p99.99</th>"),       # describe(): figures with their unit
                      ("text/html", ">unit</th>"),
                      ("text/html", ">token</th>"),        # the orders sent
                      ("image/png", "")],                  # r.plot(): histograms, CCDF
    "02-ab-study": [("text/html", ">verdict</th>"),       # the verdict table
                    ("stdout", "Mann-Whitney U: p = "),
                    ("text/html", "<b>hftlab compare</b>"),  # the Comparison with its CCDFs
                    ("text/html", "data:image/png;base64,")],
    "03-jitter": [("text/html", ">window_start_ns</th>"),  # latency over time
                  ("text/html", ">lost_fraction</th>"),    # the hiccup summary
                  ("text/html", ">p99-p50</th>")],         # jitter
    "04-capture-ingest": [("text/html", ">mean_caplen</th>"),  # frames per port (polars)
                          ("text/html", ">first_ns</th>"),     # the DuckDB query
                          ("text/plain", "mold_seq: uint64"),  # the packets' schema
                          ("text/html", ">msg_name</th>")],    # PTP messages by type
    "05-core-microbench": [("text/html", ">engine_ns_per_msg</th>"),
                           ("image/png", "")],
    "06-baselines": [("text/html", "<b>hftlab study</b>"),  # the Study: pooled table, CCDF by SUT
                     ("text/html", "data:image/png;base64,"),
                     ("text/html", ">ratio</th>"),
                     ("text/html", ">lost_fraction</th>")],
    "07-strategies": [("text/html", ">fill_proxy_rate</th>"),  # the A/B table
                      ("text/html", ">ask_shares</th>"),       # orders with the book at each
                      ("image/png", ""),                       # orders over the feed
                      ("text/html", ">token</th>")],           # the booted run's orders
    "08-sweep": [("text/html", "<b>hftlab sweep</b>"),   # the Sweep: counts
                 ("text/html", ">p99_growth</th>"),       # the tail against the rate
                 ("text/html", ">best_max_count</th>"),   # the packing with the lowest p99
                 ("text/html", ">median_instructions</th>"),  # DuckDB over the dataset
                 ("image/png", "")],
}

#: How many progress bars each notebook shows (one per hftlab.run or hftlab.study call): each is
#: one display updated in place, never a stream of frames.
PROGRESS_BARS = {"01-quickstart": 1, "02-ab-study": 2, "03-jitter": 1, "04-capture-ingest": 1,
                 "05-core-microbench": 0, "06-baselines": 1, "07-strategies": 2, "08-sweep": 1}
BAR = "<div style='font-family:monospace"


def execute(nb, cwd: Path) -> float:
    """Run every cell of `nb` in a fresh python3 kernel in directory `cwd`;
    an exception in a cell raises CellExecutionError. Returns seconds."""
    t0 = time.monotonic()
    nbclient.NotebookClient(nb, timeout=TIME_LIMIT_S, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(cwd)}}).execute()
    return time.monotonic() - t0


def outputs(cell) -> list[tuple[str, str]]:
    """(kind, text) of each output of a code cell; kind is stdout, stderr,
    error or a MIME type (image data as its base64 text)."""
    out = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            out.append((o.name, o.text))
        elif o.output_type == "error":
            out.append(("error", f"{o.ename}: {o.evalue}"))
        else:
            out += [(mime, data if isinstance(data, str) else str(data)) for mime, data in o.data.items()]
    return out


def check_executed(nb, stem: str) -> None:
    """The executed notebook ran every cell without error, printed its
    CHECKED line last, and shows its key outputs."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{stem} has no code cell"
    assert all(c.execution_count is not None for c in code), f"{stem}: a cell did not run"
    errors = [text for c in code for kind, text in outputs(c) if kind == "error"]
    assert not errors, f"{stem}: a cell raised: {errors}"
    last = "".join(text for kind, text in outputs(code[-1]) if kind == "stdout")
    assert re.search(rf"^CHECKED {re.escape(stem)}: \S", last, re.M), (
        f"{stem}: the last code cell did not print its CHECKED line; it printed {last[-500:]!r}")
    shown = [o for c in code for o in outputs(c)]
    for kind, text in KEY_OUTPUTS[stem]:
        assert any(k == kind and text in t and t for k, t in shown), (
            f"{stem}: no {kind} output containing {text!r}")
    bars = [t for k, t in shown if k == "text/html" and t.startswith(BAR)]
    assert len(bars) == PROGRESS_BARS[stem] and all(" done " in t for t in bars), (
        f"{stem}: {len(bars)} progress displays, {PROGRESS_BARS[stem]} expected, each ending done: {bars}")
    frames = [t for k, t in shown if k in ("stdout", "stderr") and ("\r" in t or "[#" in t)]
    assert not frames, f"{stem}: progress frames printed as text: {frames[:2]}"


def unchecked_commands(source: str) -> list[str]:
    """Calls in a code cell that run a command and ignore its exit status:
    os.system and the like, or subprocess.run without check=True."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        checked = any(k.arg == "check" and isinstance(k.value, ast.Constant) and k.value.value is True
                      for k in node.keywords)
        if name in ("os.system", "os.popen", "subprocess.call", "subprocess.Popen",
                    "subprocess.getoutput", "subprocess.getstatusoutput") \
                or (name == "subprocess.run" and not checked):
            out.append(ast.unparse(node))
    return out


def test_the_notebooks_are_there_without_outputs():
    assert [p.stem for p in NOTEBOOKS] == sorted(KEY_OUTPUTS)
    for p in NOTEBOOKS:
        nb = nbformat.read(p, as_version=4)
        nbformat.validate(nb)
        first = nb.cells[0]
        assert first.cell_type == "markdown" and first.source.startswith(f"# {p.stem[:2]} - "), p.name
        code = [c for c in nb.cells if c.cell_type == "code"]
        for cell in code:
            assert not cell.outputs and cell.execution_count is None, f"{p.name} is committed with outputs"
        source = "\n".join(c.source for c in code)
        assert re.search(r"^(from hftlab\b|import hftlab\b)", source, re.M), f"{p.name} does not import hftlab"
        assert re.search(r"^\s*assert ", source, re.M), f"{p.name} asserts nothing"
        assert f'print(f"CHECKED {p.stem}: ' in source, f"{p.name} prints no CHECKED line"
        # a shell-out ignores its exit status: call the library, or subprocess.run(check=True)
        assert not re.search(r"^\s*(!|%%?(sx|system|bash|sh|script)\b)", source, re.M), \
            f"{p.name} has a shell cell"
        unchecked = [call for c in code for call in unchecked_commands(c.source)]
        assert not unchecked, f"{p.name}: commands whose exit status nobody checks: {unchecked}"
        # files inside the repository only, found from its root: no absolute or ../ path
        assert not re.search(r"""["']/|\.\./""", "\n".join(c.source for c in nb.cells)), \
            f"{p.name} names a path outside the repository"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_and_checks_its_result(path, tmp_path):
    if path.stem in NEEDS_ROOT and os.geteuid() != 0:
        pytest.skip(f"{path.stem} runs HFT-OS on a tap in a network namespace: needs root")
    nb = nbformat.read(path, as_version=4)
    took = execute(nb, tmp_path)  # CellExecutionError propagates: a failed assert fails the test
    check_executed(nb, path.stem)
    assert took < TIME_LIMIT_S, f"{path.name} took {took:.0f} s"


def test_a_failing_notebook_fails(tmp_path):
    """The machinery above does fail: a cell whose assert fails raises out of
    execute(), and a notebook that stops before its CHECKED line, or does not
    show its key output, fails check_executed."""
    def nb_of(*sources):
        nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                   "language": "python"}})
        nb.cells = [new_code_cell(s) for s in sources]
        return nb

    bad = nb_of("orders, golden = 29, 30", "assert orders == golden, 'orders differ'",
                "print('CHECKED 05-core-microbench: never printed')")
    with pytest.raises(CellExecutionError, match="orders differ"):
        execute(bad, tmp_path)

    silent = nb_of("x = 1")
    execute(silent, tmp_path)
    with pytest.raises(AssertionError, match="CHECKED line"):
        check_executed(silent, "05-core-microbench")

    assert unchecked_commands("import subprocess\nsubprocess.run(['false'])") == ["subprocess.run(['false'])"]

    shown = ("from IPython.display import HTML, display\n"
             "display(HTML('<table><tr><th>engine_ns_per_msg</th></tr></table>'))\n"
             "display({'image/png': 'iVBORw0KGgo=', 'text/plain': 'png'}, raw=True)\n")
    framed = nb_of(shown + "import sys\nsys.stderr.write('\\rrun: boot [#####.....]')\n"
                   "print('CHECKED 05-core-microbench: but a progress bar in text frames')")
    execute(framed, tmp_path)
    with pytest.raises(AssertionError, match="progress frames printed as text"):
        check_executed(framed, "05-core-microbench")
    stray_bar = nb_of(shown + "from hftlab.experiment.progress import Progress\n"
                      "with Progress('run'):\n    pass\n"
                      "print('CHECKED 05-core-microbench: with a bar no run made')")
    execute(stray_bar, tmp_path)
    with pytest.raises(AssertionError, match="1 progress displays, 0 expected"):
        check_executed(stray_bar, "05-core-microbench")

    no_table = nb_of("print('CHECKED 05-core-microbench: but no table')")
    execute(no_table, tmp_path)
    with pytest.raises(AssertionError, match="engine_ns_per_msg"):
        check_executed(no_table, "05-core-microbench")
