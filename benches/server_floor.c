/* The floor of a SEND on this machine in C: what benches/server_floor.py does, with no Python
 * and no event loop library, as the peer server_bench.py measures CPU per send against
 * (client `cfloor`).
 *
 *   server_floor PORT FILE sync|async
 *
 * One thread, epoll, TCP_NODELAY. Each read's whole RocketMQ remoting frames (length, header
 * word, JSON header) are appended to FILE with one write(), and each is answered SUCCESS with
 * its opaque (found by a scan for "opaque": in the header), the read's answers in one send().
 * In sync flush the answers of every read of one epoll_wait wait for one fdatasync that
 * covers them (a group commit with no delay). No topic, queue, index or properties: the
 * least any broker must do per send with these clients, this loopback and this disk.
 * Prints "listening" once bound; runs until killed. */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define BUF_BYTES (4 << 20)  /* a connection's partial frames; a longer frame closes it */
#define OUT_BYTES (1 << 20)
#define REPLY_MAX 160

struct conn {
    int fd;
    size_t have;
    size_t out_len;  /* answers waiting for the next fdatasync (sync flush) */
    uint8_t *buf;
    uint8_t *out;
};

static struct conn *conns[MAX_CONNS];
static int waiting[MAX_CONNS];  /* fds with answers held for the fdatasync */
static int n_waiting;

static void die(const char *what) { perror(what); exit(2); }

static int32_t get32(const uint8_t *p) {
    return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* The SUCCESS answer of a request with this opaque, as server_floor.py writes it. */
static size_t reply(uint8_t *out, long opaque) {
    char header[REPLY_MAX];
    int n = snprintf(header, sizeof header,
                     "{\"code\":0,\"extFields\":{},\"flag\":1,\"language\":\"JAVA\",\"opaque\":%ld,"
                     "\"serializeTypeCurrentRPC\":\"JSON\",\"version\":0}", opaque);
    put32(out, (uint32_t)(4 + n));
    put32(out + 4, (uint32_t)n);
    memcpy(out + 8, header, (size_t)n);
    return 8 + (size_t)n;
}

static long opaque_of(const uint8_t *frame, size_t header_len) {
    static const char key[] = "\"opaque\":";
    const uint8_t *end = frame + header_len;
    for (const uint8_t *p = frame; p + sizeof key - 1 < end; p++) {
        if (*p == '"' && memcmp(p, key, sizeof key - 1) == 0)
            return strtol((const char *)p + sizeof key - 1, NULL, 10);
    }
    return 0;
}

static void send_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) continue;
            return;  /* the peer went: its close is seen by the next read */
        }
        p += k; n -= (size_t)k;
    }
}

static void drop(int ep, struct conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conns[c->fd] = NULL;
    free(c->buf); free(c->out); free(c);
}

/* Reads what the socket has, appends the whole frames, answers them (or queues the answers
 * for the fdatasync). 0: the connection goes. */
static int serve(struct conn *c, int log_fd, int sync) {
    ssize_t k = recv(c->fd, c->buf + c->have, BUF_BYTES - c->have, 0);
    if (k <= 0) return k < 0 && (errno == EAGAIN || errno == EINTR);
    c->have += (size_t)k;
    size_t pos = 0;
    uint8_t answers[64 * REPLY_MAX];
    size_t answered = 0;
    while (c->have - pos >= 8) {
        int32_t length = get32(c->buf + pos);
        if (length < 4 || (size_t)length + 4 > BUF_BYTES) return 0;
        if (c->have - pos < (size_t)length + 4) break;
        size_t header_len = (size_t)get32(c->buf + pos + 4) & 0xFFFFFF;
        if (header_len > (size_t)length - 4) return 0;
        long opaque = opaque_of(c->buf + pos + 8, header_len);
        uint8_t *to = sync ? c->out + c->out_len : answers + answered;
        if (sync ? c->out_len + REPLY_MAX > OUT_BYTES : answered + REPLY_MAX > sizeof answers)
            return 0;  /* more unanswered than a client of the bench ever has */
        size_t n = reply(to, opaque);
        if (sync && !c->out_len) waiting[n_waiting++] = c->fd;
        if (sync) c->out_len += n; else answered += n;
        pos += (size_t)length + 4;
    }
    if (pos) {
        if (write(log_fd, c->buf, pos) != (ssize_t)pos) die("write");
        memmove(c->buf, c->buf + pos, c->have - pos);
        c->have -= pos;
    }
    if (answered) send_all(c->fd, answers, answered);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT FILE sync|async\n", argv[0]);
        return 2;
    }
    int sync = strcmp(argv[3], "sync") == 0;
    int log_fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) die("open");
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 128)) die("bind");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    printf("listening\n");
    fflush(stdout);
    struct epoll_event events[64];
    for (;;) {
        int n = epoll_wait(ep, events, 64, -1);
        if (n < 0) { if (errno == EINTR) continue; die("epoll_wait"); }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (cfd < 0) continue;
                if (cfd >= MAX_CONNS) { close(cfd); continue; }
                setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                struct conn *c = calloc(1, sizeof *c);
                c->fd = cfd;
                c->buf = malloc(BUF_BYTES);
                c->out = malloc(OUT_BYTES);
                conns[cfd] = c;
                struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
            } else if (conns[fd] && !serve(conns[fd], log_fd, sync)) {
                drop(ep, conns[fd]);
            }
        }
        if (!n_waiting) continue;
        if (fdatasync(log_fd)) die("fdatasync");
        for (int j = 0; j < n_waiting; j++) {
            struct conn *c = conns[waiting[j]];
            if (c && c->out_len) {
                send_all(c->fd, c->out, c->out_len);
                c->out_len = 0;
            }
        }
        n_waiting = 0;
    }
}
