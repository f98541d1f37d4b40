/*
 * Python binding of the io engine (docs/io-engine.md, notes in io_engine.h): `Registry`,
 * `IoEngine`, `io_uring_probe()`, `odirect_probe()`. Only whole batches cross this layer:
 * submit() takes the packed records buffer as is, reap() returns packed completions per client.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <string.h>

#include "dsd_module.h"
#include "io_engine.h"

static PyObject *raise_errno(int err, const char *what)
{
    PyObject *args = Py_BuildValue("(is)", err, what ? what : strerror(err));
    if (args != NULL) {
        PyErr_SetObject(PyExc_OSError, args);
        Py_DECREF(args);
    }
    return NULL;
}

static int conv_u32(PyObject *o, void *out)
{
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "id must be an integer in [0, 2**32): %R", o);
        return 0;
    }
    if (v > UINT32_MAX) {
        PyErr_Format(PyExc_ValueError, "id must be an integer in [0, 2**32): %R", o);
        return 0;
    }
    *(uint32_t *)out = (uint32_t)v;
    return 1;
}

static int conv_u64(PyObject *o, void *out)
{
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "expected an integer in [0, 2**64): %R", o);
        return 0;
    }
    *(uint64_t *)out = (uint64_t)v;
    return 1;
}

/* ------------------------------------------------------------------ region buffer */

/* Exports one region's mapping; keeps the region (and so the mapping) alive while viewed. */
typedef struct {
    PyObject_HEAD
    struct dsd_io_region *region;
} RegionBufferObject;

static int regionbuf_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
    RegionBufferObject *b = (RegionBufferObject *)self;
    return PyBuffer_FillInfo(view, self, b->region->base, (Py_ssize_t)b->region->size, 0, flags);
}

static void regionbuf_dealloc(PyObject *self)
{
    RegionBufferObject *b = (RegionBufferObject *)self;
    if (b->region)
        dsd_io_region_put(b->region);
    Py_TYPE(self)->tp_free(self);
}

static PyBufferProcs regionbuf_as_buffer = {.bf_getbuffer = regionbuf_getbuffer};

static PyTypeObject RegionBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dsd._native._RegionBuffer",
    .tp_basicsize = sizeof(RegionBufferObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = regionbuf_dealloc,
    .tp_as_buffer = &regionbuf_as_buffer,
    .tp_doc = "A registered region's mapping (internal; use Registry.region_view).",
};

/* ------------------------------------------------------------------ Registry */

typedef struct {
    PyObject_HEAD
    struct dsd_io_registry *reg;
    int closed;
} RegistryObject;

static PyTypeObject RegistryType;

static PyObject *registry_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, ":Registry", kwlist))
        return NULL;
    RegistryObject *self = (RegistryObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    int rc = dsd_io_registry_new(&self->reg);
    if (rc < 0) {
        Py_DECREF(self);
        return raise_errno(-rc, NULL);
    }
    return (PyObject *)self;
}

static void registry_dealloc(PyObject *o)
{
    RegistryObject *self = (RegistryObject *)o;
    if (self->reg) {
        struct dsd_io_registry *reg = self->reg;
        self->reg = NULL;
        Py_BEGIN_ALLOW_THREADS
        dsd_io_registry_free(reg);
        Py_END_ALLOW_THREADS
    }
    Py_TYPE(o)->tp_free(o);
}

static int registry_check(RegistryObject *self)
{
    if (self->closed || self->reg == NULL) {
        PyErr_SetString(PyExc_ValueError, "registry is closed");
        return -1;
    }
    return 0;
}

