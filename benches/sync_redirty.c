/* What a sync-flush append costs by the path its record takes into the commit-log segment,
 * when every K records are followed by an fdatasync (K = 1: a lone producer's sync sends), in
 * CPU microseconds per record of this thread (kernel work included), the append and the sync
 * apart, each path in turn, --turns times:
 *
 *   gcc -O2 -D_GNU_SOURCE -o /tmp/sync_redirty benches/sync_redirty.c
 *   /tmp/sync_redirty DIR [RECORDS] [TURNS]
 *
 * - map: the 300-byte record copied into the file's shared mapping (MADV_RANDOM, as
 *   rmq_map leaves it): the sync wrote back and write-protected the page being filled, so the
 *   first record after each sync takes a write fault (page_mkwrite) to dirty it again;
 * - pwrite: one pwrite per record (Appender.stage_singles);
 * - pwrite x2: the record's bytes after its size field, then the size field (a record that
 *   spans a page, append.c's pwrite_size_last).
 * Each file is created as MappedFile.create makes a segment and deleted after its turn. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RECORD 300
#define SEGMENT (64L << 20)

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static const char *NAMES[] = {"map", "pwrite", "pwrite x2"};

/* One turn of a path: n records, an fdatasync after every k. Adds the CPU per record of the
 * appends and of the syncs to out[0] and out[1]; -1 when the file cannot be made. */
static int turn(const char *dir, int path, int k, int n, double out[2]) {
    char name[4096];
    snprintf(name, sizeof name, "%s/sync_redirty.%d", dir, (int)getpid());
    int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || posix_fallocate(fd, 0, SEGMENT) != 0) return -1;
    unsigned char *m = mmap(NULL, SEGMENT, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) return -1;
    madvise(m, SEGMENT, MADV_RANDOM);
    unsigned char rec[RECORD];
    memset(rec, 7, sizeof rec);
    double appends = 0, syncs = 0;
    long pos = 0;
    for (int i = 0; i < n && pos + RECORD <= SEGMENT; i++, pos += RECORD) {
        double a = cpu_now();
        int bad = 0;
        if (path == 0)
            memcpy(m + pos, rec, RECORD);
        else if (path == 1)
            bad = pwrite(fd, rec, RECORD, pos) != RECORD;
        else
            bad = pwrite(fd, rec + 4, RECORD - 4, pos + 4) != RECORD - 4 ||
                  pwrite(fd, rec, 4, pos) != 4;
        double b = cpu_now();
        appends += b - a;
        if (bad) return -1;
        if ((i + 1) % k == 0) {
            fdatasync(fd);
            syncs += cpu_now() - b;
        }
    }
    munmap(m, SEGMENT);
    close(fd);
    unlink(name);
    out[0] += appends / n * 1e6;
    out[1] += syncs / n * 1e6;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [RECORDS] [TURNS]\n", argv[0]);
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 4000, turns = argc > 3 ? atoi(argv[3]) : 3;
    if (n <= 0 || turns <= 0) return 2;
    static const int KS[] = {1, 2, 4, 8};
    printf("%-10s %3s %12s %12s %12s   (CPU us per record, mean of %d turns)\n", "path", "K",
           "append", "sync", "total", turns);
    for (size_t ki = 0; ki < sizeof KS / sizeof KS[0]; ki++) {
        double sums[3][2] = {{0}};
        for (int t = 0; t < turns; t++)
            for (int p = 0; p < 3; p++)
                if (turn(argv[1], p, KS[ki], n, sums[p]) != 0) {
                    perror("sync_redirty");
                    return 1;
                }
        for (int p = 0; p < 3; p++)
            printf("%-10s %3d %12.2f %12.2f %12.2f\n", NAMES[p], KS[ki], sums[p][0] / turns,
                   sums[p][1] / turns, (sums[p][0] + sums[p][1]) / turns);
    }
    return 0;
}
