/*
 * Tile hand-out order for the GPU decoder (tile_order.h). Measured on the H200: tiles that
 * compress well spend their time in match copies and run longest, stored tiles (ratio ~1) are
 * plain copies, and a short last tile costs in proportion to its size; out * out / in ranks
 * them that way (docs/benchmarks.md, runs 22-26).
 */
#include "tile_order.h"

#include <errno.h>
#include <stdlib.h>

#define TILE_BYTES 65536u
#define HEADER_BYTES 8u

struct keyed_tile {
    uint64_t cost;
    uint32_t index;
};

static int costlier_first(const void *a, const void *b)
{
    const struct keyed_tile *x = a, *y = b;
    if (x->cost != y->cost)
        return x->cost < y->cost ? 1 : -1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Format doc §1: table entry 0 is the last tile's compressed size, entry i > 0 tile i's offset. */
static void key_stream(const struct dsd_tile_stream *s, uint32_t base, struct keyed_tile *keys)
{
    const uint8_t *table = s->data + HEADER_BYTES;
    uint32_t n = (uint32_t)s->num_tiles; /* checked: 1..65535 */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t start = i == 0 ? 0 : le32(table + 4 * (size_t)i);
        uint32_t end = i + 1 < n ? le32(table + 4 * (size_t)(i + 1)) : start + le32(table);
        uint64_t in = end >= start ? end - start : 0;
        uint64_t out = i + 1 < n ? TILE_BYTES : s->last_size;
        keys[base + i].cost = out * out / (in ? in : 1);
        keys[base + i].index = base + i;
    }
}

long dsd_tile_order(const struct dsd_tile_stream *streams, size_t count, uint32_t *out, size_t out_cap,
                    size_t *bad)
{
    uint64_t total = 0;
    for (size_t k = 0; k < count; k++) {
        const struct dsd_tile_stream *s = &streams[k];
        if (s->num_tiles == 0 || s->num_tiles > 0xFFFF || s->last_size == 0 || s->last_size > TILE_BYTES ||
            s->data == NULL || s->len < HEADER_BYTES + 4 * (size_t)s->num_tiles) {
            if (bad != NULL)
                *bad = k;
            return -EINVAL;
        }
        total += s->num_tiles;
    }
    if (total > out_cap) {
        if (bad != NULL)
            *bad = count;
        return -EINVAL;
    }
    if (total == 0)
        return 0;
    struct keyed_tile *keys = malloc((size_t)total * sizeof(*keys));
    if (keys == NULL)
        return -ENOMEM;
    uint32_t base = 0;
    for (size_t k = 0; k < count; k++) {
        key_stream(&streams[k], base, keys);
        base += (uint32_t)streams[k].num_tiles;
    }
    qsort(keys, (size_t)total, sizeof(*keys), costlier_first);
    for (uint64_t i = 0; i < total; i++)
        out[i] = keys[i].index;
    free(keys);
    return (long)total;
}
