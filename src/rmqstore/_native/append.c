/* The write path: encode stored-message records into the active commit-log segment and their
 * 20-byte units into the active consume-queue file. RocketMQ sources: CommitLog.doAppend and
 * MessageExtEncoder (record), ConsumeQueue.putMessagePositionInfo (unit). */
#include "rmq_native.h"
#include "rmq_internal.h"
#include <time.h>

#define FIXED_NO_HOSTS 75 /* 91 minus two 8-byte IPv4 hosts */

static inline int64_t record_len(const rmq_log *log, int32_t sysflag, int32_t body_len,
                                 int32_t topic_len, int32_t props_len) {
    int32_t f = sysflag | log->host_flags;
    return FIXED_NO_HOSTS + ((f & RMQ_BORNHOST_V6) ? 20 : 8) + ((f & RMQ_STOREHOST_V6) ? 20 : 8) +
           body_len + topic_len + props_len;
}

/* Closes the segment with a BLANK filler: TOTALSIZE = bytes left, MAGIC = BLANK. */
static void close_segment(rmq_log *log) {
    int64_t pos = *log->wrote;
    uint8_t *p = log->seg + pos;
    put32(p + 4, (uint32_t)RMQ_MAGIC_BLANK);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    put32(p, (uint32_t)(log->seg_size - pos));
    *log->wrote = log->seg_size;
}

/* Encodes one record at p (the caller checked that it fits). TOTALSIZE is stored last: the
 * space was zero, so a writer killed mid-record leaves size 0, which recovery reads as the end
 * of the data, never as a record. */
static void encode(uint8_t *p, const rmq_log *log, const rmq_queue *q, int64_t len, int64_t phys,
                   int64_t queue_offset, const char *body, int32_t body_len, const char *props,
                   int32_t props_len, int32_t sysflag, int32_t flag, int64_t born_ts,
                   int64_t store_ts, int32_t reconsume_times, int64_t prepared_offset,
                   const char *born_host) {
    int32_t f = sysflag | log->host_flags;
    int64_t bh = (f & RMQ_BORNHOST_V6) ? 20 : 8, sh = (f & RMQ_STOREHOST_V6) ? 20 : 8;
    put32(p + 4, (uint32_t)RMQ_MAGIC_V1);
    put32(p + 8, rmq_crc32(body, (size_t)body_len));
    put32(p + 12, (uint32_t)q->queue_id);
    put32(p + 16, (uint32_t)flag);
    put64(p + 20, (uint64_t)queue_offset);
    put64(p + 28, (uint64_t)phys);
    put32(p + 36, (uint32_t)f);
    put64(p + 40, (uint64_t)born_ts);
    memcpy(p + 48, born_host ? born_host : log->born_host, bh);
    uint8_t *w = p + 48 + bh;
    put64(w, (uint64_t)store_ts);
    memcpy(w + 8, log->store_host, sh);
    w += 8 + sh;
    put32(w, (uint32_t)reconsume_times);
    put64(w + 4, (uint64_t)prepared_offset);
    put32(w + 12, (uint32_t)body_len);
    w += 16;
    memcpy(w, body, body_len);
    w += body_len;
    *w++ = (uint8_t)q->topic_len;
    memcpy(w, q->topic, q->topic_len);
    w += q->topic_len;
    put16(w, (uint16_t)props_len);
    memcpy(w + 2, props, props_len);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    put32(p, (uint32_t)len);
}

/* Store time: the wall clock in ms, never before the previous record's (monotone with the
 * offset, as RocketMQ stamps inside its put lock). */
static inline int64_t stamp(rmq_log *log) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (now < log->last_ts) now = log->last_ts;
    return now;
}

static inline int64_t next_queue_offset(const rmq_queue *q) {
    return (q->cq_start + *q->cq_wrote) / RMQ_CQ_UNIT;
}

/* Writes the unit and advances the queue; the record is already in place. */
static inline void add_unit(rmq_queue *q, int64_t phys, int64_t len, int64_t tags_code) {
    uint8_t *u = q->cq + *q->cq_wrote;
    put64(u, (uint64_t)phys);
    put32(u + 8, (uint32_t)len);
    put64(u + 12, (uint64_t)tags_code);
    *q->cq_wrote += RMQ_CQ_UNIT;
    q->max_phys = phys + len;
}

