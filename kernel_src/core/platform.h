/*
 * platform.h - the only things core code takes from its surroundings.
 *
 * kernel_src/core builds twice from one source: freestanding into HFT-OS and
 * hosted into the cffi extension, the baselines and the fuzzers. It includes
 * nothing but <stdint.h>, <stddef.h> and <stdbool.h>. Byte copies go through
 * the compiler builtins, which the kernel backs with its own memcpy/memset
 * (kernel_src/runtime) and the host with libc's.
 */
#ifndef CORE_PLATFORM_H
#define CORE_PLATFORM_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#define CORE_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#define CORE_LIKELY(x) __builtin_expect(!!(x), 1)
#define CORE_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define CORE_NOINLINE __attribute__((noinline))
/* For a hot-path body that also has an exported wrapper: without the
 * attribute the compiler keeps one out-of-line copy for both callers, and
 * the hot one pays a call and a register save/restore per message. */
#define CORE_ALWAYS_INLINE inline __attribute__((always_inline))
#define core_memcpy(d, s, n) __builtin_memcpy((d), (s), (n))
#define core_memset(d, c, n) __builtin_memset((d), (c), (n))
#define core_memcmp(a, b, n) __builtin_memcmp((a), (b), (n))

/* Big-endian field access: every exchange protocol here is network order.
 * A memcpy load and a byte swap: one mov and one bswap (or a movbe), never
 * an alignment fault. */
static inline uint16_t rd_be16(const uint8_t *p)
{
	uint16_t v;
	core_memcpy(&v, p, 2);
	return __builtin_bswap16(v);
}
static inline uint32_t rd_be32(const uint8_t *p)
{
	uint32_t v;
	core_memcpy(&v, p, 4);
	return __builtin_bswap32(v);
}
static inline uint64_t rd_be48(const uint8_t *p)
{
	return ((uint64_t)rd_be16(p) << 32) | rd_be32(p + 2);
}
static inline uint64_t rd_be64(const uint8_t *p)
{
	uint64_t v;
	core_memcpy(&v, p, 8);
	return __builtin_bswap64(v);
}
static inline void wr_be16(uint8_t *p, uint16_t v)
{
	v = __builtin_bswap16(v);
	core_memcpy(p, &v, 2);
}
static inline void wr_be32(uint8_t *p, uint32_t v)
{
	v = __builtin_bswap32(v);
	core_memcpy(p, &v, 4);
}
static inline void wr_be48(uint8_t *p, uint64_t v) { wr_be16(p, (uint16_t)(v >> 32)); wr_be32(p + 2, (uint32_t)v); }
static inline void wr_be64(uint8_t *p, uint64_t v)
{
	v = __builtin_bswap64(v);
	core_memcpy(p, &v, 8);
}

#endif
