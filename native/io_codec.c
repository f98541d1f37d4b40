/*
 * The io engine's codec stage: a pool of threads (default one per core) that decode compressed
 * reads (GDeflate via gdeflate.h, Zstandard via libzstd), encode compressed writes, and copy
 * MEMORY sources. Many requests run at once, so each job runs on one thread with that worker's
 * own decompressor / compressor contexts (codec contexts are not thread-safe) and no tile
 * parallelism. Same executor contract as a backend (io_backend.h): claim, work, retire.
 *
 * Client regions are shared memory the client could truncate behind our back; the CPU touching
 * such a page gets SIGBUS. Every job therefore runs under the fault guard (fault_guard.h): a
 * SIGBUS on a worker inside a job jumps back out of it, and the job fails with EFAULT.
 */
#define _GNU_SOURCE
#include "io_backend.h"
#include "io_workq.h"
#include "fault_guard.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "gdeflate.h"

#define CODEC_BATCH 8

struct codec_worker {
    struct dsd_io_codec_pool *p;
    pthread_t thread;
    struct gdeflate_decompressor *gd;
    struct gdeflate_compressor *gc[GDEFLATE_MAX_LEVEL + 1];
    ZSTD_DCtx *zd;
    ZSTD_CCtx *zc;
    struct { uint64_t decoded, failures, encoded, copies; } k;
};

struct dsd_io_codec_pool {
    struct dsd_io_engine *e;
    struct dsd_io_workq q;
    int joined; /* stop() already joined the threads */
    struct codec_worker workers[];
};

/* ---- codec facts the engine validates against ---- */

uint64_t dsd_io_codec_bound(int compression, uint32_t len)
{
    if (compression == DSD_COMPRESSION_GDEFLATE)
        return gdeflate_compress_bound(len);
    if (compression == DSD_COMPRESSION_ZSTD) {
        size_t b = ZSTD_compressBound(len);
        return ZSTD_isError(b) ? 0 : b;
    }
    return len;
}

int dsd_io_codec_level_ok(int compression, int level)
{
    if (compression == DSD_COMPRESSION_GDEFLATE)
        return level >= GDEFLATE_MIN_LEVEL && level <= GDEFLATE_MAX_LEVEL;
    if (compression == DSD_COMPRESSION_ZSTD)
        return level >= ZSTD_minCLevel() && level <= ZSTD_maxCLevel();
    return 1;
}

/* ---- jobs ---- */

