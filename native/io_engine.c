/*
 * The io engine's core (io_engine.h): parses and validates packed request batches, runs each
 * request through its stages (staging wait, io, codec), keeps each client's live requests and
 * completion list, cancels, and counts. Backends only move bytes; the codec pool only codes.
 *
 * Locking: one engine lock, taken once per submitted chunk, once per retired batch, once per
 * reap. The request pool has its own lock, also taken once per batch. Backends keep their own
 * queue locks, always taken after (never while waiting for) the engine lock.
 */
#define _GNU_SOURCE
#include "io_backend.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SUBMIT_CHUNK 256
#define SLAB_REQS 512

struct dsd_io_client {
    uint64_t key;
    size_t refs;                 /* map membership + requests that will report or wait in done */
    bool dropped;
    struct dsd_io_req *live;     /* handed to the backend, not yet finished */
    struct dsd_io_req *done_head, *done_tail;
    size_t ndone;
};

unsigned dsd_io_online_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return (unsigned)n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* ---- request pool: slabs that live as long as the engine, so a stale pointer to a reused
 * slot is still a slot (io_uring cancel checks `seq` before trusting it) ---- */

static int pool_get(struct dsd_io_engine *e, struct dsd_io_req **out, size_t n)
{
    pthread_mutex_lock(&e->pool_lock);
    size_t got = 0;
    while (got < n) {
        if (e->pool_free == NULL) {
            if (e->nslabs == e->cap_slabs) {
                size_t ncap = e->cap_slabs ? e->cap_slabs * 2 : 16;
                void **s = realloc(e->slabs, ncap * sizeof(*s));
                if (s == NULL)
                    break;
                e->slabs = s;
                e->cap_slabs = ncap;
            }
            struct dsd_io_req *slab = calloc(SLAB_REQS, sizeof(*slab));
            if (slab == NULL)
                break;
            e->slabs[e->nslabs++] = slab;
            for (size_t i = 0; i < SLAB_REQS; i++) {
                slab[i].next = e->pool_free;
                e->pool_free = &slab[i];
            }
        }
        struct dsd_io_req *r = e->pool_free;
        e->pool_free = r->next;
        __atomic_store_n(&r->seq, ++e->next_seq, __ATOMIC_RELAXED); /* read by io_uring cancel racily */
        out[got++] = r;
    }
    if (got < n) {
        for (size_t i = 0; i < got; i++) {
            out[i]->next = e->pool_free;
            e->pool_free = out[i];
        }
        pthread_mutex_unlock(&e->pool_lock);
        return -ENOMEM;
    }
    pthread_mutex_unlock(&e->pool_lock);
    return 0;
}

/* Requests whose owners reached zero, chained through `next`, go back to the pool together. */
struct freelist {
    struct dsd_io_req *head, *tail;
};

static void freelist_drop(struct freelist *fl, struct dsd_io_req *r)
{
    if (atomic_fetch_sub_explicit(&r->owners, 1, memory_order_acq_rel) != 1)
        return;
    r->next = NULL;
    if (fl->tail)
        fl->tail->next = r;
    else
        fl->head = r;
    fl->tail = r;
}

static void freelist_flush(struct dsd_io_engine *e, struct freelist *fl)
{
    if (fl->head == NULL)
        return;
    pthread_mutex_lock(&e->pool_lock);
    fl->tail->next = e->pool_free;
    e->pool_free = fl->head;
    pthread_mutex_unlock(&e->pool_lock);
    fl->head = fl->tail = NULL;
}

static void req_init(struct dsd_io_req *r, const struct dsd_request_record *rec)
{
    /* Field by field, not memset: an io_uring ring may still read seq/state/ring of a reused
     * slot (a late cancel command), and those are accessed atomically. */
    r->next = r->done_next = r->lprev = r->lnext = NULL;
    r->wprev = r->wnext = NULL;
    r->client = NULL;
    r->file = NULL;
    r->region = NULL;
    r->src_region = NULL;
    r->buf = NULL;
    r->offset = 0;
    r->request_id = rec->request_id;
    r->cancel_tag = rec->cancel_tag;
    r->size = 0;
    r->done = 0;
    r->staging = NULL;
    r->staging_len = 0;
    r->csrc = NULL;
    r->cdst = NULL;
    r->csrc_len = r->cdst_len = 0;
    atomic_store_explicit(&r->state, DSD_REQ_QUEUED, memory_order_relaxed);
    atomic_store_explicit(&r->owners, 1, memory_order_relaxed);
    atomic_store_explicit(&r->cancel_requested, 0, memory_order_relaxed);
    r->error = 0;
    r->status = 0;
    r->reason = 0;
    r->direct = 0;
    r->op = 0;
    r->io_fixed = 0;
    r->codec = 0;
    r->compression = 0;
    r->level = 0;
    r->copy_in = 0;
    r->waiting = 0;
    r->stage = r->nstages = 0;
    r->stages[0] = r->stages[1] = 0;
    r->msg[0] = '\0';
    r->orig = *rec;
}

/* ---- clients (engine lock held) ---- */

static struct dsd_io_client *client_find(struct dsd_io_engine *e, uint64_t key, size_t *index)
{
    for (size_t i = 0; i < e->nclients; i++) {
        if (e->clients[i]->key == key) {
            if (index)
                *index = i;
            return e->clients[i];
        }
    }
    return NULL;
}

