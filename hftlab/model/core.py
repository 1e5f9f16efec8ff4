"""hftlab.model.core: the freestanding C trading core (kernel_src/core), from Python.

The same C sources that HFT-OS links are compiled into ``hftlab._core`` by
``pip install``. This module turns them into Arrow tables and plain Python:

* :func:`read_itch` / :func:`iter_itch_batches`: an ITCH 5.0 file into Arrow,
  decoded in C straight into column buffers.
* :class:`EngineConfig`: strategy and risk parameters, with the fixed binary
  layout that is written into the HFT-OS image.
* :class:`Engine` and :func:`golden`: the golden model. A feed (ITCH file or
  MoldUDP64 datagrams) goes through exactly the C path of the OS; the orders
  come back as the OUCH bytes the OS would send and as an Arrow table.

No cffi object ever leaves this module.
"""
from __future__ import annotations

import dataclasses
import json
import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa

from hftlab.errors import ConfigError, DataError, HftlabError

try:
    from hftlab._core import ffi as _ffi, lib as _lib
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise HftlabError(
        "hftlab._core is not built; run `pip install -e .` in the hftlab checkout "
        f"(a C compiler is needed): {exc}"
    ) from exc

__all__ = [
    "StrategyConfig",
    "RiskConfig",
    "EngineConfig",
    "Engine",
    "GoldenResult",
    "golden",
    "book_snapshot",
    "read_itch",
    "iter_itch_batches",
    "decode_itch",
    "itch_schema",
    "orders_from_ouch",
    "ORDER_COLUMNS",
    "RISK_REASONS",
    "ITCH_LENGTHS",
]

#: Exact ITCH 5.0 message lengths (type byte included), read from the C core.
ITCH_LENGTHS: dict[str, int] = {
    chr(t): int(_lib.itch_msg_len(t)) for t in range(256) if _lib.itch_msg_len(t)
}
RISK_REASONS = ("ok", "kill", "size", "position", "notional", "rate", "band", "no_reference",
                "unknown_order", "live_full")
ORDER_COLUMNS = ("token", "trigger_seq", "instance", "side", "shares", "stock", "price", "tif", "type",
                 "orig_seq")
OUCH_LEN = int(_lib.OUCH_ENTER_LEN)
OUCH_MAX = int(_lib.OUCH_MAX_LEN)
OUCH_TOKEN = int(_lib.OUCH_TOKEN_LEN)
#: Length of each OUCH message type we send (Enter, Replace, Cancel).
OUCH_LENGTHS = {b"O"[0]: OUCH_LEN, b"U"[0]: int(_lib.OUCH_REPLACE_LEN), b"X"[0]: int(_lib.OUCH_CANCEL_LEN)}
MAX_SYMBOLS = int(_lib.STRAT_MAX_SYMBOLS)
GOLDEN_SESSION = b"HFTLAB0001"


# --------------------------------------------------------------------------- config
@dataclass
class StrategyConfig:
    """The strategy's parameters (struct strategy_config, kernel_src/core/strategy.h):
    the symbols and order size are the engine's, the other words each strategy
    reads as its own (names: those of the bundled trigger, kernel_src/strategies/
    trigger.c; see the head of each strategy file for its meaning of them)."""

    #: the strategy C file (kernel_src/core/strategy.h) or a bundled name
    #: (trigger, imbalance, quoter); None: the bundled trigger. Not part of
    #: the binary layout: it chooses what HFT-OS, the baselines and the golden
    #: model are built with. Relative paths in a config file are relative to it.
    file: str | None = None
    symbols: tuple[str, ...] = ()  #: empty: every symbol, first come first served
    order_shares: int = 100
    imbalance_num: int = 3  #: fire when bid_size/ask_size >= num/den (or mirrored)
    imbalance_den: int = 1
    min_top_shares: int = 1
    max_spread: int = 10_000  #: ask - bid at most, in 1/10,000 $
    cross_trigger: bool = True  #: buy the ask of a locked or crossed book


@dataclass
class RiskConfig:
    """Pre-trade limits (kernel_src/core/risk.h). 0 disables a limit."""

    max_order_shares: int = 1_000
    max_position: int = 5_000
    max_notional: int = 10_000_000 * 10_000  #: 1/10,000 $: ten million dollars
    max_orders_per_sec: int = 100  #: feed time
    price_band_bps: int = 500
    kill: bool = False


