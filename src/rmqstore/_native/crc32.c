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

#if defined(__x86_64__)
#include <immintrin.h>

/* Carry-less multiplication folding (Intel, "Fast CRC Computation for Generic Polynomials
 * Using PCLMULQDQ"), constants for the reflected IEEE polynomial. `c` is the running,
 * pre-inverted CRC state; len >= 64 and a multiple of 16. */
static const uint64_t k1k2[2] __attribute__((aligned(16))) = {0x0154442bd4, 0x01c6e41596};
static const uint64_t k3k4[2] __attribute__((aligned(16))) = {0x01751997d0, 0x00ccaa009e};
static const uint64_t k5k0[2] __attribute__((aligned(16))) = {0x0163cd6124, 0x0000000000};
static const uint64_t poly[2] __attribute__((aligned(16))) = {0x01db710641, 0x01f7011641};

/* The same folding, four 64-byte lanes at a time (AVX-512 VPCLMULQDQ): the first 256 bytes
 * and every further whole 256; the four lanes then fold into one, which leaves in x[0..3]
 * what crc_fold's four accumulators hold after as many bytes. Returns the bytes taken. */
static const uint64_t k2048[2] = {0x011542778a, 0x01322d1430}; /* x^(2048+-32) mod P */

__attribute__((target("avx512f,avx512vl,vpclmulqdq")))
static inline __m512i fold_512(__m512i z, __m512i k, __m512i data) {
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(z, k, 0x00),
                                     _mm512_clmulepi64_epi128(z, k, 0x11), data, 0x96);
}

__attribute__((target("avx512f,avx512vl,vpclmulqdq")))
static size_t crc_fold_wide(const uint8_t *buf, size_t len, uint32_t c, __m128i x[4]) {
    __m512i z0 = _mm512_loadu_si512(buf), z1 = _mm512_loadu_si512(buf + 64);
    __m512i z2 = _mm512_loadu_si512(buf + 128), z3 = _mm512_loadu_si512(buf + 192);
    z0 = _mm512_xor_si512(z0, _mm512_mask_set1_epi32(_mm512_setzero_si512(), 1, (int)c));
    __m512i k = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)k2048));
    size_t done = 256;
    for (; len - done >= 256; done += 256) {
        z0 = fold_512(z0, k, _mm512_loadu_si512(buf + done));
        z1 = fold_512(z1, k, _mm512_loadu_si512(buf + done + 64));
        z2 = fold_512(z2, k, _mm512_loadu_si512(buf + done + 128));
        z3 = fold_512(z3, k, _mm512_loadu_si512(buf + done + 192));
    }
    k = _mm512_broadcast_i32x4(_mm_load_si128((const __m128i *)k1k2)); /* 4 lanes into 1 */
    z0 = fold_512(fold_512(fold_512(z0, k, z1), k, z2), k, z3);
    x[0] = _mm512_extracti32x4_epi32(z0, 0);
    x[1] = _mm512_extracti32x4_epi32(z0, 1);
    x[2] = _mm512_extracti32x4_epi32(z0, 2);
    x[3] = _mm512_extracti32x4_epi32(z0, 3);
    return done;
}

static int has_wide_clmul = -1;

__attribute__((target("pclmul,sse4.1")))
static uint32_t crc_fold(const uint8_t *buf, size_t len, uint32_t c) {
    __m128i x0, x1, x2, x3, x4, x5, x6, x7, x8, y5, y6, y7, y8;
    if (has_wide_clmul < 0)
        has_wide_clmul = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
                         && __builtin_cpu_supports("vpclmulqdq");
    if (len >= 256 && has_wide_clmul) {
        __m128i x[4];
        size_t done = crc_fold_wide(buf, len, c, x);
        x1 = x[0], x2 = x[1], x3 = x[2], x4 = x[3];
        buf += done;
        len -= done;
    } else {
        x1 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
        x2 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
        x3 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
        x4 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
        x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)c));
        buf += 64;
        len -= 64;
    }
    x0 = _mm_load_si128((const __m128i *)k1k2);
    while (len >= 64) {
        x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
        x6 = _mm_clmulepi64_si128(x2, x0, 0x00);
        x7 = _mm_clmulepi64_si128(x3, x0, 0x00);
        x8 = _mm_clmulepi64_si128(x4, x0, 0x00);
        x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
        x2 = _mm_clmulepi64_si128(x2, x0, 0x11);
        x3 = _mm_clmulepi64_si128(x3, x0, 0x11);
        x4 = _mm_clmulepi64_si128(x4, x0, 0x11);
        y5 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
        y6 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
        y7 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
        y8 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x5), y5);
        x2 = _mm_xor_si128(_mm_xor_si128(x2, x6), y6);
        x3 = _mm_xor_si128(_mm_xor_si128(x3, x7), y7);
        x4 = _mm_xor_si128(_mm_xor_si128(x4, x8), y8);
        buf += 64;
        len -= 64;
    }
    x0 = _mm_load_si128((const __m128i *)k3k4); /* fold 4 x 128 bits into 128 */
    x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
    x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x3), x5);
    x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x4), x5);
    while (len >= 16) {
        x2 = _mm_loadu_si128((const __m128i *)buf);
        x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
        x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
        buf += 16;
        len -= 16;
    }
    x2 = _mm_clmulepi64_si128(x1, x0, 0x10); /* 128 -> 64 bits */
    x3 = _mm_setr_epi32(~0, 0, ~0, 0);
    x1 = _mm_srli_si128(x1, 8);
    x1 = _mm_xor_si128(x1, x2);
    x0 = _mm_loadl_epi64((const __m128i *)k5k0);
    x2 = _mm_srli_si128(x1, 4);
    x1 = _mm_and_si128(x1, x3);
    x1 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x1 = _mm_xor_si128(x1, x2);
    x0 = _mm_load_si128((const __m128i *)poly); /* Barrett reduction to 32 bits */
    x2 = _mm_and_si128(x1, x3);
    x2 = _mm_clmulepi64_si128(x2, x0, 0x10);
    x2 = _mm_and_si128(x2, x3);
    x2 = _mm_clmulepi64_si128(x2, x0, 0x00);
    x1 = _mm_xor_si128(x1, x2);
    return (uint32_t)_mm_extract_epi32(x1, 1);
}

static int has_clmul = -1;
#endif

uint32_t rmq_crc32_raw(const uint8_t *buf, size_t len) {
    if (!table_ready) build_table();
    uint32_t c = 0xFFFFFFFFu;
#if defined(__x86_64__)
    if (has_clmul < 0) has_clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
    if (has_clmul && len >= 64) {
        size_t chunk = len & ~(size_t)15;
        c = crc_fold(buf, chunk, c);
        buf += chunk;
        len -= chunk;
    }
#endif
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
    return (int32_t)rmq_java_hash_from(0, (const uint8_t *)utf8, len);
}

/* The hash of a string whose first part hashed to h, continued over s: hashing "topic#key"
 * without building it. */
uint32_t rmq_java_hash_from(uint32_t h, const uint8_t *s, size_t len) {
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
    return h;
}
