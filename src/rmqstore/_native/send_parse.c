/* The broker's native send path: one SEND_MESSAGE (10) / SEND_MESSAGE_V2 (310) request frame
 * read without Python objects, for the common case only; anything else is left to the Python
 * handler (SendProcessor), which answers it as it always has. See rmq_send_parse in
 * rmq_native.h for what "common" means; the stored properties follow SendProcessor's
 * _stored_properties (producer's minus WAIT plus CLUSTER, as MessageDecoder.string2
 * messageProperties and SendMessageProcessor.sendMessage of rocketmq-all-4.9.7 store them).
 *
 * Only ASCII is taken: a header holding any byte or escape above 0x7F falls back, so that the
 * bytes kept are the UTF-8 the Python path would encode and the tags' Java hash is the bytes'.
 */
#include "rmq_native.h"
#include "rmq_internal.h"

enum { F_GROUP, F_TOPIC, F_DEFAULT_TOPIC, F_DEFAULT_QUEUES, F_QUEUE, F_SYSFLAG, F_BORN,
       F_FLAG, F_PROPS, F_RECONSUME, F_UNIT, F_MAX_RECONSUME, F_BATCH, F_BROKER, F_COUNT };

/* SendMessageRequestHeader's names (code 10) and SendMessageRequestHeaderV2's (code 310). */
static const char *const V1_NAMES[F_COUNT] = {
    "producerGroup", "topic", "defaultTopic", "defaultTopicQueueNums", "queueId", "sysFlag",
    "bornTimestamp", "flag", "properties", "reconsumeTimes", "unitMode", "maxReconsumeTimes",
    "batch", NULL};
static const int32_t V1_LENGTHS[F_COUNT] = {
    sizeof "producerGroup" - 1, sizeof "topic" - 1, sizeof "defaultTopic" - 1,
    sizeof "defaultTopicQueueNums" - 1, sizeof "queueId" - 1, sizeof "sysFlag" - 1,
    sizeof "bornTimestamp" - 1, sizeof "flag" - 1, sizeof "properties" - 1,
    sizeof "reconsumeTimes" - 1, sizeof "unitMode" - 1, sizeof "maxReconsumeTimes" - 1,
    sizeof "batch" - 1, -1};
/* V2's are one letter each, in the order of the fields: "a" (F_GROUP) to "n" (F_BROKER). */
#define REQUIRED ((1u << F_GROUP) | (1u << F_TOPIC) | (1u << F_DEFAULT_TOPIC) | \
                  (1u << F_DEFAULT_QUEUES) | (1u << F_QUEUE) | (1u << F_SYSFLAG) | \
                  (1u << F_BORN) | (1u << F_FLAG))

typedef struct {
    const uint8_t *p, *end;
    uint8_t *out;
    int32_t w, cap;  /* out[0, w) is taken */
} cursor;

