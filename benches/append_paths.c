/* What a replica's append costs by the path its bytes take into a fresh, preallocated segment
 * file, in CPU seconds per GiB of this thread (kernel work included), each path in turn over
 * the same sizes, --turns times, medians with min-max:
 *
 *   gcc -O2 -D_GNU_SOURCE -o /tmp/append_paths benches/append_paths.c
 *   /tmp/append_paths DIR [MIB] [TURNS]
 *
 * - pwrite: a 1 MiB chunk copied into a buffer (where the receive puts it), then pwrite
 *   (what rmq_write_raw does);
 * - map random / map normal: the chunk copied straight into the file's shared mapping (where a
 *   receive into the mapping would put it), the mapping advised MADV_RANDOM (a replica's
 *   segments while they take appends) or MADV_NORMAL;
 * - populate + map: MADV_POPULATE_WRITE over the chunk first (the warmer's way), then the copy;
 * - zeros + map: the chunk's range written with zeros by pwrite first, then the copy through
 *   the mapping (MADV_RANDOM).
 * Each file is created as MappedFile.create makes a segment (posix_fallocate: blocks
 * allocated, unwritten) and deleted after its turn. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#define CHUNK (1 << 20)
enum { PWRITE, MAP_RANDOM, MAP_NORMAL, POPULATE, ZEROS, N_PATHS };
static const char *NAMES[N_PATHS] = {"pwrite", "map random", "map normal", "populate + map",
                                     "zeros + map"};

static double thread_cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* CPU seconds per GiB of one turn of `path` over a new file of `size` bytes; -1 on failure. */
static double turn(const char *file, long size, int path, char *src, char *buf, char *zeros) {
    int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || posix_fallocate(fd, 0, size)) return -1;
    char *m = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) return -1;
    madvise(m, (size_t)size, path == MAP_NORMAL ? MADV_NORMAL : MADV_RANDOM);
    double t0 = thread_cpu();
    for (long at = 0; at < size; at += CHUNK) {
        if (path == PWRITE) {
            memcpy(buf, src, CHUNK);
            if (pwrite(fd, buf, CHUNK, at) != CHUNK) return -1;
            continue;
        }
        if (path == POPULATE) madvise(m + at, CHUNK, MADV_POPULATE_WRITE);
        if (path == ZEROS && pwrite(fd, zeros, CHUNK, at) != CHUNK) return -1;
        memcpy(m + at, src, CHUNK);
    }
    double spent = thread_cpu() - t0;
    munmap(m, (size_t)size);
    close(fd);
    unlink(file);
    return spent * (double)(1L << 30) / (double)size;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [MIB] [TURNS]\n", argv[0]);
        return 2;
    }
    char file[4096];
    snprintf(file, sizeof file, "%s/append_paths.tmp", argv[1]);
    long size = (argc > 2 ? atol(argv[2]) : 256) << 20;
    int turns = argc > 3 ? atoi(argv[3]) : 5;
    if (size < CHUNK || turns < 1 || turns > 100) return 2;
    char *src = malloc(CHUNK), *buf = malloc(CHUNK), *zeros = calloc(1, CHUNK);
    if (!src || !buf || !zeros) return 1;
    memset(src, 7, CHUNK);
    memset(buf, 1, CHUNK);
    double s[N_PATHS][100];
    for (int t = 0; t < turns; t++)
        for (int k = 0; k < N_PATHS; k++) {
            int path = (k + t) % N_PATHS; /* the order rotates every turn */
            if ((s[path][t] = turn(file, size, path, src, buf, zeros)) < 0) {
                perror(NAMES[path]);
                return 1;
            }
        }
    printf("CPU s/GiB into a fresh preallocated file, %ld MiB, medians of %d turns (min-max):\n",
           size >> 20, turns);
    for (int p = 0; p < N_PATHS; p++) {
        qsort(s[p], (size_t)turns, sizeof(double), cmp);
        printf("  %-15s %.3f (%.3f-%.3f)\n", NAMES[p], s[p][turns / 2], s[p][0], s[p][turns - 1]);
    }
    return 0;
}
