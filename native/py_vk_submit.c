/*
 * Vulkan submit-and-wait for the GPU decoder (dsd.daemon.gpu) as dsd._native.VkSubmitter.
 *
 * One call submits a recorded command buffer, waits for it (a timeline semaphore, or a fence
 * where the device has none) and reads the batch's two GPU timestamps, with the GIL released and
 * no Python in between: a small batch's host cost is then the driver's round trip, not cffi's
 * (docs/gpu.md, "Dispatch overhead").
 *
 * Vulkan is not linked here. The caller passes the raw handles and the entry points it got from
 * vkGetDeviceProcAddr, as integers; only the structs this file fills are declared below, as the
 * Vulkan 1.2 specification lays them out (they are part of the platform ABI). The caller owns
 * every handle and keeps them alive while the object exists; it also provides the queue's
 * external synchronization (one call at a time per queue).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <sched.h>
#include <stdint.h>
#include <time.h>

#include "dsd_module.h"

/* -- the slice of the Vulkan ABI used here ---------------------------------------------------- */
typedef int32_t vk_result;
#define VK_SUCCESS_ 0
#define VK_NOT_READY_ 1
#define VK_TIMEOUT_ 2
#define VK_ST_SUBMIT_INFO 4
#define VK_ST_TIMELINE_SEMAPHORE_SUBMIT_INFO 1000207003
#define VK_ST_SEMAPHORE_WAIT_INFO 1000207004
#define VK_QUERY_RESULT_64 1u
#define VK_QUERY_RESULT_WAIT 2u

typedef uint64_t vk_ndhandle; /* non-dispatchable handles (VkSemaphore, VkFence, VkQueryPool) */

struct vk_timeline_submit_info {
    int32_t sType;
    const void *pNext;
    uint32_t waitSemaphoreValueCount;
    const uint64_t *pWaitSemaphoreValues;
    uint32_t signalSemaphoreValueCount;
    const uint64_t *pSignalSemaphoreValues;
};

struct vk_submit_info {
    int32_t sType;
    const void *pNext;
    uint32_t waitSemaphoreCount;
    const vk_ndhandle *pWaitSemaphores;
    const uint32_t *pWaitDstStageMask;
    uint32_t commandBufferCount;
    void *const *pCommandBuffers;
    uint32_t signalSemaphoreCount;
    const vk_ndhandle *pSignalSemaphores;
};

struct vk_semaphore_wait_info {
    int32_t sType;
    const void *pNext;
    uint32_t flags;
    uint32_t semaphoreCount;
    const vk_ndhandle *pSemaphores;
    const uint64_t *pValues;
};

typedef vk_result (*pfn_queue_submit)(void *queue, uint32_t n, const struct vk_submit_info *, vk_ndhandle fence);
typedef vk_result (*pfn_counter_value)(void *device, vk_ndhandle sem, uint64_t *value);
typedef vk_result (*pfn_wait_semaphores)(void *device, const struct vk_semaphore_wait_info *, uint64_t timeout);
typedef vk_result (*pfn_fence_status)(void *device, vk_ndhandle fence);
typedef vk_result (*pfn_wait_fences)(void *device, uint32_t n, const vk_ndhandle *, uint32_t all, uint64_t timeout);
typedef vk_result (*pfn_reset_fences)(void *device, uint32_t n, const vk_ndhandle *);
typedef vk_result (*pfn_query_results)(void *device, vk_ndhandle pool, uint32_t first, uint32_t count,
                                       size_t size, void *data, uint64_t stride, uint32_t flags);

/* -- the object ----------------------------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    pfn_queue_submit queue_submit;
    pfn_counter_value counter_value;
    pfn_wait_semaphores wait_semaphores;
    pfn_fence_status fence_status;
    pfn_wait_fences wait_fences;
    pfn_reset_fences reset_fences;
    pfn_query_results query_results;
    void *device;
    void *queue;
    void *cmd;
    vk_ndhandle sync;  /* the timeline semaphore, or the fence */
    vk_ndhandle query_pool;  /* 0: no timestamps */
    int timeline;
} VkSubmitterObject;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define SPIN_CHECK 8

/* Submits and waits; *spun is set when the completion was seen while polling, *elapsed to the
 * nanoseconds from submit to seen complete. */
