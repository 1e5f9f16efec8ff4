"""Compressed captures: gzip, zstd and lz4 frame, detected by magic bytes.

The scanners and decoders index one flat byte array by absolute offset. A
compressed capture is therefore decompressed, in bounded chunks and only as
the scanners ask for more, into an unlinked temporary file that is mapped
like an uncompressed capture and re-mapped as it grows. Why this and not a
sliding window: the kernels stay as they are (same signatures, no copies of
records that straddle two windows, payload and comment offsets stay valid
for the whole batch), and memory stays bounded all the same: the mapping is
page cache, the pages already consumed are dropped from the process
(madvise, as for plain files) and punched out of the temporary file
(FALLOC_FL_PUNCH_HOLE), so neither RAM nor disk holds more than about one
chunk plus one batch. Byte offsets in errors about the capture's records
count bytes of the *decompressed* stream (the message says so); an error
about the compressed stream itself names the compressed byte position.

The temporary file is created in ``tempfile.gettempdir()`` (``TMPDIR``).
Decompression uses the ecosystem's codecs: zlib (gzip members, concatenated
members too), PyPI ``zstandard`` (frames one after another) and
``lz4.frame``.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

from hftlab.errors import DataError

MAGICS = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd", b"\x04\x22\x4d\x18": "lz4"}
CHUNK = 32 << 20            # decompressed bytes added to the mapping per step
READ = 1 << 20              # compressed bytes read from the file at a time
ZSTD_FEED = 8 << 10         # zstd input per call (zstandard has no output limit per call)
PAGE = mmap.PAGESIZE
_FALLOC_PUNCH = 0x01 | 0x02  # FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE


def unmap(mm: mmap.mmap | None) -> None:
    """Close a capture's mapping, unless an Arrow batch still views it (then
    the garbage collector closes it when the last view goes)."""
    if mm is not None:
        try:
            mm.close()
        except BufferError:
            pass


def detect(head: bytes) -> str | None:
    """'gzip', 'zstd', 'lz4' from a file's first bytes, else None."""
    for magic, kind in MAGICS.items():
        if head.startswith(magic):
            return kind
    return None


def _libc_fallocate():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        f = libc.fallocate
    except (OSError, AttributeError):
        return None
    f.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
    return f


_fallocate = _libc_fallocate()


