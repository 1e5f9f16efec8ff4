"""The per-packet decoder: link layer to application, one numba loop per batch.

Input: the mapped file and, per packet, where its captured bytes start, how
many there are, its link type and its timestamp. Output: one value per packet
in preallocated arrays (the `Layers` holder), plus a `flags` word saying which
of them are present; `_table.py` turns these into Arrow columns with nulls.

Stages for each packet (each stops quietly when the bytes run out, leaving the
later columns null; a short packet is data, not an error):
  1. link header: Ethernet II (1), Linux SLL (113) and SLL2 (276), raw IP
     (101, 12, 14, 228, 229), BSD loopback (0, 108);
  2. tags: 802.1Q / 802.1ad / QinQ (outer id -> vlan, next -> vlan_inner),
     Arista 0xD28B timestamp header, MPLS label stack;
  3. IPv4 (first fragment only for L4) or IPv6 (with extension headers);
  4. UDP / TCP ports and the payload offset;
  5. application: PTPv2 (EtherType 0x88F7, UDP 319/320), OUCH 4.2 Enter Order
     (49 bytes, 'O', hex token), MoldUDP64 (header + blocks fill the datagram);
  6. trailers (see _trailers.py).
"""
from __future__ import annotations

import numpy as np

from hftlab.capture._bytes import be16, be32, be64s, be64u, le32
from hftlab.capture._jit import form, jit
from hftlab.capture._trailers import KIND_ARISTA_TAI, KIND_ARISTA_UTC, arista_header, find_trailer

# flags bits: which columns of a packet are present
F_ETH_DST, F_ETH_SRC, F_ETHERTYPE, F_VLAN, F_VLAN2 = 1, 2, 4, 8, 16
F_IP, F_L4, F_PAYLOAD, F_MOLD, F_OUCH = 32, 64, 128, 256, 512
F_PTP, F_PTP_TS, F_PTP_REQ, F_TRAILER, F_FRAGMENT = 1024, 2048, 4096, 8192, 16384

APP_NONE, APP_MOLD, APP_OUCH, APP_PTP = 0, 1, 2, 3
APP_NAMES = ["", "moldudp64", "ouch", "ptp"]

ETH_IPV4, ETH_IPV6, ETH_PTP, ETH_ARISTA = 0x0800, 0x86DD, 0x88F7, 0xD28B
ETH_MPLS, ETH_MPLS_MC = 0x8847, 0x8848
PTP_EVENT_PORT, PTP_GENERAL_PORT = 319, 320
MOLD_HEADER = 20          # session (10) + sequence (8) + count (2)
OUCH_ENTER_LEN = 49       # OUCH 4.2 Enter Order
OUCH_REPLACE_LEN = 47     # Replace Order (a quoting strategy, kernel_src/core/strategy.h)
OUCH_CANCEL_LEN = 19      # Cancel Order
NS = 1_000_000_000

# link types we decode (LINKTYPE_* values of the tcpdump.org registry)
LT_NULL, LT_ETHERNET, LT_RAW, LT_LOOP, LT_SLL, LT_IPV4, LT_IPV6, LT_SLL2 = 0, 1, 101, 108, 113, 228, 229, 276
DECODED_LINKTYPES = {0: "NULL", 1: "ETHERNET", 12: "RAW", 14: "RAW", 101: "RAW", 108: "LOOP",
                     113: "LINUX_SLL", 228: "IPV4", 229: "IPV6", 276: "LINUX_SLL2"}


class Layers:
    """Per-packet output arrays of one batch. Two-dimensional ones are
    (field, packet) so each field is contiguous and becomes an Arrow buffer
    without a copy. Only `flags`, `app` and `trailer_kind` are written for
    every packet; the other values are defined where `flags` says so."""

    def __init__(self, n: int) -> None:
        e = np.empty
        self.flags = e(n, np.uint32)
        self.eth = e((2, n, 6), np.uint8)          # dst, src
        self.ipaddr = e((2, n, 16), np.uint8)      # src, dst
        self.ethertype = e(n, np.uint16)
        self.vlan = e((2, n), np.uint16)
        self.ip = e((2, n), np.uint8)              # version, protocol
        self.ports = e((2, n), np.uint16)
        self.payload = e((2, n), np.int32)         # offset, length
        self.app = e(n, np.uint8)
        self.mold_session = e((n, 10), np.uint8)
        self.mold = e((2, n), np.uint64)           # sequence, count
        self.ptp_small = e((10, n), np.int32)      # see _table.ptp_table
        self.ptp_big = e((4, n), np.int64)         # correction, origin ns, clock id, req clock id
        self.trailer = e((4, n), np.int64)         # ts_ns, device, port, flags
        self.trailer_kind = e(n, np.uint8)

    def run(self, buf, off, cap, lt, ts, n, mold_ports, trailer_mode, trailer_window, use_numba=True):
        form(decode_layers, use_numba)(buf, off, cap, lt, ts, n, mold_ports, trailer_mode, trailer_window,
                      self.flags, self.eth, self.ipaddr, self.ethertype, self.vlan, self.ip, self.ports,
                      self.payload, self.app, self.mold_session, self.mold, self.ptp_small,
                      self.ptp_big, self.trailer, self.trailer_kind)


