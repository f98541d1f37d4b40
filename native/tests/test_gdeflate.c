/*
 * Native tests of the GDeflate codec, built and run under ASan/UBSan by `make -C native test`:
 * round trips over sizes, data kinds and every level (single- and multi-threaded); the
 * conformance subset (../tests/data/gdeflate, plus ../../shared/... when present) decoded and
 * checked against the manifest's SHA-256; malformed streams, every truncation and short output
 * buffers rejected with the right result code. Exit status 0 = all passed.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdeflate.h"

static int failures;
#define CHECK(cond, ...)                                                                                         \
    do {                                                                                                         \
        if (!(cond)) {                                                                                           \
            failures++;                                                                                          \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                 \
            fprintf(stderr, __VA_ARGS__);                                                                        \
            fprintf(stderr, "\n");                                                                               \
        }                                                                                                        \
    } while (0)

/* ---------------------------------------------------------------- SHA-256 (for the manifest) */
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};
#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

static void sha256_hex(const uint8_t *p, size_t n, char out[65])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    size_t i = 0;
    for (; i + 64 <= n; i += 64) sha256_block(h, p + i);
    uint8_t tail[128] = {0};
    size_t rest = n - i;
    memcpy(tail, p + i, rest);
    tail[rest] = 0x80;
    size_t tl = rest + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int k = 0; k < 8; k++) tail[tl - 1 - k] = (uint8_t)(bits >> (8 * k));
    sha256_block(h, tail);
    if (tl == 128) sha256_block(h, tail + 64);
    for (int k = 0; k < 8; k++) sprintf(out + 8 * k, "%08x", h[k]);
}

/* ---------------------------------------------------------------- helpers */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static uint64_t rng_state = 88172645463325252ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}

static void fill(uint8_t *p, size_t n, int kind)
{
    static const char *words[] = {"tile ", "stream ", "lane ", "refill ", "huffman ", "the ", "of ", "window\n"};
    size_t i = 0;
    switch (kind) {
    case 0: for (; i < n; i++) p[i] = (uint8_t)rnd(); break;
    case 1: memset(p, 0, n); break;
    case 2: for (; i < n; i++) p[i] = (uint8_t)("ABCDABCDABCDEFGH0123456789abcdef"[i % 32]); break;
    default:
        while (i < n) {
            const char *w = words[rnd() % 8];
            for (; *w && i < n; w++) p[i++] = (uint8_t)*w;
        }
    }
}

/* ---------------------------------------------------------------- tests */
static void test_round_trips(void)
{
    static const size_t sizes[] = {0, 1, 2, 31, 32, 33, 1000, 65535, 65536, 65537, 3 * 65536 + 17, 4 * 65536};
    size_t max = 4 * 65536;
    uint8_t *in = malloc(max), *out = malloc(max + 16);
    size_t bound = gdeflate_compress_bound(max);
    uint8_t *packed = malloc(bound);
    struct gdeflate_decompressor *d = gdeflate_alloc_decompressor();
    for (int kind = 0; kind < 4; kind++) {
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            size_t n = sizes[s];
            fill(in, n, kind);
            for (int level = 0; level <= GDEFLATE_MAX_LEVEL; level++) {
                if (level > 9 && n > 65537 && kind == 0) continue; /* keep the sanitizer run short */
                size_t plen = 0, got = 0;
                struct gdeflate_error err;
                enum gdeflate_result r = gdeflate_compress_mt(level, in, n, packed, bound, &plen, (unsigned)(1 + level % 3));
                CHECK(r == GDEFLATE_SUCCESS, "compress kind %d size %zu level %d: %d", kind, n, level, r);
                CHECK(plen % 4 == 0, "stream size not word aligned");
                r = gdeflate_decompress(d, packed, plen, out, n, &got, &err);
                CHECK(r == GDEFLATE_SUCCESS && got == n && memcmp(in, out, n) == 0,
                      "round trip kind %d size %zu level %d: %d %s tile %lld", kind, n, level, r, err.reason,
                      (long long)err.tile);
                r = gdeflate_decompress_mt(packed, plen, out, n + 16, &got, 0, &err);
                CHECK(r == GDEFLATE_SUCCESS && got == n && memcmp(in, out, n) == 0, "mt round trip");
                if (n > 0) {
                    r = gdeflate_decompress_mt(packed, plen, out, n - 1, &got, 2, &err);
                    CHECK(r == GDEFLATE_INSUFFICIENT_SPACE, "short output must be INSUFFICIENT_SPACE, got %d", r);
                }
            }
        }
    }
    /* Single-threaded compressor object gives the same bytes as the threaded path. */
    struct gdeflate_compressor *c = gdeflate_alloc_compressor(9);
    fill(in, max, 3);
    size_t a = 0, b = 0;
    uint8_t *packed2 = malloc(bound);
    CHECK(gdeflate_compress(c, in, max, packed, bound, &a) == GDEFLATE_SUCCESS, "compress");
    CHECK(gdeflate_compress_mt(9, in, max, packed2, bound, &b, 3) == GDEFLATE_SUCCESS, "compress mt");
    CHECK(a == b && memcmp(packed, packed2, a) == 0, "threaded output differs");
    /* Too small an output buffer for the compressor is reported, not overrun. */
    CHECK(gdeflate_compress(c, in, max, packed2, a - 1, &b) == GDEFLATE_INSUFFICIENT_SPACE, "compress short out");
    CHECK(gdeflate_alloc_compressor(13) == NULL && gdeflate_alloc_compressor(-1) == NULL, "bad levels accepted");
    /* Every truncation of a multi-tile stream is rejected. */
    for (size_t cut = 0; cut < a; cut += (cut < 200 ? 1 : 911)) {
        size_t got;
        enum gdeflate_result r = gdeflate_decompress(d, packed, cut, out, max, &got, NULL);
        CHECK(r == GDEFLATE_BAD_DATA, "truncation at %zu accepted (%d)", cut, r);
    }
    gdeflate_free_compressor(c);
    gdeflate_free_decompressor(d);
    free(packed2);
    free(in);
    free(out);
    free(packed);
}

