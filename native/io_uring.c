/*
 * The io_uring backend: several rings, each created and driven by its own thread (so the ring
 * can be SINGLE_ISSUER + COOP_TASKRUN: no IPIs to run completions), with a bounded number of
 * reads in flight per ring. The engine spreads batches over the rings by load.
 *
 * A ring thread sleeps in io_uring_enter; new work wakes it through an eventfd that the ring
 * itself keeps a READ armed on, written only when the thread said it is going to sleep.
 * Completions are handled in batches: short reads continue, -EAGAIN/-EINTR retry, an O_DIRECT
 * read the filesystem rejects falls back to the page cache, finished requests are retired to
 * the engine together. Cancellation of a running read is IORING_OP_ASYNC_CANCEL. Writes
 * (IORING_OP_WRITE / WRITE_FIXED) and fsync (IORING_OP_FSYNC) take the same path as reads.
 */
#define _GNU_SOURCE
#include "io_backend.h"

#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/uio.h>

#include "io_slots.h"

#define UD_WAKE 1u   /* the inbox eventfd read */
#define UD_CANCEL 2u /* an ASYNC_CANCEL we sent: its own result does not matter */
#define EXTRA_SQES 16u
#define RETIRE_BATCH 256
#define MAPPED_BATCH 64
#define MAX_RETRIES 1000
#define FILE_PAIRS_MAX 1024u            /* registered-file slots: one per fd (buffered, O_DIRECT) */
#define BUF_SLOTS 256u                  /* registered-buffer slots (regions) */
#define FIXED_BUFFER_MAX (256ull << 20) /* larger regions are not registered: that pins every page */

enum { EVICT_FILE = 0, EVICT_BUF = 1 };

struct evict_cmd {
    int kind;
    uint32_t slot;
    uint64_t gen;
};

struct cancel_cmd {
    struct dsd_io_req *req;
    uint64_t seq;
};

struct uring_ring {
    struct dsd_io_engine *e;
    unsigned index;
    pthread_t thread;
    int thread_started;
    struct io_uring ring;
    int ring_ok;
    int wake_fd;
    uint64_t wake_buf;
    atomic_int sleeping;
    atomic_uint load; /* requests given to this ring and not yet retired (for spreading) */

    /* startup handshake */
    int start_rc;
    int start_done;
    char start_reason[160];

    /* inbox, filled by other threads (lock) */
    pthread_mutex_t lock;
    pthread_cond_t started;
    struct dsd_io_req *in_head, *in_tail;
    struct cancel_cmd *cancels;
    size_t ncancels, cap_cancels;
    struct evict_cmd *evicts;
    size_t nevicts, cap_evicts;
    int purge;
    int stop;

    /* owned by the ring thread */
    struct dsd_io_req *bl_head, *bl_tail; /* waiting for a queue slot */
    unsigned inflight;                    /* reads in the kernel */
    int wake_armed;
    int stop_cancel_sent;
    struct dsd_io_req *retire[RETIRE_BATCH];
    size_t nretire;
    struct dsd_io_req *mapped[MAPPED_BATCH]; /* copied by the mapped path, to confirm (io_mapped.c) */
    size_t nmapped;
    struct { uint64_t direct, buffered, shorts, retries, fixed_files, fixed_bufs; } k;
    /* registered tables: generation installed at each slot (0 none, odd = refused) */
    int files_ok, bufs_ok;
    uint64_t *file_gen; /* 2 entries per file slot: buffered fd, O_DIRECT fd */
    uint64_t *buf_gen;
};

struct uring_backend {
    struct dsd_io_slots *file_slots, *buf_slots;
    uint32_t file_pairs;
    unsigned nrings;
    struct uring_ring rings[];
};

/* ---- ring thread ---- */

static void flush_counters(struct uring_ring *r)
{
    struct dsd_io_engine *e = r->e;
    if (r->k.direct)
        atomic_fetch_add_explicit(&e->n_direct, r->k.direct, memory_order_relaxed);
    if (r->k.buffered)
        atomic_fetch_add_explicit(&e->n_buffered, r->k.buffered, memory_order_relaxed);
    if (r->k.shorts)
        atomic_fetch_add_explicit(&e->n_short, r->k.shorts, memory_order_relaxed);
    if (r->k.retries)
        atomic_fetch_add_explicit(&e->n_retries, r->k.retries, memory_order_relaxed);
    if (r->k.fixed_files)
        atomic_fetch_add_explicit(&e->n_fixed_files, r->k.fixed_files, memory_order_relaxed);
    if (r->k.fixed_bufs)
        atomic_fetch_add_explicit(&e->n_fixed_bufs, r->k.fixed_bufs, memory_order_relaxed);
    memset(&r->k, 0, sizeof(r->k));
}