@jit(inline=True)
def _ptp(b, q, end, i, small, big):
    """PTPv2 common header (IEEE 1588-2008 13.3) at q; the body timestamp
    (13.5-13.11) and requestingPortIdentity where the type has them."""
    if q + 34 > end or (b[q + 1] & 0x0F) != 2:
        return 0
    mt = b[q] & 0x0F
    small[0, i] = mt
    small[1, i] = b[q] >> 4                  # transportSpecific / majorSdoId
    small[2, i] = b[q + 1] & 0x0F            # versionPTP
    small[3, i] = b[q + 1] >> 4              # minorVersionPTP
    small[4, i] = b[q + 4]                   # domainNumber
    small[5, i] = be16(b, q + 6)             # flagField
    small[6, i] = be16(b, q + 28)            # sourcePortIdentity.portNumber
    small[7, i] = be16(b, q + 30)            # sequenceId
    lmi = np.int32(b[q + 33])
    small[8, i] = lmi - 256 if lmi > 127 else lmi
    big[0, i] = be64s(b, q + 8)              # correctionField, ns * 2**16
    big[2, i] = np.int64(be64u(b, q + 20))   # clockIdentity (bit pattern)
    f = 0
    # Sync 0, Delay_Req 1, Pdelay_Req 2, Pdelay_Resp 3, Follow_Up 8, Delay_Resp 9,
    # Pdelay_Resp_Follow_Up 0xA, Announce 0xB: a 10-byte timestamp opens the body
    if (mt <= 3 or 8 <= mt <= 0xB) and q + 44 <= end:
        sec = (be16(b, q + 34) << 32) | be32(b, q + 36)
        ns = be32(b, q + 40)
        if sec < 9_000_000_000:
            big[1, i] = sec * NS + ns
            f |= F_PTP_TS
    if (mt == 3 or mt == 9 or mt == 0xA) and q + 54 <= end:
        big[3, i] = np.int64(be64u(b, q + 44))
        small[9, i] = be16(b, q + 52)
        f |= F_PTP_REQ
    return F_PTP | f


@jit(inline=True)
def _mold(b, q, end, ports, sport, dport):
    """True when the UDP payload [q, end) is exactly a MoldUDP64 packet:
    header, then `count` length-prefixed message blocks filling it."""
    if ports.size:
        hit = False
        for k in range(ports.size):
            if ports[k] == dport or ports[k] == sport:
                hit = True
        if not hit:
            return False
    n = end - q
    if n < MOLD_HEADER:
        return False
    count = be16(b, q + 18)
    if count == 0 or count == 0xFFFF:       # heartbeat / end of session: header only
        return n == MOLD_HEADER
    r = q + MOLD_HEADER
    for _ in range(count):
        if r + 2 > end:
            return False
        r += 2 + be16(b, r)
    return r == end


@jit(inline=True)
def _ouch(b, q, end):
    n = end - q                                     # Enter 'O', Replace 'U', Cancel 'X'
    if not ((n == OUCH_ENTER_LEN and b[q] == 79) or (n == OUCH_REPLACE_LEN and b[q] == 85)
            or (n == OUCH_CANCEL_LEN and b[q] == 88)):
        return False
    for k in range(q + 1, q + 15):                  # hftlab tokens are hex
        c = b[k]
        if not (48 <= c <= 57 or 65 <= c <= 70 or 97 <= c <= 102):
            return False
    return True


