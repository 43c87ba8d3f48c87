/* The read side of the stored-message record (layout in record.py's docstring): parse,
 * and the recovery scan. RocketMQ source: CommitLog.checkMessageAndReturnSize. */
#include "rmq_native.h"
#include "rmq_internal.h"

static inline int64_t host_len(int32_t sysflag, int32_t bit) { return (sysflag & bit) ? 20 : 8; }

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

int64_t rmq_resync(const uint8_t *seg, int64_t seg_size, int64_t seg_start, int64_t pos,
                   int64_t end) {
    if (end > seg_size) end = seg_size;
    for (; pos + 91 <= end; pos++) {
        /* Cheap tests first: the magic, then the record naming its own offset (8 bytes a
         * random or stale position matches by chance about never); only then the CRC. */
        int32_t magic = (int32_t)get32(seg + pos + 4);
        if (magic != RMQ_MAGIC_V1 && magic != RMQ_MAGIC_V2) continue;
        if ((int64_t)get64(seg + pos + 28) != seg_start + pos) continue;
        if (rmq_parse(seg, seg_size, pos, 1, NULL) > 0) return pos;
    }
    return -1;
}

int64_t rmq_scan(const uint8_t *seg, int64_t seg_size, int64_t seg_start, int64_t pos,
                 int32_t check_crc, int32_t *out_status, int64_t *out_last) {
    for (;;) {
        if (pos >= seg_size) { *out_status = 2; return pos; }
        int64_t size = rmq_parse(seg, seg_size, pos, check_crc, NULL);
        if (size == 0) { *out_status = 1; return pos; }
        if (size < 0 || (int64_t)get64(seg + pos + 28) != seg_start + pos) {
            *out_status = 0;
            return pos;
        }
        *out_last = pos;
        pos += size;
    }
}