static PyObject *registry_add_file(RegistryObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"file_id", "fd", "writable", NULL};
    uint32_t id;
    int fd, writable = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&i|$p:add_file", kwlist, conv_u32, &id, &fd, &writable) ||
        registry_check(self))
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = dsd_io_registry_add_file_ex(self->reg, id, fd, writable ? DSD_IO_FILE_WRITABLE : 0);
    Py_END_ALLOW_THREADS
    if (rc == -EEXIST)
        return PyErr_Format(PyExc_ValueError, "file id %u is already registered", id);
    if (writable && rc == -EBADF && fd >= 0)
        return raise_errno(EBADF, "writable=True needs an fd open for writing");
    if (writable && rc == -EINVAL)
        return PyErr_Format(PyExc_ValueError, "writable=True needs an fd without O_APPEND (writes go to given offsets)");
    if (rc < 0)
        return raise_errno(-rc, NULL);
    Py_RETURN_NONE;
}

static PyObject *registry_remove_file(RegistryObject *self, PyObject *arg)
{
    uint32_t id;
    if (!conv_u32(arg, &id) || registry_check(self))
        return NULL;
    int rc = dsd_io_registry_remove_file(self->reg, id);
    if (rc == -ENOENT) {
        PyErr_SetObject(PyExc_KeyError, arg);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *registry_add_region(RegistryObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"region_id", "fd", "size", NULL};
    uint32_t id;
    int fd;
    uint64_t size;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&iO&:add_region", kwlist, conv_u32, &id, &fd, conv_u64, &size) ||
        registry_check(self))
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = dsd_io_registry_add_region(self->reg, id, fd, size);
    Py_END_ALLOW_THREADS
    if (rc == -EEXIST)
        return PyErr_Format(PyExc_ValueError, "region id %u is already registered", id);
    if (rc == -EINVAL)
        return PyErr_Format(PyExc_ValueError, "region size %llu is 0 or larger than its file",
                            (unsigned long long)size);
    if (rc < 0)
        return raise_errno(-rc, NULL);
    Py_RETURN_NONE;
}