/* Completions are held back engine-wide (dsd_io_retire_held, enum dsd_io_coalesce), so a burst
 * spread over several rings costs the reaper one wake-up (BURSTS) or two (HALVES), not one per
 * ring and loop. A ring that holds sends the signal itself before it blocks for longer than that
 * (ring_wait), so holding never waits on anything but running reads, and then only about
 * the cap once more. */
static void flush_retire(struct uring_ring *r)
{
    /* counters before retire: whoever sees the request done sees its counts too */
    flush_counters(r);
    if (r->nretire == 0)
        return;
    atomic_fetch_sub_explicit(&r->load, (unsigned)r->nretire, memory_order_relaxed);
    dsd_io_retire_held(r->e, r->retire, r->nretire, r->e->cfg.coalesce != DSD_IO_COALESCE_OFF);
    r->nretire = 0;
}

/* Lets go of whatever the engine holds, this ring's or another's: the ring that decides to stop
 * waiting may not be the one that held them (it slept while another worked, then that one
 * blocked on its own reads). */
static void signal_held(struct uring_ring *r)
{
    dsd_io_signal_held(r->e);
}

static void retire_one(struct uring_ring *r, struct dsd_io_req *q)
{
    r->retire[r->nretire++] = q;
    if (r->nretire == RETIRE_BATCH)
        flush_retire(r);
}

/* Reads the mapped path copied: confirmed together (one fstat per file), then retired. */
static void flush_mapped(struct uring_ring *r)
{
    dsd_io_mapped_confirm(r->e, r->mapped, r->nmapped);
    for (size_t i = 0; i < r->nmapped; i++)
        retire_one(r, r->mapped[i]);
    r->nmapped = 0;
}

static void add_mapped(struct uring_ring *r, struct dsd_io_req *copied)
{
    if (copied == NULL)
        return;
    r->mapped[r->nmapped++] = copied;
    if (r->nmapped == MAPPED_BATCH)
        flush_mapped(r);
}

static struct io_uring_sqe *get_sqe(struct uring_ring *r)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (sqe == NULL) {
        /* SQ full of prepared entries: hand them to the kernel (the CQ has room: in-flight is bounded) */
        io_uring_submit(&r->ring);
        sqe = io_uring_get_sqe(&r->ring);
    }
    return sqe;
}

static void arm_wake(struct uring_ring *r)
{
    struct io_uring_sqe *sqe = get_sqe(r);
    if (sqe == NULL)
        return;
    io_uring_prep_read(sqe, r->wake_fd, &r->wake_buf, sizeof(r->wake_buf), 0);
    io_uring_sqe_set_data64(sqe, UD_WAKE);
    r->wake_armed = 1;
}

/* The registered-file index for f's buffered or O_DIRECT fd in this ring, or -1. */
static int fixed_file(struct uring_ring *r, struct dsd_io_file *f, int direct)
{
    struct uring_backend *b = r->e->backend;
    if (!r->files_ok || r->e->cfg.register_mode == DSD_IO_REGISTER_OFF || !dsd_io_slots_assign(b->file_slots, &f->slot))
        return -1;
    uint32_t idx = f->slot.slot * 2 + (uint32_t)direct;
    uint64_t gen = f->slot.gen;
    if (r->file_gen[idx] == gen)
        return (int)idx;
    if (r->file_gen[idx] == (gen | 1))
        return -1; /* the kernel refused this one */
    int fd = direct ? f->fd_direct : f->fd;
    if (io_uring_register_files_update(&r->ring, idx, &fd, 1) < 0) {
        r->file_gen[idx] = gen | 1;
        return -1;
    }
    r->file_gen[idx] = gen;
    return (int)idx;
}

/* The registered-buffer index of region g in this ring, or -1 (too large, or refused). */
static int fixed_buffer(struct uring_ring *r, struct dsd_io_region *g)
{
    struct uring_backend *b = r->e->backend;
    if (!r->bufs_ok || r->e->cfg.register_mode == DSD_IO_REGISTER_OFF || g->size > FIXED_BUFFER_MAX ||
        !dsd_io_slots_assign(b->buf_slots, &g->slot))
        return -1;
    uint32_t idx = g->slot.slot;
    uint64_t gen = g->slot.gen;
    if (r->buf_gen[idx] == gen)
        return (int)idx;
    if (r->buf_gen[idx] == (gen | 1))
        return -1;
    struct iovec iov = {.iov_base = g->base, .iov_len = (size_t)g->size};
    __u64 tag = 0;
    if (io_uring_register_buffers_update_tag(&r->ring, idx, &iov, &tag, 1) < 0) {
        r->buf_gen[idx] = gen | 1; /* e.g. memlock limit, or memory the kernel cannot pin */
        return -1;
    }
    r->buf_gen[idx] = gen;
    return (int)idx;
}

