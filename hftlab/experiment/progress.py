"""hftlab.experiment.progress: one progress bar for notebooks and terminals.

`Progress(title)` is the `progress(stage, fraction)` callback that
hftlab.experiment.run.run and hftlab.experiment.study.study call as they go
(stages: build, boot, replay, report ...). Where it draws:

* in Jupyter (IPython's ZMQInteractiveShell): one HTML display, created on
  the first call with ``display(..., display_id=True)`` and then updated in
  place (``update_display_data``), so a cell's output holds one bar, not a
  frame per update; no ipywidgets needed;
* in a terminal (stderr is a tty): one line, rewritten with ``\\r``;
* otherwise (a log, a pipe): one line per stage on stderr.

Updates within a stage are throttled (`min_interval` seconds). The bar never
raises into the experiment it reports on: a display that fails to draw is
dropped.
"""
from __future__ import annotations

import html
import sys
import time
from typing import Callable, TextIO

__all__ = ["Progress", "in_notebook", "resolve"]

MODES = ("auto", "notebook", "tty", "lines", "off")


def in_notebook() -> bool:
    """True in a Jupyter kernel (IPython's ZMQInteractiveShell). Cheap: a
    process that never imported IPython is not one."""
    if "IPython" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class Progress:
    """A progress(stage, fraction) callback that draws a bar (see the module).

    mode: "auto" (notebook, else tty when `stream` is a terminal, else lines),
    "notebook", "tty", "lines" or "off". Use as a context manager, or call
    `close(ok)` at the end: the bar then shows the total time and the outcome.
    """

    def __init__(self, title: str = "hftlab", *, mode: str = "auto", stream: TextIO | None = None,
                 min_interval: float = 0.2, width: int = 30) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: one of {', '.join(MODES)}")
        self.title = title
        self.stream = stream if stream is not None else sys.stderr
        if mode == "auto":
            if in_notebook():
                mode = "notebook"
            else:
                isatty = getattr(self.stream, "isatty", None)
                mode = "tty" if isatty is not None and isatty() else "lines"
        self.mode = mode
        self.min_interval = min_interval
        self.width = width
        self.stage = ""
        self.fraction = 0.0
        self.t0 = time.monotonic()
        self._last_draw = 0.0
        self._handle = None  # the notebook display
        self._line_len = 0  # the terminal line, to blank what a shorter one leaves
        self.closed = False
        self.outcome = ""
        self.stages: list[str] = []  # every stage seen, in order

    # ------------------------------------------------------------------ the callback
    def __call__(self, stage: str, fraction: float) -> None:
        if self.closed:
            return
        fraction = min(1.0, max(0.0, float(fraction)))
        new_stage = stage != self.stage
        if new_stage:
            self.stages.append(stage)
        self.stage, self.fraction = stage, fraction
        now = time.monotonic()
        if not new_stage and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        self._draw(final=False, new_stage=new_stage)

    def close(self, ok: bool = True) -> None:
        """Draw the final state (done, or failed at the last stage)."""
        if self.closed:
            return
        self.closed = True
        self.outcome = "done" if ok else f"failed in {self.stage or 'start'}"
        if ok:
            self.fraction = 1.0
        self._draw(final=True, new_stage=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(ok=exc_type is None)

    # ------------------------------------------------------------------ drawing
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def text(self, final: bool = False) -> str:
        """The bar as one line of text."""
        filled = int(round(self.fraction * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        what = self.outcome if final else self.stage
        return f"{self.title}: {what:<12} [{bar}] {self.fraction * 100:3.0f}% {self.elapsed():6.1f} s"

    def html(self, final: bool = False) -> str:
        """The bar as an HTML fragment (a notebook's display)."""
        colour = "#31688e" if not final or self.outcome == "done" else "#e34a33"
        what = html.escape(self.outcome if final else self.stage)
        return (f"<div style='font-family:monospace;font-size:12px'>"
                f"<b>{html.escape(self.title)}</b> {what} "
                f"<span style='display:inline-block;width:200px;height:9px;background:#e5e5e5;"
                f"vertical-align:middle'><span style='display:block;height:9px;"
                f"width:{self.fraction * 100:.0f}%;background:{colour}'></span></span> "
                f"{self.fraction * 100:.0f}% {self.elapsed():.1f} s</div>")

    def _draw(self, final: bool, new_stage: bool) -> None:
        try:
            if self.mode == "notebook":
                self._draw_notebook(final)
            elif self.mode == "tty":
                line = self.text(final)
                pad = " " * max(0, self._line_len - len(line))
                self._line_len = len(line)
                self.stream.write("\r" + line + pad + ("\n" if final else ""))
                self.stream.flush()
            elif self.mode == "lines" and new_stage:
                self.stream.write(self.text(final) + "\n")
                self.stream.flush()
        except Exception:  # noqa: BLE001 - a bar that cannot draw must not fail the experiment
            self.mode = "off"

    def _draw_notebook(self, final: bool) -> None:
        from IPython.display import HTML, display

        frag = HTML(self.html(final))
        if self._handle is None:
            self._handle = display(frag, display_id=True)
        else:
            self._handle.update(frag)


def resolve(progress: bool | Callable[[str, float], None] | None,
            title: str) -> tuple[Callable[[str, float], None] | None, Progress | None]:
    """What an API call's `progress=` argument means: True, a new Progress
    bar (returned second, for the caller to close); False or None, no
    callback; a callable, that callable."""
    if progress is True:
        bar = Progress(title)
        return bar, bar
    if not progress:
        return None, None
    if not callable(progress):
        raise TypeError("progress: True, False or a callable(stage, fraction)")
    return progress, None
