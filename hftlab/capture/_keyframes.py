"""Counter timestamps that need keyframes: Arista 7150 and ExaLINK Fusion.

These devices stamp each frame with a free-running tick counter (4 bytes)
and, about once a second, send a *keyframe* pairing a counter value with a
UTC time. A stamp becomes UTC by extrapolating from the last keyframe::

    utc = keyframe.utc + (stamp - keyframe.counter) * tick_ns

Stamp positions (per egress port, both vendors): the 4 bytes replace the FCS
(Arista ``mac timestamp replace-fcs``; Fusion ``fcs``, ``fcs-compat``) or sit
between the payload and a recomputed FCS (Arista ``before-fcs``; Fusion
``append``, ``append-compat``). Which one a capture holds (and whether the
capturing NIC kept the FCS) is read from each keyframe: its own 4-byte slot is
sent as zero, so when the frame's last 4 bytes are a valid CRC-32 of the rest
the stamp is 8 bytes from the end, otherwise 4.

Stamp encodings
* Arista 7150, and Fusion "-compat" modes: a 31-bit counter of a 350 MHz
  clock (tick 20/7 ns) stored in 32 bits with bit 7 left out (always 0):
  ``ticks = (raw >> 8) << 7 | (raw & 0x7F)``; it wraps every ~6.1 s.
* Fusion ``fcs`` / ``append``: the low 32 bits of the counter, tick
  1e9 / keyframe.frequency ns (350 MHz, ~2.86 ns); wraps every ~12.3 s.

Keyframes (all fields big-endian)
* Arista 7150 (EOS ``platform fm6000 keyframe``): IPv4, protocol 253, TTL 64,
  46 bytes: asic_time u64 | utc_ns u64 | last_sync u64 | keyframe_ts u64 |
  drops u64 | device u16 | egress_if u16 | fcs_type u8 | reserved u8; with
  ``fields skew`` 62 bytes: skew numerator u64 and denominator u64 follow
  last_sync, and the tick is 20/7 * num / den ns.
* Fusion compat: the 62-byte layout above from 0.0.0.0 to 255.255.255.255.
* Fusion: EtherType 0x88B5 (or IPv4 protocol 253, 40 bytes): magic "EXKF" |
  version 1 | 3 reserved (or the older magic 01 00 00 00, version 0) |
  utc_ns u64 | counter u64 | frequency_hz u64 | last_sync u64.

Decoding (`decode_counter_trailers`, one numba pass per batch, packets in
capture order, the state carried across batches per capture interface):
* packets before the first keyframe of their interface get null, not garbage;
  so do truncated frames (caplen < origlen: the stamp was cut off) and frames
  more than KEYFRAME_MAX_AGE_S of capture time from their keyframe;
* the counter difference to the keyframe is taken modulo the wrap, as a signed
  value (a frame stamped just before the keyframe it follows is negative);
  when keyframes were missing for more than a quarter wrap, the number of wraps
  is chosen from the capture clock instead;
* the tick is measured from the last two keyframes (UTC difference over
  counter difference) when that agrees with the nominal tick within
  RATE_TOLERANCE; otherwise (first keyframe, UTC step) the nominal one is used.
  Measured Fusion counters run up to ~500 ppm off nominal, so this matters.
* keyframe rows get kind ``*_keyframe`` and the UTC the keyframe states (the
  time of its counter sample, not of its own arrival; an Arista keyframe is
  sent about one keyframe period after it);
* a keyframe whose UTC is further than the trailer window from the capture
  clock (``trailer_window_s``, default one week; None: no limit) is ignored;
* ``trailer_device`` is the keyframe's device id (Arista layouts) and
  ``trailer_port`` stays null (a stamp does not say its ingress port).

`trailer="auto"` enables a keyframe only when it shows the stamp slot in its
own frame: an IPv4 keyframe followed by exactly 4 bytes (or 4 + a valid FCS)
of zeros, or a Fusion 0x88B5 keyframe with the "EXKF" magic; Arista-encoded
stamps with bit 7 set are rejected. Explicit modes trust the user: any
keyframe of their vendor's layouts enables decoding on its interface.
"""
from __future__ import annotations

