/* A master's HA link to one slave in one native loop (HAConnection of rocketmq-all-4.9.7: its
 * WriteSocketService and ReadSocketService): frames of the segment's bytes go out with one
 * sendmsg per eight, headers and bodies straight from the mapping (no copy in user space), and
 * the slave's 8-byte reports come in; all without Python. The loop returns only for the next
 * segment or the link's end. A report reaching notify_at is announced on ack_fd, which the
 * caller's event loop watches (a SYNC_MASTER's waiting sends), with no thread of Python woken
 * on the way. The layouts are protocol/ha.py's (TRANSFER_HEADER, REPORT).
 * Why not sendfile (header with MSG_MORE, then the body from the segment file): measured on
 * loopback, it saves the sender its copy but costs the receiver more (its recv copies from
 * page-cache pages, and its ACKs push the sender's queued frames from its own thread): both
 * ends together (receiver not writing) spent 0.73-0.75 CPU s/GiB in 32 KiB frames against
 * 0.57-0.61 for this sendmsg, and a headerless sendfile of the whole range no less
 * (0.43-0.53 against 0.41-0.48). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "rmq_native.h"
#include "rmq_internal.h"

#define HEADER 12
#define REPORT 8
/* With no segment to send from (the log ends at a segment's start), how often the caller looks
 * for the next one again: a wake-up may have come before this loop slept. */
#define NO_SEGMENT_RECHECK_MS 10
/* With the socket full, how long one wait for room lasts (stop() ends it sooner). */
#define FULL_WAIT_MS 1000

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rmq_feeder_init(rmq_feeder *f) {
    f->acked = -1;
    f->notify_at = INT64_MAX;
    f->sleeping = 0;
    f->loop_reads = f->pending_stop = 0;
    f->n_frames = 0;
    f->out_total = f->out_sent = 0;
    f->report_have = 0;
    f->last_write_ms = f->last_read_ms = now_ms();
}

int64_t rmq_feeder_notify_at(rmq_feeder *f, int64_t end) {
    __atomic_store_n(&f->notify_at, end, __ATOMIC_SEQ_CST);
    return __atomic_load_n(&f->acked, __ATOMIC_SEQ_CST);
}

void rmq_feeder_wake(rmq_feeder *f) {
    /* The append's store of the write position before the load of `sleeping`: rmq_feed
     * stores `sleeping` before it loads the position, so one of the two sees the other. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&f->sleeping, __ATOMIC_SEQ_CST)) {
        uint64_t one = 1;
        ssize_t w = write(f->wake_fd, &one, sizeof one);
        (void)w; /* a full eventfd is awake anyway */
    }
}

/* The loop's state is lent while it sleeps in poll (`sleeping` IDLE): a pusher borrows it
 * (BORROWED) and gives it back; the loop takes it back after poll, waiting out a borrower. */
enum { OWNED = 0, IDLE = 1, BORROWED = 2 };

