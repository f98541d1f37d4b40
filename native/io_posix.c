/*
 * The portable backend: a pool of threads doing pread() straight into the client's region (or a
 * staging buffer), pwrite() from it, and fsync().
 * Used where io_uring is forbidden (containers, seccomp) or not wanted. One shared FIFO; a
 * worker takes a few requests at a time when the queue is long, so lock traffic stays per
 * batch, and retires what it read as one batch.
 */
#define _GNU_SOURCE
#include "io_backend.h"
#include "io_workq.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POSIX_BATCH 16
#define EAGAIN_RETRIES 1000

struct posix_pool {
    struct dsd_io_engine *e;
    struct dsd_io_workq q;
    pthread_t threads[];
};

struct read_counters {
    uint64_t direct, buffered, shorts, retries;
};

/* Reads (writes) r completely, or records why not. Shared logic with io_uring's completion
 * handling: short transfers continue, EINTR/EAGAIN retry, an O_DIRECT EINVAL falls back to the
 * page cache. A write that moves nothing is retried a bounded number of times, then EIO. */
static void transfer_request(struct dsd_io_engine *e, struct dsd_io_req *r, struct read_counters *k)
{
    unsigned again = 0;
    bool writing = r->op == DSD_OP_WRITE;
    while (r->done < r->size) {
        if (atomic_load_explicit(&r->cancel_requested, memory_order_relaxed)) {
            dsd_io_req_set(r, DSD_STATUS_CANCELLED, DSD_REASON_CANCELLED, ECANCELED);
            return;
        }
        uint8_t direct;
        uint64_t off = r->offset + r->done;
        uint8_t *buf = r->buf + r->done;
        uint32_t len = r->size - r->done;
        int fd = dsd_io_pick_fd(e, r->file, off, buf, len, &direct);
        if (direct)
            k->direct++;
        else
            k->buffered++;
        ssize_t n = writing ? pwrite(fd, buf, len, (off_t)off) : pread(fd, buf, len, (off_t)off);
        if (n < 0) {
            int err = errno;
            if ((err == EINTR || err == EAGAIN) && again++ < EAGAIN_RETRIES) {
                k->retries++;
                if (err == EAGAIN)
                    sched_yield();
                continue;
            }
            if (direct && err == EINVAL) {
                /* the filesystem takes O_DIRECT opens but not these transfers: page cache from now on */
                atomic_store(&r->file->direct_broken, 1);
                k->retries++;
                continue;
            }
            dsd_io_req_set(r, DSD_STATUS_FAILED, DSD_REASON_IO, err);
            return;
        }
        if (n == 0) {
            if (writing) {
                if (again++ < EAGAIN_RETRIES) {
                    k->retries++;
                    continue;
                }
                dsd_io_req_set(r, DSD_STATUS_FAILED, DSD_REASON_IO, EIO);
                return;
            }
            /* the file ended before the range did (truncated after submit) */
            dsd_io_req_set(r, DSD_STATUS_FAILED, DSD_REASON_EOF, 0);
            return;
        }
        r->done += (uint32_t)n;
        if (r->done < r->size)
            k->shorts++;
    }
    dsd_io_req_set(r, DSD_STATUS_OK, DSD_REASON_NONE, 0);
}

static void fsync_request(struct dsd_io_req *r)
{
    for (unsigned again = 0;; again++) {
        if (fsync(r->file->fd) == 0) {
            dsd_io_req_set(r, DSD_STATUS_OK, DSD_REASON_NONE, 0);
            return;
        }
        if (errno != EINTR || again >= EAGAIN_RETRIES) {
            dsd_io_req_set(r, DSD_STATUS_FAILED, DSD_REASON_IO, errno);
            return;
        }
    }
}

static void *posix_worker(void *arg)
{
    struct posix_pool *p = arg;
    struct dsd_io_engine *e = p->e;
    struct dsd_io_req *batch[POSIX_BATCH];
    for (;;) {
        int stopping;
        size_t n = dsd_io_workq_take(&p->q, batch, POSIX_BATCH, &stopping);
        if (n == 0)
            break;

        struct read_counters k = {0};
        for (size_t i = 0; i < n; i++) {
            struct dsd_io_req *r = batch[i];
            if (!dsd_io_req_claim(r))
                continue; /* cancelled while queued: already reported */
            if (stopping)
                dsd_io_req_shutdown(r);
            else if (r->op == DSD_OP_FSYNC)
                fsync_request(r);
            else
                transfer_request(e, r, &k);
        }
        /* counters before retire: whoever sees the request done sees its counts too */
        atomic_fetch_add_explicit(&e->n_direct, k.direct, memory_order_relaxed);
        atomic_fetch_add_explicit(&e->n_buffered, k.buffered, memory_order_relaxed);
        atomic_fetch_add_explicit(&e->n_short, k.shorts, memory_order_relaxed);
        atomic_fetch_add_explicit(&e->n_retries, k.retries, memory_order_relaxed);
        dsd_io_retire(e, batch, n);
    }
    return NULL;
}

static int posix_start(struct dsd_io_engine *e, char *reason, size_t reason_len)
{
    unsigned n = e->cfg.workers;
    struct posix_pool *p = calloc(1, sizeof(*p) + n * sizeof(pthread_t));
    if (p == NULL) {
        snprintf(reason, reason_len, "out of memory");
        return -ENOMEM;
    }
    p->e = e;
    dsd_io_workq_init(&p->q);
    e->backend = p;
    for (unsigned i = 0; i < n; i++) {
        int rc = pthread_create(&p->threads[i], NULL, posix_worker, p);
        if (rc != 0) {
            snprintf(reason, reason_len, "pthread_create: %s", strerror(rc));
            dsd_io_workq_stop(&p->q);
            for (unsigned j = 0; j < i; j++)
                pthread_join(p->threads[j], NULL);
            dsd_io_workq_destroy(&p->q);
            free(p);
            e->backend = NULL;
            return -rc;
        }
        p->q.nworkers++;
    }
    return 0;
}

static void posix_enqueue(struct dsd_io_engine *e, struct dsd_io_req **reqs, size_t n)
{
    struct posix_pool *p = e->backend;
    dsd_io_workq_push(&p->q, reqs, n);
}

static void posix_stop(struct dsd_io_engine *e)
{
    struct posix_pool *p = e->backend;
    dsd_io_workq_stop(&p->q);
    for (unsigned i = 0; i < p->q.nworkers; i++)
        pthread_join(p->threads[i], NULL);
}

static void posix_destroy(struct dsd_io_engine *e)
{
    struct posix_pool *p = e->backend;
    if (p == NULL)
        return;
    dsd_io_workq_destroy(&p->q);
    free(p);
    e->backend = NULL;
}

const struct dsd_io_backend_ops dsd_io_posix_ops = {
    .name = "posix",
    .start = posix_start,
    .enqueue = posix_enqueue,
    .cancel_issued = NULL, /* a running pread cannot be interrupted; it checks between chunks */
    .kick = NULL,          /* workers drain cancelled slots as they reach them */
    .stop = posix_stop,
    .destroy = posix_destroy,
};
