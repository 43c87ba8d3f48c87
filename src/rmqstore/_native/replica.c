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

/* How far ahead of the record being checked its bytes are prefetched. A receive leaves them
 * out of the cache by the time they are checked (a profile of the slave's receive thread had
 * a fifth of its time in rmq_parse's loads of the second line and the topic of each record);
 * one record's check is about as long as a fetch from memory, so a few records ahead. */
#ifndef PREFETCH_AHEAD
#define PREFETCH_AHEAD 4096
#endif

int64_t rmq_check_raw(int64_t seg_size, int64_t seg_start, int64_t base, const uint8_t *data,
                      int64_t len, int32_t *out_status, int64_t *out_last_ts) {
    int64_t pos = 0, fetched = 0;
    int32_t status = RMQ_RAW_MORE;
    for (;;) {
        int64_t ahead = pos + PREFETCH_AHEAD < len ? pos + PREFETCH_AHEAD : len;
        for (; fetched < ahead; fetched += 64) __builtin_prefetch(data + fetched);
        int blank = 0;
        int64_t size = check_one(data, len, pos, base + pos, seg_size, seg_start, out_last_ts,
                                 &blank);
        if (size < 0) { status = RMQ_RAW_INVALID; break; }
        if (size == 0) break;
        pos += size;
        if (blank) { status = RMQ_RAW_SEGMENT_END; break; }
    }
    *out_status = status;
    return pos;
}

int rmq_write_raw(uint8_t *seg, int32_t fd, int64_t base, const uint8_t *data, int64_t n) {
    /* pwrite, not the mapping: a first write into a fresh segment page through its mapping
     * costs more than the copy it would save (benches/append_paths.c: a receive's chunk
     * copied to a buffer and pwritten 0.12 CPU s/GiB; copied straight into the mapping 0.19
     * with MADV_NORMAL, 1.00 with a replica's MADV_RANDOM, 1.05 populated first). */
    /* The first size field goes last: until it is there the bytes read as unwritten space,
     * so a process killed mid-write leaves nothing recovery could take for a record, however
     * far the first write got. Bytes within one page go in one pwrite, as the engine's own
     * appends do (append.c, pwrite_size_last): a kill stops a write between pages, never
     * inside one, so that write leaves all of them or none. */
    if (fd >= 0) {
        if (base / RMQ_FILE_PAGE == (base + n - 1) / RMQ_FILE_PAGE) {
            if (rmq_pwrite_all(fd, data, n, base)) return -1;
        } else if (rmq_pwrite_all(fd, data + 4, n - 4, base + 4)
                   || rmq_pwrite_all(fd, data, 4, base)) {
            return -1;
        }
    } else {
        memcpy(seg + base + 4, data + 4, (size_t)(n - 4));
        __atomic_thread_fence(__ATOMIC_RELEASE);
        memcpy(seg + base, data, 4);
    }
    __atomic_thread_fence(__ATOMIC_RELEASE);
    return 0;
}

int64_t rmq_append_raw(uint8_t *seg, int32_t fd, int64_t seg_size, int64_t seg_start,
                       int64_t *wrote, const uint8_t *data, int64_t len, int32_t *out_status,
                       int64_t *out_last_ts) {
    int64_t base = *wrote;
    int64_t pos = rmq_check_raw(seg_size, seg_start, base, data, len, out_status, out_last_ts);
    if (pos > 0) {
        if (rmq_write_raw(seg, fd, base, data, pos)) {
            *out_status = RMQ_RAW_IO_ERROR;
            return 0;
        }
        *wrote = base + pos;
    }
    return pos;
}
