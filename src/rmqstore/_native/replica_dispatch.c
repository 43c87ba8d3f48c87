/* A replica's dispatch (replica_dispatch.py): its master's records, once appended, go to their
 * consume queues and the index as the master's put wrote them. RocketMQ sources:
 * DefaultMessageStore.ReputMessageService with CommitLogDispatcherBuildConsumeQueue and
 * CommitLogDispatcherBuildIndex (IndexService.buildIndex); CommitLog.checkMessageAndReturnSize
 * (a delayed message's tags code is its delivery time). */
#include "rmq_native.h"
#include "rmq_internal.h"

/* The properties dispatch reads, found in one pass over props (pairs name \x01 value \x02):
 * each one's last value, at[k] = -1 when absent. One pass, not one per name: the pairs are
 * walked once per record of every catch-up. */
enum { PROP_TAGS, PROP_UNIQ_KEY, PROP_KEYS, PROP_DELAY, N_PROPS };
static const struct { const char *name; int64_t len; } WANTED[N_PROPS] = {
    {"TAGS", 4}, {"UNIQ_KEY", 8}, {"KEYS", 4}, {"DELAY", 5}};

static void find_props(const uint8_t *props, int64_t len, int64_t *at, int64_t *value_len) {
    for (int k = 0; k < N_PROPS; k++) {
        at[k] = -1;
        value_len[k] = 0;
    }
    int64_t i = 0;
    while (i < len) {
        const uint8_t *end = memchr(props + i, 2, (size_t)(len - i));
        int64_t pair_end = end ? (int64_t)(end - props) : len;
        const uint8_t *sep = memchr(props + i, 1, (size_t)(pair_end - i));
        int64_t name_len = sep ? (int64_t)(sep - (props + i)) : -1;
        for (int k = 0; k < N_PROPS; k++) {
            if (WANTED[k].len == name_len && memcmp(props + i, WANTED[k].name, name_len) == 0) {
                at[k] = (int64_t)(sep - props) + 1;
                value_len[k] = pair_end - at[k];
                break;
            }
        }
        i = pair_end + 1;
    }
}

/* The RMQ_DISPATCH_FIELDS of the record at seg[pos] into o. Returns its size, 0 for a BLANK,
 * -1 when the bytes are not a record, -2 when it ends past `end`. */
static int64_t dispatch_fields(const uint8_t *seg, int64_t seg_size, int64_t pos, int64_t end,
                               int64_t *o) {
    int64_t f[16];
    int64_t size = rmq_parse(seg, seg_size, pos, 0, f);
    if (size <= 0) return size;
    if (pos + size > end) return -2;
    const uint8_t *props = seg + f[14];
    int64_t at[N_PROPS], len[N_PROPS];
    find_props(props, f[15], at, len);
    o[0] = f[4];  /* physical offset */
    o[1] = size;
    o[2] = f[1];  /* queue id */
    o[3] = f[3];  /* queue offset */
    o[4] = f[7];  /* store time */
    o[5] = f[12]; /* topic position */
    o[6] = f[13]; /* topic length */
    int64_t t = at[PROP_TAGS];
    o[7] = t >= 0 && len[PROP_TAGS] > 0
        ? rmq_java_hash((const char *)props + t, (size_t)len[PROP_TAGS]) : 0;
    o[8] = at[PROP_UNIQ_KEY] >= 0 && len[PROP_UNIQ_KEY] > 0 ? f[14] + at[PROP_UNIQ_KEY] : -1;
    o[9] = len[PROP_UNIQ_KEY];
    o[10] = at[PROP_KEYS] >= 0 && len[PROP_KEYS] > 0 ? f[14] + at[PROP_KEYS] : -1;
    o[11] = len[PROP_KEYS];
    int64_t d = at[PROP_DELAY], d_len = len[PROP_DELAY];
    int64_t level = 0;
    for (int64_t k = 0; d >= 0 && k < d_len && k < 9; k++) {
        uint8_t c = props[d + k];
        if (c < '0' || c > '9') { level = 0; break; }
        level = level * 10 + (c - '0');
    }
    o[12] = level;
    return size;
}

