/*
 * Inside the io engine: the request slot that travels from submit through a backend to reap,
 * and the contract between the engine (io_engine.c) and its backends (io_posix.c, io_uring.c).
 *
 * A request is owned by up to two parties, counted in `owners`: the backend (from enqueue until
 * it retires the request) and the completion list (from the report until reap). cancel() can
 * report a request the backend still holds in a queue; the backend's claim (QUEUED -> ISSUED)
 * fails then and it simply lets go of the slot.
 */
#ifndef DSD_IO_BACKEND_H
#define DSD_IO_BACKEND_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "io_engine.h"

enum dsd_io_req_state {
    DSD_REQ_QUEUED = 0,    /* in a backend queue, not started */
    DSD_REQ_ISSUED = 1,    /* claimed by a backend thread: reading */
    DSD_REQ_CANCELLED = 2, /* cancelled (or dropped) before it started; the backend lets go */
};

struct dsd_io_client;

struct dsd_io_req {
    struct dsd_io_req *next;         /* backend queue link */
    struct dsd_io_req *done_next;    /* client's completion list */
    struct dsd_io_req *lprev, *lnext; /* client's live list (engine lock) */
    struct dsd_io_client *client;
    struct dsd_io_file *file;
    struct dsd_io_region *region;
    uint8_t *dst;                    /* region->base + dst_offset */
    uint64_t offset;                 /* file offset of the first byte */
    uint64_t seq;                    /* engine-unique, tells reused slots apart (io_uring cancel);
                                        accessed with __atomic builtins, a late cancel reads it racily */
    uint64_t request_id;
    uint64_t cancel_tag;
    uint32_t size;
    uint32_t done;                   /* bytes read so far */
    atomic_int state;                /* enum dsd_io_req_state */
    atomic_int owners;
    atomic_int cancel_requested;     /* set by cancel() on an ISSUED request */
    int error;                       /* result, set by the backend */
    uint8_t status;
    uint8_t reason;
    uint8_t direct;                  /* current read uses O_DIRECT */
    uint16_t ring;                   /* io_uring: ring that holds it (atomic accesses: see seq) */
    struct dsd_completion_record rec; /* filled when reported */
    struct dsd_request_record orig;   /* as submitted: a failure is reported with its request */
};

struct dsd_io_backend_ops {
    const char *name;
    /* Create threads/rings in e->backend; on failure write why into reason and return -errno. */
    int (*start)(struct dsd_io_engine *e, char *reason, size_t reason_len);
    /* Take n QUEUED requests. Must not fail: the backend queues what it cannot start yet. */
    void (*enqueue)(struct dsd_io_engine *e, struct dsd_io_req **reqs, size_t n);
    /* Ask a running request to stop (called with the engine lock held; may be NULL). */
    void (*cancel_issued)(struct dsd_io_engine *e, struct dsd_io_req *req);
    /* Cancelled requests wait in queues: let go of them soon (may be NULL). */
    void (*kick)(struct dsd_io_engine *e);
    /* Stop: finish or cancel every running request, complete queued ones with SHUTDOWN, join. */
    void (*stop)(struct dsd_io_engine *e);
    void (*destroy)(struct dsd_io_engine *e);
};

extern const struct dsd_io_backend_ops dsd_io_posix_ops;
extern const struct dsd_io_backend_ops dsd_io_uring_ops;

struct dsd_io_engine {
    struct dsd_io_config cfg;
    const struct dsd_io_backend_ops *ops;
    void *backend;
    char reason[256];
    int efd;

    pthread_mutex_t lock; /* clients, live lists, completion lists, counters below */
    pthread_cond_t idle;  /* submitters == 0 */
    struct dsd_io_client **clients;
    size_t nclients, cap_clients;
    int closing, closed;
    unsigned submitters;
    bool signaled;        /* eventfd written since the last reap */
    uint64_t n_completed, n_failed, n_cancelled, n_dropped, n_bytes, n_rejected, n_pending;

    pthread_mutex_t pool_lock;
    struct dsd_io_req *pool_free;
    void **slabs;
    size_t nslabs, cap_slabs;
    uint64_t next_seq;

    atomic_uint_fast64_t n_submitted, n_in_flight;
    atomic_uint_fast64_t n_direct, n_buffered, n_short, n_retries, n_fixed_files, n_fixed_bufs;
};

/* Backend helpers (io_engine.c). */

/* QUEUED -> ISSUED; false if cancel() got there first (then only retire() the slot). */
static inline bool dsd_io_req_claim(struct dsd_io_req *r)
{
    int expected = DSD_REQ_QUEUED;
    return atomic_compare_exchange_strong(&r->state, &expected, DSD_REQ_ISSUED);
}

static inline void dsd_io_req_set(struct dsd_io_req *r, uint8_t status, uint8_t reason, int error)
{
    r->status = status;
    r->reason = reason;
    r->error = error;
}

/* The backend is done with these requests: report the claimed ones (result fields set) and let
 * go of all of them. One lock round trip per call, so backends pass whole batches. */
void dsd_io_retire(struct dsd_io_engine *e, struct dsd_io_req **reqs, size_t n);

/* Stop-time helper: a queued request the backend will never start completes SHUTDOWN. */
static inline void dsd_io_req_shutdown(struct dsd_io_req *r)
{
    dsd_io_req_set(r, DSD_STATUS_CANCELLED, DSD_REASON_SHUTDOWN, 125 /* ECANCELED */);
}

/* Which fd a read of `len` bytes at `off` into `buf` should use: O_DIRECT when allowed. */
static inline int dsd_io_pick_fd(const struct dsd_io_engine *e, struct dsd_io_file *f, uint64_t off,
                                 const uint8_t *buf, uint32_t len, uint8_t *direct)
{
    if (e->cfg.direct == DSD_IO_DIRECT_AUTO && f->fd_direct >= 0 && !atomic_load_explicit(&f->direct_broken, memory_order_relaxed) &&
        ((off | len) & (f->dio_off_align - 1)) == 0 && ((uintptr_t)buf & (f->dio_mem_align - 1)) == 0) {
        *direct = 1;
        return f->fd_direct;
    }
    *direct = 0;
    return f->fd;
}

unsigned dsd_io_online_cpus(void);

#endif