static PyObject *registry_remove_region(RegistryObject *self, PyObject *arg)
{
    uint32_t id;
    if (!conv_u32(arg, &id) || registry_check(self))
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS /* munmap of a large region takes a moment */
    rc = dsd_io_registry_remove_region(self->reg, id);
    Py_END_ALLOW_THREADS
    if (rc == -ENOENT) {
        PyErr_SetObject(PyExc_KeyError, arg);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *registry_region_view(RegistryObject *self, PyObject *arg)
{
    uint32_t id;
    if (!conv_u32(arg, &id) || registry_check(self))
        return NULL;
    struct dsd_io_region *r;
    if (dsd_io_registry_get_region(self->reg, id, &r) < 0) {
        PyErr_SetObject(PyExc_KeyError, arg);
        return NULL;
    }
    RegionBufferObject *b = PyObject_New(RegionBufferObject, &RegionBufferType);
    if (b == NULL) {
        dsd_io_region_put(r);
        return NULL;
    }
    b->region = r;
    PyObject *mv = PyMemoryView_FromObject((PyObject *)b);
    Py_DECREF(b);
    return mv;
}

static PyObject *registry_close(RegistryObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->closed && self->reg) {
        self->closed = 1;
        Py_BEGIN_ALLOW_THREADS
        dsd_io_registry_clear(self->reg);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyObject *registry_counts(RegistryObject *self, PyObject *Py_UNUSED(ignored))
{
    size_t f = 0, r = 0;
    if (self->reg)
        dsd_io_registry_counts(self->reg, &f, &r);
    return Py_BuildValue("(nn)", (Py_ssize_t)f, (Py_ssize_t)r);
}

typedef size_t (*ids_fn)(struct dsd_io_registry *, uint32_t *, size_t);

static PyObject *ids_tuple(RegistryObject *self, ids_fn fn)
{
    if (self->reg == NULL)
        return PyTuple_New(0);
    for (;;) {
        size_t n = fn(self->reg, NULL, 0);
        uint32_t *ids = PyMem_Malloc((n ? n : 1) * sizeof(*ids));
        if (ids == NULL)
            return PyErr_NoMemory();
        size_t m = fn(self->reg, ids, n);
        if (m != n) { /* changed meanwhile (another thread): again */
            PyMem_Free(ids);
            continue;
        }
        PyObject *l = PyList_New((Py_ssize_t)n);
        for (size_t i = 0; l && i < n; i++) {
            PyObject *v = PyLong_FromUnsignedLong(ids[i]);
            if (v == NULL) {
                Py_CLEAR(l);
                break;
            }
            PyList_SET_ITEM(l, (Py_ssize_t)i, v);
        }
        PyMem_Free(ids);
        if (l == NULL || PyList_Sort(l) < 0) {
            Py_XDECREF(l);
            return NULL;
        }
        PyObject *t = PyList_AsTuple(l);
        Py_DECREF(l);
        return t;
    }
}

static PyObject *registry_get_files(RegistryObject *self, void *Py_UNUSED(c))
{
    return ids_tuple(self, dsd_io_registry_file_ids);
}

static PyObject *registry_get_regions(RegistryObject *self, void *Py_UNUSED(c))
{
    return ids_tuple(self, dsd_io_registry_region_ids);
}

static PyObject *registry_get_closed(RegistryObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->closed);
}

static PyObject *registry_enter(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    if (registry_check((RegistryObject *)self))
        return NULL;
    return Py_NewRef(self);
}

static PyObject *registry_exit(RegistryObject *self, PyObject *Py_UNUSED(args))
{
    return registry_close(self, NULL);
}

static PyMethodDef registry_methods[] = {
    {"add_file", (PyCFunction)(void (*)(void))registry_add_file, METH_VARARGS | METH_KEYWORDS,
     "add_file(file_id, fd, *, writable=False): register a dup of fd under file_id (ValueError if taken); "
     "writable=True allows WRITE requests (fd open for writing, without O_APPEND)."},
    {"remove_file", (PyCFunction)registry_remove_file, METH_O,
     "remove_file(file_id): forget it; reads in flight keep it open until they finish (KeyError if unknown)."},
    {"add_region", (PyCFunction)(void (*)(void))registry_add_region, METH_VARARGS | METH_KEYWORDS,
     "add_region(region_id, fd, size): mmap size bytes of fd (shared, read/write) as a destination."},
    {"remove_region", (PyCFunction)registry_remove_region, METH_O,
     "remove_region(region_id): unmapped once the last read into it finishes (KeyError if unknown)."},
    {"region_view", (PyCFunction)registry_region_view, METH_O,
     "region_view(region_id) -> memoryview: a writable view of the mapping (keeps it mapped)."},
    {"close", (PyCFunction)registry_close, METH_NOARGS, "Drop every file and region (deferred as above)."},
    {"counts", (PyCFunction)registry_counts, METH_NOARGS, "counts() -> (files, regions)"},
    {"__enter__", (PyCFunction)registry_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)registry_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef registry_getset[] = {
    {"files", (getter)registry_get_files, NULL, "registered file ids (sorted tuple)", NULL},
    {"regions", (getter)registry_get_regions, NULL, "registered region ids (sorted tuple)", NULL},
    {"closed", (getter)registry_get_closed, NULL, "True after close()", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject RegistryType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dsd._native.Registry",
    .tp_basicsize = sizeof(RegistryObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = registry_new,
    .tp_dealloc = registry_dealloc,
    .tp_methods = registry_methods,
    .tp_getset = registry_getset,
    .tp_doc = "One client's open files and shared-memory regions, by the u32 ids the client chose.",
};

/* ------------------------------------------------------------------ IoEngine */

typedef struct {
    PyObject_HEAD
    struct dsd_io_engine *eng;
    int closed;
} EngineObject;

static int parse_choice(const char *what, const char *s, const char *const *names, int *out)
{
    for (int i = 0; names[i]; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    char list[96] = "";
    for (int i = 0; names[i]; i++) {
        size_t at = strlen(list);
        snprintf(list + at, sizeof(list) - at, "%s'%s'", i ? ", " : "", names[i]);
    }
    PyErr_Format(PyExc_ValueError, "%s must be one of %s, not '%s'", what, list, s);
    return -1;
}

static PyObject *engine_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"backend", "workers", "queue_depth", "sqpoll", "direct", "register", "staging_bytes",
                             "codec_workers", "coalesce", "mapped", NULL};
    static const char *const backends[] = {"auto", "uring", "posix", NULL};
    static const char *const directs[] = {"auto", "off", NULL, NULL};
    static const char *const coalesces[] = {"off", "halves", "bursts", NULL}; /* enum dsd_io_coalesce */
    const char *backend = "auto", *direct = "auto", *reg = "auto", *coalesce = "halves", *mapped = "auto";
    int workers = 0, qd = 64, sqpoll = 0, codec_workers = 0;
    long long staging = DSD_IO_STAGING_DEFAULT;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$siipssLiss:IoEngine", kwlist, &backend, &workers, &qd, &sqpoll,
                                     &direct, &reg, &staging, &codec_workers, &coalesce, &mapped))
        return NULL;
    if (staging < 0 || (unsigned long long)staging > DSD_IO_STAGING_MAX)
        return PyErr_Format(PyExc_ValueError, "staging_bytes must be in [0, 2**40], not %lld", staging);
    if (codec_workers < 0 || codec_workers > 256)
        return PyErr_Format(PyExc_ValueError, "codec_workers must be in [0, 256], not %d", codec_workers);
    struct dsd_io_config cfg = {0};
    if (parse_choice("backend", backend, backends, &cfg.backend) < 0 ||
        parse_choice("direct", direct, directs, &cfg.direct) < 0 ||
        parse_choice("register", reg, directs, &cfg.register_mode) < 0 ||
        parse_choice("coalesce", coalesce, coalesces, &cfg.coalesce) < 0 ||
        parse_choice("mapped", mapped, directs, &cfg.mapped) < 0) /* enum dsd_io_mapped_mode: auto, off */
        return NULL;
    if (workers < 0 || workers > 256)
        return PyErr_Format(PyExc_ValueError, "workers must be in [0, 256], not %d", workers);
    if (qd < 1 || qd > 4096)
        return PyErr_Format(PyExc_ValueError, "queue_depth must be in [1, 4096], not %d", qd);
    cfg.workers = (unsigned)workers;
    cfg.queue_depth = (unsigned)qd;
    cfg.sqpoll = sqpoll;
    cfg.staging_bytes = (uint64_t)staging;
    cfg.codec_workers = (unsigned)codec_workers;

    EngineObject *self = (EngineObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    char reason[256];
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = dsd_io_engine_new(&cfg, &self->eng, reason, sizeof(reason));
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        self->eng = NULL;
        Py_DECREF(self);
        if (rc == -EINVAL && cfg.backend != DSD_IO_BACKEND_URING)
            return PyErr_Format(PyExc_ValueError, "%s", reason);
        return raise_errno(-rc, reason);
    }
    return (PyObject *)self;
}

static void engine_dealloc(PyObject *o)
{
    EngineObject *self = (EngineObject *)o;
    if (self->eng) {
        struct dsd_io_engine *e = self->eng;
        self->eng = NULL;
        Py_BEGIN_ALLOW_THREADS
        dsd_io_engine_free(e);
        Py_END_ALLOW_THREADS
    }
    Py_TYPE(o)->tp_free(o);
}

static int engine_check(EngineObject *self)
{
    if (self->closed || self->eng == NULL) {
        PyErr_SetString(PyExc_ValueError, "io engine is closed");
        return -1;
    }
    return 0;
}

static PyObject *engine_submit(EngineObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"reg", "client_key", "records", "names", NULL};
    RegistryObject *reg;
    uint64_t key;
    Py_buffer recs;
    PyObject *names = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O&y*|O:submit", kwlist, &RegistryType, &reg, conv_u64, &key,
                                     &recs, &names))
        return NULL;
    if (engine_check(self) < 0 || registry_check(reg) < 0) {
        PyBuffer_Release(&recs);
        return NULL;
    }
    if (recs.len % (Py_ssize_t)sizeof(struct dsd_request_record) != 0) {
        PyBuffer_Release(&recs);
        return PyErr_Format(PyExc_ValueError, "records is %zd bytes, not a multiple of %zu", recs.len,
                            sizeof(struct dsd_request_record));
    }
    /* The engine does not word messages, so names are not needed here; they stay with the daemon. */
    if (names != Py_None && !PyObject_CheckBuffer(names)) {
        PyBuffer_Release(&recs);
        return PyErr_Format(PyExc_TypeError, "names must be a bytes-like object or None");
    }
    size_t n = (size_t)recs.len / sizeof(struct dsd_request_record), accepted = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = dsd_io_engine_submit(self->eng, reg->reg, key, recs.buf, n, &accepted);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&recs);
    if (rc == -ESHUTDOWN) {
        PyErr_SetString(PyExc_ValueError, "io engine is closed");
        return NULL;
    }
    if (rc == -ENOMEM)
        return PyErr_NoMemory();
    if (rc < 0)
        return raise_errno(-rc, NULL);
    return PyLong_FromSize_t(accepted);
}

