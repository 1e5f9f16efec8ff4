"""hftlab.sweep.store: the sweep directory and its one dataset.

A sweep directory (a local path, or any URI pyarrow.fs opens: file://, s3://,
gs://, hdfs://; other fsspec URIs when fsspec is installed) holds::

    sweep.json                         the spec and every run's key and parameters
    runs/<key>/                        each run's directory (hftlab run's: run.json, wire.pcapng ...)
    data/<table>/sweep=<name>/sut=<sut>/nic=<nic>/accel=<accel>/<key>.parquet

one hive-partitioned Parquet dataset per table, every file carrying the
run's parameters as columns (`spec_columns`):

* runs: one row per run: status ("ok" or "failed"), attempts, the errors,
  start and end (UTC), node, orders vs golden, the headline percentiles;
  a run's row is written last, so a run is complete when its row says ok;
* latency: latency.parquet of each run (one row per order);
* orders: orders.parquet of each run (the orders seen on the wire);
* counters: the SUT's counters (counter, value), one row each;
* hiccups: the poll-loop gap histogram (runs that recorded one).

Every file is written to a hidden temporary name (".<name>.<random>.tmp",
which pyarrow, polars and DuckDB globs skip) and then renamed into place, so
an interrupted run never leaves a half-written file under a dataset name.
Polars, pyarrow.dataset and DuckDB read the dataset without hftlab::

    pl.scan_parquet("OUT/data/latency/**/*.parquet", hive_partitioning=True)
    pyarrow.dataset.dataset("OUT/data/latency", partitioning="hive")
    duckdb.sql("SELECT * FROM read_parquet('OUT/data/latency/**/*.parquet', hive_partitioning=true)")
"""
from __future__ import annotations

import io
import json
import os
import secrets
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.fs as pafs

from hftlab.errors import ConfigError, DataError
from hftlab.sweep.grid import CONFIG_PARAMS, PARAMS, PARTITIONS, Point

__all__ = ["Store", "TABLES", "spec_columns", "RUNS_SCHEMA"]

TABLES = ("runs", "latency", "orders", "counters", "hiccups")

_SPEC_TYPES: dict[str, pa.DataType] = {
    "key": pa.string(), "rep": pa.int32(), "where": pa.string(), "boot": pa.string(),
    "dataset": pa.string(), "dataset_sha256": pa.string(), "messages": pa.int64(),
    "rate": pa.float64(), "max_count": pa.int64(), "max_payload": pa.int64(),
    "guest_cpus": pa.int64(), "hiccups_s": pa.float64(), "hiccup_threshold_ns": pa.int64(),
    "boot_timeout": pa.float64(), "drain_timeout": pa.float64(), "network": pa.string(),
    "timing": pa.bool_(),
}


def _config_column(k: str) -> str:
    """strategy.order_shares -> strategy_order_shares; instance -> engine_instance (orders
    have an instance column of their own)."""
    return "engine_instance" if k == "instance" else k.replace(".", "_")


for _k, _v in CONFIG_PARAMS.items():
    _SPEC_TYPES[_config_column(_k)] = (pa.bool_() if isinstance(_v, bool) else pa.int64()
                                       if isinstance(_v, int) else pa.string())

#: the per-run columns of every table (the hive partition keys are in the path instead)
SPEC_SCHEMA = pa.schema(list(_SPEC_TYPES.items()))

RUNS_SCHEMA = pa.schema(list(SPEC_SCHEMA) + [
    ("status", pa.string()), ("attempts", pa.int32()), ("error", pa.string()),
    ("errors", pa.list_(pa.string())), ("submitted", pa.timestamp("us", "UTC")),
    ("started", pa.timestamp("us", "UTC")), ("ended", pa.timestamp("us", "UTC")),
    ("wall_s", pa.float64()), ("node", pa.string()), ("run_dir", pa.string()),
    ("orders_sut", pa.int64()), ("orders_golden", pa.int64()), ("orders_equal", pa.bool_()),
    ("ready_s", pa.float64()), ("internal_unit", pa.string()),
    *[(f"{fig}_{q}", pa.int64()) for fig in ("wire", "internal")
      for q in ("p50", "p99", "p99_9", "max")],
    ("instructions_sum", pa.int64()),
])


def spec_columns(point: Point) -> dict[str, Any]:
    """The point's parameters as the dataset's per-run columns (one value each)."""
    p = point.params
    row: dict[str, Any] = {"key": point.key, "rep": point.rep, "dataset": Path(p["dataset"]).name,
                           "dataset_sha256": point.dataset_sha256, "timing": point.timing}
    for k in PARAMS:
        if k not in PARTITIONS and k != "dataset":
            row[k] = p[k]
    for k in CONFIG_PARAMS:
        v = p[k]
        row[_config_column(k)] = ",".join(v) if isinstance(v, list) else v
    return row


