/*
 * moldudp64.h - MoldUDP64 downstream packets (NASDAQ MoldUDP64 1.00).
 *
 * A packet is a 20-byte header (session[10], sequence u64, message count u16)
 * followed by `count` message blocks, each a u16 length and the message. The
 * sequence number is that of the first message. Count 0 is a heartbeat, count
 * 0xFFFF marks the end of the session. All big-endian.
 *
 * Decoding (mold_parse + mold_next) checks that every block lies inside the
 * datagram. Sequencing (mold_accept) keeps the next expected number per
 * session and tells the caller which messages of a packet are new, counting
 * gaps and duplicates. The encoder (mold_pack_*) is what the replayer and the
 * golden model use to turn an ITCH file into packets.
 */
#ifndef CORE_MOLDUDP64_H
#define CORE_MOLDUDP64_H

#include "platform.h"
#include "param.h"

enum mold_status {
	MOLD_OK = 0,
	MOLD_E_SHORT = -1,     /* datagram shorter than the header */
	MOLD_E_TRUNCATED = -2, /* a message block runs past the datagram */
};

struct mold_packet {
	const uint8_t *session;    /* MOLD_SESSION_LEN bytes, in the datagram */
	uint64_t seq;              /* sequence number of the first message */
	uint16_t count;            /* messages, 0 heartbeat, 0xFFFF end of session */
	const uint8_t *body;       /* first message block */
	size_t body_len;
};

/* Iterator over the message blocks of a parsed packet. */
struct mold_iter {
	const uint8_t *p;
	const uint8_t *end;
	uint16_t left;
};

struct mold_session {
	uint8_t id[MOLD_SESSION_LEN];
	uint64_t next_seq;  /* next expected sequence number */
	bool used;
	bool ended;
};

struct mold_counters {
	uint64_t packets;
	uint64_t messages;          /* message blocks accepted as new */
	uint64_t heartbeats;
	uint64_t end_of_session;
	uint64_t gaps;              /* packets that skipped ahead */
	uint64_t gap_messages;      /* messages missed in those gaps */
	uint64_t duplicates;        /* packets wholly or partly seen before */
	uint64_t duplicate_messages;
	uint64_t malformed;         /* short header or truncated blocks */
	uint64_t sessions_full;     /* packets of a session beyond MOLD_MAX_SESSIONS */
	uint64_t after_end;         /* packets of a session already ended */
};

struct mold_state {
	struct mold_session sessions[MOLD_MAX_SESSIONS];
	struct mold_counters c;
	uint32_t last;  /* the session of the last data packet accepted */
	/* That session's id and next sequence number, where one compare per
	 * word finds the next packet (mold_is_next): id bytes 0-7, then bytes
	 * 8-9 with bit 16 set while the session is live (used, not ended). */
	uint64_t fast_id8;
	uint32_t fast_tail;
	uint64_t fast_next;
};

void mold_init(struct mold_state *s);

#define MOLD_OFF_SEQ 10
#define MOLD_OFF_COUNT 18
#define MOLD_BLOCK_HDR 2  /* u16 length in front of each message */

/* Heartbeats and the end-of-session marker carry no blocks. */
static inline bool mold_has_blocks(uint16_t count)
{
	return count != 0 && count != MOLD_END_OF_SESSION;
}

/* Do `count` blocks fit in body[0..len)? Bytes after the last one are
 * tolerated (some senders pad datagrams). One compare per block: a block's
 * header must start 2 bytes before the end at the latest, and the end of the
 * last block must not pass it (an earlier block that does makes the next
 * header check fail). off stays below len + 2 + 65535: no overflow. */
static inline bool mold_blocks_fit(const uint8_t *body, size_t len, uint16_t count)
{
	size_t off = 0;

	for (unsigned left = count; left != 0; left--) {
		if (off + MOLD_BLOCK_HDR > len)
			return false;
		off += MOLD_BLOCK_HDR + rd_be16(body + off);
	}
	return off <= len;
}

/* Parse the header of datagram buf[0..len) and check that `count` blocks
 * fit. Returns MOLD_OK or a negative enum mold_status. Only reads and counts
 * nothing: the caller counts a malformed datagram. Inline, like the
 * iterator below: the parse and the iteration run once per datagram and
 * once per message, and a call would cost more than their bodies. */
static inline int mold_parse(const uint8_t *buf, size_t len, struct mold_packet *pk)
{
	if (len < MOLD_HDR_LEN)
		return MOLD_E_SHORT;
	pk->session = buf;
	pk->seq = rd_be64(buf + MOLD_OFF_SEQ);
	pk->count = rd_be16(buf + MOLD_OFF_COUNT);
	pk->body = buf + MOLD_HDR_LEN;
	pk->body_len = len - MOLD_HDR_LEN;
	if (mold_has_blocks(pk->count) &&
	    !mold_blocks_fit(pk->body, pk->body_len, pk->count))
		return MOLD_E_TRUNCATED;
	return MOLD_OK;
}

