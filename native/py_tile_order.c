/*
 * Python binding of the GPU tile hand-out order (tile_order.h) as dsd._native.tile_order.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>

#include "dsd_module.h"
#include "tile_order.h"

/* tile_order(streams) -> bytes: `streams` is a sequence of (buffer, num_tiles, last_size) in
 * batch order; returns the batch's tile indices as little-endian uint32, costliest first. */
static PyObject *py_tile_order(PyObject *self, PyObject *arg)
{
    (void)self;
    PyObject *seq = PySequence_Fast(arg, "tile_order expects a sequence of (buffer, num_tiles, last_size)");
    if (seq == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Py_buffer *views = PyMem_Calloc((size_t)count + 1, sizeof(Py_buffer));
    struct dsd_tile_stream *streams = PyMem_Calloc((size_t)count + 1, sizeof(*streams));
    PyObject *result = NULL;
    size_t total = 0;
    if (views == NULL || streams == NULL) {
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
        if (!PyArg_ParseTuple(items[k], "Okk:tile_order", &data, &n, &last))
            goto done;
        if (PyObject_GetBuffer(data, &views[k], PyBUF_SIMPLE) < 0)
            goto done;
        streams[k] = (struct dsd_tile_stream){views[k].buf, (size_t)views[k].len, n, last};
        if (n <= 0xFFFF)
            total += n; /* a larger count is refused below, by dsd_tile_order */
    }
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(4 * total));
    if (result == NULL)
        goto done;
    uint32_t *out = (uint32_t *)PyBytes_AS_STRING(result); /* bytes data is suitably aligned */
    long got;
    size_t bad = 0;
    Py_BEGIN_ALLOW_THREADS
    got = dsd_tile_order(streams, (size_t)count, out, total, &bad);
    if (got > 0 && *(const uint8_t *)&(uint16_t){1} == 0) /* big-endian host: words go out little-endian */
        for (long i = 0; i < got; i++)
            out[i] = __builtin_bswap32(out[i]);
    Py_END_ALLOW_THREADS
    if (got < 0) {
        Py_CLEAR(result);
        if (got == -ENOMEM)
            PyErr_NoMemory();
        else if (bad < (size_t)count)
            PyErr_Format(PyExc_ValueError, "tile_order: stream %zu: %llu tiles (last %llu bytes) do not fit its %zu bytes",
                         bad, (unsigned long long)streams[bad].num_tiles, (unsigned long long)streams[bad].last_size,
                         streams[bad].len);
        else
            PyErr_SetString(PyExc_ValueError, "tile_order: more tiles than the batch holds");
    }
done:
    for (Py_ssize_t k = 0; views != NULL && k < count; k++)
        if (views[k].obj != NULL)
            PyBuffer_Release(&views[k]);
    PyMem_Free(streams);
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
