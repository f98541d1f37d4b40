/*
 * Synchronous transfers: pread()/pwrite() until a request is done. The pread pool's whole job
 * (io_posix.c), and the mapped read path's fallback for a read it could not confirm (io_mapped.c).
 */
#define _GNU_SOURCE
#include "io_backend.h"

#include <errno.h>
#include <sched.h>
#include <unistd.h>

/* Reads (writes) r completely, or records why not. Shared logic with io_uring's completion
 * handling: short transfers continue, EINTR/EAGAIN retry, an O_DIRECT EINVAL falls back to the
 * page cache. A write that moves nothing is retried a bounded number of times, then EIO. */
void dsd_io_transfer_sync(struct dsd_io_engine *e, struct dsd_io_req *r, struct dsd_io_sync_counters *k)
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
        r->direct = direct;
        if (direct)
            k->direct++;
        else
            k->buffered++;
        ssize_t n = writing ? pwrite(fd, buf, len, (off_t)off) : pread(fd, buf, len, (off_t)off);
        if (n < 0) {
            int err = errno;
            if ((err == EINTR || err == EAGAIN) && again++ < DSD_IO_SYNC_RETRIES) {
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
                if (again++ < DSD_IO_SYNC_RETRIES) {
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

void dsd_io_sync_counters_flush(struct dsd_io_engine *e, const struct dsd_io_sync_counters *k)
{
    atomic_fetch_add_explicit(&e->n_direct, k->direct, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->n_buffered, k->buffered, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->n_short, k->shorts, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->n_retries, k->retries, memory_order_relaxed);
}
