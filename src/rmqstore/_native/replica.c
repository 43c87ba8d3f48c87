/* Replication's byte copies: a master hands out raw commit-log bytes, a replica appends the
 * ones that check out as whole records. RocketMQ sources: HAConnection.WriteSocketService
 * (getCommitLogData), HAClient.dispatchReadRequest and CommitLog.appendData. */
#include "rmq_native.h"
#include "rmq_internal.h"

int64_t rmq_read_raw(const uint8_t *seg, int64_t wrote, int64_t pos, int64_t max_bytes,
                     uint8_t *dst) {
    int64_t n = wrote - pos;
    if (pos < 0 || n <= 0 || max_bytes <= 0) return 0;
    if (n > max_bytes) n = max_bytes;
    memcpy(dst, seg + pos, (size_t)n);
    return n;
}

/* The length of the whole, valid record or BLANK at data[pos] (a segment position seg_pos),
 * 0 when data ends before it does, -1 when the bytes are not one. *last_ts gets a record's
 * store time; *blank is set for a BLANK. */
static int64_t check_one(const uint8_t *data, int64_t len, int64_t pos, int64_t seg_pos,
                         int64_t seg_size, int64_t seg_start, int64_t *last_ts, int *blank) {
    int64_t room = seg_size - seg_pos, avail = len - pos;
    if (avail < 8) return 0;
    int64_t size = (int32_t)get32(data + pos);
    int32_t magic = (int32_t)get32(data + pos + 4);
    if (magic == RMQ_MAGIC_BLANK) {
        /* A BLANK fills the rest of its segment exactly (CommitLog.doAppend's END_FILE). */
        if (size != room) return -1;
        if (avail < size) return 0;
        *blank = 1;
        return size;
    }
    if (magic != RMQ_MAGIC_V1 && magic != RMQ_MAGIC_V2) return -1;
    /* A record always leaves room for the BLANK that may follow it. */
    if (size < 91 || size + RMQ_END_FILE_MIN_BLANK > room) return -1;
    if (avail < size) return 0;
    int64_t f[16];
    if (rmq_parse(data, pos + size, pos, 1, f) != size) return -1;
    if (f[4] != seg_start + seg_pos) return -1; /* PHYSICALOFFSET: where it says it is */
    *last_ts = f[7];
    return size;
}

int64_t rmq_append_raw(uint8_t *seg, int32_t fd, int64_t seg_size, int64_t seg_start,
                       int64_t *wrote, const uint8_t *data, int64_t len, int32_t *out_status,
                       int64_t *out_last_ts) {
    int64_t base = *wrote, pos = 0;
    int32_t status = RMQ_RAW_MORE;
    for (;;) {
        int blank = 0;
        int64_t size = check_one(data, len, pos, base + pos, seg_size, seg_start, out_last_ts,
                                 &blank);
        if (size < 0) { status = RMQ_RAW_INVALID; break; }
        if (size == 0) break;
        pos += size;
        if (blank) { status = RMQ_RAW_SEGMENT_END; break; }
    }
    if (pos > 0) {
        /* The first size field goes last: until it is there the bytes read as unwritten
         * space, so a process killed mid-write leaves nothing recovery could take for a
         * record, however far the first write got. */
        if (fd >= 0) {
            if (rmq_pwrite_all(fd, data + 4, pos - 4, base + 4)
                || rmq_pwrite_all(fd, data, 4, base)) {
                *out_status = RMQ_RAW_IO_ERROR;
                return 0;
            }
        } else {
            memcpy(seg + base + 4, data + 4, (size_t)(pos - 4));
            __atomic_thread_fence(__ATOMIC_RELEASE);
            memcpy(seg + base, data, 4);
        }
        __atomic_thread_fence(__ATOMIC_RELEASE);
        *wrote = base + pos;
    }
    *out_status = status;
    return pos;
}

/* Where name's last value is in props (pairs name \x01 value \x02); *at = -1 when absent. */
static void find_prop(const uint8_t *props, int64_t len, const char *name, int64_t name_len,
                      int64_t *at, int64_t *value_len) {
    *at = -1;
    *value_len = 0;
    int64_t i = 0;
    while (i < len) {
        const uint8_t *end = memchr(props + i, 2, (size_t)(len - i));
        int64_t pair_end = end ? (int64_t)(end - props) : len;
        const uint8_t *sep = memchr(props + i, 1, (size_t)(pair_end - i));
        if (sep && sep - (props + i) == name_len && memcmp(props + i, name, name_len) == 0) {
            *at = (int64_t)(sep - props) + 1;
            *value_len = pair_end - *at;
        }
        i = pair_end + 1;
    }
}

int32_t rmq_scan_dispatch(const uint8_t *seg, int64_t seg_size, int64_t pos, int64_t end,
                          int64_t *out, int32_t max_out, int64_t *out_next, int32_t *out_status) {
    int32_t n = 0;
    int64_t f[16];
    *out_status = 0;
    while (pos < end && n < max_out) {
        int64_t size = rmq_parse(seg, seg_size, pos, 0, f);
        if (size == 0) { *out_status = 1; break; }
        if (size < 0 || pos + size > end) { *out_status = size < 0 ? 2 : 0; break; }
        int64_t *o = out + (int64_t)n * RMQ_DISPATCH_FIELDS;
        const uint8_t *props = seg + f[14];
        int64_t at, len;
        o[0] = f[4];  /* physical offset */
        o[1] = size;
        o[2] = f[1];  /* queue id */
        o[3] = f[3];  /* queue offset */
        o[4] = f[7];  /* store time */
        o[5] = f[12]; /* topic position */
        o[6] = f[13]; /* topic length */
        find_prop(props, f[15], "TAGS", 4, &at, &len);
        o[7] = at >= 0 && len > 0 ? rmq_java_hash((const char *)props + at, (size_t)len) : 0;
        find_prop(props, f[15], "UNIQ_KEY", 8, &at, &len);
        o[8] = at >= 0 && len > 0 ? f[14] + at : -1;
        o[9] = len;
        find_prop(props, f[15], "KEYS", 4, &at, &len);
        o[10] = at >= 0 && len > 0 ? f[14] + at : -1;
        o[11] = len;
        find_prop(props, f[15], "DELAY", 5, &at, &len);
        int64_t level = 0;
        for (int64_t k = 0; at >= 0 && k < len && k < 9; k++) {
            uint8_t c = props[at + k];
            if (c < '0' || c > '9') { level = 0; break; }
            level = level * 10 + (c - '0');
        }
        o[12] = level;
        n++;
        pos += size;
    }
    *out_next = pos;
    return n;
}

int32_t rmq_add_unit(rmq_queue *q, int64_t queue_offset, int64_t phys, int32_t size,
                     int64_t tags_code) {
    if (q->cq == NULL || *q->cq_wrote + RMQ_CQ_UNIT > q->cq_size) return -RMQ_QUEUE_FULL;
    if ((q->cq_start + *q->cq_wrote) / RMQ_CQ_UNIT != queue_offset) return -RMQ_OUT_OF_ORDER;
    uint8_t *u = q->cq + *q->cq_wrote;
    put64(u, (uint64_t)phys);
    put32(u + 8, (uint32_t)size);
    put64(u + 12, (uint64_t)tags_code);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    *q->cq_wrote += RMQ_CQ_UNIT;
    q->max_phys = phys + size;
    q->touched = 1;
    return 0;
}