import numpy as np

from hftlab.capture._bytes import be16, be32
from hftlab.capture._jit import form, jit

NS = 1_000_000_000
ETH_KEYFRAME = 0x88B5
IP_PROTO_KEYFRAME = 253
KEYFRAME_MAX_AGE_S = 10          # capture time a keyframe stays usable
RATE_TOLERANCE = 1e-3            # measured tick vs nominal (1000 ppm)
ARISTA_TICK_NS = 20.0 / 7.0      # 350 MHz
DEFAULT_KEYFRAME_WINDOW_S = 604800

# modes (values shared with _trailers.TRAILER_MODES)
MODE_AUTO, MODE_ARISTA7150, MODE_FUSION = 3, 4, 5
# trailer_kind codes (index into _trailers.TRAILER_KINDS)
KIND_ARISTA7150, KIND_ARISTA7150_KF, KIND_FUSION, KIND_FUSION_KF = 5, 6, 7, 8

# state columns (int64 table, one row per capture interface)
S_VALID, S_COUNTER, S_UTC, S_CAP, S_BITS, S_PACKED, S_OFFSET, S_DEVICE, S_KIND, \
    S_PREV_OK, S_PREV_COUNTER, S_PREV_UTC, S_PREV_CAP, S_PREV_BITS = range(14)
N_STATE = 14
# float64 table: effective tick (ns), nominal tick (ns)
F_TICK, F_NOMINAL = 0, 1

F_TRAILER = 8192      # _decode.F_TRAILER
TS_NULL = np.iinfo(np.int64).min   # _table.TS_NULL: no capture timestamp


