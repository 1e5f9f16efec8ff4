/*
 * igb_regs.h - the 82576 registers and descriptors igb.c uses.
 *
 * Names, offsets and bits as in the Intel 82576EB Gigabit Ethernet
 * Controller Datasheet: chapter 8 for registers (section per register
 * below), 7.1.5 / 7.2.2 for the advanced descriptors, 7.10 for IEEE 1588
 * time sync. Only what igb.c touches; bits indented under their register.
 * Queue registers are those of queue 0 (the 82576 has 16 of each, 0x40
 * apart).
 */
#ifndef HFTOS_IGB_REGS_H
#define HFTOS_IGB_REGS_H

#include <stdint.h>

#define IGB_VENDOR_INTEL   0x8086
#define IGB_DEV_82576      0x10C9 /* copper; QEMU -device igb */

/* --- general (8.2) -------------------------------------------------------- */
#define CTRL      0x00000 /* Device Control, 8.2.1 */
#define  CTRL_SLU       (1u << 6)  /* set link up */
#define  CTRL_RST       (1u << 26) /* device reset, self-clearing */
#define STATUS    0x00008 /* Device Status, 8.2.2 */
#define  STATUS_LU      (1u << 1)  /* link up */
#define CTRL_EXT  0x00018 /* Extended Device Control, 8.2.3 */
#define  CTRL_EXT_DRV_LOAD (1u << 28) /* tells firmware a driver owns the port */
#define MDIC      0x00020 /* MDI Control, 8.2.4 */
#define  MDIC_DATA_SHIFT 0
#define  MDIC_REG_SHIFT  16
#define  MDIC_PHY_SHIFT  21
#define  MDIC_PHY_INTERNAL 1u      /* the internal PHY's address */
#define  MDIC_OP_WRITE  (1u << 26)
#define  MDIC_READY     (1u << 28)
#define  MDIC_ERROR     (1u << 30)

/* PHY registers reached through MDIC (IEEE 802.3 clause 22, 8.24). */
#define PHY_CTRL  0 /* PHY Control (BMCR) */
#define  PHY_CTRL_FULL_DUPLEX  (1u << 8)
#define  PHY_CTRL_RESTART_AN   (1u << 9)  /* self-clearing */
#define  PHY_CTRL_AN_ENABLE    (1u << 12)
#define  PHY_CTRL_SPEED_1000   (1u << 6)  /* MSB of the speed selection */

/* --- interrupts (8.8) ----------------------------------------------------- */
#define IMC       0x000D8 /* Interrupt Mask Clear, 8.8.10 */
#define  IMC_ALL        0xFFFFFFFFu
#define EIMC      0x01528 /* Extended Interrupt Mask Clear, 8.8.6 */
#define  EIMC_ALL       0xFFFFFFFFu

/* --- receive (8.10) ------------------------------------------------------- */
#define RCTL      0x00100 /* Receive Control, 8.10.1 */
#define  RCTL_EN        (1u << 1)
#define  RCTL_LPE       (1u << 5)  /* long packets: up to RLPML, across buffers */
#define  RCTL_BAM       (1u << 15) /* accept broadcast */
#define  RCTL_SECRC     (1u << 26) /* strip Ethernet CRC */
#define RLPML     0x05004 /* Receive Long Packet Maximum Length, 8.10.7 */
#define RDBAL     0x0C000 /* RX Descriptor Base Low, queue 0, 8.10.8 */
#define RDBAH     0x0C004
#define RDLEN     0x0C008 /* bytes, multiple of 128 */
#define SRRCTL    0x0C00C /* Split and Replication RX Control, 8.10.10 */
#define  SRRCTL_BSIZEPACKET_SHIFT 0 /* packet buffer size, 1 KiB units */
#define  SRRCTL_BSIZEPACKET_UNIT  1024u
#define  SRRCTL_DESCTYPE_ADV_ONEBUF (1u << 25) /* DESCTYPE = 001b */
#define RDH       0x0C010
#define RDT       0x0C018
#define RXDCTL    0x0C028 /* RX Descriptor Control, queue 0, 8.10.13 */
#define  RXDCTL_ENABLE  (1u << 25)
#define MTA       0x05200 /* Multicast Table Array, 128 dwords, 8.10.15 */
#define RAL0      0x05400 /* Receive Address Low, 8.10.16 */
#define RAH0      0x05404
#define  RAH_AV         (1u << 31) /* address valid */
#define ETQF(n)   (0x05CB0 + 4 * (n)) /* EType Queue Filter, 8.10.25 */
#define  ETQF_ETYPE_MASK 0xFFFFu
#define  ETQF_FILTER_ENABLE (1u << 26)
#define  ETQF_1588      (1u << 30) /* time stamp frames that match */

