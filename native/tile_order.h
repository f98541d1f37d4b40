/*
 * The order in which the GPU decoder's work counter hands out a batch's tiles (docs/gpu.md,
 * "Tile order"): estimated costliest first, cost = decoded bytes * decoded bytes / compressed
 * bytes, from each stream's tile table alone. Library code: no Python, no printing.
 */
#ifndef DSD_TILE_ORDER_H
#define DSD_TILE_ORDER_H

#include <stddef.h>
#include <stdint.h>

struct dsd_tile_stream {
    const uint8_t *data; /* the GDeflate tile stream (header, table, tiles) */
    size_t len;          /* its bytes: the table (8 + 4 * num_tiles) must lie inside */
    uint64_t num_tiles;  /* 1..65535 */
    uint64_t last_size;  /* decoded size of the last tile, 1..65536 */
};

/* Fills out[0..total) with the batch's tile indices (tiles numbered across the streams in
 * order), costliest first, batch order among equals. Returns the tile count, -EINVAL when a
 * stream's numbers or table do not fit (nothing written; *bad, when not NULL, is that stream's
 * index, or `count` when out_cap is too small), -ENOMEM. A corrupt table only gives a poor
 * order: every index appears exactly once whatever the table says. */
long dsd_tile_order(const struct dsd_tile_stream *streams, size_t count, uint32_t *out, size_t out_cap,
                    size_t *bad);

#endif
