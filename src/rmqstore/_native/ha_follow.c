/* A slave's HA link in one native loop (HAClient of rocketmq-all-4.9.7: reportSlaveMaxOffset,
 * dispatchReadRequest; CommitLog.appendData): receive the master's frames, take the 12-byte
 * headers out, append the whole records that check out (rmq_append_raw), report the new end
 * at once; all without Python, so the thread that calls it holds no GIL while the stream
 * flows. Each receive (recvmsg) puts the bodies straight where the records they make are
 * checked and appended from, and the headers aside, so no byte moves in between. It returns
 * only for what Python must do: give it the next segment, wake the dispatch, or close the
 * link. The frame layout is protocol/ha.py's (TRANSFER_HEADER, REPORT);
 * tests/ha/test_native_link.py holds this loop and TransferReader to the same answers. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "rmq_native.h"
#include "rmq_internal.h"

#define HEADER 12            /* physical offset (8), body size (4) */
#define REPORT 8             /* the slave's max physical offset */
#define MIN_RECEIVE (64 * 1024)
#define START_CAP (1 << 20)
#define FOLLOW_FRAMES 16     /* frames one receive may lay out (rmq_follower.slots) */
#define STASH (1 << 20)      /* what one receive may hold past its first header */

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int32_t rmq_follower_init(rmq_follower *f) {
    f->buf = malloc(START_CAP);
    f->stash = malloc(STASH);
    if (f->buf == NULL || f->stash == NULL) {
        rmq_follower_release(f);
        return -1;
    }
    f->cap = START_CAP;
    f->log_end = f->body_left = f->hdr_have = f->guess = 0;
    f->reported = -1;
    f->last_read_ms = f->last_report_ms = now_ms();
    f->failing = 0;
    return 0;
}

void rmq_follower_release(rmq_follower *f) {
    free(f->buf);
    free(f->stash);
    f->buf = f->stash = NULL;
}

/* Keep log bytes [from, log_end) at the front of the buffer. */
static void compact(rmq_follower *f, int64_t from) {
    int64_t keep = f->log_end - from;
    if (from && keep) memmove(f->buf, f->buf + from, (size_t)keep);
    f->log_end = keep;
}

/* Room for the next receive: MIN_RECEIVE bytes at least, the buffer growing up to what
 * max_pending log bytes, one body and a header need. 0, or -1 when out of memory. */
static int make_room(rmq_follower *f) {
    if (f->cap - f->log_end >= MIN_RECEIVE) return 0;
    int64_t cap = 2 * f->cap, most = f->max_pending + f->max_body + HEADER + MIN_RECEIVE;
    if (cap > most) cap = most;
    if (cap - f->log_end < MIN_RECEIVE) return -1;
    uint8_t *grown = realloc(f->buf, (size_t)cap);
    if (grown == NULL) return -1;
    f->buf = grown;
    f->cap = cap;
    return 0;
}

/* Take n bytes of the stream from src: bodies to the log's end (no copy when src is there
 * already), headers checked. 0, or the failure (the bodies before it stay, to be appended
 * first). TransferReader.received's rules. */
static int32_t take(rmq_follower *f, const uint8_t *src, int64_t n) {
    while (n > 0) {
        if (f->body_left) {
            int64_t k = n < f->body_left ? n : f->body_left;
            uint8_t *dst = f->buf + f->log_end;
            if (src != dst) memmove(dst, src, (size_t)k);
            f->log_end += k;
            f->body_left -= k;
            src += k;
            n -= k;
            continue;
        }
        int64_t k = HEADER - f->hdr_have;
        if (k > n) k = n;
        memcpy(f->hdr + f->hdr_have, src, (size_t)k);
        f->hdr_have += k;
        src += k;
        n -= k;
        if (f->hdr_have < HEADER) break;
        f->hdr_have = 0;
        int64_t offset = (int64_t)get64(f->hdr);
        int64_t size = (int32_t)get32(f->hdr + 8);
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
        f->body_left = size;
        if (size) f->guess = size;
    }
    return 0;
}

/* Where the next receive puts the stream: the rest of the current body at the log's end,
 * the next header aside, then (a master sends frames of one size while it catches a slave
 * up) more frames of the last body's size, each body right after the one before and each
 * header aside. The parts never hold more than the buffer's room, nor more past the first
 * header than the stash. Returns the number of parts. */
static int lay_out(rmq_follower *f, struct iovec *iov) {
    int n = 0;
    uint8_t *at = f->buf + f->log_end;
    int64_t room = f->cap - f->log_end, spec = 0;
    if (f->body_left) {
        int64_t k = f->body_left < room ? f->body_left : room;
        iov[n++] = (struct iovec){at, (size_t)k};
        at += k;
        room -= k;
        if (k < f->body_left || room < HEADER) return n;
    }
    iov[n++] = (struct iovec){f->slots, (size_t)(HEADER - f->hdr_have)};
    room -= HEADER - f->hdr_have;
    for (int s = 1; s < FOLLOW_FRAMES && f->guess > 0; s++) {
        int64_t k = f->guess;
        if (k > room) k = room;
        if (k > STASH - spec) k = STASH - spec;
        if (k <= 0) break;
        iov[n++] = (struct iovec){at, (size_t)k};
        at += k;
        room -= k;
        spec += k;
        if (k < f->guess || room < HEADER || spec + HEADER > STASH) break;
        iov[n++] = (struct iovec){f->slots + s * HEADER, HEADER};
        room -= HEADER;
        spec += HEADER;
    }
    return n;
}

/* Whether part p can be taken where it lies. A body part can: lay_out put it where the log
 * ends, or past it when bytes before it were headers, and take moves body bytes only back. A
 * header slot only when a header is what comes next: body bytes in it would go where the
 * next part's bytes, not yet taken, lie. */
static int in_place(const rmq_follower *f, const struct iovec *p) {
    const uint8_t *base = p->iov_base;
    if (base >= f->buf && base < f->buf + f->cap) return 1;
    return !f->body_left && (int64_t)p->iov_len <= HEADER - f->hdr_have;
}

/* Take the `got` bytes a receive put into the n parts. Where the stream's frames were not
 * the size lay_out guessed and body bytes fell into a header slot, the rest is copied to the
 * stash in stream order and taken from there. 0, or take's failure. */
static int32_t received(rmq_follower *f, const struct iovec *iov, int n, int64_t got) {
    for (int i = 0; i < n && got > 0; i++) {
        if (i && !in_place(f, &iov[i])) {
            int64_t rest = 0;
            for (; i < n && got > 0; i++) {
                int64_t k = (int64_t)iov[i].iov_len < got ? (int64_t)iov[i].iov_len : got;
                memcpy(f->stash + rest, iov[i].iov_base, (size_t)k);
                rest += k;
                got -= k;
            }
            return take(f, f->stash, rest);
        }
        int64_t k = (int64_t)iov[i].iov_len < got ? (int64_t)iov[i].iov_len : got;
        int32_t bad = take(f, iov[i].iov_base, k);
        if (bad) return bad;
        got -= k;
    }
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
        struct iovec iov[2 * FOLLOW_FRAMES];
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)lay_out(f, iov)};
        ssize_t k = recvmsg(f->sock, &msg, MSG_DONTWAIT);
        if (k > 0) {
            f->last_read_ms = now;
            f->failing = received(f, iov, (int)msg.msg_iovlen, k);
            if (!f->failing && f->log_end > f->max_pending) f->failing = RMQ_FOLLOW_TOO_LONG;
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
