/* cdef for hftlab._core: the subset of kernel_src/core and hostcore.h that
 * Python calls. "..." lets the C compiler supply layouts and constants, so
 * nothing here can drift from the real headers. */

#define ITCH_NTYPES ...
#define STRAT_MAX_SYMBOLS ...
#define OUCH_ENTER_LEN ...
#define OUCH_MAX_LEN ...
#define OUCH_REPLACE_LEN ...
#define OUCH_CANCEL_LEN ...
#define OUCH_TOKEN_LEN ...
#define MOLD_SESSION_LEN ...
#define ENGINE_CONFIG_MAGIC ...
#define ENGINE_CONFIG_VERSION ...
#define BOOK_NIL ...
#define STRAT_STATE_MAX ...

enum itch_field { ITCH_F_ORDER_REF, ITCH_F_NEW_ORDER_REF, ITCH_F_SIDE, ITCH_F_SHARES,
	ITCH_F_STOCK, ITCH_F_PRICE, ITCH_F_MATCH, ITCH_F_ATTRIBUTION, ITCH_F_PRINTABLE,
	ITCH_F_CROSS_TYPE, ITCH_F_EVENT_CODE, ITCH_F_REASON, ... };
enum itch_frame_status { ITCH_FRAME_OK, ITCH_FRAME_END, ITCH_FRAME_TRUNCATED,
	ITCH_FRAME_UNFRAMED, ... };
enum risk_reason { RISK_OK, RISK_KILL, RISK_SIZE, RISK_POSITION, RISK_NOTIONAL, RISK_RATE,
	RISK_BAND, RISK_NO_REFERENCE, RISK_UNKNOWN_ORDER, RISK_LIVE_FULL, RISK_NREASONS, ... };
enum book_side { BOOK_BID, BOOK_ASK, ... };

struct itch_msg {
	uint64_t timestamp_ns; uint64_t order_ref; uint64_t new_order_ref; uint64_t shares;
	uint64_t match_number; uint32_t price; uint32_t present; uint16_t stock_locate;
	uint16_t tracking; char type; char side; char printable; char cross_type;
	char event_code; char stock[8]; char attribution[4]; char reason[4];
	...;
};
struct itch_counters { uint64_t messages; uint64_t by_type[256]; uint64_t unknown_type;
	uint64_t bad_length; uint64_t empty; ...; };
struct mold_counters { uint64_t packets; uint64_t messages; uint64_t heartbeats;
	uint64_t end_of_session; uint64_t gaps; uint64_t gap_messages; uint64_t duplicates;
	uint64_t duplicate_messages; uint64_t malformed; uint64_t sessions_full;
	uint64_t after_end; ...; };
struct mold_state { struct mold_counters c; ...; };
struct book_order { ...; };
struct book_level { ...; };
struct book_counters { uint64_t adds; uint64_t executes; uint64_t cancels; uint64_t deletes;
	uint64_t replaces; uint64_t unknown_ref; uint64_t duplicate_ref; uint64_t over_execute;
	uint64_t bad_side; uint64_t full_orders; uint64_t full_levels; ...; };
struct book_mem { struct book_order *orders; uint32_t order_cap; uint32_t *index;
	uint32_t index_cap; struct book_level *levels; uint32_t level_cap; uint32_t *lindex;
	uint32_t lindex_cap; ...; };
struct book { uint32_t live_orders; uint32_t live_levels; struct book_counters c; ...; };
struct order_intent { uint64_t trigger_seq; uint64_t feed_ts_ns; uint32_t shares;
	uint32_t price; uint16_t locate; uint16_t slot; char side;
	char stock[8]; uint8_t kind; uint64_t orig_seq; ...; };
struct strategy_config { uint32_t n_symbols; uint32_t order_shares; uint32_t imbalance_num;
	uint32_t imbalance_den; uint32_t min_top_shares; uint32_t max_spread;
	uint32_t cross_trigger; uint32_t reserved;
	char symbols[64][8]; };
struct strategy_symbol { char stock[8]; uint16_t locate; uint32_t last_trade; ...; };
struct strategy_counters { uint64_t evaluations; uint64_t signals; uint64_t symbols_full; ...; };
struct strategy { struct strategy_symbol sym[64]; uint32_t n_slots;
	struct strategy_counters c; uint64_t state[...]; ...; };
extern const uint32_t strategy_state_size;
extern const uint32_t strategy_wake;
struct risk_config { uint64_t max_position; uint64_t max_notional; uint32_t max_order_shares;
	uint32_t max_orders_per_sec; uint32_t price_band_bps; uint32_t kill; };
struct risk_symbol { int64_t position; uint64_t notional; uint32_t last_trade; ...; };
struct risk_counters { uint64_t accepted; uint64_t rejected[10]; ...; };
struct risk { struct risk_symbol sym[64]; struct risk_counters c; ...; };
struct engine_config { uint32_t magic; uint32_t version; uint32_t instance; uint32_t pad;
	struct strategy_config strat; struct risk_config risk; };
