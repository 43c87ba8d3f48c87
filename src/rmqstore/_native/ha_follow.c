/* A slave's HA link in native code (HAClient of rocketmq-all-4.9.7: reportSlaveMaxOffset,
 * dispatchReadRequest; CommitLog.appendData) on one thread, rmq_follow's caller, which does
 * not hold the GIL while the stream flows. Each receive (recvmsg) puts the master's frame
 * bodies straight where the records they make are checked (rmq_check_raw: sizes, magic, CRC,
 * offset) and appended from (rmq_write_raw), and the 12-byte headers aside; the whole records
 * the receives completed are then appended and the new end reported (once the socket is
 * drained, or a few MiB on while it is not), so an offset is reported only once its records
 * are checked and appended. It is the C floor's shape
 * (benches/ha_floor.c). A writer thread fed through a ring of buffers did the same work for
 * about the same CPU (receive + write 0.29-0.39 s/GiB, this thread 0.33-0.43), but on 2 vCPUs
 * shared with the master's sender and the dispatch each hand-over waited for it to be
 * scheduled: benches/ha_catchup.py, replica / C floor turn medians 57, 73, 86 % with it
 * against 89, 91, 91 % without (same build, alternated). rmq_follow returns only for what
 * Python must do: give it the next segment, wake the dispatch, or close the link; every
 * return comes after every checked byte is appended.
 * A catch-up copies first and dispatches after: from a receive of CATCH_UP_READ bytes until the
 * link is idle CATCH_UP_IDLE_MS (or CATCH_UP_SHORT_RUN short receives in a row) rmq_follow does
 * not return APPENDED, and its SEGMENT returns say `deferring`: the caller cues the flush but
 * leaves the dispatch asleep. A SYNC_MASTER's sends and an ASYNC_MASTER's loss window wait on
 * the log's copy, not on the slave's queues; on 2 vCPUs the dispatch as a third busy thread
 * held the copy to ~63 % of a plain socket copy (benches/ha_catchup.py). Past defer_bytes
 * appended or defer_max_ms the dispatch runs beside the link again, so the queues are never
 * far behind; any return but SEGMENT wakes it for everything (a consumer that falls back to
 * the slave when the master dies must see all it holds). Steady traffic is not a catch-up:
 * its receives are short (one after a stall of the slave starts one, which the next end).
 * The frame layout is protocol/ha.py's (TRANSFER_HEADER, REPORT);
 * tests/ha/test_native_link.py holds this loop and TransferReader to the same answers. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
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
/* While the socket still holds bytes, a report waits for this many more appended, or this
 * long: a catch-up reports about once per this many bytes rather than once per receive (each
 * report is a send, and a read on the master); a drained socket reports at once. */
#define REPORT_BYTES (4 << 20)
#define REPORT_MS 2
/* Likewise the checked bytes wait in the buffer for this many more (and at most REPORT_MS)
 * while the socket still holds bytes: an append costs two pwrites (the first size field last)
 * and the file system's per-write work, whatever its size, and a receive takes only what has
 * come. */
#define WRITE_BYTES (1 << 20)
/* A catch-up starts at a receive of CATCH_UP_READ bytes (the socket held that much: the slave
 * is at least that far behind) and ends after CATCH_UP_SHORT_RUN receives of less than
 * SHORT_READ in a row, or once the link was idle CATCH_UP_IDLE_MS. benches/ha_catchup.py on a
 * 2-vCPU machine at load 3-5: while the slave catches up, 80-95 % of receives take 256 KiB or
 * more (the layout's 16 frames of 32 KiB), most others 64-256 KiB (the master's sender waited
 * for a CPU; runs of 16 of those ended 3 turns of 5 early), under 64 KiB 1-5 % and
 * never 16 in a row; the link paused 2-39 ms now and then. At 10 MiB/s of 1 KiB puts, about
 * one receive in a thousand takes 256 KiB (the slave's thread stalled) and nearly all take
 * less than 64 KiB. */
#define CATCH_UP_READ (256 * 1024)
#define SHORT_READ (64 * 1024)
#define CATCH_UP_SHORT_RUN 16
/* The pauses above (and the master's turn to the next segment) are not the end of a
 * catch-up; its end makes the slave's queues wait this much longer, never its log. */
#define CATCH_UP_IDLE_MS 10

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Send the log's end (0 while an empty replica holds nothing) to the master when it changed
 * (with more bytes waiting in the socket, `busy`: once it grew by REPORT_BYTES or REPORT_MS
 * passed), or when the heartbeat is due; 0, or the errno of the failure. */
static int32_t report(rmq_follower *f, int busy) {
    int64_t end = f->written < 0 ? 0 : f->written;
    int64_t now = now_ms();
    int64_t since = now - f->last_report_ms;
    if (since < f->heartbeat_ms
        && (end == f->reported
            || (busy && end - f->reported < REPORT_BYTES && since < REPORT_MS)))
        return 0;
    uint8_t out[REPORT];
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
        return errno;
    }
    f->reported = end;
    f->last_report_ms = now;
    return 0;
}

