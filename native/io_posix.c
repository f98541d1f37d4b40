/*
 * The portable backend: a pool of threads doing pread() straight into the client's region (or a
 * staging buffer), pwrite() from it (both in io_sync.c), and fsync(); reads of cached pages are
 * copied from the file's mapping instead (io_mapped.c).
 * Used where io_uring is forbidden (containers, seccomp) or not wanted. One shared FIFO; a
 * worker takes a few requests at a time when the queue is long, so lock traffic stays per
 * batch, and retires what it read as one batch.
 */
#define _GNU_SOURCE
#include "io_backend.h"
#include "io_workq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POSIX_BATCH 16

struct posix_pool {
    struct dsd_io_engine *e;
    struct dsd_io_workq q;
    pthread_t threads[];
};

static void fsync_request(struct dsd_io_req *r)
{
    for (unsigned again = 0;; again++) {
        if (fsync(r->file->fd) == 0) {
            dsd_io_req_set(r, DSD_STATUS_OK, DSD_REASON_NONE, 0);
            return;
        }
        if (errno != EINTR || again >= DSD_IO_SYNC_RETRIES) {
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

        struct dsd_io_sync_counters k = {0};
        struct dsd_io_req *mapped[POSIX_BATCH];
        size_t nmapped = 0;
        uint64_t now = dsd_io_mapped_clock();
        struct dsd_io_mapped_pipe pipe = {0};
        for (size_t i = 0; i < n; i++) {
            struct dsd_io_req *r = batch[i], *copied = NULL;
            if (!dsd_io_req_claim(r))
                continue; /* cancelled while queued: already reported */
            if (stopping)
                dsd_io_req_shutdown(r);
            else if (r->op == DSD_OP_FSYNC)
                fsync_request(r);
            else if (dsd_io_mapped_take(e, &pipe, r, now, &copied)) {
                if (copied)
                    mapped[nmapped++] = copied;
            } else {
                dsd_io_transfer_sync(e, r, &k);
                dsd_io_mapped_adopt(r);
            }
        }
        struct dsd_io_req *last = dsd_io_mapped_drain(&pipe);
        if (last)
            mapped[nmapped++] = last;
        dsd_io_mapped_confirm(e, mapped, nmapped);
        /* counters before retire: whoever sees the request done sees its counts too */
        dsd_io_sync_counters_flush(e, &k);
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
