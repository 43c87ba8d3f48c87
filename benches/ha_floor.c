/* The floor of replication's catch-up on this machine: the same work as rmqstore's HA link,
 * done by C with no Python and no event loop, as a peer for benches/ha_catchup.py.
 *
 *   ha_floor master PORT PATH:START:BYTES...   serve the segment files as HA frames
 *   ha_floor slave PORT DIR SEGMENT_BYTES START  follow them into DIR from START (in the
 *                                                first segment; what is before it is left 0)
 *
 * Master: waits for the slave's first 8-byte report, then sends frames of 32 KiB bodies (12-byte
 * header: offset, size; never past a segment), eight to a send, read from the files with pread,
 * as rmqstore's master does; once a report covers the end it prints the seconds from the first
 * report to that one, and closes. Slave: receives into a 1 MiB buffer, takes the headers out in
 * place, appends whole records with the native check rmqstore's replica uses (rmq_append_raw:
 * sizes, magic, body CRC, physical offset; pwrite to preallocated segment files) and reports
 * its end after every read (rmqstore's slave appends and reports once the socket is drained,
 * or every few MiB), while another thread fdatasyncs the active segment every 500 ms (an
 * ASYNC_FLUSH store's flushIntervalCommitLog, which rmqstore's replica keeps too). No dispatch
 * to consume queues or index.
 * Built by the bench with rmqstore's own native sources; RocketMQ's wire format
 * (src/rmqstore/protocol/ha.py). */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rmq_native.h"

#define BATCH (32 * 1024)
#define FRAMES 8
#define HEADER 12
#define RECV_BUF (1 << 20)

static void die(const char *what) { perror(what); exit(2); }

static void put64(uint8_t *p, int64_t v) { for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; } }
static void put32(uint8_t *p, int32_t v) { for (int i = 3; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; } }
static int64_t get64(const uint8_t *p) { int64_t v = 0; for (int i = 0; i < 8; i++) v = (v << 8) | p[i]; return v; }
static int32_t get32(const uint8_t *p) { int32_t v = 0; for (int i = 0; i < 4; i++) v = (v << 8) | p[i]; return v; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void send_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, 0);
        if (k < 0) { if (errno == EINTR) continue; die("send"); }
        p += k; n -= (size_t)k;
    }
}

static void no_delay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* The last whole report in what can be read now (blocking when `wait`); -1 if none. */
static int64_t read_report(int fd, int wait) {
    static uint8_t pending[8];
    static int have = 0;
    int64_t last = -1;
    uint8_t buf[4096];
    for (;;) {
        ssize_t k = recv(fd, buf, sizeof buf, wait ? 0 : MSG_DONTWAIT);
        if (k <= 0) {
            if (k < 0 && (errno == EAGAIN || errno == EINTR) && !wait) return last;
            if (k == 0 || errno != EINTR) return last;
            continue;
        }
        for (ssize_t i = 0; i < k; i++) {
            pending[have++] = buf[i];
            if (have == 8) { last = get64(pending); have = 0; }
        }
        if (last >= 0) return last;
    }
}

static int master(int port, int n_files, char **specs) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) || listen(listener, 1)) die("listen");
    printf("listening\n");
    fflush(stdout);
    int fd = accept(listener, NULL, NULL);
    if (fd < 0) die("accept");
    no_delay(fd);
    int64_t start = read_report(fd, 1), acked = start;
    double t0 = now_s();
    static uint8_t out[FRAMES * (HEADER + BATCH)];
    int64_t end = 0;
    for (int i = 0; i < n_files; i++) {
        char path[4096];
        long long seg_start, bytes;
        if (sscanf(specs[i], "%4095[^:]:%lld:%lld", path, &seg_start, &bytes) != 3) {
            fprintf(stderr, "bad file spec %s\n", specs[i]);
            return 2;
        }
        int file = open(path, O_RDONLY);
        if (file < 0) die("open");
        end = seg_start + bytes;
        int64_t at = start > seg_start ? start - seg_start : 0;
        while (at < bytes) {
            size_t used = 0;
            for (int f = 0; f < FRAMES && at < bytes; f++) {
                int64_t n = bytes - at < BATCH ? bytes - at : BATCH;
                if (pread(file, out + used + HEADER, (size_t)n, at) != n) die("pread");
                put64(out + used, seg_start + at);
                put32(out + used + 8, (int32_t)n);
                used += HEADER + (size_t)n;
                at += n;
            }
            send_all(fd, out, used);
            int64_t r = read_report(fd, 0);
            if (r > acked) acked = r;
        }
        close(file);
    }
    while (acked < end) {
        int64_t r = read_report(fd, 1);
        if (r < 0) break;
        if (r > acked) acked = r;
    }
    if (acked < end) { fprintf(stderr, "the slave went away at %lld\n", (long long)acked); return 1; }
    printf("%.6f\n", now_s() - t0);
    close(fd);
    return 0;
}

