/* The wait of a put with flush="sync" in a shared store, whole in C (shared/commit.py tells the
 * protocol): no Python runs between a futex wake-up and the return to the put, and the process
 * that syncs wakes everyone as soon as fdatasync returns (its Python bookkeeping comes after).
 * It syncs only the commit-log segment the caller mapped last, when that holds everything not
 * yet durable; otherwise it hands the flush mutex to the caller, who catches up and syncs in
 * Python. */
#include "rmq_native.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* Python's time.monotonic */
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint32_t load32(const uint32_t *w) { return __atomic_load_n(w, __ATOMIC_SEQ_CST); }

/* Sleep while *seq == seen, up to ns, counted in *waiters; -EINTR when a signal came (the
 * caller's Python runs its handlers before it calls again). */
static int32_t sleep_on(const rmq_shared_commit *gc, rmq_durable_wait *w, uint32_t seen,
                        int64_t ns) {
    struct timespec rel = {ns / 1000000000, ns % 1000000000};
    __atomic_add_fetch(gc->waiters, 1, __ATOMIC_SEQ_CST);
    int32_t rc = 0;
    if (load32(gc->seq) == seen) {
        w->sleeps++;
        if (syscall(SYS_futex, gc->seq, FUTEX_WAIT, seen, &rel, NULL, 0) != 0 && errno == EINTR)
            rc = -EINTR;
    }
    __atomic_sub_fetch(gc->waiters, 1, __ATOMIC_SEQ_CST);
    return rc;
}

/* Whether the waiters the next sync wants arrived since the last sync began. */
static int gathered(const rmq_shared_commit *gc) {
    uint32_t want = load32(gc->want);
    return load32(gc->arrivals) - load32(gc->synced) >= (want ? want : 1);
}

/* A sync of any process failed: the errno to fail with here, or 0. Another process's failure
 * is read as EIO: its file reported the error, this one's may not (a file opened after it). */
static int32_t failed_anywhere(rmq_shared_commit *gc) {
    int32_t failed = __atomic_load_n(&gc->failed, __ATOMIC_ACQUIRE);
    if (!failed && __atomic_load_n(gc->sync_failed, __ATOMIC_ACQUIRE)) failed = EIO;
    return failed;
}

static void release(const rmq_shared_commit *gc) {
    rmq_release_and_wake(gc->mutex, (uint8_t *)gc->seq, (const uint8_t *)gc->waiters);
}

/* The sync journal's record of a sync (sync_journal.py), after it and before any wake-up:
 * the caller's prefix, then the bytes of the segment now durable. One write, as Python's. */
static void journal(const rmq_durable_wait *w, int64_t n) {
    char line[4096 + 32];
    if (w->journal_len > 4096) return; /* sync_journal.NATIVE_PREFIX_MAX: never longer */
    memcpy(line, w->journal_prefix, w->journal_len);
    int len = w->journal_len + snprintf(line + w->journal_len, 32, "%lld}\n", (long long)n);
    ssize_t r;
    do {
        r = write(w->journal_fd, line, len);
    } while (r < 0 && errno == EINTR);
}

/* Under the flush mutex, durable short of w->offset: fdatasync the caller's segment, set the
 * next sync's want (see shared/commit.py's _sync), move durable, wake everyone. */
static int32_t sync_segment(rmq_shared_commit *gc, rmq_durable_wait *w) {
    int64_t ts = __atomic_load_n(gc->last_ts, __ATOMIC_ACQUIRE); /* before end: as Python's */
    int64_t end = __atomic_load_n(gc->log_end, __ATOMIC_ACQUIRE);
    int64_t durable = __atomic_load_n(gc->durable, __ATOMIC_ACQUIRE);
    if (w->fd < 0 || durable < w->seg_start || end < w->seg_start ||
        end > w->seg_start + w->seg_size)
        return RMQ_DURABLE_HOLDING; /* earlier segments, or one not mapped here */
    /* A sync failed, here or in another process (a file reports it once, and a file opened
     * after it never: a later sync would succeed without the pages the failure left clean;
     * sync_failure.py): nothing is synced or made durable from here. Both words are set and
     * read under the flush mutex, so no process syncs after a failure unaware. */
    int32_t failed = failed_anywhere(gc);
    if (failed) {
        release(gc);
        return -failed;
    }
    uint32_t since = load32(gc->synced), start = load32(gc->arrivals);
    __atomic_store_n(gc->synced, start, __ATOMIC_SEQ_CST);
    if (fdatasync(w->fd) != 0) {
        int32_t err = errno ? errno : EIO;
        __atomic_store_n(&gc->failed, err, __ATOMIC_RELEASE);
        int64_t none = 0; /* the first failure's durable end stands */
        __atomic_compare_exchange_n(gc->sync_failed, &none, durable + 1, 0, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST);
        release(gc);
        return -err;
    }
    if (w->journal_fd >= 0) journal(w, end - w->seg_start);
    __atomic_store_n(gc->want, (start - since) + (load32(gc->arrivals) - start), __ATOMIC_SEQ_CST);
    if (end > durable) __atomic_store_n(gc->durable, end, __ATOMIC_RELEASE);
    release(gc);
    w->synced_upto = end;
    w->synced_ts = ts;
    return RMQ_DURABLE_SYNCED;
}

int32_t rmq_durable_wait_shared(rmq_shared_commit *gc, rmq_durable_wait *w) {
    int32_t failed = failed_anywhere(gc);
    if (failed) return -failed;
    if (__atomic_load_n(gc->durable, __ATOMIC_ACQUIRE) >= w->offset) return RMQ_DURABLE_DONE;
    int64_t now = now_ns();
    if (!w->arrived) { /* the caller's put is published */
        w->mine = __atomic_add_fetch(gc->arrivals, 1, __ATOMIC_SEQ_CST);
        w->arrived = 1;
        w->deadline = now + gc->timeout_ns;
        w->ripe = now + gc->delay_ns;
        w->recheck = now + gc->recheck_ns;
    }
    for (;;) {
        uint32_t seen = load32(gc->seq); /* before looking: a sync finished after it wakes us */
        if (__atomic_load_n(gc->durable, __ATOMIC_ACQUIRE) >= w->offset) return RMQ_DURABLE_DONE;
        now = now_ns();
        int64_t left = w->deadline - now;
        if (left <= 0) return RMQ_DURABLE_TIMEOUT;
        if (!gathered(gc)) { /* the last to arrive syncs */
            /* the first to arrive since the last sync began keeps the delay (and syncs at its
             * end); the others sleep through theirs: the end of a sync wakes them */
            int64_t until = w->ripe;
            if (w->mine - load32(gc->synced) != 1 && w->recheck > until) until = w->recheck;
            if (now < until) {
                if (sleep_on(gc, w, seen, until - now < left ? until - now : left) == -EINTR)
                    return RMQ_DURABLE_AGAIN;
                continue;
            }
        }
        w->recheck = now + gc->recheck_ns;
        w->tries++;
        int32_t rc = rmq_mutex_lock(gc->mutex, NULL, 0);
        if (rc == -EBUSY) { /* another syncs; a sleeper looks again after recheck_ns */
            if (sleep_on(gc, w, seen, gc->recheck_ns < left ? gc->recheck_ns : left) == -EINTR)
                return RMQ_DURABLE_AGAIN;
            continue;
        }
        if (rc < 0) return rc;
        if (__atomic_load_n(gc->durable, __ATOMIC_ACQUIRE) >= w->offset) {
            release(gc); /* the last holder's sync covered it */
            return RMQ_DURABLE_DONE;
        }
        return sync_segment(gc, w);
    }
}