static struct dsd_io_client *client_get_or_add(struct dsd_io_engine *e, uint64_t key)
{
    struct dsd_io_client *c = client_find(e, key, NULL);
    if (c)
        return c;
    if (e->nclients == e->cap_clients) {
        size_t ncap = e->cap_clients ? e->cap_clients * 2 : 16;
        struct dsd_io_client **a = realloc(e->clients, ncap * sizeof(*a));
        if (a == NULL)
            return NULL;
        e->clients = a;
        e->cap_clients = ncap;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->key = key;
    c->refs = 1;
    e->clients[e->nclients++] = c;
    return c;
}

static void client_unmap(struct dsd_io_engine *e, size_t index)
{
    e->clients[index] = e->clients[--e->nclients];
}

static void client_unref(struct dsd_io_client *c, size_t n)
{
    c->refs -= n;
    if (c->refs == 0)
        free(c);
}

static void live_link(struct dsd_io_client *c, struct dsd_io_req *r)
{
    r->lprev = NULL;
    r->lnext = c->live;
    if (c->live)
        c->live->lprev = r;
    c->live = r;
}

static void live_unlink(struct dsd_io_client *c, struct dsd_io_req *r)
{
    if (r->lprev)
        r->lprev->lnext = r->lnext;
    else
        c->live = r->lnext;
    if (r->lnext)
        r->lnext->lprev = r->lprev;
    r->lprev = r->lnext = NULL;
}

static uint32_t hresult_for(uint8_t reason, int error)
{
    switch (reason) {
    case DSD_REASON_NONE: return 0;
    case DSD_REASON_IO: return dsd_hresult_from_errno(error);
    case DSD_REASON_EOF: return DSD_E_END_OF_FILE;
    case DSD_REASON_BAD_FILE: return DSD_E_FILE_NOT_OPEN;
    case DSD_REASON_BAD_REGION: return DSD_E_ACCESS_VIOLATION;
    case DSD_REASON_REGION_BOUNDS: return DSD_E_ACCESS_VIOLATION;
    case DSD_REASON_SIZE_MISMATCH: return DSD_E_INVALID_DESTINATION_SIZE;
    case DSD_REASON_UNSUPPORTED: return DSD_E_NOTIMPL;
    case DSD_REASON_RESERVED: return DSD_E_RESERVED_FIELDS;
    case DSD_REASON_DECOMPRESS: return DSD_E_DECOMPRESSION_ERROR;
    case DSD_REASON_TOO_LARGE: return DSD_E_REQUEST_TOO_LARGE;
    case DSD_REASON_CANCELLED: return DSD_E_ABORT;
    case DSD_REASON_SHUTDOWN: return DSD_E_ABORT;
    default: return DSD_E_FAIL;
    }
}

/* Report r (result fields set) to its client, consuming the report reference. Returns true if
 * the eventfd must be written. */
static bool report_locked(struct dsd_io_engine *e, struct dsd_io_req *r, struct freelist *fl)
{
    struct dsd_io_client *c = r->client;
    r->client = NULL;
    if (c->dropped) {
        e->n_dropped++;
        client_unref(c, 1);
        freelist_drop(fl, r);
        return false;
    }
    switch (r->status) {
    case DSD_STATUS_OK:
        e->n_completed++;
        e->n_bytes += r->done;
        if (r->orig.op == DSD_OP_WRITE) {
            atomic_fetch_add_explicit(&e->n_writes, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&e->n_bytes_written, r->done, memory_order_relaxed);
        } else if (r->orig.op == DSD_OP_FSYNC) {
            atomic_fetch_add_explicit(&e->n_fsyncs, 1, memory_order_relaxed);
        }
        break;
    case DSD_STATUS_CANCELLED: e->n_cancelled++; break;
    default: e->n_failed++; break;
    }
    struct dsd_completion_record *rec = &r->rec;
    memset(rec, 0, sizeof(*rec));
    rec->request_id = r->request_id;
    rec->bytes = r->status == DSD_STATUS_OK ? r->done : 0;
    rec->hresult = hresult_for(r->reason, r->error);
    rec->error = r->error;
    rec->status = r->status;
    rec->reason = r->reason;
    r->done_next = NULL;
    r->client = c; /* the completion list keeps the client reference until reap */
    if (c->done_tail)
        c->done_tail->done_next = r;
    else
        c->done_head = r;
    c->done_tail = r;
    c->ndone++;
    e->n_pending++;
    if (e->signaled)
        return false;
    e->signaled = true;
    return true;
}

static void signal_eventfd(struct dsd_io_engine *e)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already nonzero: readable anyway. */
    while (write(e->efd, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
}

void dsd_io_req_msg(struct dsd_io_req *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
}

/* File and region references (not staging: that needs the engine lock). */
static void release_resources(struct dsd_io_req *r)
{
    if (r->file) {
        dsd_io_file_put(r->file);
        r->file = NULL;
    }
    if (r->region) {
        dsd_io_region_put(r->region);
        r->region = NULL;
    }
    if (r->src_region) {
        dsd_io_region_put(r->src_region);
        r->src_region = NULL;
    }
}

/* ---- stages ---- */

/* Requests on their way to their next executor, collected under the lock, handed on after. */
struct handoff {
    struct dsd_io_req *io[SUBMIT_CHUNK];
    struct dsd_io_req *codec[SUBMIT_CHUNK];
    size_t nio, ncodec;
};

static void handoff_flush(struct dsd_io_engine *e, struct handoff *h)
{
    if (h->nio)
        e->ops->enqueue(e, h->io, h->nio);
    if (h->ncodec)
        dsd_io_codec_enqueue(e->codec, h->codec, h->ncodec);
    h->nio = h->ncodec = 0;
}

/* Outside the lock: r (QUEUED) goes to the executor of its current stage. */
static void handoff_add(struct dsd_io_engine *e, struct handoff *h, struct dsd_io_req *r)
{
    if (h->nio == SUBMIT_CHUNK || h->ncodec == SUBMIT_CHUNK)
        handoff_flush(e, h);
    if (r->stages[r->stage] == DSD_STAGE_IO)
        h->io[h->nio++] = r;
    else
        h->codec[h->ncodec++] = r;
}

/* A chain (through `next`) of requests that got staging: hand them on. */
static void handoff_chain(struct dsd_io_engine *e, struct handoff *h, struct dsd_io_req *chain)
{
    for (struct dsd_io_req *r = chain, *nx; r; r = nx) {
        nx = r->next;
        handoff_add(e, h, r);
    }
}

static void advancing_done(struct dsd_io_engine *e)
{
    pthread_mutex_lock(&e->lock);
    if (--e->advancing == 0 && e->submitters == 0)
        pthread_cond_broadcast(&e->idle);
    pthread_mutex_unlock(&e->lock);
}

/* Point the request's buffers at its staging pages. */
static void bind_staging(struct dsd_io_req *r)
{
    if (r->codec == DSD_CODEC_DECODE && !r->copy_in) {
        r->buf = r->staging; /* FILE: the read lands in staging, the decoder reads it there */
        r->csrc = r->staging;
    }
}

static void wait_unlink(struct dsd_io_engine *e, struct dsd_io_req *r)
{
    if (r->wprev)
        r->wprev->wnext = r->wnext;
    else
        e->wait_head = r->wnext;
    if (r->wnext)
        r->wnext->wprev = r->wprev;
    else
        e->wait_tail = r->wprev;
    r->wprev = r->wnext = NULL;
    r->waiting = 0;
}

/* Engine lock held. Staging for r now, or r joins the FIFO (false). */
static bool staging_take_locked(struct dsd_io_engine *e, struct dsd_io_req *r)
{
    if (e->wait_head == NULL) {
        r->staging = dsd_io_staging_alloc(&e->staging, r->staging_len);
        if (r->staging != NULL) {
            bind_staging(r);
            return true;
        }
    }
    r->waiting = 1;
    r->wnext = NULL;
    r->wprev = e->wait_tail;
    if (e->wait_tail)
        e->wait_tail->wnext = r;
    else
        e->wait_head = r;
    e->wait_tail = r;
    e->n_staging_waits++;
    return false;
}

/* Engine lock held. r's staging goes back; waiters that fit now (FIFO order, so a large request
 * is never starved by small ones) are chained onto *granted for the caller to hand on. */
static void staging_put_locked(struct dsd_io_engine *e, struct dsd_io_req *r, struct dsd_io_req **granted)
{
    if (r->staging == NULL)
        return;
    dsd_io_staging_free(&e->staging, r->staging, r->staging_len);
    r->staging = NULL;
    while (e->wait_head) {
        struct dsd_io_req *w = e->wait_head;
        uint8_t *p = dsd_io_staging_alloc(&e->staging, w->staging_len);
        if (p == NULL)
            break;
        wait_unlink(e, w);
        w->staging = p;
        bind_staging(w);
        w->next = *granted;
        *granted = w;
    }
}

static bool advances(const struct dsd_io_req *r)
{
    return r->status == DSD_STATUS_OK && r->stage + 1 < r->nstages;
}

void dsd_io_retire(struct dsd_io_engine *e, struct dsd_io_req **reqs, size_t n)
{
    dsd_io_retire_held(e, reqs, n, false);
}

bool dsd_io_retire_held(struct dsd_io_engine *e, struct dsd_io_req **reqs, size_t n, bool hold)
{
    struct freelist fl = {0};
    struct handoff h;
    struct dsd_io_req *granted = NULL;
    size_t nretired = 0;
    bool sig = false;
    h.nio = h.ncodec = 0;
    /* Resources first: nothing reads them any more, and munmap/close stay out of the lock. */
    for (size_t i = 0; i < n; i++)
        if (atomic_load_explicit(&reqs[i]->state, memory_order_acquire) == DSD_REQ_ISSUED && !advances(reqs[i]))
            release_resources(reqs[i]);
    struct dsd_io_req *next_stage = NULL; /* chained through `next` */
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < n; i++) {
        struct dsd_io_req *r = reqs[i];
        if (atomic_load_explicit(&r->state, memory_order_acquire) == DSD_REQ_ISSUED) {
            if (advances(r)) {
                if (!e->draining) {
                    /* on to the next stage: the executor's reference goes with it */
                    r->stage++;
                    atomic_store_explicit(&r->state, DSD_REQ_QUEUED, memory_order_release);
                    r->next = next_stage;
                    next_stage = r;
                    continue;
                }
                dsd_io_req_shutdown(r); /* closing: the next stage will not run */
                release_resources(r);
            }
            staging_put_locked(e, r, &granted);
            live_unlink(r->client, r);
            sig |= report_locked(e, r, &fl);
        }
        freelist_drop(&fl, r); /* the executor's reference */
        nretired++;
    }
    bool handing = next_stage != NULL || granted != NULL;
    if (handing)
        e->advancing++;
    /* Under the lock, so the request that empties the engine sees left == 0 and signals. */
    uint64_t left = atomic_fetch_sub_explicit(&e->n_in_flight, nretired, memory_order_relaxed) - nretired;
    bool held = false;
    bool halves = e->cfg.coalesce == DSD_IO_COALESCE_HALVES;
    if (hold && (sig || !e->signaled) && e->n_pending && left > 0 && !(halves && e->n_pending >= left)) {
        /* Reported but not signalled while the engine still has work (enum dsd_io_coalesce):
         * each wake-up costs the daemon a trip round its event loop and a message per client,
         * so completions go out together when the engine runs dry, once they are at least what
         * is left running (HALVES), or once the oldest has waited DSD_IO_HOLD_MAX_US. The caller
         * promises dsd_io_signal_held() before it blocks. */
        uint64_t now = dsd_io_now_ns();
        if (e->held_since == 0)
            e->held_since = now;
        if (now - e->held_since < DSD_IO_HOLD_MAX_US * 1000ull) {
            e->signaled = false;
            held = true;
            sig = false;
        } else if (!e->signaled) {
            e->signaled = true;
            sig = true;
        }
    } else if (!e->signaled && e->n_pending) {
        e->signaled = true; /* something held earlier: this retire lets it go */
        sig = true;
    }
    if (sig)
        e->held_since = 0;
    pthread_mutex_unlock(&e->lock);
    if (sig)
        signal_eventfd(e);
    freelist_flush(e, &fl);
    if (handing) {
        handoff_chain(e, &h, next_stage);
        handoff_chain(e, &h, granted);
        handoff_flush(e, &h);
        advancing_done(e);
    }
    return held;
}

bool dsd_io_holding(struct dsd_io_engine *e)
{
    pthread_mutex_lock(&e->lock);
    bool held = e->n_pending && !e->signaled;
    pthread_mutex_unlock(&e->lock);
    return held;
}

void dsd_io_signal_held(struct dsd_io_engine *e)
{
    pthread_mutex_lock(&e->lock);
    bool sig = e->n_pending && !e->signaled;
    if (sig) {
        e->signaled = true;
        e->held_since = 0;
    }
    pthread_mutex_unlock(&e->lock);
    if (sig)
        signal_eventfd(e);
}

/* ---- validation ---- */

static bool reject(struct dsd_io_req *r, uint8_t reason, int err)
{
    dsd_io_req_set(r, DSD_STATUS_FAILED, reason, err);
    return false;
}

/* The request's stages, in order. */
static void set_stages(struct dsd_io_req *r, uint8_t first, uint8_t second)
{
    r->stages[0] = first;
    r->stages[1] = second;
    r->nstages = second ? 2 : 1;
    r->stage = 0;
}

static bool region_range_ok(const struct dsd_io_region *g, uint64_t off, uint32_t size)
{
    return off <= g->size && size <= g->size - off;
}

static bool validate_read(struct dsd_io_engine *e, struct dsd_io_registry *reg, const struct dsd_request_record *rec,
                          struct dsd_io_req *r)
{
    bool packed = rec->compression != DSD_COMPRESSION_NONE;
    if (!packed && (rec->dst_size != rec->src_size || (rec->uncompressed_size != 0 && rec->uncompressed_size != rec->dst_size)))
        return reject(r, DSD_REASON_SIZE_MISMATCH, EINVAL);
    if (packed) {
        if (rec->uncompressed_size != rec->dst_size)
            return reject(r, DSD_REASON_SIZE_MISMATCH, EINVAL);
        if (rec->src_size > e->staging.limit || rec->dst_size > e->staging.limit) {
            dsd_io_req_msg(r, "%u compressed / %u uncompressed bytes do not fit the %llu-byte staging buffer",
                           rec->src_size, rec->dst_size, (unsigned long long)e->staging.limit);
            return reject(r, DSD_REASON_TOO_LARGE, ENOBUFS);
        }
    }
    struct dsd_io_file *f = NULL;
    struct dsd_io_region *src = NULL;
    if (rec->source_type == DSD_SOURCE_FILE) {
        f = dsd_io_registry_file_locked(reg, rec->src_id);
        if (f == NULL)
            return reject(r, DSD_REASON_BAD_FILE, EBADF);
    } else {
        src = dsd_io_registry_region_locked(reg, rec->src_id);
        if (src == NULL)
            return reject(r, DSD_REASON_BAD_REGION, ENOENT);
    }
    struct dsd_io_region *g = dsd_io_registry_region_locked(reg, rec->dst_id);
    if (g == NULL)
        return reject(r, DSD_REASON_BAD_REGION, ENOENT);
    if (!region_range_ok(g, rec->dst_offset, rec->dst_size))
        return reject(r, DSD_REASON_REGION_BOUNDS, EFAULT);
    if (f != NULL) {
        uint64_t limit = INT64_MAX;
        if (f->sized) {
            int rc = dsd_io_registry_file_size_locked(reg, f, &limit);
            if (rc < 0)
                return reject(r, DSD_REASON_IO, -rc);
        }
        if (rec->src_offset > limit || rec->src_size > limit - rec->src_offset)
            return reject(r, DSD_REASON_EOF, 0);
    } else if (!region_range_ok(src, rec->src_offset, rec->src_size)) {
        return reject(r, DSD_REASON_REGION_BOUNDS, EFAULT);
    }
    if (rec->src_size == 0) {
        if (!packed) {
            dsd_io_req_set(r, DSD_STATUS_OK, DSD_REASON_NONE, 0);
            return false; /* complete at once, nothing to read */
        }
        dsd_io_req_msg(r, "an empty source is no compressed stream");
        return reject(r, DSD_REASON_DECOMPRESS, EBADMSG);
    }
    dsd_io_region_get(g);
    r->region = g;
    r->compression = rec->compression;
    uint8_t *dst = g->base + rec->dst_offset;
    if (f != NULL) {
        dsd_io_file_get(f);
        r->file = f;
        r->op = DSD_OP_READ;
        r->offset = rec->src_offset;
        r->size = rec->src_size;
        if (!packed) {
            r->buf = dst;
            r->io_fixed = 1;
            set_stages(r, DSD_STAGE_IO, 0);
        } else {
            r->codec = DSD_CODEC_DECODE;
            r->staging_len = rec->src_size;
            r->csrc_len = rec->src_size;
            r->cdst = dst;
            r->cdst_len = rec->dst_size;
            set_stages(r, DSD_STAGE_IO, DSD_STAGE_CODEC);
        }
    } else {
        dsd_io_region_get(src);
        r->src_region = src;
        r->csrc = src->base + rec->src_offset;
        r->csrc_len = rec->src_size;
        r->cdst = dst;
        r->cdst_len = rec->dst_size;
        r->codec = packed ? DSD_CODEC_DECODE : DSD_CODEC_COPY;
        if (packed) {
            r->copy_in = 1;
            r->staging_len = rec->src_size;
        }
        set_stages(r, DSD_STAGE_CODEC, 0);
    }
    return true;
}

static bool validate_write(struct dsd_io_engine *e, struct dsd_io_registry *reg, const struct dsd_request_record *rec,
                           struct dsd_io_req *r)
{
    bool packed = rec->compression != DSD_COMPRESSION_NONE;
    uint64_t bound = rec->src_size;
    if (!packed && (rec->dst_size != rec->src_size || (rec->uncompressed_size != 0 && rec->uncompressed_size != rec->src_size)))
        return reject(r, DSD_REASON_SIZE_MISMATCH, EINVAL);
    if (packed) {
        if (rec->uncompressed_size != rec->src_size)
            return reject(r, DSD_REASON_SIZE_MISMATCH, EINVAL);
        if (!dsd_io_codec_level_ok(rec->compression, rec->level)) {
            dsd_io_req_msg(r, "level %d is not a %s level", rec->level,
                           rec->compression == DSD_COMPRESSION_GDEFLATE ? "GDeflate" : "Zstandard");
            return reject(r, DSD_REASON_UNSUPPORTED, EINVAL);
        }
        bound = dsd_io_codec_bound(rec->compression, rec->src_size);
        if (rec->src_size > e->staging.limit || bound == 0 || bound > e->staging.limit) {
            dsd_io_req_msg(r, "%u bytes (up to %llu compressed) do not fit the %llu-byte staging buffer", rec->src_size,
                           (unsigned long long)bound, (unsigned long long)e->staging.limit);
            return reject(r, DSD_REASON_TOO_LARGE, ENOBUFS);
        }
    }
    struct dsd_io_region *src = dsd_io_registry_region_locked(reg, rec->src_id);
    if (src == NULL)
        return reject(r, DSD_REASON_BAD_REGION, ENOENT);
    if (!region_range_ok(src, rec->src_offset, rec->src_size))
        return reject(r, DSD_REASON_REGION_BOUNDS, EFAULT);
    struct dsd_io_file *f = dsd_io_registry_file_locked(reg, rec->dst_id);
    if (f == NULL)
        return reject(r, DSD_REASON_BAD_FILE, EBADF);
    if (!f->writable) {
        dsd_io_req_msg(r, "file %u was not opened for writing", rec->dst_id);
        return reject(r, DSD_REASON_IO, EBADF);
    }
    uint64_t most = packed && rec->dst_size != 0 && rec->dst_size < bound ? rec->dst_size : bound;
    if (rec->dst_offset > INT64_MAX || most > INT64_MAX - rec->dst_offset)
        return reject(r, DSD_REASON_IO, EFBIG);
    if (!packed && rec->src_size == 0) {
        dsd_io_req_set(r, DSD_STATUS_OK, DSD_REASON_NONE, 0);
        return false;
    }
    dsd_io_region_get(src);
    dsd_io_file_get(f);
    r->region = src;
    r->file = f;
    r->op = DSD_OP_WRITE;
    r->offset = rec->dst_offset;
    r->compression = rec->compression;
    if (!packed) {
        r->buf = src->base + rec->src_offset;
        r->size = rec->src_size;
        r->io_fixed = 1;
        set_stages(r, DSD_STAGE_IO, 0);
    } else {
        r->codec = DSD_CODEC_ENCODE;
        r->level = rec->level;
        r->csrc = src->base + rec->src_offset;
        r->csrc_len = rec->src_size;
        r->cdst_len = rec->dst_size; /* the most the file may take; 0 = no limit */
        r->staging_len = bound;
        set_stages(r, DSD_STAGE_CODEC, DSD_STAGE_IO);
    }
    return true;
}

static bool validate_fsync(struct dsd_io_registry *reg, const struct dsd_request_record *rec, struct dsd_io_req *r)
{
    if (rec->compression != DSD_COMPRESSION_NONE)
        return reject(r, DSD_REASON_UNSUPPORTED, EOPNOTSUPP);
    if (rec->src_size != 0 || rec->dst_size != 0 || rec->uncompressed_size != 0)
        return reject(r, DSD_REASON_SIZE_MISMATCH, EINVAL);
    struct dsd_io_file *f = dsd_io_registry_file_locked(reg, rec->dst_id);
    if (f == NULL)
        return reject(r, DSD_REASON_BAD_FILE, EBADF);
    dsd_io_file_get(f);
    r->file = f;
    r->op = DSD_OP_FSYNC;
    set_stages(r, DSD_STAGE_IO, 0);
    return true;
}

/* The one place requests are checked (docs/io-engine.md lists the rules in this order). True:
 * r holds its references and stages and goes on; false: r's result is set (failed, or done). */
static bool validate(struct dsd_io_engine *e, struct dsd_io_registry *reg, const struct dsd_request_record *rec,
                     struct dsd_io_req *r)
{
    if (rec->flags != 0 || rec->reserved != 0)
        return reject(r, DSD_REASON_RESERVED, EINVAL);
    if (rec->op > DSD_OP_FSYNC || rec->compression > DSD_COMPRESSION_ZSTD || rec->source_type > DSD_SOURCE_MEMORY)
        return reject(r, DSD_REASON_UNSUPPORTED, EOPNOTSUPP);
    switch (rec->op) {
    case DSD_OP_READ: return validate_read(e, reg, rec, r);
    case DSD_OP_WRITE: return validate_write(e, reg, rec, r); /* the source is a region whatever source_type says */
    default: return validate_fsync(reg, rec, r);
    }
}

int dsd_io_engine_submit(struct dsd_io_engine *e, struct dsd_io_registry *reg, uint64_t client_key,
                         const void *records, size_t n, size_t *accepted)
{
    const unsigned char *p = records;
    struct dsd_io_req *reqs[SUBMIT_CHUNK];
    bool go[SUBMIT_CHUNK];
    struct handoff h;
    h.nio = h.ncodec = 0;
    *accepted = 0;

    pthread_mutex_lock(&e->lock);
    if (e->closing) {
        pthread_mutex_unlock(&e->lock);
        return -ESHUTDOWN;
    }
    e->submitters++;
    pthread_mutex_unlock(&e->lock);

    int rc = 0;
    for (size_t base = 0; base < n; base += SUBMIT_CHUNK) {
        size_t m = n - base < SUBMIT_CHUNK ? n - base : SUBMIT_CHUNK;
        rc = pool_get(e, reqs, m);
        if (rc < 0)
            break;
        size_t nq = 0, nfail = 0;
        dsd_io_registry_lock(reg);
        for (size_t i = 0; i < m; i++) {
            struct dsd_request_record rec;
            memcpy(&rec, p + (base + i) * sizeof(rec), sizeof(rec)); /* the buffer may be unaligned */
            struct dsd_io_req *r = reqs[i];
            req_init(r, &rec);
            go[i] = validate(e, reg, &rec, r);
            if (go[i]) {
                atomic_store_explicit(&r->owners, 2, memory_order_relaxed); /* executor + completion list */
                nq++;
            } else if (r->status != DSD_STATUS_OK) {
                nfail++;
            }
        }
        dsd_io_registry_unlock(reg);
        /* counted before any of them can finish */
        atomic_fetch_add_explicit(&e->n_in_flight, nq, memory_order_relaxed);

        struct freelist fl = {0};
        bool sig = false;
        pthread_mutex_lock(&e->lock);
        struct dsd_io_client *c = client_get_or_add(e, client_key);
        if (c == NULL) {
            pthread_mutex_unlock(&e->lock);
            for (size_t i = 0; i < m; i++) {
                release_resources(reqs[i]);
                atomic_store_explicit(&reqs[i]->owners, 1, memory_order_relaxed);
                freelist_drop(&fl, reqs[i]);
            }
            freelist_flush(e, &fl);
            atomic_fetch_sub_explicit(&e->n_in_flight, nq, memory_order_relaxed);
            rc = -ENOMEM;
            break;
        }
        c->refs += m;
        size_t nstart = 0;
        for (size_t i = 0; i < m; i++) {
            struct dsd_io_req *r = reqs[i];
            r->client = c;
            if (!go[i]) {
                sig |= report_locked(e, r, &fl); /* rejected or 0-byte: complete now */
                continue;
            }
            live_link(c, r);
            if (r->staging_len == 0 || staging_take_locked(e, r))
                reqs[nstart++] = r; /* the rest wait in the staging FIFO */
        }
        e->n_rejected += nfail;
        pthread_mutex_unlock(&e->lock);
        if (sig)
            signal_eventfd(e);
        freelist_flush(e, &fl);
        atomic_fetch_add_explicit(&e->n_submitted, m, memory_order_relaxed);
        for (size_t i = 0; i < nstart; i++)
            handoff_add(e, &h, reqs[i]);
        handoff_flush(e, &h);
        *accepted += m - nfail;
    }

    pthread_mutex_lock(&e->lock);
    if (--e->submitters == 0 && e->advancing == 0)
        pthread_cond_broadcast(&e->idle);
    pthread_mutex_unlock(&e->lock);
    return rc;
}

/* ---- reap ---- */

struct taken {
    struct dsd_io_client *client;
    struct dsd_io_req *head, *tail;
    size_t n;
};

struct reap_adapter {
    dsd_io_reap_fn fn;
    void *ctx;
};

static int reap_without_messages(void *ctx, uint64_t key, const struct dsd_completion_record *recs, size_t n,
                                 const struct dsd_request_record *failed, const char *const *messages, size_t nfailed)
{
    (void)messages;
    struct reap_adapter *a = ctx;
    return a->fn(a->ctx, key, recs, n, failed, nfailed);
}

int dsd_io_engine_reap(struct dsd_io_engine *e, dsd_io_reap_fn fn, void *ctx)
{
    struct reap_adapter a = {fn, ctx};
    return dsd_io_engine_reap_ex(e, reap_without_messages, &a);
}

int dsd_io_engine_reap_ex(struct dsd_io_engine *e, dsd_io_reap_ex_fn fn, void *ctx)
{
    uint64_t v;
    /* Drain first: whatever is reported after this point writes the eventfd again. */
    while (read(e->efd, &v, sizeof(v)) < 0 && errno == EINTR) {
    }

    pthread_mutex_lock(&e->lock);
    e->signaled = false;
    e->held_since = 0;
    size_t cap = e->nclients;
    struct taken *t = cap ? malloc(cap * sizeof(*t)) : NULL;
    if (cap && t == NULL) {
        pthread_mutex_unlock(&e->lock);
        return -ENOMEM;
    }
    size_t nt = 0;
    for (size_t i = 0; i < e->nclients;) {
        struct dsd_io_client *c = e->clients[i];
        if (c->ndone) {
            t[nt++] = (struct taken){c, c->done_head, c->done_tail, c->ndone};
            e->n_pending -= c->ndone;
            c->done_head = c->done_tail = NULL;
            c->ndone = 0;
            i++;
        } else if (c->live == NULL) {
            client_unmap(e, i); /* idle: forget it, it comes back with its next batch */
            client_unref(c, 1);
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&e->lock);

    int rc = 0;
    size_t k = 0;
    struct dsd_completion_record *buf = NULL;
    struct dsd_request_record *fbuf = NULL;
    const char **mbuf = NULL;
    size_t bufcap = 0;
    for (; k < nt && rc == 0; k++) {
        if (t[k].n > bufcap) {
            struct dsd_completion_record *nb = realloc(buf, t[k].n * sizeof(*nb));
            if (nb != NULL)
                buf = nb;
            struct dsd_request_record *nf = realloc(fbuf, t[k].n * sizeof(*nf));
            if (nf != NULL)
                fbuf = nf;
            const char **nm = realloc(mbuf, t[k].n * sizeof(*nm));
            if (nm != NULL)
                mbuf = nm;
            if (nb == NULL || nf == NULL || nm == NULL) {
                rc = -ENOMEM;
                break;
            }
            bufcap = t[k].n;
        }
        size_t j = 0, nfailed = 0;
        for (struct dsd_io_req *r = t[k].head; r; r = r->done_next) {
            buf[j++] = r->rec;
            if (r->rec.status == DSD_STATUS_FAILED) {
                mbuf[nfailed] = r->msg;
                fbuf[nfailed++] = r->orig;
            }
        }
        rc = fn(ctx, t[k].client->key, buf, t[k].n, fbuf, mbuf, nfailed);
    }
    free(buf);
    free(fbuf);
    free(mbuf);

    struct freelist fl = {0};
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < nt; i++) {
        struct dsd_io_client *c = t[i].client;
        if (i >= k && !c->dropped) {
            /* not handed out (an error stopped us): put back in front, order kept */
            t[i].tail->done_next = c->done_head;
            if (c->done_head == NULL)
                c->done_tail = t[i].tail;
            c->done_head = t[i].head;
            c->ndone += t[i].n;
            e->n_pending += t[i].n;
            continue;
        }
        for (struct dsd_io_req *r = t[i].head, *nx; r; r = nx) {
            nx = r->done_next;
            r->client = NULL;
            freelist_drop(&fl, r);
        }
        client_unref(c, t[i].n);
    }
    if (e->n_pending && !e->signaled) {
        e->signaled = true;
        pthread_mutex_unlock(&e->lock);
        signal_eventfd(e);
    } else {
        pthread_mutex_unlock(&e->lock);
    }
    freelist_flush(e, &fl);
    free(t);
    return rc;
}

/* ---- cancel / drop ---- */

/* A request waiting for staging belongs to the engine alone: the FIFO lets go of it here. */
static void forget_waiter_locked(struct dsd_io_engine *e, struct dsd_io_req *r, struct freelist *fl)
{
    wait_unlink(e, r);
    freelist_drop(fl, r); /* the FIFO's (executor's) reference */
    atomic_fetch_sub_explicit(&e->n_in_flight, 1, memory_order_relaxed);
}

static bool cancel_queued_locked(struct dsd_io_engine *e, struct dsd_io_client *c, struct dsd_io_req *r,
                                 struct freelist *fl, bool *sig, struct dsd_io_req **granted)
{
    int expected = DSD_REQ_QUEUED;
    if (!atomic_compare_exchange_strong(&r->state, &expected, DSD_REQ_CANCELLED))
        return false;
    if (r->waiting)
        forget_waiter_locked(e, r, fl);
    live_unlink(c, r);
    release_resources(r); /* an executor never touches a request it could not claim */
    staging_put_locked(e, r, granted);
    dsd_io_req_set(r, DSD_STATUS_CANCELLED, DSD_REASON_CANCELLED, ECANCELED);
    *sig |= report_locked(e, r, fl);
    return true;
}

/* After the lock: requests that got the staging a cancelled one gave back go on (the caller
 * counted itself in `advancing`). */
static void hand_on_granted(struct dsd_io_engine *e, struct dsd_io_req *granted)
{
    if (granted == NULL)
        return;
    struct handoff h;
    h.nio = h.ncodec = 0;
    handoff_chain(e, &h, granted);
    handoff_flush(e, &h);
    advancing_done(e);
}

static void cancel_issued_locked(struct dsd_io_engine *e, struct dsd_io_req *r)
{
    if (atomic_exchange(&r->cancel_requested, 1) == 0 && e->ops->cancel_issued)
        e->ops->cancel_issued(e, r);
}

int dsd_io_engine_cancel(struct dsd_io_engine *e, uint64_t client_key, uint64_t mask, uint64_t value, int by_id,
                         uint64_t id, size_t *count)
{
    struct freelist fl = {0};
    struct dsd_io_req *granted = NULL;
    bool sig = false;
    size_t n = 0, nq = 0;
    pthread_mutex_lock(&e->lock);
    struct dsd_io_client *c = client_find(e, client_key, NULL);
    for (struct dsd_io_req *r = c ? c->live : NULL, *nx; r; r = nx) {
        nx = r->lnext;
        bool match = by_id ? r->request_id == id : (r->cancel_tag & mask) == value;
        if (!match)
            continue;
        n++;
        if (cancel_queued_locked(e, c, r, &fl, &sig, &granted))
            nq++;
        else
            cancel_issued_locked(e, r);
    }
    if (granted)
        e->advancing++;
    pthread_mutex_unlock(&e->lock);
    if (sig)
        signal_eventfd(e);
    freelist_flush(e, &fl);
    hand_on_granted(e, granted);
    if (nq && e->ops->kick)
        e->ops->kick(e);
    *count = n;
    return 0;
}

int dsd_io_engine_drop_client(struct dsd_io_engine *e, uint64_t client_key)
{
    struct freelist fl = {0};
    struct dsd_io_req *granted = NULL;
    size_t idx, nq = 0;
    pthread_mutex_lock(&e->lock);
    struct dsd_io_client *c = client_find(e, client_key, &idx);
    if (c == NULL) {
        pthread_mutex_unlock(&e->lock);
        return 0;
    }
    client_unmap(e, idx);
    c->dropped = true;
    size_t unref = 1; /* the map's reference */
    for (struct dsd_io_req *r = c->live, *nx; r; r = nx) {
        nx = r->lnext;
        int expected = DSD_REQ_QUEUED;
        if (atomic_compare_exchange_strong(&r->state, &expected, DSD_REQ_CANCELLED)) {
            if (r->waiting)
                forget_waiter_locked(e, r, &fl);
            live_unlink(c, r);
            release_resources(r);
            staging_put_locked(e, r, &granted);
            r->client = NULL;
            e->n_dropped++;
            unref++;
            nq++;
            freelist_drop(&fl, r); /* its report will never be made */
        } else {
            cancel_issued_locked(e, r); /* reports it to nobody when it finishes */
        }
    }
    for (struct dsd_io_req *r = c->done_head, *nx; r; r = nx) {
        nx = r->done_next;
        r->client = NULL;
        unref++;
        freelist_drop(&fl, r);
    }
    e->n_pending -= c->ndone;
    c->done_head = c->done_tail = NULL;
    c->ndone = 0;
    client_unref(c, unref);
    if (granted)
        e->advancing++;
    pthread_mutex_unlock(&e->lock);
    freelist_flush(e, &fl);
    hand_on_granted(e, granted);
    if (nq && e->ops->kick)
        e->ops->kick(e);
    return 0;
}

/* ---- lifecycle ---- */

static void engine_free_memory(struct dsd_io_engine *e)
{
    for (size_t i = 0; i < e->nclients; i++) {
        struct dsd_io_client *c = e->clients[i];
        free(c); /* its requests live in the slabs, freed below */
    }
    free(e->clients);
    for (size_t i = 0; i < e->nslabs; i++)
        free(e->slabs[i]);
    free(e->slabs);
    dsd_io_staging_destroy(&e->staging);
    if (e->efd >= 0)
        close(e->efd);
    pthread_mutex_destroy(&e->lock);
    pthread_mutex_destroy(&e->pool_lock);
    pthread_cond_destroy(&e->idle);
    free(e);
}

static void stop_codec(struct dsd_io_engine *e)
{
    dsd_io_codec_stop(e->codec);
    dsd_io_codec_free(e->codec);
    e->codec = NULL;
}

int dsd_io_engine_new(const struct dsd_io_config *cfg, struct dsd_io_engine **out, char *reason, size_t reason_len)
{
    if (reason_len)
        reason[0] = '\0';
    if (cfg->backend < DSD_IO_BACKEND_AUTO || cfg->backend > DSD_IO_BACKEND_POSIX ||
        (cfg->direct != DSD_IO_DIRECT_AUTO && cfg->direct != DSD_IO_DIRECT_OFF) ||
        (cfg->register_mode != DSD_IO_REGISTER_AUTO && cfg->register_mode != DSD_IO_REGISTER_OFF) ||
        (cfg->mapped != DSD_IO_MAPPED_AUTO && cfg->mapped != DSD_IO_MAPPED_OFF) || cfg->queue_depth > 4096 ||
        cfg->workers > 256 || cfg->codec_workers > 256 || cfg->staging_bytes > DSD_IO_STAGING_MAX) {
        snprintf(reason, reason_len, "invalid engine configuration");
        return -EINVAL;
    }
    struct dsd_io_engine *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    e->cfg = *cfg;
    if (e->cfg.workers == 0)
        e->cfg.workers = dsd_io_online_cpus();
    if (e->cfg.queue_depth == 0)
        e->cfg.queue_depth = 64;
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->pool_lock, NULL);
    pthread_cond_init(&e->idle, NULL);
    e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e->efd < 0) {
        int rc = -errno;
        snprintf(reason, reason_len, "eventfd: %s", strerror(-rc));
        engine_free_memory(e);
        return rc;
    }
    int src = dsd_io_staging_init(&e->staging, cfg->staging_bytes);
    if (src < 0) {
        snprintf(reason, reason_len, "staging buffer of %llu bytes: %s", (unsigned long long)cfg->staging_bytes,
                 strerror(-src));
        engine_free_memory(e);
        return src;
    }
    if (e->cfg.codec_workers == 0)
        e->cfg.codec_workers = dsd_io_online_cpus();
    src = dsd_io_codec_start(e, e->cfg.codec_workers, &e->codec, reason, reason_len);
    if (src < 0) {
        engine_free_memory(e);
        return src;
    }

    int rc = -EINVAL;
    char why[200] = "";
    if (cfg->backend != DSD_IO_BACKEND_POSIX) {
        e->ops = &dsd_io_uring_ops;
        rc = e->ops->start(e, why, sizeof(why));
        if (rc == 0) {
            snprintf(e->reason, sizeof(e->reason), "%s",
                     cfg->backend == DSD_IO_BACKEND_AUTO ? "auto: io_uring rings set up" : "requested");
        } else if (cfg->backend == DSD_IO_BACKEND_URING) {
            snprintf(reason, reason_len, "%s", why);
            stop_codec(e);
            engine_free_memory(e);
            return rc;
        }
    }
    if (rc != 0) {
        e->ops = &dsd_io_posix_ops;
        char pwhy[200] = "";
        rc = e->ops->start(e, pwhy, sizeof(pwhy));
        if (rc < 0) {
            snprintf(reason, reason_len, "%s", pwhy);
            stop_codec(e);
            engine_free_memory(e);
            return rc;
        }
        if (cfg->backend == DSD_IO_BACKEND_AUTO)
            snprintf(e->reason, sizeof(e->reason), "auto: io_uring unavailable (%s)", why);
        else
            snprintf(e->reason, sizeof(e->reason), "requested");
    }
    snprintf(reason, reason_len, "%s", e->reason);
    *out = e;
    return 0;
}

