/* A slave's HA link in one native loop (HAClient of rocketmq-all-4.9.7: reportSlaveMaxOffset,
 * dispatchReadRequest; CommitLog.appendData): receive the master's frames, take the 12-byte
 * headers out in place, append the whole records that check out (rmq_append_raw), report the
 * new end at once; all without Python, so the thread that calls it holds no GIL while the
 * stream flows. It returns only for what Python must do: give it the next segment, wake the
 * dispatch, or close the link. The frame layout is protocol/ha.py's (TRANSFER_HEADER, REPORT);
 * tests/ha/test_native_link.py holds this loop and TransferReader to the same answers. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "rmq_native.h"
#include "rmq_internal.h"

#define HEADER 12            /* physical offset (8), body size (4) */
#define REPORT 8             /* the slave's max physical offset */
#define MIN_RECEIVE (64 * 1024)
#define START_CAP (1 << 20)

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int32_t rmq_follower_init(rmq_follower *f) {
    f->buf = malloc(START_CAP);
    if (f->buf == NULL) return -1;
    f->cap = START_CAP;
    f->log_end = f->raw_at = f->raw_end = f->body_left = 0;
    f->reported = -1;
    f->last_read_ms = f->last_report_ms = now_ms();
    f->failing = 0;
    return 0;
}

void rmq_follower_release(rmq_follower *f) {
    free(f->buf);
    f->buf = NULL;
}

/* Keep log bytes [from, log_end) and the unparsed ones at the front of the buffer. */
static void compact(rmq_follower *f, int64_t from) {
    int64_t keep = f->log_end - from, raw = f->raw_end - f->raw_at;
    if (from && keep) memmove(f->buf, f->buf + from, (size_t)keep);
    if (raw && f->raw_at != keep) memmove(f->buf + keep, f->buf + f->raw_at, (size_t)raw);
    f->log_end = f->raw_at = keep;
    f->raw_end = keep + raw;
}

/* Room for the next read: MIN_RECEIVE bytes at least, the buffer growing up to what
 * max_pending log bytes, one body and a header need. 0, or -1 when out of memory. */
static int make_room(rmq_follower *f) {
    if (f->cap - f->raw_end >= MIN_RECEIVE) return 0;
    compact(f, 0);
    if (f->cap - f->raw_end >= MIN_RECEIVE) return 0;
    int64_t cap = 2 * f->cap, most = f->max_pending + f->max_body + HEADER + MIN_RECEIVE;
    if (cap > most) cap = most;
    if (cap - f->raw_end < MIN_RECEIVE) return -1;
    uint8_t *grown = realloc(f->buf, (size_t)cap);
    if (grown == NULL) return -1;
    f->buf = grown;
    f->cap = cap;
    return 0;
}

/* Take the headers out of what arrived: bodies back to back from buf[0]. 0, or the failure
 * (the bodies before it stay, to be appended first). TransferReader.received's rules. */
static int32_t parse(rmq_follower *f) {
    uint8_t *buf = f->buf;
    for (;;) {
        if (f->body_left) {
            int64_t k = f->raw_end - f->raw_at;
            if (k > f->body_left) k = f->body_left;
            if (!k) break;
            if (f->log_end != f->raw_at) memmove(buf + f->log_end, buf + f->raw_at, (size_t)k);
            f->log_end += k;
            f->raw_at += k;
            f->body_left -= k;
            continue;
        }
        if (f->raw_end - f->raw_at < HEADER) break;
        int64_t offset = (int64_t)get64(buf + f->raw_at);
        int64_t size = (int32_t)get32(buf + f->raw_at + 8);
        if (offset < 0 || size < 0 || size > f->max_body) {
            f->bad_offset = offset;
            f->bad_size = size;
            return RMQ_FOLLOW_BAD_HEADER;
        }
        if (f->offset < 0) {
            f->offset = offset;
        } else if (offset != f->offset + f->log_end) {
            f->bad_offset = offset;
            f->bad_size = size;
            return RMQ_FOLLOW_GAP;
        }
        f->raw_at += HEADER;
        f->body_left = size;
    }
    if (f->log_end > f->max_pending) return RMQ_FOLLOW_TOO_LONG;
    if (f->raw_at == f->raw_end) f->raw_at = f->raw_end = f->log_end;
    return 0;
}