int64_t rmq_put(rmq_log *log, rmq_queue *q, const char *body, int32_t body_len,
                const char *props, int32_t props_len, int64_t tags_code, int32_t sysflag,
                int32_t flag, int64_t born_ts, int32_t reconsume_times, int64_t prepared_offset,
                const char *born_host) {
    if (!log->seg) return -RMQ_SEGMENT_FULL; /* no segment yet: the caller creates one */
    int64_t len = record_len(log, sysflag, body_len, q->topic_len, props_len);
    if (len + RMQ_END_FILE_MIN_BLANK > log->seg_size) return -RMQ_TOO_LARGE;
    if (*q->cq_wrote + RMQ_CQ_UNIT > q->cq_size) return -RMQ_QUEUE_FULL;
    int64_t pos = *log->wrote;
    if (len + RMQ_END_FILE_MIN_BLANK > log->seg_size - pos) {
        if (log->seg_size - pos >= RMQ_END_FILE_MIN_BLANK) close_segment(log); /* else closed */
        return -RMQ_SEGMENT_FULL;
    }
    int64_t phys = log->seg_start + pos, qoff = next_queue_offset(q);
    int64_t store_ts = stamp(log);
    if (born_ts < 0) born_ts = store_ts;
    encode(log->seg + pos, log, q, len, phys, qoff, body, body_len, props, props_len, sysflag,
           flag, born_ts, store_ts, reconsume_times, prepared_offset, born_host);
    *log->wrote = pos + len;
    log->last_phys = phys;
    log->last_ts = store_ts;
    add_unit(q, phys, len, tags_code);
    return qoff;
}

int64_t rmq_put_simple(rmq_log *log, rmq_queue *q, const char *body, int32_t body_len) {
    return rmq_put(log, q, body, body_len, "", 0, 0, 0, 0, -1, 0, 0, NULL);
}

int32_t rmq_put_batch(rmq_log *log, rmq_queue *q, const char *bodies, const int32_t *body_lens,
                      int32_t n, const char *props, int32_t props_len, int64_t tags_code,
                      int32_t flag, int64_t store_ts, int64_t *out_phys, int32_t *out_status) {
    if (!log->seg) { *out_status = RMQ_SEGMENT_FULL; return 0; }
    if (store_ts <= 0) store_ts = stamp(log);
    int64_t total = 0;
    for (int32_t i = 0; i < n; i++) total += record_len(log, 0, body_lens[i], q->topic_len, props_len);
    int64_t room = log->seg_size - *log->wrote;
    /* Keep a batch in one segment when an empty one could hold it (CommitLog.doAppend for
     * batches); a larger batch is written across segments. */
    if (total + RMQ_END_FILE_MIN_BLANK > room && total + RMQ_END_FILE_MIN_BLANK <= log->seg_size &&
        *log->wrote > 0) {
        if (room >= RMQ_END_FILE_MIN_BLANK) close_segment(log);
        *out_status = RMQ_SEGMENT_FULL;
        return 0;
    }
    int32_t i = 0;
    *out_status = RMQ_OK;
    for (; i < n; i++) {
        int32_t blen = body_lens[i];
        int64_t len = record_len(log, 0, blen, q->topic_len, props_len);
        if (*q->cq_wrote + RMQ_CQ_UNIT > q->cq_size) { *out_status = RMQ_QUEUE_FULL; break; }
        int64_t pos = *log->wrote;
        if (len + RMQ_END_FILE_MIN_BLANK > log->seg_size - pos) {
            if (len + RMQ_END_FILE_MIN_BLANK > log->seg_size) { *out_status = RMQ_TOO_LARGE; break; }
            if (log->seg_size - pos >= RMQ_END_FILE_MIN_BLANK) close_segment(log);
            *out_status = RMQ_SEGMENT_FULL;
            break;
        }
        int64_t phys = log->seg_start + pos;
        encode(log->seg + pos, log, q, len, phys, next_queue_offset(q), bodies, blen, props,
               props_len, 0, flag, store_ts, store_ts, 0, 0, NULL);
        *log->wrote = pos + len;
        log->last_phys = phys;
        log->last_ts = store_ts;
        add_unit(q, phys, len, tags_code);
        out_phys[i] = phys;
        bodies += blen;
    }
    return i;
}