static int reap_into_list(void *ctx, uint64_t key, const struct dsd_completion_record *recs, size_t n,
                          const struct dsd_request_record *failed, size_t nfailed)
{
    PyObject *list = ctx;
    PyObject *item = Py_BuildValue("(Ky#y#)", (unsigned long long)key, (const char *)recs,
                                   (Py_ssize_t)(n * sizeof(*recs)), (const char *)failed,
                                   (Py_ssize_t)(nfailed * sizeof(*failed)));
    if (item == NULL)
        return -ENOMEM;
    int rc = PyList_Append(list, item);
    Py_DECREF(item);
    return rc < 0 ? -ENOMEM : 0;
}

static int reap_into_list_msgs(void *ctx, uint64_t key, const struct dsd_completion_record *recs, size_t n,
                               const struct dsd_request_record *failed, const char *const *messages, size_t nfailed)
{
    PyObject *list = ctx;
    PyObject *msgs = PyTuple_New((Py_ssize_t)nfailed);
    if (msgs == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < nfailed; i++) {
        PyObject *m = PyUnicode_DecodeUTF8(messages[i], (Py_ssize_t)strlen(messages[i]), "replace");
        if (m == NULL) {
            Py_DECREF(msgs);
            return -ENOMEM;
        }
        PyTuple_SET_ITEM(msgs, (Py_ssize_t)i, m);
    }
    PyObject *item = Py_BuildValue("(Ky#y#N)", (unsigned long long)key, (const char *)recs,
                                   (Py_ssize_t)(n * sizeof(*recs)), (const char *)failed,
                                   (Py_ssize_t)(nfailed * sizeof(*failed)), msgs);
    if (item == NULL)
        return -ENOMEM;
    int rc = PyList_Append(list, item);
    Py_DECREF(item);
    return rc < 0 ? -ENOMEM : 0;
}