/* Append the whole records the buffer holds, segment after segment. 0, or why it stopped. */
static int32_t append_log(rmq_follower *f) {
    int64_t used = 0;
    int32_t stop = 0;
    while (used < f->log_end) {
        if (f->seg_wrote == NULL) { stop = RMQ_FOLLOW_SEGMENT; break; }
        int32_t status;
        int64_t ts;
        int64_t n = rmq_append_raw(f->seg, f->seg_fd, f->seg_size, f->seg_start, f->seg_wrote,
                                   f->buf + used, f->log_end - used, &status, &ts);
        used += n;
        if (status == RMQ_RAW_SEGMENT_END) { f->seg_wrote = NULL; continue; }
        if (status == RMQ_RAW_INVALID) stop = RMQ_FOLLOW_BAD_RECORD;
        if (status == RMQ_RAW_IO_ERROR) { f->err = errno; stop = RMQ_FOLLOW_IO_ERROR; }
        break;
    }
    if (used) {
        if (!f->appended) f->first_appended_ms = now_ms();
        f->appended += used;
        f->offset += used;
        compact(f, used);
    }
    return stop;
}

/* Send 8 bytes, waiting for room if the socket has none. 0, or -1 (errno in f->err). */
static int send_report(rmq_follower *f, int64_t now) {
    uint8_t out[REPORT];
    int64_t end = f->offset < 0 ? 0 : f->offset;
    put64(out, (uint64_t)end);
    size_t at = 0;
    while (at < REPORT) {
        ssize_t k = send(f->sock, out + at, REPORT - at, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k >= 0) { at += (size_t)k; continue; }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd p = {.fd = f->sock, .events = POLLOUT};
            if (poll(&p, 1, (int)f->housekeeping_ms) > 0) continue;
            errno = ETIMEDOUT;
        }
        f->err = errno;
        return -1;
    }
    f->reported = end;
    f->last_report_ms = now;
    return 0;
}

int32_t rmq_follow(rmq_follower *f) {
    for (;;) {
        int32_t stop = append_log(f);
        int64_t now = now_ms();
        int64_t end = f->offset < 0 ? 0 : f->offset;
        if ((end != f->reported || now - f->last_report_ms >= f->heartbeat_ms)
            && send_report(f, now))
            return RMQ_FOLLOW_CLOSED;
        if (stop) return stop;
        if (f->failing) return f->failing;
        if (f->appended && (f->appended >= f->gather_bytes
                            || now - f->first_appended_ms >= f->gather_max_ms))
            return RMQ_FOLLOW_APPENDED;
        if (make_room(f)) { f->err = ENOMEM; return RMQ_FOLLOW_IO_ERROR; }
        ssize_t k = recv(f->sock, f->buf + f->raw_end, (size_t)(f->cap - f->raw_end),
                         MSG_DONTWAIT);
        if (k > 0) {
            f->last_read_ms = now;
            f->raw_end += k;
            f->failing = parse(f);
            continue;
        }
        if (k == 0) return RMQ_FOLLOW_CLOSED;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) { f->err = errno; return RMQ_FOLLOW_CLOSED; }
        /* Nothing to read: wait for bytes, the heartbeat, housekeeping or the dispatch. */
        int64_t wait = f->last_report_ms + f->heartbeat_ms - now;
        int64_t silent = f->last_read_ms + f->housekeeping_ms - now;
        if (silent < wait) wait = silent;
        if (f->appended && f->gather_idle_ms < wait) wait = f->gather_idle_ms;
        struct pollfd p = {.fd = f->sock, .events = POLLIN};
        int r = poll(&p, 1, wait > 0 ? (int)wait : 0);
        if (r < 0 && errno != EINTR) { f->err = errno; return RMQ_FOLLOW_CLOSED; }
        if (r == 0) {
            if (f->appended) return RMQ_FOLLOW_APPENDED;
            if (now_ms() - f->last_read_ms >= f->housekeeping_ms) return RMQ_FOLLOW_SILENT;
        }
    }
}
