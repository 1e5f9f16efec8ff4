"""The C core against ITCH data the repository carries, read independently
with struct: RITCH's sample (zero length prefixes), a `hftlab synth` session
(real length prefixes, as NASDAQ frames files) and MoldUDP64 captures
written by tcpdump (captures/moldudp64, made by scripts/make-captures.py)."""
from __future__ import annotations

import collections
import hashlib
import struct

import pyarrow as pa
import pytest

from hftlab.model import core
from hftlab.errors import DataError

from itch_ref import LENGTHS, MOLDUDP64, RITCH, SYNTH, RefEngine, iter_framed, mold_messages, \
    ouch_orders, parse, pcap_udp_payloads
from repo_paths import RITCH_COUNTS, SYNTH_COUNTS, read_counts


def test_lengths_match_spec():
    assert core.ITCH_LENGTHS == LENGTHS


def _expected_counts() -> dict[str, int]:
    return read_counts(RITCH_COUNTS)


def test_ritch_counts_equal_published_counts():
    counters: dict = {}
    t = core.read_itch(RITCH, counters=counters)
    assert t.num_rows == 12012
    assert counters["by_type"] == _expected_counts()
    assert counters["unknown_type"] == counters["bad_length"] == 0
    types = collections.Counter(t.column("msg_type").to_pylist())
    assert dict(types) == _expected_counts()


@pytest.mark.parametrize("path", [RITCH, SYNTH], ids=["ritch", "synth"])
def test_every_field_equals_struct_reading(path):
    data = path.read_bytes()
    ref = [(off, parse(m)) for off, m in iter_framed(data)]
    rows = core.read_itch(path).to_pylist()
    assert len(rows) == len(ref)
    for (off, want), got in zip(ref, rows):
        assert got["file_offset"] == off
        for k, v in want.items():
            assert got[k] == v, (off, k, got, want)
        # fields a type lacks are null, never zero-filled
        for k in ("order_ref", "new_order_ref", "side", "shares", "stock", "price", "match_number"):
            if k not in want:
                assert got[k] is None, (off, k, got)


def test_synth_length_prefixed_counts():
    """No real NASDAQ file head is redistributable here; a `hftlab synth`
    session stands in: NASDAQ's framing with every length prefix real."""
    data = SYNTH.read_bytes()
    framed = list(iter_framed(data))
    for off, m in framed:
        (prefix,) = struct.unpack_from(">H", data, off)
        assert prefix == len(m) == LENGTHS[chr(m[0])], off
    counts = collections.Counter(chr(m[0]) for _, m in framed)
    c: dict = {}
    t = core.read_itch(SYNTH, counters=c)
    assert c["by_type"] == dict(counts) == read_counts(SYNTH_COUNTS)
    assert t.num_rows == c["messages"] == 2000
    assert c["unknown_type"] == c["bad_length"] == c["empty"] == 0
    assert set(counts) - set("SRHAFEXDUP") == {"C"}   # a type RITCH's sample lacks


def test_real_prefix_is_followed(tmp_path):
    """A message whose prefix says one byte more than its type: the reader
    steps by the prefix (the next message still decodes) and counts it."""
    data = SYNTH.read_bytes()
    framed = list(iter_framed(data))
    off, m = framed[100]
    bad = data[:off] + struct.pack(">H", len(m) + 1) + m + b"Z" + data[off + 2 + len(m):]
    p = tmp_path / "bad.itch"
    p.write_bytes(bad)
    c: dict = {}
    rows = core.read_itch(p, counters=c).to_pylist()
    assert c["bad_length"] == 1 and c["messages"] == len(framed) - 1 == len(rows)
    assert rows[100]["file_offset"] == off + 2 + len(m) + 1
    assert {k: rows[100][k] for k in parse(framed[101][1])} == parse(framed[101][1])


