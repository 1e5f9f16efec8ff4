"""Atomic file output: write to a temporary name in the target directory,
fsync, then rename, so a killed process never leaves a half-written file
under the final name.

pyarrow.parquet (~25 ms to import) loads when a Parquet file is opened for
writing, not with this module."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import pyarrow as pa

if TYPE_CHECKING:  # pragma: no cover - annotations only
    import pyarrow.parquet as pq


class AtomicPath:
    """Context manager yielding a temporary path that becomes `path` on success."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(name)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.tmp is not None
        if exc_type is None:
            with open(self.tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def _with_meta(schema: pa.Schema, meta: Mapping[str, str] | None) -> pa.Schema:
    if not meta:
        return schema
    merged = dict(schema.metadata or {})
    merged.update({k.encode(): v.encode() for k, v in meta.items()})
    return schema.with_metadata(merged)


class ParquetOut:
    """Streaming Parquet writer with atomic rename and key-value metadata."""

    def __init__(self, path: str | os.PathLike[str], schema: pa.Schema,
                 meta: Mapping[str, str] | None = None) -> None:
        self._atomic = AtomicPath(path)
        self._schema = _with_meta(schema, meta)
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> "ParquetOut":
        import pyarrow.parquet as pq

        tmp = self._atomic.__enter__()
        self._writer = pq.ParquetWriter(tmp, self._schema, compression="zstd")
        return self

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        assert self._writer is not None
        if isinstance(batch, pa.RecordBatch):
            batch = pa.Table.from_batches([batch])
        self._writer.write_table(batch.cast(self._schema))

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._writer is not None
        self._writer.close()
        self._atomic.__exit__(exc_type, exc, tb)


def write_parquet(table: pa.Table, path: str | os.PathLike[str],
                  meta: Mapping[str, str] | None = None) -> Path:
    """Write one table atomically; returns the final path."""
    with ParquetOut(path, table.schema, meta) as w:
        w.write(table)
    return Path(path)
