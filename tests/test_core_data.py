"""The C core against real ITCH data, read independently with struct."""
from __future__ import annotations

import collections
import hashlib

import pyarrow as pa
import pytest

from hftlab import core
from hftlab.errors import DataError

from itch_ref import BBEKELE, LENGTHS, OMI, RITCH, RefEngine, iter_framed, mold_messages, \
    ouch_orders, parse, pcap_udp_payloads

needs_shared = pytest.mark.skipif(not RITCH.exists(), reason="../shared/data is not present "
                                  "(a user's clone has no ../shared)")
pytestmark = needs_shared


def test_lengths_match_spec():
    assert core.ITCH_LENGTHS == LENGTHS


def _expected_counts() -> dict[str, int]:
    out = {}
    for line in (RITCH.parent / "EXPECTED-counts.txt").read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and len(parts[0]) == 1:
            out[parts[0]] = int(parts[1])
    return out


def test_ritch_counts_equal_published_counts():
    counters: dict = {}
    t = core.read_itch(RITCH, counters=counters)
    assert t.num_rows == 12012
    assert counters["by_type"] == _expected_counts()
    assert counters["unknown_type"] == counters["bad_length"] == 0
    types = collections.Counter(t.column("msg_type").to_pylist())
    assert dict(types) == _expected_counts()


@pytest.mark.parametrize("path", [RITCH, BBEKELE], ids=["ritch", "bbekele"])
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


def test_bbekele_real_session_counts():
    counts = collections.Counter(chr(m[0]) for _, m in iter_framed(BBEKELE.read_bytes()))
    c: dict = {}
    core.read_itch(BBEKELE, counters=c)
    assert c["by_type"] == dict(counts) == {"S": 1, "R": 993, "H": 3, "Y": 3}


def test_chosen_messages():
    """Spot checks a reader can verify by eye in a hex dump."""
    t = core.read_itch(RITCH, messages=12).to_pylist()
    assert t[0]["msg_type"] == "S" and t[0]["event_code"] == "O"
    assert [r["stock"] for r in t[1:4]] == ["ALC", "BOB", "CHAR"]
    add = t[8]
    assert (add["msg_type"], add["stock"], add["side"], add["shares"], add["price"]) == \
        ("A", "BOB", "B", 1000, 53167)


omi_pcaps = sorted(OMI.glob("*/*.pcap")) if OMI.exists() else []


@pytest.mark.parametrize("pcap", omi_pcaps, ids=[f"{p.parent.name[:6]}/{p.stem}" for p in omi_pcaps])
def test_omi_moldudp64_pcaps(pcap):
    """Real MoldUDP64 datagrams: every message decodes to the struct reading,
    and the engine's packet path counts exactly the blocks in them."""
    payloads = pcap_udp_payloads(pcap)
    assert payloads
    eng = core.Engine()
    want_msgs = 0
    for p in payloads:
        _, _, msgs = mold_messages(p)
        want_msgs += len(msgs)
        for m in msgs:
            got = core.decode_itch(m, framed=False).to_pylist()
            if LENGTHS.get(chr(m[0])) == len(m):
                assert len(got) == 1
                for k, v in parse(m).items():
                    assert got[0][k] == v, (k, got[0], parse(m))
            else:
                assert got == []
        eng.feed_packet(p)
    c = eng.counters()
    assert c["mold"]["malformed"] == 0
    assert c["itch"]["messages"] + c["itch"]["bad_length"] + c["itch"]["unknown_type"] \
        + c["mold"]["duplicate_messages"] == want_msgs


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