@jit(inline=True)
def _link(b, s, end, lt, i, eth):
    """Link header at s. Returns (position of the network header, EtherType
    or -1, flags)."""
    f = 0
    if lt == LT_ETHERNET:
        if end - s < 14:
            return s, -1, 0
        for k in range(6):
            eth[0, i, k] = b[s + k]
            eth[1, i, k] = b[s + 6 + k]
        return s + 12, -2, F_ETH_DST | F_ETH_SRC      # -2: EtherType field at p
    if lt == LT_SLL:
        if end - s < 16:
            return s, -1, 0
        if be16(b, s + 2) == 1 and be16(b, s + 4) == 6:   # ARPHRD_ETHER, 6-byte address
            for k in range(6):
                eth[1, i, k] = b[s + 6 + k]
            f = F_ETH_SRC
        return s + 14, -2, f
    if lt == LT_SLL2:
        if end - s < 20:
            return s, -1, 0
        if be16(b, s + 8) == 1 and b[s + 11] == 6:
            for k in range(6):
                eth[1, i, k] = b[s + 12 + k]
            f = F_ETH_SRC
        return s + 20, be16(b, s), f
    if lt == LT_RAW or lt == 12 or lt == 14 or lt == LT_IPV4 or lt == LT_IPV6:
        if end - s < 1:
            return s, -1, 0
        v = b[s] >> 4
        return s, ETH_IPV4 if v == 4 else (ETH_IPV6 if v == 6 else -1), 0
    if lt == LT_NULL or lt == LT_LOOP:
        if end - s < 4:
            return s, -1, 0
        fam = be32(b, s) if lt == LT_LOOP else le32(b, s)
        if lt == LT_NULL and fam > 0xFFFF:              # written on a big-endian host
            fam = be32(b, s)
        et = ETH_IPV4 if fam == 2 else (ETH_IPV6 if fam == 10 or fam == 24 or fam == 28 or fam == 30 else -1)
        return s + 4, et, 0
    return s, -1, 0


@jit(inline=True)
def _ipv6(b, p, end, i, ipaddr, ip):
    """IPv6 header at p; walks extension headers. Returns (L4 start or -1,
    protocol, end of the IP packet)."""
    for k in range(16):
        ipaddr[0, i, k] = b[p + 8 + k]
        ipaddr[1, i, k] = b[p + 24 + k]
    nh = b[p + 6]
    l3_end = p + 40 + be16(b, p + 4)
    q = p + 40
    for _ in range(8):
        if nh == 0 or nh == 43 or nh == 60:           # hop-by-hop, routing, destination
            if q + 8 > end:
                return -1, nh, l3_end
            nh, q = b[q], q + 8 + 8 * b[q + 1]
        elif nh == 44:                                # fragment
            if q + 8 > end:
                return -1, nh, l3_end
            frag_off = be16(b, q + 2) >> 3
            nh, q = b[q], q + 8
            if frag_off:
                ip[1, i] = nh
                return -2, nh, l3_end
        elif nh == 51:                                # authentication header
            if q + 8 > end:
                return -1, nh, l3_end
            nh, q = b[q], q + 8 + 4 * b[q + 1]
        else:
            break
    return q, nh, l3_end