_U32 = (0, 2**32 - 1)
_U64 = (0, 2**64 - 1)
_LIMITS = {
    "order_shares": (1, 2**32 - 1), "imbalance_num": (1, 2**32 - 1),
    "imbalance_den": (1, 2**32 - 1), "min_top_shares": _U32, "max_spread": _U32,
    "max_order_shares": _U32, "max_position": _U64, "max_notional": _U64,
    "max_orders_per_sec": (0, 4096), "price_band_bps": _U32, "instance": (0, 255),
}


def _stock_field(sym: str) -> bytes:
    raw = sym.encode("ascii", "strict") if sym.isascii() else b""
    if not raw or len(raw) > 8 or not sym.strip() or " " in sym.strip():
        raise ConfigError(f"strategy.symbols: {sym!r} is not an ITCH stock symbol (1-8 ASCII chars)")
    return raw.ljust(8)


@dataclass
class EngineConfig:
    """Everything the trading core is configured with; one binary layout."""

    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    instance: int = 1  #: 0..255, encoded in every order token

    @classmethod
    def default(cls) -> "EngineConfig":
        return cls()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EngineConfig":
        """Build from {"instance":..., "strategy":{...}, "risk":{...}}; unknown keys are errors."""
        unknown = set(d) - {"instance", "strategy", "risk"}
        if unknown:
            raise ConfigError(f"config: unknown keys {sorted(unknown)}")
        try:
            strat = StrategyConfig(**d.get("strategy", {}))
            risk = RiskConfig(**d.get("risk", {}))
        except TypeError as exc:
            raise ConfigError(f"config: {exc}") from None
        strat.symbols = tuple(strat.symbols)
        if strat.file is not None and not isinstance(strat.file, str):
            raise ConfigError(f"config: strategy.file={strat.file!r} must be a path or a bundled name")
        cfg = cls(strategy=strat, risk=risk, instance=d.get("instance", 1))
        cfg.validate()
        return cfg

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> "EngineConfig":
        """Read a JSON or TOML config file."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
            if p.suffix == ".toml":
                import tomllib

                d = tomllib.loads(text)
            else:
                d = json.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{p}: cannot read config: {exc}") from None
        try:
            cfg = cls.from_dict(d)
        except ConfigError as exc:
            raise ConfigError(f"{p}: {exc}") from None
        f = cfg.strategy.file
        if f and "/" in f and not os.path.isabs(f):  # relative to the config file
            cfg.strategy.file = str((p.parent / f).resolve())
        return cfg

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["strategy"]["symbols"] = list(self.strategy.symbols)
        return d

    def validate(self) -> None:
        """Raise ConfigError naming the first field out of range."""
        for section, obj in (("strategy", self.strategy), ("risk", self.risk), ("", self)):
            for f in dataclasses.fields(obj):
                if f.name not in _LIMITS:
                    continue
                v = getattr(obj, f.name)
                lo, hi = _LIMITS[f.name]
                if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                    name = f"{section}.{f.name}" if section else f.name
                    raise ConfigError(f"config: {name}={v!r} must be an integer in [{lo}, {hi}]")
        if len(self.strategy.symbols) > MAX_SYMBOLS:
            raise ConfigError(f"config: strategy.symbols has {len(self.strategy.symbols)} entries, "
                              f"at most {MAX_SYMBOLS}")
        for s in self.strategy.symbols:
            _stock_field(s)
        if self.strategy.file is not None:
            from hftlab.model.strategy_cache import resolve_strategy

            resolve_strategy(self.strategy.file)  # ConfigError naming it when missing

    def _cdata(self, ffi: Any = None) -> Any:
        self.validate()
        c = (ffi or _ffi).new("struct engine_config *")
        c.magic, c.version, c.instance = _lib.ENGINE_CONFIG_MAGIC, _lib.ENGINE_CONFIG_VERSION, self.instance
        s, r = self.strategy, self.risk
        c.strat.n_symbols = len(s.symbols)
        for i, sym in enumerate(s.symbols):
            (ffi or _ffi).memmove(c.strat.symbols[i], _stock_field(sym), 8)
        for name in ("order_shares", "imbalance_num", "imbalance_den", "min_top_shares", "max_spread"):
            setattr(c.strat, name, getattr(s, name))
        c.strat.cross_trigger = int(bool(s.cross_trigger))
        for name in ("max_order_shares", "max_position", "max_notional", "max_orders_per_sec",
                     "price_band_bps"):
            setattr(c.risk, name, getattr(r, name))
        c.risk.kill = int(bool(r.kill))
        return c

    def to_bytes(self) -> bytes:
        """The struct engine_config bytes, as embedded in the HFT-OS image."""
        return bytes(_ffi.buffer(self._cdata()))


# --------------------------------------------------------------------------- ITCH -> Arrow
def itch_schema() -> pa.Schema:
    """Schema of decoded ITCH messages (docs/architecture.md §5, stable names)."""
    return pa.schema([
        ("msg_type", pa.string()), ("stock_locate", pa.uint16()), ("tracking", pa.uint16()),
        ("timestamp_ns", pa.int64()), ("order_ref", pa.uint64()), ("new_order_ref", pa.uint64()),
        ("side", pa.string()), ("shares", pa.uint64()), ("stock", pa.string()),
        ("price", pa.int64()), ("match_number", pa.uint64()), ("printable", pa.string()),
        ("cross_type", pa.string()), ("event_code", pa.string()), ("file_offset", pa.int64()),
    ])


_COLS = (("msg_type", np.uint8), ("stock_locate", np.uint16), ("tracking", np.uint16),
         ("timestamp_ns", np.uint64), ("order_ref", np.uint64), ("new_order_ref", np.uint64),
         ("side", np.uint8), ("shares", np.uint64), ("price", np.uint32),
         ("match_number", np.uint64), ("present", np.uint32), ("printable", np.uint8),
         ("cross_type", np.uint8), ("event_code", np.uint8), ("file_offset", np.uint64))


class _Columns:
    """Numpy buffers for one batch, and the hc_itch_cols struct pointing at them."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.arr = {name: np.empty(cap, dtype) for name, dtype in _COLS}
        self.stock_offsets = np.empty(cap + 1, np.int32)
        self.stock_data = np.empty(8 * cap, np.uint8)
        self.c = _ffi.new("struct hc_itch_cols *")
        for name, a in self.arr.items():
            setattr(self.c, name, _ffi.cast(_ffi.typeof(getattr(self.c, name)), a.ctypes.data))
        self.c.stock_offsets = _ffi.cast("int32_t *", self.stock_offsets.ctypes.data)
        self.c.stock_data = _ffi.cast("uint8_t *", self.stock_data.ctypes.data)
        self.c.cap = cap


