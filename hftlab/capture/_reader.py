"""Streaming capture reader: file -> index batches -> decoded Arrow batches.

The file is memory-mapped read-only; the scanners index up to `batch_size`
packets at a time, the decoder fills the layer columns, and the pages already
consumed are dropped from the process (madvise DONTNEED) so resident memory
stays near one batch whatever the file size. gzip, zstd and lz4 captures
(recognised by their magic bytes) are decompressed as the scanners go
(hftlab.capture._compress). `Capture` is the whole file in memory
(concatenated batches); `CaptureReader` is the streaming form.

Timestamps are exact or null: a pcap record whose sub-second field is out of
range, or a time that int64 ns cannot hold (pcapng after 2262, if_tsoffset
included), gets a null `ts_ns` and its reason in `ts_error`
(TS_ERROR_NAMES), counted in ``metadata["ts_errors"]``; with ``strict=True``
the first one is a DataError at its record's offset instead.

`interface` is tshark's frame.interface_id: the Interface Description
Block's number within its section (`section`, the 0-based Section Header
Block index). ``metadata["interfaces"]`` lists every IDB of the file once,
in file order: ``index`` is its position in that list (a file-wide number,
used internally for per-interface state), ``section`` and ``id`` name it as
the packets do.
"""
from __future__ import annotations

import base64
import json
import mmap
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hftlab.util.env import version
from hftlab.util.io import AtomicPath
from hftlab.errors import ConfigError, DataError
from hftlab.capture import _compress as Z
from hftlab.capture import _decode as D
from hftlab.capture import _erf as E
from hftlab.capture import _jit as J
from hftlab.capture import _pcap as P
from hftlab.capture import _pcapng as G
from hftlab.capture._payload import ITCH_SCHEMA, OUCH_SCHEMA, itch_table, ouch_table
from hftlab.capture._table import PACKET_SCHEMA, PTP_SCHEMA, TS_ERROR_NAMES, empty, packet_batch, ptp_table
from hftlab.capture._keyframes import KeyframeState
from hftlab.capture._trailers import KEYFRAME_MODES, TRAILER_MODES

DEFAULT_BATCH = 1 << 18
#: the largest capture (bytes, decompressed) the "auto" engine decodes in
#: Python rather than by numba (see `CaptureReader`); a compressed file's size
#: is taken as COMPRESSED_RATIO times its size on disk
PYTHON_MAX_BYTES = 64 << 10
COMPRESSED_RATIO = 4
ENGINES = ("auto", "numba", "python")
PAGE = mmap.PAGESIZE
FORMAT_VERSION = 1          # of the hftlab.capture metadata document


@dataclass
class CaptureBatch:
    """One streamed batch: packets plus the messages found in them."""
    packets: pa.RecordBatch
    itch: pa.Table
    ouch: pa.Table
    ptp: pa.Table


def _open(path: Path):
    """The capture's bytes: a plain file mapped whole, or a compressed one
    decompressed as the scanners ask (same surface)."""
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise DataError(path, None, f"cannot open: {exc.strerror}") from None
    kind = Z.detect(fh.read(4))
    fh.seek(0)
    if kind is None:
        return _Mapped(fh)
    return Z.Decompressed(path, fh, kind)


