/*
 * The io engine's core (io_engine.h): parses and validates packed request batches, keeps each
 * client's live requests and completion list, cancels, and counts. Backends only read bytes.
 *
 * Locking: one engine lock, taken once per submitted chunk, once per retired batch, once per
 * reap. The request pool has its own lock, also taken once per batch. Backends keep their own
 * queue locks, always taken after (never while waiting for) the engine lock.
 */
#define _GNU_SOURCE
#include "io_backend.h"

#include <errno.h>
#include <sched.h>
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
    r->client = NULL;
    r->file = NULL;
    r->region = NULL;
    r->dst = NULL;
    r->offset = rec->src_offset;
    r->orig = *rec;
    r->request_id = rec->request_id;
    r->cancel_tag = rec->cancel_tag;
    r->size = rec->src_size;
    r->done = 0;
    atomic_store_explicit(&r->state, DSD_REQ_QUEUED, memory_order_relaxed);
    atomic_store_explicit(&r->owners, 1, memory_order_relaxed);
    atomic_store_explicit(&r->cancel_requested, 0, memory_order_relaxed);
    r->error = 0;
    r->status = 0;
    r->reason = 0;
    r->direct = 0;
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
    case DSD_STATUS_OK: e->n_completed++; e->n_bytes += r->done; break;
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
}

void dsd_io_retire(struct dsd_io_engine *e, struct dsd_io_req **reqs, size_t n)
{
    struct freelist fl = {0};
    bool sig = false;
    /* Resources first: nothing reads them any more, and munmap/close stay out of the lock. */
    for (size_t i = 0; i < n; i++)
        if (atomic_load_explicit(&reqs[i]->state, memory_order_acquire) == DSD_REQ_ISSUED)
            release_resources(reqs[i]);
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < n; i++) {
        struct dsd_io_req *r = reqs[i];
        if (atomic_load_explicit(&r->state, memory_order_acquire) == DSD_REQ_ISSUED) {
            live_unlink(r->client, r);
            sig |= report_locked(e, r, &fl);
        }
        freelist_drop(&fl, r); /* the backend's reference */
    }
    pthread_mutex_unlock(&e->lock);
    atomic_fetch_sub_explicit(&e->n_in_flight, n, memory_order_relaxed);
    if (sig)
        signal_eventfd(e);
    freelist_flush(e, &fl);
}

/* ---- validation ---- */

static bool validate(struct dsd_io_registry *reg, const struct dsd_request_record *rec, struct dsd_io_req *r)
{
    if (rec->flags != 0 || rec->reserved != 0) {
        dsd_io_req_set(r, DSD_STATUS_FAILED, DSD_REASON_RESERVED, EINVAL);
        return false;
    }
    if (rec->op != DSD_OP_READ || rec->compression != DSD_COMPRESSION_NONE || rec->source_type != DSD_SOURCE_FILE) {
        dsd_io_req_set(r, DSD_STATUS_FAILED, DSD_REASON_UNSUPPORTED, EOPNOTSUPP);
        return false;
    }
    if (rec->dst_size != rec->src_size || (rec->uncompressed_size != 0 && rec->uncompressed_size != rec->dst_size)) {
        dsd_io_req_set(r, DSD_STATUS_FAILED, DSD_REASON_SIZE_MISMATCH, EINVAL);
        return false;
    }
    struct dsd_io_file *f = dsd_io_registry_file_locked(reg, rec->src_id);
    if (f == NULL) {
        dsd_io_req_set(r, DSD_STATUS_FAILED, DSD_REASON_BAD_FILE, EBADF);
        return false;
    }
    struct dsd_io_region *g = dsd_io_registry_region_locked(reg, rec->dst_id);
    if (g == NULL) {
        dsd_io_req_set(r, DSD_STATUS_FAILED, DSD_REASON_BAD_REGION, ENOENT);
        return false;
    }
    if (rec->dst_offset > g->size || rec->dst_size > g->size - rec->dst_offset) {
        dsd_io_req_set(r, DSD_STATUS_FAILED, DSD_REASON_REGION_BOUNDS, EFAULT);
        return false;
    }
    uint64_t limit = INT64_MAX;
    if (f->sized) {
        int rc = dsd_io_registry_file_size_locked(reg, f, &limit);
        if (rc < 0) {
            dsd_io_req_set(r, DSD_STATUS_FAILED, DSD_REASON_IO, -rc);
            return false;
        }
    }
    if (rec->src_offset > limit || rec->src_size > limit - rec->src_offset) {
        dsd_io_req_set(r, DSD_STATUS_FAILED, DSD_REASON_EOF, 0);
        return false;
    }
    if (rec->src_size == 0) {
        dsd_io_req_set(r, DSD_STATUS_OK, DSD_REASON_NONE, 0);
        return false; /* complete at once, nothing to read */
    }
    dsd_io_file_get(f);
    dsd_io_region_get(g);
    r->file = f;
    r->region = g;
    r->dst = g->base + rec->dst_offset;
    return true;
}

