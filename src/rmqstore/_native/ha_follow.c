/* A slave's HA link in native code (HAClient of rocketmq-all-4.9.7: reportSlaveMaxOffset,
 * dispatchReadRequest; CommitLog.appendData), on two threads, neither holding the GIL while the
 * stream flows. The receive thread (rmq_follow's caller) receives the master's frames, takes the
 * 12-byte headers out and checks the records the bodies make (rmq_check_raw: sizes, magic, CRC,
 * offset); the writer thread (started here) appends the checked bytes (rmq_write_raw) and then
 * reports the new end, so an offset is reported only once its records are checked and appended.
 * They share a ring of receive buffers: the receive thread fills one while the writer writes the
 * ones handed to it before, in order; a hand-over is a job under a mutex, and the writer sleeps
 * on a condition variable (no timed poll). When the socket is empty and the writer idle (a lone
 * record on an idle link), the receive thread writes and reports itself: a SYNC_MASTER's
 * acknowledgement waits for no other thread to be scheduled. Each receive (recvmsg) puts the bodies straight where
 * the records they make are checked and written from, and the headers aside. rmq_follow returns
 * only for what Python must do: give it the next segment, wake the dispatch, or close the link;
 * every return but the dispatch's waits until the writer has written all it was handed. The
 * frame layout is protocol/ha.py's (TRANSFER_HEADER, REPORT); tests/ha/test_native_link.py
 * holds this loop and TransferReader to the same answers. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
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
#define RING 4               /* receive buffers: one filling, the others written or free */

/* Checked bytes handed to the writer: where they go, and the log's end once they are there. */
typedef struct {
    uint8_t *data;           /* the ring buffer (kept across jobs) */
    int64_t cap, len;
    uint8_t *seg;
    int32_t fd;
    int64_t base, end;       /* segment position of data[0]; global offset of data[len] */
    int64_t *wrote;
} job;

typedef struct {
    pthread_t thread;
    pthread_mutex_t mu;      /* handed, done, quit, err; the condition variables */
    pthread_cond_t work, freed;
    pthread_mutex_t send_mu; /* one report on the socket at a time: reported, last_report_ms */
    job jobs[RING];          /* jobs[handed % RING] is the buffer being filled */
    int64_t handed, done;    /* jobs given to the writer, jobs it finished */
    int64_t written;         /* the log's end as the writer left it; -1: none yet */
    int32_t err, send_err;   /* the writer's failure to write, to report (errno) */
    int quit, named;
} ring;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Send the log's end to the master when it changed, or when the heartbeat is due. Either
 * thread; 0, or the errno of the failure. */
static int32_t report(rmq_follower *f) {
    ring *r = f->ring;
    int32_t err = 0;
    pthread_mutex_lock(&r->send_mu);
    int64_t end = __atomic_load_n(&r->written, __ATOMIC_ACQUIRE);
    if (end < 0) end = 0;
    int64_t now = now_ms();
    if (end != f->reported || now - f->last_report_ms >= f->heartbeat_ms) {
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
            err = errno;
            break;
        }
        if (!err) {
            f->reported = end;
            __atomic_store_n(&f->last_report_ms, now, __ATOMIC_RELAXED);
        }
    }
    pthread_mutex_unlock(&r->send_mu);
    return err;
}

/* Write one job's checked bytes, the first size field last, publish the segment's write
 * position, count the bytes for the dispatch, then report; the failures go to the ring (under
 * its mutex). After a failure nothing more is written (the receive thread closes the link;
 * the next one resumes at the end). Either thread: the writer's, or the receive thread's when
 * the writer is idle. */
static void write_job(rmq_follower *f, const job *j) {
    ring *r = f->ring;
    int32_t failed = __atomic_load_n(&r->err, __ATOMIC_RELAXED)
                     || __atomic_load_n(&r->send_err, __ATOMIC_RELAXED);
    int32_t write_err = 0, report_err = 0;
    if (f->write_delay_us > 0) {
        struct timespec pause = {f->write_delay_us / 1000000,
                                 f->write_delay_us % 1000000 * 1000};
        nanosleep(&pause, NULL);
    }
    if (!failed && rmq_write_raw(j->seg, j->fd, j->base, j->data, j->len)) {
        write_err = errno ? errno : EIO;
    } else if (!failed) {
        __atomic_store_n(j->wrote, j->base + j->len, __ATOMIC_RELEASE);
        __atomic_store_n(&r->written, j->end, __ATOMIC_RELEASE);
        if (__atomic_fetch_add(&f->appended, j->len, __ATOMIC_ACQ_REL) == 0)
            __atomic_store_n(&f->first_appended_ms, now_ms(), __ATOMIC_RELAXED);
        report_err = report(f);
    }
    if (write_err || report_err) {
        pthread_mutex_lock(&r->mu);
        if (write_err) __atomic_store_n(&r->err, write_err, __ATOMIC_RELAXED);
        if (report_err) __atomic_store_n(&r->send_err, report_err, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&r->mu);
    }
}