def test_chosen_messages():
    """Spot checks a reader can verify by eye in a hex dump."""
    t = core.read_itch(RITCH, messages=12).to_pylist()
    assert t[0]["msg_type"] == "S" and t[0]["event_code"] == "O"
    assert [r["stock"] for r in t[1:4]] == ["ALC", "BOB", "CHAR"]
    add = t[8]
    assert (add["msg_type"], add["stock"], add["side"], add["shares"], add["price"]) == \
        ("A", "BOB", "B", 1000, 53167)


# file, messages of RITCH in it, datagrams, duplicates (datagrams, messages), heartbeats, ends
CAPTURES = {
    "ritch-packed.pcap": (3000, 87, (0, 0), 0, 0),
    "ritch-single-vlan100.pcap": (400, 400, (0, 0), 0, 0),
    "ritch-session.pcap": (600, 80, (1, 8), 3, 1),
}


@pytest.mark.parametrize("name", CAPTURES)
def test_moldudp64_captures(name):
    """MoldUDP64 datagrams captured by tcpdump: every message decodes to the
    struct reading, the sequence numbers carry RITCH's messages in order, and
    the engine counts exactly what the datagrams hold and trades as the
    golden model on the same messages."""
    n_msgs, n_dgrams, (dup, dup_msgs), heartbeats, ends = CAPTURES[name]
    payloads = pcap_udp_payloads(MOLDUDP64 / name)
    assert len(payloads) == n_dgrams
    ritch = [m for _, m in iter_framed(RITCH.read_bytes())]
    eng = core.Engine()
    by_seq: dict[int, bytes] = {}
    blocks = hb = end = 0
    for p in payloads:
        session, seq, msgs = mold_messages(p)
        assert session.startswith(b"RITCH0000")
        (count,) = struct.unpack_from(">H", p, 18)
        hb += count == 0
        end += count == 0xFFFF
        blocks += len(msgs)
        for i, m in enumerate(msgs):
            assert by_seq.setdefault(seq + i, m) == m
            got = core.decode_itch(m, framed=False).to_pylist()
            assert len(got) == 1 and LENGTHS[chr(m[0])] == len(m)
            for k, v in parse(m).items():
                assert got[0][k] == v, (k, got[0], parse(m))
        eng.feed_packet(p)
    assert sorted(by_seq) == list(range(1, n_msgs + 1))
    assert [by_seq[s] for s in range(1, n_msgs + 1)] == ritch[:n_msgs]
    assert (blocks - n_msgs, hb, end) == (dup_msgs, heartbeats, ends)
    c = eng.counters()
    assert c["mold"] == {
        "packets": n_dgrams, "messages": n_msgs, "heartbeats": heartbeats, "end_of_session": ends,
        "gaps": 0, "gap_messages": 0, "duplicates": dup, "duplicate_messages": dup_msgs,
        "malformed": 0, "sessions_full": 0, "after_end": 0}
    assert c["itch"]["messages"] == n_msgs
    assert c["itch"]["bad_length"] == c["itch"]["unknown_type"] == c["itch"]["empty"] == 0
    golden = core.golden(RITCH, messages=n_msgs)
    assert c["orders"] == golden.orders.num_rows > 0
    assert eng.ouch() == golden.ouch


def _ref_orders(cfg: core.EngineConfig, path, messages=None):
    ref = RefEngine(cfg.to_dict())
    for seq, (_, m) in enumerate(iter_framed(path.read_bytes()), start=1):
        if messages is not None and seq > messages:
            break
        ref.on_message(m, seq)
    return ref


