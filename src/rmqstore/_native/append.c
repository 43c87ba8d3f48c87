/* The write path: encode stored-message records into the active commit-log segment and their
 * 20-byte units into the active consume-queue file. RocketMQ sources: CommitLog.doAppend and
 * MessageExtEncoder (record), ConsumeQueue.putMessagePositionInfo (unit). */
#include "rmq_native.h"
#include "rmq_internal.h"
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

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

/* A batch of total bytes stays in one segment when an empty one could hold it
 * (CommitLog.doAppend for batches): 1 when the current segment cannot, after closing it with a
 * filler where there is room for one; a larger batch is written across segments. */
static int roll_for_whole_batch(rmq_log *log, int64_t total) {
    int64_t room = log->seg_size - *log->wrote;
    if (total + RMQ_END_FILE_MIN_BLANK <= room || total + RMQ_END_FILE_MIN_BLANK > log->seg_size ||
        *log->wrote == 0)
        return 0;
    if (room >= RMQ_END_FILE_MIN_BLANK) close_segment(log);
    return 1;
}

/* Encodes one record at p (the caller checked that it fits). TOTALSIZE is stored last: the
 * space was zero, so a writer killed mid-record leaves size 0, which recovery reads as the end
 * of the data, never as a record. */
static void encode(uint8_t *p, const rmq_log *log, const rmq_queue *q, const char *topic,
                   int32_t topic_len, int64_t len, int64_t phys,
                   int64_t queue_offset, const char *body, int32_t body_len, const char *props,
                   int32_t props_len, int32_t sysflag, int32_t flag, int64_t born_ts,
                   int64_t store_ts, int32_t reconsume_times, int64_t prepared_offset,
                   const char *born_host, const char *props2, int32_t props2_len) {
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
    *w++ = (uint8_t)topic_len;
    memcpy(w, topic, topic_len);
    w += topic_len;
    put16(w, (uint16_t)(props_len + props2_len));
    memcpy(w + 2, props, props_len);
    if (props2_len) memcpy(w + 2 + props_len, props2, props2_len);
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

/* A store several processes share: start from the ends the last writer published (under the
 * write mutex the caller holds). RMQ_STALE when a published end lies outside the active file:
 * another process rolled it, and Python maps the files up to there. */
static int shared_sync(rmq_log *log, rmq_queue *q) {
    if (log->shared) {
        int64_t end = __atomic_load_n(&log->shared[0], __ATOMIC_ACQUIRE);
        if (end != log->seg_start + *log->wrote) {
            if (!log->seg || end < log->seg_start || end > log->seg_start + log->seg_size)
                return RMQ_STALE;
            *log->wrote = end - log->seg_start;
        }
        if (log->shared[1] > log->last_ts) log->last_ts = log->shared[1];
        /* which queue this append may leave a torn unit in, should its process die now */
        log->shared[2] = q->shared_units ? (uint8_t *)q->shared_units - (uint8_t *)log->shared : 0;
    }
    if (q->shared_units) {
        int64_t pos = __atomic_load_n(q->shared_units, __ATOMIC_ACQUIRE) * RMQ_CQ_UNIT - q->cq_start;
        if (pos != q->cq_cell) {
            if (!q->cq || pos < 0 || pos > q->cq_size) return RMQ_STALE;
            q->cq_cell = pos;
            if (pos >= RMQ_CQ_UNIT) {
                const uint8_t *u = q->cq + pos - RMQ_CQ_UNIT;
                q->max_phys = (int64_t)get64(u) + (int32_t)get32(u + 8);
            }
        }
    }
    return RMQ_OK;
}

/* Publish the ends this call reached: the log's first, so that a reader that sees a queue's
 * new units (it looks at the queue, then at the log) also finds their records. */
static void shared_publish(rmq_log *log, rmq_queue *q) {
    rmq_queue_unstage(q); /* other processes read the mapping: nothing stays staged */
    if (log->shared && log->seg) {
        log->shared[1] = log->last_ts;
        __atomic_store_n(&log->shared[0], log->seg_start + *log->wrote, __ATOMIC_RELEASE);
    }
    if (q->shared_units && q->cq) {
        __atomic_store_n(q->shared_units, (q->cq_start + q->cq_cell) / RMQ_CQ_UNIT,
                         __ATOMIC_RELEASE);
    }
}

static inline int64_t next_queue_offset(const rmq_queue *q) {
    return (q->cq_start + q->cq_cell) / RMQ_CQ_UNIT + q->staged;
}

/* The stage and what a put reads stay in the first 128 bytes (rmq_native.h says why). */
_Static_assert(sizeof(((rmq_queue *)0)->stage) == RMQ_CQ_STAGE * RMQ_CQ_UNIT, "stage size");
_Static_assert(offsetof(rmq_queue, stage) + RMQ_CQ_STAGE * RMQ_CQ_UNIT <= 128, "hot bytes");

void rmq_queue_unstage(rmq_queue *q) {
    if (!q->staged) return;
    memcpy(q->cq + q->cq_cell, q->stage, (size_t)q->staged * RMQ_CQ_UNIT);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    q->cq_cell += (int64_t)q->staged * RMQ_CQ_UNIT;
    q->staged = 0;
}

/* Stages the unit and advances the queue; the record is already in place. A full stage goes
 * to the mapping in one go: a put to one queue of thousands then touches the queue's page of
 * the file (a TLB and a cache miss) once per RMQ_CQ_STAGE puts, not every time. */
static inline void add_unit(rmq_queue *q, int64_t phys, int64_t len, int64_t tags_code) {
    uint8_t *u = q->stage + q->staged * RMQ_CQ_UNIT;
    put64(u, (uint64_t)phys);
    put32(u + 8, (uint32_t)len);
    put64(u + 12, (uint64_t)tags_code);
    if (++q->staged == RMQ_CQ_STAGE) rmq_queue_unstage(q);
    q->max_phys = phys + len;
    q->touched = 1;
}

/* Where a call's records go. Staged: encoded into log->scratch and written with pwrite, a
 * scratch-full at a time, which spares the mapping a page fault (and the kernel a page
 * zeroing) for every fresh page; otherwise straight into the mapping. Either way, the write
 * positions (*log->wrote, q->cq_cell) move only once the records are in the page cache, so a
 * flush or a reader in another thread never sees a position whose bytes are not there yet. */
typedef struct {
    rmq_log *log;
    rmq_queue *q;
    int64_t base;   /* segment position where this call's records start */
    int64_t wpos;   /* segment position after the records encoded so far */
    int64_t cqpos;  /* consume-queue file position after the units written so far */
    int64_t chunk;  /* staged: segment position of the scratch's first byte */
    int staged;
} batch_out;

/* Whether records of up to max_len bytes can be staged. */
static inline int can_stage(const rmq_log *log, int64_t max_len) {
    return log->fd >= 0 && log->scratch != NULL && max_len <= log->scratch_size;
}

static void batch_begin(batch_out *b, rmq_log *log, rmq_queue *q, int staged) {
    b->log = log;
    b->q = q;
    rmq_queue_unstage(q);
    b->base = b->wpos = b->chunk = *log->wrote;
    b->cqpos = q->cq_cell;
    b->staged = staged;
}

void *rmq_alloc_lines(size_t size) {
    void *p = NULL;
    if (posix_memalign(&p, 128, size ? size : 1) != 0) return NULL;
    memset(p, 0, size);
    return p;
}

void rmq_free_lines(void *p) { free(p); }

int rmq_pwrite_all(int fd, const uint8_t *p, int64_t n, int64_t off) {
    while (n > 0) {
        ssize_t w = pwrite(fd, p, (size_t)n, off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        off += w;
        n -= w;
    }
    return 0;
}

/* One record of n bytes at segment position off, written so that its first size field
 * reaches the file last, as through the mapping (encode) and in a replica's appends
 * (rmq_write_raw): a process killed mid-write leaves size 0, which recovery reads as the end
 * of the data. Within one page one pwrite does that: the kernel copies a page's bytes in one
 * go, and a signal ends a write only between pages. */
static int pwrite_size_last(int fd, const uint8_t *p, int64_t n, int64_t off) {
    if (off / RMQ_FILE_PAGE == (off + n - 1) / RMQ_FILE_PAGE) return rmq_pwrite_all(fd, p, n, off);
    return rmq_pwrite_all(fd, p + 4, n - 4, off + 4) || rmq_pwrite_all(fd, p, 4, off) ? -1 : 0;
}

/* pwrites the staged records not yet written. 0, or -1 on a write error. */
static int write_staged(batch_out *b) {
    if (rmq_pwrite_all(b->log->fd, b->log->scratch, b->wpos - b->chunk, b->chunk) != 0)
        return -1;
    b->chunk = b->wpos;
    return 0;
}

/* Where the next record, of len bytes, goes (it starts at segment position b->wpos); NULL when
 * writing out a full scratch failed. */
static inline uint8_t *batch_dst(batch_out *b, int64_t len) {
    if (!b->staged) return b->log->seg + b->wpos;
    if (b->wpos - b->chunk + len > b->log->scratch_size && write_staged(b) != 0) return NULL;
    return b->log->scratch + (b->wpos - b->chunk);
}

static inline int64_t batch_queue_offset(const batch_out *b) {
    return (b->q->cq_start + b->cqpos) / RMQ_CQ_UNIT;
}

static inline void batch_added(batch_out *b, int64_t phys, int64_t len, int64_t tags_code,
                               int64_t store_ts) {
    uint8_t *u = b->q->cq + b->cqpos;
    if (b->q->deliver_delay_ms >= 0) tags_code = store_ts + b->q->deliver_delay_ms;
    put64(u, (uint64_t)phys);
    put32(u + 8, (uint32_t)len);
    put64(u + 12, (uint64_t)tags_code);
    b->cqpos += RMQ_CQ_UNIT;
    b->wpos += len;
    b->log->last_phys = phys;
    b->log->last_ts = store_ts;
    b->q->max_phys = phys + len;
    b->q->touched = 1;
}

/* Writes staged records, then publishes the positions. Returns 0, or -1 on a write error
 * (nothing is published then, so the records do not exist). */
static int batch_end(batch_out *b) {
    if (b->staged && write_staged(b) != 0) return -1;
    if (!b->staged) b->log->mapped_bytes += b->wpos - b->base;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    *b->log->wrote = b->wpos;
    b->q->cq_cell = b->cqpos;
    return 0;
}

static int64_t put_one(rmq_log *log, rmq_queue *q, const char *topic, int32_t topic_len,
                       const char *body, int32_t body_len,
                       const char *props, int32_t props_len, int64_t tags_code, int32_t sysflag,
                       int32_t flag, int64_t born_ts, int32_t reconsume_times,
                       int64_t prepared_offset, const char *born_host) {
    if (!log->seg) return -RMQ_SEGMENT_FULL; /* no segment yet: the caller creates one */
    int64_t len = record_len(log, sysflag, body_len, topic_len, props_len);
    if (len + RMQ_END_FILE_MIN_BLANK > log->seg_size) return -RMQ_TOO_LARGE;
    if (q->cq_cell + (q->staged + 1) * RMQ_CQ_UNIT > q->cq_size) {
        rmq_queue_unstage(q);
        return -RMQ_QUEUE_FULL;
    }
    int64_t pos = *log->wrote;
    if (len + RMQ_END_FILE_MIN_BLANK > log->seg_size - pos) {
        if (log->seg_size - pos >= RMQ_END_FILE_MIN_BLANK) close_segment(log); /* else closed */
        return -RMQ_SEGMENT_FULL;
    }
    int64_t phys = log->seg_start + pos, qoff = next_queue_offset(q);
    int64_t store_ts = stamp(log);
    if (born_ts < 0) born_ts = store_ts;
    /* ScheduleMessageService.computeDeliverTimestamp(level, storeTimestamp), from CommitLog's
     * checkMessageAndReturnSize (rocketmq-all-4.9.7) */
    if (q->deliver_delay_ms >= 0) tags_code = store_ts + q->deliver_delay_ms;
    if (log->stage_min > 0 && len >= log->stage_min && can_stage(log, len)) {
        /* Through the mapping, each fresh page of the record costs a fault unless a warmer
         * faulted it in beforehand, and so does the page a sync wrote back since the last
         * record; one pwrite costs none (see StoreConfig, Appender.stage_singles). */
        encode(log->scratch, log, q, topic, topic_len, len, phys, qoff, body, body_len, props,
               props_len, sysflag, flag, born_ts, store_ts, reconsume_times, prepared_offset,
               born_host, NULL, 0);
        if (pwrite_size_last(log->fd, log->scratch, len, pos) != 0) return -RMQ_IO_ERROR;
        __atomic_thread_fence(__ATOMIC_RELEASE);
    } else {
        encode(log->seg + pos, log, q, topic, topic_len, len, phys, qoff, body, body_len, props,
               props_len, sysflag, flag, born_ts, store_ts, reconsume_times, prepared_offset,
               born_host, NULL, 0);
        log->mapped_bytes += len;
    }
    *log->wrote = pos + len;
    log->last_phys = phys;
    log->last_ts = store_ts;
    add_unit(q, phys, len, tags_code);
    return qoff;
}

int64_t rmq_put(rmq_log *log, rmq_queue *q, const char *body, int32_t body_len,
                const char *props, int32_t props_len, int64_t tags_code, int32_t sysflag,
                int32_t flag, int64_t born_ts, int32_t reconsume_times, int64_t prepared_offset,
                const char *born_host) {
    if ((log->shared || q->shared_units) && shared_sync(log, q)) return -RMQ_STALE;
    int64_t qoff = put_one(log, q, q->topic, q->topic_len, body, body_len, props, props_len,
                           tags_code, sysflag, flag, born_ts, reconsume_times, prepared_offset,
                           born_host);
    if (log->shared || q->shared_units) shared_publish(log, q);
    return qoff;
}

int64_t rmq_put_simple(rmq_log *log, rmq_queue *q, const char *body, int32_t body_len) {
    return rmq_put(log, q, body, body_len, "", 0, 0, 0, 0, -1, 0, 0, NULL);
}

int64_t rmq_put_simple_named(rmq_log *log, rmq_queue *q, const char *topic, int32_t topic_len,
                             const char *body, int32_t body_len) {
    if (log->shared || q->shared_units) return rmq_put_simple(log, q, body, body_len);
    return put_one(log, q, topic, topic_len, body, body_len, "", 0, 0, 0, 0, -1, 0, 0, NULL);
}

static int32_t put_bodies(rmq_log *log, rmq_queue *q, const char *const *bodies,
                          const int32_t *body_lens, int32_t n, const char *props,
                          int32_t props_len, int64_t tags_code, int32_t flag, int64_t store_ts,
                          int64_t *out_phys, int32_t *out_status) {
    if (!log->seg) { *out_status = RMQ_SEGMENT_FULL; return 0; }
    if (store_ts <= 0) store_ts = stamp(log);
    int64_t total = 0, max_len = 0;
    for (int32_t i = 0; i < n; i++) {
        int64_t len = record_len(log, 0, body_lens[i], q->topic_len, props_len);
        total += len;
        if (len > max_len) max_len = len;
    }
    if (roll_for_whole_batch(log, total)) {
        *out_status = RMQ_SEGMENT_FULL;
        return 0;
    }
    int32_t i = 0, close = 0;
    *out_status = RMQ_OK;
    batch_out b;
    batch_begin(&b, log, q, can_stage(log, max_len));
    for (; i < n; i++) {
        int32_t blen = body_lens[i];
        int64_t len = record_len(log, 0, blen, q->topic_len, props_len);
        if (b.cqpos + RMQ_CQ_UNIT > q->cq_size) { *out_status = RMQ_QUEUE_FULL; break; }
        if (len + RMQ_END_FILE_MIN_BLANK > log->seg_size - b.wpos) {
            if (len + RMQ_END_FILE_MIN_BLANK > log->seg_size) { *out_status = RMQ_TOO_LARGE; break; }
            close = log->seg_size - b.wpos >= RMQ_END_FILE_MIN_BLANK;
            *out_status = RMQ_SEGMENT_FULL;
            break;
        }
        int64_t phys = log->seg_start + b.wpos;
        uint8_t *dst = batch_dst(&b, len);
        if (!dst) { *out_status = RMQ_IO_ERROR; return 0; }
        encode(dst, log, q, q->topic, q->topic_len, len, phys, batch_queue_offset(&b),
               bodies[i], blen, props, props_len, 0, flag, store_ts, store_ts, 0, 0, NULL,
               NULL, 0);
        batch_added(&b, phys, len, tags_code, store_ts);
        out_phys[i] = phys;
    }
    if (batch_end(&b) != 0) { *out_status = RMQ_IO_ERROR; return 0; }
    if (close) close_segment(log);
    return i;
}

int32_t rmq_put_batch(rmq_log *log, rmq_queue *q, const char *const *bodies,
                      const int32_t *body_lens,
                      int32_t n, const char *props, int32_t props_len, int64_t tags_code,
                      int32_t flag, int64_t store_ts, int64_t *out_phys, int32_t *out_status) {
    if ((log->shared || q->shared_units) && shared_sync(log, q)) {
        *out_status = RMQ_STALE;
        return 0;
    }
    int32_t n_done = put_bodies(log, q, bodies, body_lens, n, props, props_len, tags_code, flag,
                                store_ts, out_phys, out_status);
    if (log->shared || q->shared_units) shared_publish(log, q);
    return n_done;
}

/* -- batches in RocketMQ's wire encoding (MessageDecoder.encodeMessages) ------------------ */

#define ENTRY_HEAD 20 /* TOTALSIZE MAGICCODE BODYCRC FLAG BODYLEN */

/* Copies (when dst) the "name\x01value\x02" pairs of src except WAIT, which a broker does not
 * store; returns the kept length and sets *tags_code to the hash of TAGS (0 if none) and
 * *uniq_at / *uniq_len to UNIQ_KEY's value within src (0 / -1 if none), *has_keys if KEYS. */
static int32_t filter_props(const char *src, int32_t len, char *dst, int64_t *tags_code,
                            int32_t *uniq_at, int32_t *uniq_len, int32_t *has_keys) {
    int32_t kept = 0, i = 0;
    *tags_code = 0; *uniq_at = 0; *uniq_len = -1; *has_keys = 0;
    while (i < len) {
        const char *end = memchr(src + i, 2, (size_t)(len - i));
        int32_t pair_end = end ? (int32_t)(end - src) + 1 : len;
        const char *sep = memchr(src + i, 1, (size_t)(pair_end - i));
        int32_t name_len = sep ? (int32_t)(sep - (src + i)) : pair_end - i;
        int32_t value_at = sep ? (int32_t)(sep - src) + 1 : pair_end;
        int32_t value_len = (end ? pair_end - 1 : pair_end) - value_at;
        if (value_len < 0) value_len = 0;
        if (sep && name_len == 4 && memcmp(src + i, "WAIT", 4) == 0) { i = pair_end; continue; }
        if (sep && name_len == 4 && memcmp(src + i, "TAGS", 4) == 0 && value_len > 0)
            *tags_code = rmq_java_hash(src + value_at, (size_t)value_len);
        else if (sep && name_len == 8 && memcmp(src + i, "UNIQ_KEY", 8) == 0) {
            *uniq_at = value_at; *uniq_len = value_len;
        } else if (sep && name_len == 4 && memcmp(src + i, "KEYS", 4) == 0) *has_keys = 1;
        if (dst) memcpy(dst + kept, src + i, (size_t)(pair_end - i));
        kept += pair_end - i;
        if (!end) { /* Java's encodeMessages may drop the last \x02: put it back, as
                      * MessageExtBatchEncoder does before the batch's own properties */
            if (dst) dst[kept] = 2;
            kept++;
        }
        i = pair_end;
    }
    return kept;
}

int64_t rmq_check_entries(const char *data, int64_t len, int32_t max_body, int32_t *out_count) {
    int64_t pos = 0;
    int32_t n = 0;
    const uint8_t *d = (const uint8_t *)data;
    while (pos < len) {
        if (len - pos < ENTRY_HEAD + 2) return -(pos + 1);
        int64_t total = (int32_t)get32(d + pos), body_len = (int32_t)get32(d + pos + 16);
        if (body_len < 0 || body_len > max_body || pos + ENTRY_HEAD + body_len + 2 > len) return -(pos + 1);
        int64_t props_len = (int16_t)get16(d + pos + ENTRY_HEAD + body_len);
        int64_t end = pos + ENTRY_HEAD + body_len + 2 + props_len;
        if (props_len < 0 || end > len || total != end - pos) return -(pos + 1);
        pos = end;
        n++;
    }
    *out_count = n;
    return 0;
}

static int32_t put_entry_records(rmq_log *log, rmq_queue *q, const char *data, int64_t len,
                                 int64_t at, const char *extra, int32_t extra_len,
                                 int32_t sysflag, int64_t born_ts, int32_t reconsume_times,
                                 const char *born_host, int64_t store_ts, int32_t whole,
                                 rmq_entry_out *out, int32_t *out_status) {
    const uint8_t *d = (const uint8_t *)data;
    char props[65536];
    int64_t tags_code;
    int32_t uniq_at, uniq_len, has_keys;
    *out_status = RMQ_OK;
    if (!log->seg) { *out_status = RMQ_SEGMENT_FULL; return 0; }
    if (store_ts <= 0) store_ts = stamp(log);
    if (born_ts < 0) born_ts = store_ts;
    int64_t total = 0, max_len = 0;
    for (int64_t pos = at; pos < len; pos += (int32_t)get32(d + pos)) {
        int32_t blen = (int32_t)get32(d + pos + 16);
        int32_t plen = (int16_t)get16(d + pos + ENTRY_HEAD + blen);
        int32_t kept = filter_props(data + pos + ENTRY_HEAD + blen + 2, plen, NULL, &tags_code,
                                    &uniq_at, &uniq_len, &has_keys);
        int64_t rlen = record_len(log, sysflag, blen, q->topic_len, kept + extra_len);
        total += rlen;
        if (rlen > max_len) max_len = rlen;
    }
    if (whole && roll_for_whole_batch(log, total)) {
        *out_status = RMQ_SEGMENT_FULL;
        return 0;
    }
    int32_t i = 0, close = 0;
    batch_out b;
    batch_begin(&b, log, q, can_stage(log, max_len));
    for (int64_t pos = at; pos < len; i++) {
        int32_t blen = (int32_t)get32(d + pos + 16);
        int32_t flag = (int32_t)get32(d + pos + 12);
        int64_t props_at = pos + ENTRY_HEAD + blen + 2;
        int32_t plen = (int16_t)get16(d + pos + ENTRY_HEAD + blen);
        int32_t kept = filter_props(data + props_at, plen, props, &tags_code, &uniq_at,
                                    &uniq_len, &has_keys);
        int64_t rlen = record_len(log, sysflag, blen, q->topic_len, kept + extra_len);
        if (kept + extra_len > 32767) { *out_status = RMQ_TOO_LARGE; break; }
        if (b.cqpos + RMQ_CQ_UNIT > q->cq_size) { *out_status = RMQ_QUEUE_FULL; break; }
        if (rlen + RMQ_END_FILE_MIN_BLANK > log->seg_size - b.wpos) {
            if (rlen + RMQ_END_FILE_MIN_BLANK > log->seg_size) { *out_status = RMQ_TOO_LARGE; break; }
            close = log->seg_size - b.wpos >= RMQ_END_FILE_MIN_BLANK;
            *out_status = RMQ_SEGMENT_FULL;
            break;
        }
        int64_t phys = log->seg_start + b.wpos;
        uint8_t *dst = batch_dst(&b, rlen);
        if (!dst) { *out_status = RMQ_IO_ERROR; return 0; }
        encode(dst, log, q, q->topic, q->topic_len, rlen, phys, batch_queue_offset(&b),
               data + pos + ENTRY_HEAD, blen, props, kept, sysflag, flag, born_ts, store_ts,
               reconsume_times, 0, born_host, extra, extra_len);
        batch_added(&b, phys, rlen, tags_code, store_ts);
        out[i].phys = phys;
        out[i].props_at = props_at;
        out[i].props_len = plen;
        out[i].uniq_at = uniq_at; /* relative to props_at */
        out[i].uniq_len = uniq_len;
        out[i].has_keys = has_keys;
        pos += (int32_t)get32(d + pos);
    }
    if (batch_end(&b) != 0) { *out_status = RMQ_IO_ERROR; return 0; }
    if (close) close_segment(log);
    return i;
}

int32_t rmq_put_entries(rmq_log *log, rmq_queue *q, const char *data, int64_t len, int64_t at,
                        const char *extra, int32_t extra_len, int32_t sysflag, int64_t born_ts,
                        int32_t reconsume_times, const char *born_host, int64_t store_ts,
                        int32_t whole, rmq_entry_out *out, int32_t *out_status) {
    if ((log->shared || q->shared_units) && shared_sync(log, q)) {
        *out_status = RMQ_STALE;
        return 0;
    }
    int32_t n_done = put_entry_records(log, q, data, len, at, extra, extra_len, sysflag, born_ts,
                                       reconsume_times, born_host, store_ts, whole, out,
                                       out_status);
    if (log->shared || q->shared_units) shared_publish(log, q);
    return n_done;
}