class _Codec:
    """One compressed stream: feed() compressed bytes, take() up to n output
    bytes; `eof` once a member/frame ended and nothing is pending."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._pending = b""          # compressed input not yet given to the codec
        self._new()

    def _new(self) -> None:
        if self.kind == "gzip":
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self.errors: tuple = (zlib.error,)
        elif self.kind == "zstd":
            import zstandard
            self._d = zstandard.ZstdDecompressor().decompressobj()
            self.errors = (zstandard.ZstdError,)
        else:
            import lz4.frame
            self._d = lz4.frame.LZ4FrameDecompressor()
            self.errors = (RuntimeError,)       # lz4.frame reports a bad frame as RuntimeError
        self.started = False

    def feed(self, data: bytes) -> None:
        self._pending += data

    @property
    def hungry(self) -> bool:
        """True when the codec needs more compressed input to go on."""
        if self.kind == "gzip":
            return not self._pending and not self._d.unconsumed_tail
        if self.kind == "lz4":
            return not self._pending and (self._d.needs_input or self._d.eof)
        return not self._pending

    @property
    def at_boundary(self) -> bool:
        """The last member/frame is complete (a clean place for the stream to end)."""
        return (not self.started) or bool(self._d.eof)

    def take(self, n: int) -> bytes:
        """Up to about n decompressed bytes from the input fed so far."""
        d = self._d
        if d.eof and self.started:          # the next member/frame, if any bytes follow
            if not self._pending:           # (unused_data was moved into _pending at eof)
                return b""
            self._new()
            d = self._d
        if self.kind == "gzip":
            src = d.unconsumed_tail or self._pending
            if src is self._pending:
                self._pending = b""
            self.started = True
            out = d.decompress(src, n)
            if d.eof:
                self._pending = (d.unused_data or b"") + self._pending
            return out
        if self.kind == "lz4":
            src, self._pending = self._pending, b""
            if src:
                self.started = True
            out = d.decompress(src, max_length=n)
            if d.eof:
                self._pending = (d.unused_data or b"") + self._pending
            return out
        src, self._pending = self._pending[:ZSTD_FEED], self._pending[ZSTD_FEED:]
        if src:
            self.started = True
        out = d.decompress(src)
        if d.eof:
            self._pending = (d.unused_data or b"") + self._pending
        return out


class Decompressed:
    """The decompressed stream of a compressed capture as a growing mapping.

    Same surface as the reader's plain-file mapping: `buf` (numpy view of
    bytes [0, size)), `size`, `release(upto)`, `close()`, plus `ensure(end)`
    and `more()` that decompress further, `done`, `damage` (the DataError of
    a truncated or corrupt compressed stream, once met) and `input_pos`, the
    compressed byte position (for progress bars).
    """

    def __init__(self, path: Path, fh, kind: str) -> None:
        self.path, self.kind, self._fh = path, kind, fh
        self.input_size = os.fstat(fh.fileno()).st_size
        self.input_pos = 0
        self._codec = _Codec(kind)
        self._tmp = tempfile.TemporaryFile(prefix="hftlab-capture-")   # unlinked at once
        self.size = 0
        self.done = False
        self.damage: DataError | None = None
        self.mm: mmap.mmap | None = None
        self.buf = np.zeros(0, np.uint8)
        self._released = 0

    def _stream_error(self, what: str, decompressed: int) -> None:
        self.damage = DataError(self.path, self.input_pos,
                                f"{self.kind} stream: {what} (at compressed byte {self.input_pos}; "
                                f"{decompressed} bytes decompressed before it)")
        self.done = True

    def more(self) -> bool:
        """Decompress about CHUNK more bytes; False when nothing more will come."""
        if self.done:
            return False
        parts, got = [], 0
        try:
            while got < CHUNK:
                if self._codec.hungry:
                    raw = self._fh.read(READ)
                    if not raw:
                        if not self._codec.at_boundary:
                            self._stream_error("truncated: the file ends inside a compressed "
                                               "block, before its end-of-stream marker", self.size + got)
                        self.done = True
                        break
                    self.input_pos += len(raw)
                    self._codec.feed(raw)
                out = self._codec.take(min(CHUNK - got, 1 << 22))
                if out:
                    parts.append(out)
                    got += len(out)
        except self._codec.errors as exc:
            self._stream_error(f"corrupt: {exc}", self.size + got)
        if got:
            self._tmp.seek(self.size)
            for p in parts:
                self._tmp.write(p)
            self._tmp.flush()
            self.size += got
            self._remap()
        return got > 0 or not self.done

    def ensure(self, end: int) -> None:
        """Decompress until at least `end` bytes are mapped or the stream ends."""
        while self.size < end and self.more():
            pass

    def _remap(self) -> None:
        # an Arrow batch may still view the previous mapping: leave it to the GC
        self.mm = mmap.mmap(self._tmp.fileno(), self.size, access=mmap.ACCESS_READ)
        self.buf = np.frombuffer(self.mm, np.uint8)
        start = (self._released // PAGE) * PAGE
        if start and hasattr(mmap, "MADV_DONTNEED"):
            self.mm.madvise(mmap.MADV_DONTNEED, 0, start)

    def release(self, upto: int) -> None:
        """Drop decompressed bytes before `upto` from memory and from the temporary file."""
        end = (upto // PAGE) * PAGE
        if end <= self._released or self.mm is None:
            return
        if hasattr(mmap, "MADV_DONTNEED"):
            self.mm.madvise(mmap.MADV_DONTNEED, self._released, end - self._released)
        if _fallocate is not None:
            _fallocate(self._tmp.fileno(), _FALLOC_PUNCH, self._released, end - self._released)
        self._released = end

    def close(self) -> None:
        self.buf = np.zeros(0, np.uint8)
        unmap(self.mm)
        self._tmp.close()
        self._fh.close()