/* Queue the next piece of q's read or write, or its fsync. False if no SQE could be had (cannot
 * happen with the bound on in-flight requests, but then q fails cleanly instead of vanishing). */
static bool prep_read(struct uring_ring *r, struct dsd_io_req *q)
{
    struct io_uring_sqe *sqe = get_sqe(r);
    if (sqe == NULL) {
        dsd_io_req_set(q, DSD_STATUS_FAILED, DSD_REASON_IO, EBUSY);
        return false;
    }
    if (q->op == DSD_OP_FSYNC) {
        q->direct = 0;
        int fidx = fixed_file(r, q->file, 0);
        io_uring_prep_fsync(sqe, fidx >= 0 ? fidx : q->file->fd, 0);
        if (fidx >= 0) {
            sqe->flags |= IOSQE_FIXED_FILE;
            r->k.fixed_files++;
        }
        io_uring_sqe_set_data(sqe, q);
        return true;
    }
    uint64_t off = q->offset + q->done;
    uint8_t *buf = q->buf + q->done;
    uint32_t len = q->size - q->done;
    int fd = dsd_io_pick_fd(r->e, q->file, off, buf, len, &q->direct);
    if (q->direct)
        r->k.direct++;
    else
        r->k.buffered++;
    int fidx = fixed_file(r, q->file, q->direct);
    int bidx = q->io_fixed ? fixed_buffer(r, q->region) : -1; /* staging is not a registered buffer */
    bool writing = q->op == DSD_OP_WRITE;
    if (bidx >= 0) {
        if (writing)
            io_uring_prep_write_fixed(sqe, fidx >= 0 ? fidx : fd, buf, len, off, bidx);
        else
            io_uring_prep_read_fixed(sqe, fidx >= 0 ? fidx : fd, buf, len, off, bidx);
        r->k.fixed_bufs++;
    } else if (writing) {
        io_uring_prep_write(sqe, fidx >= 0 ? fidx : fd, buf, len, off);
    } else {
        io_uring_prep_read(sqe, fidx >= 0 ? fidx : fd, buf, len, off);
    }
    if (fidx >= 0) {
        sqe->flags |= IOSQE_FIXED_FILE;
        r->k.fixed_files++;
    }
    io_uring_sqe_set_data(sqe, q);
    return true;
}

/* A file or region was freed: drop this ring's registered copy if it is still that one. */
static void apply_evicts(struct uring_ring *r, struct evict_cmd *cmds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct evict_cmd *c = &cmds[i];
        if (c->kind == EVICT_FILE) {
            for (uint32_t idx = c->slot * 2; idx < c->slot * 2 + 2; idx++) {
                if (r->file_gen[idx] == c->gen) {
                    int none = -1;
                    io_uring_register_files_update(&r->ring, idx, &none, 1);
                }
                if ((r->file_gen[idx] | 1) == (c->gen | 1))
                    r->file_gen[idx] = 0;
            }
        } else {
            if (r->buf_gen[c->slot] == c->gen) {
                struct iovec none = {0};
                __u64 tag = 0;
                io_uring_register_buffers_update_tag(&r->ring, c->slot, &none, &tag, 1);
            }
            if ((r->buf_gen[c->slot] | 1) == (c->gen | 1))
                r->buf_gen[c->slot] = 0;
        }
    }
    free(cmds);
}

static void submit_direct(struct uring_ring *r, const struct dsd_io_req *q);

static void finish(struct uring_ring *r, struct dsd_io_req *q)
{
    r->inflight--;
    retire_one(r, q);
}