def _valid(present: np.ndarray, bit: int) -> pa.Buffer | None:
    mask = (present & bit) != 0
    if mask.all():
        return None
    return pa.py_buffer(np.packbits(mask, bitorder="little"))


def _char_col(codes: np.ndarray, validity: pa.Buffer | None) -> pa.Array:
    n = len(codes)
    offsets = np.arange(n + 1, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(codes.tobytes()), validity)


def _batch(cols: _Columns, n: int) -> pa.RecordBatch:
    a = {k: v[:n].copy() for k, v in cols.arr.items()}
    present = a.pop("present")
    F = _lib

    def num(name: str, typ: pa.DataType, bit: int | None) -> pa.Array:
        v = a[name].astype(typ.to_pandas_dtype(), copy=False)
        return pa.Array.from_buffers(typ, n, [None if bit is None else _valid(present, bit), pa.py_buffer(v)])

    stock_off = cols.stock_offsets[: n + 1].copy()
    stock = pa.StringArray.from_buffers(
        n, pa.py_buffer(stock_off), pa.py_buffer(cols.stock_data[: stock_off[-1]].tobytes()),
        _valid(present, F.ITCH_F_STOCK))
    arrays = [
        _char_col(a["msg_type"], None), num("stock_locate", pa.uint16(), None),
        num("tracking", pa.uint16(), None), num("timestamp_ns", pa.int64(), None),
        num("order_ref", pa.uint64(), F.ITCH_F_ORDER_REF),
        num("new_order_ref", pa.uint64(), F.ITCH_F_NEW_ORDER_REF),
        _char_col(a["side"], _valid(present, F.ITCH_F_SIDE)),
        num("shares", pa.uint64(), F.ITCH_F_SHARES), stock,
        num("price", pa.int64(), F.ITCH_F_PRICE), num("match_number", pa.uint64(), F.ITCH_F_MATCH),
        _char_col(a["printable"], _valid(present, F.ITCH_F_PRINTABLE)),
        _char_col(a["cross_type"], _valid(present, F.ITCH_F_CROSS_TYPE)),
        _char_col(a["event_code"], _valid(present, F.ITCH_F_EVENT_CODE)),
        num("file_offset", pa.int64(), None),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=itch_schema())