static PyObject *engine_reap(EngineObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"messages", NULL};
    int messages = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$p:reap", kwlist, &messages))
        return NULL;
    if (self->eng == NULL) { /* reap stays allowed after close(): SHUTDOWN completions */
        engine_check(self);
        return NULL;
    }
    PyObject *list = PyList_New(0);
    if (list == NULL)
        return NULL;
    int rc = messages ? dsd_io_engine_reap_ex(self->eng, reap_into_list_msgs, list)
                      : dsd_io_engine_reap(self->eng, reap_into_list, list);
    if (rc < 0) {
        Py_DECREF(list);
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        return NULL;
    }
    return list;
}

static PyObject *engine_cancel(EngineObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"client_key", "mask", "value", "request_id", NULL};
    uint64_t key, mask = 0, value = 0, id = 0;
    PyObject *rid = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|$O&O&O:cancel", kwlist, conv_u64, &key, conv_u64, &mask, conv_u64,
                                     &value, &rid))
        return NULL;
    if (rid != Py_None && !conv_u64(rid, &id))
        return NULL;
    if (engine_check(self) < 0)
        return NULL;
    size_t count = 0;
    dsd_io_engine_cancel(self->eng, key, mask, value, rid != Py_None, id, &count);
    return PyLong_FromSize_t(count);
}

