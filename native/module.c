/*
 * dsd._native: the C core of dsd as one CPython extension.
 *
 * Each component (codec, io engine, ...) lives in its own translation unit and contributes
 * its types and functions through one init hook listed below. Library code never prints or
 * aborts; errors reach Python as exceptions raised by the binding layer.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "dsd_module.h"

typedef int (*component_init)(PyObject *module);

static const component_init COMPONENTS[] = {
    dsd_py_io_init,
    dsd_py_codec_init,
    dsd_py_vk_submit_init,
    dsd_py_tile_order_init,
    NULL, /* components add their hooks above this line */
};

static struct PyModuleDef dsd_native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "dsd._native",
    .m_doc = "dsd's C core: io engines and codecs (internal; use dsd.codec / dsd.daemon).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__native(void)
{
    PyObject *m = PyModule_Create(&dsd_native_module);
    if (m == NULL)
        return NULL;
    for (size_t i = 0; COMPONENTS[i] != NULL; i++) {
        if (COMPONENTS[i](m) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    }
    return m;
}
