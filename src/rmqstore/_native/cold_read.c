/* Cold in-order reads of a queue's bodies (get_bodies): the commit-log pages behind the units
 * are brought in one call per run of records lying (nearly) back to back, instead of faulting
 * them in through the mapping, where each miss costs a fault and waits alone for its page. The
 * run is mapped in with MADV_POPULATE_READ and read through the mapping (a third of the CPU
 * that copying it out with pread costs), or, where the kernel cannot (before Linux 5.14), read
 * with pread into a scratch buffer. The bodies, ends and counts are rmq_read_bodies's. */
#include "rmq_native.h"
#include "rmq_internal.h"
#include <errno.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

/* Records at most this far past the previous one's end stay in its run: reading the gap costs
 * less than another call. */
#define RUN_GAP 4096
/* A record's bytes besides its body, at least (rmq_parse: the fixed fields with IPv4 hosts, the
 * body length, a one-byte topic length). */
#define RMQ_MIN_BODY_OVERHEAD 89

static int pread_all(int fd, uint8_t *dst, int64_t n, int64_t off) {
    while (n > 0) {
        ssize_t got = pread(fd, dst, (size_t)n, off);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        dst += got;
        n -= got;
        off += got;
    }
    return 0;
}

/* Maps in the pages of seg[pos, end) (waiting for any the disk must read): 0, or -1. */
static int populate(const uint8_t *seg, int64_t pos, int64_t end) {
    static long page;
    if (!page) page = sysconf(_SC_PAGESIZE) > 0 ? sysconf(_SC_PAGESIZE) : 4096;
    int64_t from = pos - pos % page;
    return madvise((void *)(seg + from), (size_t)(end - from), MADV_POPULATE_READ);
}

/* The end of the run that starts with the record [pos, end) of segment index, unit cq[p]: the
 * records of the units after it that lie in the same segment, at most RUN_GAP past the previous
 * one's end, within cap bytes of pos, max_units units in all. */
static int64_t run_end(const uint8_t *cq, int64_t p, int64_t to_pos, const rmq_segtable *t,
                       int32_t index, int64_t pos, int64_t end, int64_t cap, int32_t max_units) {
    for (p += RMQ_CQ_UNIT; p + RMQ_CQ_UNIT <= to_pos && --max_units > 0; p += RMQ_CQ_UNIT) {
        int64_t phys = (int64_t)get64(cq + p), q;
        int32_t size = (int32_t)get32(cq + p + 8), i;
        if (size <= 0 || !locate(t, phys, size, &q, &i)) break;
        if (i != index || q < end || q - end > RUN_GAP || q + size - pos > cap) break;
        end = q + size;
    }
    return end;
}

int32_t rmq_read_bodies_pread(const uint8_t *cq, int64_t from_pos, int64_t to_pos,
                              const rmq_segtable *table, const int32_t *fds, uint8_t *scratch,
                              int64_t scratch_cap, uint8_t *dst, int64_t dst_cap,
                              int64_t *out_ends, int32_t max_out, int64_t *out_scanned,
                              int32_t *out_skipped, int32_t map_runs) {
    int32_t n = 0, missing = 0, corrupt = 0, win_seg = -1, win_mapped = 0;
    int64_t used = 0, p = from_pos, win_start = 0, win_end = 0;
    int64_t f[16];
    for (; p + RMQ_CQ_UNIT <= to_pos && n < max_out; p += RMQ_CQ_UNIT) {
        const uint8_t *u = cq + p;
        int64_t phys = (int64_t)get64(u);
        int32_t size = (int32_t)get32(u + 8);
        if (phys == 0 && size == 0) break; /* unwritten */
        int64_t pos;
        int32_t index;
        const uint8_t *base = locate(table, phys, size, &pos, &index);
        if (!base) {
            missing++;
            continue;
        }
        int64_t base_size = table->seg_size, at = pos;
        if (fds[index] >= 0 && size > 0 && size <= scratch_cap) {
            if (index != win_seg || pos < win_start || pos + size > win_end) {
                int64_t end = run_end(cq, p, to_pos, table, index, pos, pos + size, scratch_cap,
                                      max_out - n);
                win_seg = -1; /* a failed read leaves this record to the mapping */
                win_mapped = map_runs && populate(base, pos, end) == 0;
                if (win_mapped || pread_all(fds[index], scratch, end - pos, pos) == 0) {
                    win_seg = index;
                    win_start = pos;
                    win_end = end;
                }
            }
            if (win_seg == index && !win_mapped) {
                base = scratch;
                base_size = win_end - win_start;
                at = pos - win_start;
            }
        }
        if (rmq_parse(base, base_size, at, 0, f) != size) {
            corrupt++;
            continue;
        }
        if (used + f[11] > dst_cap) break;
        memcpy(dst + used, base + f[10], (size_t)f[11]);
        used += f[11];
        out_ends[n++] = used;
    }
    *out_scanned = (p - from_pos) / RMQ_CQ_UNIT;
    out_skipped[0] = missing;
    out_skipped[1] = corrupt;
    return n;
}

int64_t rmq_units_body_bound(const uint8_t *cq, int64_t from_pos, int64_t to_pos,
                             int32_t max_out) {
    int64_t bound = 0;
    for (int64_t p = from_pos; p + RMQ_CQ_UNIT <= to_pos && max_out-- > 0; p += RMQ_CQ_UNIT) {
        int32_t size = (int32_t)get32(cq + p + 8);
        if (size > RMQ_MIN_BODY_OVERHEAD) bound += size - RMQ_MIN_BODY_OVERHEAD;
    }
    return bound;
}

int32_t rmq_record_resident(const rmq_segtable *table, int64_t phys, int32_t size) {
    int64_t pos;
    int32_t index;
    long page = sysconf(_SC_PAGESIZE);
    if (!locate(table, phys, size, &pos, &index)) return -1;
    return resident(table->segs[index], pos, page > 0 ? page : 4096);
}
