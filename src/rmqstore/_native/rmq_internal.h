/* Helpers shared by the native sources: big-endian loads/stores and record constants. */
#ifndef RMQ_INTERNAL_H
#define RMQ_INTERNAL_H
#include <stdint.h>
#include <string.h>
#include "rmq_native.h"
#include <sys/mman.h>

#define RMQ_ABI 41

#define RMQ_MAGIC_V1 ((int32_t)0xDAA320A7)
#define RMQ_MAGIC_V2 ((int32_t)0xDAA320AB)
#define RMQ_MAGIC_BLANK ((int32_t)0xCBD43194)
#define RMQ_FILE_PAGE 4096 /* the page-cache page: the unit a write's copy is done in */
#define RMQ_END_FILE_MIN_BLANK 8
#define RMQ_BORNHOST_V6 0x10
#define RMQ_STOREHOST_V6 0x20
#define RMQ_CQ_UNIT 20
#define RMQ_CQ_STAGE 3 /* units an rmq_queue holds before writing them (rmq_queue.stage) */
#define RMQ_CQ_BLANK_SIZE 0x7FFFFFFF /* a pre-fill unit's size */

static inline void put32(uint8_t *p, uint32_t v) { v = __builtin_bswap32(v); memcpy(p, &v, 4); }
static inline void put64(uint8_t *p, uint64_t v) { v = __builtin_bswap64(v); memcpy(p, &v, 8); }
static inline void put16(uint8_t *p, uint16_t v) { v = __builtin_bswap16(v); memcpy(p, &v, 2); }
static inline uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return __builtin_bswap32(v); }
static inline uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return __builtin_bswap64(v); }
static inline uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return __builtin_bswap16(v); }

uint32_t rmq_crc32_raw(const uint8_t *buf, size_t len);
/* pwrite all n bytes at off, again after a short write or EINTR: 0, or -1 (errno set). */
int rmq_pwrite_all(int fd, const uint8_t *p, int64_t n, int64_t off);
/* rmq_append_raw in two steps (replica.c), for a caller that checks on one thread and writes
 * on another: the length of the whole, valid records (and BLANK) at the start of data, which
 * would land at segment position base (*out_status, *out_last_ts as rmq_append_raw's); then
 * writing n checked bytes there, the first size field last: 0, or -1 (errno set). */
int64_t rmq_check_raw(int64_t seg_size, int64_t seg_start, int64_t base, const uint8_t *data,
                      int64_t len, int32_t *out_status, int64_t *out_last_ts);
int rmq_write_raw(uint8_t *seg, int32_t fd, int64_t base, const uint8_t *data, int64_t n);
/* Java's String.hashCode continued from h over UTF-8 bytes (crc32.c). */
uint32_t rmq_java_hash_from(uint32_t h, const uint8_t *s, size_t len);
/* rmq_index_put for a key whose Java hash is already known (index.c). */
int32_t rmq_index_put_hashed(uint8_t *idx, int32_t slot_num, int32_t index_num, int32_t java_hash,
                             int64_t phys, int64_t store_ts);

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

/* Whether the page holding base[pos] is in the page cache. */
static inline int resident(const uint8_t *base, int64_t pos, int64_t page) {
    unsigned char vec = 0;
    const uint8_t *at = base + (pos - pos % page);
    return mincore((void *)at, (size_t)page, &vec) == 0 && (vec & 1);
}

#endif
