/*
 * gdeflate.h -- the one public contract of dsd's GDeflate codec (DirectStorage tile streams).
 *
 * Format: ../docs/codec.md and the team's format notes. A tile stream is an 8-byte header, a
 * table of u32 entries (one per tile) and independent 64 KiB tiles, each a DEFLATE64-flavoured
 * token stream spread over 32 interleaved bit lanes.
 *
 * Contract (libdeflate style):
 *   - every function returns an enum gdeflate_result; nothing prints, aborts, sets errno or
 *     touches mutable global state, so all functions are safe on any thread;
 *   - buffers belong to the caller; the library never reads before `in` or at/after
 *     `in + in_len`, and never writes outside `out[0, out_avail)`;
 *   - state objects (struct gdeflate_decompressor / gdeflate_compressor) are opaque and owned by
 *     the caller; one object must not be used by two threads at once, but any number of objects
 *     may be used in parallel;
 *   - the *_mt functions create their own worker threads (pthreads) and per-thread state, and
 *     join them before returning.
 *
 * Empty payload convention: an empty input compresses to the 8-byte header
 *   04 FB 00 00 01 00 00 00   (numTiles = 0, tileSizeIdx = 1, lastTileSize = 0)
 * and exactly that header decodes to zero bytes. (The reference codec refuses empty input.)
 */
#ifndef DSD_GDEFLATE_H
#define DSD_GDEFLATE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GDEFLATE_TILE_SIZE 65536u
#define GDEFLATE_MAX_TILES 65535u
#define GDEFLATE_HEADER_SIZE 8u
#define GDEFLATE_CODEC_ID 4u
#define GDEFLATE_MAGIC 0xFBu /* codec id ^ 0xFF */
/* Largest payload a tile stream can describe: 65535 tiles of 64 KiB. */
#define GDEFLATE_MAX_UNCOMPRESSED ((uint64_t)GDEFLATE_MAX_TILES * GDEFLATE_TILE_SIZE)

#define GDEFLATE_MIN_LEVEL 0
#define GDEFLATE_MAX_LEVEL 12
#define GDEFLATE_LEVEL_FASTEST 1    /* DSTORAGE_COMPRESSION_FASTEST */
#define GDEFLATE_LEVEL_DEFAULT 9    /* DSTORAGE_COMPRESSION_DEFAULT */
#define GDEFLATE_LEVEL_BEST_RATIO 12 /* DSTORAGE_COMPRESSION_BEST_RATIO */

enum gdeflate_result {
    GDEFLATE_SUCCESS = 0,
    GDEFLATE_BAD_DATA = 1,           /* corrupt or unsupported stream (see the error record) */
    GDEFLATE_SHORT_OUTPUT = 2,       /* a tile decoded to fewer bytes than its declared size */
    GDEFLATE_INSUFFICIENT_SPACE = 3, /* the output buffer is smaller than the result */
    GDEFLATE_NO_MEMORY = 4,          /* allocation or thread creation failed */
    GDEFLATE_BAD_ARGUMENT = 5,       /* invalid level, NULL pointer, input too large, ... */
};

/* Where a failure happened: tile index (or -1 for the container header/table) and a static,
 * human-readable reason (never NULL after a failure; "" on success). */
struct gdeflate_error {
    int64_t tile;
    const char *reason;
};

/* What the container header says, validated against the input size. */
struct gdeflate_stream_info {
    uint32_t num_tiles;
    uint32_t last_tile_size;     /* uncompressed size of the last tile (1..65536; 0 if no tiles) */
    uint64_t uncompressed_size;  /* total decoded size */
    uint64_t compressed_size;    /* header + table + tiles: the bytes the stream occupies */
    size_t data_offset;          /* 8 + 4 * num_tiles: where tile 0 begins */
};

/* Human-readable name of a result code (static string). */
const char *gdeflate_result_string(enum gdeflate_result r);

/* ---------------------------------------------------------------- container */

/* Parse and validate the header and tile table of `in` (every tile range inside in_len,
 * offsets monotonic, reserved bits zero). Bytes after the last tile are an error: a stream
 * must be exactly compressed_size bytes. */
enum gdeflate_result gdeflate_parse_header(const void *in, size_t in_len, struct gdeflate_stream_info *info,
                                           struct gdeflate_error *err);

/* Compressed/uncompressed byte range of tile `index` (after gdeflate_parse_header succeeded). */
void gdeflate_tile_range(const void *in, const struct gdeflate_stream_info *info, uint32_t index,
                         size_t *comp_offset, size_t *comp_len, size_t *out_offset, size_t *out_len);

/* ---------------------------------------------------------------- decoding */

struct gdeflate_decompressor;

/* NULL when out of memory. */
struct gdeflate_decompressor *gdeflate_alloc_decompressor(void);
void gdeflate_free_decompressor(struct gdeflate_decompressor *d);

/* Decode one bare tile bitstream (no container) into out[0, out_size). The tile must decode to
 * exactly out_size bytes: more is BAD_DATA; fewer is SHORT_OUTPUT (and *actual_out, if not NULL,
 * gets the count). Reads never go past in + in_len: missing trailing words read as zero, with a
 * small bound after which the tile is BAD_DATA. */
enum gdeflate_result gdeflate_decompress_tile(struct gdeflate_decompressor *d, const void *in, size_t in_len,
                                              void *out, size_t out_size, size_t *actual_out,
                                              const char **reason);

/* Decode a whole tile stream on the calling thread. */
enum gdeflate_result gdeflate_decompress(struct gdeflate_decompressor *d, const void *in, size_t in_len, void *out,
                                         size_t out_avail, size_t *out_len, struct gdeflate_error *err);

/* Decode a whole tile stream on `threads` threads (0 = one per online CPU; never more than the
 * number of tiles). On a tile failure the lowest failing tile index seen is reported. */
enum gdeflate_result gdeflate_decompress_mt(const void *in, size_t in_len, void *out, size_t out_avail,
                                            size_t *out_len, unsigned threads, struct gdeflate_error *err);

/* ---------------------------------------------------------------- encoding */

struct gdeflate_compressor;

/* level 0..12; NULL for a bad level or out of memory. */
struct gdeflate_compressor *gdeflate_alloc_compressor(int level);
void gdeflate_free_compressor(struct gdeflate_compressor *c);

/* Worst-case size of one compressed tile, and of a whole stream of in_len bytes
 * (0 when in_len exceeds GDEFLATE_MAX_UNCOMPRESSED). */
size_t gdeflate_tile_bound(void);
size_t gdeflate_compress_bound(size_t in_len);

/* Compress one tile (1..65536 bytes) into a bare tile bitstream; *out_len gets its size, always
 * a multiple of 4. out_avail >= gdeflate_tile_bound() always suffices. */
enum gdeflate_result gdeflate_compress_tile(struct gdeflate_compressor *c, const void *in, size_t in_len, void *out,
                                            size_t out_avail, size_t *out_len);

/* Compress a whole payload into a tile stream on the calling thread. */
enum gdeflate_result gdeflate_compress(struct gdeflate_compressor *c, const void *in, size_t in_len, void *out,
                                       size_t out_avail, size_t *out_len);

/* Same, tile-parallel on `threads` threads (0 = one per online CPU). */
enum gdeflate_result gdeflate_compress_mt(int level, const void *in, size_t in_len, void *out, size_t out_avail,
                                          size_t *out_len, unsigned threads);

/* Number of worker threads the *_mt functions would use for `threads` and `work_items`. */
unsigned gdeflate_effective_threads(unsigned threads, size_t work_items);

#ifdef __cplusplus
}
#endif

#endif