static void on_read_cqe(struct uring_ring *r, struct dsd_io_req *q, int res)
{
    bool cancel = atomic_load_explicit(&q->cancel_requested, memory_order_relaxed) || r->stop;
    uint8_t why = r->stop ? DSD_REASON_SHUTDOWN : DSD_REASON_CANCELLED;
    if (res == -ECANCELED || (res == -EINTR && cancel)) {
        dsd_io_req_set(q, DSD_STATUS_CANCELLED, why, ECANCELED);
        finish(r, q);
        return;
    }
    if (res == -EAGAIN || res == -EINTR) {
        if (++q->error > MAX_RETRIES) { /* q->error counts retries until the result is set */
            dsd_io_req_set(q, DSD_STATUS_FAILED, DSD_REASON_IO, -res);
            finish(r, q);
            return;
        }
        r->k.retries++;
    } else if (res == -EINVAL && q->direct) {
        atomic_store(&q->file->direct_broken, 1); /* refused O_DIRECT: page cache from now on */
        r->k.retries++;
    } else if (res < 0) {
        dsd_io_req_set(q, DSD_STATUS_FAILED, DSD_REASON_IO, -res);
        finish(r, q);
        return;
    } else if (q->op == DSD_OP_FSYNC) {
        dsd_io_req_set(q, DSD_STATUS_OK, DSD_REASON_NONE, 0);
        finish(r, q);
        return;
    } else if (res == 0 && q->op == DSD_OP_WRITE) {
        if (++q->error > MAX_RETRIES) { /* a write that moves nothing, again and again */
            dsd_io_req_set(q, DSD_STATUS_FAILED, DSD_REASON_IO, EIO);
            finish(r, q);
            return;
        }
        r->k.retries++;
    } else if (res == 0) {
        dsd_io_req_set(q, DSD_STATUS_FAILED, DSD_REASON_EOF, 0); /* truncated since submit */
        finish(r, q);
        return;
    } else {
        q->done += (uint32_t)res;
        if (q->done == q->size) {
            dsd_io_req_set(q, DSD_STATUS_OK, DSD_REASON_NONE, 0);
            dsd_io_mapped_adopt(q);
            finish(r, q);
            return;
        }
        r->k.shorts++;
    }
    if (cancel) {
        dsd_io_req_set(q, DSD_STATUS_CANCELLED, why, ECANCELED);
        finish(r, q);
        return;
    }
    if (prep_read(r, q))
        submit_direct(r, q);
    else
        finish(r, q);
}

static void take_inbox(struct uring_ring *r, struct cancel_cmd **cmds, size_t *ncmds, struct evict_cmd **evs,
                       size_t *nevs, int *purge, int *stop)
{
    pthread_mutex_lock(&r->lock);
    *evs = r->evicts;
    *nevs = r->nevicts;
    r->evicts = NULL;
    r->nevicts = r->cap_evicts = 0;
    if (r->in_head) {
        if (r->bl_tail)
            r->bl_tail->next = r->in_head;
        else
            r->bl_head = r->in_head;
        r->bl_tail = r->in_tail;
        r->in_head = r->in_tail = NULL;
    }
    *cmds = NULL;
    *ncmds = 0;
    if (r->ncancels) {
        *cmds = r->cancels;
        *ncmds = r->ncancels;
        r->cancels = NULL;
        r->ncancels = r->cap_cancels = 0;
    }
    *purge = r->purge;
    r->purge = 0;
    *stop = r->stop;
    pthread_mutex_unlock(&r->lock);
}

static bool inbox_pending(struct uring_ring *r)
{
    pthread_mutex_lock(&r->lock);
    bool p = r->in_head != NULL || r->ncancels || r->nevicts || r->purge || (r->stop && !r->stop_cancel_sent);
    pthread_mutex_unlock(&r->lock);
    return p;
}

/* Cancelled requests waiting in the backlog: let go of them now (their resources too). */
static void purge_backlog(struct uring_ring *r)
{
    struct dsd_io_req *keep_head = NULL, *keep_tail = NULL;
    for (struct dsd_io_req *q = r->bl_head, *nx; q; q = nx) {
        nx = q->next;
        q->next = NULL;
        if (atomic_load(&q->state) == DSD_REQ_CANCELLED) {
            retire_one(r, q);
            continue;
        }
        if (keep_tail)
            keep_tail->next = q;
        else
            keep_head = q;
        keep_tail = q;
    }
    r->bl_head = keep_head;
    r->bl_tail = keep_tail;
}