static int corpus(const char *dir, int required)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/MANIFEST.tsv", dir);
    FILE *m = fopen(path, "r");
    if (!m) {
        CHECK(!required, "missing %s", path);
        if (!required) printf("  skip: %s not present\n", dir);
        return 0;
    }
    struct gdeflate_decompressor *d = gdeflate_alloc_decompressor();
    char line[1024];
    int count = 0;
    while (fgets(line, sizeof(line), m)) {
        char file[256], hash[65];
        int level;
        unsigned long long clen, ulen;
        if (sscanf(line, "%255s\t%d\t%llu\t%llu\t%64s", file, &level, &clen, &ulen, hash) != 5) continue;
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        size_t n;
        uint8_t *in = read_file(path, &n);
        CHECK(in != NULL && n == clen, "%s: unreadable or wrong size", path);
        if (!in) continue;
        uint8_t *out = malloc(ulen ? ulen : 1);
        size_t got = 0;
        struct gdeflate_error err;
        enum gdeflate_result r = gdeflate_decompress_mt(in, n, out, ulen, &got, 2, &err);
        char hex[65];
        sha256_hex(out, got, hex);
        CHECK(r == GDEFLATE_SUCCESS && got == ulen && strcmp(hex, hash) == 0, "%s: %d %s", file, r, err.reason);
        r = gdeflate_decompress(d, in, n, out, ulen, &got, &err);
        CHECK(r == GDEFLATE_SUCCESS, "%s single-threaded", file);
        free(out);
        free(in);
        count++;
    }
    fclose(m);
    /* malformed streams */
    DIR *dh = opendir(dir);
    struct dirent *e;
    while (dh && (e = readdir(dh)) != NULL) {
        if (strncmp(e->d_name, "bad-", 4) != 0) continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        size_t n, got;
        uint8_t *in = read_file(path, &n);
        uint8_t *out = malloc(1 << 20);
        struct gdeflate_error err;
        enum gdeflate_result r = gdeflate_decompress_mt(in, n, out, 1 << 20, &got, 2, &err);
        CHECK(r == GDEFLATE_BAD_DATA && err.reason[0], "%s accepted (%d)", e->d_name, r);
        free(in);
        free(out);
        count++;
    }
    if (dh) closedir(dh);
    gdeflate_free_decompressor(d);
    printf("  %s: %d streams\n", dir, count);
    return count;
}

int main(void)
{
    char hex[65];
    sha256_hex((const uint8_t *)"abc", 3, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0, "sha256 self-test");
    test_round_trips();
    corpus("../tests/data/gdeflate", 1);
    corpus("../../shared/conformance/gdeflate", 0);
    if (failures) {
        fprintf(stderr, "test_gdeflate: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_gdeflate: ok\n");
    return 0;
}
