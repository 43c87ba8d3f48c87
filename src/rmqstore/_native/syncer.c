/* A background fdatasync that never takes the GIL: the event loop hands it one job at a time
 * (a file and its write-position cell) and learns of the completion through an eventfd it
 * watches. While a job runs, sends accumulate, so the next job covers them all: the group
 * commit of a SYNC_FLUSH broker without a Python thread (whose every wake-up would take the
 * GIL from the event loop). A job may first wait, up to `delay_us`, until `want` records wait
 * for it (PostgreSQL's commit_delay, ended early by its commit_siblings): on this kind of VM an
 * fdatasync costs ~100 us of CPU, so a sync that waits for the next sends of concurrent
 * producers saves more than it delays, and stops waiting as soon as they are there. The
 * position is read after the wait, so the job covers whatever was appended meanwhile. */
#include "rmq_native.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct rmq_syncer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int32_t efd;          /* written (1) after each job */
    int32_t job_fd;
    const int64_t *job_wrote;
    int32_t job_delay_us;
    int32_t job_want;     /* waiting records that end the delay early */
    int32_t waiting;      /* records waiting for the job (rmq_syncer_waiting) */
    int32_t has_job;      /* submitted, not yet taken */
    int32_t busy;         /* taken, running */
    int32_t stop;
    int64_t done_upto;    /* the last completed job's offset (-1: none yet) */
    int32_t done_errno;   /* 0, or the errno of the last completed job's fdatasync */
};

static void *syncer_main(void *arg) {
    rmq_syncer *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->has_job && !s->stop) pthread_cond_wait(&s->cv, &s->mu);
        if (s->stop) break;
        int32_t fd = s->job_fd;
        const int64_t *wrote = s->job_wrote;
        int32_t delay_us = s->job_delay_us;
        s->has_job = 0;
        s->busy = 1;
        if (delay_us > 0 && s->waiting < s->job_want) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_nsec += (long)delay_us * 1000;
            until.tv_sec += until.tv_nsec / 1000000000;
            until.tv_nsec %= 1000000000;
            while (s->waiting < s->job_want && !s->stop &&
                   pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT) {}
        }
        pthread_mutex_unlock(&s->mu);
        /* Everything below the published position is in the page cache: the appender
         * publishes it after writing the bytes. */
        int64_t upto = __atomic_load_n(wrote, __ATOMIC_ACQUIRE);
        int rc = fdatasync(fd);
        int err = rc == 0 ? 0 : errno;
        pthread_mutex_lock(&s->mu);
        s->busy = 0;
        s->done_upto = upto;
        s->done_errno = err;
        pthread_mutex_unlock(&s->mu);
        uint64_t one = 1;
        ssize_t w;
        do {
            w = write(s->efd, &one, sizeof one);
        } while (w < 0 && errno == EINTR);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

rmq_syncer *rmq_syncer_new(int32_t efd) {
    rmq_syncer *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    s->efd = efd;
    s->done_upto = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);  /* delays immune to clock steps */
    pthread_cond_init(&s->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&s->thread, NULL, syncer_main, s) != 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    return s;
}

int32_t rmq_syncer_submit(rmq_syncer *s, int32_t fd, const int64_t *wrote, int32_t delay_us,
                          int32_t want, int32_t waiting) {
    pthread_mutex_lock(&s->mu);
    int32_t refused = s->has_job || s->busy || s->stop;
    if (!refused) {
        s->job_fd = fd;
        s->job_wrote = wrote;
        s->job_delay_us = delay_us;
        s->job_want = want;
        s->waiting = waiting;
        s->has_job = 1;
    }
    pthread_mutex_unlock(&s->mu);
    /* Signalled after the unlock: the woken thread does not block again on the mutex (two
     * futex calls and a context switch per sync saved); it checks has_job under the lock. */
    if (!refused) pthread_cond_signal(&s->cv);
    return refused ? -1 : 0;
}

void rmq_syncer_waiting(rmq_syncer *s) {
    pthread_mutex_lock(&s->mu);
    s->waiting++;
    int32_t wake = s->busy && s->waiting == s->job_want;
    pthread_mutex_unlock(&s->mu);
    if (wake) pthread_cond_signal(&s->cv);  /* after the unlock, as in rmq_syncer_submit */
}

int64_t rmq_syncer_done(rmq_syncer *s, int32_t *err) {
    pthread_mutex_lock(&s->mu);
    int64_t upto = s->done_upto;
    *err = s->done_errno;
    pthread_mutex_unlock(&s->mu);
    return upto;
}

void rmq_syncer_free(rmq_syncer *s) {
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);  /* waits out a running fdatasync */
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
