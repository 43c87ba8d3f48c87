/* IndexFile hash insert and lookup (layout in index.py's docstring).
 * RocketMQ source: store/.../index/IndexFile.java (putKey, selectPhyOffset). */
#include "rmq_native.h"
#include "rmq_internal.h"

#define HDR 40
#define ENTRY 20

static inline int32_t abs_hash(int32_t h) {
    /* Java: Math.abs(hashCode), with Integer.MIN_VALUE mapped to 0 */
    if (h == INT32_MIN) return 0;
    return h < 0 ? -h : h;
}

static inline int32_t key_hash(const char *key, size_t len) {
    return abs_hash(rmq_java_hash(key, len));
}

int32_t rmq_index_put(uint8_t *idx, int32_t slot_num, int32_t index_num, const char *key,
                      size_t key_len, int64_t phys, int64_t store_ts) {
    return rmq_index_put_hashed(idx, slot_num, index_num, rmq_java_hash(key, key_len), phys,
                                store_ts);
}

int32_t rmq_index_put_hashed(uint8_t *idx, int32_t slot_num, int32_t index_num, int32_t java_hash,
                             int64_t phys, int64_t store_ts) {
    int32_t index_count = (int32_t)get32(idx + 36);
    if (index_count < 1) index_count = 1; /* entry 0 is never used */
    if (index_count >= index_num) return 0;
    int32_t h = abs_hash(java_hash);
    uint8_t *slot = idx + HDR + (int64_t)(h % slot_num) * 4;
    int32_t prev = (int32_t)get32(slot);
    if (prev <= 0 || prev > index_count) prev = 0;
    int64_t begin_ts = (int64_t)get64(idx);
    int64_t diff = 0;
    if (index_count > 1 && begin_ts > 0) {
        diff = (store_ts - begin_ts) / 1000;
        if (diff < 0) diff = 0;
        if (diff > INT32_MAX) diff = INT32_MAX;
    }
    uint8_t *e = idx + HDR + (int64_t)slot_num * 4 + (int64_t)index_count * ENTRY;
    put32(e, (uint32_t)h);
    put64(e + 4, (uint64_t)phys);
    put32(e + 12, (uint32_t)diff);
    put32(e + 16, (uint32_t)prev);
    put32(slot, (uint32_t)index_count);
    if (index_count <= 1) {
        put64(idx, (uint64_t)store_ts);
        put64(idx + 16, (uint64_t)phys);
    }
    if (prev == 0) put32(idx + 32, get32(idx + 32) + 1);
    put32(idx + 36, (uint32_t)(index_count + 1));
    put64(idx + 8, (uint64_t)store_ts);
    put64(idx + 24, (uint64_t)phys);
    return 1;
}

int32_t rmq_index_get(const uint8_t *idx, int32_t slot_num, int32_t index_num,
                      const char *key, size_t key_len, int64_t begin_ms, int64_t end_ms,
                      int64_t *out, int32_t max_out) {
    int32_t index_count = (int32_t)get32(idx + 36);
    if (index_count <= 1) return 0;
    int32_t h = key_hash(key, key_len);
    int32_t cur = (int32_t)get32(idx + HDR + (int64_t)(h % slot_num) * 4);
    int64_t begin_ts = (int64_t)get64(idx);
    int32_t n = 0;
    while (cur > 0 && cur <= index_count && cur < index_num && n < max_out) {
        const uint8_t *e = idx + HDR + (int64_t)slot_num * 4 + (int64_t)cur * ENTRY;
        int32_t eh = (int32_t)get32(e);
        int64_t phys = (int64_t)get64(e + 4);
        int32_t diff = (int32_t)get32(e + 12);
        int32_t prev = (int32_t)get32(e + 16);
        if (diff < 0) break;
        int64_t t = begin_ts + (int64_t)diff * 1000;
        if (eh == h && t >= begin_ms && t <= end_ms) out[n++] = phys;
        if (t < begin_ms || prev <= 0 || prev > index_count || prev == cur) break;
        cur = prev;
    }
    return n;
}
