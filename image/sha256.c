/* SHA-256 (FIPS 180-4) for content verification: a portable implementation and, where the CPU
 * has them, the x86 SHA extensions (several GB/s, so verifying never limits a pull). */

#include "image/image.h"

#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void blocks_generic(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
    while (nblocks--) {
        uint32_t w[64];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
                   (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
        for (int i = 0; i < 64; i++) {
            uint32_t S1 = ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25);
            uint32_t ch = (e & f) ^ (~e & g);
            uint32_t t1 = hh + S1 + ch + K[i] + w[i];
            uint32_t S0 = ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22);
            uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
            uint32_t t2 = S0 + maj;
            hh = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        h[0] += a;
        h[1] += b;
        h[2] += c;
        h[3] += d;
        h[4] += e;
        h[5] += f;
        h[6] += g;
        h[7] += hh;
        p += 64;
    }
}

#if defined(__x86_64__)
__attribute__((target("sha,sse4.1"))) static void blocks_shani(uint32_t h[8], const uint8_t *p,
                                                               size_t nblocks)
{
    const __m128i MASK = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&h[0]);
    __m128i state1 = _mm_loadu_si128((const __m128i *)&h[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);       /* CDAB */
    state1 = _mm_shuffle_epi32(state1, 0x1B); /* EFGH */
    __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);
    state1 = _mm_blend_epi16(state1, tmp, 0xF0);

    while (nblocks--) {
        __m128i abef_save = state0, cdgh_save = state1;
        __m128i msg, msgtmp0, msgtmp1, msgtmp2, msgtmp3, t;

        /* rounds 0-3 */
        msgtmp0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 0)), MASK);
        msg = _mm_add_epi32(msgtmp0, _mm_loadu_si128((const __m128i *)&K[0]));
        state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
        msg = _mm_shuffle_epi32(msg, 0x0E);
        state0 = _mm_sha256rnds2_epu32(state0, state1, msg);
        /* rounds 4-7 */
        msgtmp1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), MASK);
        msg = _mm_add_epi32(msgtmp1, _mm_loadu_si128((const __m128i *)&K[4]));
        state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
        msg = _mm_shuffle_epi32(msg, 0x0E);
        state0 = _mm_sha256rnds2_epu32(state0, state1, msg);
        msgtmp0 = _mm_sha256msg1_epu32(msgtmp0, msgtmp1);
        /* rounds 8-11 */
        msgtmp2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), MASK);
        msg = _mm_add_epi32(msgtmp2, _mm_loadu_si128((const __m128i *)&K[8]));
        state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
        msg = _mm_shuffle_epi32(msg, 0x0E);
        state0 = _mm_sha256rnds2_epu32(state0, state1, msg);
        msgtmp1 = _mm_sha256msg1_epu32(msgtmp1, msgtmp2);
        /* rounds 12-15 */
        msgtmp3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), MASK);
        msg = _mm_add_epi32(msgtmp3, _mm_loadu_si128((const __m128i *)&K[12]));
        state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
        t = _mm_alignr_epi8(msgtmp3, msgtmp2, 4);
        msgtmp0 = _mm_add_epi32(msgtmp0, t);
        msgtmp0 = _mm_sha256msg2_epu32(msgtmp0, msgtmp3);
        msg = _mm_shuffle_epi32(msg, 0x0E);
        state0 = _mm_sha256rnds2_epu32(state0, state1, msg);
        msgtmp2 = _mm_sha256msg1_epu32(msgtmp2, msgtmp3);

        /* rounds 16-51: the message schedule rotates through the four registers */
#define QROUND(m0, m1, m2, m3, k)                                                                  \
    msg = _mm_add_epi32(m0, _mm_loadu_si128((const __m128i *)&K[k]));                              \
    state1 = _mm_sha256rnds2_epu32(state1, state0, msg);                                           \
    t = _mm_alignr_epi8(m0, m3, 4);                                                                \
    m1 = _mm_add_epi32(m1, t);                                                                     \
    m1 = _mm_sha256msg2_epu32(m1, m0);                                                             \
    msg = _mm_shuffle_epi32(msg, 0x0E);                                                            \
    state0 = _mm_sha256rnds2_epu32(state0, state1, msg);                                           \
    m3 = _mm_sha256msg1_epu32(m3, m0);

        QROUND(msgtmp0, msgtmp1, msgtmp2, msgtmp3, 16);
        QROUND(msgtmp1, msgtmp2, msgtmp3, msgtmp0, 20);
        QROUND(msgtmp2, msgtmp3, msgtmp0, msgtmp1, 24);
        QROUND(msgtmp3, msgtmp0, msgtmp1, msgtmp2, 28);
        QROUND(msgtmp0, msgtmp1, msgtmp2, msgtmp3, 32);
        QROUND(msgtmp1, msgtmp2, msgtmp3, msgtmp0, 36);
        QROUND(msgtmp2, msgtmp3, msgtmp0, msgtmp1, 40);
        QROUND(msgtmp3, msgtmp0, msgtmp1, msgtmp2, 44);
        QROUND(msgtmp0, msgtmp1, msgtmp2, msgtmp3, 48);