int32_t rmq_scan_dispatch(const uint8_t *seg, int64_t seg_size, int64_t pos, int64_t end,
                          int64_t *out, int32_t max_out, int64_t *out_next, int32_t *out_status) {
    int32_t n = 0;
    *out_status = RMQ_DISPATCH_MORE;
    while (pos < end && n < max_out) {
        int64_t size = dispatch_fields(seg, seg_size, pos, end,
                                       out + (int64_t)n * RMQ_DISPATCH_FIELDS);
        if (size == 0) { *out_status = RMQ_DISPATCH_BLANK; break; }
        if (size < 0) { *out_status = size == -1 ? RMQ_DISPATCH_INVALID : RMQ_DISPATCH_MORE; break; }
        n++;
        pos += size;
    }
    *out_next = pos;
    return n;
}

int32_t rmq_add_unit(rmq_queue *q, int64_t queue_offset, int64_t phys, int32_t size,
                     int64_t tags_code) {
    rmq_queue_unstage(q);
    if (q->cq == NULL || q->cq_cell + RMQ_CQ_UNIT > q->cq_size) return -RMQ_QUEUE_FULL;
    if ((q->cq_start + q->cq_cell) / RMQ_CQ_UNIT != queue_offset) return -RMQ_OUT_OF_ORDER;
    uint8_t *u = q->cq + q->cq_cell;
    put64(u, (uint64_t)phys);
    put32(u + 8, (uint32_t)size);
    put64(u + 12, (uint64_t)tags_code);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    q->cq_cell += RMQ_CQ_UNIT;
    q->max_phys = phys + size;
    q->touched = 1;
    return 0;
}

/* FNV-1a over the topic, then the queue id. */
static uint32_t queue_hash(const uint8_t *topic, int64_t len, int32_t queue_id) {
    uint32_t h = 2166136261u;
    for (int64_t i = 0; i < len; i++) h = (h ^ topic[i]) * 16777619u;
    return (h ^ (uint32_t)queue_id) * 16777619u;
}

static int same_queue(const rmq_queue *q, const uint8_t *topic, int64_t len, int32_t queue_id) {
    return q->queue_id == queue_id && q->topic_len == len && memcmp(q->topic, topic, len) == 0;
}

int32_t rmq_qmap_put(rmq_qmap *m, rmq_queue *q, int32_t id) {
    uint32_t mask = (uint32_t)m->cap - 1;
    uint32_t i = queue_hash((const uint8_t *)q->topic, q->topic_len, q->queue_id) & mask;
    while (m->queues[i] != NULL) {
        if (same_queue(m->queues[i], (const uint8_t *)q->topic, q->topic_len, q->queue_id)) break;
        i = (i + 1) & mask;
    }
    if (m->queues[i] == NULL) {
        if ((int64_t)(m->count + 1) * 4 > (int64_t)m->cap * 3) return -1;
        m->count++;
    }
    m->queues[i] = q;
    m->ids[i] = id;
    m->stamps[i] = 0;
    return 0;
}

static int32_t qmap_find(const rmq_qmap *m, const uint8_t *topic, int64_t len, int32_t queue_id) {
    uint32_t mask = (uint32_t)m->cap - 1;
    uint32_t i = queue_hash(topic, len, queue_id) & mask;
    while (m->queues[i] != NULL) {
        if (same_queue(m->queues[i], topic, len, queue_id)) return (int32_t)i;
        i = (i + 1) & mask;
    }
    return -1;
}

/* The index keys of a record (UNIQ_KEY, then each non-empty space-separated KEYS token), as
 * positions in seg; returns how many. */
static int32_t count_keys(const uint8_t *seg, const int64_t *o) {
    int32_t n = o[8] >= 0 ? 1 : 0;
    if (o[10] >= 0) {
        const uint8_t *k = seg + o[10];
        for (int64_t i = 0; i < o[11]; i++)
            if (k[i] != ' ' && (i == 0 || k[i - 1] == ' ')) n++;
    }
    return n;
}

static void put_key(rmq_dispatcher *d, uint32_t prefix, const uint8_t *key, int64_t len,
                    int64_t phys, int64_t ts) {
    int32_t h = (int32_t)rmq_java_hash_from(prefix, key, (size_t)len);
    d->keys += rmq_index_put_hashed(d->idx, d->slot_num, d->index_num, h, phys, ts);
}