/* Append the checked bytes at the buffer's start to the segment (the first size field last),
 * publish its write position, count them for the dispatch and report the new end; while
 * `busy` (more bytes wait in the socket) only once WRITE_BYTES are checked, and the report as
 * report's `busy`. The bytes after them move to the buffer's start. 0, or why the link must
 * close (err set); after a failure nothing was appended (the next link resumes at the end). */
static int32_t write_checked(rmq_follower *f, int busy) {
    if (!f->checked || (busy && f->checked < WRITE_BYTES)) return 0;
    if (f->write_delay_us > 0) {
        struct timespec pause = {f->write_delay_us / 1000000,
                                 f->write_delay_us % 1000000 * 1000};
        nanosleep(&pause, NULL);
    }
    int64_t base = f->seg_checked - f->checked;
    if (rmq_write_raw(f->seg, f->seg_fd, base, f->buf, f->checked)) {
        f->err = errno ? errno : EIO;
        return RMQ_FOLLOW_IO_ERROR;
    }
    __atomic_store_n(f->seg_wrote, f->seg_checked, __ATOMIC_RELEASE);
    if (f->deferring) f->deferred += f->checked;
    if (__atomic_fetch_add(&f->appended, f->checked, __ATOMIC_ACQ_REL) == 0)
        __atomic_store_n(&f->first_appended_ms, now_ms(), __ATOMIC_RELAXED);
    int64_t rest = f->log_end - f->checked;
    if (rest) memmove(f->buf, f->buf + f->checked, (size_t)rest);
    f->offset += f->checked;
    f->written = f->offset;
    f->log_end = rest;
    f->checked = 0;
    int32_t err = report(f, busy);
    if (err) { f->err = err; return RMQ_FOLLOW_CLOSED; }
    return 0;
}

int32_t rmq_follower_init(rmq_follower *f) {
    f->stash = malloc(STASH);
    f->buf = malloc(START_CAP);
    if (f->stash == NULL || f->buf == NULL) {
        rmq_follower_release(f);
        return -1;
    }
    f->cap = START_CAP;
    f->written = f->offset;
    f->log_end = f->checked = f->body_left = f->hdr_have = f->guess = 0;
    f->seg_checked = -1;
    f->reported = -1;
    f->last_read_ms = f->last_report_ms = now_ms();
    f->failing = 0;
    f->deferring = f->catching_up = f->short_run = 0;
    f->deferred = f->catch_ups = f->empty_receives = 0;
    f->drained = 0;
    return 0;
}

void rmq_follower_release(rmq_follower *f) {
    free(f->buf);
    free(f->stash);
    f->buf = f->stash = NULL;
}

int64_t rmq_follower_take_appended(rmq_follower *f) {
    return __atomic_exchange_n(&f->appended, 0, __ATOMIC_ACQ_REL);
}

/* Return stop to Python once every checked byte is appended: or the append's failure. */
static int32_t finish(rmq_follower *f, int32_t stop) {
    int32_t failed = write_checked(f, 0);
    return failed ? failed : stop;
}

/* A receive took k bytes: a catch-up starts at one of CATCH_UP_READ bytes (holding the
 * dispatch back unless defer_bytes is 0) and ends after CATCH_UP_SHORT_RUN short ones. */
