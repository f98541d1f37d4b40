/*
 * Python binding of the GDeflate codec (native/gdeflate.h) as functions of dsd._native.
 *
 * Any buffer-protocol object is accepted (bytes, bytearray, memoryview, mmap, numpy); the GIL is
 * released around all real work. Failures raise dsd._native.GDeflateError with args
 * (result_code, tile_index_or_-1, reason); dsd.codec turns those into its own exception classes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "dsd_module.h"
#include "gdeflate.h"

static PyObject *GDeflateError;

static PyObject *raise_result(enum gdeflate_result r, int64_t tile, const char *reason)
{
    PyObject *args = Py_BuildValue("(iLs)", (int)r, (long long)tile,
                                   reason && reason[0] ? reason : gdeflate_result_string(r));
    if (args != NULL) {
        PyErr_SetObject(GDeflateError, args);
        Py_DECREF(args);
    }
    return NULL;
}

static int get_threads(PyObject *obj, unsigned *threads)
{
    long v = PyLong_AsLong(obj);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (v < 0 || v > 4096) {
        PyErr_SetString(PyExc_ValueError, "threads must be 0 (all cores) or a positive count");
        return -1;
    }
    *threads = (unsigned)v;
    return 0;
}

/* stream_info(data[, total_len]): with total_len, `data` may hold only the header and table, and
 * tile ranges are checked against total_len (the table must lie entirely inside `data`). */
static PyObject *py_stream_info(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *data;
    Py_ssize_t total = -1;
    if (!PyArg_ParseTuple(args, "O|n:gdeflate_stream_info", &data, &total)) return NULL;
    Py_buffer in;
    if (PyObject_GetBuffer(data, &in, PyBUF_SIMPLE) < 0) return NULL;
    size_t in_len = (size_t)in.len;
    if (total >= 0) {
        /* Only the header and table are read: make sure they are inside the buffer we hold. */
        const uint8_t *p = in.buf;
        size_t need = GDEFLATE_HEADER_SIZE;
        if (in_len >= 4) need += 4 * (size_t)(p[2] | (p[3] << 8));
        if ((size_t)total < need) need = (size_t)total;
        if (in_len < need) {
            PyBuffer_Release(&in);
            return raise_result(GDEFLATE_BAD_DATA, -1, "input ends inside the tile table");
        }
        in_len = (size_t)total;
    }
    struct gdeflate_stream_info info;
    struct gdeflate_error err = {-1, ""};
    enum gdeflate_result r = gdeflate_parse_header(in.buf, in_len, &info, &err);
    PyBuffer_Release(&in);
    if (r != GDEFLATE_SUCCESS) return raise_result(r, err.tile, err.reason);
    return Py_BuildValue("(IKKI)", info.num_tiles, (unsigned long long)info.uncompressed_size,
                         (unsigned long long)info.compressed_size, info.last_tile_size);
}

static PyObject *py_decompress(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *data, *threads_obj;
    unsigned threads;
    if (!PyArg_ParseTuple(args, "OO:gdeflate_decompress", &data, &threads_obj)) return NULL;
    if (get_threads(threads_obj, &threads) < 0) return NULL;
    Py_buffer in;
    if (PyObject_GetBuffer(data, &in, PyBUF_SIMPLE) < 0) return NULL;
    struct gdeflate_stream_info info;
    struct gdeflate_error err = {-1, ""};
    enum gdeflate_result r = gdeflate_parse_header(in.buf, (size_t)in.len, &info, &err);
    if (r != GDEFLATE_SUCCESS) {
        PyBuffer_Release(&in);
        return raise_result(r, err.tile, err.reason);
    }
    if (info.uncompressed_size > (uint64_t)PY_SSIZE_T_MAX) {
        PyBuffer_Release(&in);
        return PyErr_NoMemory();
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)info.uncompressed_size);
    if (out == NULL) {
        PyBuffer_Release(&in);
        return NULL;
    }
    size_t got = 0;
    Py_BEGIN_ALLOW_THREADS
    r = gdeflate_decompress_mt(in.buf, (size_t)in.len, PyBytes_AS_STRING(out), (size_t)info.uncompressed_size,
                               &got, threads, &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&in);
    if (r != GDEFLATE_SUCCESS) {
        Py_DECREF(out);
        return raise_result(r, err.tile, err.reason);
    }
    return out;
}

