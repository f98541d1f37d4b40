/*
 * libFuzzer target for the GPU tile hand-out order (tile_order.h): the input is cut into up to
 * eight streams (a length byte, a tile count byte and a last-size byte lead each), whose tables
 * are whatever bytes follow. Each stream's bytes end at the end of a fresh heap copy (ASan sees
 * any read past them). Whatever the tables say, a valid call must return every tile index once.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tile_order.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dsd_tile_stream streams[8];
    uint8_t *copies[8] = {0};
    size_t count = 0, pos = 0, total = 0;
    while (count < 8 && pos + 3 <= size) {
        size_t len = data[pos] * 4u;
        uint32_t n = (uint32_t)data[pos + 1] + 1;
        uint32_t last = (uint32_t)data[pos + 2] * 257u + 1;
        pos += 3;
        if (len > size - pos)
            len = size - pos;
        copies[count] = malloc(len ? len : 1);
        if (copies[count] == NULL)
            break;
        memcpy(copies[count], data + pos, len);
        pos += len;
        streams[count] = (struct dsd_tile_stream){copies[count], len, n, last};
        total += n;
        count++;
    }
    uint32_t *out = malloc((total ? total : 1) * sizeof(*out));
    if (out != NULL) {
        long got = dsd_tile_order(streams, count, out, total, NULL);
        if (got >= 0) {
            if ((size_t)got != total)
                abort(); /* a valid call orders every tile */
            uint8_t *seen = calloc(total ? total : 1, 1);
            for (size_t i = 0; seen != NULL && i < total; i++) {
                if (out[i] >= total || seen[out[i]]++)
                    abort(); /* an index out of range or twice */
            }
            free(seen);
        } else if (got != -EINVAL && got != -ENOMEM) {
            abort();
        }
        free(out);
    }
    for (size_t k = 0; k < count; k++)
        free(copies[k]);
    return 0;
}
