/*
 * nic.c - which driver runs the NIC: the first PCI function that a driver
 * in this table claims by vendor:device id.
 */
#include "drivers/nic.h"
#include "drivers/pci.h"
#include "runtime/kprintf.h"
#include <stddef.h>

uint8_t nic_rx_buf[NIC_RX_RING][NIC_BUF_SIZE] __attribute__((aligned(NIC_BUF_SIZE)));
uint8_t nic_tx_buf[NIC_TX_RING][NIC_BUF_SIZE] __attribute__((aligned(NIC_BUF_SIZE)));

extern const struct nic_driver e1000_driver;
extern const struct nic_driver virtio_net_driver;
extern const struct nic_driver igb_driver;

static const struct nic_driver *const nic_drivers[] = {
	&e1000_driver,
	&virtio_net_driver,
	&igb_driver,
};

#define NIC_DRIVERS (sizeof(nic_drivers) / sizeof(nic_drivers[0]))

struct nic_match {
	struct pci_device dev;
	const struct nic_driver *drv;
};

static const struct nic_driver *nic_driver_for(const struct pci_device *d)
{
	for (size_t i = 0; i < NIC_DRIVERS; i++) {
		const struct nic_driver *drv = nic_drivers[i];
		if (drv->vendor != d->vendor)
			continue;
		for (const uint16_t *id = drv->devices; *id; id++)
			if (*id == d->device)
				return drv;
	}
	return NULL;
}

static bool nic_match_one(const struct pci_device *d, void *arg)
{
	struct nic_match *m = arg;

	if (!(m->drv = nic_driver_for(d)))
		return true;
	m->dev = *d;
	return false;
}

struct nic *nic_open(void)
{
	struct nic_match m = { .drv = NULL };

	pci_scan(nic_match_one, &m);
	if (!m.drv) {
		kprintf("nic: no supported NIC on PCI (drivers:");
		for (size_t i = 0; i < NIC_DRIVERS; i++)
			kprintf(" %s", nic_drivers[i]->name);
		kprintf(")\n");
		return NULL;
	}
	kprintf("nic: %02x:%02x.%x %04x:%04x -> %s\n", m.dev.addr.bus, m.dev.addr.dev,
		m.dev.addr.fn, m.dev.vendor, m.dev.device, m.drv->name);
	return m.drv->open(&m.dev);
}
