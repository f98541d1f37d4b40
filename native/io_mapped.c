/*
 * The mapped read path: a read whose pages are already in the page cache is copied straight out
 * of a shared read-only mapping of the file, on the backend thread that took it, with no
 * syscall of its own.
 *
 * Why: for page-cache reads both backends are bound by the kernel, not by the device. A 4 KiB
 * pread here costs ~0.7 us, ~0.35 us of it the copy; io_uring saves the syscall entry but still
 * pays the page-cache lookup and its own request handling for every read (docs/io-engine.md).
 * Copying from a mapping pays the copy and a table lookup.
 *
 * What keeps it correct:
 *  - Residency. Touching a page that is not cached would block the ring thread on the disk (a
 *    major fault), so the path only takes reads whose pages mincore() said were cached. mincore
 *    is one syscall per 2 MiB chunk of the file, its answer kept for RECHECK_MS; a file where
 *    nothing was cached (COLD_STREAK checks in a row) is not looked at again for a while (backing off up to COLD_MAX_MS), so
 *    reads of cold files and O_DIRECT streams pay almost nothing for the path. A page evicted
 *    after its check still reads correctly (the kernel faults it in); it only costs a wait.
 *  - Truncation. A page past the file's new end raises SIGBUS: the copy runs under
 *    fault_guard.h and the read is redone with pread. (So is one whose destination faulted: a
 *    client can shrink its shared memory; pread then fails EFAULT as it always did.) A copy racing a truncation can also see
 *    the zeroed tail of the new last page, so every batch of mapped reads is confirmed with one
 *    fstat per file after the copies: a read that no longer fits is redone with pread too, which
 *    gives the short read (EOF) it would have had.
 *  - Only reads within the size the file had when it was mapped take the path; the rest (a file
 *    that grew) go through the backend as before.
 *  - A buffered read the backend finished has just put its pages in the page cache: they are
 *    marked cached at once (dsd_io_mapped_adopt), so reading them again takes the path without
 *    waiting for the chunk's next check. This also serves files mincore() says little about:
 *    it reports the page cache only for files the caller could open for writing (or owns), and
 *    for others only the pages already mapped.
 * `DSD_IO_MAPPED=off` turns the path off.
 */
#define _GNU_SOURCE
#include "io_backend.h"
#include "io_mapped.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "fault_guard.h"

#define CHUNK_PAGES 512u                   /* one mincore() per this many pages (2 MiB of 4 KiB pages) */
#define CHUNK_WORDS (CHUNK_PAGES / 64u)
#define RECHECK_MS 1000u                   /* how long a chunk's answer is trusted */
#define COLD_STREAK 8u                     /* checks in a row finding nothing cached make a file cold */
#define COLD_MIN_MS 8u                     /* a cold file's first pause before looking again */
#define COLD_MAX_MS 1024u
#define MAPPED_MAX ((uint64_t)1 << 40)     /* larger files are not mapped (their tables would be large) */
#define PREFETCH_LINES 4u                  /* of a read's source, before the copy ahead of it: 4 KiB 350 -> 245 ns */
#define MAPPINGS_MAX 4096u                 /* files mapped at once: each is a VMA, and the process has 65530 */
#define SIZE_CACHE 8                       /* distinct files one confirm() fstat()s once each */

struct dsd_io_mapping {
    const uint8_t *base;
    uint64_t len;                 /* bytes mapped: the file's size when it was mapped */
    uint64_t npages;
    unsigned page_shift;
    _Atomic uint64_t cold_streak; /* checks in a row that found nothing cached */
    _Atomic uint64_t cold_until;  /* ms: do not look before then (nothing was cached lately) */
    _Atomic uint64_t cold_pause;  /* ms: the next pause, doubling up to COLD_MAX_MS */
    _Atomic uint64_t *checked;    /* per chunk: ms of its last mincore() (0: never) */
    _Atomic uint64_t *resident;   /* per page, one bit: cached at that check */
};

static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint live_mappings; /* over MAPPINGS_MAX, new files wait for others to go */

void dsd_io_mapping_free(struct dsd_io_mapping *m)
{
    if (m == NULL)
        return;
    munmap((void *)m->base, (size_t)m->len);
    atomic_fetch_sub_explicit(&live_mappings, 1, memory_order_relaxed);
    free(m->checked);
    free(m->resident);
    free(m);
}

uint64_t dsd_io_mapped_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u + 1u; /* never 0 */
}

