/* Cross-process primitives over the shared control file (shared/control.py has its layout):
 * robust process-shared mutexes, whose holder's death the next locker learns of (the kernel
 * walks a dead thread's robust list, SIGKILL included), and futex waits and wakes on 32-bit
 * words of the same mapping, which work across processes on a MAP_SHARED file mapping. */
#include "rmq_native.h"
#include "rmq_internal.h"
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(pthread_mutex_t) <= RMQ_MUTEX_BYTES, "pthread_mutex_t outgrew its slot");

int32_t rmq_mutex_init(uint8_t *at) {
    pthread_mutexattr_t attr;
    int rc = pthread_mutexattr_init(&attr);
    if (!rc) rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (!rc) rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    memset(at, 0, RMQ_MUTEX_BYTES);
    if (!rc) rc = pthread_mutex_init((pthread_mutex_t *)at, &attr);
    pthread_mutexattr_destroy(&attr);
    return -rc;
}

static void deadline_after(struct timespec *ts, int64_t ns) {
    clock_gettime(CLOCK_REALTIME, ts); /* pthread_mutex_timedlock's clock */
    ns += ts->tv_nsec;
    ts->tv_sec += ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
}

/* Tries before a blocking lock sleeps: the write mutex is held for well under a microsecond,
 * by a process that is most often running on another core, so a short spin spares most
 * contended locks the futex sleep and wake-up (robust mutexes have no adaptive spinning). */
#define SPIN_TRIES 200

int32_t rmq_mutex_lock(uint8_t *at, int32_t *died, int64_t timeout_ns) {
    pthread_mutex_t *m = (pthread_mutex_t *)at;
    int rc = EBUSY;
    if (timeout_ns < 0) {
        for (int i = 0; i < SPIN_TRIES && rc == EBUSY; i++) {
            /* glibc's futex word (the mutex's first int; 0: free) read without writing: a
             * spin that writes would take the cache line from the holder */
            if (__atomic_load_n((int *)m, __ATOMIC_RELAXED) == 0) rc = pthread_mutex_trylock(m);
            if (rc == EBUSY) __builtin_ia32_pause();
        }
        if (rc == EBUSY) rc = pthread_mutex_lock(m);
    } else if (timeout_ns == 0) {
        rc = pthread_mutex_trylock(m);
    } else {
        struct timespec ts;
        deadline_after(&ts, timeout_ns);
        rc = pthread_mutex_timedlock(m, &ts);
    }
    if (rc == EOWNERDEAD) {
        /* The holder died inside its critical section: the flag tells the caller to repair
         * what it left; it stays set until the repair is done, so a repairer that dies too
         * leaves the work to the next one. */
        if (died) __atomic_store_n(died, 1, __ATOMIC_SEQ_CST);
        pthread_mutex_consistent(m);
        rc = 0;
    }
    if (rc) return -rc;
    return (died && __atomic_load_n(died, __ATOMIC_SEQ_CST)) ? 1 : 0;
}

int32_t rmq_mutex_unlock(uint8_t *at) {
    return -pthread_mutex_unlock((pthread_mutex_t *)at);
}

static long futex(uint32_t *word, int op, uint32_t val, const struct timespec *timeout) {
    return syscall(SYS_futex, word, op, val, timeout, NULL, 0);
}

int32_t rmq_futex_wait(uint8_t *word, uint32_t seen, int64_t timeout_ns) {
    struct timespec rel, *tp = NULL;
    if (timeout_ns >= 0) {
        rel.tv_sec = timeout_ns / 1000000000;
        rel.tv_nsec = timeout_ns % 1000000000;
        tp = &rel; /* FUTEX_WAIT takes a relative time */
    }
    if (futex((uint32_t *)word, FUTEX_WAIT, seen, tp) == 0) return 0;
    return errno == EAGAIN || errno == EINTR ? 0 : -errno;
}

int32_t rmq_futex_wake(uint8_t *word) {
    return (int32_t)futex((uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL);
}

int32_t rmq_release_and_wake(uint8_t *mutex, uint8_t *seq, const uint8_t *waiters) {
    __atomic_add_fetch((uint32_t *)seq, 1, __ATOMIC_SEQ_CST);
    int rc = pthread_mutex_unlock((pthread_mutex_t *)mutex);
    if (__atomic_load_n((const uint32_t *)waiters, __ATOMIC_SEQ_CST))
        futex((uint32_t *)seq, FUTEX_WAKE, INT_MAX, NULL);
    return -rc;
}

int32_t rmq_wait_for_change(uint8_t *seq, uint8_t *waiters, uint32_t seen, int64_t timeout_ns) {
    __atomic_add_fetch((uint32_t *)waiters, 1, __ATOMIC_SEQ_CST);
    int32_t rc = 0;
    if (__atomic_load_n((uint32_t *)seq, __ATOMIC_SEQ_CST) == seen)
        rc = rmq_futex_wait(seq, seen, timeout_ns);
    __atomic_sub_fetch((uint32_t *)waiters, 1, __ATOMIC_SEQ_CST);
    return rc;
}

int64_t rmq_put_simple_shared(uint8_t *mutex, int32_t *died, uint8_t *seq, uint8_t *waiters,
                              const int64_t *sync_failed, rmq_log *log, rmq_queue *q,
                              const char *body, int32_t body_len) {
    int32_t rc = rmq_mutex_lock(mutex, died, -1);
    if (rc != 0) {
        if (rc == 1) pthread_mutex_unlock((pthread_mutex_t *)mutex); /* *died stays set */
        return -RMQ_SLOW;
    }
    if (__atomic_load_n(sync_failed, __ATOMIC_ACQUIRE)) { /* nothing appended: no wake-up */
        pthread_mutex_unlock((pthread_mutex_t *)mutex);
        return -RMQ_SLOW;
    }
    int64_t qoff = rmq_put_simple(log, q, body, body_len);
    rmq_release_and_wake(mutex, seq, waiters);
    return qoff;
}
