/* The read path of consumption: consume-queue units followed into the commit log
 * (DefaultMessageStore.getMessage), with tag filtering by hash code. */
#include "rmq_native.h"
#include "rmq_internal.h"
#include <sys/mman.h>
#include <unistd.h>

static inline int matches(const uint8_t *unit, const int32_t *codes, int32_t n_codes) {
    int32_t code = (int32_t)get64(unit + 12);
    for (int32_t k = 0; k < n_codes; k++)
        if (codes[k] == code) return 1;
    return 0;
}

int32_t rmq_read_queue(const uint8_t *cq, int64_t from_pos, int64_t to_pos, int32_t filter,
                       const int32_t *codes, int32_t n_codes, const rmq_segtable *table,
                       int32_t check_crc, int64_t *out, int32_t max_out, int64_t *out_scanned,
                       int32_t *out_skipped) {
    int32_t n = 0, missing = 0, corrupt = 0;
    int64_t p = from_pos;
    for (; p + RMQ_CQ_UNIT <= to_pos && n < max_out; p += RMQ_CQ_UNIT) {
        const uint8_t *u = cq + p;
        int64_t phys = (int64_t)get64(u);
        int32_t size = (int32_t)get32(u + 8);
        if (phys == 0 && size == 0) break; /* unwritten */
        if (filter && !matches(u, codes, n_codes)) continue;
        int64_t pos;
        int32_t index;
        const uint8_t *seg = locate(table, phys, size, &pos, &index);
        int64_t *o = out + (int64_t)n * RMQ_MSG_FIELDS;
        if (!seg) {
            missing++;
            continue;
        }
        if (rmq_parse(seg, table->seg_size, pos, check_crc, o) != size) {
            corrupt++;
            continue;
        }
        o[16] = index;
        n++;
    }
    *out_scanned = (p - from_pos) / RMQ_CQ_UNIT;
    out_skipped[0] = missing;
    out_skipped[1] = corrupt;
    return n;
}

int32_t rmq_read_bodies(const uint8_t *cq, int64_t from_pos, int64_t to_pos,
                        const rmq_segtable *table, uint8_t *dst, int64_t dst_cap,
                        int64_t *out_ends, int32_t max_out, int64_t *out_scanned,
                        int32_t *out_skipped) {
    int32_t n = 0, missing = 0, corrupt = 0;
    int64_t used = 0, p = from_pos;
    int64_t f[16];
    for (; p + RMQ_CQ_UNIT <= to_pos && n < max_out; p += RMQ_CQ_UNIT) {
        const uint8_t *u = cq + p;
        int64_t phys = (int64_t)get64(u);
        int32_t size = (int32_t)get32(u + 8);
        if (phys == 0 && size == 0) break;
        int64_t pos;
        int32_t index;
        const uint8_t *seg = locate(table, phys, size, &pos, &index);
        if (!seg) {
            missing++;
            continue;
        }
        if (rmq_parse(seg, table->seg_size, pos, 0, f) != size) {
            corrupt++;
            continue;
        }
        if (used + f[11] > dst_cap) break;
        if (dst) memcpy(dst + used, seg + f[10], (size_t)f[11]);
        used += f[11];
        if (out_ends) out_ends[n] = used;
        n++;
    }
    *out_scanned = (p - from_pos) / RMQ_CQ_UNIT;
    out_skipped[0] = missing;
    out_skipped[1] = corrupt;
    return n;
}

/* MADV_WILLNEED on [base + start, base + end), widened to whole pages. */
static void will_need(const uint8_t *base, int64_t start, int64_t end, int64_t page) {
    int64_t from = start - start % page;
    if (end > from) madvise((void *)(base + from), (size_t)(end - from), MADV_WILLNEED);
}

int64_t rmq_readahead_queue(const uint8_t *cq, int64_t from_pos, int64_t to_pos,
                            const rmq_segtable *table, int64_t max_bytes) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) page = 4096;
    int64_t pos;
    int32_t index;
    to_pos -= (to_pos - from_pos) % RMQ_CQ_UNIT;
    if (to_pos <= from_pos) return from_pos;
    /* The units first, all at once: the walk below reads them, and a queue file faults a
     * page at a time (no read-around on its mapping). */
    will_need(cq, from_pos, to_pos, page);
    const uint8_t *last = cq + to_pos - RMQ_CQ_UNIT;
    if (locate(table, (int64_t)get64(last), (int32_t)get32(last + 8), &pos, &index) &&
        resident(table->segs[index], pos, page))
        return to_pos; /* the window's last record is cached: a hot read, nothing to ask */
    int64_t p = from_pos, covered = 0;
    int32_t run_seg = -1;
    int64_t run_start = 0, run_end = 0;
    for (; p + RMQ_CQ_UNIT <= to_pos && covered < max_bytes; p += RMQ_CQ_UNIT) {
        const uint8_t *u = cq + p;
        int64_t phys = (int64_t)get64(u);
        int32_t size = (int32_t)get32(u + 8);
        if (phys == 0 && size == 0) break; /* unwritten */
        if (size <= 0 || !locate(table, phys, size, &pos, &index)) continue;
        if (index != run_seg || pos < run_end || pos - run_end > page) { /* a new run */
            if (run_seg >= 0) will_need(table->segs[run_seg], run_start, run_end, page);
            run_seg = index;
            run_start = pos;
        }
        run_end = pos + size;
        covered += size;
    }
    if (run_seg >= 0) will_need(table->segs[run_seg], run_start, run_end, page);
    return p;
}

/* The scan asks for the units ahead of it in steps doubling from a page to SCAN_AHEAD_MAX: a
 * queue file is mapped MADV_RANDOM, so a cold scan would otherwise fault a page at a time, each
 * a 4 KiB read waited for alone (a thousand for a 4 MB file, on the first read of a queue after
 * an open); the ramp keeps what is asked past the last unit to about what was scanned (a new
 * queue's file is sparse: its holes would take page cache too). */
#define SCAN_AHEAD_MAX (2 << 20)

int64_t rmq_scan_units(const uint8_t *cq, int64_t from_pos, int64_t size, int64_t *max_phys) {
    long page = sysconf(_SC_PAGESIZE) > 0 ? sysconf(_SC_PAGESIZE) : 4096;
    int64_t p = from_pos, asked = from_pos, step = 0;
    for (; p + RMQ_CQ_UNIT <= size; p += RMQ_CQ_UNIT) {
        if (p >= asked - step / 2 && asked < size) { /* half the last step scanned: the next */
            step = step ? (step < SCAN_AHEAD_MAX ? 2 * step : step) : page;
            int64_t to = asked + step < size ? asked + step : size;
            will_need(cq, asked, to, page);
            asked = to;
        }
        int64_t phys = (int64_t)get64(cq + p);
        int32_t len = (int32_t)get32(cq + p + 8);
        if (phys < 0 || len <= 0) break;
        if (len != RMQ_CQ_BLANK_SIZE) *max_phys = phys + len;
    }
    return p;
}