static inline void mold_iter_init(struct mold_iter *it, const struct mold_packet *pk)
{
	it->p = pk->body;
	it->end = pk->body + pk->body_len;
	it->left = mold_has_blocks(pk->count) ? pk->count : 0;
}

/* Next message block: *msg and *len, or false at the end. Blocks were bounds
 * checked by mold_parse, but the iterator checks again (it is cheap). */
static inline bool mold_next(struct mold_iter *it, const uint8_t **msg, uint16_t *len)
{
	if (it->left == 0 || it->end - it->p < MOLD_BLOCK_HDR)
		goto done;
	uint16_t blen = rd_be16(it->p);
	if (it->end - it->p - MOLD_BLOCK_HDR < blen)
		goto done;
	*msg = it->p + MOLD_BLOCK_HDR;
	*len = blen;
	it->p += MOLD_BLOCK_HDR + blen;
	it->left--;
	return true;
done:
	it->left = 0;  /* a bad block ends the packet for good */
	return false;
}

/* The block at *p of a packet mold_parse accepted (so it fits): its
 * message and length, and *p moved to the next block. No checks: for a
 * loop that runs exactly pk->count times over a parsed packet. */
static CORE_ALWAYS_INLINE const uint8_t *mold_block_take(const uint8_t **p, uint16_t *len)
{
	const uint8_t *msg = *p + MOLD_BLOCK_HDR;

	*len = rd_be16(*p);
	*p = msg + *len;
	return msg;
}

/* Sequence a parsed packet against its session. Returns how many leading
 * messages of the packet the caller must skip as already seen (0..count), or
 * -1 when the whole packet is to be ignored (duplicate, heartbeat, end of
 * session, unknown session beyond capacity). Counts gaps and duplicates. */
int mold_accept(struct mold_state *s, const struct mold_packet *pk);

#define MOLD_FAST_LIVE 0x10000u
/* The shortcut's range: sequence numbers up to 2^48 - 1 (what an order
 * token carries, engine.h), beyond it every packet takes mold_accept. */
#define MOLD_FAST_MAX_SEQ ((1ull << 48) - 1)

/* Is a data packet at `seq` of `session` the next one of the session of
 * the last data packet accepted (a live one)? Then mold_accept would skip
 * nothing and change only next_seq (mold_take_next) and the packet and
 * message counters: the caller may do that itself. */
static CORE_ALWAYS_INLINE bool mold_is_next(const struct mold_state *s, const uint8_t *session,
					    uint64_t seq)
{
	uint64_t a;
	uint16_t c;

	core_memcpy(&a, session, 8);
	core_memcpy(&c, session + 8, 2);
	return seq == s->fast_next && a == s->fast_id8 && ((uint32_t)c | MOLD_FAST_LIVE) == s->fast_tail;
}

/* The next `count` messages of the session mold_is_next found, taken. */
static CORE_ALWAYS_INLINE void mold_take_next(struct mold_state *s, uint64_t seq, uint16_t count)
{
	s->fast_next = seq + count;
	s->sessions[s->last].next_seq = seq + count;
	if (CORE_UNLIKELY(seq + count > MOLD_FAST_MAX_SEQ))
		s->fast_tail &= ~MOLD_FAST_LIVE;
}

/* mold_accept with the commonest packet checked first: data, of the
 * session of the last data packet, at exactly the expected sequence
 * number. Then nothing is skipped and only three words change; anything
 * else goes to mold_accept, which counts and decides the same way. */
static CORE_ALWAYS_INLINE int mold_accept_next(struct mold_state *s, const uint8_t *session,
					       uint64_t seq, uint16_t count)
{
	if (CORE_LIKELY(mold_has_blocks(count) && mold_is_next(s, session, seq))) {
		mold_take_next(s, seq, count);
		s->c.packets++;
		s->c.messages += count;
		return 0;
	}
	struct mold_packet pk = { .session = session, .seq = seq, .count = count };
	return mold_accept(s, &pk);
}

/* Encoder: fill a datagram in buf[0..cap). */
struct mold_writer {
	uint8_t *buf;
	size_t cap;
	size_t len;
	uint16_t count;
};

/* Start a packet for `session` (MOLD_SESSION_LEN bytes) whose first message
 * has sequence number `seq`. Returns false if cap < MOLD_HDR_LEN. */
bool mold_pack_begin(struct mold_writer *w, uint8_t *buf, size_t cap,
		     const uint8_t *session, uint64_t seq);
/* Append one message; false (and nothing written) when it does not fit. */
bool mold_pack_add(struct mold_writer *w, const uint8_t *msg, uint16_t len);
/* Write the final count (or MOLD_END_OF_SESSION) and return the length. */
size_t mold_pack_end(struct mold_writer *w, bool end_of_session);

#endif