void dsd_io_engine_close(struct dsd_io_engine *e)
{
    pthread_mutex_lock(&e->lock);
    if (e->closing) {
        pthread_mutex_unlock(&e->lock);
        return;
    }
    e->closing = 1;
    e->draining = 1; /* from now on a finished stage reports SHUTDOWN instead of going on */
    while (e->submitters || e->advancing)
        pthread_cond_wait(&e->idle, &e->lock);
    /* requests still waiting for staging never start */
    struct freelist fl = {0};
    bool sig = false;
    while (e->wait_head) {
        struct dsd_io_req *r = e->wait_head;
        atomic_store(&r->state, DSD_REQ_CANCELLED);
        forget_waiter_locked(e, r, &fl);
        live_unlink(r->client, r);
        release_resources(r);
        dsd_io_req_shutdown(r);
        sig |= report_locked(e, r, &fl);
    }
    pthread_mutex_unlock(&e->lock);
    if (sig)
        signal_eventfd(e);
    freelist_flush(e, &fl);
    e->ops->stop(e);
    dsd_io_codec_stop(e->codec);
    pthread_mutex_lock(&e->lock);
    e->closed = 1;
    pthread_mutex_unlock(&e->lock);
}

void dsd_io_engine_free(struct dsd_io_engine *e)
{
    if (e == NULL)
        return;
    dsd_io_engine_close(e);
    e->ops->destroy(e);
    dsd_io_codec_free(e->codec);
    e->codec = NULL;
    /* Unreaped completions hold no resources (released at retire); the slabs go below. */
    engine_free_memory(e);
}

