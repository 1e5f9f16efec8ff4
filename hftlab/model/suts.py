"""The systems under test hftlab knows, and what each one's internal
tick-to-trade span measures (docs/architecture.md §3).

HFT-OS is the bare-metal OS; the linux-* baselines (baselines/) link the same
trading core behind a UDP socket, an AF_PACKET ring or a DPDK PMD.
"""
from __future__ import annotations

__all__ = ["SUTS", "INTERNAL_SPAN"]

SUTS = ("hftos", "linux-socket", "linux-packet", "linux-dpdk")

#: Where each SUT's internal span (tsc_rx .. tsc_tx) starts and ends, and where
#: tsc_doorbell splits it into decide (before) and doorbell (after).
INTERNAL_SPAN = {
    "hftos": "tsc_rx: RX descriptor DD bit seen by the poll loop; tsc_doorbell: order frame "
             "and TX descriptor written, just before the doorbell write (TDT; virtio: avail "
             "index and notify); tsc_tx: right after the doorbell write",
    "linux-socket": "tsc_rx: the kernel's software RX timestamp (SO_TIMESTAMPING, taken in "
                    "the driver's receive path; moved to the TSC by a CLOCK_REALTIME/rdtsc "
                    "pair); tsc_tx: right after send() returned; tsc_doorbell: right before "
                    "send(). Includes the kernel's UDP receive and send paths",
    "linux-packet": "tsc_rx: the poll loop sees the frame in the AF_PACKET RX ring "
                    "(TPACKET_V2 tp_status; the kernel's ring timestamp is kept as the "
                    "record's pad, the cycles from tpacket_rcv to tsc_rx); tsc_tx: right "
                    "after send() on the packet socket returned (PACKET_QDISC_BYPASS: the "
                    "driver's xmit included); tsc_doorbell: right before send()",
    "linux-dpdk": "tsc_rx: the poll loop reaches the frame that rte_eth_rx_burst returned "
                  "(the e1000 PMD saw its descriptor's DD bit, as HFT-OS's loop does); tsc_tx: "
                  "right after rte_eth_tx_burst returned (TDT doorbell written); "
                  "tsc_doorbell: right before rte_eth_tx_burst (the PMD's descriptor write "
                  "counts in the doorbell span). No kernel in either path",
}