struct engine { struct mold_state mold; struct itch_counters itch; struct book book;
	struct strategy strat; struct risk risk; uint64_t orders; uint64_t seq_too_large;
	uint8_t instance; ...; };

uint16_t itch_msg_len(uint8_t type);
int itch_decode(const uint8_t *buf, size_t len, struct itch_msg *m);
bool engine_init(struct engine *e, const struct engine_config *cfg, const struct book_mem *mem);
bool book_best(const struct book *b, uint16_t locate, int side, uint32_t *price, uint64_t *shares);
uint32_t book_depth(const struct book *b, uint16_t locate, int side, uint32_t *prices,
		    uint64_t *shares, uint32_t *orders, uint32_t n);
bool book_order_shares(const struct book *b, uint64_t ref, uint32_t *shares);
void risk_set_kill(struct risk *r, bool on);
void ouch_token(char out[14], uint8_t instance, uint64_t seq);
bool ouch_token_parse(const char tok[14], uint8_t *instance, uint64_t *seq);
size_t ouch_encode_order(uint8_t *buf, size_t cap, const struct order_intent *o, uint8_t instance);
size_t ouch_encode_intent(uint8_t *buf, size_t cap, const struct order_intent *o, uint8_t instance);
enum order_kind { ORDER_ENTER, ORDER_POST, ORDER_REPLACE, ORDER_CANCEL, ... };

struct hc_itch_cols { uint8_t *msg_type; uint16_t *stock_locate; uint16_t *tracking;
	uint64_t *timestamp_ns; uint64_t *order_ref; uint64_t *new_order_ref; uint8_t *side;
	uint64_t *shares; int32_t *stock_offsets; uint8_t *stock_data; uint32_t *price;
	uint64_t *match_number; uint32_t *present; uint8_t *printable; uint8_t *cross_type;
	uint8_t *event_code; uint64_t *file_offset; size_t cap; };
struct hc_decode_result { size_t rows; size_t offset; int status; };
struct hc_itch_cols;
struct hc_decode_result hc_itch_decode(const uint8_t *buf, size_t len, size_t off,
	uint64_t max_msgs, struct hc_itch_cols *cols, struct itch_counters *cnt);
struct hc_golden { struct engine *eng; uint8_t *out; size_t out_cap; size_t n_out; size_t out_len;
	uint64_t lost; uint64_t *top; uint64_t next_seq; uint64_t packets; uint8_t session[10]; };
struct hc_decode_result hc_golden_feed_file(struct hc_golden *g, const uint8_t *buf,
	size_t len, size_t off, uint64_t max_msgs, uint16_t max_payload, uint16_t max_count);
int hc_golden_feed_packet(struct hc_golden *g, const uint8_t *buf, size_t len);

struct tslog_rec { uint64_t trigger_seq; uint64_t tsc_rx; uint64_t tsc_doorbell; uint64_t tsc_tx;
	uint64_t ptp_ns; uint32_t price;
	uint32_t shares; uint16_t locate; char side; uint8_t flags; ...; };
struct tslog { uint32_t cap; uint32_t head; uint64_t total; ...; };
void tslog_init(struct tslog *l, struct tslog_rec *recs, uint32_t cap);
struct tslog_rec *tslog_next(struct tslog *l);
uint32_t tslog_crc32(uint32_t crc, const void *buf, size_t len);
size_t hc_tslog_dump(char *out, size_t cap, const struct tslog *l,
	const char *const *names, const uint64_t *values, size_t n);

int hx_netns_socket(const char *netns_path, int domain, int type, int protocol, char *err,
	size_t errlen);
int hx_udp_socket(const char *netns_path, uint32_t bind_ip, uint16_t bind_port, int bufsize,
	char *err, size_t errlen);
struct hx_replay { int fd; const uint8_t *data;
	const uint64_t *offsets; size_t n; const uint64_t *due_ns; uint64_t spin_ns;
	uint64_t spin_min_ns; uint64_t spin_max_ns; int64_t oversleep_q_ns; uint64_t start_delay_ns; int rt_prio; int64_t *sent_ns; volatile int *stop; size_t sent;
	uint64_t late_ns_max; int64_t t0_real_ns; uint64_t backoffs; int rt; int err; };
int hx_replay_run(struct hx_replay *r);
struct hx_sink { int fd; uint8_t *buf; size_t buf_cap; uint64_t *offsets; int64_t *rx_ns;
	uint32_t *src_ip; size_t max; int poll_ms; volatile int *stop; size_t n; uint64_t dropped;
	int err; };
int hx_sink_run(struct hx_sink *s);

#define HC_NEED_SPACE ...
struct hc_packets { uint8_t *data; size_t cap; uint64_t *offsets; uint16_t *counts; size_t max;
	size_t n; };
struct hc_decode_result hc_pack_file(const uint8_t *buf, size_t len, size_t off,
	uint64_t max_msgs, uint16_t max_payload, uint16_t max_count, const uint8_t *session,
	uint64_t first_seq, struct hc_packets *out);

struct net_endpoint { uint8_t mac[6]; uint16_t port; uint32_t ip; };
size_t hc_frame_feed(const uint8_t *data, const uint64_t *offsets, size_t n,
	const struct net_endpoint *src, const struct net_endpoint *dst, uint8_t *out,
	uint64_t *out_offsets);

