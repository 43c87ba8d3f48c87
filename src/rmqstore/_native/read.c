/* The read path of consumption: consume-queue units followed into the commit log
 * (DefaultMessageStore.getMessage), with tag filtering by hash code. */
#include "rmq_native.h"
#include "rmq_internal.h"

/* The segment and position holding phys, or NULL when it is outside the table or past the
 * segment's readable end. */
static inline const uint8_t *locate(const rmq_segtable *t, int64_t phys, int32_t size,
                                    int64_t *pos, int32_t *index) {
    if (phys < t->first_start) return NULL;
    int64_t i = (phys - t->first_start) / t->seg_size;
    if (i >= t->n_segs) return NULL;
    int64_t p = phys - t->first_start - i * t->seg_size;
    if (p + size > *t->ends[i]) return NULL;
    *pos = p;
    *index = (int32_t)i;
    return t->segs[i];
}

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

int64_t rmq_gather_bodies(const rmq_segtable *table, const int64_t *fields, int32_t n,
                          uint8_t *dst, int64_t *out_ends, int32_t *out_compressed) {
    int64_t used = 0;
    int32_t compressed = 0;
    for (int32_t i = 0; i < n; i++) {
        const int64_t *f = fields + (int64_t)i * RMQ_MSG_FIELDS;
        if (f[5] & 0x1) compressed++;
        if (dst) {
            memcpy(dst + used, table->segs[f[16]] + f[10], (size_t)f[11]);
            out_ends[i] = used + f[11];
        }
        used += f[11];
    }
    *out_compressed = compressed;
    return used;
}