static void fill(struct uring_ring *r, int stop)
{
    unsigned qd = r->e->cfg.queue_depth;
    uint64_t now = dsd_io_mapped_clock();
    struct dsd_io_mapped_pipe pipe = {0};
    while (r->bl_head && (stop || r->inflight < qd)) {
        struct dsd_io_req *q = r->bl_head;
        r->bl_head = q->next;
        if (r->bl_head == NULL)
            r->bl_tail = NULL;
        q->next = NULL;
        if (!dsd_io_req_claim(q)) {
            retire_one(r, q); /* cancelled while queued */
            continue;
        }
        if (stop) {
            dsd_io_req_shutdown(q);
            retire_one(r, q);
            continue;
        }
        if (atomic_load_explicit(&q->cancel_requested, memory_order_relaxed)) {
            /* asked to stop during an earlier stage (a decode, an encode) */
            dsd_io_req_set(q, DSD_STATUS_CANCELLED, DSD_REASON_CANCELLED, ECANCELED);
            retire_one(r, q);
            continue;
        }
        q->error = 0; /* retry counter until the result is set */
        struct dsd_io_req *copied;
        if (dsd_io_mapped_take(r->e, &pipe, q, now, &copied)) {
            /* done without the kernel: it takes no queue slot */
            add_mapped(r, copied);
        } else if (prep_read(r, q)) {
            r->inflight++;
            submit_direct(r, q);
        } else {
            retire_one(r, q);
        }
    }
    add_mapped(r, dsd_io_mapped_drain(&pipe));
    flush_mapped(r);
}

/* An O_DIRECT read or write goes to the kernel at once, in its own io_uring_enter: several SQEs
 * in one enter are plugged by the block layer and reach the device together, and on the
 * virtio disks measured here that cost ~10% of 4 KiB random IOPS against fio (which submits one
 * at a time). Page-cache reads complete inline, so they stay batched: one enter per loop. */
static void submit_direct(struct uring_ring *r, const struct dsd_io_req *q)
{
    if (q->direct)
        io_uring_submit(&r->ring);
}

static void send_cancels(struct uring_ring *r, struct cancel_cmd *cmds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct dsd_io_req *q = cmds[i].req;
        /* the slot may have finished and been reused since: trust it only if it is the same request */
        if (__atomic_load_n(&q->seq, __ATOMIC_RELAXED) != cmds[i].seq || atomic_load(&q->state) != DSD_REQ_ISSUED ||
            __atomic_load_n(&q->ring, __ATOMIC_RELAXED) != r->index)
            continue;
        struct io_uring_sqe *sqe = get_sqe(r);
        if (sqe == NULL)
            continue;
        io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)q, 0);
        io_uring_sqe_set_data64(sqe, UD_CANCEL);
    }
    free(cmds);
}

static void *ring_thread(void *arg);

static int ring_setup(struct uring_ring *r)
{
    const struct dsd_io_config *cfg = &r->e->cfg;
    unsigned entries = 1;
    while (entries < cfg->queue_depth + EXTRA_SQES)
        entries <<= 1;
    struct io_uring_params p;
    int rc;
    if (cfg->sqpoll) {
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_SQPOLL;
        p.sq_thread_idle = 50; /* ms the kernel thread spins before sleeping */
        rc = io_uring_queue_init_params(entries, &r->ring, &p);
        if (rc < 0)
            snprintf(r->start_reason, sizeof(r->start_reason), "io_uring_setup(SQPOLL): %s", strerror(-rc));
        return rc;
    }
    /* Newest flags first: one submitter thread per ring; completions of device reads run at the
     * ring thread's next syscall (COOP) rather than only when it waits (DEFER_TASKRUN): with
     * DEFER, 4 KiB random O_DIRECT reads reached ~0.9 of fio's IOPS and cost more CPU per read,
     * and together with submitting O_DIRECT SQEs one by one (submit_direct) ~0.75. Page-cache
     * reads complete inline and measure the same either way. */
    static const unsigned flag_sets[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
        0,
    };
    rc = -EINVAL;
    for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
        memset(&p, 0, sizeof(p));
        p.flags = flag_sets[i];
        rc = io_uring_queue_init_params(entries, &r->ring, &p);
        if (rc != -EINVAL)
            break;
    }
    if (rc < 0)
        snprintf(r->start_reason, sizeof(r->start_reason), "io_uring_setup: %s", strerror(-rc));
    return rc;
}

/* Empty registered-file and -buffer tables, filled lazily; a ring without them reads plainly. */
static void ring_tables(struct uring_ring *r)
{
    struct uring_backend *b = r->e->backend;
    r->file_gen = calloc(b->file_pairs * 2, sizeof(*r->file_gen));
    r->buf_gen = calloc(BUF_SLOTS, sizeof(*r->buf_gen));
    r->files_ok = r->file_gen && b->file_slots && io_uring_register_files_sparse(&r->ring, b->file_pairs * 2) == 0;
    r->bufs_ok = r->buf_gen && b->buf_slots && io_uring_register_buffers_sparse(&r->ring, BUF_SLOTS) == 0;
}

