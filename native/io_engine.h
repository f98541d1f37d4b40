/*
 * dsd io engine, C API: batches of packed request records (dsd_wire.h) in, packed completion
 * records out, grouped per client, with an eventfd that is readable while completions wait.
 *
 * Two backends do the file I/O (reads, writes, fsync): io_uring rings (io_uring.c) and a
 * pread/pwrite thread pool (io_posix.c). A codec pool (io_codec.c) decodes compressed reads
 * (GDeflate, Zstandard), encodes compressed writes and copies MEMORY sources, with staging
 * buffers from a bounded arena (io_staging.c). The engine (io_engine.c) owns parsing and
 * validation, the stages, the per-client completion lists, cancellation and statistics, so both
 * backends behave the same to callers.
 * Every function returns 0 or -errno, liburing style; nothing prints or aborts.
 */
#ifndef DSD_IO_ENGINE_H
#define DSD_IO_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "dsd_wire.h"
#include "io_registry.h"

enum dsd_io_backend_kind {
    DSD_IO_BACKEND_AUTO = 0,  /* io_uring when a ring can be set up, else the pread pool */
    DSD_IO_BACKEND_URING = 1,
    DSD_IO_BACKEND_POSIX = 2,
};

enum dsd_io_direct_mode {
    DSD_IO_DIRECT_AUTO = 0, /* O_DIRECT for each request whose offset, size and buffer allow it */
    DSD_IO_DIRECT_OFF = 1,  /* always through the page cache */
};

enum dsd_io_register_mode {
    DSD_IO_REGISTER_AUTO = 0, /* io_uring registered files and buffers where the kernel allows */
    DSD_IO_REGISTER_OFF = 1,  /* plain fds and addresses */
};

struct dsd_io_config {
    int backend;          /* enum dsd_io_backend_kind */
    unsigned workers;     /* pread threads or io_uring rings; 0 = one per online core */
    unsigned queue_depth; /* reads in flight per ring (uring); 0 = 64 */
    int sqpoll;           /* io_uring SQPOLL (kernel submission thread per ring) */
    int direct;           /* enum dsd_io_direct_mode */
    int register_mode;    /* enum dsd_io_register_mode */
    uint64_t staging_bytes; /* staging arena; 0 = none (every compressed request is TOO_LARGE) */
    unsigned codec_workers; /* codec threads; 0 = one per online core */
    int coalesce;           /* enum dsd_io_coalesce: when finished requests wake the reaper (io_uring) */
    int mapped;             /* enum dsd_io_mapped_mode */
};

enum dsd_io_mapped_mode {
    DSD_IO_MAPPED_AUTO = 0, /* reads whose pages are cached are copied from a mapping of the file (io_mapped.c) */
    DSD_IO_MAPPED_OFF = 1,  /* every read goes through the backend (pread, io_uring) */
};

/* When the io_uring rings wake the reaper for finished requests (dsd_io_retire_held): each
 * wake-up costs the caller a trip round its event loop. */
enum dsd_io_coalesce {
    DSD_IO_COALESCE_OFF = 0,    /* at every ring loop */
    DSD_IO_COALESCE_HALVES = 1, /* once what is held is at least what is left running, when the engine
                                   runs dry, or after DSD_IO_HOLD_MAX_US: a caller that refills as
                                   completions come never starves its queue (double buffering) */
    DSD_IO_COALESCE_BURSTS = 2, /* when the engine runs dry or after DSD_IO_HOLD_MAX_US: one wake-up
                                   per burst for callers that wait for the whole of it (the daemon) */
};

#define DSD_IO_STAGING_DEFAULT (32u << 20) /* DirectStorage's default staging buffer size */
#define DSD_IO_STAGING_MAX ((uint64_t)1 << 40)