static void take_back(rmq_feeder *f) {
    for (;;) {
        int32_t idle = IDLE;
        if (__atomic_compare_exchange_n(&f->sleeping, &idle, OWNED, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
            return;
        sched_yield(); /* a pusher is in one non-blocking sendmsg */
    }
}

static void take_frames(rmq_feeder *f, int heartbeat);
static int send_frames(rmq_feeder *f);

static int32_t read_reports(rmq_feeder *f, int64_t now, int announce);

int64_t rmq_feeder_take_reports(rmq_feeder *f) {
    int32_t idle = IDLE;
    if (!__atomic_compare_exchange_n(&f->sleeping, &idle, BORROWED, 0, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST))
        return RMQ_FEED_AWAKE; /* the loop reads them itself, before it sleeps */
    int32_t stop = f->pending_stop ? 0 : read_reports(f, now_ms(), 0);
    if (stop) f->pending_stop = stop; /* the loop returns it once it takes its state back */
    int64_t acked = f->acked;
    __atomic_store_n(&f->sleeping, IDLE, __ATOMIC_SEQ_CST);
    if (stop) { rmq_feeder_wake(f); return RMQ_FEED_ENDING; }
    return acked;
}

void rmq_feeder_loop_reads(rmq_feeder *f, int32_t on) {
    __atomic_store_n(&f->loop_reads, on, __ATOMIC_SEQ_CST);
    if (!on) rmq_feeder_wake(f); /* a loop asleep without POLLIN polls with it again */
}

int32_t rmq_feeder_push(rmq_feeder *f) {
    int32_t idle = IDLE;
    if (!__atomic_compare_exchange_n(&f->sleeping, &idle, BORROWED, 0, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST)) {
        rmq_feeder_wake(f); /* awake: it sees the new bytes before it sleeps (or is woken) */
        return 0;
    }
    int32_t sent = 0, more = 0;
    if (!f->out_total && f->seg_wrote && f->next - f->seg_start < f->seg_size) {
        take_frames(f, 0);
        if (f->out_total) {
            sent = send_frames(f) > 0;
            if (sent) f->last_write_ms = now_ms();
            /* the rest of a partial send, an error, the segment's end, or more than one
             * sendmsg took (else it waits for the next append or the heartbeat, past
             * slaveTimeout): the loop's */
            int64_t pos = f->next - f->seg_start;
            more = !sent || pos >= f->seg_size
                   || pos < __atomic_load_n(f->seg_wrote, __ATOMIC_ACQUIRE);
        }
    } else {
        more = 1; /* a frame half sent, or a segment to find: the loop's work */
    }
    __atomic_store_n(&f->sleeping, IDLE, __ATOMIC_SEQ_CST);
    if (more) rmq_feeder_wake(f);
    return sent;
}

void rmq_feeder_stop(rmq_feeder *f) { shutdown(f->sock, SHUT_RDWR); }

static void drain(int fd) {
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof n);
    (void)r;
}

/* Take what reports have arrived; a report reaching notify_at disarms it and, when announce,
 * is written to ack_fd. 0, or why the link ends. */
static int32_t read_reports(rmq_feeder *f, int64_t now, int announce) {
    uint8_t in[4096];
    for (;;) {
        ssize_t k = recv(f->sock, in, sizeof in, MSG_DONTWAIT);
        if (k == 0) return RMQ_FEED_CLOSED;
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            f->err = errno;
            return RMQ_FEED_CLOSED;
        }
        int64_t last = -1;
        for (ssize_t i = 0; i < k; i++) { /* the last whole report counts */
            f->report[f->report_have++] = in[i];
            if (f->report_have == REPORT) {
                last = (int64_t)get64(f->report);
                f->report_have = 0;
            }
        }
        if (last >= 0 || !f->report_have) f->last_read_ms = now;
        if (last >= 0) {
            /* Nothing was sent past next: a slave ahead of it holds another log. */
            if (last > f->next) { f->bad_report = last; return RMQ_FEED_BAD_REPORT; }
            __atomic_store_n(&f->acked, last, __ATOMIC_SEQ_CST);
            int64_t want = __atomic_load_n(&f->notify_at, __ATOMIC_SEQ_CST);
            if (last >= want
                && __atomic_compare_exchange_n(&f->notify_at, &want, INT64_MAX, 0,
                                               __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
                && announce) {
                uint64_t one = 1;
                ssize_t w = write(f->ack_fd, &one, sizeof one);
                (void)w;
            }
        }
        /* A short read took all there was: no second recv to hear EAGAIN (the caller's poll
         * or epoll says when more comes). */
        if ((size_t)k < sizeof in) return 0;
    }
}

/* Lay out up to RMQ_FEED_FRAMES frames of what the segment holds past next (or one empty
 * frame, a heartbeat). */
static void take_frames(rmq_feeder *f, int heartbeat) {
    int64_t pos = f->next - f->seg_start;
    int64_t wrote = f->seg_wrote ? __atomic_load_n(f->seg_wrote, __ATOMIC_ACQUIRE) : pos;
    int n = 0;
    while (n < RMQ_FEED_FRAMES && pos < wrote) {
        int64_t len = wrote - pos < f->batch ? wrote - pos : f->batch;
        f->frame_pos[n] = pos;
        f->frame_len[n] = len;
        put64(f->headers + n * HEADER, (uint64_t)(f->seg_start + pos));
        put32(f->headers + n * HEADER + 8, (uint32_t)len);
        pos += len;
        n++;
    }
    if (!n && heartbeat) {
        f->frame_len[0] = 0;
        put64(f->headers, (uint64_t)f->next);
        put32(f->headers + 8, 0);
        n = 1;
    }
    f->n_frames = n;
    f->out_sent = 0;
    f->out_total = 0;
    for (int i = 0; i < n; i++) f->out_total += HEADER + f->frame_len[i];
    f->next = f->seg_start + pos;
}

/* Send what is laid out, from where the last send stopped. 1 when all went, 0 when the
 * socket is full, -1 on an error. */
static int send_frames(rmq_feeder *f) {
    struct iovec iov[2 * RMQ_FEED_FRAMES];
    int n = 0;
    int64_t skip = f->out_sent;
    for (int i = 0; i < f->n_frames; i++) {
        const uint8_t *parts[2] = {f->headers + i * HEADER, f->seg + f->frame_pos[i]};
        int64_t lens[2] = {HEADER, f->frame_len[i]};
        for (int j = 0; j < 2; j++) {
            if (skip >= lens[j]) { skip -= lens[j]; continue; }
            iov[n].iov_base = (void *)(parts[j] + skip);
            iov[n].iov_len = (size_t)(lens[j] - skip);
            skip = 0;
            n++;
        }
    }
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    for (;;) {
        ssize_t k = sendmsg(f->sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k >= 0) {
            f->out_sent += k;
            if (f->out_sent < f->out_total) return 0;
            f->out_total = 0;
            return 1;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        f->err = errno;
        return -1;
    }
}

int32_t rmq_feed(rmq_feeder *f) {
    static __thread int named; /* top -H and the bench's per-thread CPU figures */
    if (!named) named = !pthread_setname_np(pthread_self(), "rmq-ha-feed");
    for (;;) {
        int64_t now = now_ms();
        int32_t stop = f->pending_stop ? f->pending_stop : read_reports(f, now, 1);
        if (stop) return stop;
        int full = 0;
        if (!f->out_total) {
            if (f->seg_wrote && f->next - f->seg_start >= f->seg_size) {
                f->seg_wrote = NULL;
                return RMQ_FEED_SEGMENT;
            }
            take_frames(f, now - f->last_write_ms >= f->heartbeat_ms);
        }
        if (f->out_total) {
            int sent = send_frames(f);
            if (sent < 0) return RMQ_FEED_CLOSED;
            if (sent) { f->last_write_ms = now; continue; }
            full = 1;
        }
        /* Nothing to send, or no room: wait for an append, a report or room. */
        struct pollfd p[2] = {{.fd = f->sock, .events = POLLIN | (full ? POLLOUT : 0)},
                              {.fd = f->wake_fd, .events = POLLIN}};
        int64_t wait = f->last_write_ms + f->heartbeat_ms - now;
        if (full) wait = FULL_WAIT_MS; /* a heartbeat overdue cannot pass the bytes queued */
        else if (!f->seg_wrote && wait > NO_SEGMENT_RECHECK_MS) wait = NO_SEGMENT_RECHECK_MS;
        if (!full) { /* lent to rmq_feeder_push from here until take_back */
            int64_t pos = f->next - f->seg_start;
            const int64_t *wrote = f->seg_wrote;
            __atomic_store_n(&f->sleeping, IDLE, __ATOMIC_SEQ_CST);
            int more = wrote ? __atomic_load_n(wrote, __ATOMIC_SEQ_CST) > pos : 0;
            if (more) { take_back(f); continue; }
            /* read after `sleeping` is published: rmq_feeder_loop_reads(0) stores before it
             * loads `sleeping`, so this sees 0 or the loop is woken */
            if (__atomic_load_n(&f->loop_reads, __ATOMIC_SEQ_CST)) p[0].events = 0;
        }
        int r = poll(p, 2, wait > 0 ? (int)wait : 0);
        if (!full) take_back(f);
        if (r < 0 && errno != EINTR) { f->err = errno; return RMQ_FEED_CLOSED; }
        if (r > 0 && (p[1].revents & POLLIN)) drain(f->wake_fd);
        if (!f->seg_wrote) return RMQ_FEED_SEGMENT; /* the caller looks for it again */
    }
}
