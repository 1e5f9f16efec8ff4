"""The replayer's pacing (issue 19): hftlab.lab.exchange.Pacing, capture
replay, replay.parquet and run.json's "pacing" summary.

* without root: the schedules of every pace, a capture's datagrams, the
  summary's figures on a table made by hand, and every bad input refused
  with a clear error before anything is built or booted (no run directory);
* as root, real runs: HFT-OS under TCG paced by the feed's recorded ITCH
  times, in bursts, and replaying a capture (the wire.pcapng of the
  recorded run: the same orders again) and a captures/ sample with a
  retransmission, heartbeats and the end of session; each Linux baseline on
  the host with one of the new modes. Every run's orders equal the golden
  model's on exactly the messages sent, and every run directory has
  replay.parquet (one row per datagram, wire times from dumpcap) and the
  pacing summary in run.json.
"""
from __future__ import annotations

import json
import os
import struct

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hftlab.errors import ConfigError, DataError
from hftlab.experiment.api import load
from hftlab.experiment.run import RunSpec, run
from hftlab.experiment.steps import golden_of_datagrams
from hftlab.lab import exchange
from hftlab.lab.net import TAP_TXQUEUELEN

from repo_paths import MOLDUDP64, OTHER, RITCH, SYNTH

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="netns and tap need root")
SESSION = MOLDUDP64 / "ritch-session.pcap"


# --- without root -----------------------------------------------------------------

