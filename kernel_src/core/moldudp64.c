/*
 * moldudp64.c - MoldUDP64 1.00 downstream packets: parse, sequence, build.
 *
 * A downstream packet (MoldUDP64 1.00, "Downstream Packets") is a 20-byte
 * header - session[10] @0, sequence number u64 @10, message count u16 @18 -
 * and `count` message blocks, each a u16 length and that many bytes. The
 * sequence number is that of the first block; count 0 is a heartbeat and
 * count 0xFFFF the end of the session, neither carrying blocks.
 *
 * mold_parse (inline in moldudp64.h, with the iterator) only reads: it
 * bounds-checks every block and counts nothing, so the caller (the engine)
 * bumps `malformed` when it fails. mold_accept is where sequencing lives:
 * one expected sequence number per session, with gaps, duplicates and
 * partial overlaps counted and resolved so that every message is delivered
 * at most once.
 */
#include "moldudp64.h"

void mold_init(struct mold_state *s)
{
	core_memset(s, 0, sizeof *s);
}

/* Session slot for `id`, claiming the first free slot for a new session
 * (which expects sequence number 1). NULL when all slots are taken. */
static struct mold_session *mold_session_of(struct mold_state *s, const uint8_t *id)
{
	struct mold_session *free_slot = NULL;
	for (int i = 0; i < MOLD_MAX_SESSIONS; i++) {
		struct mold_session *ss = &s->sessions[i];
		if (ss->used && core_memcmp(ss->id, id, MOLD_SESSION_LEN) == 0)
			return ss;
		if (!ss->used && free_slot == NULL)
			free_slot = ss;
	}
	if (free_slot != NULL) {
		core_memcpy(free_slot->id, id, MOLD_SESSION_LEN);
		free_slot->next_seq = 1;
		free_slot->used = true;
		free_slot->ended = false;
	}
	return free_slot;
}

/* A heartbeat carries the next sequence number the server will send: one
 * beyond ours means messages were lost in between. */
static int mold_heartbeat(struct mold_state *s, struct mold_session *ss, uint64_t seq)
{
	s->c.heartbeats++;
	if (seq > ss->next_seq) {
		s->c.gaps++;
		s->c.gap_messages += seq - ss->next_seq;
		ss->next_seq = seq;
	}
	return -1;
}

/* Data packet [seq, seq+count) against the expected `next`: ahead is a gap
 * (take everything), wholly behind a duplicate (drop it), straddling a
 * partial duplicate (skip the next-seq messages already seen). Written with
 * differences, not seq+count, so a hostile seq near 2^64 cannot wrap the
 * comparison. */
static int mold_data(struct mold_state *s, struct mold_session *ss,
		     uint64_t seq, uint16_t count)
{
	uint64_t next = ss->next_seq;
	uint64_t skip = 0;
	if (seq > next) {
		s->c.gaps++;
		s->c.gap_messages += seq - next;
	} else if (next - seq >= count) {
		s->c.duplicates++;
		s->c.duplicate_messages += count;
		return -1;
	} else if (seq < next) {
		skip = next - seq;
		s->c.duplicates++;
		s->c.duplicate_messages += skip;
	}
	ss->next_seq = seq + count;
	s->c.messages += count - skip;
	return (int)skip;
}

static int mold_accept_slow(struct mold_state *s, const struct mold_packet *pk)
{
	s->c.packets++;
	struct mold_session *ss = mold_session_of(s, pk->session);
	if (ss == NULL) {
		s->c.sessions_full++;
		return -1;
	}
	if (ss->ended) {
		s->c.after_end++;
		return -1;
	}
	if (pk->count == MOLD_END_OF_SESSION) {
		s->c.end_of_session++;
		ss->ended = true;
		return -1;
	}
	if (pk->count == 0)
		return mold_heartbeat(s, ss, pk->seq);
	s->last = (uint32_t)(ss - s->sessions);
	return mold_data(s, ss, pk->seq, pk->count);
}

int mold_accept(struct mold_state *s, const struct mold_packet *pk)
{
	int skip = mold_accept_slow(s, pk);
	/* mold_is_next's copy of the last data packet's session, which any
	 * packet above may have moved, ended or replaced. */
	const struct mold_session *ss = &s->sessions[s->last];
	uint16_t tail;
	core_memcpy(&s->fast_id8, ss->id, 8);
	core_memcpy(&tail, ss->id + 8, 2);
	s->fast_tail = tail | (ss->used && !ss->ended && ss->next_seq <= MOLD_FAST_MAX_SEQ
			       ? MOLD_FAST_LIVE : 0);
	s->fast_next = ss->next_seq;
	return skip;
}

bool mold_pack_begin(struct mold_writer *w, uint8_t *buf, size_t cap,
		     const uint8_t *session, uint64_t seq)
{
	w->buf = buf;
	w->count = 0;
	if (cap < MOLD_HDR_LEN) {
		/* Leave a writer on which add fails and end returns 0. */
		w->cap = 0;
		w->len = 0;
		return false;
	}
	w->cap = cap;
	w->len = MOLD_HDR_LEN;
	core_memcpy(buf, session, MOLD_SESSION_LEN);
	wr_be64(buf + MOLD_OFF_SEQ, seq);
	wr_be16(buf + MOLD_OFF_COUNT, 0);
	return true;
}

bool mold_pack_add(struct mold_writer *w, const uint8_t *msg, uint16_t len)
{
	/* 0xFFFF would read as end of session: at most 0xFFFE blocks. */
	if (w->count >= MOLD_END_OF_SESSION - 1 || w->len < MOLD_HDR_LEN)
		return false;
	if (w->cap - w->len < MOLD_BLOCK_HDR + (size_t)len)
		return false;
	wr_be16(w->buf + w->len, len);
	if (len != 0)  /* msg may be NULL for an empty block */
		core_memcpy(w->buf + w->len + MOLD_BLOCK_HDR, msg, len);
	w->len += MOLD_BLOCK_HDR + (size_t)len;
	w->count++;
	return true;
}

/* An end-of-session packet carries no blocks: any added ones are dropped and
 * the datagram is the header alone. */
size_t mold_pack_end(struct mold_writer *w, bool end_of_session)
{
	if (w->len < MOLD_HDR_LEN)
		return 0;
	if (end_of_session) {
		w->len = MOLD_HDR_LEN;
		wr_be16(w->buf + MOLD_OFF_COUNT, MOLD_END_OF_SESSION);
	} else {
		wr_be16(w->buf + MOLD_OFF_COUNT, w->count);
	}
	return w->len;
}