struct dsd_io_stats {
    uint64_t submitted;   /* records handed to submit */
    uint64_t rejected;    /* failed validation at submit (also counted in failed) */
    uint64_t completed;   /* finished OK */
    uint64_t failed;      /* finished FAILED (validation, EOF, I/O errors) */
    uint64_t cancelled;   /* finished CANCELLED (cancel or shutdown) */
    uint64_t dropped;     /* retired without a completion because the client was dropped */
    uint64_t bytes;       /* bytes delivered by OK requests */
    uint64_t in_flight;   /* accepted requests not yet retired */
    uint64_t pending;     /* completion records waiting for reap */
    uint64_t direct_reads;   /* read syscalls / SQEs issued with O_DIRECT */
    uint64_t buffered_reads; /* ... through the page cache */
    uint64_t short_reads;    /* reads continued after a short result */
    uint64_t retries;        /* EINTR / EAGAIN retries, O_DIRECT fallbacks */
    uint64_t fixed_files;    /* io_uring SQEs that used a registered file */
    uint64_t fixed_buffers;  /* io_uring SQEs that used a registered buffer */
    uint64_t writes;         /* WRITE requests completed OK */
    uint64_t bytes_written;  /* bytes those wrote to files (compressed size when compressed) */
    uint64_t fsyncs;         /* FSYNC requests completed OK */
    uint64_t decoded;        /* compressed reads decoded OK */
    uint64_t decode_failures; /* ... that failed with DECOMPRESS */
    uint64_t encoded;        /* compressed writes encoded OK */
    uint64_t copies;         /* MEMORY-source copies done */
    uint64_t mapped_reads;   /* reads copied from the page cache through a mapping of the file */
    uint64_t mapped_redone;  /* ... whose file shrank meanwhile: redone with pread */
    uint64_t staging_bytes;  /* the limit */
    uint64_t staging_in_use; /* bytes of staging held now */
    uint64_t staging_peak;
    uint64_t staging_waits;  /* requests that had to wait for staging space */
    uint64_t staging_waiting; /* requests waiting now */
    unsigned codec_workers;
    unsigned workers;
    unsigned queue_depth;
    int sqpoll;
    int direct;
    int register_mode;
    int coalesce;
    int mapped;
    const char *backend;  /* "uring" or "posix" */
};

struct dsd_io_engine;

/* Starts the backend. On return (success or not) `reason` holds why this backend was chosen
 * (for AUTO: why io_uring was not, if it was not). -errno if the requested backend cannot start. */
int dsd_io_engine_new(const struct dsd_io_config *cfg, struct dsd_io_engine **out, char *reason, size_t reason_len);
/* Closes (if still open) and frees. The registry objects used with it stay valid. */
void dsd_io_engine_free(struct dsd_io_engine *e);
/* Stops the backend; requests not yet started complete CANCELLED with reason SHUTDOWN.
 * Completions stay reapable afterwards. */
void dsd_io_engine_close(struct dsd_io_engine *e);

const char *dsd_io_engine_backend(const struct dsd_io_engine *e);
const char *dsd_io_engine_reason(const struct dsd_io_engine *e);
int dsd_io_engine_fd(const struct dsd_io_engine *e); /* eventfd, readable while completions wait */

/* Parses `n` records (no alignment needed). A bad record becomes an immediate FAILED completion;
 * *accepted counts the records that went to the backend or completed at once (0-byte reads).
 * -ESHUTDOWN after close, -ENOMEM if request slots could not be allocated (nothing of the rest
 * of the batch was queued then; *accepted says how far it got). */
int dsd_io_engine_submit(struct dsd_io_engine *e, struct dsd_io_registry *reg, uint64_t client_key,
                         const void *records, size_t n, size_t *accepted);

/* Hands each client's waiting completions to fn (records packed back to back), together with the
 * original request record of each FAILED one (in completion order), and forgets them.
 * Drains the eventfd first, so a completion that arrives during reap makes it readable again.
 * If fn returns nonzero, reaping stops and that value is returned (the records handed to that
 * call are consumed; the other clients' records stay for the next reap). */
typedef int (*dsd_io_reap_fn)(void *ctx, uint64_t client_key, const struct dsd_completion_record *recs, size_t n,
                              const struct dsd_request_record *failed, size_t nfailed);
int dsd_io_engine_reap(struct dsd_io_engine *e, dsd_io_reap_fn fn, void *ctx);
/* The same, with one message per FAILED request (parallel to `failed`): why it failed in words,
 * e.g. the codec's reason and tile; "" when the reason and errno say everything. */
typedef int (*dsd_io_reap_ex_fn)(void *ctx, uint64_t client_key, const struct dsd_completion_record *recs, size_t n,
                                 const struct dsd_request_record *failed, const char *const *messages, size_t nfailed);
int dsd_io_engine_reap_ex(struct dsd_io_engine *e, dsd_io_reap_ex_fn fn, void *ctx);

/* Cancels the client's requests whose (cancel_tag & mask) == value, or (by_id) whose request_id
 * is id. Queued ones complete CANCELLED now; running ones are asked to stop (io_uring
 * ASYNC_CANCEL) and may still finish OK. *count = requests reached (queued + running). */
int dsd_io_engine_cancel(struct dsd_io_engine *e, uint64_t client_key, uint64_t mask, uint64_t value, int by_id,
                         uint64_t id, size_t *count);
/* The client is gone: cancel everything it has, never report any of it, forget its completions. */
int dsd_io_engine_drop_client(struct dsd_io_engine *e, uint64_t client_key);

void dsd_io_engine_stats(struct dsd_io_engine *e, struct dsd_io_stats *out);

/* Host capability checks (for `dsd doctor` and AUTO); reason says why not. */
int dsd_io_uring_probe(char *reason, size_t reason_len);                   /* 1 usable, 0 not */
int dsd_io_odirect_probe(const char *path, char *reason, size_t reason_len); /* 1 usable, 0 not */

#endif
