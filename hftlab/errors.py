"""The one exception hierarchy of hftlab.

The library raises these and never prints or exits; only the CLI turns them
into a message and an exit code. Catch `HftlabError` to catch them all.
"""

from __future__ import annotations

import os

__all__ = [
    "BuildError",
    "ConfigError",
    "DataError",
    "HftlabError",
    "RegistryUnreachableError",
    "RunError",
    "ToolMissingError",
]


class HftlabError(Exception):
    """Base class of every error hftlab raises on purpose."""


class ConfigError(HftlabError):
    """An argument, option or config value is invalid (caught before any work)."""


class DataError(HftlabError):
    """An input file is malformed.

    The message names the file and the byte offset where reading failed, so a
    user can look at the bytes: ``feed.itch: byte 4096: unknown message type 0x7a``.
    """

    def __init__(self, path: str | os.PathLike[str], offset: int | None, reason: str) -> None:
        self.path = os.fspath(path)
        self.offset = None if offset is None else int(offset)
        self.reason = reason
        where = "" if self.offset is None else f"byte {self.offset}: "
        super().__init__(f"{self.path}: {where}{reason}")

    def __reduce__(self):  # keep pickling (multiprocessing) working with our signature
        return (type(self), (self.path, self.offset, self.reason))


class BuildError(HftlabError):
    """Building the C core, the bootloader, the runtime or the disk image failed."""


class RegistryUnreachableError(BuildError):
    """A package registry (Debian's archive, through apt) could not be reached.

    Raised only on a concrete observation (apt reporting that it could not
    resolve or connect to the archive's host), never for "some apt command
    failed": a package that lacks a module, a 404 or a broken package list are
    plain `BuildError`s. The machine is offline; nothing in hftlab is wrong.
    """


class ToolMissingError(HftlabError):
    """A required external tool (nasm, qemu, tcpdump ...) is not installed.

    ``hint`` says how to install it; it is appended to the message.
    """

    def __init__(self, tool: str, hint: str = "") -> None:
        self.tool = tool
        self.hint = hint
        message = f"required tool not found: {tool}"
        super().__init__(f"{message} ({hint})" if hint else message)

    def __reduce__(self):
        return (type(self), (self.tool, self.hint))


class RunError(HftlabError):
    """An experiment started but failed (VM did not boot, no capture, orders differ ...)."""
