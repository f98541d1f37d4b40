/*
 * libFuzzer target for the GDeflate decoder (clang -fsanitize=fuzzer,address,undefined).
 *
 * The input and every output buffer end exactly at a PROT_NONE guard page (mmap + mprotect), so
 * any over-read of the input or over-write of the output faults at once, even where ASan's
 * redzones would not see it. Views of each input: a whole tile stream (single- and multi-threaded),
 * a bare tile, and raw data for the encoder at a level picked by the first byte. Whatever decodes
 * must re-encode and decode to the same bytes; whatever is encoded must decode to itself. Every
 * tile is also decoded by each build of the tile decoder this CPU can run (generic, BMI2, AVX2,
 * AVX-512): they must agree on the result, the reason, the length and the bytes.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gdeflate.h"
#include "gdeflate_internal.h"

#define MAX_OUT (4u << 20)

struct guarded {
    uint8_t *map;
    size_t map_len;
    uint8_t *data; /* data + len == the guard page */
};

static int guarded_alloc(struct guarded *g, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t body = (len + page - 1) / page * page;
    g->map_len = body + page;
    g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED) return -1;
    mprotect(g->map + body, page, PROT_NONE);
    g->data = g->map + body - len;
    return 0;
}

static void guarded_free(struct guarded *g)
{
    munmap(g->map, g->map_len);
}

static struct gdeflate_decompressor *dec;