/* The writer thread: the jobs handed to it, in order. */
static void *writer_main(void *arg) {
    rmq_follower *f = arg;
    ring *r = f->ring;
    pthread_setname_np(pthread_self(), "rmq-ha-write");  /* top -H, per-thread CPU figures */
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (r->done == r->handed && !r->quit) pthread_cond_wait(&r->work, &r->mu);
        if (r->done == r->handed) break;
        job *j = &r->jobs[r->done % RING];
        pthread_mutex_unlock(&r->mu);
        write_job(f, j);
        pthread_mutex_lock(&r->mu);
        __atomic_store_n(&r->done, r->done + 1, __ATOMIC_RELEASE);
        pthread_cond_signal(&r->freed);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int32_t rmq_follower_init(rmq_follower *f) {
    f->ring = NULL;
    f->buf = NULL;
    f->stash = malloc(STASH);
    ring *r = calloc(1, sizeof *r);
    uint8_t *first = malloc(START_CAP);
    if (f->stash == NULL || r == NULL || first == NULL) {
        free(f->stash);
        free(r);
        free(first);
        f->stash = NULL;
        return -1;
    }
    r->jobs[0].data = f->buf = first;
    r->jobs[0].cap = f->cap = START_CAP;
    r->written = f->offset;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->send_mu, NULL);
    pthread_cond_init(&r->work, NULL);
    pthread_cond_init(&r->freed, NULL);
    f->ring = r;
    f->log_end = f->checked = f->body_left = f->hdr_have = f->guess = 0;
    f->seg_checked = -1;
    f->reported = -1;
    f->ring_waits = 0;
    f->last_read_ms = f->last_report_ms = now_ms();
    f->failing = 0;
    if (pthread_create(&r->thread, NULL, writer_main, f) != 0) {
        f->ring = NULL;
        rmq_follower_release(f);
        pthread_cond_destroy(&r->work);
        pthread_cond_destroy(&r->freed);
        pthread_mutex_destroy(&r->mu);
        pthread_mutex_destroy(&r->send_mu);
        free(first);
        free(r);
        return -1;
    }
    return 0;
}

void rmq_follower_release(rmq_follower *f) {
    ring *r = f->ring;
    if (r != NULL) {
        pthread_mutex_lock(&r->mu);
        r->quit = 1;
        pthread_cond_signal(&r->work);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
        pthread_cond_destroy(&r->work);
        pthread_cond_destroy(&r->freed);
        pthread_mutex_destroy(&r->mu);
        pthread_mutex_destroy(&r->send_mu);
        for (int i = 0; i < RING; i++) free(r->jobs[i].data);
        free(r);
    }
    free(f->stash);
    f->ring = NULL;
    f->buf = f->stash = NULL;
}

int64_t rmq_follower_take_appended(rmq_follower *f) {
    return __atomic_exchange_n(&f->appended, 0, __ATOMIC_ACQ_REL);
}

/* The checked bytes at the buffer's start as a job. */
static void fill_job(const rmq_follower *f, job *j) {
    j->data = f->buf;
    j->cap = f->cap;
    j->len = f->checked;
    j->seg = f->seg;
    j->fd = f->seg_fd;
    j->base = f->seg_checked - f->checked;
    j->wrote = f->seg_wrote;
    j->end = f->offset + f->checked;
}

/* With the writer idle and the socket empty (a lone record on an idle link), the receive
 * thread writes the checked bytes itself: no thread woken between the record and its report,
 * so a SYNC_MASTER's acknowledgement waits for no scheduling. The bytes after them move to the
 * buffer's start. */
static void write_here(rmq_follower *f) {
    job j;
    fill_job(f, &j);
    write_job(f, &j);
    int64_t rest = f->log_end - f->checked;
    if (rest) memmove(f->buf, f->buf + f->checked, (size_t)rest);
    f->offset += f->checked;
    f->log_end = rest;
    f->checked = 0;
}

/* Hand the checked bytes at the buffer's start to the writer and go on in the next buffer of
 * the ring (waiting for the writer to free it), the bytes after them moved to its start.
 * 0, or -1 when out of memory. */
static int hand_over(rmq_follower *f) {
    ring *r = f->ring;
    if (!f->checked) return 0;
    fill_job(f, &r->jobs[r->handed % RING]);
    pthread_mutex_lock(&r->mu);
    r->handed++;
    pthread_cond_signal(&r->work);
    if (r->handed - r->done >= RING) f->ring_waits++;
    while (r->handed - r->done >= RING) pthread_cond_wait(&r->freed, &r->mu);
    pthread_mutex_unlock(&r->mu);
    job *next = &r->jobs[r->handed % RING];
    int64_t rest = f->log_end - f->checked;
    if (next->cap < f->cap) {
        uint8_t *grown = realloc(next->data, (size_t)f->cap);
        if (grown == NULL) return -1;
        next->data = grown;
        next->cap = f->cap;
    }
    memcpy(next->data, f->buf + f->checked, (size_t)rest);
    f->buf = next->data;
    f->cap = next->cap;
    f->offset += f->checked;
    f->log_end = rest;
    f->checked = 0;
    return 0;
}