static PyObject *py_decompress_into(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *data, *dest, *threads_obj;
    unsigned threads;
    if (!PyArg_ParseTuple(args, "OOO:gdeflate_decompress_into", &data, &dest, &threads_obj)) return NULL;
    if (get_threads(threads_obj, &threads) < 0) return NULL;
    Py_buffer in, out;
    if (PyObject_GetBuffer(data, &in, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(dest, &out, PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&in);
        return NULL;
    }
    size_t got = 0;
    struct gdeflate_error err = {-1, ""};
    enum gdeflate_result r;
    Py_BEGIN_ALLOW_THREADS
    r = gdeflate_decompress_mt(in.buf, (size_t)in.len, out.buf, (size_t)out.len, &got, threads, &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    PyBuffer_Release(&in);
    if (r != GDEFLATE_SUCCESS) return raise_result(r, err.tile, err.reason);
    return PyLong_FromSize_t(got);
}

static PyObject *py_compress(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *data, *threads_obj;
    int level;
    unsigned threads;
    if (!PyArg_ParseTuple(args, "OiO:gdeflate_compress", &data, &level, &threads_obj)) return NULL;
    if (get_threads(threads_obj, &threads) < 0) return NULL;
    if (level < GDEFLATE_MIN_LEVEL || level > GDEFLATE_MAX_LEVEL) {
        PyErr_Format(PyExc_ValueError, "GDeflate level must be %d..%d, not %d", GDEFLATE_MIN_LEVEL,
                     GDEFLATE_MAX_LEVEL, level);
        return NULL;
    }
    Py_buffer in;
    if (PyObject_GetBuffer(data, &in, PyBUF_SIMPLE) < 0) return NULL;
    size_t bound = gdeflate_compress_bound((size_t)in.len);
    if (bound == 0 || bound > (size_t)PY_SSIZE_T_MAX) {
        PyBuffer_Release(&in);
        PyErr_Format(PyExc_ValueError, "input of %zd bytes is larger than a GDeflate stream can hold (%llu bytes)",
                     in.len, (unsigned long long)GDEFLATE_MAX_UNCOMPRESSED);
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)bound);
    if (out == NULL) {
        PyBuffer_Release(&in);
        return NULL;
    }
    size_t got = 0;
    enum gdeflate_result r;
    Py_BEGIN_ALLOW_THREADS
    r = gdeflate_compress_mt(level, in.buf, (size_t)in.len, PyBytes_AS_STRING(out), bound, &got, threads);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&in);
    if (r != GDEFLATE_SUCCESS) {
        Py_DECREF(out);
        if (r == GDEFLATE_NO_MEMORY) return PyErr_NoMemory();
        return raise_result(r, -1, "compression failed");
    }
    if (_PyBytes_Resize(&out, (Py_ssize_t)got) < 0) return NULL;
    return out;
}

static PyObject *py_compress_bound(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "size must be >= 0");
        return NULL;
    }
    return PyLong_FromSize_t(gdeflate_compress_bound((size_t)n));
}

static PyObject *py_effective_threads(PyObject *self, PyObject *arg)
{
    (void)self;
    unsigned threads;
    if (get_threads(arg, &threads) < 0) return NULL;
    return PyLong_FromUnsignedLong(gdeflate_effective_threads(threads, (size_t)-1));
}

static PyMethodDef codec_methods[] = {
    {"gdeflate_stream_info", py_stream_info, METH_VARARGS,
     "gdeflate_stream_info(data[, total_len]) -> (num_tiles, uncompressed_size, compressed_size, last_tile_size)"},
    {"gdeflate_decompress", py_decompress, METH_VARARGS, "gdeflate_decompress(data, threads) -> bytes"},
    {"gdeflate_decompress_into", py_decompress_into, METH_VARARGS,
     "gdeflate_decompress_into(data, out, threads) -> bytes written"},
    {"gdeflate_compress", py_compress, METH_VARARGS, "gdeflate_compress(data, level, threads) -> bytes"},
    {"gdeflate_compress_bound", py_compress_bound, METH_O, "gdeflate_compress_bound(n) -> worst-case size"},
    {"gdeflate_effective_threads", py_effective_threads, METH_O,
     "gdeflate_effective_threads(threads) -> worker threads used for a large stream"},
    {NULL, NULL, 0, NULL},
};

int dsd_py_codec_init(PyObject *module)
{
    GDeflateError = PyErr_NewExceptionWithDoc("dsd._native.GDeflateError",
                                              "GDeflate failure: args = (result_code, tile_index_or_-1, reason)",
                                              PyExc_ValueError, NULL);
    if (GDeflateError == NULL) return -1;
    if (PyModule_AddObjectRef(module, "GDeflateError", GDeflateError) < 0) return -1;
    if (PyModule_AddFunctions(module, codec_methods) < 0) return -1;
    static const struct {
        const char *name;
        int value;
    } consts[] = {
        {"GDEFLATE_SUCCESS", GDEFLATE_SUCCESS},
        {"GDEFLATE_BAD_DATA", GDEFLATE_BAD_DATA},
        {"GDEFLATE_SHORT_OUTPUT", GDEFLATE_SHORT_OUTPUT},
        {"GDEFLATE_INSUFFICIENT_SPACE", GDEFLATE_INSUFFICIENT_SPACE},
        {"GDEFLATE_NO_MEMORY", GDEFLATE_NO_MEMORY},
        {"GDEFLATE_BAD_ARGUMENT", GDEFLATE_BAD_ARGUMENT},
        {"GDEFLATE_MAX_LEVEL", GDEFLATE_MAX_LEVEL},
        {"GDEFLATE_TILE_SIZE", GDEFLATE_TILE_SIZE},
    };
    for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); i++)
        if (PyModule_AddIntConstant(module, consts[i].name, consts[i].value) < 0) return -1;
    return 0;
}
