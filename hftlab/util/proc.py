"""Child processes that cannot outlive hftlab.

QEMU and the capture run in their own session (so a terminal's Ctrl-C
reaches only hftlab, which then tears them down in order), and with
PR_SET_PDEATHSIG so that even a SIGKILLed hftlab takes them with it. The
signal survives the execve of `ip netns exec`.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from typing import Any

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(cmd: list[str], **kw: Any) -> subprocess.Popen[bytes]:
    """Popen in a new session, killed when this process dies."""
    return subprocess.Popen(cmd, start_new_session=True, preexec_fn=_die_with_parent, **kw)


def stop_group(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 5.0) -> None:
    """Send `sig` to a spawn()ed child's process group and wait `timeout`
    seconds for it to exit, then SIGKILL the group; nothing if it has exited."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        proc.wait()
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class TerminateAsInterrupt:
    """Within this context SIGTERM raises KeyboardInterrupt, so `kill` gets
    the same orderly teardown as Ctrl-C."""

    def __enter__(self) -> "TerminateAsInterrupt":
        self._old = signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGTERM, self._old)