/* Wait until the writer has written everything handed to it. */
static void drain(rmq_follower *f) {
    ring *r = f->ring;
    pthread_mutex_lock(&r->mu);
    while (r->done < r->handed) pthread_cond_wait(&r->freed, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

/* Return stop to Python once every checked byte is written: or the writer's failure. */
static int32_t finish(rmq_follower *f, int32_t stop) {
    ring *r = f->ring;
    if (hand_over(f)) { f->err = ENOMEM; stop = RMQ_FOLLOW_IO_ERROR; }
    drain(f);
    if (r->err) { f->err = r->err; return RMQ_FOLLOW_IO_ERROR; }
    if (r->send_err) { f->err = r->send_err; return RMQ_FOLLOW_CLOSED; }
    return stop;
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
    ring *r = f->ring;
    r->jobs[r->handed % RING].data = f->buf = grown;
    r->jobs[r->handed % RING].cap = f->cap = cap;
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

/* Check the whole records the buffer holds past those checked, segment after segment; a
 * segment's last records go to the writer before the next segment is asked for. 0, or why it
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
        if (hand_over(f)) { f->err = ENOMEM; return RMQ_FOLLOW_IO_ERROR; }
        f->seg_wrote = NULL;
        f->seg_checked = -1;
    }
    return 0;
}

int32_t rmq_follow(rmq_follower *f) {
    ring *r = f->ring;
    if (!r->named) r->named = !pthread_setname_np(pthread_self(), "rmq-ha-recv");
    if (f->seg_wrote != NULL && f->seg_checked < 0) f->seg_checked = *f->seg_wrote;
    for (;;) {
        int32_t stop = check_log(f);
        if (!stop) stop = f->failing;
        if (!stop && __atomic_load_n(&r->err, __ATOMIC_RELAXED)) stop = RMQ_FOLLOW_IO_ERROR;
        if (!stop && __atomic_load_n(&r->send_err, __ATOMIC_RELAXED)) stop = RMQ_FOLLOW_CLOSED;
        if (stop) return finish(f, stop);
        int32_t err = report(f);
        if (err) { f->err = err; return finish(f, RMQ_FOLLOW_CLOSED); }
        int64_t now = now_ms();
        int64_t appended = __atomic_load_n(&f->appended, __ATOMIC_ACQUIRE);
        if (appended && (appended >= f->gather_bytes
                         || now - __atomic_load_n(&f->first_appended_ms, __ATOMIC_RELAXED)
                                >= f->gather_max_ms))
            return RMQ_FOLLOW_APPENDED;
        if (f->cap - f->log_end < MIN_RECEIVE && hand_over(f)) {
            f->err = ENOMEM;
            return finish(f, RMQ_FOLLOW_IO_ERROR);
        }
        if (make_room(f)) { f->err = ENOMEM; return finish(f, RMQ_FOLLOW_IO_ERROR); }
        struct iovec iov[2 * FOLLOW_FRAMES];
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)lay_out(f, iov)};
        ssize_t k = recvmsg(f->sock, &msg, MSG_DONTWAIT);
        if (k > 0) {
            f->last_read_ms = now;
            f->failing = received(f, iov, (int)msg.msg_iovlen, k);
            if (!f->failing && f->log_end - f->checked > f->max_pending)
                f->failing = RMQ_FOLLOW_TOO_LONG;
            continue;
        }
        if (k == 0) return finish(f, RMQ_FOLLOW_CLOSED);
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            f->err = errno;
            return finish(f, RMQ_FOLLOW_CLOSED);
        }
        /* Nothing to read: what is checked is written now (a SYNC_MASTER waits for it),
         * here when the writer is idle, then wait for bytes, the heartbeat, housekeeping or
         * the dispatch. */
        if (f->checked && __atomic_load_n(&r->done, __ATOMIC_ACQUIRE) == r->handed)
            write_here(f);
        else if (hand_over(f)) { f->err = ENOMEM; return finish(f, RMQ_FOLLOW_IO_ERROR); }
        int writing = __atomic_load_n(&r->done, __ATOMIC_ACQUIRE) != r->handed;
        appended = __atomic_load_n(&f->appended, __ATOMIC_ACQUIRE);  /* after `writing` */
        int64_t wait = __atomic_load_n(&f->last_report_ms, __ATOMIC_RELAXED) + f->heartbeat_ms
                       - now;
        int64_t silent = f->last_read_ms + f->housekeeping_ms - now;
        if (silent < wait) wait = silent;
        if ((writing || appended) && f->gather_idle_ms < wait) wait = f->gather_idle_ms;
        struct pollfd p = {.fd = f->sock, .events = POLLIN};
        int got = poll(&p, 1, wait > 0 ? (int)wait : 0);
        if (got < 0 && errno != EINTR) { f->err = errno; return finish(f, RMQ_FOLLOW_CLOSED); }
        if (got == 0) {
            if (__atomic_load_n(&f->appended, __ATOMIC_ACQUIRE)) return RMQ_FOLLOW_APPENDED;
            if (!writing && now_ms() - f->last_read_ms >= f->housekeeping_ms)
                return finish(f, RMQ_FOLLOW_SILENT);
        }
    }
}