static PyObject *engine_drop_client(EngineObject *self, PyObject *arg)
{
    uint64_t key;
    if (!conv_u64(arg, &key) || engine_check(self) < 0)
        return NULL;
    dsd_io_engine_drop_client(self->eng, key);
    Py_RETURN_NONE;
}

static int dict_set_u64(PyObject *d, const char *k, uint64_t v)
{
    PyObject *o = PyLong_FromUnsignedLongLong(v);
    if (o == NULL)
        return -1;
    int rc = PyDict_SetItemString(d, k, o);
    Py_DECREF(o);
    return rc;
}

static PyObject *engine_stats(EngineObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->eng == NULL) {
        engine_check(self);
        return NULL;
    }
    struct dsd_io_stats s;
    dsd_io_engine_stats(self->eng, &s);
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    PyObject *backend = PyUnicode_FromString(s.backend);
    PyObject *reason = PyUnicode_FromString(dsd_io_engine_reason(self->eng));
    PyObject *direct = PyUnicode_FromString(s.direct == DSD_IO_DIRECT_AUTO ? "auto" : "off");
    PyObject *regm = PyUnicode_FromString(s.register_mode == DSD_IO_REGISTER_AUTO ? "auto" : "off");
    PyObject *coal = PyUnicode_FromString(s.coalesce == DSD_IO_COALESCE_BURSTS   ? "bursts"
                                          : s.coalesce == DSD_IO_COALESCE_HALVES ? "halves"
                                                                                 : "off");
    PyObject *mapm = PyUnicode_FromString(s.mapped == DSD_IO_MAPPED_AUTO ? "auto" : "off");
    int bad = backend == NULL || reason == NULL || direct == NULL || regm == NULL || coal == NULL || mapm == NULL ||
              PyDict_SetItemString(d, "register", regm) < 0 || PyDict_SetItemString(d, "mapped", mapm) < 0 ||
              dict_set_u64(d, "mapped_reads", s.mapped_reads) < 0 || dict_set_u64(d, "mapped_redone", s.mapped_redone) < 0 ||
              PyDict_SetItemString(d, "backend", backend) < 0 || PyDict_SetItemString(d, "backend_reason", reason) < 0 ||
              PyDict_SetItemString(d, "direct", direct) < 0 || PyDict_SetItemString(d, "sqpoll", s.sqpoll ? Py_True : Py_False) < 0 ||
              PyDict_SetItemString(d, "coalesce", coal) < 0 ||
              dict_set_u64(d, "submitted", s.submitted) < 0 || dict_set_u64(d, "rejected", s.rejected) < 0 ||
              dict_set_u64(d, "completed", s.completed) < 0 || dict_set_u64(d, "failed", s.failed) < 0 ||
              dict_set_u64(d, "cancelled", s.cancelled) < 0 || dict_set_u64(d, "dropped", s.dropped) < 0 ||
              dict_set_u64(d, "bytes", s.bytes) < 0 || dict_set_u64(d, "in_flight", s.in_flight) < 0 ||
              dict_set_u64(d, "pending", s.pending) < 0 || dict_set_u64(d, "direct_reads", s.direct_reads) < 0 ||
              dict_set_u64(d, "buffered_reads", s.buffered_reads) < 0 ||
              dict_set_u64(d, "short_reads", s.short_reads) < 0 || dict_set_u64(d, "retries", s.retries) < 0 ||
              dict_set_u64(d, "fixed_files", s.fixed_files) < 0 || dict_set_u64(d, "fixed_buffers", s.fixed_buffers) < 0 ||
              dict_set_u64(d, "workers", s.workers) < 0 || dict_set_u64(d, "queue_depth", s.queue_depth) < 0 ||
              dict_set_u64(d, "writes", s.writes) < 0 || dict_set_u64(d, "bytes_written", s.bytes_written) < 0 ||
              dict_set_u64(d, "fsyncs", s.fsyncs) < 0 || dict_set_u64(d, "decoded", s.decoded) < 0 ||
              dict_set_u64(d, "decode_failures", s.decode_failures) < 0 || dict_set_u64(d, "encoded", s.encoded) < 0 ||
              dict_set_u64(d, "copies", s.copies) < 0 || dict_set_u64(d, "staging_bytes", s.staging_bytes) < 0 ||
              dict_set_u64(d, "staging_in_use", s.staging_in_use) < 0 ||
              dict_set_u64(d, "staging_peak", s.staging_peak) < 0 ||
              dict_set_u64(d, "staging_waits", s.staging_waits) < 0 ||
              dict_set_u64(d, "staging_waiting", s.staging_waiting) < 0 ||
              dict_set_u64(d, "codec_workers", s.codec_workers) < 0 ||
              PyDict_SetItemString(d, "closed", self->closed ? Py_True : Py_False) < 0;
    Py_XDECREF(backend);
    Py_XDECREF(reason);
    Py_XDECREF(direct);
    Py_XDECREF(regm);
    Py_XDECREF(coal);
    Py_XDECREF(mapm);
    if (bad) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