def test_schedules_of_every_pace():
    feed = exchange.pack_feed(SYNTH, max_count=4)
    before = np.concatenate(([0], np.cumsum(feed.counts[:-1], dtype=np.int64)))
    due = exchange.Pacing("rate", rate=1000).due(feed)
    assert np.array_equal(due, (before * 1_000_000).astype(np.uint64))  # 1 ms a message
    assert exchange.Pacing("max", rate=None).due(feed) is None
    b = exchange.Pacing("burst", rate=None, burst=7, every_s=0.002).due(feed)
    assert np.array_equal(b, (np.arange(feed.n_packets) // 7 * 2_000_000).astype(np.uint64))
    rec = exchange.recorded_times(feed, SYNTH)
    ts = np.array([r for r in _itch_timestamps(SYNTH.read_bytes())], np.int64)
    last = np.cumsum(feed.counts.astype(np.int64)) - 1
    assert np.array_equal(rec, ts[last])  # each datagram at its last message's time
    r2 = exchange.Pacing("recorded", rate=None, speed=4).due(feed, rec)
    assert np.array_equal(r2, ((ts[last] - ts[last[0]]) / 4).astype(np.uint64))


def _itch_timestamps(data: bytes):
    off = 0
    while off < len(data):
        n = int.from_bytes(data[off: off + 2], "big")
        yield int.from_bytes(data[off + 2 + 5: off + 2 + 11], "big")
        off += 2 + n


def test_capture_feed_takes_every_moldudp64_datagram():
    feed, ts, note = exchange.capture_feed(SESSION)
    assert feed.n_packets == 80 and note["datagrams"] == 80 and note["sessions"] == ["RITCH00003"]
    first, last = exchange.datagram_seqs(feed)
    assert first[0] == 1 and last[-5] == 600 and list(first[-4:]) == [601] * 4  # heartbeats, end
    assert np.all(np.diff(ts) >= 0) and feed.counts[-1] == 0  # end of session: no message
    assert feed.session == b"RITCH00003"
    eng = golden_of_datagrams(RunSpec(), [feed.packet(i) for i in range(feed.n_packets)])
    m = eng.counters["mold"]
    assert (m["duplicates"], m["heartbeats"], m["end_of_session"], m["gaps"]) == (1, 3, 1, 0)
    assert eng.orders.num_rows == 5


def test_pacing_summary_figures_by_hand():
    feed = exchange.pack_feed(SYNTH, max_count=100, max_payload=65507)  # 20 datagrams
    assert feed.n_packets == 20
    n = feed.n_packets
    due = np.arange(n, dtype=np.uint64) * 1_000_000
    errs = np.zeros(n, np.int64)
    errs[3], errs[7] = 50_000, 12_000  # two late datagrams
    t0 = 1_700_000_000_000_000_000
    sent = t0 + due.astype(np.int64) + errs + 500
    wire = t0 + due.astype(np.int64) + errs
    t = exchange.pacing_table(feed, due, t0, sent, wire)
    assert t.num_rows == n and t.column("wire_error_ns").to_pylist() == list(errs)
    assert t.column("send_error_ns").to_pylist() == list(errs + 500)
    assert t.column("first_seq").to_pylist()[:2] == [1, 101]
    s = exchange.pacing_summary(t, exchange.Pacing("rate", rate=100_000))
    assert s["late"] == 2 and s["error_ns"]["max"] == 50_000 and s["error_ns"]["p50"] == 0
    assert s["error_of"] == "wire" and len(s["warnings"]) == 1 and "2 of 20" in s["warnings"][0]
    ok = exchange.pacing_summary(exchange.pacing_table(feed, due, t0, sent - errs, wire - errs),
                                 exchange.Pacing("rate", rate=100_000))
    assert ok["late"] == 0 and ok["warnings"] == []
    # bursts: the error of each burst's first datagram, the burst's length apart
    bdue = (np.arange(n) // 5 * 1_000_000).astype(np.uint64)
    bw = t0 + bdue.astype(np.int64) + np.tile(np.arange(5) * 3000, 4)
    bs = exchange.pacing_summary(exchange.pacing_table(feed, bdue, t0, bw, bw),
                                 exchange.Pacing("burst", rate=None, burst=5, every_s=0.001))
    assert bs["late"] == 0 and bs["error_ns"]["max"] == 0
    assert bs["burst_span_ns"] == {"p50": 12_000, "max": 12_000, "bursts": 4}


def _backwards_feed(tmp_path):
    data = bytearray(SYNTH.read_bytes())
    off = k = 0
    while off < len(data):
        n = int.from_bytes(data[off: off + 2], "big")
        if k == 100:
            data[off + 2 + 5: off + 2 + 11] = (1000).to_bytes(6, "big")
        off += 2 + n
        k += 1
    p = tmp_path / "backwards.itch"
    p.write_bytes(bytes(data))
    return p


@pytest.mark.parametrize("case", ["speed0", "speed_negative", "burst_over_ring", "no_mold",
                                  "backwards", "capture_backwards", "burst_without_every"])
def test_bad_input_is_refused_before_anything_boots(case, tmp_path):
    out = tmp_path / "run"
    kw, exc, words = {
        "speed0": ({"pace": "recorded", "speed": 0}, ConfigError, "speed 0"),
        "speed_negative": ({"pace": "recorded", "speed": -2.0}, ConfigError, "must be > 0"),
        "burst_over_ring": ({"pace": "burst", "burst": TAP_TXQUEUELEN + 1, "every_s": 0.01},
                            ConfigError, "larger than the TX ring"),
        "no_mold": ({"replay": OTHER / "wireshark-dhcp" / "dhcp.pcapng"}, DataError,
                    "no MoldUDP64 datagram"),
        "backwards": ({"pace": "recorded", "dataset": _backwards_feed(tmp_path)}, DataError,
                      "timestamps go backwards at message 101"),
        "capture_backwards": ({"replay": _swapped_capture(tmp_path)}, DataError,
                              "capture times go backwards"),
        "burst_without_every": ({"pace": "burst", "burst": 8}, ConfigError, "every T"),
    }[case]
    with pytest.raises(exc, match=words):
        run(RunSpec(sut="hftos", accel="tcg", out=out, **kw))
    assert not out.exists(), "refused before the run directory (and any build or boot)"


def _swapped_capture(tmp_path):
    """ritch-session.pcap with its first two records swapped: time goes back."""
    raw = SESSION.read_bytes()
    recs, off = [], 24
    while off < len(raw):
        incl = struct.unpack_from("<I", raw, off + 8)[0]
        recs.append(raw[off: off + 16 + incl])
        off += 16 + incl
    recs[0], recs[1] = recs[1], recs[0]
    p = tmp_path / "swapped.pcap"
    p.write_bytes(raw[:24] + b"".join(recs))
    return p


# --- real runs (root) -------------------------------------------------------------

def _check(res, datagrams: int, mode: str) -> dict:
    """Golden-equal orders, replay.parquet with a wire time per datagram, the summary."""
    assert res.status == "ok" and res.info["orders"]["equal"]
    t = pq.read_table(res.run_dir / "replay.parquet")
    assert t.num_rows == datagrams == res.info["replay"]["sent"]
    assert t.column("wire_ns").null_count == 0 and t.column("due_ns").null_count == 0
    w, s = t.column("wire_ns").to_numpy(), t.column("sent_ns").to_numpy()
    # one clock (CLOCK_REALTIME): the wire time lies near the send's return (the
    # tap's qdisc may hold a frame a moment; never a second)
    assert np.all(np.diff(w) >= 0) and np.all(np.abs(w - s) < 1_000_000_000)
    p = json.loads((res.run_dir / "run.json").read_text())["pacing"]
    assert p["mode"] == mode and p["datagrams"] == datagrams and p["error_of"] == "wire"
    e = np.abs(t.column("wire_error_ns").to_numpy())
    err = e if mode != "burst" else None
    if err is not None:
        assert p["error_ns"]["max"] == e.max() and p["late"] == int((t.column("wire_error_ns")
                                                                      .to_numpy() > 10_000).sum())
    assert "## Pacing" in (res.run_dir / "report.md").read_text()
    assert load(res.run_dir, backend="arrow").pacing.equals(t)  # the notebook API's view
    return p


@needs_root
def test_hftos_recorded_then_its_capture_replayed(tmp_path):
    a = run(RunSpec(sut="hftos", accel="tcg", pace="recorded", speed=40_000,
                    out=tmp_path / "recorded"))
    p = _check(a, a.info["replay"]["datagrams"], "recorded")
    assert 0.5 < p["span_s"] < 5 and p["planned_span_s"] == pytest.approx(p["span_s"], rel=0.5)
    # the run's own wire.pcapng, replayed with its recorded spacing: the same orders again
    b = run(RunSpec(sut="hftos", accel="tcg", replay=a.run_dir / "wire.pcapng",
                    out=tmp_path / "again"))
    _check(b, a.info["replay"]["datagrams"], "recorded")
    assert (pq.read_table(b.run_dir / "orders.parquet").drop_columns(["rx_ns"]).equals(
        pq.read_table(a.run_dir / "orders.parquet").drop_columns(["rx_ns"])))
    assert b.info["pacing"]["replay"]["other_mold_packets"] == 0  # the orders are OUCH


@needs_root
def test_hftos_bursts(tmp_path):
    res = run(RunSpec(sut="hftos", accel="tcg", pace="burst", burst=40, every_s=0.05,
                      out=tmp_path / "run"))
    p = _check(res, res.info["replay"]["datagrams"], "burst")
    assert p["burst_span_ns"]["bursts"] == -(-res.info["replay"]["datagrams"] // 40)
    due = pq.read_table(res.run_dir / "replay.parquet").column("due_ns").to_numpy()
    assert len(np.unique(due)) == p["burst_span_ns"]["bursts"]


@needs_root
def test_hftos_replays_a_session_with_retransmission_and_heartbeats(tmp_path):
    res = run(RunSpec(sut="hftos", accel="tcg", replay=SESSION, speed=2, out=tmp_path / "run"))
    _check(res, 80, "recorded")
    assert res.info["orders"]["golden"] == 5 and res.info["counters"]["mold_duplicates"] >= 1


@needs_root
@pytest.mark.parametrize("sut,kw,mode", [
    ("linux-socket", {"replay": SESSION}, "recorded"),
    ("linux-packet", {"pace": "burst", "burst": 16, "every_s": 0.02}, "burst"),
    ("linux-dpdk", {"pace": "recorded", "speed": 40_000, "max_count": 8}, "recorded"),
])
def test_baselines_with_the_new_paces(sut, kw, mode, tmp_path):
    res = run(RunSpec(sut=sut, where="host", out=tmp_path / "run", **kw))
    _check(res, res.info["replay"]["datagrams"], mode)


def test_study_terms_tell_paces_apart():
    """A study groups runs by their terms: runs at different paces are not repetitions."""
    from hftlab.analysis.report import run_terms

    base = {"spec": {"sut": "hftos", "rate_msgs_per_s": None}}
    rec = run_terms({**base, "pacing": {"mode": "recorded", "speed": 2.0}})
    burst = run_terms({**base, "pacing": {"mode": "burst", "burst": 8, "every_s": 0.01}})
    cap = run_terms({**base, "pacing": {"mode": "recorded", "speed": 1.0,
                                        "replay": {"capture": str(SESSION)}}})
    mx = run_terms({**base, "pacing": {"mode": "max"}})
    assert len({rec["rate"], burst["rate"], cap["rate"], mx["rate"]}) == 4
    assert rec["rate"] == "recorded pace x2" and "ritch-session.pcap" in cap["rate"]
    assert run_terms({"spec": {"sut": "hftos", "rate_msgs_per_s": 2e4},
                      "pacing": {"mode": "rate"}})["rate"] == 2e4