static struct dsd_io_mapping *map_file(struct dsd_io_file *f)
{
    struct stat st;
    if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t)st.st_size > MAPPED_MAX)
        return NULL;
    if (dsd_fault_guard_install() != 0)
        return NULL;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || (page & (page - 1)) != 0)
        return NULL;
    struct dsd_io_mapping *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->len = (uint64_t)st.st_size;
    m->page_shift = (unsigned)__builtin_ctzl((unsigned long)page);
    m->npages = (m->len + (uint64_t)page - 1) >> m->page_shift;
    uint64_t nchunks = (m->npages + CHUNK_PAGES - 1) / CHUNK_PAGES;
    m->checked = calloc(nchunks, sizeof(*m->checked));
    m->resident = calloc(nchunks * CHUNK_WORDS, sizeof(*m->resident));
    void *base = m->checked && m->resident ? mmap(NULL, (size_t)m->len, PROT_READ, MAP_SHARED, f->fd, 0) : MAP_FAILED;
    if (base == MAP_FAILED) { /* e.g. a write-only fd, or a filesystem without mmap */
        free(m->checked);
        free(m->resident);
        free(m);
        return NULL;
    }
    m->base = base;
    atomic_store_explicit(&m->cold_pause, COLD_MIN_MS, memory_order_relaxed);
    atomic_fetch_add_explicit(&live_mappings, 1, memory_order_relaxed);
    return m;
}

/* f's mapping, made on first use; NULL if the file cannot be mapped (then never tried again) or
 * MAPPINGS_MAX files are mapped already. */