/* Whether another ring is awake with work in hand: its last retire will let held completions
 * go (dsd_io_retire_held), or it times its own wait before it sleeps. */
static bool another_ring_busy(const struct uring_ring *r)
{
    const struct uring_backend *b = r->e->backend;
    for (unsigned i = 0; i < b->nrings; i++) {
        const struct uring_ring *q = &b->rings[i];
        if (q != r && !atomic_load(&q->sleeping) && atomic_load_explicit(&q->load, memory_order_relaxed))
            return true;
    }
    return false;
}

/* Submit what is prepared and wait for wait_nr completions. With completions held back
 * (flush_retire), page-cache reads are first given the chance to complete inline; the last ring
 * to go to sleep keeps holding across a real wait for DSD_IO_HOLD_MAX_US (running reads), then
 * lets go. Rings that sleep while another still works need no timer (one wake-up less each). */
static int ring_wait(struct uring_ring *r, unsigned wait_nr)
{
    if (wait_nr == 0 || !dsd_io_holding(r->e) || another_ring_busy(r))
        return io_uring_submit_and_wait(&r->ring, wait_nr);
    if (!(r->ring.features & IORING_FEAT_EXT_ARG)) {
        /* a timed wait would need a timeout SQE of liburing's own: just let go first */
        signal_held(r);
        return io_uring_submit_and_wait(&r->ring, wait_nr);
    }
    int rc = io_uring_submit(&r->ring);
    if (rc < 0 || io_uring_cq_ready(&r->ring))
        return rc;
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = DSD_IO_HOLD_MAX_US * 1000L};
    rc = io_uring_wait_cqe_timeout(&r->ring, &cqe, &ts);
    if (rc != -ETIME)
        return rc;
    signal_held(r);
    return io_uring_submit_and_wait(&r->ring, 1);
}

static void *ring_thread(void *arg)
{
    struct uring_ring *r = arg;
    int rc = ring_setup(r);
    if (rc == 0)
        ring_tables(r);
    pthread_mutex_lock(&r->lock);
    r->start_rc = rc;
    r->ring_ok = rc == 0;
    r->start_done = 1;
    pthread_cond_broadcast(&r->started);
    pthread_mutex_unlock(&r->lock);
    if (rc < 0)
        return NULL;

    arm_wake(r);
    for (;;) {
        struct cancel_cmd *cmds;
        struct evict_cmd *evs;
        size_t ncmds, nevs;
        int purge, stop;
        take_inbox(r, &cmds, &ncmds, &evs, &nevs, &purge, &stop);
        apply_evicts(r, evs, nevs);
        if (purge)
            purge_backlog(r);
        fill(r, stop);
        send_cancels(r, cmds, ncmds);
        if (stop && !r->stop_cancel_sent) {
            /* closing: whatever still runs (a read from a pipe, say) is cancelled */
            struct io_uring_sqe *sqe = get_sqe(r);
            if (sqe) {
                io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
                io_uring_sqe_set_data64(sqe, UD_CANCEL);
            }
            r->stop_cancel_sent = 1;
        }
        flush_retire(r);
        if (stop && r->inflight == 0 && r->bl_head == NULL)
            break;

        unsigned wait_nr = 1;
        atomic_store(&r->sleeping, 1);
        if (inbox_pending(r)) {
            atomic_store(&r->sleeping, 0);
            wait_nr = 0;
        }
        if (!r->wake_armed && !stop)
            arm_wake(r);
        rc = ring_wait(r, wait_nr);
        atomic_store(&r->sleeping, 0);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY && rc != -ETIME) {
            /* the ring itself failed: nothing sensible left but to stop waiting on it */
            pthread_mutex_lock(&r->lock);
            r->stop = 1;
            pthread_mutex_unlock(&r->lock);
        }

        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&r->ring, head, cqe)
        {
            seen++;
            uint64_t ud = cqe->user_data;
            if (ud == UD_WAKE) {
                r->wake_armed = 0;
            } else if (ud != UD_CANCEL) {
                on_read_cqe(r, (struct dsd_io_req *)(uintptr_t)ud, cqe->res);
            }
        }
        io_uring_cq_advance(&r->ring, seen);
    }
    flush_retire(r);
    signal_held(r);
    return NULL;
}

/* ---- engine side ---- */