int dsd_io_engine_submit(struct dsd_io_engine *e, struct dsd_io_registry *reg, uint64_t client_key,
                         const void *records, size_t n, size_t *accepted)
{
    const unsigned char *p = records;
    struct dsd_io_req *reqs[SUBMIT_CHUNK];
    struct dsd_io_req *queue[SUBMIT_CHUNK];
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
            if (validate(reg, &rec, r)) {
                atomic_store_explicit(&r->owners, 2, memory_order_relaxed); /* backend + completion list */
                queue[nq++] = r;
            } else if (r->status != DSD_STATUS_OK) {
                nfail++;
            }
        }
        dsd_io_registry_unlock(reg);

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
            rc = -ENOMEM;
            break;
        }
        c->refs += m;
        for (size_t i = 0; i < m; i++) {
            struct dsd_io_req *r = reqs[i];
            r->client = c;
            if (r->file != NULL)
                live_link(c, r);
            else
                sig |= report_locked(e, r, &fl); /* rejected or 0-byte: complete now */
        }
        e->n_rejected += nfail;
        pthread_mutex_unlock(&e->lock);
        if (sig)
            signal_eventfd(e);
        freelist_flush(e, &fl);
        atomic_fetch_add_explicit(&e->n_submitted, m, memory_order_relaxed);
        if (nq) {
            atomic_fetch_add_explicit(&e->n_in_flight, nq, memory_order_relaxed);
            e->ops->enqueue(e, queue, nq);
        }
        *accepted += m - nfail;
    }

    pthread_mutex_lock(&e->lock);
    if (--e->submitters == 0)
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

int dsd_io_engine_reap(struct dsd_io_engine *e, dsd_io_reap_fn fn, void *ctx)
{
    uint64_t v;
    /* Drain first: whatever is reported after this point writes the eventfd again. */
    while (read(e->efd, &v, sizeof(v)) < 0 && errno == EINTR) {
    }

    pthread_mutex_lock(&e->lock);
    e->signaled = false;
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
    size_t bufcap = 0;
    for (; k < nt && rc == 0; k++) {
        if (t[k].n > bufcap) {
            struct dsd_completion_record *nb = realloc(buf, t[k].n * sizeof(*nb));
            if (nb != NULL)
                buf = nb;
            struct dsd_request_record *nf = realloc(fbuf, t[k].n * sizeof(*nf));
            if (nf != NULL)
                fbuf = nf;
            if (nb == NULL || nf == NULL) {
                rc = -ENOMEM;
                break;
            }
            bufcap = t[k].n;
        }
        size_t j = 0, nfailed = 0;
        for (struct dsd_io_req *r = t[k].head; r; r = r->done_next) {
            buf[j++] = r->rec;
            if (r->rec.status == DSD_STATUS_FAILED)
                fbuf[nfailed++] = r->orig;
        }
        rc = fn(ctx, t[k].client->key, buf, t[k].n, fbuf, nfailed);
    }
    free(buf);
    free(fbuf);

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

static bool cancel_queued_locked(struct dsd_io_engine *e, struct dsd_io_client *c, struct dsd_io_req *r,
                                 struct freelist *fl, bool *sig)
{
    int expected = DSD_REQ_QUEUED;
    if (!atomic_compare_exchange_strong(&r->state, &expected, DSD_REQ_CANCELLED))
        return false;
    live_unlink(c, r);
    release_resources(r); /* the backend never touches a request it could not claim */
    dsd_io_req_set(r, DSD_STATUS_CANCELLED, DSD_REASON_CANCELLED, ECANCELED);
    *sig |= report_locked(e, r, fl);
    return true;
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
        if (cancel_queued_locked(e, c, r, &fl, &sig))
            nq++;
        else
            cancel_issued_locked(e, r);
    }
    pthread_mutex_unlock(&e->lock);
    if (sig)
        signal_eventfd(e);
    freelist_flush(e, &fl);
    if (nq && e->ops->kick)
        e->ops->kick(e);
    *count = n;
    return 0;
}

int dsd_io_engine_drop_client(struct dsd_io_engine *e, uint64_t client_key)
{
    struct freelist fl = {0};
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
            live_unlink(c, r);
            release_resources(r);
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
    pthread_mutex_unlock(&e->lock);
    freelist_flush(e, &fl);
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
    if (e->efd >= 0)
        close(e->efd);
    pthread_mutex_destroy(&e->lock);
    pthread_mutex_destroy(&e->pool_lock);
    pthread_cond_destroy(&e->idle);
    free(e);
}

int dsd_io_engine_new(const struct dsd_io_config *cfg, struct dsd_io_engine **out, char *reason, size_t reason_len)
{
    if (reason_len)
        reason[0] = '\0';
    if (cfg->backend < DSD_IO_BACKEND_AUTO || cfg->backend > DSD_IO_BACKEND_POSIX ||
        (cfg->direct != DSD_IO_DIRECT_AUTO && cfg->direct != DSD_IO_DIRECT_OFF) ||
        (cfg->register_mode != DSD_IO_REGISTER_AUTO && cfg->register_mode != DSD_IO_REGISTER_OFF) || cfg->queue_depth > 4096 ||
        cfg->workers > 256) {
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
    while (e->submitters)
        pthread_cond_wait(&e->idle, &e->lock);
    pthread_mutex_unlock(&e->lock);
    e->ops->stop(e);
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
    pthread_mutex_unlock(&e->lock);
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
    s->backend = e->ops->name;
}
