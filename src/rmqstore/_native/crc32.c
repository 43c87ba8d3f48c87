/* CRC32 (IEEE 802.3, reflected 0xEDB88320, as zlib and java.util.zip.CRC32), slice-by-8.
 * RocketMQ stores it masked with 0x7FFFFFFF (UtilAll.crc32). Tables are built once, lazily;
 * a race on first use is benign because every thread writes the same values. */
#include "rmq_native.h"
#include "rmq_internal.h"

static uint32_t table[8][256];
static volatile int table_ready = 0;

static void build_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = table[0][i];
        for (int t = 1; t < 8; t++) {
            c = table[0][c & 0xFF] ^ (c >> 8);
            table[t][i] = c;
        }
    }
    __sync_synchronize();
    table_ready = 1;
}

uint32_t rmq_crc32_raw(const uint8_t *buf, size_t len) {
    if (!table_ready) build_table();
    uint32_t c = 0xFFFFFFFFu;
    while (len && ((uintptr_t)buf & 7)) { c = table[0][(c ^ *buf++) & 0xFF] ^ (c >> 8); len--; }
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, buf, 4);
        memcpy(&hi, buf + 4, 4);
        lo ^= c; /* little-endian host assumed (x86_64, aarch64) */
        c = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^
            table[4][lo >> 24] ^ table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^
            table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
        buf += 8;
        len -= 8;
    }
    while (len--) c = table[0][(c ^ *buf++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

uint32_t rmq_crc32(const char *buf, size_t len) {
    return rmq_crc32_raw((const uint8_t *)buf, len) & 0x7FFFFFFFu;
}

int rmq_abi_version(void) { return RMQ_ABI; }

/* Java's String.hashCode over UTF-16 code units; the input is UTF-8 (already validated by
 * Python's encoder), so a 4-byte sequence becomes a surrogate pair. */
int32_t rmq_java_hash(const char *utf8, size_t len) {
    const uint8_t *s = (const uint8_t *)utf8;
    uint32_t h = 0;
    size_t i = 0;
    while (i < len) {
        uint32_t c = s[i];
        size_t need = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (i + need > len) break; /* truncated sequence: Python never passes one */
        if (c < 0x80) { i += 1; }
        else if (c < 0xE0) { c = ((c & 0x1F) << 6) | (s[i + 1] & 0x3F); i += 2; }
        else if (c < 0xF0) { c = ((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F); i += 3; }
        else {
            c = ((c & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
            i += 4;
            c -= 0x10000;
            h = 31 * h + (0xD800 + (c >> 10));
            c = 0xDC00 + (c & 0x3FF);
        }
        h = 31 * h + c;
    }
    return (int32_t)h;
}