CONFIGS = {
    "default": core.EngineConfig(),
    "imbalance-only": core.EngineConfig(strategy=core.StrategyConfig(cross_trigger=False,
                                                                     imbalance_num=2)),
    "tight-risk": core.EngineConfig(risk=core.RiskConfig(max_position=300, max_orders_per_sec=2,
                                                         price_band_bps=50)),
    "one-symbol": core.EngineConfig(strategy=core.StrategyConfig(symbols=("BOB",), order_shares=7)),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_golden_equals_reference_model(name):
    cfg = CONFIGS[name]
    res = core.golden(RITCH, cfg)
    ref = _ref_orders(cfg, RITCH)
    got = ouch_orders(res.ouch)
    assert [{k: o[k] for k in ("trigger_seq", "side", "shares", "stock", "price")} for o in got] \
        == ref.orders
    assert res.counters["strategy"]["signals"] == ref.signals
    rej = {k[9:]: v for k, v in res.counters["risk"].items() if k.startswith("rejected_") and v}
    assert rej == dict(ref.rejected)
    assert all(o["tif"] == 0 and o["instance"] == cfg.instance for o in got)


def test_default_config_trades_ritch():
    res = core.golden(RITCH)
    assert res.orders.num_rows > 0
    assert res.counters["orders"] == res.orders.num_rows
    assert res.orders.column_names[:2] == ["token", "trigger_seq"]
    # every trigger is a message that exists and touched a traded book
    msgs = [m for _, m in iter_framed(RITCH.read_bytes())]
    for seq in res.orders.column("trigger_seq").to_pylist():
        assert chr(msgs[seq - 1][0]) in "AFECXDU"


def test_packing_does_not_change_orders():
    base = core.golden(RITCH).ouch
    for payload, count in ((64, 1), (200, 3), (9000, 500)):
        eng = core.Engine()
        eng.feed_file(RITCH, max_payload=payload, max_count=count)
        assert eng.ouch() == base


def test_resume_across_calls_equals_one_pass():
    eng = core.Engine()
    consumed = eng.feed_file(RITCH, messages=5000)
    assert consumed == 5000
    # a second feed continues the sequence numbers; here we feed the rest by packets
    data = RITCH.read_bytes()
    msgs = [m for _, m in iter_framed(data)][5000:]
    from itch_ref import mold_packet
    seq = 5001
    for i in range(0, len(msgs), 10):
        eng.feed_packet(mold_packet(b"HFTLAB0001", seq, msgs[i:i + 10]))
        seq += len(msgs[i:i + 10])
    assert eng.ouch() == core.golden(RITCH).ouch


def test_golden_deterministic():
    a, b = core.golden(RITCH), core.golden(RITCH)
    assert hashlib.sha256(a.ouch).digest() == hashlib.sha256(b.ouch).digest()


def test_messages_limit():
    res = core.golden(RITCH, messages=3000)
    assert res.counters["itch"]["messages"] == 3000
    ref = _ref_orders(core.EngineConfig(), RITCH, messages=3000)
    assert len(ref.orders) == res.orders.num_rows


def test_truncated_file_names_offset(tmp_path):
    data = RITCH.read_bytes()[:1000]
    p = tmp_path / "cut.itch"
    p.write_bytes(data)
    with pytest.raises(DataError) as ei:
        core.read_itch(p)
    assert ei.value.offset == 980 and str(p) in str(ei.value)
    c: dict = {}
    t = core.read_itch(p, allow_truncated=True, counters=c)
    assert t.num_rows == c["messages"] == len(list(iter_framed(data[:980])))
    with pytest.raises(DataError):
        core.golden(p)


def test_arrow_schema_stable():
    t = core.read_itch(RITCH, messages=10)
    assert t.schema.field("msg_type").type == pa.string()
    assert t.schema.field("price").type == pa.int64()
    assert t.schema.field("timestamp_ns").type == pa.int64()


def test_book_snapshot_equals_reference_book():
    ref = _ref_orders(core.EngineConfig(), RITCH, messages=3000)
    snap = core.book_snapshot(RITCH, "BOB", messages=3000, levels=1000).to_pylist()
    for side in "BS":
        want = ref.levels[(2, side)]
        got = {r["price"]: (r["shares"], r["orders"]) for r in snap if r["side"] == side}
        assert got == want and got