class MappedFile:
    """A read-only memory map of a whole file (empty files map to b"")."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._fh = open(self.path, "rb")
        except OSError as exc:
            raise DataError(self.path, None, f"cannot open: {exc.strerror}") from None
        size = os.fstat(self._fh.fileno()).st_size
        self._mm = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        self.size = size
        self.ptr = _ffi.from_buffer(self._mm) if self._mm is not None else _ffi.new("uint8_t[1]")

    def close(self) -> None:
        self.ptr = None
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:  # an exported view outlives us; the GC frees it
                pass
        self._fh.close()

    def __enter__(self) -> "MappedFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def frame_error(path: Path, status: int, offset: int) -> DataError:
    if status == _lib.ITCH_FRAME_TRUNCATED:
        return DataError(path, offset, "truncated ITCH message (the file ends inside it)")
    return DataError(path, offset, "length prefix 0 and an unknown message type: the "
                     "framing cannot be resynchronised")


class _BytesSource:
    """An in-memory buffer with the interface of MappedFile."""

    def __init__(self, data: bytes, name: str = "<bytes>") -> None:
        self.path = Path(name)
        self.size = len(data)
        self.ptr = _ffi.from_buffer(data) if data else _ffi.new("uint8_t[1]")

    def __enter__(self) -> "_BytesSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.ptr = None


def _decode_batches(src: Any, messages: int | None, batch_size: int,
                    counters: dict[str, Any] | None, allow_truncated: bool) -> Iterator[pa.RecordBatch]:
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if messages is not None and messages < 0:
        raise ValueError("messages must be >= 0")
    cols = _Columns(min(batch_size, max(1, src.size // 12 + 1)))
    cnt = _ffi.new("struct itch_counters *")
    left = 0 if messages is None else int(messages)

    def framed() -> int:
        return int(cnt.messages + cnt.unknown_type + cnt.bad_length + cnt.empty)

    off = 0
    try:
        while messages is None or left > 0:
            before = framed()
            res = _lib.hc_itch_decode(src.ptr, src.size, off, left, cols.c, cnt)
            if messages is not None:
                left -= framed() - before
            if res.rows:
                yield _batch(cols, res.rows)
            off = res.offset
            if res.status == _lib.ITCH_FRAME_END:
                break
            if res.status in (_lib.ITCH_FRAME_TRUNCATED, _lib.ITCH_FRAME_UNFRAMED):
                if counters is not None:
                    counters["stopped_at"] = off
                if not (allow_truncated and res.status == _lib.ITCH_FRAME_TRUNCATED):
                    raise frame_error(src.path, res.status, off)
                break
    finally:
        if counters is not None:
            counters.update(_itch_counters(cnt))


def iter_itch_batches(path: str | os.PathLike[str], *, messages: int | None = None,
                      batch_size: int = 1 << 20, counters: dict[str, Any] | None = None,
                      allow_truncated: bool = False) -> Iterator[pa.RecordBatch]:
    """Decode an ITCH 5.0 file (2-byte big-endian length framing; a 0 length
    means "the length the type implies") into record batches of at most
    ``batch_size`` rows, memory-mapped, so files larger than RAM work.
    ``messages`` limits the framed messages read. Unknown types and wrong
    lengths are skipped and counted into ``counters`` (if given). A truncated
    tail raises DataError (file and byte offset) unless ``allow_truncated``."""
    with MappedFile(path) as mf:
        yield from _decode_batches(mf, messages, batch_size, counters, allow_truncated)


def decode_itch(data: bytes, *, counters: dict[str, Any] | None = None,
                framed: bool = True) -> pa.Table:
    """Decode ITCH messages held in memory: a framed buffer (2-byte lengths,
    as in a file or a MoldUDP64 body) or, with ``framed=False``, one bare
    message."""
    if not framed:
        data = len(data).to_bytes(2, "big") + data
    with _BytesSource(data) as src:
        batches = list(_decode_batches(src, None, 1 << 20, counters, False))
    return pa.Table.from_batches(batches, schema=itch_schema())


def read_itch(path: str | os.PathLike[str], *, messages: int | None = None,
              counters: dict[str, Any] | None = None, allow_truncated: bool = False) -> pa.Table:
    """Decode a whole ITCH 5.0 file (see :func:`iter_itch_batches`) into one table."""
    batches = list(iter_itch_batches(path, messages=messages, counters=counters,
                                     allow_truncated=allow_truncated))
    return pa.Table.from_batches(batches, schema=itch_schema())


def _itch_counters(c: Any) -> dict[str, Any]:
    return {
        "messages": int(c.messages), "unknown_type": int(c.unknown_type),
        "bad_length": int(c.bad_length), "empty": int(c.empty),
        "by_type": {chr(t): int(c.by_type[t]) for t in range(256) if c.by_type[t]},
    }


# --------------------------------------------------------------------------- orders
def _ouch_offsets(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start offsets and type bytes of the OUCH messages in a stream."""
    arr = np.frombuffer(data, np.uint8)
    if len(data) % OUCH_LEN == 0 and (arr[::OUCH_LEN] == ord("O")).all():
        starts = np.arange(0, len(data), OUCH_LEN)  # Enter Orders only: the trigger's stream
        return starts, arr[starts]
    starts, at = [], 0
    while at < len(data):
        n = OUCH_LENGTHS.get(data[at])
        if n is None:
            raise DataError("<ouch>", at, f"OUCH message type {data[at]:#04x} is not one hftlab sends "
                                          "(Enter O, Replace U, Cancel X)")
        if at + n > len(data):
            raise DataError("<ouch>", at, f"OUCH {chr(data[at])} message of {n} bytes runs past "
                                          f"the end of the {len(data)}-byte stream")
        starts.append(at)
        at += n
    st = np.asarray(starts, np.int64)
    return st, arr[st] if len(st) else np.zeros(0, np.uint8)