static void fail_msg(struct dsd_io_req *r, uint8_t reason, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail_msg(struct dsd_io_req *r, uint8_t reason, int err, const char *fmt, ...)
{
    dsd_io_req_set(r, DSD_STATUS_FAILED, reason, err);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
}

static void forget_contexts(struct codec_worker *w)
{
    gdeflate_free_decompressor(w->gd);
    w->gd = NULL;
    for (int i = 0; i <= GDEFLATE_MAX_LEVEL; i++) {
        gdeflate_free_compressor(w->gc[i]);
        w->gc[i] = NULL;
    }
    ZSTD_freeDCtx(w->zd);
    w->zd = NULL;
    ZSTD_freeCCtx(w->zc);
    w->zc = NULL;
}

static void decode_gdeflate(struct codec_worker *w, struct dsd_io_req *r, const uint8_t *in, size_t in_len)
{
    struct gdeflate_error err = {-1, ""};
    struct gdeflate_stream_info info;
    enum gdeflate_result res = gdeflate_parse_header(in, in_len, &info, &err);
    if (res != GDEFLATE_SUCCESS) {
        fail_msg(r, DSD_REASON_DECOMPRESS, EBADMSG, "GDeflate: %s", err.reason);
        return;
    }
    if (info.uncompressed_size != r->cdst_len) {
        fail_msg(r, DSD_REASON_DECOMPRESS, EBADMSG, "GDeflate: the stream decodes to %llu bytes, the destination is %u",
                 (unsigned long long)info.uncompressed_size, r->cdst_len);
        return;
    }
    if (w->gd == NULL && (w->gd = gdeflate_alloc_decompressor()) == NULL) {
        fail_msg(r, DSD_REASON_IO, ENOMEM, "GDeflate: no memory for a decompressor");
        return;
    }
    size_t got = 0;
    res = gdeflate_decompress(w->gd, in, in_len, r->cdst, r->cdst_len, &got, &err);
    if (res == GDEFLATE_NO_MEMORY) {
        fail_msg(r, DSD_REASON_IO, ENOMEM, "GDeflate: out of memory");
    } else if (res != GDEFLATE_SUCCESS) {
        if (err.tile >= 0)
            fail_msg(r, DSD_REASON_DECOMPRESS, EBADMSG, "GDeflate: tile %lld: %s", (long long)err.tile, err.reason);
        else
            fail_msg(r, DSD_REASON_DECOMPRESS, EBADMSG, "GDeflate: %s", err.reason);
    } else if (got != r->cdst_len) {
        fail_msg(r, DSD_REASON_DECOMPRESS, EBADMSG, "GDeflate: decoded %zu bytes, the destination is %u", got,
                 r->cdst_len);
    } else {
        dsd_io_req_set(r, DSD_STATUS_OK, DSD_REASON_NONE, 0);
    }
}

static void decode_zstd(struct codec_worker *w, struct dsd_io_req *r, const uint8_t *in, size_t in_len)
{
    if (in_len < 4 || (in[0] | in[1] << 8 | in[2] << 16 | (uint32_t)in[3] << 24) != ZSTD_MAGICNUMBER) {
        fail_msg(r, DSD_REASON_DECOMPRESS, EBADMSG, "Zstandard: not a zstd frame (bad magic bytes)");
        return;
    }
    size_t frame = ZSTD_findFrameCompressedSize(in, in_len);
    if (ZSTD_isError(frame)) {
        fail_msg(r, DSD_REASON_DECOMPRESS, EBADMSG, "Zstandard: %s", ZSTD_getErrorName(frame));
        return;
    }
    if (frame != in_len) {
        fail_msg(r, DSD_REASON_DECOMPRESS, EBADMSG, "Zstandard: %zu bytes after the frame (one request is one frame)",
                 in_len - frame);
        return;
    }
    unsigned long long content = ZSTD_getFrameContentSize(in, in_len);
    if (content != ZSTD_CONTENTSIZE_UNKNOWN && content != ZSTD_CONTENTSIZE_ERROR && content != r->cdst_len) {
        fail_msg(r, DSD_REASON_DECOMPRESS, EBADMSG, "Zstandard: the frame holds %llu bytes, the destination is %u",
                 content, r->cdst_len);
        return;
    }
    if (w->zd == NULL && (w->zd = ZSTD_createDCtx()) == NULL) {
        fail_msg(r, DSD_REASON_IO, ENOMEM, "Zstandard: no memory for a decompression context");
        return;
    }
    size_t got = ZSTD_decompressDCtx(w->zd, r->cdst, r->cdst_len, in, in_len);
    if (ZSTD_isError(got)) {
        if (ZSTD_getErrorCode(got) == ZSTD_error_memory_allocation)
            fail_msg(r, DSD_REASON_IO, ENOMEM, "Zstandard: out of memory");
        else
            fail_msg(r, DSD_REASON_DECOMPRESS, EBADMSG, "Zstandard: %s", ZSTD_getErrorName(got));
        ZSTD_DCtx_reset(w->zd, ZSTD_reset_session_only);
    } else if (got != r->cdst_len) {
        fail_msg(r, DSD_REASON_DECOMPRESS, EBADMSG, "Zstandard: decoded %zu bytes, the destination is %u", got,
                 r->cdst_len);
    } else {
        dsd_io_req_set(r, DSD_STATUS_OK, DSD_REASON_NONE, 0);
    }
}

static void encode(struct codec_worker *w, struct dsd_io_req *r)
{
    size_t out = 0;
    if (r->compression == DSD_COMPRESSION_GDEFLATE) {
        int level = r->level;
        if (w->gc[level] == NULL && (w->gc[level] = gdeflate_alloc_compressor(level)) == NULL) {
            fail_msg(r, DSD_REASON_IO, ENOMEM, "GDeflate: no memory for a level-%d compressor", level);
            return;
        }
        enum gdeflate_result res = gdeflate_compress(w->gc[level], r->csrc, r->csrc_len, r->staging, r->staging_len, &out);
        if (res != GDEFLATE_SUCCESS) {
            fail_msg(r, DSD_REASON_IO, res == GDEFLATE_NO_MEMORY ? ENOMEM : EINVAL, "GDeflate: compression failed: %s",
                     gdeflate_result_string(res));
            return;
        }
    } else {
        if (w->zc == NULL && (w->zc = ZSTD_createCCtx()) == NULL) {
            fail_msg(r, DSD_REASON_IO, ENOMEM, "Zstandard: no memory for a compression context");
            return;
        }
        ZSTD_CCtx_reset(w->zc, ZSTD_reset_session_and_parameters);
        size_t rc = ZSTD_CCtx_setParameter(w->zc, ZSTD_c_compressionLevel, r->level);
        if (!ZSTD_isError(rc))
            rc = ZSTD_CCtx_setParameter(w->zc, ZSTD_c_contentSizeFlag, 1);
        if (!ZSTD_isError(rc))
            rc = ZSTD_compress2(w->zc, r->staging, r->staging_len, r->csrc, r->csrc_len);
        if (ZSTD_isError(rc)) {
            fail_msg(r, DSD_REASON_IO, ZSTD_getErrorCode(rc) == ZSTD_error_memory_allocation ? ENOMEM : EINVAL,
                     "Zstandard: compression failed: %s", ZSTD_getErrorName(rc));
            return;
        }
        out = rc;
    }
    if (r->cdst_len != 0 && out > r->cdst_len) {
        fail_msg(r, DSD_REASON_SIZE_MISMATCH, EFBIG, "compressed to %zu bytes, more than dst_size %u allows", out,
                 r->cdst_len);
        return;
    }
    w->k.encoded++;
    r->buf = r->staging; /* the io stage writes the compressed bytes */
    r->size = (uint32_t)out;
    r->done = 0;
    dsd_io_req_set(r, DSD_STATUS_OK, DSD_REASON_NONE, 0);
}

static void run_job(struct codec_worker *w, struct dsd_io_req *r)
{
    switch (r->codec) {
    case DSD_CODEC_COPY:
        if (r->csrc_len)
            memmove(r->cdst, r->csrc, r->csrc_len);
        w->k.copies++;
        r->done = r->csrc_len;
        dsd_io_req_set(r, DSD_STATUS_OK, DSD_REASON_NONE, 0);
        return;
    case DSD_CODEC_DECODE: {
        const uint8_t *in = r->csrc;
        if (r->copy_in) {
            /* the client may rewrite its memory while we decode: decode a private copy */
            memcpy(r->staging, r->csrc, r->csrc_len);
            in = r->staging;
        }
        if (r->compression == DSD_COMPRESSION_GDEFLATE)
            decode_gdeflate(w, r, in, r->csrc_len);
        else
            decode_zstd(w, r, in, r->csrc_len);
        if (r->status == DSD_STATUS_OK) {
            w->k.decoded++;
            r->done = r->cdst_len;
        } else if (r->reason == DSD_REASON_DECOMPRESS) {
            w->k.failures++;
        }
        return;
    }
    case DSD_CODEC_ENCODE:
        encode(w, r);
        return;
    default:
        fail_msg(r, DSD_REASON_UNSUPPORTED, EOPNOTSUPP, "unknown codec job %d", r->codec);
    }
}

struct job {
    struct codec_worker *w;
    struct dsd_io_req *r;
};

static void job_thunk(void *arg)
{
    struct job *j = arg;
    run_job(j->w, j->r);
}

/* run_job under the fault guard (fault_guard.h). */
static void guarded_job(struct codec_worker *w, struct dsd_io_req *r)
{
    struct job j = {w, r};
    if (dsd_fault_guard_run(job_thunk, &j))
        return;
    /* a client region lost its pages under us; the contexts may be half-way: start afresh */
    forget_contexts(w);
    fail_msg(r, DSD_REASON_IO, EFAULT, "a region's memory went away during the job (shared memory truncated?)");
}

static void *codec_thread(void *arg)
{
    struct codec_worker *w = arg;
    struct dsd_io_codec_pool *p = w->p;
    struct dsd_io_engine *e = p->e;
    struct dsd_io_req *batch[CODEC_BATCH];
    for (;;) {
        int stopping;
        size_t n = dsd_io_workq_take(&p->q, batch, CODEC_BATCH, &stopping);
        if (n == 0)
            break;

        for (size_t i = 0; i < n; i++) {
            struct dsd_io_req *r = batch[i];
            if (!dsd_io_req_claim(r))
                continue; /* cancelled while queued: already reported */
            if (stopping)
                dsd_io_req_shutdown(r);
            else if (atomic_load_explicit(&r->cancel_requested, memory_order_relaxed))
                dsd_io_req_set(r, DSD_STATUS_CANCELLED, DSD_REASON_CANCELLED, ECANCELED);
            else
                guarded_job(w, r);
        }
        atomic_fetch_add_explicit(&e->n_decoded, w->k.decoded, memory_order_relaxed);
        atomic_fetch_add_explicit(&e->n_decode_failures, w->k.failures, memory_order_relaxed);
        atomic_fetch_add_explicit(&e->n_encoded, w->k.encoded, memory_order_relaxed);
        atomic_fetch_add_explicit(&e->n_copies, w->k.copies, memory_order_relaxed);
        memset(&w->k, 0, sizeof(w->k));
        dsd_io_retire(e, batch, n);
    }
    forget_contexts(w);
    return NULL;
}

int dsd_io_codec_start(struct dsd_io_engine *e, unsigned threads, struct dsd_io_codec_pool **out, char *reason,
                       size_t reason_len)
{
    if (threads == 0)
        threads = dsd_io_online_cpus();
    struct dsd_io_codec_pool *p = calloc(1, sizeof(*p) + threads * sizeof(struct codec_worker));
    if (p == NULL) {
        snprintf(reason, reason_len, "out of memory");
        return -ENOMEM;
    }
    dsd_fault_guard_install(); /* failing that, jobs run unguarded, as they would have to anyway */
    p->e = e;
    dsd_io_workq_init(&p->q);
    for (unsigned i = 0; i < threads; i++) {
        p->workers[i].p = p;
        int rc = pthread_create(&p->workers[i].thread, NULL, codec_thread, &p->workers[i]);
        if (rc != 0) {
            snprintf(reason, reason_len, "codec threads: pthread_create: %s", strerror(rc));
            dsd_io_codec_stop(p);
            dsd_io_codec_free(p);
            return -rc;
        }
        p->q.nworkers++;
    }
    *out = p;
    return 0;
}

void dsd_io_codec_enqueue(struct dsd_io_codec_pool *p, struct dsd_io_req **reqs, size_t n)
{
    dsd_io_workq_push(&p->q, reqs, n);
}

void dsd_io_codec_stop(struct dsd_io_codec_pool *p)
{
    if (p == NULL)
        return;
    if (p->joined)
        return;
    dsd_io_workq_stop(&p->q);
    for (unsigned i = 0; i < p->q.nworkers; i++)
        pthread_join(p->workers[i].thread, NULL);
    p->joined = 1;
}

void dsd_io_codec_free(struct dsd_io_codec_pool *p)
{
    if (p == NULL)
        return;
    dsd_io_workq_destroy(&p->q);
    free(p);
}