def _crc_table() -> np.ndarray:
    """CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) byte table."""
    t = np.zeros(256, np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        t[i] = c
    return t


CRC_TABLE = _crc_table()


@jit()
def fcs_ok(b, s, end, table):
    """True when the last 4 bytes of frame [s, end) are its Ethernet FCS."""
    if end - s < 18:
        return False
    c = np.uint32(0xFFFFFFFF)
    for k in range(s, end - 4):
        c = table[(c ^ np.uint32(b[k])) & np.uint32(0xFF)] ^ (c >> np.uint32(8))
    c = c ^ np.uint32(0xFFFFFFFF)
    got = (np.uint32(b[end - 4]) | (np.uint32(b[end - 3]) << np.uint32(8))
           | (np.uint32(b[end - 2]) << np.uint32(16)) | (np.uint32(b[end - 1]) << np.uint32(24)))
    return c == got


@jit(inline=True)
def _u64(b, o):
    """Big-endian u64 kept in int64 (the values used here stay below 2**63)."""
    return (be32(b, o) << 32) | be32(b, o + 4)


@jit(inline=True)
def _zero4(b, o):
    return b[o] == 0 and b[o + 1] == 0 and b[o + 2] == 0 and b[o + 3] == 0


@jit()
def _keyframe(b, s, end, mode, kf, kft):
    """Recognise a keyframe in Ethernet frame [s, end). Fills kf = (utc,
    counter, bits, packed, device, kind, slot_seen) and kft[0] = the nominal
    tick in ns; returns True when it is a keyframe this mode accepts."""
    p = s + 12
    for _ in range(2):                                    # 802.1Q / QinQ tags
        if p + 4 <= end:
            t = be16(b, p)
            if t == 0x8100 or t == 0x88A8 or t == 0x9100:
                p += 4
    if p + 2 > end:
        return False
    et = be16(b, p)
    p += 2
    body = -1
    blen = 0
    slot = False
    compat_addr = False
    if et == ETH_KEYFRAME:
        if mode == MODE_ARISTA7150:
            return False
        body, blen = p, end - p
        slot = True
    elif et == 0x0800 and p + 20 <= end and (b[p] >> 4) == 4:
        ihl = (b[p] & 0x0F) * 4
        if b[p + 9] != IP_PROTO_KEYFRAME or b[p + 8] != 64 or ihl < 20 or (be16(b, p + 6) & 0x3FFF):
            return False
        l3_end = p + be16(b, p + 2)
        if l3_end > end:
            return False
        body, blen = p + ihl, l3_end - p - ihl
        compat_addr = be32(b, p + 12) == 0 and be32(b, p + 16) == 0xFFFFFFFF
        tail = end - l3_end
        slot = (tail == 4 or tail == 8) and _zero4(b, l3_end)
    else:
        return False
    if blen >= 40 and (blen == 40 or et == ETH_KEYFRAME):
        # Fusion keyframe: "EXKF" v1, or the older 01 00 00 00 v0
        v1 = b[body] == 0x45 and b[body + 1] == 0x58 and b[body + 2] == 0x4B and b[body + 3] == 0x46 \
            and b[body + 4] == 1
        v0 = b[body] == 1 and b[body + 1] == 0 and b[body + 2] == 0 and b[body + 3] == 0 and b[body + 4] == 0
        if not (v1 or v0) or mode == MODE_ARISTA7150:
            return False
        if mode == MODE_AUTO and not v1 and et == ETH_KEYFRAME:
            return False
        freq = _u64(b, body + 24)
        if freq < 1_000_000 or freq > 10_000_000_000:
            return False
        kf[0] = _u64(b, body + 8)
        kf[1] = _u64(b, body + 16)
        kf[2] = 32
        kf[3] = 0
        kf[4] = -1
        kf[5] = KIND_FUSION
        kf[6] = 1 if slot else 0
        kft[0] = NS / freq
        return True
    if blen == 62 or blen == 46:
        num, den = 1, 1
        if blen == 62:
            num, den = _u64(b, body + 24), _u64(b, body + 32)
            if num <= 0 or den <= 0 or num > 2 * den or 2 * num < den:
                return False
        dev = be16(b, body + blen - 6)
        kf[0] = _u64(b, body + 8)
        kf[1] = _u64(b, body)
        kf[2] = 31
        kf[3] = 1
        kf[4] = dev
        if mode == MODE_ARISTA7150:
            kf[5] = KIND_ARISTA7150
        elif mode == MODE_FUSION:
            kf[5] = KIND_FUSION
        else:
            kf[5] = KIND_FUSION if compat_addr else KIND_ARISTA7150
        kf[6] = 1 if slot else 0
        kft[0] = ARISTA_TICK_NS * num / den
        return True
    return False


@jit()
def decode_counter_trailers(b, off, cap, orig, lt, ts, iface, n, mode, window,
                            state, ftick, crc_table, flags, trailer, trailer_kind):
    """One pass over a batch (see the module docstring). `state`/`ftick` are
    the per-interface keyframe state, updated in place. Only Ethernet frames
    without another trailer are looked at."""
    kf = np.zeros(7, np.int64)
    kft = np.zeros(1, np.float64)
    for i in range(n):
        if lt[i] != 1 or (flags[i] & F_TRAILER) or ts[i] == TS_NULL:
            continue
        s = off[i]
        end = s + cap[i]
        if end - s < 18:
            continue
        j = iface[i]
        if _keyframe(b, s, end, mode, kf, kft):
            utc, cap_sec = kf[0], ts[i] // NS
            if window >= 0 and abs(utc // NS - cap_sec) > window:
                continue
            if mode == MODE_AUTO and kf[6] == 0:
                continue
            bits = kf[2]
            mask = (np.int64(1) << bits) - 1
            counter = kf[1] & mask
            nominal = kft[0]
            tick = nominal
            if state[j, S_VALID]:
                state[j, S_PREV_OK] = 1
                state[j, S_PREV_COUNTER] = state[j, S_COUNTER]
                state[j, S_PREV_UTC] = state[j, S_UTC]
                state[j, S_PREV_CAP] = state[j, S_CAP]
                state[j, S_PREV_BITS] = state[j, S_BITS]
            if state[j, S_PREV_OK] and state[j, S_PREV_BITS] == bits:
                dc = (counter - state[j, S_PREV_COUNTER]) & mask
                du = utc - state[j, S_PREV_UTC]
                gap = ts[i] - state[j, S_PREV_CAP]
                wrap_ns = (mask + 1) * nominal
                if dc > 0 and du > 0 and 0 <= gap < wrap_ns / 2:
                    measured = du / dc
                    if abs(measured / nominal - 1.0) < RATE_TOLERANCE:
                        tick = measured
            # where the stamp sits: the keyframe's own slot is zero, so a valid
            # FCS at the end means "stamp, then FCS"
            offset = state[j, S_OFFSET] if state[j, S_VALID] else 4
            if cap[i] == orig[i]:
                offset = 8 if fcs_ok(b, s, end, crc_table) else 4
            state[j, S_VALID] = 1
            state[j, S_COUNTER] = counter
            state[j, S_UTC] = utc
            state[j, S_CAP] = ts[i]
            state[j, S_BITS] = bits
            state[j, S_PACKED] = kf[3]
            state[j, S_OFFSET] = offset
            state[j, S_DEVICE] = kf[4]
            state[j, S_KIND] = kf[5]
            ftick[j, F_TICK] = tick
            ftick[j, F_NOMINAL] = nominal
            trailer[0, i] = utc
            trailer[1, i] = kf[4]
            trailer[2, i] = -1
            trailer[3, i] = 0
            trailer_kind[i] = kf[5] + 1                       # the *_keyframe kind
            flags[i] |= F_TRAILER
            continue
        if not state[j, S_VALID] or cap[i] != orig[i]:
            continue
        o = end - state[j, S_OFFSET]
        if o < s + 14:
            continue
        raw = be32(b, o)
        bits = state[j, S_BITS]
        if state[j, S_PACKED]:
            if mode == MODE_AUTO and (raw & 0x80):
                continue
            raw = ((raw >> 8) << 7) | (raw & 0x7F)
        modulus = np.int64(1) << bits
        d = (raw - state[j, S_COUNTER]) & (modulus - 1)
        tick = ftick[j, F_TICK]
        gap = ts[i] - state[j, S_CAP]
        wrap_ns = modulus * tick
        if abs(gap) <= wrap_ns / 4:
            if d >= modulus // 2:
                d -= modulus
        elif abs(gap) <= KEYFRAME_MAX_AGE_S * NS:
            # keyframes missing for a while: count the wraps with the capture clock
            d += np.int64(np.round((gap / tick - d) / modulus)) * modulus
        else:
            continue
        trailer[0, i] = state[j, S_UTC] + np.int64(np.round(d * tick))
        trailer[1, i] = state[j, S_DEVICE]
        trailer[2, i] = -1
        trailer[3, i] = 0
        trailer_kind[i] = state[j, S_KIND]
        flags[i] |= F_TRAILER


class KeyframeState:
    """Keyframe state of one capture reader, per global interface index;
    carried from batch to batch so streaming gives the same result as
    reading the whole file at once."""

    def __init__(self) -> None:
        self.state = np.zeros((1, N_STATE), np.int64)
        self.ftick = np.zeros((1, 2), np.float64)

    def _grow(self, k: int) -> None:
        if k > len(self.state):
            st = np.zeros((k, N_STATE), np.int64)
            ft = np.zeros((k, 2), np.float64)
            st[:len(self.state)] = self.state
            ft[:len(self.ftick)] = self.ftick
            self.state, self.ftick = st, ft

    def run(self, buf, idx: dict, lay, mode: int, window: int, use_numba: bool = True) -> None:
        n = len(idx["ts"])
        if not n:
            return
        iface = idx["iface"]
        self._grow(int(iface.max()) + 1)
        w = DEFAULT_KEYFRAME_WINDOW_S if window == -2 else window
        form(decode_counter_trailers, use_numba)(buf, idx["off"], idx["cap"], idx["orig"], idx["lt"], idx["ts"], iface, n,
                                mode, w, self.state, self.ftick, CRC_TABLE, lay.flags, lay.trailer,
                                lay.trailer_kind)