static void ring_wake(struct uring_ring *r)
{
    if (atomic_exchange(&r->sleeping, 0)) {
        uint64_t one = 1;
        while (write(r->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR) {
        }
    }
}

static void ring_stop_join(struct uring_ring *r)
{
    if (!r->thread_started)
        return;
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_mutex_unlock(&r->lock);
    atomic_store(&r->sleeping, 1); /* force the write: the thread may be about to sleep */
    ring_wake(r);
    pthread_join(r->thread, NULL);
    r->thread_started = 0;
}

static void ring_free(struct uring_ring *r)
{
    if (r->ring_ok)
        io_uring_queue_exit(&r->ring);
    r->ring_ok = 0;
    if (r->wake_fd >= 0)
        close(r->wake_fd);
    r->wake_fd = -1;
    free(r->cancels);
    free(r->evicts);
    free(r->file_gen);
    free(r->buf_gen);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->started);
}

static void uring_destroy(struct dsd_io_engine *e)
{
    struct uring_backend *b = e->backend;
    if (b == NULL)
        return;
    for (unsigned i = 0; i < b->nrings; i++)
        ring_stop_join(&b->rings[i]);
    dsd_io_slots_detach(b->file_slots); /* no evictions into rings from here on */
    dsd_io_slots_detach(b->buf_slots);
    b->file_slots = b->buf_slots = NULL;
    for (unsigned i = 0; i < b->nrings; i++)
        ring_free(&b->rings[i]);
    free(b);
    e->backend = NULL;
}

static void post_evict(struct uring_backend *b, int kind, uint32_t slot, uint64_t gen)
{
    for (unsigned i = 0; i < b->nrings; i++) {
        struct uring_ring *r = &b->rings[i];
        pthread_mutex_lock(&r->lock);
        if (r->nevicts == r->cap_evicts) {
            size_t ncap = r->cap_evicts ? r->cap_evicts * 2 : 16;
            struct evict_cmd *c = realloc(r->evicts, ncap * sizeof(*c));
            if (c == NULL) { /* the entry stays until its slot is reused or the ring closes */
                pthread_mutex_unlock(&r->lock);
                continue;
            }
            r->evicts = c;
            r->cap_evicts = ncap;
        }
        r->evicts[r->nevicts++] = (struct evict_cmd){kind, slot, gen};
        pthread_mutex_unlock(&r->lock);
        ring_wake(r);
    }
}

static void evict_file(void *ctx, uint32_t slot, uint64_t gen)
{
    post_evict(ctx, EVICT_FILE, slot, gen);
}

static void evict_buf(void *ctx, uint32_t slot, uint64_t gen)
{
    post_evict(ctx, EVICT_BUF, slot, gen);
}

static int uring_start(struct dsd_io_engine *e, char *reason, size_t reason_len)
{
    char why[200];
    if (!dsd_io_uring_probe(why, sizeof(why))) {
        snprintf(reason, reason_len, "%s", why);
        return -EOPNOTSUPP;
    }
    unsigned n = e->cfg.workers;
    struct uring_backend *b = calloc(1, sizeof(*b) + n * sizeof(struct uring_ring));
    if (b == NULL) {
        snprintf(reason, reason_len, "out of memory");
        return -ENOMEM;
    }
    e->backend = b;
    /* the file table may not exceed RLIMIT_NOFILE (the kernel checks) */
    struct rlimit rl;
    uint64_t pairs = FILE_PAIRS_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 2 < pairs)
        pairs = rl.rlim_cur / 2;
    b->file_pairs = (uint32_t)(pairs ? pairs : 1);
    /* without directories the rings simply read through plain fds and addresses */
    if (dsd_io_slots_new(b->file_pairs, evict_file, b, &b->file_slots) < 0)
        b->file_slots = NULL;
    if (dsd_io_slots_new(BUF_SLOTS, evict_buf, b, &b->buf_slots) < 0)
        b->buf_slots = NULL;
    int rc = 0;
    for (unsigned i = 0; i < n; i++) {
        struct uring_ring *r = &b->rings[i];
        r->e = e;
        r->index = i;
        r->wake_fd = -1;
        pthread_mutex_init(&r->lock, NULL);
        pthread_cond_init(&r->started, NULL);
        b->nrings++;
        r->wake_fd = eventfd(0, EFD_CLOEXEC); /* blocking: io_uring polls it for us */
        if (r->wake_fd < 0) {
            rc = -errno;
            snprintf(reason, reason_len, "eventfd: %s", strerror(-rc));
            break;
        }
        int prc = pthread_create(&r->thread, NULL, ring_thread, r);
        if (prc != 0) {
            rc = -prc;
            snprintf(reason, reason_len, "pthread_create: %s", strerror(prc));
            break;
        }
        r->thread_started = 1;
        pthread_mutex_lock(&r->lock);
        while (!r->start_done)
            pthread_cond_wait(&r->started, &r->lock);
        rc = r->start_rc;
        pthread_mutex_unlock(&r->lock);
        if (rc < 0) {
            snprintf(reason, reason_len, "%s", r->start_reason);
            pthread_join(r->thread, NULL);
            r->thread_started = 0;
            break;
        }
    }
    if (rc < 0) {
        uring_destroy(e);
        return rc;
    }
    return 0;
}

