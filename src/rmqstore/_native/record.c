/* The stored-message record (layout in record.py's docstring): encode, batch encode, recovery
 * scan, parse, and consume-queue unit reads. RocketMQ sources: CommitLog.MessageExtEncoder,
 * CommitLog.checkMessageAndReturnSize, ConsumeQueue.putMessagePositionInfo. */
#include "rmq_native.h"
#include "rmq_internal.h"

#define FIXED_NO_HOSTS 75 /* 91 minus two 8-byte IPv4 hosts */

static inline int64_t host_len(int32_t sysflag, int32_t bit) { return (sysflag & bit) ? 20 : 8; }

static inline int64_t record_len(int32_t sysflag, int32_t body_len, int32_t topic_len,
                                 int32_t props_len) {
    return FIXED_NO_HOSTS + host_len(sysflag, RMQ_BORNHOST_V6) +
           host_len(sysflag, RMQ_STOREHOST_V6) + body_len + topic_len + props_len;
}

static inline void write_blank(uint8_t *seg, int64_t seg_size, int64_t pos) {
    put32(seg + pos, (uint32_t)(seg_size - pos));
    put32(seg + pos + 4, (uint32_t)RMQ_MAGIC_BLANK);
}

/* Encodes one record at p; the caller has checked it fits. crc is the body's masked CRC. */
static void encode(uint8_t *p, int64_t len, uint32_t crc, int64_t phys,
                   const char *body, int32_t body_len, const char *topic, int32_t topic_len,
                   const char *props, int32_t props_len, int32_t queue_id, int32_t flag,
                   int64_t queue_offset, int32_t sysflag, int64_t born_ts, int64_t store_ts,
                   const char *born_host, const char *store_host, int32_t reconsume_times,
                   int64_t prepared_offset) {
    int64_t bh = host_len(sysflag, RMQ_BORNHOST_V6), sh = host_len(sysflag, RMQ_STOREHOST_V6);
    put32(p + 4, (uint32_t)RMQ_MAGIC_V1);
    put32(p + 8, crc);
    put32(p + 12, (uint32_t)queue_id);
    put32(p + 16, (uint32_t)flag);
    put64(p + 20, (uint64_t)queue_offset);
    put64(p + 28, (uint64_t)phys);
    put32(p + 36, (uint32_t)sysflag);
    put64(p + 40, (uint64_t)born_ts);
    memcpy(p + 48, born_host, bh);
    uint8_t *q = p + 48 + bh;
    put64(q, (uint64_t)store_ts);
    memcpy(q + 8, store_host, sh);
    q += 8 + sh;
    put32(q, (uint32_t)reconsume_times);
    put64(q + 4, (uint64_t)prepared_offset);
    put32(q + 12, (uint32_t)body_len);
    q += 16;
    memcpy(q, body, body_len);
    q += body_len;
    *q++ = (uint8_t)topic_len;
    memcpy(q, topic, topic_len);
    q += topic_len;
    put16(q, (uint16_t)props_len);
    memcpy(q + 2, props, props_len);
    /* TOTALSIZE goes in last: the space was zero, so a writer killed mid-record leaves a
     * size of 0, which recovery reads as the end of the data, never as a record. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    put32(p, (uint32_t)len);
}

static inline void write_cq_unit(uint8_t *u, int64_t phys, int32_t size, int64_t tags_code) {
    put64(u, (uint64_t)phys);
    put32(u + 8, (uint32_t)size);
    put64(u + 12, (uint64_t)tags_code);
}

int64_t rmq_append(uint8_t *seg, int64_t seg_size, int64_t pos, int64_t phys_base,
                   const char *body, int32_t body_len, const char *topic, int32_t topic_len,
                   const char *props, int32_t props_len, int32_t queue_id, int32_t flag,
                   int64_t queue_offset, int32_t sysflag, int64_t born_ts, int64_t store_ts,
                   const char *born_host, const char *store_host, int32_t reconsume_times,
                   int64_t prepared_offset, uint8_t *cq, int64_t cq_pos, int64_t tags_code) {
    int64_t len = record_len(sysflag, body_len, topic_len, props_len);
    if (len + RMQ_END_FILE_MIN_BLANK > seg_size) return -1;
    if (len + RMQ_END_FILE_MIN_BLANK > seg_size - pos) {
        write_blank(seg, seg_size, pos);
        return 0;
    }
    uint32_t crc = rmq_crc32(body, body_len);
    encode(seg + pos, len, crc, phys_base + pos, body, body_len, topic, topic_len, props,
           props_len, queue_id, flag, queue_offset, sysflag, born_ts, store_ts, born_host,
           store_host, reconsume_times, prepared_offset);
    if (cq) write_cq_unit(cq + cq_pos, phys_base + pos, (int32_t)len, tags_code);
    return len;
}

int32_t rmq_append_batch(uint8_t *seg, int64_t seg_size, int64_t pos, int64_t phys_base,
                         const char *bodies, const int32_t *body_lens, int32_t n,
                         const char *topic, int32_t topic_len, const char *props,
                         int32_t props_len, int32_t queue_id, int32_t flag, int64_t queue_offset,
                         int32_t sysflag, int64_t born_ts, int64_t store_ts,
                         const char *born_host, const char *store_host, uint8_t *cq,
                         int64_t cq_pos, int32_t cq_room, int64_t tags_code, int64_t *out_phys,
                         int64_t *out_bytes) {
    int64_t start = pos;
    int32_t i = 0;
    if (cq && n > cq_room) n = cq_room;
    for (; i < n; i++) {
        int32_t blen = body_lens[i];
        int64_t len = record_len(sysflag, blen, topic_len, props_len);
        if (len + RMQ_END_FILE_MIN_BLANK > seg_size - pos) {
            /* Only fill the segment when the record could fit an empty one; otherwise the
             * caller reports it as too large and the segment stays usable. */
            if (len + RMQ_END_FILE_MIN_BLANK <= seg_size) {
                write_blank(seg, seg_size, pos);
                pos = seg_size;
            }
            break;
        }
        encode(seg + pos, len, rmq_crc32(bodies, blen), phys_base + pos, bodies, blen, topic,
               topic_len, props, props_len, queue_id, flag, queue_offset + i, sysflag, born_ts,
               store_ts, born_host, store_host, 0, 0);
        if (cq) write_cq_unit(cq + cq_pos + (int64_t)i * RMQ_CQ_UNIT, phys_base + pos,
                              (int32_t)len, tags_code);
        out_phys[i] = phys_base + pos;
        pos += len;
        bodies += blen;
    }
    *out_bytes = pos - start;
    return i;
}

