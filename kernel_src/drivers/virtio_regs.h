/*
 * virtio_regs.h - the virtio 1.x structures virtio_net.c uses.
 *
 * Names, offsets and bits as in the Virtual I/O Device (VIRTIO) spec v1.1
 * (same layout in v1.2): the modern PCI transport (4.1.4), the device status
 * field (2.1), feature bits (6 and 5.1.3), split virtqueues (2.6) and the
 * network device (5.1). Only what virtio_net.c touches; all fields are
 * little-endian, as x86 is.
 */
#ifndef HFTOS_VIRTIO_REGS_H
#define HFTOS_VIRTIO_REGS_H

#include <stdint.h>

#define VIRTIO_PCI_VENDOR          0x1AF4 /* 4.1.2 */
#define VIRTIO_PCI_DEV_NET_LEGACY  0x1000 /* transitional virtio-net */
#define VIRTIO_PCI_DEV_NET_MODERN  0x1041 /* 0x1040 + device type 1 (network) */

/* struct virtio_pci_cap (4.1.4): a vendor-specific PCI capability. */
#define PCI_CAP_ID_VNDR         0x09
#define VIRTIO_PCI_CAP_CFG_TYPE 3  /* u8 */
#define  VIRTIO_PCI_CAP_COMMON_CFG  1
#define  VIRTIO_PCI_CAP_NOTIFY_CFG  2
#define  VIRTIO_PCI_CAP_ISR_CFG     3
#define  VIRTIO_PCI_CAP_DEVICE_CFG  4
#define VIRTIO_PCI_CAP_BAR      4  /* u8: which BAR holds the structure */
#define VIRTIO_PCI_CAP_OFFSET   8  /* le32: its offset in the BAR */
#define VIRTIO_PCI_CAP_LENGTH   12 /* le32 */
#define VIRTIO_PCI_NOTIFY_CAP_MULT 16 /* le32 notify_off_multiplier (4.1.4.4) */

/* struct virtio_pci_common_cfg (4.1.4.3): offsets in the COMMON_CFG region. */
#define VIRTIO_PCI_COMMON_DFSELECT      0x00 /* le32 device_feature_select */
#define VIRTIO_PCI_COMMON_DF            0x04 /* le32 device_feature */
#define VIRTIO_PCI_COMMON_GFSELECT      0x08 /* le32 driver_feature_select */
#define VIRTIO_PCI_COMMON_GF            0x0C /* le32 driver_feature */
#define VIRTIO_PCI_COMMON_MSIX          0x10 /* le16 config_msix_vector */
#define VIRTIO_PCI_COMMON_NUMQ          0x12 /* le16 num_queues */
#define VIRTIO_PCI_COMMON_STATUS        0x14 /* u8 device_status */
#define VIRTIO_PCI_COMMON_CFGGENERATION 0x15 /* u8 config_generation */
#define VIRTIO_PCI_COMMON_Q_SELECT      0x16 /* le16 queue_select */
#define VIRTIO_PCI_COMMON_Q_SIZE        0x18 /* le16 queue_size */
#define VIRTIO_PCI_COMMON_Q_MSIX        0x1A /* le16 queue_msix_vector */
#define VIRTIO_PCI_COMMON_Q_ENABLE      0x1C /* le16 queue_enable */
#define VIRTIO_PCI_COMMON_Q_NOFF        0x1E /* le16 queue_notify_off */
#define VIRTIO_PCI_COMMON_Q_DESCLO      0x20 /* le64 queue_desc */
#define VIRTIO_PCI_COMMON_Q_DESCHI      0x24
#define VIRTIO_PCI_COMMON_Q_AVAILLO     0x28 /* le64 queue_driver */
#define VIRTIO_PCI_COMMON_Q_AVAILHI     0x2C
#define VIRTIO_PCI_COMMON_Q_USEDLO      0x30 /* le64 queue_device */
#define VIRTIO_PCI_COMMON_Q_USEDHI      0x34
#define VIRTIO_MSI_NO_VECTOR            0xFFFF

/* Device status field (2.1). */
#define VIRTIO_CONFIG_S_ACKNOWLEDGE  1
#define VIRTIO_CONFIG_S_DRIVER       2
#define VIRTIO_CONFIG_S_DRIVER_OK    4
#define VIRTIO_CONFIG_S_FEATURES_OK  8
#define VIRTIO_CONFIG_S_FAILED       0x80

/* Feature bits (6, 5.1.3), as bit numbers. */
#define VIRTIO_NET_F_MAC        5  /* device config has the MAC */
#define VIRTIO_NET_F_MRG_RXBUF  15 /* a frame may span RX buffers (num_buffers) */
#define VIRTIO_NET_F_STATUS     16 /* device config has the link status */
#define VIRTIO_F_VERSION_1      32 /* the modern (non-legacy) interface */

/* struct virtio_net_config (5.1.4): offsets in the DEVICE_CFG region. */
#define VIRTIO_NET_CFG_MAC      0 /* u8[6] */
#define VIRTIO_NET_CFG_STATUS   6 /* le16 */
#define  VIRTIO_NET_S_LINK_UP   1

/* Split virtqueue (2.6). QEMU's largest queue (VIRTQUEUE_MAX_SIZE) is 1024;
 * the static rings below are that deep and a queue uses its first size
 * entries. */
#define VIRTIO_QUEUE_MAX   1024
#define VIRTQ_DESC_F_WRITE 2 /* 2.6.5: device writes (RX) */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1 /* 2.6.7: no used-buffer notifications */
#define VIRTQ_USED_F_NO_NOTIFY     1 /* 2.6.7: the device needs no kick now */

struct virtq_desc { /* 2.6.5 */
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail { /* 2.6.6: ring[size], then used_event (not used here) */
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[VIRTIO_QUEUE_MAX + 1];
};

struct virtq_used_elem { /* 2.6.8 */
	uint32_t id;  /* head descriptor of the chain */
	uint32_t len; /* bytes written into it (RX: header + frame) */
};

struct virtq_used { /* 2.6.8: ring[size], then avail_event (not used here) */
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[VIRTIO_QUEUE_MAX];
	uint16_t avail_event;
};

/* 5.1.6: before every frame, both directions. 12 bytes with VERSION_1
 * (num_buffers is always there, 5.1.6.1). */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type; /* VIRTIO_NET_HDR_GSO_NONE: 0 */
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers; /* RX with MRG_RXBUF: buffers this frame spans */
};

_Static_assert(sizeof(struct virtq_desc) == 16, "2.6.5: virtq_desc is 16 bytes");
_Static_assert(sizeof(struct virtq_used_elem) == 8, "2.6.8: used element is 8 bytes");
_Static_assert(sizeof(struct virtq_avail) == 4 + 2 * (VIRTIO_QUEUE_MAX + 1), "2.6.6 layout");
_Static_assert(__builtin_offsetof(struct virtq_used, ring) == 4, "2.6.8 layout");
_Static_assert(sizeof(struct virtio_net_hdr) == 12, "5.1.6: 12-byte header with VERSION_1");

#endif