const char *dsd_io_engine_backend(const struct dsd_io_engine *e)
{
    return e->ops->name;
}

const char *dsd_io_engine_reason(const struct dsd_io_engine *e)
{
    return e->reason;
}

int dsd_io_engine_fd(const struct dsd_io_engine *e)
{
    return e->efd;
}

void dsd_io_engine_stats(struct dsd_io_engine *e, struct dsd_io_stats *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_lock(&e->lock);
    s->rejected = e->n_rejected;
    s->completed = e->n_completed;
    s->failed = e->n_failed;
    s->cancelled = e->n_cancelled;
    s->dropped = e->n_dropped;
    s->bytes = e->n_bytes;
    s->pending = e->n_pending;
    s->staging_bytes = e->staging.limit;
    s->staging_in_use = e->staging.in_use;
    s->staging_peak = e->staging.peak;
    s->staging_waits = e->n_staging_waits;
    for (struct dsd_io_req *r = e->wait_head; r; r = r->wnext)
        s->staging_waiting++;
    pthread_mutex_unlock(&e->lock);
    s->writes = atomic_load(&e->n_writes);
    s->bytes_written = atomic_load(&e->n_bytes_written);
    s->fsyncs = atomic_load(&e->n_fsyncs);
    s->decoded = atomic_load(&e->n_decoded);
    s->decode_failures = atomic_load(&e->n_decode_failures);
    s->encoded = atomic_load(&e->n_encoded);
    s->copies = atomic_load(&e->n_copies);
    s->mapped_reads = atomic_load(&e->n_mapped);
    s->mapped_redone = atomic_load(&e->n_mapped_redone);
    s->codec_workers = e->cfg.codec_workers;
    s->submitted = atomic_load(&e->n_submitted);
    s->in_flight = atomic_load(&e->n_in_flight);
    s->direct_reads = atomic_load(&e->n_direct);
    s->buffered_reads = atomic_load(&e->n_buffered);
    s->short_reads = atomic_load(&e->n_short);
    s->retries = atomic_load(&e->n_retries);
    s->fixed_files = atomic_load(&e->n_fixed_files);
    s->fixed_buffers = atomic_load(&e->n_fixed_bufs);
    s->workers = e->cfg.workers;
    s->queue_depth = e->cfg.queue_depth;
    s->sqpoll = e->cfg.sqpoll;
    s->direct = e->cfg.direct;
    s->register_mode = e->cfg.register_mode;
    s->coalesce = e->cfg.coalesce;
    s->mapped = e->cfg.mapped;
    s->backend = e->ops->name;
}