class _Mapped:
    kind = None
    done = True
    damage = None

    def __init__(self, fh) -> None:
        self._fh = fh
        self.size = os.fstat(self._fh.fileno()).st_size
        self.input_size = self.size
        self.mm = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ) if self.size else None
        self.buf = np.frombuffer(self.mm, np.uint8) if self.mm is not None else np.zeros(0, np.uint8)
        self._released = 0
        self.input_pos = 0

    def more(self) -> bool:
        return False

    def ensure(self, end: int) -> None:
        pass

    def release(self, upto: int) -> None:
        """Drop pages before byte `upto` from this process's memory."""
        self.input_pos = upto
        end = (upto // PAGE) * PAGE
        if self.mm is not None and end > self._released and hasattr(mmap, "MADV_DONTNEED"):
            self.mm.madvise(mmap.MADV_DONTNEED, self._released, end - self._released)
            self._released = end

    def close(self) -> None:
        self.buf = np.zeros(0, np.uint8)
        Z.unmap(self.mm)
        self._fh.close()


class CaptureReader:
    """Iterate over a pcap or pcapng file in `CaptureBatch`es.

    `metadata` grows while reading (sections and interfaces of pcapng files
    appear as they are met) and is complete once iteration ends. With
    ``partial=True`` a malformed file ends the iteration after the packets
    read before the bad block and `error` holds the DataError; otherwise the
    DataError is raised and the packets after the last yielded batch are not
    returned.

    `engine` says how the kernels run (hftlab.capture._jit): "numba"
    compiles them (loaded from numba's cache; a process's first numba call
    costs ~0.6-1 s of numba set-up), "python" runs the same code in the
    interpreter (~50x slower per packet, no set-up), "auto" takes numba for
    captures over PYTHON_MAX_BYTES or when the process has imported numba
    already, Python otherwise. The tables are the same either way.
    """

    def __init__(self, path: str | os.PathLike[str], *, batch_size: int = DEFAULT_BATCH,
                 trailer: str | None = None, trailer_window_s: int | None = -2,
                 mold_ports: Sequence[int] | None = None, payloads: bool = True,
                 partial: bool = False, allow_unknown_linktype: bool = False,
                 strict: bool = False, engine: str = "auto") -> None:
        if batch_size < 1:
            raise ConfigError("batch_size must be >= 1")
        if trailer not in TRAILER_MODES:
            raise ConfigError(f"trailer must be one of {sorted(k for k in TRAILER_MODES if k)} or None")
        self.path = Path(path)
        self.batch_size = int(batch_size)
        self._trailer = TRAILER_MODES[trailer]
        self._window = -1 if trailer_window_s is None else int(trailer_window_s)
        self._keyframes = KeyframeState() if self._trailer in KEYFRAME_MODES else None
        self._ports = np.array(sorted(set(mold_ports or ())), np.int64)
        self.payloads = payloads
        self.partial = partial
        self.strict = strict
        if engine not in ENGINES:
            raise ConfigError(f"engine must be one of {ENGINES}")
        self.engine = engine
        self._numba = engine == "numba"
        self.allow_unknown_linktype = allow_unknown_linktype
        self.error: DataError | None = None
        self.packets_read = 0
        self.bytes_read = 0          # of the (decompressed) capture
        self.input_pos = 0           # of the file on disk (compressed bytes for compressed files)
        self._if_maps = (np.zeros(1, np.int32), np.zeros(1, np.int32))
        self.metadata: dict = {
            "format_version": FORMAT_VERSION, "file": str(self.path.resolve()),
            "size": None, "format": None, "sections": [], "interfaces": [],
            "skipped_blocks": {}, "packets": 0, "ts_errors": {}, "compression": None,
            "trailer": trailer,
            "mold_ports": [int(p) for p in self._ports] or "any",
            "ip_representation": "fixed_size_binary(16); IPv4 as IPv4-mapped IPv6 ::ffff:a.b.c.d",
            "time": "int64 ns since 1970-01-01 UTC (capture clock)",
        }

    # ------------------------------------------------------------------ iteration
    def __iter__(self) -> Iterator[CaptureBatch]:
        src = _open(self.path)
        self._src = src
        self._numba = self._use_numba(src)
        if self._numba:
            J.activate()
        self.metadata["size"] = src.input_size
        if src.kind:
            self.metadata["compression"] = src.kind
        try:
            for idx in self._index(src):
                idx, err = self._timestamps(idx)
                if len(idx["ts"]):
                    yield self._decode(src.buf, idx)
                self.bytes_read = idx["pos"]
                src.release(idx["pos"])
                self.input_pos = src.input_pos
                if err is not None:
                    if not self.partial:
                        raise err
                    self.error = err
                    return
        finally:
            self.metadata["packets"] = self.packets_read
            if src.kind:
                self.metadata["decompressed_size"] = src.size
            if self.error is not None:
                self.metadata["error"] = str(self.error)
            src.close()
            self._src = None

    def _use_numba(self, src) -> bool:
        if self.engine != "auto":
            return self.engine == "numba"
        size = src.input_size * (COMPRESSED_RATIO if src.kind else 1)
        return size > PYTHON_MAX_BYTES or "numba" in sys.modules

    def _timestamps(self, idx: dict) -> tuple[dict, DataError | None]:
        """Turn the scanners' timestamp sentinels into null ts + ts_err codes;
        count them; with strict, cut the batch before the first one."""
        ts = idx["ts"]
        code = np.where(ts <= P.TS_SENTINEL_MAX, ts - P.TS_NULL, 0).astype(np.int8)
        idx["ts_err"] = code
        bad = np.flatnonzero(code)
        if not bad.size:
            return idx, None
        ts[bad] = P.TS_NULL
        if self.strict:
            i = int(bad[0])
            head = P.RECORD_HEADER if self.metadata["format"] == "pcap" else 28
            reason = TS_ERROR_NAMES[code[i]]
            err = self._note(DataError(self.path, int(idx["off"][i]) - head,
                                       f"packet {self.packets_read + i}: timestamp {reason} "
                                       "(strict: no null timestamps)"))
            out = {k: v[:i] for k, v in idx.items() if k != "pos"}
            out["pos"] = int(idx["off"][i]) - head
            return out, err
        counts = self.metadata["ts_errors"]
        for c, k in zip(*np.unique(code[bad], return_counts=True)):
            counts[TS_ERROR_NAMES[c]] = counts.get(TS_ERROR_NAMES[c], 0) + int(k)
        return idx, None

    def _note(self, err: DataError) -> DataError:
        src = getattr(self, "_src", None)
        if src is None or not src.kind or err is src.damage:
            return err
        return DataError(err.path, err.offset, f"{err.reason} (byte offsets count the "
                         f"{src.kind}-decompressed stream)")

    def _fail(self, err: DataError, idx: dict | None) -> Iterator[dict]:
        src = getattr(self, "_src", None)
        if src is not None and src.damage is not None and "truncated" in err.reason:
            err = src.damage         # the capture ends early because its compressed stream does
        err = self._note(err)
        if not self.partial:
            raise err
        self.error = err
        if idx is not None and len(idx["ts"]):
            yield idx

    def _index(self, src: _Mapped) -> Iterator[dict]:
        src.ensure(P.FILE_HEADER)
        if src.damage is not None and src.size < 4:
            yield from self._fail(src.damage, None)
            return
        head = bytes(src.buf[:4])
        if head == b"\x0a\x0d\x0d\x0a":
            yield from self._index_pcapng(src)
            return
        magics = {m.to_bytes(4, o) for m in (P.MAGIC_US, P.MAGIC_NS) for o in ("big", "little")}
        if head not in magics:  # ERF has no file magic: its first records must parse
            src.ensure(E.SNIFF_BYTES)
            if E.parse_erf_header(str(self.path), bytes(src.buf[:E.SNIFF_BYTES])) is not None:
                yield from self._index_erf(src)
                return
        yield from self._index_pcap(src)

    def _index_erf(self, src: _Mapped) -> Iterator[dict]:
        """Endace ERF records (hftlab.capture._erf): Ethernet and IP records
        indexed like pcap records, the others skipped and counted in
        metadata["skipped_records"]."""
        md = self.metadata
        md.update(format="erf", interfaces=E.erf_interfaces(), sections=[{"offset": 0}])
        skipped = np.zeros(128, np.int64)

        def new() -> dict:
            return {**self._alloc(self.batch_size, False), **E.alloc_extra(self.batch_size)}

        cols = ("off", "ts", "cap", "orig", "iface", "lt", "erf_lctr", "erf_type", "erf_flags", "erf_ext")
        idx, pos, n = new(), 0, 0
        try:
            while True:
                k, pos, st = J.form(E.scan_erf, self._numba)(src.buf, pos, src.size, self.batch_size - n,
                                        *(idx[c][n:] for c in cols), skipped)
                n += k
                if st in (E.ST_EOF, E.E_TRUNC_HEADER, E.E_TRUNC_RECORD) and src.more():
                    continue
                out = self._cut(idx, n, pos)
                if st == E.ST_FULL:
                    yield out
                    idx, n = new(), 0
                    continue
                if st >= E.E_TRUNC_HEADER:
                    yield from self._fail(E.erf_error(str(self.path), st, pos, src.buf), out)
                    return
                if src.damage is not None:
                    yield from self._fail(src.damage, out)
                    return
                if n:
                    yield out
                return
        finally:
            md["skipped_records"] = E.skipped_types(skipped)

    def _alloc(self, n: int, with_opt: bool) -> dict:
        idx = {"off": np.empty(n, np.int64), "ts": np.empty(n, np.int64), "cap": np.empty(n, np.int64),
               "orig": np.empty(n, np.int64), "iface": np.zeros(n, np.int32), "lt": np.empty(n, np.int32)}
        if with_opt:
            idx["opt"] = np.zeros((n, 9), np.int64)
        return idx

    @staticmethod
    def _cut(idx: dict, n: int, pos: int) -> dict:
        out = {k: v[:n] for k, v in idx.items()}
        out["pos"] = pos
        return out

    def _check_linktype(self, lt: int, offset: int, block: str) -> None:
        if lt not in D.DECODED_LINKTYPES and not self.allow_unknown_linktype:
            raise DataError(self.path, offset, f"{block}: unknown link type {lt} (hftlab decodes "
                            f"{sorted(D.DECODED_LINKTYPES)}; pass allow_unknown_linktype=True to "
                            "keep such packets with the link-layer columns null)")

    def _index_pcap(self, src: _Mapped) -> Iterator[dict]:
        hdr = P.parse_header(str(self.path), bytes(src.buf[:P.FILE_HEADER]))
        self._check_linktype(hdr["linktype"], 20, "pcap file header")
        md = self.metadata
        md.update(format="pcap", byte_order=hdr["byte_order"], version=hdr["version"])
        md["interfaces"] = [{"index": 0, "section": 0, "id": 0, "linktype": hdr["linktype"],
                             "snaplen": hdr["snaplen"], "fcslen": hdr["fcs_len"],
                             "tsresol": "10^-9" if hdr["nanosecond"] else "10^-6", "tsoffset": 0}]
        md["sections"] = [{"offset": 0, "byte_order": hdr["byte_order"], "version": hdr["version"],
                           "thiszone": hdr["thiszone"]}]
        pos = P.FILE_HEADER
        maxcap = max(hdr["snaplen"], P.MAX_SNAPLEN)
        lt = hdr["linktype"]
        idx, n = self._alloc(self.batch_size, False), 0
        while True:
            k, pos, st = J.form(P.scan_pcap, self._numba)(src.buf, pos, src.size, self.batch_size - n, hdr["big"],
                                     hdr["nanosecond"], maxcap, idx["off"][n:], idx["ts"][n:],
                                     idx["cap"][n:], idx["orig"][n:])
            n += k
            if st in (P.ST_EOF, P.ST_TRUNC_HEADER, P.ST_TRUNC_DATA) and src.more():
                continue            # only the end of what is decompressed so far
            idx["lt"][:n] = lt
            out = self._cut(idx, n, pos)
            if st == P.ST_FULL:
                yield out
                idx, n = self._alloc(self.batch_size, False), 0
                continue
            if st >= P.ST_TRUNC_HEADER:
                err = P.scan_error(str(self.path), st, pos, src.buf, hdr["big"], hdr["snaplen"])
                yield from self._fail(err, out)
                return
            if src.damage is not None:      # the stream broke exactly between two records
                yield from self._fail(src.damage, out)
                return
            if n:
                yield out
            return

    def _index_pcapng(self, src: _Mapped) -> Iterator[dict]:
        path, md = str(self.path), self.metadata
        md.update(format="pcapng")
        counts = np.zeros(5, np.int64)
        pos, n, big = 0, 0, False
        ifs: list[dict] = []          # interfaces of the current section
        idx = self._alloc(self.batch_size, True)
        try:
            while True:
                arr = _iface_arrays(ifs)
                n, pos, st, aux = J.form(G.scan_pcapng, self._numba)(src.buf, pos, src.size, n, self.batch_size, big, len(ifs),
                                                *arr, idx["off"], idx["ts"], idx["cap"], idx["orig"],
                                                idx["iface"], idx["lt"], idx["opt"], counts)
                if st in (G.ST_EOF, G.E_TRUNC_HEADER, G.E_TRUNC_BLOCK) and src.more():
                    continue        # only the end of what is decompressed so far
                buf = src.buf
                if st == G.ST_SHB:
                    src.ensure(pos + G.SHB_INSANE_MAX)
                    buf = src.buf
                    shb = G.parse_shb(path, buf, pos)
                    big, ifs = shb["big"], []
                    md["sections"].append({k: v for k, v in shb.items() if k != "big"})
                    pos += shb["length"]
                elif st == G.ST_IDB:
                    info = G.parse_idb(path, buf, pos, big)
                    self._check_linktype(info["linktype"], pos, "Interface Description Block")
                    info.update(index=len(md["interfaces"]), section=len(md["sections"]) - 1, id=len(ifs))
                    ifs.append(info)
                    md["interfaces"].append({k: v for k, v in info.items() if k not in ("res_kind", "res_exp")})
                    pos += int(G.rd32(buf, pos + 4, big))
                elif st == G.ST_FULL:
                    yield self._cut(idx, n, pos)
                    idx, n = self._alloc(self.batch_size, True), 0
                elif st == G.ST_EOF:
                    if src.damage is not None:
                        raise src.damage
                    if not md["interfaces"]:
                        raise DataError(path, 0, "pcapng: the capture file has no Interface Description Blocks")
                    if n:
                        yield self._cut(idx, n, pos)
                    return
                else:
                    raise G.block_error(path, buf, big, st, pos, aux)
                if not md["sections"]:
                    raise DataError(path, 0, "pcapng: the file does not start with a Section Header Block")
        except DataError as err:
            yield from self._fail(err, self._cut(idx, n, pos))
        finally:
            names = ["NRB", "ISB", "DSB", "custom", "other"]
            md["skipped_blocks"] = {k: int(c) for k, c in zip(names, counts) if c}

    def _decode(self, buf: np.ndarray, idx: dict) -> CaptureBatch:
        n = len(idx["ts"])
        ifs = self.metadata["interfaces"]
        if len(self._if_maps[0]) != max(len(ifs), 1):
            self._if_maps = (np.array([f["id"] for f in ifs] or [0], np.int32),
                             np.array([f["section"] for f in ifs] or [0], np.int32))
        idx["if_id"] = self._if_maps[0][idx["iface"]]
        idx["section"] = self._if_maps[1][idx["iface"]]
        lay = D.Layers(n)
        lay.run(buf, idx["off"], idx["cap"], idx["lt"], idx["ts"], n, self._ports,
                self._trailer, self._window, self._numba)
        if self._keyframes is not None:        # counter stamps: sequential, state across batches
            self._keyframes.run(buf, idx, lay, self._trailer, self._window, self._numba)
        packets = packet_batch(buf, idx, lay, self.packets_read)
        self.packets_read += n
        if self.payloads:
            itch = itch_table(buf, idx["off"], packets, lay, self._numba)
            ouch = ouch_table(buf, idx["off"], packets, lay)
        else:
            itch, ouch = empty(ITCH_SCHEMA), empty(OUCH_SCHEMA)
        return CaptureBatch(packets, itch, ouch, ptp_table(packets, lay))


def _iface_arrays(ifs: list[dict]) -> tuple:
    k = max(len(ifs), 1)
    lt, snap = np.zeros(k, np.int64), np.zeros(k, np.int64)
    kind, exp = np.zeros(k, np.int64), np.full(k, 6, np.int64)
    off_s, glob = np.zeros(k, np.int64), np.zeros(k, np.int64)
    for i, f in enumerate(ifs):
        lt[i], snap[i], kind[i], exp[i] = f["linktype"], f["snaplen"], f["res_kind"], f["res_exp"]
        off_s[i], glob[i] = f["tsoffset"], f["index"]
    return lt, snap, kind, exp, off_s, glob


# ---------------------------------------------------------------------- whole captures
@dataclass
class Capture:
    """A whole capture decoded into Arrow tables (see hftlab.capture)."""
    packets: pa.Table
    itch: pa.Table
    ouch: pa.Table
    ptp: pa.Table
    metadata: dict = field(default_factory=dict)
    error: DataError | None = None

    def _table(self, table: str) -> pa.Table:
        if table not in ("packets", "itch", "ouch", "ptp"):
            raise ConfigError(f"unknown table {table!r}: packets, itch, ouch or ptp")
        return getattr(self, table)

    def to_polars(self, table: str = "packets"):
        import polars as pl
        return pl.from_arrow(self._table(table))

    def to_pandas(self, table: str = "packets"):
        return self._table(table).to_pandas()

    def write_parquet(self, out: str | os.PathLike[str]) -> dict[str, Path]:
        """Write packets to `out` and each non-empty message table beside it
        (`<stem>.itch.parquet`, `.ouch`, `.ptp`); every file carries the
        capture metadata under the key `hftlab.capture`. Returns the paths."""
        with ParquetSet(out, self.metadata) as w:
            w.write(CaptureBatch(self.packets, self.itch, self.ouch, self.ptp))
        return w.paths


def read(path: str | os.PathLike[str], **options) -> Capture:
    """Read a whole pcap/pcapng capture (options as `CaptureReader`)."""
    reader = CaptureReader(path, **options)
    parts: dict[str, list] = {"packets": [], "itch": [], "ouch": [], "ptp": []}
    for b in reader:
        parts["packets"].append(pa.Table.from_batches([b.packets], PACKET_SCHEMA))
        for name in ("itch", "ouch", "ptp"):
            if getattr(b, name).num_rows:
                parts[name].append(getattr(b, name))
    schemas = {"packets": PACKET_SCHEMA, "itch": ITCH_SCHEMA, "ouch": OUCH_SCHEMA, "ptp": PTP_SCHEMA}
    tables = {k: pa.concat_tables(v).combine_chunks() if v else empty(schemas[k])
              for k, v in parts.items()}
    return Capture(**tables, metadata=reader.metadata, error=reader.error)


def iter_batches(path: str | os.PathLike[str], **options) -> Iterator[CaptureBatch]:
    """Stream a capture in `CaptureBatch`es (options as `CaptureReader`)."""
    yield from CaptureReader(path, **options)


class ParquetSet:
    """Streams capture batches into a packets Parquet file plus one file per
    non-empty message table, all renamed into place on success only."""

    SCHEMAS = {"packets": PACKET_SCHEMA, "itch": ITCH_SCHEMA, "ouch": OUCH_SCHEMA, "ptp": PTP_SCHEMA}

    def __init__(self, out: str | os.PathLike[str], metadata: dict) -> None:
        self.out = Path(out)
        self.metadata = metadata
        self._open: dict[str, tuple[AtomicPath, pq.ParquetWriter]] = {}
        self.paths: dict[str, Path] = {}

    def _path(self, name: str) -> Path:
        if name == "packets":
            return self.out
        stem = self.out.name[:-len(".parquet")] if self.out.name.endswith(".parquet") else self.out.name
        return self.out.with_name(f"{stem}.{name}.parquet")

    def __enter__(self) -> "ParquetSet":
        self._writer("packets")
        return self

    def _writer(self, name: str) -> pq.ParquetWriter:
        if name not in self._open:
            atomic = AtomicPath(self._path(name))
            tmp = atomic.__enter__()
            self._open[name] = (atomic, pq.ParquetWriter(tmp, self.SCHEMAS[name], compression="zstd"))
        return self._open[name][1]

    def write(self, batch: CaptureBatch) -> None:
        for name in self.SCHEMAS:
            t = getattr(batch, name)
            if t.num_rows:
                self._writer(name).write_table(t if isinstance(t, pa.Table) else pa.Table.from_batches([t]))

    def __exit__(self, exc_type, exc, tb) -> None:
        meta = {"hftlab.capture": json.dumps(self.metadata, default=str),
                "hftlab.run": json.dumps({"command": "ingest", "source": self.metadata.get("file"),
                                          "hftlab_version": version()})}
        for name, (atomic, writer) in self._open.items():
            if exc_type is None:
                # the metadata is complete only now; restate the Arrow schema so that
                # pq.read_table(...).schema.metadata carries it too, not just the footer
                schema = self.SCHEMAS[name].with_metadata(meta)
                arrow = base64.b64encode(schema.serialize().to_pybytes()).decode()
                writer.add_key_value_metadata({**meta, "ARROW:schema": arrow})
            writer.close()
            atomic.__exit__(exc_type, exc, tb)
            if exc_type is None:
                self.paths[name] = self._path(name)


class _MoldPayloads(CaptureReader):
    """A CaptureReader that also keeps the UDP payload bytes of every
    MoldUDP64 packet (the replayer sends them again, hftlab.lab.exchange)."""

    def __init__(self, path, **options) -> None:
        super().__init__(path, **options)
        self.datagrams: list[bytes] = []

    def _decode(self, buf: np.ndarray, idx: dict) -> CaptureBatch:
        b = super()._decode(buf, idx)
        pk = b.packets
        seq = pk.column(pk.schema.get_field_index("mold_seq"))
        ok = np.asarray(seq.is_valid().to_numpy(zero_copy_only=False), bool)
        if ok.any():
            po = pk.column(pk.schema.get_field_index("payload_offset")).to_numpy(zero_copy_only=False)
            pl = pk.column(pk.schema.get_field_index("payload_len")).to_numpy(zero_copy_only=False)
            for k in np.flatnonzero(ok):
                s = int(idx["off"][k]) + int(po[k])
                self.datagrams.append(bytes(buf[s: s + int(pl[k])]))
        return b


def mold_datagrams(path: str | os.PathLike[str], **options) -> tuple[pa.Table, list[bytes]]:
    """The MoldUDP64 packets of a capture in capture order: their rows of the
    packets table (PACKET_SCHEMA) and each one's UDP payload (the MoldUDP64
    datagram). Options as `CaptureReader` (payloads is implied)."""
    reader = _MoldPayloads(path, **{**options, "payloads": False})
    parts = [pa.Table.from_batches([b.packets], PACKET_SCHEMA) for b in reader]
    pk = pa.concat_tables(parts).combine_chunks() if parts else empty(PACKET_SCHEMA)
    pk = pk.filter(pa.compute.is_valid(pk.column("mold_seq")))
    return pk, reader.datagrams