def _tokens(raw: list[bytes], at: int | None = None) -> tuple[list[str], list[int], list[int]]:
    tokens, seq, inst = [], [], []
    for t in raw:
        s = t.decode("ascii", "replace")
        try:
            inst.append(int(s[:2], 16))
            seq.append(int(s[2:], 16))
        except ValueError:
            raise DataError("<ouch>", at, f"OUCH token {s!r} is not an hftlab token") from None
        tokens.append(s)
    return tokens, seq, inst


def orders_from_ouch(data: bytes) -> pa.Table:
    """Decode an OUCH 4.2 order stream as the SUT sends it (49-byte Enter
    Orders; with a quoting strategy also 47-byte Replace and 19-byte Cancel
    Orders) into the orders table (docs/architecture.md §5), one row per
    message: type O/U/X; token and trigger_seq are the new order's (Enter,
    the replacement of a Replace; null for a Cancel, which carries no token
    of its own); orig_seq is the order a Replace or Cancel acts on; side and
    stock are null for U and X, price and tif null for X."""
    starts, types = _ouch_offsets(data)
    n = len(starts)
    buf = np.frombuffer(data, np.uint8)

    def field(off: int, width: int, sel: np.ndarray) -> np.ndarray:
        idx = starts[sel][:, None] + off + np.arange(width)
        return buf[idx] if len(idx) else np.zeros((0, width), np.uint8)

    def be32(off: int, sel: np.ndarray) -> np.ndarray:
        b = field(off, 4, sel).astype(np.int64)
        return (b[:, 0] << 24) | (b[:, 1] << 16) | (b[:, 2] << 8) | b[:, 3]

    o, u, x = types == ord("O"), types == ord("U"), types == ord("X")
    token = np.empty(n, object)
    seq = np.zeros(n, np.uint64)
    inst = np.zeros(n, np.uint8)
    orig = np.zeros(n, np.uint64)
    for sel, off in ((o, 1), (u, 15)):  # the token of the order this message creates
        t, sq, it = _tokens([bytes(r) for r in field(off, OUCH_TOKEN, sel)])
        token[sel], seq[sel], inst[sel] = t, sq, it
    for sel in (u, x):  # the order acted on
        t, sq, it = _tokens([bytes(r) for r in field(1, OUCH_TOKEN, sel)])
        orig[sel] = sq
        if sel is x:
            inst[sel] = it
    side = np.empty(n, object)
    side[o] = [chr(c) for c in field(15, 1, o)[:, 0]]
    stock = np.empty(n, object)
    stock[o] = [bytes(r).decode("ascii", "replace").rstrip() for r in field(20, 8, o)]
    shares = np.zeros(n, np.int64)
    price = np.zeros(n, np.int64)
    tif = np.zeros(n, np.int64)
    shares[o], price[o], tif[o] = be32(16, o), be32(28, o), be32(32, o)
    shares[u], price[u], tif[u] = be32(29, u), be32(33, u), be32(37, u)
    shares[x] = be32(15, x)
    return pa.table({
        "token": pa.array(token, pa.string()),
        "trigger_seq": pa.array(seq, pa.uint64(), mask=x),
        "instance": pa.array(inst, pa.uint8()),
        "side": pa.array(side, pa.string()),
        "shares": pa.array(shares),
        "stock": pa.array(stock, pa.string()),
        "price": pa.array(price, mask=x),
        "tif": pa.array(tif, mask=x),
        "type": pa.array([chr(c) for c in types], pa.string()),
        "orig_seq": pa.array(orig, pa.uint64(), mask=o),
    })


