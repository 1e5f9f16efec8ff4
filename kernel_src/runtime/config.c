/*
 * config.c - the configuration block and its check at boot.
 *
 * Defaults: QEMU user networking (-netdev user), where the guest is
 * 10.0.2.15 and the host is reached as the gateway 10.0.2.2 with MAC
 * 52:55:0a:00:02:02; the engine part equals hftlab.core.EngineConfig.default().
 * hftlab rewrites every field per run (hftlab/build.py), so these values
 * only matter for `make run-trade` and hand-run images.
 */
#include "runtime/config.h"
#include "runtime/panic.h"

#define IPV4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))
#define CTL_KEY_DEFAULT  0x7e57c0de5eed0001ull  /* any constant; hftlab sets one per run */
#define LOG_DEFAULT      HFTOS_LOG_MAX

struct hftos_config hftos_config __attribute__((section(".config"), used, aligned(8))) = {
	.magic = HFTOS_CONFIG_MAGIC,
	.version = HFTOS_CONFIG_VERSION,
	.size = sizeof(struct hftos_config),
	.mac_peer = { 0x52, 0x55, 0x0a, 0x00, 0x02, 0x02 },
	.ip_self = IPV4(10, 0, 2, 15),
	.ip_peer = IPV4(10, 0, 2, 2),
	.md_port = 30001,
	.order_port = 30003,
	.ctl_port = 30002,
	.src_port = 30004,
	.max_messages = 0,
	.ctl_key = CTL_KEY_DEFAULT,
	.flags = 0,
	.log_capacity = LOG_DEFAULT,
	.engine = {
		.magic = ENGINE_CONFIG_MAGIC,
		.version = ENGINE_CONFIG_VERSION,
		.instance = 1,
		.strat = {
			.n_symbols = 0,
			.order_shares = 100,
			.imbalance_num = 3,
			.imbalance_den = 1,
			.min_top_shares = 1,
			.max_spread = 10000,
			.cross_trigger = 1,
		},
		.risk = {
			.max_position = 5000,
			.max_notional = 100000000000ull,
			.max_order_shares = 1000,
			.max_orders_per_sec = 100,
			.price_band_bps = 500,
			.kill = 0,
		},
	},
};

/* The magic split in two halves joined at run time: a 64-bit immediate in
 * the code would put a second copy of "HFTOSCFG" into the image, and hftlab
 * finds the block by searching for exactly one. */
static uint64_t config_magic(void)
{
	uint64_t hi = HFTOS_CONFIG_MAGIC >> 32;

	__asm__("" : "+r"(hi)); /* opaque: keeps the compiler from folding it back */
	return (hi << 32) | (uint32_t)HFTOS_CONFIG_MAGIC;
}

void config_check(const struct hftos_config *c)
{
	if (c->magic != config_magic())
		panic("config: bad magic 0x%lx (block not found or overwritten)", c->magic);
	if (c->version != HFTOS_CONFIG_VERSION)
		panic("config: version %u, this runtime reads version %u", c->version,
		      HFTOS_CONFIG_VERSION);
	if (c->size != sizeof(*c))
		panic("config: size %u, this runtime's struct hftos_config is %zu", c->size,
		      sizeof(*c));
	if (c->log_capacity == 0 || c->log_capacity > HFTOS_LOG_MAX)
		panic("config: log_capacity %u outside [1, %u]", c->log_capacity, HFTOS_LOG_MAX);
	if (c->md_port == 0 || c->ctl_port == 0 || c->order_port == 0 || c->src_port == 0 ||
	    c->md_port == c->ctl_port)
		panic("config: ports md %u ctl %u order %u src %u: each nonzero, md != ctl",
		      c->md_port, c->ctl_port, c->order_port, c->src_port);
	if (c->ip_self == 0 || c->ip_peer == 0)
		panic("config: ip_self and ip_peer must be set");
}