static void note_receive(rmq_follower *f, int64_t k, int64_t now) {
    if (k >= SHORT_READ) f->short_run = 0;
    if (k >= CATCH_UP_READ && !f->catching_up) {
        f->catching_up = 1;
        f->catch_ups++;
        f->deferring = f->defer_bytes > 0;
        f->deferring_since_ms = now;
    } else if (k < SHORT_READ && f->catching_up && ++f->short_run >= CATCH_UP_SHORT_RUN) {
        f->catching_up = f->deferring = f->short_run = 0;
    }
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

static int64_t iov_total(const struct iovec *iov, int n) {
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += (int64_t)iov[i].iov_len;
    return total;
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

/* Check the whole records the buffer holds past those checked, segment after segment; a
 * segment's last records are appended before the next segment is asked for. 0, or why it
 * stopped. */
static int32_t check_log(rmq_follower *f) {
    while (f->checked < f->log_end) {
        if (f->seg_wrote == NULL) return RMQ_FOLLOW_SEGMENT;
        int32_t status;
        int64_t ts;
        int64_t n = rmq_check_raw(f->seg_size, f->seg_start, f->seg_checked,
                                  f->buf + f->checked, f->log_end - f->checked, &status, &ts);
        f->checked += n;
        f->seg_checked += n;
        if (status == RMQ_RAW_INVALID) return RMQ_FOLLOW_BAD_RECORD;
        if (status != RMQ_RAW_SEGMENT_END) break;
        int32_t failed = write_checked(f, 0);
        if (failed) return failed;
        f->seg_wrote = NULL;
        f->seg_checked = -1;
    }
    return 0;
}

static int32_t follow(rmq_follower *f) {
    if (!f->named) f->named = !pthread_setname_np(pthread_self(), "rmq-ha-recv");
    if (f->seg_wrote != NULL && f->seg_checked < 0) f->seg_checked = *f->seg_wrote;
    int busy = 0; /* the last receive took bytes: more may wait (report's `busy`) */
    int64_t held_since = 0; /* when the oldest checked byte not yet appended was checked */
    for (;;) {
        int32_t stop = check_log(f);
        if (!stop) stop = f->failing;
        if (stop) return finish(f, stop);
        int64_t now = now_ms();
        if (!f->checked) held_since = now;
        /* What the receives completed is appended and reported by this thread, once the
         * socket is drained (or every WRITE_BYTES, REPORT_BYTES): no other thread is woken
         * between a record and its report, so neither a catch-up nor a SYNC_MASTER's
         * acknowledgement waits for one to be scheduled. */
        stop = write_checked(f, busy && now - held_since < REPORT_MS);
        if (stop) return stop;
        int32_t err = report(f, busy);
        if (err) { f->err = err; return RMQ_FOLLOW_CLOSED; }
        /* Past the bound the dispatch runs beside the link for the rest of this catch-up. */
        if (f->deferring && (f->deferred >= f->defer_bytes
                             || now - f->deferring_since_ms >= f->defer_max_ms))
            f->deferring = 0;
        int64_t appended = __atomic_load_n(&f->appended, __ATOMIC_ACQUIRE);
        if (!f->deferring
            && (f->deferred
                || (appended && (appended >= f->gather_bytes
                                 || now - __atomic_load_n(&f->first_appended_ms,
                                                          __ATOMIC_RELAXED)
                                        >= f->gather_max_ms))))
            return finish(f, RMQ_FOLLOW_APPENDED);
        if (!f->drained) {
            if (make_room(f)) { f->err = ENOMEM; return finish(f, RMQ_FOLLOW_IO_ERROR); }
            struct iovec iov[2 * FOLLOW_FRAMES];
            struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)lay_out(f, iov)};
            ssize_t k = recvmsg(f->sock, &msg, MSG_DONTWAIT);
            if (k > 0) {
                f->last_read_ms = now;
                note_receive(f, k, now);
                f->failing = received(f, iov, (int)msg.msg_iovlen, k);
                if (!f->failing && f->log_end - f->checked > f->max_pending)
                    f->failing = RMQ_FOLLOW_TOO_LONG;
                /* Less than the layout offered: the socket held no more, so the next round
                 * appends and reports at once and then polls, without a receive that would
                 * only say EAGAIN (a syscall per transfer under a SYNC_MASTER's sends). */
                f->drained = k < iov_total(iov, (int)msg.msg_iovlen);
                busy = !f->drained;
                continue;
            }
            if (k == 0) return RMQ_FOLLOW_CLOSED;
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                f->err = errno;
                return RMQ_FOLLOW_CLOSED;
            }
            f->empty_receives++;
        }
        /* Nothing to read: report what is appended, then wait for bytes, the heartbeat,
         * housekeeping or the dispatch. */
        busy = 0;
        f->drained = 1;
        stop = write_checked(f, 0);
        if (stop) return stop;
        err = report(f, 0);
        if (err) { f->err = err; return RMQ_FOLLOW_CLOSED; }
        appended = __atomic_load_n(&f->appended, __ATOMIC_ACQUIRE);
        int64_t wait = f->last_report_ms + f->heartbeat_ms - now;
        int64_t silent = f->last_read_ms + f->housekeeping_ms - now;
        if (silent < wait) wait = silent;
        if ((appended || f->deferred || f->catching_up) && f->gather_idle_ms < wait)
            wait = f->gather_idle_ms;
        struct pollfd p = {.fd = f->sock, .events = POLLIN};
        int got = poll(&p, 1, wait > 0 ? (int)wait : 0);
        if (got < 0 && errno != EINTR) { f->err = errno; return RMQ_FOLLOW_CLOSED; }
        if (got > 0) f->drained = 0;  /* bytes (or the end): the next round receives */
        if (got == 0) {
            int64_t quiet = now_ms() - f->last_read_ms;
            if (quiet >= CATCH_UP_IDLE_MS)  /* drained: the catch-up is over */
                f->catching_up = f->deferring = f->short_run = 0;
            if (!f->deferring
                && (f->deferred || __atomic_load_n(&f->appended, __ATOMIC_ACQUIRE)))
                return finish(f, RMQ_FOLLOW_APPENDED);
            if (quiet >= f->housekeeping_ms) return RMQ_FOLLOW_SILENT;
        }
    }
}

/* Only a SEGMENT return may keep the dispatch held back (deferring); any other wakes it for
 * every byte appended. */
int32_t rmq_follow(rmq_follower *f) {
    int32_t why = follow(f);
    if (why != RMQ_FOLLOW_SEGMENT) f->deferring = 0, f->deferred = 0;
    return why;
}
