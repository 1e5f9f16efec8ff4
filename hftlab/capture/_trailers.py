"""Hardware timestamps that switches and taps add to Ethernet frames.

Three public formats are decoded into absolute ns since the Unix epoch:

* Metamako / Arista 7130 trailer (Wireshark packet-metamako.c): the last 16
  bytes of the frame, or 20 when a new FCS follows them::

      original FCS (4) | seconds (4, BE) | nanoseconds (4, BE) | flags (1)
      | source device (2, BE) | source port (1) [| new FCS (4)]

* Exablaze / Cisco Nexus 3550 Fusion HPT trailer (Wireshark
  packet-exablaze.c): 16 bytes, optionally followed by an FCS::

      original FCS (4) | device (1) | port (1) | seconds (4, BE)
      | fraction of a second (5, BE, 40-bit binary) | reserved (1)

* Arista EtherType 0xD28B timestamp header (tcpdump print-arista.c): after
  the source MAC, ``0xD28B | subtype 0x0001 | timescale (1) | format<<4 |
  hw info (1) | timestamp`` then the original EtherType. Format 1 is 64-bit
  (u32 seconds, u32 ns), format 2 is 48-bit (u16 seconds, u32 ns). The
  48-bit seconds are completed from the capture time (nearest 65536-second
  window); timescale 0 is TAI, 1 is UTC (kept in ``trailer_kind``).

A trailer is not announced in the frame, so trailer detection follows
Wireshark's heuristics: the timestamp must have ns < 1e9 and lie within a
window of the capture timestamp (30 days for Metamako, 7 for Exablaze).
The 32-bit counter stamps (Arista 7150, ExaLINK Fusion fcs/append modes)
need keyframes to become times; they are decoded by _keyframes.py in a
second pass (``trailer="arista7150"`` / ``"fusion"``, and under ``"auto"``).
"""
from __future__ import annotations

import numpy as np

from hftlab.capture._bytes import be16, be32
from hftlab.capture._jit import jit

# trailer modes (the `trailer=` argument of read())
# (modes 4 and 5, the keyframe-based counters, are decoded by _keyframes.py)
TRL_NONE, TRL_METAMAKO, TRL_EXABLAZE, TRL_AUTO, TRL_ARISTA7150, TRL_FUSION = 0, 1, 2, 3, 4, 5
TRAILER_MODES = {None: TRL_NONE, "none": TRL_NONE, "metamako": TRL_METAMAKO,
                 "arista7130": TRL_METAMAKO, "exablaze": TRL_EXABLAZE, "auto": TRL_AUTO,
                 "arista7150": TRL_ARISTA7150, "fusion": TRL_FUSION}
KEYFRAME_MODES = (TRL_AUTO, TRL_ARISTA7150, TRL_FUSION)

# trailer_kind codes (column values); 0 = none
KIND_METAMAKO, KIND_EXABLAZE, KIND_ARISTA_TAI, KIND_ARISTA_UTC = 1, 2, 3, 4
TRAILER_KINDS = ["", "metamako", "exablaze_hpt", "arista_d28b_tai", "arista_d28b_utc",
                 "arista7150", "arista7150_keyframe", "fusion", "fusion_keyframe"]

METAMAKO_WINDOW_S = 2592000   # packet-metamako.c: 30 days
EXABLAZE_WINDOW_S = 604800    # packet-exablaze.c: one week
NS = 1_000_000_000


@jit(inline=True)
def _near(sec, cap_sec, window):
    if window < 0:
        return True
    d = sec - cap_sec
    return -window <= d <= window


@jit()
def metamako_at(b, t, cap_sec, window, out):
    """Try a Metamako trailer starting at byte t; fill out[0..3] =
    (ts_ns, device, port, flags) and return True when it is plausible."""
    sec = be32(b, t + 4)
    ns = be32(b, t + 8)
    if sec == 0 or ns >= NS or not _near(sec, cap_sec, window):
        return False
    out[0] = sec * NS + ns
    out[1] = be16(b, t + 13)
    out[2] = b[t + 15]
    out[3] = b[t + 12]
    return True


@jit()
def exablaze_at(b, t, cap_sec, window, out):
    """Try an Exablaze HPT trailer at byte t (see the module docstring)."""
    sec = be32(b, t + 6)
    if not _near(sec, cap_sec, window):
        return False
    frac = (be32(b, t + 10) << 8) | np.int64(b[t + 14])      # 40-bit fraction
    # floor(frac * 1e9 / 2**40) without overflowing int64: split frac at bit 20
    hi = frac >> 20
    lo = frac & 0xFFFFF
    out[0] = sec * NS + ((hi * NS + ((lo * NS) >> 20)) >> 20)
    out[1] = b[t + 4]
    out[2] = b[t + 5]
    out[3] = 0
    return True


@jit()
def find_trailer(b, start, end, l3_end, cap_sec, mode, window, out):
    """Look for a trailer in the frame bytes [start, end). l3_end is where the
    IP packet ends (-1 when unknown): a trailer never starts before it.
    Returns the trailer kind (0 = none) and fills out."""
    lo = l3_end if l3_end >= 0 else start
    if mode == TRL_METAMAKO or mode == TRL_AUTO:
        w = METAMAKO_WINDOW_S if window == -2 else window
        for fcs in (0, 4):
            t = end - fcs - 16
            if t >= lo and metamako_at(b, t, cap_sec, w, out):
                return KIND_METAMAKO
    if mode == TRL_EXABLAZE or mode == TRL_AUTO:
        w = EXABLAZE_WINDOW_S if window == -2 else window
        for fcs in (0, 4):
            t = end - fcs - 16
            if t >= lo and exablaze_at(b, t, cap_sec, w, out):
                return KIND_EXABLAZE
    return 0


@jit()
def arista_header(b, p, end, cap_sec, out):
    """Decode an Arista 0xD28B header whose subtype starts at p.
    Returns the number of bytes it occupies before the original EtherType
    (0 when it is not a timestamp header we know) and fills out."""
    if p + 4 > end or be16(b, p) != 0x0001:
        return 0
    timescale = b[p + 2]
    fmt = b[p + 3] >> 4
    if fmt == 1 and p + 12 <= end:
        sec = be32(b, p + 4)
        ns = be32(b, p + 8)
        size = 12
    elif fmt == 2 and p + 10 <= end:
        s16 = be16(b, p + 4)
        ns = be32(b, p + 6)
        d = (s16 - cap_sec) & 0xFFFF          # nearest second with these low 16 bits
        if d >= 0x8000:
            d -= 0x10000
        sec = cap_sec + d
        size = 10
    else:
        return 0
    out[0] = sec * NS + ns
    out[1] = 0
    out[2] = 0
    out[3] = b[p + 3] & 0x0F                  # hw info
    return size if timescale <= 1 else 0