static PyObject *engine_close(EngineObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->closed && self->eng) {
        self->closed = 1;
        struct dsd_io_engine *e = self->eng;
        Py_BEGIN_ALLOW_THREADS
        dsd_io_engine_close(e);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyObject *engine_fileno(EngineObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->eng == NULL) {
        engine_check(self);
        return NULL;
    }
    return PyLong_FromLong(dsd_io_engine_fd(self->eng));
}

static PyObject *engine_enter(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    if (engine_check((EngineObject *)self) < 0)
        return NULL;
    return Py_NewRef(self);
}

static PyObject *engine_exit(EngineObject *self, PyObject *Py_UNUSED(args))
{
    return engine_close(self, NULL);
}

static PyObject *engine_get_backend(EngineObject *self, void *Py_UNUSED(c))
{
    return self->eng ? PyUnicode_FromString(dsd_io_engine_backend(self->eng)) : (engine_check(self), NULL);
}

static PyObject *engine_get_reason(EngineObject *self, void *Py_UNUSED(c))
{
    return self->eng ? PyUnicode_FromString(dsd_io_engine_reason(self->eng)) : (engine_check(self), NULL);
}

static PyObject *engine_get_closed(EngineObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->closed);
}

static PyObject *engine_get_workers(EngineObject *self, void *Py_UNUSED(c))
{
    if (self->eng == NULL)
        return engine_check(self), NULL;
    struct dsd_io_stats s;
    dsd_io_engine_stats(self->eng, &s);
    return PyLong_FromUnsignedLong(s.workers);
}

