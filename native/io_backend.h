/*
 * Inside the io engine: the request slot that travels from submit through a backend to reap,
 * and the contract between the engine (io_engine.c) and its backends (io_posix.c, io_uring.c).
 *
 * A request is owned by up to two parties, counted in `owners`: the backend (from enqueue until
 * it retires the request) and the completion list (from the report until reap). cancel() can
 * report a request the backend still holds in a queue; the backend's claim (QUEUED -> ISSUED)
 * fails then and it simply lets go of the slot.
 *
 * A request runs as a short list of stages (io, codec), each done by an executor (the backend,
 * or the codec pool in io_codec.c) that claims it QUEUED -> ISSUED, works, and retires it. When
 * a stage ends OK and another follows, dsd_io_retire() hands the request on (state back to
 * QUEUED, the executor's reference passed along) instead of reporting it, so cancel() works the
 * same between stages as before the first. Compressed requests first wait (QUEUED, in the
 * engine's FIFO, under the engine lock) for staging space.
 */
#ifndef DSD_IO_BACKEND_H
#define DSD_IO_BACKEND_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "io_engine.h"
#include "io_staging.h"

enum dsd_io_req_state {
    DSD_REQ_QUEUED = 0,    /* in a backend queue, not started */
    DSD_REQ_ISSUED = 1,    /* claimed by a backend thread: reading */
    DSD_REQ_CANCELLED = 2, /* cancelled (or dropped) before it started; the backend lets go */
};

struct dsd_io_client;

/* What a stage does. */
enum dsd_io_stage {
    DSD_STAGE_IO = 1,    /* the backend: read / write / fsync (req->op) */
    DSD_STAGE_CODEC = 2, /* the codec pool: copy, decode or encode (req->codec) */
};

enum dsd_io_codec_job {
    DSD_CODEC_COPY = 1,   /* MEMORY source, no compression: memmove */
    DSD_CODEC_DECODE = 2, /* csrc -> cdst (a MEMORY source is first copied into staging) */
    DSD_CODEC_ENCODE = 3, /* csrc -> staging; the io stage then writes the staging bytes */
};

#define DSD_IO_MSG_LEN 120

struct dsd_io_req {
    struct dsd_io_req *next;         /* backend queue link */
    struct dsd_io_req *done_next;    /* client's completion list */
    struct dsd_io_req *lprev, *lnext; /* client's live list (engine lock) */
    struct dsd_io_client *client;
    struct dsd_io_req *wprev, *wnext; /* engine FIFO of requests waiting for staging (engine lock) */
    struct dsd_io_file *file;
    struct dsd_io_region *region;    /* READ: destination region; WRITE: source region */
    struct dsd_io_region *src_region; /* READ from MEMORY: the source region */
    uint8_t *buf;                    /* io stage: where a read lands / a write comes from */
    uint64_t offset;                 /* file offset of the first byte */
    uint64_t seq;                    /* engine-unique, tells reused slots apart (io_uring cancel);
                                        accessed with __atomic builtins, a late cancel reads it racily */
    uint64_t request_id;
    uint64_t cancel_tag;
    uint32_t size;                   /* io stage: bytes to read / write */
    uint32_t done;                   /* io stage: bytes moved so far; when reported, bytes delivered */
    uint8_t *staging;                /* staging pages held (engine lock), or NULL */
    uint64_t staging_len;            /* bytes asked for (> 0 when the request needs staging) */
    const uint8_t *csrc;             /* codec stage input */
    uint8_t *cdst;                   /* codec stage output (DECODE/COPY) */
    uint32_t csrc_len, cdst_len;     /* cdst_len: exact output size (DECODE/COPY), or the limit (ENCODE, 0 none) */
    atomic_int state;                /* enum dsd_io_req_state */
    atomic_int owners;
    atomic_int cancel_requested;     /* set by cancel() on an ISSUED request */
    int error;                       /* result, set by the backend */
    uint8_t status;
    uint8_t reason;
    uint8_t direct;                  /* current read/write uses O_DIRECT */
    uint8_t op;                      /* io stage: DSD_OP_READ / WRITE / FSYNC */
    uint8_t io_fixed;                /* buf lies in `region` (io_uring may use it registered) */
    uint8_t codec;                   /* enum dsd_io_codec_job */
    uint8_t compression;             /* enum dsd_compression */
    int8_t level;                    /* ENCODE */
    uint8_t copy_in;                 /* DECODE from MEMORY: copy csrc into staging first */
    uint8_t waiting;                 /* in the staging FIFO */
    uint8_t stage, nstages;
    uint8_t stages[2];               /* enum dsd_io_stage */
    uint16_t ring;                   /* io_uring: ring that holds it (atomic accesses: see seq) */
    char msg[DSD_IO_MSG_LEN];        /* why it failed, in words ("" when errno/reason say it all) */
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

struct dsd_io_codec_pool;
/* The codec stage's executor (io_codec.c): same contract as a backend. */
int dsd_io_codec_start(struct dsd_io_engine *e, unsigned threads, struct dsd_io_codec_pool **out, char *reason,
                       size_t reason_len);
void dsd_io_codec_enqueue(struct dsd_io_codec_pool *p, struct dsd_io_req **reqs, size_t n);
void dsd_io_codec_stop(struct dsd_io_codec_pool *p);   /* finish running jobs, queued ones SHUTDOWN, join */
void dsd_io_codec_free(struct dsd_io_codec_pool *p);
/* Worst-case compressed size of len bytes (0: too large for the format); level in range? */
uint64_t dsd_io_codec_bound(int compression, uint32_t len);
int dsd_io_codec_level_ok(int compression, int level);

struct dsd_io_engine {
    struct dsd_io_config cfg;
    const struct dsd_io_backend_ops *ops;
    void *backend;
    char reason[256];
    int efd;

