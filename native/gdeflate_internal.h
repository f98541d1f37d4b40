/*
 * Private constants shared by the GDeflate encoder and decoder (not part of the public contract).
 * Symbol semantics are DEFLATE64-flavoured: litlen 285 = length 3 + 16 extra bits, distance
 * codes 30/31 reach 65536, the window is the whole 64 KiB tile.
 */
#ifndef DSD_GDEFLATE_INTERNAL_H
#define DSD_GDEFLATE_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "gdeflate.h"

#define GD_LANES 32u
#define GD_NUM_LITLEN_SYMS 288u
#define GD_NUM_DIST_SYMS 32u
#define GD_NUM_PRECODE_SYMS 19u
#define GD_MAX_CODEWORD_LEN 15u
#define GD_MAX_PRECODE_LEN 7u
#define GD_END_OF_BLOCK 256u
#define GD_FIRST_LEN_SYM 257u
#define GD_MIN_MATCH 3u
#define GD_MAX_MATCH 65535u /* what the encoder emits; the format reaches 65538 */
#define GD_MAX_STORED_LEN 65535u

#define GD_LIKELY(x) __builtin_expect(!!(x), 1)
#define GD_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Order in which the precode lengths are sent (RFC 1951). */
static const uint8_t gd_precode_order[GD_NUM_PRECODE_SYMS] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5,
                                                                11, 4, 12, 3, 13, 2, 14, 1, 15};

/* Litlen symbols 257..285: length base and extra bits. 284 covers 227..257; 285 covers 3..65538. */
static const uint16_t gd_length_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                            31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 3};
static const uint8_t gd_length_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                            2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 16};

/* Distance symbols 0..31 (30 and 31 are the DEFLATE64 additions). */
static const uint32_t gd_dist_base[32] = {1,     2,     3,     4,     5,     7,     9,     13,
                                          17,    25,    33,    49,    65,    97,    129,   193,
                                          257,   385,   513,   769,   1025,  1537,  2049,  3073,
                                          4097,  6145,  8193,  12289, 16385, 24577, 32769, 49153};
static const uint8_t gd_dist_extra[32] = {0, 0, 0, 0, 1, 1, 2,  2,  3,  3,  4,  4,  5,  5,  6,  6,
                                          7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14};

static inline uint32_t gd_load32le(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

static inline void gd_store32le(uint8_t *p, uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    memcpy(p, &v, 4);
}

static inline void gd_store16le(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Fixed-code lengths for litlen (288) and distance (32) symbols. */
static inline void gd_fixed_lens(uint8_t *litlen, uint8_t *dist)
{
    unsigned i = 0;
    for (; i < 144; i++) litlen[i] = 8;
    for (; i < 256; i++) litlen[i] = 9;
    for (; i < 280; i++) litlen[i] = 7;
    for (; i < 288; i++) litlen[i] = 8;
    for (i = 0; i < 32; i++) dist[i] = 5;
}

/* Run `worker(job)` on `n` threads, the calling thread being one of them; returns 0 when every
 * thread started, -1 when fewer did (the work is still done: workers pull items until none remain). */
int gd_run_workers(void *(*worker)(void *), void *job, unsigned n);

/* The tile decoder's builds, for tests that hold them against each other (the public entry
 * points pick the fastest one the CPU supports). */
enum gd_tile_impl { GD_IMPL_GENERIC, GD_IMPL_BMI2, GD_IMPL_AVX2, GD_IMPL_AVX512 };
/* As gdeflate_decompress_tile with one build; BAD_ARGUMENT when it is not in this binary or the
 * CPU lacks its instructions. */
enum gdeflate_result gd_decompress_tile_impl(struct gdeflate_decompressor *d, enum gd_tile_impl impl, const void *in,
                                             size_t in_len, void *out, size_t out_size, size_t *actual_out,
                                             const char **reason);

#endif