def _with_spec(table: pa.Table, point: Point) -> pa.Table:
    """`table` with the run's parameters appended as constant columns, metadata dropped."""
    table = table.replace_schema_metadata(None)
    row = spec_columns(point)
    for f in SPEC_SCHEMA:
        if f.name in table.column_names:
            raise DataError(f.name, None, "a run's table has a column named like a sweep parameter")
        table = table.append_column(f, pa.array([row[f.name]] * table.num_rows, f.type))
    return table


def filesystem(uri: str) -> tuple[pafs.FileSystem, str, bool]:
    """(filesystem, root path in it, local?) of a sweep directory."""
    if "://" not in uri:
        return pafs.LocalFileSystem(), str(Path(uri).resolve()), True
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        try:
            import fsspec
        except ImportError:
            raise ConfigError(f"sweep directory {uri}: pyarrow cannot open it ({exc}) and fsspec "
                              "is not installed") from None
        try:
            ffs, path = fsspec.core.url_to_fs(uri)
        except (ValueError, ImportError) as exc2:
            raise ConfigError(f"sweep directory {uri}: neither pyarrow ({exc}) nor fsspec "
                              f"({exc2}) opens it") from None
        fs = pafs.PyFileSystem(pafs.FSSpecHandler(ffs))
    return fs, path.rstrip("/"), isinstance(fs, pafs.LocalFileSystem)


class Store:
    """A sweep directory on its filesystem (see the module)."""

    def __init__(self, uri: str | os.PathLike[str]) -> None:
        self.uri = os.fspath(uri)
        self.fs, self.root, self.local = filesystem(self.uri)

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def part(self, table: str, sweep: str, point: Point) -> str:
        """The dataset file of one run's table."""
        hive = "/".join(f"{k}={v}" for k, v in (("sweep", sweep), *point.partition().items()))
        return self.path("data", table, hive, f"{point.key}.parquet")

    # -- atomic writes
    def _put(self, path: str, data: bytes) -> None:
        parent, name = path.rsplit("/", 1)
        self.fs.create_dir(parent, recursive=True)
        tmp = f"{parent}/.{name}.{secrets.token_hex(4)}.tmp"
        try:
            with self.fs.open_output_stream(tmp) as out:
                out.write(data)
            if self.local:
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
            self.fs.move(tmp, path)
        except BaseException:
            try:
                self.fs.delete_file(tmp)
            except (OSError, FileNotFoundError):
                pass
            raise

    def write_table(self, table: pa.Table, path: str) -> None:
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        self._put(path, buf.getvalue())

    def write_run_table(self, name: str, table: pa.Table, sweep: str, point: Point) -> None:
        self.write_table(_with_spec(table, point), self.part(name, sweep, point))

    def write_json(self, rel: str, obj: Any) -> None:
        self._put(self.path(rel), (json.dumps(obj, indent=1, default=str) + "\n").encode())

    def read_json(self, rel: str) -> Any:
        try:
            with self.fs.open_input_stream(self.path(rel)) as fh:
                return json.loads(fh.read())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise DataError(self.path(rel), None, f"not JSON: {exc}") from None

    def upload_dir(self, local: Path, rel: str) -> None:
        """Copy a local run directory under the sweep directory (remote sweeps)."""
        dest = self.path(rel)
        self.fs.create_dir(dest, recursive=True)
        pafs.copy_files(str(local), dest, source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=self.fs)

    def delete_dir(self, rel: str) -> None:
        try:
            self.fs.delete_dir(self.path(rel))
        except (FileNotFoundError, OSError):
            pass

    # -- reading
    def dataset(self, table: str):
        """A pyarrow dataset of one table (None when no run wrote it yet)."""
        import pyarrow.dataset as ds

        base = self.path("data", table)
        if self.fs.get_file_info(base).type != pafs.FileType.Directory:
            return None
        return ds.dataset(base, filesystem=self.fs, format="parquet", partitioning="hive")

    def statuses(self, sweep: str | None = None) -> dict[str, str]:
        """key -> status of every run with a row in the runs table (of one sweep, or all)."""
        d = self.dataset("runs")
        if d is None:
            return {}
        import pyarrow.dataset as ds

        flt = (ds.field("sweep") == sweep) if sweep is not None else None
        t = d.to_table(columns=["key", "status"], filter=flt)
        return dict(zip(t["key"].to_pylist(), t["status"].to_pylist()))

    def runs_row(self, point: Point, values: dict[str, Any]) -> pa.Table:
        row = {**spec_columns(point), **values}
        return pa.Table.from_pylist([{f.name: row.get(f.name) for f in RUNS_SCHEMA}], schema=RUNS_SCHEMA)


def sweep_names(store: Store) -> Iterable[str]:
    d = store.dataset("runs")
    if d is None:
        return []
    return sorted(set(d.to_table(columns=["sweep"])["sweep"].to_pylist()))
