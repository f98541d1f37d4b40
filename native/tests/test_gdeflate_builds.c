/*
 * The tile decoder's builds (generic, BMI2 scalar rounds, AVX2 rounds, AVX-512 rounds) held
 * against each other on one property: for any input and any declared tile size they return the
 * same result, the same reason, the same length and, on success, the same bytes. The generic
 * build is the reference. Inputs: real tiles at several levels, then the same tiles declared
 * too short or too long, truncated, and with single bits flipped (a deterministic small fuzzer,
 * so CI reaches the vector paths' error branches every run). Builds the CPU lacks are skipped
 * and reported. Exit status 0 = all agreed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdeflate.h"
#include "gdeflate_internal.h"

static int failures;
static unsigned long compared;

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}

/* 64 KiB of mixed content: words, a binary table, random bytes, runs and short periods. */
static void fill_mixed(uint8_t *p, size_t n)
{
    static const char *words[] = {"decode ", "lane ", "refill ", "round ", "the ", "tile ", "of ", "match\n"};
    size_t i = 0;
    while (i < n) {
        unsigned part = (unsigned)(i / 8192) % 4;
        size_t end = i + 8192 < n ? i + 8192 : n;
        for (; i < end; i++) {
            switch (part) {
            case 0: {
                const char *w = words[rnd() % 8];
                for (; *w && i < end; w++) p[i++] = (uint8_t)*w;
                i--;
                break;
            }
            case 1: p[i] = (uint8_t)((i % 12 < 4) ? i / 12 : (i % 12 < 8 ? 0 : rnd() % 4)); break;
            case 2: p[i] = (uint8_t)rnd(); break;
            default: p[i] = (uint8_t)((rnd() % 64) ? p[i - 1 - (i % 5)] : rnd()); break;
            }
        }
    }
}

static const enum gd_tile_impl impls[] = {GD_IMPL_GENERIC, GD_IMPL_BMI2, GD_IMPL_AVX2, GD_IMPL_AVX512};
static const char *impl_names[] = {"generic", "bmi2", "avx2", "avx512"};
static int available[4];

/* Decode with every available build and compare against the generic one. */
static void agree(struct gdeflate_decompressor *d, const uint8_t *tile, size_t len, size_t out_size, const char *what,
                  size_t what_arg)
{
    static uint8_t ref[65536 + 64], cur[65536 + 64];
    size_t ref_got = 0;
    const char *ref_reason = NULL;
    enum gdeflate_result ref_r = gd_decompress_tile_impl(d, GD_IMPL_GENERIC, tile, len, ref, out_size, &ref_got,
                                                         &ref_reason);
    for (unsigned i = 1; i < 4; i++) {
        if (!available[i]) continue;
        size_t got = 0;
        const char *reason = NULL;
        enum gdeflate_result r = gd_decompress_tile_impl(d, impls[i], tile, len, cur, out_size, &got, &reason);
        compared++;
        if (r != ref_r || got != ref_got || strcmp(reason, ref_reason) != 0 ||
            (r == GDEFLATE_SUCCESS && memcmp(cur, ref, out_size) != 0)) {
            failures++;
            fprintf(stderr, "FAIL %s %zu: %s gives %d (%zu, \"%s\"), generic %d (%zu, \"%s\")\n", what, what_arg,
                    impl_names[i], r, got, reason, ref_r, ref_got, ref_reason);
        }
    }
}

int main(void)
{
    struct gdeflate_decompressor *d = gdeflate_alloc_decompressor();
    static uint8_t probe_out[4];
    static const uint8_t one_byte_tile[136] = {0x73, 0x04};
    for (unsigned i = 0; i < 4; i++) {
        const char *reason;
        available[i] = gd_decompress_tile_impl(d, impls[i], one_byte_tile, sizeof(one_byte_tile), probe_out, 1, NULL,
                                               &reason) == GDEFLATE_SUCCESS;
        printf("  %s build: %s\n", impl_names[i], available[i] ? "compared" : "not on this CPU/build (skipped)");
    }
    if (!available[0]) {
        fprintf(stderr, "FAIL the generic build cannot decode the 1-byte tile\n");
        return 1;
    }

    size_t n = 65536;
    uint8_t *data = malloc(n), *packed = malloc(gdeflate_compress_bound(n)), *mutated = malloc(gdeflate_compress_bound(n));
    fill_mixed(data, n);
    static const int levels[] = {1, 6, 9, 12};
    for (unsigned li = 0; li < sizeof(levels) / sizeof(levels[0]); li++) {
        struct gdeflate_compressor *c = gdeflate_alloc_compressor(levels[li]);
        size_t plen = 0;
        if (c == NULL || gdeflate_compress(c, data, n, packed, gdeflate_compress_bound(n), &plen) != GDEFLATE_SUCCESS) {
            fprintf(stderr, "FAIL compress level %d\n", levels[li]);
            return 1;
        }
        gdeflate_free_compressor(c);
        /* one tile: the data starts after the 8-byte header and the 1-entry table */
        const uint8_t *tile = packed + 12;
        size_t tlen = plen - 12;
        agree(d, tile, tlen, n, "whole tile, level", (size_t)levels[li]);
        /* declared sizes around and below the real one: overflow errors inside rounds */
        for (size_t out = 1; out < n; out += 997 + out / 7) agree(d, tile, tlen, out, "declared size", out);
        for (size_t out = n - 40; out <= n; out++) agree(d, tile, tlen, out, "declared size", out);
        /* truncations: the tail buffer and the step loop near the end */
        for (size_t cut = 0; cut < tlen; cut += (cut + 600 > tlen ? 4 : 523)) agree(d, tile, cut, n, "cut at", cut);
        /* single flipped bits: corrupt symbols, distances, block headers, lengths */
        for (unsigned k = 0; k < 400; k++) {
            memcpy(mutated, tile, tlen);
            size_t bit = rnd() % (tlen * 8);
            mutated[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            agree(d, mutated, tlen, n, "flipped bit", bit);
        }
    }
    printf("test_gdeflate_builds: %lu comparisons, %s\n", compared, failures ? "FAILED" : "all agree");
    gdeflate_free_decompressor(d);
    free(data);
    free(packed);
    free(mutated);
    return failures ? 1 : 0;
}