static struct uring_ring *least_loaded(struct uring_backend *b)
{
    struct uring_ring *best = &b->rings[0];
    unsigned best_load = atomic_load_explicit(&best->load, memory_order_relaxed);
    for (unsigned i = 1; i < b->nrings; i++) {
        unsigned l = atomic_load_explicit(&b->rings[i].load, memory_order_relaxed);
        if (l < best_load) {
            best = &b->rings[i];
            best_load = l;
        }
    }
    return best;
}

static void uring_enqueue(struct dsd_io_engine *e, struct dsd_io_req **reqs, size_t n)
{
    struct uring_backend *b = e->backend;
    if (n == 0)
        return;
    size_t chunk = (n + b->nrings - 1) / b->nrings;
    for (size_t base = 0; base < n; base += chunk) {
        size_t m = n - base < chunk ? n - base : chunk;
        struct uring_ring *r = least_loaded(b);
        atomic_fetch_add_explicit(&r->load, (unsigned)m, memory_order_relaxed);
        for (size_t i = 0; i < m; i++) {
            __atomic_store_n(&reqs[base + i]->ring, (uint16_t)r->index, __ATOMIC_RELAXED);
            reqs[base + i]->next = i + 1 < m ? reqs[base + i + 1] : NULL;
        }
        pthread_mutex_lock(&r->lock);
        if (r->in_tail)
            r->in_tail->next = reqs[base];
        else
            r->in_head = reqs[base];
        r->in_tail = reqs[base + m - 1];
        pthread_mutex_unlock(&r->lock);
        ring_wake(r);
    }
}

static void uring_cancel_issued(struct dsd_io_engine *e, struct dsd_io_req *q)
{
    struct uring_backend *b = e->backend;
    uint16_t ring = __atomic_load_n(&q->ring, __ATOMIC_RELAXED);
    if (ring >= b->nrings)
        return;
    struct uring_ring *r = &b->rings[ring];
    pthread_mutex_lock(&r->lock);
    if (r->ncancels == r->cap_cancels) {
        size_t ncap = r->cap_cancels ? r->cap_cancels * 2 : 16;
        struct cancel_cmd *c = realloc(r->cancels, ncap * sizeof(*c));
        if (c == NULL) { /* best effort: the read finishes by itself */
            pthread_mutex_unlock(&r->lock);
            return;
        }
        r->cancels = c;
        r->cap_cancels = ncap;
    }
    r->cancels[r->ncancels++] = (struct cancel_cmd){q, __atomic_load_n(&q->seq, __ATOMIC_RELAXED)};
    pthread_mutex_unlock(&r->lock);
    ring_wake(r);
}

static void uring_kick(struct dsd_io_engine *e)
{
    struct uring_backend *b = e->backend;
    for (unsigned i = 0; i < b->nrings; i++) {
        struct uring_ring *r = &b->rings[i];
        pthread_mutex_lock(&r->lock);
        r->purge = 1;
        pthread_mutex_unlock(&r->lock);
        ring_wake(r);
    }
}

static void uring_stop(struct dsd_io_engine *e)
{
    struct uring_backend *b = e->backend;
    for (unsigned i = 0; i < b->nrings; i++) {
        struct uring_ring *r = &b->rings[i];
        pthread_mutex_lock(&r->lock);
        r->stop = 1;
        pthread_mutex_unlock(&r->lock);
        atomic_store(&r->sleeping, 1);
        ring_wake(r);
    }
    for (unsigned i = 0; i < b->nrings; i++)
        ring_stop_join(&b->rings[i]);
}

const struct dsd_io_backend_ops dsd_io_uring_ops = {
    .name = "uring",
    .start = uring_start,
    .enqueue = uring_enqueue,
    .cancel_issued = uring_cancel_issued,
    .kick = uring_kick,
    .stop = uring_stop,
    .destroy = uring_destroy,
};