static vk_result submit_wait(VkSubmitterObject *s, uint64_t value, uint64_t spin_ns, uint64_t timeout_ns,
                             int want_ts, uint64_t ts[2], int *spun, uint64_t *elapsed)
{
    void *cmd = s->cmd;
    struct vk_timeline_submit_info tl = {VK_ST_TIMELINE_SEMAPHORE_SUBMIT_INFO, NULL, 0, NULL, 1, &value};
    struct vk_submit_info si = {VK_ST_SUBMIT_INFO, NULL, 0, NULL, NULL, 1, &cmd, 0, NULL};
    if (s->timeline) {
        si.pNext = &tl;
        si.signalSemaphoreCount = 1;
        si.pSignalSemaphores = &s->sync;
    }
    uint64_t t_submit = now_ns();
    vk_result r = s->queue_submit(s->queue, 1, &si, s->timeline ? 0 : s->sync);
    if (r != VK_SUCCESS_) return r;

    /* Small batches finish in tens of microseconds: polling beats a blocking wait's wake-up.
     * The clock is read and the core offered to others (a CPU driver's own threads) only every
     * SPIN_CHECK polls: in a VM either can cost as much as a poll. */
    uint64_t deadline = spin_ns ? t_submit + spin_ns : 0;
    int done = 0;
    if (s->timeline) {
        for (unsigned i = 1;; i++) {
            uint64_t got = 0;
            r = s->counter_value(s->device, s->sync, &got);
            if (r != VK_SUCCESS_) return r;
            if (got >= value) { done = 1; break; }
            if (!deadline) break;
            if (i % SPIN_CHECK == 0) {
                if (now_ns() >= deadline) break;
                sched_yield();
            }
        }
        if (!done) {
            struct vk_semaphore_wait_info wi = {VK_ST_SEMAPHORE_WAIT_INFO, NULL, 0, 1, &s->sync, &value};
            r = s->wait_semaphores(s->device, &wi, timeout_ns);
            if (r != VK_SUCCESS_) return r;
        }
    } else {
        for (unsigned i = 1;; i++) {
            r = s->fence_status(s->device, s->sync);
            if (r == VK_SUCCESS_) { done = 1; break; }
            if (r != VK_NOT_READY_) return r;
            if (!deadline) break;
            if (i % SPIN_CHECK == 0) {
                if (now_ns() >= deadline) break;
                sched_yield();
            }
        }
        if (!done) {
            r = s->wait_fences(s->device, 1, &s->sync, 1, timeout_ns);
            if (r != VK_SUCCESS_) return r;  /* the caller resets a fence it timed out on */
        }
        r = s->reset_fences(s->device, 1, &s->sync);
        if (r != VK_SUCCESS_) return r;
    }
    *spun = done;
    *elapsed = now_ns() - t_submit;
    if (want_ts && s->query_pool) {
        r = s->query_results(s->device, s->query_pool, 0, 2, 2 * sizeof(uint64_t), ts, sizeof(uint64_t),
                             VK_QUERY_RESULT_64 | VK_QUERY_RESULT_WAIT);
        if (r != VK_SUCCESS_) return r;
    }
    return VK_SUCCESS_;
}

PyDoc_STRVAR(run_doc,
"run(value, spin_ns, timeout_ns, timestamps) -> (vk_result, ts_begin, ts_end, spun, elapsed_ns)\n\n"
"Submits the command buffer (signalling the timeline semaphore to `value`, or the fence), polls\n"
"for spin_ns, then blocks up to timeout_ns; with `timestamps` (the command buffer wrote them) reads\n"
"queries 0 and 1 of the pool (else 0, 0). vk_result is the first non-success VkResult\n"
"(2 = VK_TIMEOUT), else 0; `spun` says the end was seen while polling; elapsed_ns runs from just\n"
"before the submit to the end seen (CLOCK_MONOTONIC).");

static PyObject *submitter_run(VkSubmitterObject *self, PyObject *args)
{
    unsigned long long value, spin_ns, timeout_ns;
    int want_ts;
    if (!PyArg_ParseTuple(args, "KKKp:run", &value, &spin_ns, &timeout_ns, &want_ts)) return NULL;
    uint64_t ts[2] = {0, 0}, elapsed = 0;
    int spun = 0;
    vk_result r;
    Py_BEGIN_ALLOW_THREADS
    r = submit_wait(self, value, spin_ns, timeout_ns, want_ts, ts, &spun, &elapsed);
    Py_END_ALLOW_THREADS
    return Py_BuildValue("(iKKOK)", (int)r, (unsigned long long)ts[0], (unsigned long long)ts[1],
                         spun ? Py_True : Py_False, (unsigned long long)elapsed);
}