    pthread_mutex_t lock; /* clients, live lists, completion lists, staging, counters below */
    pthread_cond_t idle;  /* submitters == 0 and advancing == 0 */
    struct dsd_io_client **clients;
    size_t nclients, cap_clients;
    int closing, closed;
    unsigned submitters;
    unsigned advancing;   /* threads handing requests to their next stage outside the lock */
    int draining;         /* close() began: finished stages report SHUTDOWN instead of advancing */
    struct dsd_io_codec_pool *codec;
    struct dsd_io_staging staging;
    struct dsd_io_req *wait_head, *wait_tail; /* FIFO waiting for staging */
    uint64_t n_staging_waits;
    bool signaled;        /* eventfd written since the last reap */
    uint64_t held_since;  /* CLOCK_MONOTONIC ns of the oldest completion held unsignalled, 0 none */
    uint64_t n_completed, n_failed, n_cancelled, n_dropped, n_bytes, n_rejected, n_pending;

    pthread_mutex_t pool_lock;
    struct dsd_io_req *pool_free;
    void **slabs;
    size_t nslabs, cap_slabs;
    uint64_t next_seq;

    atomic_uint_fast64_t n_submitted, n_in_flight;
    atomic_uint_fast64_t n_direct, n_buffered, n_short, n_retries, n_fixed_files, n_fixed_bufs;
    atomic_uint_fast64_t n_writes, n_bytes_written, n_fsyncs, n_decoded, n_decode_failures, n_encoded, n_copies;
    atomic_uint_fast64_t n_mapped, n_mapped_redone;
};

/* The longest a finished request waits, held back with others of its burst, before the reaper
 * is woken for it (dsd_io_retire_held; rings also cap a blocking wait at this). */
#define DSD_IO_HOLD_MAX_US 500u

static inline uint64_t dsd_io_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

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
/* The same; with `hold` the completions may be reported without an eventfd write while the
 * engine has other work (enum dsd_io_coalesce says until when). Returns true if it held a
 * signal: before the caller waits on anything for longer than DSD_IO_HOLD_MAX_US it must then
 * call dsd_io_signal_held() unless another executor is still working (so a reap is never left
 * waiting on work that already finished). */
bool dsd_io_retire_held(struct dsd_io_engine *e, struct dsd_io_req **reqs, size_t n, bool hold);
void dsd_io_signal_held(struct dsd_io_engine *e);
/* Whether finished requests are waiting unsignalled. */
bool dsd_io_holding(struct dsd_io_engine *e);

/* Stop-time helper: a queued request the backend will never start completes SHUTDOWN. */
static inline void dsd_io_req_shutdown(struct dsd_io_req *r)
{
    dsd_io_req_set(r, DSD_STATUS_CANCELLED, DSD_REASON_SHUTDOWN, 125 /* ECANCELED */);
}

/* Why the request failed, in words (kept for reap_ex). */
void dsd_io_req_msg(struct dsd_io_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Which fd a read (or write) of `len` bytes at `off` into (from) `buf` should use: O_DIRECT when allowed. */
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

/* Synchronous transfers (io_sync.c): the pread pool, and the mapped path's fallback. */
#define DSD_IO_SYNC_RETRIES 1000 /* EINTR / EAGAIN (and writes moving nothing) before giving up */
struct dsd_io_sync_counters {
    uint64_t direct, buffered, shorts, retries;
};
/* Reads (writes) r completely with pread (pwrite) from r->done on, or records why not. */
void dsd_io_transfer_sync(struct dsd_io_engine *e, struct dsd_io_req *r, struct dsd_io_sync_counters *k);
void dsd_io_sync_counters_flush(struct dsd_io_engine *e, const struct dsd_io_sync_counters *k);

/* The mapped read path (io_mapped.c), used by both backends on requests they claimed.
 * take() accepts a read whose pages were cached (true: the backend must not read it) and starts
 * loading its source; its copy runs at the next take() or drain(), which hand over the read
 * copied then (so one read's first cache misses overlap the copy before it: a random 4 KiB copy
 * waits mostly on those). confirm() settles a batch of copied reads (one fstat per file: a read the
 * file no longer covers, or whose copy faulted, is redone with pread) before the backend retires
 * them. `now` is dsd_io_mapped_clock(), read once per batch. */
struct dsd_io_mapped_pipe {
    struct dsd_io_req *q; /* taken, not yet copied */
    const uint8_t *src;
};
uint64_t dsd_io_mapped_clock(void);
bool dsd_io_mapped_take(struct dsd_io_engine *e, struct dsd_io_mapped_pipe *pipe, struct dsd_io_req *q, uint64_t now,
                        struct dsd_io_req **copied);
struct dsd_io_req *dsd_io_mapped_drain(struct dsd_io_mapped_pipe *pipe);
void dsd_io_mapped_confirm(struct dsd_io_engine *e, struct dsd_io_req **reqs, size_t n);
/* q, a read the backend finished OK through the page cache, left its pages cached: the path
 * may take them from now on. */
void dsd_io_mapped_adopt(const struct dsd_io_req *q);

#endif
