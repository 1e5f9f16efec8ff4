/*
 * hostcore.c - batch decoding and the golden model's loop (see hostcore.h).
 */
#include "hostcore.h"

static size_t hc_trimmed_len(const char stock[8])
{
	size_t n = 8;

	while (n > 0 && (stock[n - 1] == ' ' || stock[n - 1] == '\0'))
		n--;
	return n;
}

/* Arrow strings must be UTF-8: a hostile feed's non-ASCII byte becomes '?'. */
static inline uint8_t hc_ascii(char ch)
{
	uint8_t b = (uint8_t)ch;

	return (b >= 0x20 && b < 0x7F) ? b : (uint8_t)'?';
}

static void hc_put_row(struct hc_itch_cols *c, size_t r, const struct itch_msg *m, size_t at)
{
	c->msg_type[r] = (uint8_t)m->type;
	c->stock_locate[r] = m->stock_locate;
	c->tracking[r] = m->tracking;
	c->timestamp_ns[r] = m->timestamp_ns;
	c->order_ref[r] = m->order_ref;
	c->new_order_ref[r] = m->new_order_ref;
	c->side[r] = hc_ascii(m->side);
	c->shares[r] = m->shares;
	c->price[r] = m->price;
	c->match_number[r] = m->match_number;
	c->present[r] = m->present;
	c->printable[r] = hc_ascii(m->printable);
	c->cross_type[r] = hc_ascii(m->cross_type);
	c->event_code[r] = hc_ascii(m->event_code);
	c->file_offset[r] = at;
	int32_t o = c->stock_offsets[r];
	size_t n = (m->present & ITCH_F_STOCK) ? hc_trimmed_len(m->stock) : 0;
	for (size_t i = 0; i < n; i++)
		c->stock_data[o + (int32_t)i] = hc_ascii(m->stock[i]);
	c->stock_offsets[r + 1] = o + (int32_t)n;
}

struct hc_decode_result hc_itch_decode(const uint8_t *buf, size_t len, size_t off,
				       uint64_t max_msgs, struct hc_itch_cols *cols,
				       struct itch_counters *cnt)
{
	struct hc_decode_result res = { 0, off, ITCH_FRAME_OK };
	struct itch_frame f;
	struct itch_msg m;
	uint64_t seen = 0;

	cols->stock_offsets[0] = 0;
	while (res.rows < cols->cap && (max_msgs == 0 || seen < max_msgs)) {
		size_t at = res.offset;
		res.status = itch_frame_next(buf, len, &res.offset, &f);
		if (res.status != ITCH_FRAME_OK)
			return res;
		seen++;
		if (itch_decode_counted(f.msg, f.len, &m, cnt) == ITCH_OK)
			hc_put_row(cols, res.rows++, &m, at);
	}
	return res;
}

static void hc_collect(void *ctx, const struct order_intent *o)
{
	struct hc_golden *g = ctx;

	if (g->n_out == g->out_cap) {
		g->lost++;
		return;
	}
	g->out_len += ouch_encode_intent(g->out + g->out_len, OUCH_MAX_LEN, o, g->eng->instance);
	if (g->top) {
		uint64_t *t = g->top + 4 * g->n_out;
		uint32_t p;
		uint64_t s;
		t[0] = t[1] = t[2] = t[3] = 0;
		if (book_best(&g->eng->book, o->locate, BOOK_BID, &p, &s)) {
			t[0] = p;
			t[1] = s;
		}
		if (book_best(&g->eng->book, o->locate, BOOK_ASK, &p, &s)) {
			t[2] = p;
			t[3] = s;
		}
	}
	g->n_out++;
}

int hc_golden_feed_packet(struct hc_golden *g, const uint8_t *buf, size_t len)
{
	g->packets++;
	return engine_on_packet(g->eng, buf, len, hc_collect, g);
}

/* Pack the next datagram from framed messages at *off: at most max_count
 * messages and max_payload bytes (a message too big for an empty datagram
 * goes alone). Returns its length (0: nothing packed) and the messages in it;
 * *status is the framing status of the stop. */
static size_t hc_pack_next(const uint8_t *buf, size_t len, size_t *off, uint64_t max_msgs,
			   size_t max_payload, uint16_t max_count, const uint8_t *session,
			   uint64_t seq, uint8_t *pkt, size_t pkt_cap, uint16_t *msgs, int *status)
{
	struct mold_writer w;
	struct itch_frame f;
	size_t next = *off;

	*status = ITCH_FRAME_OK;
	mold_pack_begin(&w, pkt, max_payload < pkt_cap ? max_payload : pkt_cap, session, seq);
	while ((max_msgs == 0 || w.count < max_msgs) && w.count < max_count) {
		*status = itch_frame_next(buf, len, &next, &f);
		if (*status != ITCH_FRAME_OK)
			break;
		if (!mold_pack_add(&w, f.msg, f.len)) {
			if (w.count != 0)
				break;  /* the message starts the next datagram */
			w.cap = pkt_cap;
			if (!mold_pack_add(&w, f.msg, f.len))
				break;
		}
		*off = next;
	}
	*msgs = w.count;
	return w.count ? mold_pack_end(&w, false) : 0;
}