/* --- transmit (8.12) ------------------------------------------------------ */
#define TCTL      0x00400 /* Transmit Control, 8.12.1 */
#define  TCTL_EN        (1u << 1)
#define  TCTL_PSP       (1u << 3)  /* pad short packets to 64 bytes */
#define  TCTL_CT_SHIFT  4
#define  TCTL_CT_DEFAULT 0x0Fu
#define  TCTL_COLD_SHIFT 12
#define  TCTL_COLD_FULL_DUPLEX 0x3Fu
#define TDBAL     0x0E000 /* TX Descriptor Base Low, queue 0, 8.12.5 */
#define TDBAH     0x0E004
#define TDLEN     0x0E008
#define TDH       0x0E010
#define TDT       0x0E018
#define TXDCTL    0x0E028 /* TX Descriptor Control, queue 0, 8.12.13 */
#define  TXDCTL_ENABLE  (1u << 25)

/* --- statistics (8.19) ---------------------------------------------------- */
#define MPC       0x04010 /* Missed Packets Count, 8.19.4 */
#define RNBC      0x040A0 /* Receive No Buffers Count, 8.19.35 */
#define ROC       0x040AC /* Receive Oversize Count, 8.19.37 */

/* --- IEEE 1588 time sync (8.16, operation in 7.10) ------------------------ */
#define TSYNCRXCTL 0x0B620 /* RX Time Sync Control, 8.16.1 */
#define  TSYNCRXCTL_RXTT (1u << 0) /* an RX time stamp is latched (RO) */
#define  TSYNCRXCTL_TYPE_L2_V2 (0u << 1) /* Type: PTP v2 over Ethernet (ETQF) */
#define  TSYNCRXCTL_EN   (1u << 4)
#define RXSTMPL   0x0B624 /* RX Time Stamp Low, 8.16.2 */
#define RXSTMPH   0x0B628 /* RX Time Stamp High, 8.16.3 */
#define RXSATRL   0x0B62C /* RX Time Stamp Attributes Low, 8.16.4 */
#define RXSATRH   0x0B630 /* RX Time Stamp Attributes High, 8.16.5 */
#define  RXSATRH_SEQID_SHIFT 16     /* SequenceId in bits 31:16 */
#define TSYNCTXCTL 0x0B614 /* TX Time Sync Control, 8.16.6 */
#define  TSYNCTXCTL_TXTT (1u << 0) /* a TX time stamp is latched (RO) */
#define  TSYNCTXCTL_EN   (1u << 4)
#define TXSTMPL   0x0B618 /* TX Time Stamp Low, 8.16.7 */
#define TXSTMPH   0x0B61C /* TX Time Stamp High, 8.16.8 */
#define SYSTIML   0x0B600 /* System Time Low, 8.16.9; read first: latches SYSTIMH */
#define SYSTIMH   0x0B604 /* System Time High, 8.16.10 */
#define TIMINCA   0x0B608 /* Increment Attributes, 8.16.11 */
#define  TIMINCA_INCPERIOD_SHIFT 24 /* IncPeriod: in 16 ns clock periods */
#define  TIMINCA_INCVALUE_SHIFT  0  /* IncValue: added each IncPeriod */
#define TSYNCRXCFG 0x05F50 /* RX Time Sync Configuration, 8.16.19 */
#define  TSYNCRXCFG_MSGT_SHIFT 8    /* V2 messageType (byte 0) to time stamp */

/* Advanced receive descriptor, 7.1.5: read format (what software writes) ... */
struct igb_rx_desc_read {
	uint64_t pkt_addr;
	uint64_t hdr_addr; /* 0: no header split; bit 0 overlays DD */
};
/* ... and write-back format (what the NIC writes over it). */
struct igb_rx_desc_wb {
	uint16_t pkt_info;
	uint16_t hdr_info;
	uint32_t rss_or_csum;
	uint32_t status_error;
	uint16_t length;
	uint16_t vlan;
};
union igb_rx_desc {
	struct igb_rx_desc_read read;
	struct igb_rx_desc_wb wb;
};
#define RXD_STAT_DD     (1u << 0)  /* descriptor done */
#define RXD_STAT_EOP    (1u << 1)  /* end of packet */
#define RXD_STAT_TS     (1u << 16) /* this frame's time was latched */

/* Advanced transmit data descriptor, 7.2.2.3: union igb_tx_desc, in igb.h
 * (the order path inlines it). */
#define TXD_LEN_MASK      0xFFFFu      /* DTALEN, bits 15:0 */
#define TXD_MAC_TSTAMP    (1u << 19)   /* latch this frame's time in TXSTMP */
#define TXD_DTYP_DATA     (3u << 20)   /* DTYP = 0011b, advanced data */
#define TXD_DCMD_EOP      (1u << 24)
#define TXD_DCMD_IFCS     (1u << 25)
#define TXD_DCMD_RS       (1u << 27)   /* report status (sets DD) */
#define TXD_DCMD_DEXT     (1u << 29)   /* advanced descriptor */
#define TXD_PAYLEN_SHIFT  14           /* olinfo_status: frame length */
#define TXD_STAT_DD       (1u << 0)

_Static_assert(sizeof(union igb_rx_desc) == 16, "82576 7.1.5: 16-byte advanced RX descriptor");
_Static_assert(sizeof(struct igb_rx_desc_wb) == 16, "82576 7.1.5: write-back format");

#endif