static void skip_ws(cursor *c) {
    /* our encoders and Java's write none: one comparison for the common case */
    while (c->p < c->end && *c->p <= ' ' &&
           (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int eat(cursor *c, uint8_t ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* 1 for a byte a JSON string holds as itself and that we take (printable ASCII but the quote
 * and the backslash): the string scan's one test per byte. */
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
static const uint8_t PLAIN[256] = {
    R16(0), R16(0),                                           /* 0x00-0x1F: control */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,           /* 0x20-0x2F: not '"' */
    R16(1), R16(1),                                           /* 0x30-0x4F */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,           /* 0x50-0x5F: not '\\' */
    R16(1), R16(1),                                           /* 0x60-0x7F */
    R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0)};  /* not ASCII */
#undef R16

static int hexval(uint8_t ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* A JSON string decoded into out at w; *at and *len say where. 0, or -1 to fall back. */
static int read_string(cursor *c, int32_t *at, int32_t *len) {
    if (!eat(c, '"')) return -1;
    *at = c->w;
    while (c->p < c->end) {
        /* a run of plain characters (most strings are one) copied in one piece */
        const uint8_t *run = c->p;
        while (c->p < c->end && PLAIN[*c->p]) c->p++;
        if (c->p > run) {
            int32_t n = (int32_t)(c->p - run);
            if (n > c->cap - c->w) return -1;
            memcpy(c->out + c->w, run, (size_t)n);
            c->w += n;
            if (c->p >= c->end) return -1;
        }
        uint8_t ch = *c->p++;
        if (ch == '"') {
            *len = c->w - *at;
            return 0;
        }
        if (ch < 0x20 || ch >= 0x80) return -1;  /* JSON refuses the first, ASCII only */
        if (ch == '\\') {
            if (c->p >= c->end) return -1;
            uint8_t e = *c->p++;
            switch (e) {
            case '"': case '\\': case '/': ch = e; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            case 'u': {
                if (c->end - c->p < 4) return -1;
                int v = 0;
                for (int i = 0; i < 4; i++) {
                    int h = hexval(c->p[i]);
                    if (h < 0) return -1;
                    v = v * 16 + h;
                }
                if (v >= 0x80) return -1;
                c->p += 4;
                ch = (uint8_t)v;
                break;
            }
            default: return -1;
            }
        }
        if (c->w >= c->cap) return -1;
        c->out[c->w++] = ch;
    }
    return -1;
}

/* A decimal integer as JSON writes one (no '+', no leading zero, no fraction), in [lo, hi]. */
static int parse_int(const uint8_t *s, int32_t n, int64_t lo, int64_t hi, int64_t *v) {
    int neg = n > 0 && s[0] == '-';
    int32_t i = neg;
    if (n - i < 1 || n - i > 18 || (s[i] == '0' && n - i > 1)) return -1;
    int64_t x = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        x = x * 10 + (s[i] - '0');
    }
    x = neg ? -x : x;
    if (x < lo || x > hi) return -1;
    *v = x;
    return 0;
}

/* A JSON number token at the cursor (the header's own code, flag, opaque, version). */
static int read_int(cursor *c, int64_t *v) {
    skip_ws(c);
    const uint8_t *s = c->p;
    while (c->p < c->end && (*c->p == '-' || (*c->p >= '0' && *c->p <= '9'))) c->p++;
    return parse_int(s, (int32_t)(c->p - s), INT32_MIN, INT32_MAX, v);
}

static int key_is(const uint8_t *k, int32_t n, const char *name) {
    return name != NULL && (int32_t)strlen(name) == n && memcmp(k, name, (size_t)n) == 0;
}

/* A JSON integer as its text (what the Python path's wire_string makes of it), at out[w). */
static int read_number_text(cursor *c, int32_t *at, int32_t *len) {
    *at = c->w;
    const uint8_t *s = c->p;
    if (c->p < c->end && *c->p == '-') c->p++;
    const uint8_t *digits = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
    int32_t n = (int32_t)(c->p - s);
    if (c->p == digits || (*digits == '0' && c->p - digits > 1) || n > 19 || c->w + n > c->cap)
        return -1;
    if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E')) return -1;
    memcpy(c->out + c->w, s, (size_t)n);
    c->w += n;
    *len = n;
    return 0;
}

/* What RocketMQ clients sign a request with (AclClientRPCHook; the C++ client signs every
 * request, with an empty key when it has none): read by the ACL check only, which never runs
 * while this path does. */
static int acl_field(const uint8_t *k, int32_t n) {
    return key_is(k, n, "AccessKey") || key_is(k, n, "Signature")
        || key_is(k, n, "OnsChannel") || key_is(k, n, "SecurityToken");
}

/* extFields: every value a string or an integer (C++ writes some as numbers), every name a
 * known one, none twice. */
static int read_ext(cursor *c, int32_t code, int32_t at[F_COUNT], int32_t len[F_COUNT]) {
    uint32_t seen = 0;
    if (!eat(c, '{')) return -1;
    if (eat(c, '}')) return 0;
    do {
        int32_t kat, klen, vat, vlen;
        int32_t mark = c->w;
        if (read_string(c, &kat, &klen) < 0 || !eat(c, ':')) return -1;
        const uint8_t *k = c->out + kat;
        int f = 0;
        if (code == 310) {  /* by position: no name compared */
            f = klen == 1 && k[0] >= 'a' && k[0] < 'a' + F_COUNT ? k[0] - 'a' : F_COUNT;
        } else {
            while (f < F_COUNT &&
                   !(V1_LENGTHS[f] == klen && memcmp(k, V1_NAMES[f], (size_t)klen) == 0))
                f++;
        }
        int ignored = f == F_COUNT && acl_field(c->out + kat, klen);
        if ((f == F_COUNT && !ignored) || (f < F_COUNT && (seen & (1u << f)))) return -1;
        c->w = mark;  /* the name is not kept */
        skip_ws(c);
        if (c->p < c->end && *c->p != '"') {
            if (read_number_text(c, &vat, &vlen) < 0) return -1;
        } else if (read_string(c, &vat, &vlen) < 0) {
            return -1;
        }
        if (ignored) {
            c->w = mark;
            continue;
        }
        seen |= 1u << f;
        at[f] = vat;
        len[f] = vlen;
    } while (eat(c, ','));
    if (!eat(c, '}') || (seen & REQUIRED) != REQUIRED) return -1;
    return 0;
}

static int in_names(const uint8_t *name, int32_t n, const char *list, int32_t list_len) {
    /* list: names each followed by '\n' */
    const char *p = list, *end = list + list_len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        if (stop - p == n && memcmp(p, name, (size_t)n) == 0) return 1;
        p = stop + 1;
    }
    return 0;
}

enum { MAX_PAIRS = 256 };

/* The stored properties, written at out[w): each pair kept as sent but WAIT, then
 * CLUSTER=cluster; -1 for a text the Python path decodes field by field instead. */
static int store_props(cursor *c, const uint8_t *text, int32_t n, const char *cluster,
                       int32_t cluster_len, const char *skip, int32_t skip_len,
                       rmq_send_req *req) {
    int32_t names_at[MAX_PAIRS], names_len[MAX_PAIRS], pairs = 0;
    req->props_at = c->w;
    req->wait = 1;
    req->uniq_len = req->keys_len = 0;
    req->tags_code = 0;
    int32_t i = 0;
    while (i < n) {
        int32_t j = i, sep = -1;
        while (j < n && text[j] != 0x02) {
            if (text[j] == 0x01) {
                if (sep >= 0) return -1;  /* two \x01 in one pair */
                sep = j;
            }
            j++;
        }
        /* an empty pair is only allowed last (after the final separator), where j == n */
        if (sep <= i) return -1;  /* no \x01, or an empty name */
        const uint8_t *name = text + i, *value = text + sep + 1;
        int32_t nlen = sep - i, vlen = j - sep - 1;
        if (pairs == MAX_PAIRS || key_is(name, nlen, "CLUSTER")
                || in_names(name, nlen, skip, skip_len)) return -1;
        for (int32_t k = 0; k < pairs; k++)
            if (names_len[k] == nlen && memcmp(text + names_at[k], name, (size_t)nlen) == 0)
                return -1;
        names_at[pairs] = i;
        names_len[pairs++] = nlen;
        if (key_is(name, nlen, "WAIT")) {
            req->wait = !(vlen == 5 && memcmp(value, "false", 5) == 0);
        } else {
            if (c->w + (j - i) + 1 > c->cap) return -1;
            int32_t vat = c->w + nlen + 1;
            memcpy(c->out + c->w, name, (size_t)(j - i));
            c->w += j - i;
            c->out[c->w++] = 0x02;
            if (key_is(name, nlen, "UNIQ_KEY")) {
                req->uniq_at = vat;
                req->uniq_len = vlen;
            } else if (key_is(name, nlen, "KEYS")) {
                req->keys_at = vat;
                req->keys_len = vlen;
            } else if (key_is(name, nlen, "TAGS") && vlen > 0) {
                req->tags_code = rmq_java_hash((const char *)value, (size_t)vlen);
            }
        }
        i = j + 1;  /* past the \x02; a text ending in one leaves nothing after it */
    }
    if (c->w + 8 + cluster_len + 1 > c->cap) return -1;
    memcpy(c->out + c->w, "CLUSTER\x01", 8);
    memcpy(c->out + c->w + 8, cluster, (size_t)cluster_len);
    c->w += 8 + cluster_len;
    c->out[c->w++] = 0x02;
    req->props_len = c->w - req->props_at;
    return req->props_len <= 32767 ? 0 : -1;  /* MessageDecoder's short length */
}

static int fields(cursor *c, int32_t code, const int32_t at[F_COUNT], const int32_t len[F_COUNT],
                  rmq_send_req *req) {
    int64_t v;
    const uint8_t *o = c->out;
    if (parse_int(o + at[F_DEFAULT_QUEUES], len[F_DEFAULT_QUEUES], INT32_MIN, INT32_MAX, &v) < 0
            || parse_int(o + at[F_QUEUE], len[F_QUEUE], 0, INT32_MAX, &v) < 0) return -1;
    req->queue_id = (int32_t)v;
    if (parse_int(o + at[F_SYSFLAG], len[F_SYSFLAG], 0, 0, &v) < 0) return -1;
    if (parse_int(o + at[F_BORN], len[F_BORN], INT64_MIN + 1, INT64_MAX, &v) < 0) return -1;
    req->born_ts = v;
    if (parse_int(o + at[F_FLAG], len[F_FLAG], INT32_MIN, INT32_MAX, &v) < 0) return -1;
    req->msg_flag = (int32_t)v;
    req->reconsume_times = 0;
    if (at[F_RECONSUME] >= 0) {
        if (parse_int(o + at[F_RECONSUME], len[F_RECONSUME], INT32_MIN, INT32_MAX, &v) < 0)
            return -1;
        req->reconsume_times = (int32_t)v;
    }
    if (at[F_MAX_RECONSUME] >= 0 && parse_int(o + at[F_MAX_RECONSUME], len[F_MAX_RECONSUME],
                                              INT32_MIN, INT32_MAX, &v) < 0) return -1;
    /* a batch is "true" or "1" in any case (header_codec); C++ writes "0" for none */
    if (at[F_BATCH] >= 0 && !key_is(o + at[F_BATCH], len[F_BATCH], "false")
            && !key_is(o + at[F_BATCH], len[F_BATCH], "0")) return -1;
    (void)code;
    req->topic_at = at[F_TOPIC];
    req->topic_len = len[F_TOPIC];
    return len[F_TOPIC] > 0 ? 0 : -1;
}

int32_t rmq_send_parse(const uint8_t *frame, int64_t frame_len, const char *cluster,
                       int32_t cluster_len, const char *skip, int32_t skip_len,
                       rmq_send_req *req, uint8_t *out, int32_t out_cap) {
    if (frame_len < 4) return RMQ_SEND_NOT_SEND;
    uint32_t word = get32(frame);
    int64_t header_len = word & 0xFFFFFF;
    if ((word >> 24) != 0 || header_len > frame_len - 4) return RMQ_SEND_NOT_SEND;
    cursor c = {frame + 4, frame + 4 + header_len, out, 0, out_cap};
    int32_t at[F_COUNT], len[F_COUNT];
    for (int f = 0; f < F_COUNT; f++) at[f] = len[f] = -1;
    int64_t v, code = -1, flag = -1, opaque = -1;
    int have_ext = 0;
    if (!eat(&c, '{')) return RMQ_SEND_NOT_SEND;
    do {
        int32_t kat, klen, vat, vlen;
        if (read_string(&c, &kat, &klen) < 0 || !eat(&c, ':')) return RMQ_SEND_NOT_SEND;
        const uint8_t *k = c.out + kat;
        c.w = kat;
        if (key_is(k, klen, "code") && code < 0) {
            if (read_int(&c, &code) < 0 || (code != 10 && code != 310)) return RMQ_SEND_NOT_SEND;
        } else if (key_is(k, klen, "extFields") && code >= 0 && !have_ext) {
            if (read_ext(&c, (int32_t)code, at, len) < 0) return RMQ_SEND_HEADER;
            have_ext = 1;
        } else if (key_is(k, klen, "flag") && flag < 0) {
            if (read_int(&c, &flag) < 0) return RMQ_SEND_HEADER;
        } else if (key_is(k, klen, "opaque") && opaque < 0) {
            if (read_int(&c, &opaque) < 0 || opaque < 0) return RMQ_SEND_HEADER;
        } else if (key_is(k, klen, "version")) {
            if (read_int(&c, &v) < 0) return RMQ_SEND_HEADER;
        } else if (key_is(k, klen, "language") || key_is(k, klen, "serializeTypeCurrentRPC")
                   || key_is(k, klen, "remark")) {
            int32_t mark = c.w;
            skip_ws(&c);
            if (key_is(k, klen, "remark") && c.end - c.p >= 4 && memcmp(c.p, "null", 4) == 0)
                c.p += 4;
            else if (read_string(&c, &vat, &vlen) < 0) return RMQ_SEND_HEADER;
            c.w = mark;
        } else {
            return RMQ_SEND_HEADER;
        }
    } while (eat(&c, ','));
    if (!eat(&c, '}')) return RMQ_SEND_HEADER;
    skip_ws(&c);
    if (c.p != c.end || !have_ext || opaque < 0) return RMQ_SEND_HEADER;
    if (flag != 0) return RMQ_SEND_ONEWAY;  /* oneway (or a response): the Python path */
    req->code = (int32_t)code;
    req->opaque = (int32_t)opaque;
    if (fields(&c, (int32_t)code, at, len, req) < 0) return RMQ_SEND_FIELDS;
    static const uint8_t none[1] = {0};
    const uint8_t *text = at[F_PROPS] >= 0 ? c.out + at[F_PROPS] : none;
    int32_t text_len = at[F_PROPS] >= 0 ? len[F_PROPS] : 0;
    if (store_props(&c, text, text_len, cluster, cluster_len, skip, skip_len, req) < 0)
        return RMQ_SEND_PROPERTIES;
    req->body_at = 4 + (int32_t)header_len;
    return RMQ_SEND_FAST;
}
