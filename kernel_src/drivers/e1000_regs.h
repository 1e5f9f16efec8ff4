/*
 * e1000_regs.h - the 82540EM registers and descriptors this driver uses.
 *
 * Names, offsets and bits as in the PCI/PCI-X Family of Gigabit Ethernet
 * Controllers Software Developer's Manual (8254x), chapter 13 for registers
 * and chapter 3 for descriptors. Only what e1000.c touches; bits indented
 * under their register.
 */
#ifndef HFTOS_E1000_REGS_H
#define HFTOS_E1000_REGS_H

#include <stdint.h>

#define E1000_VENDOR_INTEL   0x8086
#define E1000_DEV_82540EM    0x100E /* QEMU -device e1000 */

#define CTRL      0x00000 /* Device Control, 13.4.1 */
#define  CTRL_FD        (1u << 0)  /* full duplex */
#define  CTRL_LRST      (1u << 3)  /* link reset */
#define  CTRL_ASDE      (1u << 5)  /* auto-speed detection enable */
#define  CTRL_SLU       (1u << 6)  /* set link up */
#define  CTRL_ILOS      (1u << 7)  /* invert loss-of-signal */
#define  CTRL_RST       (1u << 26) /* device reset, self-clearing */
#define  CTRL_VME       (1u << 30) /* VLAN mode enable */
#define  CTRL_PHY_RST   (1u << 31)
#define STATUS    0x00008 /* Device Status, 13.4.2 */
#define  STATUS_LU      (1u << 1)  /* link up */
#define IMC       0x000D8 /* Interrupt Mask Clear, 13.4.21 */
#define  IMC_ALL        0xFFFFFFFFu
#define RCTL      0x00100 /* Receive Control, 13.4.22 */
#define  RCTL_EN        (1u << 1)
#define  RCTL_BAM       (1u << 15) /* accept broadcast */
#define  RCTL_BSIZE_2048 (0u << 16) /* with BSEX = 0 */
#define  RCTL_SECRC     (1u << 26) /* strip Ethernet CRC */
#define TCTL      0x00400 /* Transmit Control, 13.4.33 */
#define  TCTL_EN        (1u << 1)
#define  TCTL_PSP       (1u << 3)  /* pad short packets to 64 bytes */
#define  TCTL_CT_SHIFT  4          /* collision threshold */
#define  TCTL_CT_DEFAULT 0x0Fu     /* the recommended value */
#define  TCTL_COLD_SHIFT 12        /* collision distance */
#define  TCTL_COLD_FULL_DUPLEX 0x40u /* 64 byte times */
#define TIPG      0x00410 /* Transmit IPG, 13.4.34 */
#define  TIPG_IPGT_COPPER  10      /* 82540EM copper recommendations */
#define  TIPG_IPGR1_SHIFT  10
#define  TIPG_IPGR1        8
#define  TIPG_IPGR2_SHIFT  20
#define  TIPG_IPGR2        6
#define RDBAL     0x02800 /* RX Descriptor Base Low, 13.4.25 */
#define RDBAH     0x02804
#define RDLEN     0x02808 /* bytes, multiple of 128 */
#define RDH       0x02810
#define RDT       0x02818
#define TDBAL     0x03800 /* TX Descriptor Base Low, 13.4.38 */
#define TDBAH     0x03804
#define TDLEN     0x03808
#define TDH       0x03810
#define TDT       0x03818
#define MTA       0x05200 /* Multicast Table Array, 128 dwords, 13.4.49 */
#define  MTA_ENTRIES    128
#define MPC       0x04010 /* Missed Packets Count, 13.7 statistics */
#define RNBC      0x040A0 /* Receive No Buffers Count, 13.7 statistics */
#define ROC       0x040AC /* Receive Oversize Count, 13.7 statistics */
#define RAL0      0x05400 /* Receive Address Low, 13.4.50 */
#define RAH0      0x05404
#define  RAH_AV         (1u << 31) /* address valid */

/* Receive descriptor, 3.2.3. */
struct e1000_rx_desc {
	uint64_t buffer_addr;
	uint16_t length;
	uint16_t checksum;
	uint8_t status;
	uint8_t errors;
	uint16_t special;
};
#define RXD_STAT_DD     (1u << 0) /* descriptor done */
#define RXD_STAT_EOP    (1u << 1) /* end of packet */

/* Legacy transmit descriptor, 3.3.3: struct e1000_tx_desc, in e1000.h
 * (the order path inlines it). */
#define TXD_CMD_EOP     (1u << 0) /* end of packet */
#define TXD_CMD_IFCS    (1u << 1) /* insert FCS */
#define TXD_CMD_RS      (1u << 3) /* report status (sets DD) */
#define TXD_STAT_DD     (1u << 0)

_Static_assert(sizeof(struct e1000_rx_desc) == 16, "8254x 3.2.3: 16-byte RX descriptor");

#endif
