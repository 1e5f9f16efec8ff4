"""The PTPv2 slave of kernel_src/core/ptp.c, host-side through cffi, with
crafted messages from a simulated master: one-step and two-step masters,
lock and accuracy, the mapping never going back, and hostile input (wrong
domain and version, truncated and oversized messages, sequence-ID
mismatches, a master stepping by seconds, a master that disappears)."""
from __future__ import annotations

import random

import pytest

from hftlab._core import ffi, lib
from hftlab.lab.ptp import (PTP_ANNOUNCE, PTP_DELAY_RESP, PTP_FOLLOW_UP, PTP_SYNC,
                            ptp_message)

MASTER = bytes.fromhex("0248465fffe0a001")
OTHER = bytes.fromhex("0248465fffe0b002")
SLAVE_MAC = bytes.fromhex("525400123456")
NS = 1_000_000_000


class Sim:
    """A master and a slave on one simulated wire. True time t (ns); the
    master's clock is t + master_off; the slave's TSC (1 GHz nominal) runs
    at (1 + drift_ppm 1e-6) and starts at tsc0; one-way delay `delay` ns,
    plus uniform jitter of +-jitter ns on each receive stamp."""

    def __init__(self, *, two_step=True, drift_ppm=50.0, delay=5_000, jitter=0, domain=0,
                 hw=True, log_sync=-3, seed=1, cap=4096):
        self.two_step, self.drift, self.delay, self.jitter = two_step, drift_ppm * 1e-6, delay, jitter
        self.master_off = 1_700_000_000 * NS  # PTP time, ~2023
        self.tsc0 = 123_456_789
        self.t = 0
        self.seq = 0
        self.domain = domain
        self.log_sync = log_sync
        self.rng = random.Random(seed)
        cfg = ffi.new("struct ptp_config *")
        cfg.tsc_hz = NS
        lib.ptp_clock_id_from_mac(cfg.clock_id, SLAVE_MAC)
        cfg.domain = domain
        cfg.hw_stamps = hw
        cfg.log_min_delay_req = -3
        self.cfg = cfg
        self.s = ffi.new("struct ptp *")
        self.samples = ffi.new("struct ptp_sample[]", cap)
        lib.ptp_init(self.s, cfg, self.samples, cap)
        self.me = bytes(ffi.buffer(cfg.clock_id, 8)) + b"\0\x01"
        self.pending_req = None

    def tsc(self, t):
        return self.tsc0 + int(t * (1 + self.drift))

    def master(self, t):
        return t + self.master_off

    def rx(self, msg, t_arrive):
        j = self.rng.randint(-self.jitter, self.jitter) if self.jitter else 0
        return lib.ptp_rx(self.s, msg, len(msg), self.tsc(t_arrive + j))

    def announce(self, clock=MASTER, ds=None):
        self.rx(ptp_message(PTP_ANNOUNCE, seq=self.seq, clock_id=clock, domain=self.domain,
                            ts_ns=self.master(self.t), log_interval=0, ds=ds), self.t + self.delay)

    def sync(self, clock=MASTER, follow_seq=None):
        """One Sync (+ Follow_Up), and the Delay_Req exchange if asked for."""
        self.seq += 1
        t1 = self.master(self.t)
        arrive = self.t + self.delay
        if self.two_step:
            act = self.rx(ptp_message(PTP_SYNC, seq=self.seq, clock_id=clock, domain=self.domain,
                                      two_step=True, log_interval=self.log_sync), arrive)
            act |= self.rx(ptp_message(PTP_FOLLOW_UP, seq=self.seq if follow_seq is None else follow_seq,
                                       clock_id=clock, domain=self.domain, ts_ns=t1), arrive + 1000)
        else:
            act = self.rx(ptp_message(PTP_SYNC, seq=self.seq, clock_id=clock, domain=self.domain,
                                      ts_ns=t1, log_interval=self.log_sync), arrive)
        if act & lib.PTP_ACT_DELAY_REQ:
            buf = ffi.new("uint8_t[64]")
            n = lib.ptp_delay_req(self.s, buf, 64)
            req = bytes(buf[0:n])
            t3 = arrive + 20_000
            lib.ptp_delay_req_sent(self.s, self.tsc(t3))
            t4 = self.master(t3 + self.delay)
            resp = ptp_message(PTP_DELAY_RESP, seq=int.from_bytes(req[30:32], "big"), clock_id=clock,
                               domain=self.domain, ts_ns=t4, requesting=req[20:30], log_interval=-3)
            self.rx(resp, t3 + 2 * self.delay + 30_000)
        return act

    def run(self, seconds, interval=NS // 8, announce_every=8):
        n = int(seconds * NS / interval)
        for i in range(n):
            if i % announce_every == 0:
                self.announce()
            self.sync()
            self.t += interval

    def error_ns(self, t=None):
        """The slave's PTP time minus the master's, at true time t."""
        t = self.t if t is None else t
        return lib.ptp_time(self.s, self.tsc(t)) - self.master(t)

    def series(self):
        return [lib.ptp_sample_at(self.s, i)[0]
                for i in range(lib.ptp_samples_count(self.s))]


@pytest.mark.parametrize("two_step", [True, False])
def test_locks_and_tracks(two_step):
    sim = Sim(two_step=two_step, drift_ppm=80.0)
    sim.run(2)  # two Announces qualify the master, then 0.12 s to lock
    assert lib.ptp_state(sim.s, sim.tsc(sim.t)) == lib.PTP_LOCKED
    sim.run(30)
    assert abs(sim.error_ns()) < 200, sim.error_ns()
    assert abs(sim.s.mpd_ns - sim.delay) < 50
    # the frequency correction cancels the TSC's +80 ppm
    assert abs(sim.s.freq_sppb / 65536 + 80_000) < 500
    c = sim.s.c
    assert c.samples > 200 and c.seq_mismatch == 0
    # the first second's Syncs (and Follow_Ups) came before the second
    # Announce qualified the master
    assert c.not_from_master == (16 if two_step else 8)
    assert c.tx_delay_req > 100 and c.delay_resp == c.tx_delay_req


def test_software_constants_wait_for_the_frequency_estimate():
    # linuxptp's software-stamp servo: ki = 0.001 * 0.125^0.4, so the two
    # samples that estimate the frequency are 0.016 / ki = 36.8 s apart
    sim = Sim(hw=False, drift_ppm=80.0)
    sim.run(37)
    assert lib.ptp_state(sim.s, sim.tsc(sim.t)) == lib.PTP_UNCALIBRATED
    sim.run(2)
    assert lib.ptp_state(sim.s, sim.tsc(sim.t)) == lib.PTP_LOCKED
    sim.run(20)
    assert abs(sim.error_ns()) < 500


def test_mapping_never_goes_back_and_jitter_is_filtered():
    sim = Sim(jitter=20_000, drift_ppm=-120.0)
    sim.run(3)
    last = None
    for _ in range(40 * 8):
        sim.run(1 / 8 + 1e-9)
        now = lib.ptp_time(sim.s, sim.tsc(sim.t))
        assert last is None or now >= last
        last = now
    errs = [abs(sim.error_ns(sim.t + k)) for k in range(0, 10_000_000, 1_000_000)]
    assert max(errs) < 20_000, errs
    offs = [x.offset_ns for x in sim.series()[-80:]]
    assert max(abs(o) for o in offs) < 40_000


def test_hardware_constants_converge_faster():
    def samples_to_1us(hw):
        sim = Sim(hw=hw, drift_ppm=100.0)
        sim.run(60)
        series = sim.series()
        for i, x in enumerate(series):
            if x.state == lib.PTP_LOCKED and all(abs(y.offset_ns) < 1000 for y in series[i:]):
                return i
        return len(series)
    assert samples_to_1us(True) < samples_to_1us(False)


def test_hostile_messages_are_counted():
    sim = Sim()
    sim.run(10)
    c0 = ffi.new("struct ptp_counters *", sim.s.c)
    err0 = sim.error_ns()
    good = ptp_message(PTP_SYNC, seq=999, clock_id=MASTER, ts_ns=sim.master(sim.t))
    t = sim.t + sim.delay
    sim.rx(ptp_message(PTP_SYNC, seq=1000, clock_id=MASTER, domain=5, ts_ns=1), t)
    sim.rx(ptp_message(PTP_SYNC, seq=1001, clock_id=MASTER, version=1, ts_ns=1), t)
    sim.rx(good[:20], t)                                   # shorter than a header
    sim.rx(ptp_message(PTP_SYNC, seq=1002, clock_id=MASTER, length=30), t)  # messageLength < Sync's
    sim.rx(ptp_message(PTP_SYNC, seq=1003, clock_id=MASTER, length=4000), t)  # beyond the frame
    sim.rx(ptp_message(PTP_SYNC, seq=1004, clock_id=MASTER, length=1600) + bytes(1600), t)
    sim.rx(ptp_message(PTP_FOLLOW_UP, seq=4242, clock_id=MASTER, ts_ns=1), t)  # no such Sync
    sim.rx(ptp_message(PTP_DELAY_RESP, seq=4242, clock_id=MASTER, ts_ns=1, requesting=sim.me), t)
    sim.rx(ptp_message(PTP_DELAY_RESP, seq=1, clock_id=MASTER, ts_ns=1, requesting=bytes(10)), t)
    sim.rx(ptp_message(PTP_SYNC, seq=1005, clock_id=OTHER, ts_ns=1), t)  # not the selected master
    bad_ns = bytearray(ptp_message(PTP_SYNC, seq=1006, clock_id=MASTER))
    bad_ns[40:44] = (1_500_000_000).to_bytes(4, "big")
    sim.rx(bytes(bad_ns), t)
    c = sim.s.c
    assert c.wrong_domain == c0.wrong_domain + 1
    assert c.wrong_version == c0.wrong_version + 1
    assert c.truncated == c0.truncated + 2
    assert c.oversized == c0.oversized + 2
    assert c.seq_mismatch == c0.seq_mismatch + 2
    assert c.not_for_us == c0.not_for_us + 1
    assert c.not_from_master == c0.not_from_master + 1
    assert c.bad_timestamp == c0.bad_timestamp + 1
    assert c.samples == c0.samples  # nothing of it reached the servo
    # a two-step Sync whose Follow_Up carries another sequenceId
    sim.sync(follow_seq=7)
    assert sim.s.c.seq_mismatch == c0.seq_mismatch + 3
    sim.run(3)
    assert abs(sim.error_ns()) < 1000 and abs(err0) < 1000


def test_random_bytes_do_not_crash():
    sim = Sim()
    sim.run(10)
    rng = random.Random(7)
    base = ptp_message(PTP_ANNOUNCE, seq=1, clock_id=MASTER)
    for _ in range(5000):
        n = rng.randint(0, 80)
        m = bytearray(rng.getrandbits(8) for _ in range(n))
        if n > 34 and rng.random() < 0.5:  # keep a plausible header, random rest
            m[:34] = base[:34]
            m[0] = rng.randint(0, 15)
        lib.ptp_rx(sim.s, bytes(m), len(m), sim.tsc(sim.t))
    sim.run(3)
    assert abs(sim.error_ns()) < 1000


@pytest.mark.parametrize("jump_s", [5, -5])
def test_master_steps_by_seconds(jump_s):
    sim = Sim()
    sim.run(5)
    before = lib.ptp_time(sim.s, sim.tsc(sim.t))
    sim.master_off += jump_s * NS
    last = before
    for _ in range(12 * 8):
        sim.run(1 / 8 + 1e-9)
        now = lib.ptp_time(sim.s, sim.tsc(sim.t))
        assert now >= last  # never back, even when the master went back
        last = now
    c = sim.s.c
    assert c.outliers >= 4 and c.master_steps == 1
    assert c.backward_holds == (1 if jump_s < 0 else 0)
    assert abs(sim.error_ns()) < 1000, sim.error_ns()  # with the master again


def test_master_vanishes_holdover_and_return():
    sim = Sim(drift_ppm=30.0)
    sim.run(20)
    assert lib.ptp_state(sim.s, sim.tsc(sim.t)) == lib.PTP_LOCKED
    sim.t += 10 * NS  # nothing for 10 s
    assert lib.ptp_state(sim.s, sim.tsc(sim.t)) == lib.PTP_HOLDOVER
    assert sim.s.c.holdovers == 1
    assert abs(sim.error_ns()) < 2_000  # the frequency was learned: 10 s of holdover
    sim.run(5)
    assert lib.ptp_state(sim.s, sim.tsc(sim.t)) == lib.PTP_LOCKED
    assert abs(sim.error_ns()) < 500


def test_best_master_from_announce():
    sim = Sim()
    worse = bytes([128, 248, 0xFE, 0xFF, 0xFF, 128]) + MASTER + bytes(2)
    better = bytes([100, 248, 0xFE, 0xFF, 0xFF, 128]) + OTHER + bytes(2)
    sim.announce(MASTER, worse)
    sim.t += NS // 8
    sim.announce(MASTER, worse)
    assert sim.s.best >= 0
    sim.run(2)
    sim.announce(OTHER, better)
    assert sim.s.c.master_changes == 0  # not qualified yet: one Announce
    sim.announce(OTHER, better)
    assert sim.s.c.master_changes == 1
    # Syncs of the old master are now foreign
    n = sim.s.c.not_from_master
    sim.sync(MASTER)
    assert sim.s.c.not_from_master == n + 2  # the Sync and its Follow_Up
    for _ in range(3 * 8):
        sim.sync(OTHER)
        sim.t += NS // 8
    assert lib.ptp_state(sim.s, sim.tsc(sim.t)) == lib.PTP_LOCKED
    # more foreign masters than slots, all worse: unqualified ones are
    # replaced, the selected master stays
    best = sim.s.best
    for _ in range(2):
        for k in range(6):
            sim.announce(bytes([2, 0, 0, 0xFF, 0xFE, 0, 0, k + 10]))
    assert sim.s.best == best and sim.s.c.master_changes == 1


def test_udp_and_l2_carry_the_same_message():
    # the slave takes the message without transport: what the runtime's
    # classifier hands it from Ethernet 0x88F7 or UDP 319/320 is identical
    sim = Sim()
    sim.run(2)
    assert sim.s.c.samples > 5


def _dump(sim) -> bytes:
    out = bytearray()

    @ffi.callback("void(*)(void *, const char *, size_t)")
    def write(ctx, buf, n):
        out.extend(ffi.buffer(buf, n))

    lib.ptp_dump_series(sim.s, write, ffi.NULL)
    return bytes(out)


def test_series_dump_parses_and_bad_blocks_are_refused():
    from hftlab.errors import RunError
    from hftlab.lab.ptp import parse_ptp_series, ptp_summary

    sim = Sim(drift_ppm=40.0)
    sim.run(12)
    dump = _dump(sim)
    t = parse_ptp_series(b"console before\n" + dump, source="test")
    n = lib.ptp_samples_count(sim.s)
    assert t.num_rows == n and t.column("seq_id").to_pylist()[-1] == lib.ptp_sample_at(sim.s, n - 1).seq_id
    assert t.column("servo_state").to_pylist()[-1] == "locked"
    s = ptp_summary(t, NS)
    assert s["lock_s"] is not None and s["lock_s"] < 3 and s["offset_abs_p99_ns"] < 10_000
    with pytest.raises(RunError, match="no @@HFTPTP block"):
        parse_ptp_series(b"nothing here", source="x")
    with pytest.raises(RunError, match="no end line"):
        parse_ptp_series(dump[: len(dump) // 2], source="x")
    bad = bytearray(dump)
    bad[dump.index(b"S ") + 5] ^= 1  # one hex digit of the first sample
    with pytest.raises(RunError, match="CRC"):
        parse_ptp_series(bytes(bad), source="x")


def test_run_spec_refuses_ptp_where_it_cannot_run():
    from hftlab.errors import ConfigError
    from hftlab.experiment.spec import RunSpec

    for kw, what in [(dict(network="dgram"), "tap network only"), (dict(sut="linux-socket"), "tap network only"),
                     (dict(ptp_transport="tcp"), "ptp_transport 'tcp'"), (dict(ptp_domain=200), "ptp_domain 200"),
                     (dict(ptp_log_sync=9), "ptp_log_sync 9"), (dict(ptp_settle_s=-1), "ptp_settle_s")]:
        with pytest.raises(ConfigError, match=what):
            RunSpec(ptp=True, **kw).validate()