@jit()
def decode_layers(b, off, cap, lt, ts, n, mold_ports, trailer_mode, trailer_window,
                  flags, eth, ipaddr, ethertype, vlan, ip, ports, payload, app,
                  mold_session, mold, ptp_small, ptp_big, trailer, trailer_kind):
    tr = np.zeros(4, np.int64)
    for i in range(n):
        s = off[i]
        end = s + cap[i]
        cap_sec = ts[i] // NS
        app[i] = APP_NONE
        trailer_kind[i] = 0
        # 1. link layer
        p, et, f = _link(b, s, end, lt[i], i, eth)
        # 2. tags carried as EtherTypes
        nv = 0
        if et == -2:
            et = -1
            while p + 2 <= end:
                t = be16(b, p)
                p += 2
                if (t == 0x8100 or t == 0x88A8 or t == 0x9100) and p + 2 <= end:
                    if nv < 2:
                        vlan[nv, i] = be16(b, p) & 0x0FFF
                        f |= F_VLAN if nv == 0 else F_VLAN2
                    nv += 1
                    p += 2
                elif t == ETH_ARISTA:
                    size = arista_header(b, p, end, cap_sec, tr)
                    if size == 0:
                        et = t
                        break
                    trailer[0, i] = tr[0]
                    trailer[3, i] = tr[3]
                    trailer_kind[i] = KIND_ARISTA_UTC if b[p + 2] == 1 else KIND_ARISTA_TAI
                    f |= F_TRAILER
                    p += size
                else:
                    et = t
                    break
        if et >= 0x0600:                              # below: an 802.3 length field
            ethertype[i] = et
            f |= F_ETHERTYPE
        if et == ETH_MPLS or et == ETH_MPLS_MC:       # label stack, then IP by version
            while p + 4 <= end and not (b[p + 2] & 1):
                p += 4
            p += 4
            et = -1
            if p < end:
                v = b[p] >> 4
                et = ETH_IPV4 if v == 4 else (ETH_IPV6 if v == 6 else -1)
        # 3. network layer
        q = -1
        proto = -1
        l3_end = -1
        if et == ETH_IPV4 and p + 20 <= end and (b[p] >> 4) == 4:
            ihl = (b[p] & 0x0F) * 4
            proto = b[p + 9]
            ip[0, i] = 4
            ip[1, i] = proto
            for a in range(2):                        # IPv4-mapped IPv6 ::ffff:a.b.c.d
                for k in range(10):
                    ipaddr[a, i, k] = 0
                ipaddr[a, i, 10] = 0xFF
                ipaddr[a, i, 11] = 0xFF
                for k in range(4):
                    ipaddr[a, i, 12 + k] = b[p + 12 + 4 * a + k]
            f |= F_IP
            l3_end = p + be16(b, p + 2)
            if be16(b, p + 6) & 0x1FFF:
                f |= F_FRAGMENT
            elif ihl >= 20:
                q = p + ihl
        elif et == ETH_IPV6 and p + 40 <= end and (b[p] >> 4) == 6:
            ip[0, i] = 6
            f |= F_IP
            q, proto, l3_end = _ipv6(b, p, end, i, ipaddr, ip)
            ip[1, i] = proto
            if q == -2:
                f |= F_FRAGMENT
                q = -1
        elif et == ETH_PTP:
            pf = _ptp(b, p, end, i, ptp_small, ptp_big)
            if pf:
                f |= pf
                app[i] = APP_PTP
                payload[0, i] = p - s
                payload[1, i] = end - p
                f |= F_PAYLOAD
        # 4. transport layer
        data_end = end if l3_end < 0 or l3_end > end else l3_end
        if q >= 0 and (proto == 17 or proto == 6) and q + (8 if proto == 17 else 20) <= end:
            sport = be16(b, q)
            dport = be16(b, q + 2)
            ports[0, i] = sport
            ports[1, i] = dport
            f |= F_L4
            if proto == 17:
                d = q + 8
                udp_end = q + be16(b, q + 4)
                if 8 <= udp_end - q and udp_end < data_end:
                    data_end = udp_end
            else:
                d = q + (b[q + 12] >> 4) * 4
            if d <= data_end:
                payload[0, i] = d - s
                payload[1, i] = data_end - d
                f |= F_PAYLOAD
                # 5. application
                if proto == 17:
                    if sport == PTP_EVENT_PORT or sport == PTP_GENERAL_PORT or \
                            dport == PTP_EVENT_PORT or dport == PTP_GENERAL_PORT:
                        pf = _ptp(b, d, data_end, i, ptp_small, ptp_big)
                        if pf:
                            f |= pf
                            app[i] = APP_PTP
                    if app[i] == APP_NONE and _ouch(b, d, data_end):
                        app[i] = APP_OUCH
                        f |= F_OUCH
                    if app[i] == APP_NONE and _mold(b, d, data_end, mold_ports, sport, dport):
                        app[i] = APP_MOLD
                        f |= F_MOLD
                        for k in range(10):              # ASCII; other bytes become '?'
                            c = b[d + k]
                            mold_session[i, k] = c if c < 0x80 else 63
                        mold[0, i] = be64u(b, d + 10)
                        mold[1, i] = be16(b, d + 18)
        # 6. trailers (only on whole Ethernet frames)
        if trailer_mode != 0 and lt[i] == LT_ETHERNET and not (f & F_TRAILER):
            kind = find_trailer(b, s + 14, end, l3_end, cap_sec, trailer_mode, trailer_window, tr)
            if kind:
                trailer_kind[i] = kind
                for k in range(4):
                    trailer[k, i] = tr[k]
                f |= F_TRAILER
        flags[i] = f