/* Decode one tile with every available build; any disagreement is a bug in one of them. */
static void diff_tile(const uint8_t *tile, size_t len, size_t out_size)
{
    static const enum gd_tile_impl impls[] = {GD_IMPL_GENERIC, GD_IMPL_BMI2, GD_IMPL_AVX2, GD_IMPL_AVX512};
    struct guarded ref, cur;
    if (guarded_alloc(&ref, out_size) < 0) return;
    if (guarded_alloc(&cur, out_size) < 0) {
        guarded_free(&ref);
        return;
    }
    size_t ref_got = 0;
    const char *ref_reason = NULL;
    enum gdeflate_result ref_r = gd_decompress_tile_impl(dec, GD_IMPL_GENERIC, tile, len, ref.data, out_size, &ref_got,
                                                         &ref_reason);
    for (unsigned i = 1; i < sizeof(impls) / sizeof(impls[0]); i++) {
        size_t got = 0;
        const char *reason = NULL;
        enum gdeflate_result r = gd_decompress_tile_impl(dec, impls[i], tile, len, cur.data, out_size, &got, &reason);
        if (r == GDEFLATE_BAD_ARGUMENT) continue; /* not on this CPU */
        if (r != ref_r || got != ref_got || strcmp(reason, ref_reason) != 0) __builtin_trap();
        if (r == GDEFLATE_SUCCESS && memcmp(cur.data, ref.data, out_size) != 0) __builtin_trap();
    }
    guarded_free(&cur);
    guarded_free(&ref);
}
static struct gdeflate_compressor *enc;
static struct gdeflate_compressor *levels[GDEFLATE_MAX_LEVEL + 1];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dec == NULL) dec = gdeflate_alloc_decompressor();
    if (enc == NULL) enc = gdeflate_alloc_compressor(1);
    if (dec == NULL || enc == NULL) return 0;

    struct guarded in;
    if (guarded_alloc(&in, size) < 0) return 0;
    memcpy(in.data, data, size);
    /* Input pages read-only: the decoder must never write its input. */
    mprotect(in.map, in.map_len - (size_t)sysconf(_SC_PAGESIZE), PROT_READ);

    /* 1) whole stream, output sized from the header (capped) */
    struct gdeflate_stream_info info;
    size_t out_len = 65536;
    if (gdeflate_parse_header(in.data, size, &info, NULL) == GDEFLATE_SUCCESS)
        out_len = info.uncompressed_size > MAX_OUT ? MAX_OUT : (size_t)info.uncompressed_size;
    struct guarded out;
    if (guarded_alloc(&out, out_len) == 0) {
        size_t got = 0;
        struct gdeflate_error err;
        enum gdeflate_result r = gdeflate_decompress(dec, in.data, size, out.data, out_len, &got, &err);
        if (r == GDEFLATE_SUCCESS) {
            /* round trip what decoded */
            size_t bound = gdeflate_compress_bound(got);
            struct guarded packed, again;
            if (guarded_alloc(&packed, bound) == 0) {
                size_t plen = 0;
                if (gdeflate_compress(enc, out.data, got, packed.data, bound, &plen) != GDEFLATE_SUCCESS)
                    __builtin_trap();
                if (guarded_alloc(&again, got) == 0) {
                    size_t got2 = 0;
                    if (gdeflate_decompress(dec, packed.data, plen, again.data, got, &got2, NULL) != GDEFLATE_SUCCESS ||
                        got2 != got || memcmp(again.data, out.data, got) != 0)
                        __builtin_trap();
                    guarded_free(&again);
                }
                guarded_free(&packed);
            }
        } else if (err.reason == NULL || err.reason[0] == 0) {
            __builtin_trap(); /* every failure must say why */
        }
        /* the builds of the tile decoder must agree on the first tiles */
        if (gdeflate_parse_header(in.data, size, &info, NULL) == GDEFLATE_SUCCESS) {
            for (uint32_t i = 0; i < info.num_tiles && i < 4; i++) {
                size_t co, cl, oo, ol;
                gdeflate_tile_range(in.data, &info, i, &co, &cl, &oo, &ol);
                diff_tile(in.data + co, cl, ol);
            }
        }
        /* 2) the same on two threads must agree */
        size_t got_mt = 0;
        enum gdeflate_result r2 = gdeflate_decompress_mt(in.data, size, out.data, out_len, &got_mt, 2, NULL);
        if ((r == GDEFLATE_SUCCESS) != (r2 == GDEFLATE_SUCCESS)) __builtin_trap();
        guarded_free(&out);
    }

    /* 3) the encoder on the raw input at a level picked by the first byte: must round-trip */
    if (size > 1) {
        int level = data[0] % (GDEFLATE_MAX_LEVEL + 1);
        if (levels[level] == NULL) levels[level] = gdeflate_alloc_compressor(level);
        size_t bound = gdeflate_compress_bound(size - 1), plen = 0, got = 0;
        struct guarded packed, back;
        if (levels[level] != NULL && guarded_alloc(&packed, bound) == 0) {
            if (gdeflate_compress(levels[level], data + 1, size - 1, packed.data, bound, &plen) != GDEFLATE_SUCCESS)
                __builtin_trap();
            if (guarded_alloc(&back, size - 1) == 0) {
                if (gdeflate_decompress(dec, packed.data, plen, back.data, size - 1, &got, NULL) != GDEFLATE_SUCCESS ||
                    got != size - 1 || memcmp(back.data, data + 1, size - 1) != 0)
                    __builtin_trap();
                guarded_free(&back);
            }
            guarded_free(&packed);
        }
    }

    /* 4) the input as one bare tile; the first byte picks the declared tile size */
    size_t tile_out = size ? 1 + (size_t)data[0] * 257 : 1;
    if (tile_out > 65536) tile_out = 65536;
    struct guarded tout;
    if (guarded_alloc(&tout, tile_out) == 0) {
        size_t got = 0;
        const char *reason = NULL;
        enum gdeflate_result r = gdeflate_decompress_tile(dec, in.data, size, tout.data, tile_out, &got, &reason);
        if (r != GDEFLATE_SUCCESS && r != GDEFLATE_BAD_DATA && r != GDEFLATE_SHORT_OUTPUT) __builtin_trap();
        if (got > tile_out) __builtin_trap();
        guarded_free(&tout);
        diff_tile(in.data, size, tile_out);
    }
    guarded_free(&in);
    return 0;
}