struct segment { int fd; int64_t start, wrote; };

/* The flusher: fdatasync of the active segment every 500 ms, as a store's flush thread. */
static pthread_mutex_t flush_lock = PTHREAD_MUTEX_INITIALIZER;
#define MAX_FULL 256
static int flush_fd = -1, flush_stop = 0, n_full = 0;
static int full_fds[MAX_FULL]; /* segments that filled since the last flush */

static void *flusher(void *arg) {
    (void)arg;
    int full[MAX_FULL];
    for (;;) {
        usleep(500 * 1000);
        pthread_mutex_lock(&flush_lock);
        int fd = flush_fd >= 0 ? dup(flush_fd) : -1, stop = flush_stop, n = n_full;
        memcpy(full, full_fds, sizeof(int) * (size_t)n);
        n_full = 0;
        pthread_mutex_unlock(&flush_lock);
        for (int i = 0; i < n; i++) { fdatasync(full[i]); close(full[i]); }
        if (fd >= 0) { fdatasync(fd); close(fd); }
        if (stop) return NULL;
    }
}

static void set_flushed(int fd) {
    pthread_mutex_lock(&flush_lock);
    flush_fd = fd;
    pthread_mutex_unlock(&flush_lock);
}

static void open_segment(struct segment *s, const char *dir, int64_t start, int64_t size) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%020lld", dir, (long long)start);
    s->fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (s->fd < 0) die("open segment");
    if (posix_fallocate(s->fd, 0, size)) die("fallocate");
    s->start = start;
    s->wrote = 0;
    set_flushed(s->fd);
}

static int slave(int port, const char *dir, int64_t seg_size, int64_t start) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) die("connect");
    no_delay(fd);
    uint8_t report[8];
    put64(report, start);
    send_all(fd, report, 8);
    uint8_t *buf = malloc(RECV_BUF);
    pthread_t flush_thread;
    pthread_create(&flush_thread, NULL, flusher, NULL);
    struct segment seg;
    open_segment(&seg, dir, 0, seg_size);
    seg.wrote = start;
    int64_t log_end = 0, raw_at = 0, raw_end = 0, body_left = 0;
    int64_t offset = start; /* of buf[0] */
    for (;;) {
        ssize_t k = recv(fd, buf + raw_end, RECV_BUF - raw_end, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        raw_end += k;
        for (;;) { /* headers out, bodies back to back */
            if (body_left) {
                int64_t n = raw_end - raw_at < body_left ? raw_end - raw_at : body_left;
                if (!n) break;
                if (log_end != raw_at) memmove(buf + log_end, buf + raw_at, (size_t)n);
                log_end += n; raw_at += n; body_left -= n;
                continue;
            }
            if (raw_end - raw_at < HEADER) break;
            if (get64(buf + raw_at) != offset + log_end) { fprintf(stderr, "gap\n"); return 1; }
            body_left = get32(buf + raw_at + 8);
            raw_at += HEADER;
        }
        int64_t used = 0;
        for (;;) { /* append whole records, segment by segment */
            int32_t status;
            int64_t last_ts;
            int64_t n = rmq_append_raw(NULL, seg.fd, seg_size, seg.start, &seg.wrote,
                                       buf + used, log_end - used, &status, &last_ts);
            used += n;
            if (status == RMQ_RAW_SEGMENT_END) {
                int old = seg.fd;
                open_segment(&seg, dir, seg.start + seg_size, seg_size);
                pthread_mutex_lock(&flush_lock);
                if (n_full == MAX_FULL) die("too many segments between flushes");
                full_fds[n_full++] = old;
                pthread_mutex_unlock(&flush_lock);
                continue;
            }
            if (status != RMQ_RAW_MORE) { fprintf(stderr, "bad record\n"); return 1; }
            break;
        }
        memmove(buf, buf + used, (size_t)(log_end - used));
        memmove(buf + log_end - used, buf + raw_at, (size_t)(raw_end - raw_at));
        offset += used;
        raw_end = log_end - used + (raw_end - raw_at);
        raw_at = log_end = log_end - used;
        put64(report, seg.start + seg.wrote);
        send_all(fd, report, 8);
    }
    pthread_mutex_lock(&flush_lock);
    flush_stop = 1;
    flush_fd = -1;
    pthread_mutex_unlock(&flush_lock);
    pthread_join(flush_thread, NULL);
    close(seg.fd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "master") == 0) return master(atoi(argv[2]), argc - 3, argv + 3);
    if (argc == 6 && strcmp(argv[1], "slave") == 0)
        return slave(atoi(argv[2]), argv[3], atoll(argv[4]), atoll(argv[5]));
    fprintf(stderr, "usage: ha_floor master PORT PATH:START:BYTES... | "
                    "slave PORT DIR SEGMENT_BYTES START\n");
    return 2;
}