# --------------------------------------------------------------------------- engine
@dataclass
class GoldenResult:
    """What the golden model produced for one feed."""

    orders: pa.Table
    ouch: bytes  #: the OUCH messages, concatenated, as HFT-OS sends them
    counters: dict[str, Any]
    config: EngineConfig


class Engine:
    """One instance of the C trading engine with its own book memory.

    ``order_capacity``, ``level_capacity``: fixed book sizes (a full book is
    counted in counters()["book"]["full_orders"], never corrupted).
    """

    def __init__(self, config: EngineConfig | None = None, *, order_capacity: int = 1 << 20,
                 level_capacity: int = 1 << 18, strategy: str | os.PathLike[str] | None = None) -> None:
        self.config = config or EngineConfig.default()
        #: the strategy compiled in: None is the bundled trigger of hftlab._core;
        #: a C file is compiled once into the golden model (hftlab.model.strategy)
        if strategy is None:
            strategy = self.config.strategy.file
        if strategy is not None:
            from hftlab.model.strategy_cache import DEFAULT, resolve_strategy

            strategy = None if resolve_strategy(strategy) == DEFAULT else resolve_strategy(strategy)
        self.strategy = strategy
        if strategy is None:
            self._ffi, self._lib = _ffi, _lib
        else:
            from hftlab.model.strategy_cache import load_strategy

            mod = load_strategy(strategy)
            self._ffi, self._lib = mod.ffi, mod.lib
        if not 1 <= order_capacity < 2**31 or not 1 <= level_capacity <= 2**30:
            raise ConfigError("order_capacity must be in [1, 2^31) and level_capacity in [1, 2^30]")
        index_cap = 1 << (2 * order_capacity - 1).bit_length()
        self._eng = self._ffi.new("struct engine *")
        self._orders = self._ffi.new("struct book_order[]", order_capacity)
        self._index = self._ffi.new("uint32_t[]", index_cap)
        self._levels = self._ffi.new("struct book_level[]", level_capacity)
        lindex_cap = 1 << (2 * level_capacity - 1).bit_length()  # the level hash: 2x, a power of two
        self._lindex = self._ffi.new("uint32_t[]", lindex_cap)
        mem = self._ffi.new("struct book_mem *", {
            "orders": self._orders, "order_cap": order_capacity, "index": self._index,
            "index_cap": index_cap, "levels": self._levels, "level_cap": level_capacity,
            "lindex": self._lindex, "lindex_cap": lindex_cap})
        if not self._lib.engine_init(self._eng, self.config._cdata(self._ffi), mem):
            raise ConfigError("engine_init refused the configuration")
        self._g = self._ffi.new("struct hc_golden *")
        self._g.eng = self._eng
        self._g.next_seq = 1
        self._ffi.memmove(self._g.session, GOLDEN_SESSION, 10)
        self._out = bytearray()
        self._grow(4096)

    def _grow(self, cap: int) -> None:
        n = self._g.n_out
        data = bytes(self._ffi.buffer(self._g.out, self._g.out_len)) if n else b""
        top = bytes(self._ffi.buffer(self._g.top, n * 32)) if n else b""
        self._buf = self._ffi.new("uint8_t[]", cap * OUCH_MAX)
        self._ffi.memmove(self._buf, data, len(data))
        self._top = self._ffi.new("uint64_t[]", cap * 4)
        self._ffi.memmove(self._top, top, len(top))
        self._g.out, self._g.out_cap, self._g.top = self._buf, cap, self._top

    def feed_file(self, path: str | os.PathLike[str], *, messages: int | None = None,
                  max_payload: int = 1400, max_count: int = 64) -> int:
        """Pack an ITCH file's messages into MoldUDP64 datagrams (sequence
        numbers continue across calls, starting at 1) and run them through the
        engine. Returns the number of framed messages consumed."""
        if not 64 <= max_payload <= 65535 or not 1 <= max_count <= 0xFFFE:
            raise ConfigError("max_payload must be in [64, 65535] and max_count in [1, 65534]")
        total, left = 0, 0 if messages is None else int(messages)
        with MappedFile(path) as mf:
            off = 0
            while messages is None or left > 0:
                res = self._lib.hc_golden_feed_file(self._g, mf.ptr, mf.size, off, left,
                                               max_payload, max_count)
                off, total = res.offset, total + res.rows
                if messages is not None:
                    left -= res.rows
                if res.status == self._lib.HC_NEED_SPACE:  # grow the order buffer and go on
                    self._grow(2 * self._g.out_cap)
                    continue
                if res.status in (self._lib.ITCH_FRAME_TRUNCATED, self._lib.ITCH_FRAME_UNFRAMED):
                    raise frame_error(mf.path, res.status, off)
                if res.status == self._lib.ITCH_FRAME_END or res.rows == 0:
                    break
        return total

    def feed_packet(self, datagram: bytes) -> int:
        """Run one MoldUDP64 datagram (a UDP payload) through the engine.
        Returns the orders it emitted, or a negative code for a malformed one."""
        if self._g.out_cap - self._g.n_out < 0xFFFF:
            self._grow(max(2 * self._g.out_cap, self._g.n_out + 0xFFFF))
        buf = self._ffi.from_buffer(datagram) if datagram else self._ffi.new("uint8_t[1]")
        return int(self._lib.hc_golden_feed_packet(self._g, buf, len(datagram)))

    def feed_packets(self, datagrams: Iterable[bytes]) -> int:
        return sum(max(0, self.feed_packet(d)) for d in datagrams)

    def kill(self, on: bool = True) -> None:
        """Flip the risk kill switch."""
        self._lib.risk_set_kill(self._ffi.addressof(self._eng, "risk"), on)

    def ouch(self) -> bytes:
        return bytes(self._ffi.buffer(self._g.out, self._g.out_len))

    def orders(self) -> pa.Table:
        return orders_from_ouch(self.ouch())

    def order_book(self) -> pa.Table:
        """Per order, the book of its stock when it went out: best bid and
        ask with their shares (0 for an empty side)."""
        n = int(self._g.n_out)
        top = np.frombuffer(self._ffi.buffer(self._g.top, n * 32), np.uint64).reshape(n, 4)
        return pa.table({"bid": pa.array(top[:, 0].astype(np.int64)),
                         "bid_shares": pa.array(top[:, 1].astype(np.int64)),
                         "ask": pa.array(top[:, 2].astype(np.int64)),
                         "ask_shares": pa.array(top[:, 3].astype(np.int64))})

    def counters(self) -> dict[str, Any]:
        """Every counter of the engine as nested plain dicts."""
        e = self._eng

        def fields(obj: Any, names: str) -> dict[str, int]:
            return {n: int(getattr(obj, n)) for n in names.split()}

        return {
            "mold": fields(e.mold.c, "packets messages heartbeats end_of_session gaps gap_messages "
                                     "duplicates duplicate_messages malformed sessions_full after_end"),
            "itch": _itch_counters(e.itch),
            "book": fields(e.book.c, "adds executes cancels deletes replaces unknown_ref "
                                     "duplicate_ref over_execute bad_side full_orders full_levels")
            | {"live_orders": int(e.book.live_orders), "live_levels": int(e.book.live_levels)},
            "strategy": fields(e.strat.c, "evaluations signals symbols_full")
            | {"symbols": int(e.strat.n_slots)},
            "risk": {"accepted": int(e.risk.c.accepted)}
            | {f"rejected_{RISK_REASONS[i]}": int(e.risk.c.rejected[i]) for i in range(1, len(RISK_REASONS))},
            "orders": int(e.orders),
            "seq_too_large": int(e.seq_too_large),
            "orders_lost": int(self._g.lost),
        }

    def positions(self) -> pa.Table:
        """Per traded symbol: locate, worst-case position, notional sent, last trade."""
        e = self._eng
        rows = range(int(e.strat.n_slots))
        return pa.table({
            "stock": [self._ffi.string(e.strat.sym[i].stock, 8).decode("ascii").rstrip() for i in rows],
            "stock_locate": pa.array([int(e.strat.sym[i].locate) for i in rows], pa.uint16()),
            "position": pa.array([int(e.risk.sym[i].position) for i in rows], pa.int64()),
            "notional": pa.array([int(e.risk.sym[i].notional) for i in rows], pa.uint64()),
            "last_trade": pa.array([int(e.risk.sym[i].last_trade) for i in rows], pa.int64()),
        })

    def order_shares(self, order_ref: int) -> int | None:
        """Shares left of a live order, None when it is not on the book."""
        out = self._ffi.new("uint32_t *")
        if self._lib.book_order_shares(self._ffi.addressof(self._eng, "book"), order_ref, out):
            return int(out[0])
        return None

    def _locate(self, stock: str | int) -> int:
        if isinstance(stock, int):
            if not 0 <= stock <= 0xFFFF:
                raise ValueError(f"stock locate {stock} out of range")
            return stock
        key = stock.encode("ascii").ljust(8)
        for i in range(int(self._eng.strat.n_slots)):
            if bytes(self._ffi.buffer(self._eng.strat.sym[i].stock, 8)) == key:
                return int(self._eng.strat.sym[i].locate)
        raise KeyError(f"{stock!r} has not been seen by the strategy (give its stock locate instead)")

    def depth(self, stock: str | int, levels: int = 10) -> pa.Table:
        """Book snapshot: the best ``levels`` price levels per side."""
        loc = self._locate(stock)
        prices = self._ffi.new("uint32_t[]", levels)
        shares = self._ffi.new("uint64_t[]", levels)
        norders = self._ffi.new("uint32_t[]", levels)
        cols: dict[str, list[Any]] = {k: [] for k in ("side", "level", "price", "shares", "orders")}
        for side, name in ((self._lib.BOOK_BID, "B"), (self._lib.BOOK_ASK, "S")):
            n = self._lib.book_depth(self._ffi.addressof(self._eng, "book"), loc, side, prices, shares,
                                norders, levels)
            for i in range(n):
                for k, v in zip(cols, (name, i, prices[i], shares[i], norders[i])):
                    cols[k].append(int(v) if k != "side" else v)
        return pa.table({"side": pa.array(cols["side"], pa.string()),
                         "level": pa.array(cols["level"], pa.int32()),
                         "price": pa.array(cols["price"], pa.int64()),
                         "shares": pa.array(cols["shares"], pa.int64()),
                         "orders": pa.array(cols["orders"], pa.int64())})


def book_snapshot(dataset: str | os.PathLike[str], stock: str | int, *, messages: int | None = None,
                  levels: int = 10, config: EngineConfig | None = None) -> pa.Table:
    """The book of `stock` (symbol or locate) after the first `messages`
    messages of an ITCH file: side, level, price, shares, orders."""
    eng = Engine(config)
    eng.feed_file(dataset, messages=messages)
    return eng.depth(stock, levels)


def golden(dataset: str | os.PathLike[str], config: EngineConfig | None = None, *,
           messages: int | None = None, strategy: str | os.PathLike[str] | None = None) -> GoldenResult:
    """The golden model: the orders the C core emits for an ITCH file
    (with `strategy`, a strategy C file, compiled in instead of the trigger)."""
    eng = Engine(config, strategy=strategy)
    eng.feed_file(dataset, messages=messages)
    return GoldenResult(orders=eng.orders(), ouch=eng.ouch(), counters=eng.counters(),
                        config=eng.config)