struct hc_decode_result hc_golden_feed_file(struct hc_golden *g, const uint8_t *buf,
					    size_t len, size_t off, uint64_t max_msgs,
					    uint16_t max_payload, uint16_t max_count)
{
	struct hc_decode_result res = { 0, off, ITCH_FRAME_OK };
	uint8_t pkt[65536 + MOLD_HDR_LEN];
	uint16_t n_msgs;

	if (max_count == 0 || max_count > 0xFFFE)
		max_count = 0xFFFE;
	while (max_msgs == 0 || res.rows < max_msgs) {
		if (g->out_cap - g->n_out < max_count) {
			res.status = HC_NEED_SPACE;
			return res;
		}
		size_t n = hc_pack_next(buf, len, &res.offset, max_msgs ? max_msgs - res.rows : 0,
					max_payload, max_count, g->session, g->next_seq, pkt,
					sizeof(pkt), &n_msgs, &res.status);
		if (n == 0)
			return res;
		res.rows += n_msgs;
		g->next_seq += n_msgs;
		hc_golden_feed_packet(g, pkt, n);
		if (res.status != ITCH_FRAME_OK)
			return res;
	}
	return res;
}

struct hc_decode_result hc_pack_file(const uint8_t *buf, size_t len, size_t off,
				     uint64_t max_msgs, uint16_t max_payload, uint16_t max_count,
				     const uint8_t *session, uint64_t first_seq, struct hc_packets *out)
{
	struct hc_decode_result res = { 0, off, ITCH_FRAME_OK };
	uint64_t seq = first_seq;

	if (max_count == 0 || max_count > 0xFFFE)
		max_count = 0xFFFE;
	out->offsets[0] = 0;
	out->n = 0;
	while ((max_msgs == 0 || res.rows < max_msgs) && out->n < out->max) {
		uint64_t at = out->offsets[out->n];
		if (out->cap - at < 65536 + MOLD_HDR_LEN) {
			res.status = HC_NEED_SPACE;
			return res;
		}
		size_t n = hc_pack_next(buf, len, &res.offset, max_msgs ? max_msgs - res.rows : 0,
					max_payload, max_count, session, seq, out->data + at,
					65536 + MOLD_HDR_LEN, &out->counts[out->n], &res.status);
		if (n == 0)
			return res;
		res.rows += out->counts[out->n];
		seq += out->counts[out->n];
		out->offsets[++out->n] = at + n;
		if (res.status != ITCH_FRAME_OK)
			return res;
	}
	return res;
}

struct hc_sink {
	char *out;
	size_t cap;
	size_t len;
};

static void hc_sink_write(void *ctx, const char *buf, size_t n)
{
	struct hc_sink *s = ctx;

	if (s->len < s->cap)
		core_memcpy(s->out + s->len, buf, (s->cap - s->len) < n ? (s->cap - s->len) : n);
	s->len += n;
}

size_t hc_tslog_dump(char *out, size_t cap, const struct tslog *l,
		     const char *const *names, const uint64_t *values, size_t n)
{
	struct hc_sink s = { out, cap, 0 };
	struct tslog_dump d;

	tslog_dump_begin(&d, hc_sink_write, &s);
	for (size_t i = 0; i < n; i++)
		tslog_dump_counter(&d, names[i], values[i]);
	tslog_dump_records(&d, l);
	tslog_dump_end(&d);
	return s.len;
}

size_t hc_hiccup_dump(char *out, size_t cap, const struct hiccup *h)
{
	struct hc_sink s = { out, cap, 0 };
	struct tslog_dump d;

	tslog_dump_begin(&d, hc_sink_write, &s);
	hiccup_dump_counters(h, &d);
	tslog_dump_end(&d);
	return s.len;
}

size_t hc_frame_feed(const uint8_t *data, const uint64_t *offsets, size_t n,
		     const struct net_endpoint *src, const struct net_endpoint *dst,
		     uint8_t *out, uint64_t *out_offsets)
{
	uint64_t at = 0;

	out_offsets[0] = 0;
	for (size_t i = 0; i < n; i++) {
		size_t len = (size_t)(offsets[i + 1] - offsets[i]);
		uint8_t *frame = out + at;
		core_memcpy(frame + NET_UDP_HDRS, data + offsets[i], len);
		at += net_build_udp(frame, len + NET_UDP_HDRS + NET_ETH_MIN_FRAME, src, dst,
				    (uint16_t)len, (uint16_t)i);
		out_offsets[i + 1] = at;
	}
	return (size_t)at;
}