static PyMethodDef submitter_methods[] = {
    {"run", (PyCFunction)submitter_run, METH_VARARGS, run_doc},
    {NULL, NULL, 0, NULL},
};

static void *as_ptr(unsigned long long v) { return (void *)(uintptr_t)v; }

static int submitter_init(VkSubmitterObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"procs", "device", "queue", "cmd", "sync", "timeline", "query_pool", NULL};
    PyObject *procs;
    unsigned long long device, queue, cmd, sync, query_pool = 0;
    int timeline;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!KKKKp|K:VkSubmitter", kwlist, &PyTuple_Type, &procs, &device,
                                     &queue, &cmd, &sync, &timeline, &query_pool))
        return -1;
    unsigned long long p[7];
    if (PyTuple_GET_SIZE(procs) != 7) {
        PyErr_SetString(PyExc_ValueError, "procs: 7 entry points (vkQueueSubmit, vkGetSemaphoreCounterValue, "
                                          "vkWaitSemaphores, vkGetFenceStatus, vkWaitForFences, vkResetFences, "
                                          "vkGetQueryPoolResults)");
        return -1;
    }
    for (Py_ssize_t i = 0; i < 7; i++) {
        p[i] = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(procs, i));
        if (PyErr_Occurred()) return -1;
    }
    /* What each wait mode calls must exist; the unused mode's entries may be 0. */
    int missing = !p[0] || (timeline ? (!p[1] || !p[2]) : (!p[3] || !p[4] || !p[5])) || (query_pool && !p[6]);
    if (missing || !device || !queue || !cmd || !sync) {
        PyErr_SetString(PyExc_ValueError, "VkSubmitter: a needed handle or entry point is 0");
        return -1;
    }
    /* Entry points arrive as integers (PFN_vkVoidFunction from vkGetDeviceProcAddr). Converting an
     * integer to a function pointer is implementation-defined in C and well-defined on every
     * platform Vulkan runs on; going through uintptr_t keeps -Wextra quiet. */
    self->queue_submit = (pfn_queue_submit)(uintptr_t)p[0];
    self->counter_value = (pfn_counter_value)(uintptr_t)p[1];
    self->wait_semaphores = (pfn_wait_semaphores)(uintptr_t)p[2];
    self->fence_status = (pfn_fence_status)(uintptr_t)p[3];
    self->wait_fences = (pfn_wait_fences)(uintptr_t)p[4];
    self->reset_fences = (pfn_reset_fences)(uintptr_t)p[5];
    self->query_results = (pfn_query_results)(uintptr_t)p[6];
    self->device = as_ptr(device);
    self->queue = as_ptr(queue);
    self->cmd = as_ptr(cmd);
    self->sync = (vk_ndhandle)sync;
    self->query_pool = (vk_ndhandle)query_pool;
    self->timeline = timeline;
    return 0;
}

PyDoc_STRVAR(submitter_doc,
"VkSubmitter(procs, device, queue, cmd, sync, timeline, query_pool=0)\n\n"
"Submit-and-wait of one command buffer on one queue without Python in between (GIL released).\n"
"Handles and entry points are integers; the caller keeps them alive and serializes calls.");

static PyTypeObject VkSubmitterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dsd._native.VkSubmitter",
    .tp_basicsize = sizeof(VkSubmitterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = submitter_doc,
    .tp_methods = submitter_methods,
    .tp_init = (initproc)submitter_init,
    .tp_new = PyType_GenericNew,
};

int dsd_py_vk_submit_init(PyObject *module)
{
    if (PyType_Ready(&VkSubmitterType) < 0) return -1;
    Py_INCREF(&VkSubmitterType);
    if (PyModule_AddObject(module, "VkSubmitter", (PyObject *)&VkSubmitterType) < 0) {
        Py_DECREF(&VkSubmitterType);
        return -1;
    }
    return 0;
}