struct net_udp_view { const uint8_t *eth_dst; const uint8_t *eth_src; uint32_t ip_src;
	uint32_t ip_dst; uint16_t src_port; uint16_t dst_port; const uint8_t *payload;
	uint16_t payload_len; };
int net_parse_udp(const uint8_t *frame, size_t len, struct net_udp_view *v);

#define HFTOS_CONFIG_MAGIC ...
#define HFTOS_CONFIG_VERSION ...
#define HFTOS_LOG_MAX ...
#define HFTOS_F_FAULT ...
#define HFTOS_F_BOOT_ONLY ...
#define HFTOS_F_HICCUPS ...
#define HFTOS_F_PTP ...
#define HFTOS_F_PTP_NOWAIT ...

#define HICCUP_BUCKETS ...
#define HICCUP_TOP ...
struct hiccup { uint64_t tsc_hz; uint64_t threshold_cycles; uint64_t iterations; uint64_t gaps;
	uint64_t gap_ns_total; ...; };
uint64_t hiccup_cycles_to_ns(uint64_t cycles, uint64_t hz);
uint64_t hiccup_ns_to_cycles(uint64_t ns, uint64_t hz);
void hiccup_start(struct hiccup *h, uint64_t tsc_hz, uint64_t duration_ns,
	uint64_t threshold_ns, uint64_t now);
bool hiccup_note(struct hiccup *h, uint64_t now);
size_t hc_hiccup_dump(char *out, size_t cap, const struct hiccup *h);
struct hftos_config { uint64_t magic; uint32_t version; uint32_t size; uint8_t mac_peer[6];
	uint8_t ptp_domain;
	uint32_t ip_self; uint32_t ip_peer; uint16_t md_port; uint16_t order_port;
	uint16_t ctl_port; uint16_t src_port; uint64_t max_messages; uint64_t ctl_key;
	uint32_t flags; uint32_t log_capacity; uint64_t hiccup_ns; uint64_t hiccup_threshold_ns;
	struct engine_config engine; ...; };

/* kernel_src/core/ptp.h: the PTPv2 slave (tests/test_ptp_slave.py) */
#define PTP_DELAY_REQ_LEN ...
#define PTP_SAMPLES ...
#define PTP_ACT_DELAY_REQ ...
#define PTP_ACT_SAMPLE ...
#define PTP_SF_TWO_STEP ...
#define PTP_SF_OUTLIER ...
#define PTP_SF_STEP ...
enum ptp_state { PTP_LISTENING, PTP_UNCALIBRATED, PTP_LOCKED, PTP_HOLDOVER, ... };
struct ptp_config { uint64_t tsc_hz; uint8_t clock_id[8]; uint8_t domain; bool hw_stamps;
	int8_t log_min_delay_req; uint64_t step_ns; ...; };
struct ptp_counters { uint64_t rx; uint64_t tx_delay_req; uint64_t sync; uint64_t follow_up;
	uint64_t delay_resp; uint64_t announce; uint64_t other_type; uint64_t wrong_domain;
	uint64_t wrong_version; uint64_t truncated; uint64_t oversized; uint64_t bad_timestamp;
	uint64_t not_from_master; uint64_t seq_mismatch; uint64_t not_for_us; uint64_t foreign_full;
	uint64_t master_changes; uint64_t samples; uint64_t outliers; uint64_t steps;
	uint64_t master_steps; uint64_t backward_holds; uint64_t holdovers;
	uint64_t delay_resp_lost; ...; };
struct ptp_sample { uint64_t tsc; int64_t t1_ns; int64_t t2_ns; int64_t correction_ns;
	int64_t offset_ns; int64_t mean_path_delay_ns; int64_t freq_ppb_scaled; uint16_t seq_id;
	uint8_t state; uint8_t flags; ...; };
struct ptp { struct ptp_config cfg; struct ptp_counters c; int64_t freq_sppb; int64_t mpd_ns;
	int best; enum ptp_state state; ...; };
void ptp_clock_id_from_mac(uint8_t id[8], const uint8_t mac[6]);
void ptp_init(struct ptp *s, const struct ptp_config *cfg, struct ptp_sample *samples, uint32_t cap);
unsigned ptp_rx(struct ptp *s, const uint8_t *msg, size_t len, uint64_t tsc_rx);
size_t ptp_delay_req(struct ptp *s, uint8_t *buf, size_t cap);
void ptp_delay_req_sent(struct ptp *s, uint64_t tsc_tx);
enum ptp_state ptp_state(struct ptp *s, uint64_t now);
int64_t ptp_time(const struct ptp *s, uint64_t tsc);
uint64_t ptp_ns_to_cycles(const struct ptp *s, uint64_t ns);
uint32_t ptp_samples_count(const struct ptp *s);
const struct ptp_sample *ptp_sample_at(const struct ptp *s, uint32_t i);
void ptp_dump_series(const struct ptp *s, void (*write)(void *ctx, const char *buf, size_t len),
	void *ctx);