static int valid_topic(const uint8_t *t, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        uint8_t c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '%' || c == '|' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Parses and validates the record at seg[pos]; fills out when not NULL. */
int64_t rmq_parse(const uint8_t *seg, int64_t seg_size, int64_t pos, int32_t check_crc,
                  int64_t *out) {
    int64_t room = seg_size - pos;
    if (pos < 0 || room < 8) return -1;
    const uint8_t *p = seg + pos;
    int32_t size = (int32_t)get32(p);
    int32_t magic = (int32_t)get32(p + 4);
    if (magic == RMQ_MAGIC_BLANK) return 0;
    if (magic != RMQ_MAGIC_V1 && magic != RMQ_MAGIC_V2) return -1;
    if (size < 91 || size > room) return -1;
    int32_t sysflag = (int32_t)get32(p + 36);
    int64_t bh = host_len(sysflag, RMQ_BORNHOST_V6), sh = host_len(sysflag, RMQ_STOREHOST_V6);
    int64_t at = 48 + bh + 8 + sh + 4 + 8; /* BODYLEN */
    if (at + 4 > size) return -1;
    int32_t body_len = (int32_t)get32(p + at);
    if (body_len < 0 || at + 4 + body_len + 1 > size) return -1;
    int64_t body_at = at + 4;
    int64_t t_at = body_at + body_len;
    int32_t topic_len;
    if (magic == RMQ_MAGIC_V1) { topic_len = p[t_at]; t_at += 1; }
    else { if (t_at + 2 > size) return -1; topic_len = get16(p + t_at); t_at += 2; }
    if (t_at + topic_len + 2 > size) return -1;
    int64_t pr_at = t_at + topic_len;
    int32_t props_len = (int16_t)get16(p + pr_at);
    if (props_len < 0) return -1;
    pr_at += 2;
    if (pr_at + props_len != size) return -1;
    if (check_crc) {
        /* Recovery-time checks beyond RocketMQ's: the body CRC does not cover the topic or
         * the properties, so a torn tail there is caught by their own shape: topic characters
         * from the topic alphabet, properties ending with the \x02 every pair ends with. */
        uint32_t stored_crc = get32(p + 8);
        if (rmq_crc32((const char *)p + body_at, body_len) != stored_crc) return -1;
        if (topic_len == 0 || !valid_topic(p + t_at, topic_len)) return -1;
        if (props_len > 0 && p[pr_at + props_len - 1] != 0x02) return -1;
    }
    if (out) {
        const uint8_t *q = p + 48 + bh;
        out[0] = size;
        out[1] = (int32_t)get32(p + 12);
        out[2] = (int32_t)get32(p + 16);
        out[3] = (int64_t)get64(p + 20);
        out[4] = (int64_t)get64(p + 28);
        out[5] = sysflag;
        out[6] = (int64_t)get64(p + 40);
        out[7] = (int64_t)get64(q);
        out[8] = (int32_t)get32(q + 8 + sh);
        out[9] = (int64_t)get64(q + 8 + sh + 4);
        out[10] = pos + body_at;
        out[11] = body_len;
        out[12] = pos + t_at;
        out[13] = topic_len;
        out[14] = pos + pr_at;
        out[15] = props_len;
    }
    return size;
}

int32_t rmq_parse_many(const uint8_t *seg, int64_t seg_size, const int64_t *pos, int32_t n,
                       int64_t *out) {
    for (int32_t i = 0; i < n; i++)
        if (rmq_parse(seg, seg_size, pos[i], 0, out + (int64_t)i * 16) <= 0) return i;
    return n;
}

int64_t rmq_scan(const uint8_t *seg, int64_t seg_size, int64_t pos, int32_t check_crc,
                 int32_t *out_status) {
    for (;;) {
        if (pos >= seg_size) { *out_status = 2; return pos; }
        int64_t size = rmq_parse(seg, seg_size, pos, check_crc, NULL);
        if (size == 0) { *out_status = 1; return pos; }
        if (size < 0) { *out_status = 0; return pos; }
        pos += size;
    }
}

int32_t rmq_cq_read(const uint8_t *cq, int64_t from_pos, int64_t to_pos, int32_t filter,
                    const int32_t *codes, int32_t n_codes, int64_t *out_idx, int64_t *out_phys,
                    int32_t *out_size, int32_t max_out, int64_t *out_scanned) {
    int32_t kept = 0;
    int64_t p = from_pos;
    for (; p + RMQ_CQ_UNIT <= to_pos && kept < max_out; p += RMQ_CQ_UNIT) {
        const uint8_t *u = cq + p;
        int64_t phys = (int64_t)get64(u);
        int32_t size = (int32_t)get32(u + 8);
        if (phys == 0 && size == 0) break;
        if (filter) {
            int32_t code = (int32_t)get64(u + 12), hit = 0;
            for (int32_t k = 0; k < n_codes; k++) if (codes[k] == code) { hit = 1; break; }
            if (!hit) continue;
        }
        out_idx[kept] = (p - from_pos) / RMQ_CQ_UNIT;
        out_phys[kept] = phys;
        out_size[kept] = size;
        kept++;
    }
    *out_scanned = (p - from_pos) / RMQ_CQ_UNIT;
    return kept;
}