static PyMethodDef engine_methods[] = {
    {"submit", (PyCFunction)(void (*)(void))engine_submit, METH_VARARGS | METH_KEYWORDS,
     "submit(reg, client_key, records, names=None) -> accepted: queue a packed batch of 64-byte request records."},
    {"reap", (PyCFunction)(void (*)(void))engine_reap, METH_VARARGS | METH_KEYWORDS,
     "reap(*, messages=False) -> [(client_key, packed 32-byte completion records, packed 64-byte request records of "
     "the FAILED ones)]: non-blocking; drains the eventfd. messages=True adds a 4th item: a tuple of str, one per "
     "FAILED request, saying why in words ('' when reason and errno say it all)."},
    {"cancel", (PyCFunction)(void (*)(void))engine_cancel, METH_VARARGS | METH_KEYWORDS,
     "cancel(client_key, *, mask=0, value=0, request_id=None) -> requests reached"},
    {"drop_client", (PyCFunction)engine_drop_client, METH_O,
     "drop_client(client_key): cancel everything of that client and never report it."},
    {"stats", (PyCFunction)engine_stats, METH_NOARGS, "stats() -> dict of counters and settings"},
    {"close", (PyCFunction)engine_close, METH_NOARGS,
     "Stop the backend; queued requests complete CANCELLED (reason SHUTDOWN); reap() still works."},
    {"fileno", (PyCFunction)engine_fileno, METH_NOARGS, "The eventfd: readable while completions wait."},
    {"__enter__", (PyCFunction)engine_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)engine_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef engine_getset[] = {
    {"backend", (getter)engine_get_backend, NULL, "'uring' or 'posix'", NULL},
    {"backend_reason", (getter)engine_get_reason, NULL, "why this backend", NULL},
    {"workers", (getter)engine_get_workers, NULL, "rings or threads", NULL},
    {"closed", (getter)engine_get_closed, NULL, "True after close()", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dsd._native.IoEngine",
    .tp_basicsize = sizeof(EngineObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = engine_new,
    .tp_dealloc = engine_dealloc,
    .tp_methods = engine_methods,
    .tp_getset = engine_getset,
    .tp_doc = "IoEngine(*, backend='auto', workers=0, queue_depth=64, sqpoll=False, direct='auto', register='auto',\n"
              "         staging_bytes=32 MiB, codec_workers=0, coalesce='halves', mapped='auto'):\n"
              "runs packed request batches (reads, writes, fsync; GDeflate/Zstandard; FILE or MEMORY sources)\n"
              "against registered files and regions (io_uring rings or a pread/pwrite pool, plus codec threads).",
};

/* ------------------------------------------------------------------ module functions */

static PyObject *py_io_uring_probe(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(ignored))
{
    char reason[256];
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = dsd_io_uring_probe(reason, sizeof(reason));
    Py_END_ALLOW_THREADS
    return Py_BuildValue("(Os)", ok ? Py_True : Py_False, reason);
}

static PyObject *py_odirect_probe(PyObject *Py_UNUSED(m), PyObject *arg)
{
    PyObject *path = NULL;
    if (!PyUnicode_FSConverter(arg, &path))
        return NULL;
    char reason[512];
    int ok;
    const char *p = PyBytes_AS_STRING(path);
    Py_BEGIN_ALLOW_THREADS
    ok = dsd_io_odirect_probe(p, reason, sizeof(reason));
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    return Py_BuildValue("(Os)", ok ? Py_True : Py_False, reason);
}

static PyMethodDef io_functions[] = {
    {"io_uring_probe", py_io_uring_probe, METH_NOARGS,
     "io_uring_probe() -> (usable, reason): can this process set up and use an io_uring."},
    {"odirect_probe", py_odirect_probe, METH_O,
     "odirect_probe(path) -> (usable, reason): does O_DIRECT work on the filesystem holding path."},
    {NULL, NULL, 0, NULL},
};

int dsd_py_io_init(PyObject *module)
{
    if (PyType_Ready(&RegionBufferType) < 0 || PyType_Ready(&RegistryType) < 0 || PyType_Ready(&EngineType) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "Registry", (PyObject *)&RegistryType) < 0 ||
        PyModule_AddObjectRef(module, "IoEngine", (PyObject *)&EngineType) < 0 ||
        PyModule_AddFunctions(module, io_functions) < 0 ||
        PyModule_AddIntConstant(module, "REQUEST_RECORD_SIZE", sizeof(struct dsd_request_record)) < 0 ||
        PyModule_AddIntConstant(module, "COMPLETION_RECORD_SIZE", sizeof(struct dsd_completion_record)) < 0)
        return -1;
    return 0;
}
