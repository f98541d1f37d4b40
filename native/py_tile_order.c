/*
 * The order in which the GPU decoder's work counter hands out a batch's tiles (docs/gpu.md,
 * "Tile order"): costly tiles first, so the batch's last, partly filled wave holds short ones.
 *
 * A tile's cost is estimated from its table entry alone as out * out / in (decoded bytes times
 * the compression ratio): measured on the H200, tiles that compress well spend their time in
 * match copies and run longest, stored tiles (ratio ~1) are plain copies, and a short last tile
 * costs in proportion to its size. The host never parses the tile's bits; the estimate only
 * steers the schedule, so a corrupt table gives a poor order, never a wrong result (the shader
 * checks every tile's range itself).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsd_module.h"
#include "gdeflate.h"

struct keyed_tile {
    uint64_t cost;
    uint32_t index;
};

static int costlier_first(const void *a, const void *b)
{
    const struct keyed_tile *x = a, *y = b;
    if (x->cost != y->cost) return x->cost < y->cost ? 1 : -1;
    return x->index < y->index ? -1 : (x->index > y->index); /* stable: batch order among equals */
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t tile_cost(uint64_t in, uint64_t out)
{
    return out * out / (in ? in : 1);
}

/* Fills keys[base..base+n) for one stream (its table checked to lie inside the buffer). */
static void key_stream(const uint8_t *s, uint32_t n, uint32_t last_size, uint32_t base, struct keyed_tile *keys)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t start = i == 0 ? 0 : le32(s + 8 + 4 * (size_t)i);
        uint32_t end = i + 1 < n ? le32(s + 8 + 4 * (size_t)(i + 1)) : start + le32(s + 8);
        uint64_t in = end >= start ? end - start : 0;
        uint64_t out = i + 1 < n ? GDEFLATE_TILE_SIZE : last_size;
        keys[base + i].cost = tile_cost(in, out);
        keys[base + i].index = base + i;
    }
}

/* tile_order(streams) -> bytes: `streams` is a sequence of (buffer, num_tiles, last_size) in
 * batch order (tiles numbered across the batch); returns the batch's tile indices as
 * little-endian uint32, costliest first. */
static PyObject *py_tile_order(PyObject *self, PyObject *arg)
{
    (void)self;
    PyObject *seq = PySequence_Fast(arg, "tile_order expects a sequence of (buffer, num_tiles, last_size)");
    if (seq == NULL) return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Py_buffer *views = PyMem_Calloc((size_t)count + 1, sizeof(Py_buffer));
    uint32_t *tiles = PyMem_Calloc((size_t)count + 1, sizeof(uint32_t));
    uint32_t *lasts = PyMem_Calloc((size_t)count + 1, sizeof(uint32_t));
    struct keyed_tile *keys = NULL;
    PyObject *result = NULL;
    uint64_t total = 0;
    if (views == NULL || tiles == NULL || lasts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *data;
        unsigned long n, last;
        if (!PyTuple_Check(items[k])) {
            PyErr_Format(PyExc_TypeError, "tile_order: stream %zd is not a (buffer, num_tiles, last_size) tuple", k);
            goto done;
        }
        if (!PyArg_ParseTuple(items[k], "Okk:tile_order", &data, &n, &last)) goto done;
        if (PyObject_GetBuffer(data, &views[k], PyBUF_SIMPLE) < 0) goto done;
        if (n == 0 || n > 0xFFFF || last > GDEFLATE_TILE_SIZE ||
            (size_t)views[k].len < GDEFLATE_HEADER_SIZE + 4 * (size_t)n) {
            PyErr_Format(PyExc_ValueError, "tile_order: stream %zd: %lu tiles do not fit its %zd bytes", k, n,
                         views[k].len);
            goto done;
        }
        tiles[k] = (uint32_t)n;
        lasts[k] = (uint32_t)last;
        total += n;
    }
    if (total > UINT32_MAX / 4) {
        PyErr_SetString(PyExc_ValueError, "tile_order: too many tiles");
        goto done;
    }
    keys = PyMem_Malloc((size_t)(total ? total : 1) * sizeof(*keys));
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(4 * total));
    if (keys == NULL || result == NULL) {
        if (keys == NULL) PyErr_NoMemory();
        Py_CLEAR(result);
        goto done;
    }
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS
    uint32_t base = 0;
    for (Py_ssize_t k = 0; k < count; k++) {
        key_stream(views[k].buf, tiles[k], lasts[k], base, keys);
        base += tiles[k];
    }
    qsort(keys, (size_t)total, sizeof(*keys), costlier_first);
    for (uint64_t i = 0; i < total; i++) {
        uint32_t v = keys[i].index;
        out[4 * i] = (uint8_t)v;
        out[4 * i + 1] = (uint8_t)(v >> 8);
        out[4 * i + 2] = (uint8_t)(v >> 16);
        out[4 * i + 3] = (uint8_t)(v >> 24);
    }
    Py_END_ALLOW_THREADS
done:
    for (Py_ssize_t k = 0; views != NULL && k < count; k++)
        if (views[k].obj != NULL) PyBuffer_Release(&views[k]);
    PyMem_Free(keys);
    PyMem_Free(lasts);
    PyMem_Free(tiles);
    PyMem_Free(views);
    Py_DECREF(seq);
    return result;
}

static PyMethodDef tile_order_methods[] = {
    {"tile_order", py_tile_order, METH_O,
     "tile_order(streams) -> bytes: the batch's tile indices (uint32 LE), costliest first; streams is a "
     "sequence of (buffer, num_tiles, last_size) in batch order"},
    {NULL, NULL, 0, NULL},
};

int dsd_py_tile_order_init(PyObject *module)
{
    return PyModule_AddFunctions(module, tile_order_methods);
}