/* Index the record's keys as "topic#key"; the caller checked there is room for all. */
static void index_record(rmq_dispatcher *d, const uint8_t *seg, const int64_t *o) {
    uint32_t prefix = rmq_java_hash_from(0, seg + o[5], (size_t)o[6]);
    prefix = 31 * prefix + '#';
    if (o[8] >= 0) put_key(d, prefix, seg + o[8], o[9], o[0], o[4]);
    if (o[10] < 0) return;
    const uint8_t *k = seg + o[10];
    int64_t start = 0;
    for (int64_t i = 0; i <= o[11]; i++) {
        if (i == o[11] || k[i] == ' ') {
            if (i > start) put_key(d, prefix, k + start, i - start, o[0], o[4]);
            start = i + 1;
        }
    }
}

/* Whether the index takes the record's keys now: 1 yes, 0 nothing to index (none, or the
 * record is below the last file's end: indexed already), -1 only through Python (no file yet,
 * or too little room left in it). */
static int index_ready(const rmq_dispatcher *d, const uint8_t *seg, const int64_t *o,
                       int32_t *n_keys) {
    if (!d->index_on || (o[8] < 0 && o[10] < 0)) return 0;
    if (d->idx == NULL) return -1;
    if (o[0] < (int64_t)get64(d->idx + 24)) return 0; /* buildIndex: indexed already */
    *n_keys = count_keys(seg, o);
    int32_t count = (int32_t)get32(d->idx + 36);
    if (count < 1) count = 1;
    return (int64_t)count + *n_keys <= d->index_num ? 1 : -1;
}

/* Ask for the lines a record two ahead is parsed from (its header, its topic and properties
 * at its end), guessing it is as long as this one: the records are read here first, from
 * memory, and the parse would otherwise wait for every line. A wrong guess costs nothing. */
static inline void prefetch_ahead(const uint8_t *seg, int64_t seg_size, int64_t pos,
                                  int64_t size) {
    int64_t next = pos + 2 * size;
    if (next + size > seg_size) return;
    __builtin_prefetch(seg + next);
    __builtin_prefetch(seg + next + size - 128);
    __builtin_prefetch(seg + next + size - 64);
}

int32_t rmq_dispatch(rmq_dispatcher *d, const uint8_t *seg, int64_t seg_size, int64_t pos,
                     int64_t end, int32_t max_records, int64_t *out_next, int32_t *out_status) {
    rmq_qmap *m = d->queues;
    if (++m->stamp == 0) {
        memset(m->stamps, 0, sizeof(int32_t) * (size_t)m->cap);
        m->stamp = 1;
    }
    d->n_touched = 0;
    d->keys = 0;
    int32_t n = 0, status = RMQ_DISPATCH_MORE;
    int64_t o[RMQ_DISPATCH_FIELDS];
    while (pos < end && n < max_records) {
        int64_t size = dispatch_fields(seg, seg_size, pos, end, o);
        if (size == 0) { status = RMQ_DISPATCH_BLANK; break; }
        if (size < 0) { status = size == -1 ? RMQ_DISPATCH_INVALID : RMQ_DISPATCH_MORE; break; }
        int32_t slot = qmap_find(m, seg + o[5], o[6], (int32_t)o[2]);
        int32_t n_keys = 0;
        int index = index_ready(d, seg, o, &n_keys);
        if (slot < 0 || index < 0) { status = RMQ_DISPATCH_SLOW; break; }
        int64_t code = o[7];
        if (o[12] > 0 && d->n_delays > 0 && o[6] == d->delay_topic_len
            && memcmp(seg + o[5], d->delay_topic, (size_t)o[6]) == 0) {
            int64_t level = o[12] < d->n_delays ? o[12] : d->n_delays;
            code = o[4] + d->delays_ms[level - 1];
        }
        if (rmq_add_unit(m->queues[slot], o[3], o[0], (int32_t)size, code) != 0) {
            status = RMQ_DISPATCH_SLOW; /* a full file, a queue's first unit or a gap */
            break;
        }
        if (index > 0) index_record(d, seg, o);
        if (m->stamps[slot] != m->stamp) {
            m->stamps[slot] = m->stamp;
            d->touched[d->n_touched++] = m->ids[slot];
        }
        d->last_ts = o[4];
        n++;
        prefetch_ahead(seg, seg_size, pos, size);
        pos += size;
    }
    *out_next = pos;
    *out_status = status;
    return n;
}
