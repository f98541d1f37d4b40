/* Init hooks of the components of dsd._native; each adds its names to the module. */
#ifndef DSD_MODULE_H
#define DSD_MODULE_H

#include <Python.h>

/* Components add one declaration each, e.g.
 *   int dsd_py_io_init(PyObject *module);   -- io engine
 *   int dsd_py_codec_init(PyObject *module); -- GDeflate codec
 */

int dsd_py_io_init(PyObject *module); /* io engine: Registry, IoEngine, probes (py_io.c) */
int dsd_py_codec_init(PyObject *module); /* GDeflate codec (py_codec.c) */
int dsd_py_vk_submit_init(PyObject *module); /* Vulkan submit-and-wait for the GPU decoder (py_vk_submit.c) */
int dsd_py_tile_order_init(PyObject *module); /* GPU tile hand-out order (py_tile_order.c) */

#endif