static struct dsd_io_mapping *mapping_of(struct dsd_io_file *f)
{
    struct dsd_io_mapping *m = atomic_load_explicit(&f->mapping, memory_order_acquire);
    if (m != NULL || atomic_load_explicit(&f->map_refused, memory_order_relaxed) ||
        atomic_load_explicit(&live_mappings, memory_order_relaxed) >= MAPPINGS_MAX)
        return m; /* over the cap: not refused, tried again once others are unmapped */
    pthread_mutex_lock(&map_lock);
    m = atomic_load_explicit(&f->mapping, memory_order_relaxed);
    if (m == NULL && !atomic_load_explicit(&f->map_refused, memory_order_relaxed)) {
        m = map_file(f);
        if (m != NULL)
            atomic_store_explicit(&f->mapping, m, memory_order_release);
        else
            atomic_store_explicit(&f->map_refused, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&map_lock);
    return m;
}

/* Asks the kernel which pages of chunk c are cached; false if none is (or it would not say). */
static bool check_chunk(struct dsd_io_mapping *m, uint64_t c, uint64_t now)
{
    unsigned char vec[CHUNK_PAGES];
    uint64_t first = c * CHUNK_PAGES;
    uint64_t n = m->npages - first < CHUNK_PAGES ? m->npages - first : CHUNK_PAGES;
    bool any = false;
    if (mincore((void *)(m->base + (first << m->page_shift)), (size_t)(n << m->page_shift), vec) != 0)
        n = 0;
    for (unsigned w = 0; w < CHUNK_WORDS; w++) {
        uint64_t bits = 0;
        for (unsigned i = 0; i < 64 && w * 64u + i < n; i++)
            bits |= (uint64_t)(vec[w * 64u + i] & 1u) << i;
        any |= bits != 0;
        atomic_store_explicit(&m->resident[c * CHUNK_WORDS + w], bits, memory_order_relaxed);
    }
    atomic_store_explicit(&m->checked[c], now, memory_order_release);
    if (any) {
        atomic_store_explicit(&m->cold_streak, 0, memory_order_relaxed);
        atomic_store_explicit(&m->cold_pause, COLD_MIN_MS, memory_order_relaxed);
    } else if (atomic_fetch_add_explicit(&m->cold_streak, 1, memory_order_relaxed) + 1 >= COLD_STREAK) {
        uint64_t pause = atomic_load_explicit(&m->cold_pause, memory_order_relaxed);
        atomic_store_explicit(&m->cold_until, now + pause, memory_order_relaxed);
        atomic_store_explicit(&m->cold_pause, pause * 2 > COLD_MAX_MS ? COLD_MAX_MS : pause * 2, memory_order_relaxed);
    }
    return any;
}

/* The bits of pages p..p1 that lie in p's word of the residency table (a range walks it word by
 * word: p = (p / 64 + 1) * 64). */
static uint64_t word_bits(uint64_t p, uint64_t p1)
{
    unsigned lo = (unsigned)(p % 64);
    unsigned hi = p1 / 64 == p / 64 ? (unsigned)(p1 % 64) : 63u;
    return (hi == 63 ? ~0ull : ((1ull << (hi + 1)) - 1)) & (~0ull << lo);
}

/* Whether pages p0..p1 were all cached at their chunk's last check, checking stale chunks. */
static bool resident(struct dsd_io_mapping *m, uint64_t p0, uint64_t p1, uint64_t now)
{
    if (now < atomic_load_explicit(&m->cold_until, memory_order_relaxed))
        return false;
    for (uint64_t c = p0 / CHUNK_PAGES; c <= p1 / CHUNK_PAGES; c++) {
        uint64_t t = atomic_load_explicit(&m->checked[c], memory_order_acquire);
        if ((t == 0 || now - t >= RECHECK_MS) && !check_chunk(m, c, now))
            return false;
    }
    for (uint64_t p = p0; p <= p1; p = (p / 64 + 1) * 64) {
        uint64_t want = word_bits(p, p1);
        if ((atomic_load_explicit(&m->resident[p / 64], memory_order_relaxed) & want) != want)
            return false;
    }
    return true;
}

/* Where q's bytes lie in its file's mapping, if the path may take it; NULL if not. */
static const uint8_t *source_of(struct dsd_io_engine *e, const struct dsd_io_req *q, uint64_t now)
{
    if (e->cfg.mapped != DSD_IO_MAPPED_AUTO || q->op != DSD_OP_READ || q->file == NULL || q->size == 0 || q->done != 0)
        return NULL;
    struct dsd_io_mapping *m = mapping_of(q->file);
    if (m == NULL || q->offset >= m->len || q->size > m->len - q->offset)
        return NULL;
    if (!resident(m, q->offset >> m->page_shift, (q->offset + q->size - 1) >> m->page_shift, now))
        return NULL;
    return m->base + q->offset;
}

bool dsd_io_mapped_take(struct dsd_io_engine *e, struct dsd_io_mapped_pipe *pipe, struct dsd_io_req *q, uint64_t now,
                        struct dsd_io_req **copied)
{
    *copied = NULL;
    const uint8_t *src = source_of(e, q, now);
    if (src == NULL)
        return false;
    /* prefetches never fault, so a page that is not there (or no longer) costs nothing */
    for (unsigned i = 0; i < PREFETCH_LINES; i++)
        __builtin_prefetch(src + i * 64u);
    *copied = dsd_io_mapped_drain(pipe);
    pipe->q = q;
    pipe->src = src;
    return true;
}

struct dsd_io_req *dsd_io_mapped_drain(struct dsd_io_mapped_pipe *pipe)
{
    struct dsd_io_req *q = pipe->q;
    if (q == NULL)
        return NULL;
    /* a fault (the file shrank, or the destination did) leaves done at 0: confirm() redoes the read
     * with pread, which then reports what the kernel says (EOF, EFAULT) */
    if (dsd_fault_guard_copy(q->buf, pipe->src, q->size))
        q->done = q->size;
    pipe->q = NULL;
    return q;
}

void dsd_io_mapped_adopt(const struct dsd_io_req *q)
{
    if (q->op != DSD_OP_READ || q->direct || q->status != DSD_STATUS_OK || q->file == NULL || q->size == 0)
        return;
    struct dsd_io_mapping *m = atomic_load_explicit(&q->file->mapping, memory_order_acquire);
    if (m == NULL || q->offset >= m->len || q->size > m->len - q->offset)
        return;
    uint64_t p1 = (q->offset + q->size - 1) >> m->page_shift;
    for (uint64_t p = q->offset >> m->page_shift; p <= p1; p = (p / 64 + 1) * 64) {
        /* only chunks already looked at: an unchecked one gets its mincore() answer when first used
         * (a word never spans two chunks) */
        if (atomic_load_explicit(&m->checked[p / CHUNK_PAGES], memory_order_relaxed) != 0)
            atomic_fetch_or_explicit(&m->resident[p / 64], word_bits(p, p1), memory_order_relaxed);
    }
}

struct size_cache {
    struct dsd_io_file *file[SIZE_CACHE];
    int64_t size[SIZE_CACHE]; /* -1: fstat failed */
    unsigned n;
};

static int64_t file_size_now(struct size_cache *sc, struct dsd_io_file *f)
{
    for (unsigned i = 0; i < sc->n; i++)
        if (sc->file[i] == f)
            return sc->size[i];
    struct stat st;
    int64_t size = fstat(f->fd, &st) == 0 ? (int64_t)st.st_size : -1;
    if (sc->n < SIZE_CACHE) {
        sc->file[sc->n] = f;
        sc->size[sc->n++] = size;
    }
    return size;
}

void dsd_io_mapped_confirm(struct dsd_io_engine *e, struct dsd_io_req **reqs, size_t n)
{
    if (n == 0)
        return;
    struct size_cache sc = {.n = 0};
    struct dsd_io_sync_counters k = {0};
    uint64_t mapped = 0, redone = 0;
    for (size_t i = 0; i < n; i++) {
        struct dsd_io_req *q = reqs[i];
        int64_t size = q->done == q->size ? file_size_now(&sc, q->file) : -1;
        if (size >= 0 && (uint64_t)size >= q->offset + q->size) {
            dsd_io_req_set(q, DSD_STATUS_OK, DSD_REASON_NONE, 0);
            mapped++;
            continue;
        }
        q->done = 0;
        dsd_io_transfer_sync(e, q, &k);
        redone++;
    }
    atomic_fetch_add_explicit(&e->n_mapped, mapped, memory_order_relaxed);
    if (redone) {
        atomic_fetch_add_explicit(&e->n_mapped_redone, redone, memory_order_relaxed);
        dsd_io_sync_counters_flush(e, &k);
    }
}