#undef QROUND
        /* rounds 52-55 */
        msg = _mm_add_epi32(msgtmp1, _mm_loadu_si128((const __m128i *)&K[52]));
        state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
        t = _mm_alignr_epi8(msgtmp1, msgtmp0, 4);
        msgtmp2 = _mm_add_epi32(msgtmp2, t);
        msgtmp2 = _mm_sha256msg2_epu32(msgtmp2, msgtmp1);
        msg = _mm_shuffle_epi32(msg, 0x0E);
        state0 = _mm_sha256rnds2_epu32(state0, state1, msg);
        /* rounds 56-59 */
        msg = _mm_add_epi32(msgtmp2, _mm_loadu_si128((const __m128i *)&K[56]));
        state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
        t = _mm_alignr_epi8(msgtmp2, msgtmp1, 4);
        msgtmp3 = _mm_add_epi32(msgtmp3, t);
        msgtmp3 = _mm_sha256msg2_epu32(msgtmp3, msgtmp2);
        msg = _mm_shuffle_epi32(msg, 0x0E);
        state0 = _mm_sha256rnds2_epu32(state0, state1, msg);
        /* rounds 60-63 */
        msg = _mm_add_epi32(msgtmp3, _mm_loadu_si128((const __m128i *)&K[60]));
        state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
        msg = _mm_shuffle_epi32(msg, 0x0E);
        state0 = _mm_sha256rnds2_epu32(state0, state1, msg);

        state0 = _mm_add_epi32(state0, abef_save);
        state1 = _mm_add_epi32(state1, cdgh_save);
        p += 64;
    }

    tmp = _mm_shuffle_epi32(state0, 0x1B);    /* FEBA */
    state1 = _mm_shuffle_epi32(state1, 0xB1); /* DCHG */
    state0 = _mm_blend_epi16(tmp, state1, 0xF0);
    state1 = _mm_alignr_epi8(state1, tmp, 8);
    _mm_storeu_si128((__m128i *)&h[0], state0);
    _mm_storeu_si128((__m128i *)&h[4], state1);
}

static bool have_shani(void)
{
    static int cached = -1; /* benign race: every thread computes the same answer */
    int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (c < 0) {
        unsigned a, b, cx, d;
        bool sha = false, sse41 = false;
        if (__get_cpuid_count(7, 0, &a, &b, &cx, &d))
            sha = (b >> 29) & 1;
        if (__get_cpuid(1, &a, &b, &cx, &d))
            sse41 = (cx >> 19) & 1;
        c = (sha && sse41 && getenv("HULL_SHA256_GENERIC") == NULL) ? 1 : 0;
        __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
    }
    return c == 1;
}
#endif

static void blocks(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
#if defined(__x86_64__)
    if (have_shani()) {
        blocks_shani(h, p, nblocks);
        return;
    }
#endif
    blocks_generic(h, p, nblocks);
}

void image_sha256_init(struct image_sha256 *c)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof(iv));
    c->len = 0;
    c->n = 0;
}

void image_sha256_update(struct image_sha256 *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    c->len += len;
    if (c->n > 0) {
        size_t take = 64 - c->n < len ? 64 - c->n : len;
        memcpy(c->buf + c->n, p, take);
        c->n += take;
        p += take;
        len -= take;
        if (c->n < 64)
            return;
        blocks(c->h, c->buf, 1);
        c->n = 0;
    }
    if (len >= 64) {
        blocks(c->h, p, len / 64);
        p += len / 64 * 64;
        len %= 64;
    }
    memcpy(c->buf, p, len);
    c->n = len;
}

void image_sha256_final_digest(struct image_sha256 *c, char out[72])
{
    uint64_t bits = c->len * 8;
    uint8_t pad = 0x80;
    image_sha256_update(c, &pad, 1);
    uint8_t zero = 0;
    while (c->n != 56)
        image_sha256_update(c, &zero, 1);
    uint8_t lenb[8];
    for (int i = 0; i < 8; i++)
        lenb[i] = (uint8_t)(bits >> (56 - 8 * i));
    image_sha256_update(c, lenb, 8);
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++) {
            uint8_t b = (uint8_t)(c->h[i] >> (24 - 8 * j));
            out[7 + i * 8 + j * 2] = hex[b >> 4];
            out[7 + i * 8 + j * 2 + 1] = hex[b & 15];
        }
    out[71] = '\0';
}

void image_sha256_digest(const void *data, size_t len, char out[72])
{
    struct image_sha256 c;
    image_sha256_init(&c);
    image_sha256_update(&c, data, len);
    image_sha256_final_digest(&c, out);
}
