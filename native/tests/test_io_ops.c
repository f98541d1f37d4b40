/*
 * The io engine's issue-7 paths through its C API, under ASan/UBSan, for both backends: writes
 * (aligned and not) read back with pread, fsync, MEMORY copies, GDeflate and Zstandard reads from
 * files and memory, compressed writes decoded back, corrupt streams, TOO_LARGE, many compressed
 * requests through a tiny staging arena with cancels and a dropped client racing them, close with
 * requests waiting for staging, and a client region truncated under a codec job (EFAULT, no
 * SIGBUS). io_uring SKIPs (exit status 0, the reason printed) where the kernel forbids it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zstd.h>

#include "../gdeflate.h"
#include "../io_engine.h"
#include "io_test_wait.h"
#include "../io_staging.h"

static const char *backend_name = "";

#define CHECK(cond)                                                                                 \
    do {                                                                                            \
        if (!(cond)) {                                                                              \
            fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, backend_name, #cond); \
            exit(1);                                                                                \
        }                                                                                           \
    } while (0)

#define MAXC 4096
static struct dsd_completion_record got[MAXC];
static char got_msg[MAXC][128];
static uint64_t got_key[MAXC];
static size_t ngot;

static int on_reap(void *ctx, uint64_t key, const struct dsd_completion_record *recs, size_t n,
                   const struct dsd_request_record *failed, const char *const *messages, size_t nfailed)
{
    (void)ctx;
    size_t f = 0;
    for (size_t i = 0; i < n && ngot < MAXC; i++) {
        got_key[ngot] = key;
        got_msg[ngot][0] = '\0';
        if (recs[i].status == DSD_STATUS_FAILED) {
            if (f >= nfailed || failed[f].request_id != recs[i].request_id)
                return -EINVAL;
            snprintf(got_msg[ngot], sizeof(got_msg[ngot]), "%s", messages[f]);
            f++;
        }
        got[ngot++] = recs[i];
    }
    return f == nfailed ? 0 : -EINVAL;
}

static void collect(struct dsd_io_engine *e, size_t want)
{
    ngot = 0;
    for (int spins = 0; ngot < want; spins++) {
        CHECK(spins < 3000);
        struct pollfd p = {.fd = dsd_io_engine_fd(e), .events = POLLIN};
        poll(&p, 1, 10);
        CHECK(dsd_io_engine_reap_ex(e, on_reap, NULL) == 0);
    }
    CHECK(ngot == want);
}

static size_t find(uint64_t id)
{
    for (size_t i = 0; i < ngot; i++)
        if (got[i].request_id == id)
            return i;
    fprintf(stderr, "%s: request %llu never completed\n", backend_name, (unsigned long long)id);
    exit(1);
}

static void expect(uint64_t id, uint8_t status, uint8_t reason)
{
    size_t i = find(id);
    if (got[i].status != status || got[i].reason != reason) {
        fprintf(stderr, "%s: request %llu: status %u reason %u errno %d (%s), expected %u/%u\n", backend_name,
                (unsigned long long)id, got[i].status, got[i].reason, got[i].error, got_msg[i], status, reason);
        exit(1);
    }
}

static struct dsd_request_record req(uint64_t id, uint8_t op, uint32_t src_id, uint64_t src_off, uint32_t src_size,
                                     uint32_t dst_id, uint64_t dst_off, uint32_t dst_size)
{
    struct dsd_request_record r;
    memset(&r, 0, sizeof(r));
    r.request_id = id;
    r.op = op;
    r.src_id = src_id;
    r.src_offset = src_off;
    r.src_size = src_size;
    r.dst_id = dst_id;
    r.dst_offset = dst_off;
    r.dst_size = dst_size;
    return r;
}

static struct dsd_request_record packed(struct dsd_request_record r, uint8_t compression, uint32_t uncompressed)
{
    r.compression = compression;
    r.uncompressed_size = uncompressed;
    return r;
}

static void submit(struct dsd_io_engine *e, struct dsd_io_registry *reg, uint64_t key, struct dsd_request_record *r,
                   size_t n)
{
    size_t accepted;
    CHECK(dsd_io_engine_submit(e, reg, key, r, n, &accepted) == 0);
}

#define REGION (8u << 20)
#define PAYLOAD (600000u)

static unsigned char payload[PAYLOAD];

static struct dsd_io_engine *engine(int backend, uint64_t staging, int *skip)
{
    struct dsd_io_config cfg = {.backend = backend, .workers = 2, .queue_depth = 8, .staging_bytes = staging,
                                .codec_workers = 2};
    struct dsd_io_engine *e = NULL;
    char reason[256];
    int rc = dsd_io_engine_new(&cfg, &e, reason, sizeof(reason));
    if (backend == DSD_IO_BACKEND_URING && rc < 0) {
        char why[256];
        if (!dsd_io_uring_probe(why, sizeof(why))) {
            printf("SKIP uring: %s\n", why);
            *skip = 1;
            return NULL;
        }
    }
    CHECK(rc == 0);
    return e;
}

static void run(int backend)
{
    int skip = 0;
    struct dsd_io_engine *e = engine(backend, 1u << 20, &skip);
    if (skip)
        return;
    struct dsd_io_registry *reg;
    CHECK(dsd_io_registry_new(&reg) == 0);
    int shm = memfd_create("ops-region", MFD_CLOEXEC);
    CHECK(shm >= 0 && ftruncate(shm, REGION) == 0);
    CHECK(dsd_io_registry_add_region(reg, 1, shm, REGION) == 0);
    unsigned char *view = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED, shm, 0);
    CHECK(view != MAP_FAILED);
    memcpy(view, payload, PAYLOAD);

    char path[] = "/tmp/dsd-ops-XXXXXX";
    int out = mkstemp(path);
    CHECK(out >= 0);
    unlink(path);
    CHECK(dsd_io_registry_add_file(reg, 2, out) == 0);                                 /* read-only use */
    CHECK(dsd_io_registry_add_file_ex(reg, 3, out, DSD_IO_FILE_WRITABLE) == 0);
    int ro = open("/proc/self/exe", O_RDONLY);
    CHECK(ro >= 0);
    CHECK(dsd_io_registry_add_file_ex(reg, 9, ro, DSD_IO_FILE_WRITABLE) == -EBADF);
    close(ro);

    /* 1. writes: unaligned and 4 KiB aligned, then fsync, then pread them back */
    struct dsd_request_record w[6] = {
        req(1, DSD_OP_WRITE, 1, 0, 8192, 3, 0, 8192),       /* aligned */
        req(2, DSD_OP_WRITE, 1, 8192, 4096 * 5, 3, 8192, 4096 * 5),
        req(3, DSD_OP_WRITE, 1, 7, 1001, 3, 100000, 1001),  /* unaligned */
        req(4, DSD_OP_WRITE, 1, 0, 10, 2, 0, 10),           /* file 2 was not added writable */
        req(5, DSD_OP_WRITE, 1, REGION - 5, 10, 3, 0, 10),  /* outside the region */
        req(6, DSD_OP_FSYNC, 0, 0, 0, 3, 0, 0),
    };
    submit(e, reg, 1, w, 5);
    collect(e, 5);
    expect(1, DSD_STATUS_OK, DSD_REASON_NONE);
    expect(2, DSD_STATUS_OK, DSD_REASON_NONE);
    expect(3, DSD_STATUS_OK, DSD_REASON_NONE);
    expect(4, DSD_STATUS_FAILED, DSD_REASON_IO);
    CHECK(got[find(4)].error == EBADF && strstr(got_msg[find(4)], "not opened for writing"));
    expect(5, DSD_STATUS_FAILED, DSD_REASON_REGION_BOUNDS);
    submit(e, reg, 1, &w[5], 1);
    collect(e, 1);
    expect(6, DSD_STATUS_OK, DSD_REASON_NONE);
    static unsigned char back[PAYLOAD];
    CHECK(pread(out, back, 8192 + 4096 * 5, 0) == 8192 + 4096 * 5 && memcmp(back, payload, 8192 + 4096 * 5) == 0);
    CHECK(pread(out, back, 1001, 100000) == 1001 && memcmp(back, payload + 7, 1001) == 0);

    /* 2. compressed writes (GDeflate level 9, zstd level 3) land in the file; read them back
     *    through the engine as compressed FILE reads and compare */
    struct dsd_request_record cw[2] = {
        req(10, DSD_OP_WRITE, 1, 0, PAYLOAD, 3, 1 << 20, 0),
        req(11, DSD_OP_WRITE, 1, 0, PAYLOAD, 3, 2 << 20, 0),
    };
    cw[0] = packed(cw[0], DSD_COMPRESSION_GDEFLATE, PAYLOAD);
    cw[0].level = 9;
    cw[1] = packed(cw[1], DSD_COMPRESSION_ZSTD, PAYLOAD);
    cw[1].level = 3;
    submit(e, reg, 1, cw, 2);
    collect(e, 2);
    expect(10, DSD_STATUS_OK, DSD_REASON_NONE);
    expect(11, DSD_STATUS_OK, DSD_REASON_NONE);
    uint32_t gsize = (uint32_t)got[find(10)].bytes, zsize = (uint32_t)got[find(11)].bytes;
    CHECK(gsize > 0 && zsize > 0);
    struct dsd_request_record cr[4] = {
        packed(req(20, DSD_OP_READ, 3, 1 << 20, gsize, 1, 1 << 20, PAYLOAD), DSD_COMPRESSION_GDEFLATE, PAYLOAD),
        packed(req(21, DSD_OP_READ, 3, 2 << 20, zsize, 1, 2 << 20, PAYLOAD), DSD_COMPRESSION_ZSTD, PAYLOAD),
        packed(req(22, DSD_OP_READ, 3, 1 << 20, gsize - 4, 1, 3 << 20, PAYLOAD), DSD_COMPRESSION_GDEFLATE, PAYLOAD),
        packed(req(23, DSD_OP_READ, 3, 2 << 20, zsize, 1, 3 << 20, PAYLOAD), DSD_COMPRESSION_GDEFLATE, PAYLOAD),
    };
    submit(e, reg, 1, cr, 4);
    collect(e, 4);
    expect(20, DSD_STATUS_OK, DSD_REASON_NONE);
    expect(21, DSD_STATUS_OK, DSD_REASON_NONE);
    expect(22, DSD_STATUS_FAILED, DSD_REASON_DECOMPRESS); /* truncated stream */
    expect(23, DSD_STATUS_FAILED, DSD_REASON_DECOMPRESS); /* a zstd frame is no GDeflate stream */
    CHECK(got[find(22)].hresult == DSD_E_DECOMPRESSION_ERROR && strncmp(got_msg[find(22)], "GDeflate: ", 10) == 0);
    CHECK(memcmp(view + (1 << 20), payload, PAYLOAD) == 0 && memcmp(view + (2 << 20), payload, PAYLOAD) == 0);

    /* 3. MEMORY sources: copy, decode the compressed bytes straight from the region */
    static unsigned char stream[PAYLOAD + 65536];
    CHECK(pread(out, stream, gsize, 1 << 20) == (ssize_t)gsize);
    memcpy(view + (4 << 20), stream, gsize);
    struct dsd_request_record m[3] = {
        req(30, DSD_OP_READ, 1, 0, PAYLOAD, 1, 5 << 20, PAYLOAD),
        packed(req(31, DSD_OP_READ, 1, 4 << 20, gsize, 1, 6 << 20, PAYLOAD), DSD_COMPRESSION_GDEFLATE, PAYLOAD),
        req(32, DSD_OP_READ, 1, REGION - 1, 2, 1, 0, 2),
    };
    for (int i = 0; i < 3; i++)
        m[i].source_type = DSD_SOURCE_MEMORY;
    submit(e, reg, 1, m, 3);
    collect(e, 3);
    expect(30, DSD_STATUS_OK, DSD_REASON_NONE);
    expect(31, DSD_STATUS_OK, DSD_REASON_NONE);
    expect(32, DSD_STATUS_FAILED, DSD_REASON_REGION_BOUNDS);
    CHECK(memcmp(view + (5 << 20), payload, PAYLOAD) == 0 && memcmp(view + (6 << 20), payload, PAYLOAD) == 0);

    /* 4. TOO_LARGE: over the 1 MiB staging */
    struct dsd_request_record big = packed(req(40, DSD_OP_READ, 3, 0, 1000, 1, 0, (1u << 20) + 1),
                                           DSD_COMPRESSION_ZSTD, (1u << 20) + 1);
    submit(e, reg, 1, &big, 1);
    collect(e, 1);
    expect(40, DSD_STATUS_FAILED, DSD_REASON_TOO_LARGE);
    CHECK(got[0].hresult == DSD_E_REQUEST_TOO_LARGE);

    /* 5. many compressed reads through the 1 MiB arena (about one at a time), two clients, with
     *    a cancel by tag and a dropped client racing them */
    enum { N = 60 };
    static struct dsd_request_record many[N];
    for (int i = 0; i < N; i++) {
        many[i] = cr[i % 2];
        many[i].request_id = 100 + i;
        many[i].cancel_tag = i % 3 == 0;
        many[i].dst_offset = (uint64_t)(i % 2 + 1) << 20;
    }
    submit(e, reg, 1, many, N);
    submit(e, reg, 7, many, N);
    size_t reached = 0;
    CHECK(dsd_io_engine_cancel(e, 1, 1, 1, 0, 0, &reached) == 0);
    CHECK(dsd_io_engine_drop_client(e, 7) == 0);
    collect(e, N);
    for (int i = 0; i < N; i++) {
        size_t k = find(100 + i);
        CHECK(got_key[k] == 1);
        CHECK(got[k].status == DSD_STATUS_OK || (i % 3 == 0 && got[k].status == DSD_STATUS_CANCELLED));
    }
    struct dsd_io_stats st;
    CHECK(wait_until_idle(e, &st) == 0);
    CHECK(st.staging_in_use == 0 && st.staging_waiting == 0 && st.staging_peak <= (1u << 20) && st.staging_waits > 0);
    CHECK(st.writes == 5 && st.encoded == 2 && st.fsyncs == 1 && st.copies == 1);
    printf("%s: %llu decoded, %llu staging waits, peak %llu, gdeflate %u / zstd %u bytes\n", backend_name,
           (unsigned long long)st.decoded, (unsigned long long)st.staging_waits, (unsigned long long)st.staging_peak, gsize, zsize);

    /* 6. a region truncated by its client under a MEMORY copy: EFAULT, not SIGBUS */
    int shrink = memfd_create("ops-shrink", MFD_CLOEXEC);
    CHECK(shrink >= 0 && ftruncate(shrink, 1 << 20) == 0);
    CHECK(dsd_io_registry_add_region(reg, 5, shrink, 1 << 20) == 0);
    CHECK(ftruncate(shrink, 4096) == 0);
    struct dsd_request_record cut = req(50, DSD_OP_READ, 5, 8192, 65536, 1, 0, 65536);
    cut.source_type = DSD_SOURCE_MEMORY;
    submit(e, reg, 1, &cut, 1);
    collect(e, 1);
    expect(50, DSD_STATUS_FAILED, DSD_REASON_IO);
    CHECK(got[0].error == EFAULT);
    close(shrink);

    dsd_io_engine_free(e);
    dsd_io_registry_free(reg);
    munmap(view, REGION);
    close(shm);
    close(out);
    printf("ok %s\n", backend_name);
}

/* io_uring: a read from an empty pipe holds the staging; close() with requests waiting for it */
static void close_with_waiters(void)
{
    int skip = 0;
    backend_name = "uring-close";
    struct dsd_io_engine *e = engine(DSD_IO_BACKEND_URING, 64 * 1024, &skip);
    if (skip)
        return;
    struct dsd_io_registry *reg;
    CHECK(dsd_io_registry_new(&reg) == 0);
    int shm = memfd_create("ops-close", MFD_CLOEXEC), p[2];
    CHECK(shm >= 0 && ftruncate(shm, 1 << 20) == 0 && pipe(p) == 0);
    CHECK(dsd_io_registry_add_region(reg, 1, shm, 1 << 20) == 0);
    CHECK(dsd_io_registry_add_file(reg, 1, p[0]) == 0);
    struct dsd_request_record r[4];
    for (int i = 0; i < 4; i++)
        r[i] = packed(req(i, DSD_OP_READ, 1, 0, 40000, 1, 0, 40000), DSD_COMPRESSION_GDEFLATE, 40000);
    submit(e, reg, 1, r, 4);
    struct dsd_io_stats st;
    for (int spins = 0;; spins++) {
        dsd_io_engine_stats(e, &st);
        if (st.staging_waiting == 3)
            break;
        CHECK(spins < 3000);
        usleep(1000);
    }
    dsd_io_engine_close(e);
    collect(e, 4);
    for (int i = 1; i < 4; i++)
        expect(i, DSD_STATUS_CANCELLED, DSD_REASON_SHUTDOWN);
    CHECK(got[find(0)].status == DSD_STATUS_CANCELLED);
    dsd_io_engine_stats(e, &st);
    CHECK(st.in_flight == 0 && st.staging_in_use == 0);
    dsd_io_engine_free(e);
    dsd_io_registry_free(reg);
    close(p[0]);
    close(p[1]);
    close(shm);
    printf("ok %s\n", backend_name);
}

/* The staging arena against a shadow page map: random allocations and frees never overlap,
 * stay inside, are page-aligned, and a fully freed arena hands out its whole size again. */
static void staging_model(void)
{
    backend_name = "staging";
    struct dsd_io_staging s;
    CHECK(dsd_io_staging_init(&s, 200 * 4096 + 1) == 0); /* rounds up to 201 pages */
    CHECK(s.npages == 201 && s.limit == 200 * 4096 + 1);
    static unsigned char owner[201];
    memset(owner, 0, sizeof(owner));
    struct { uint8_t *p; uint64_t len; } live[64];
    size_t nlive = 0;
    unsigned seed = 99;
    for (int step = 0; step < 20000; step++) {
        seed = seed * 1103515245u + 12345u;
        if (nlive < 64 && (seed >> 16) % 3 != 0) {
            uint64_t len = 1 + (seed >> 8) % (40 * 4096);
            uint8_t *p = dsd_io_staging_alloc(&s, len);
            if (p == NULL) { /* only when no run of free pages is long enough */
                size_t need = (size_t)dsd_io_staging_round(len) / 4096, run = 0;
                for (size_t i = 0; i < s.npages; i++) {
                    run = owner[i] ? 0 : run + 1;
                    CHECK(run < need);
                }
                continue;
            }
            size_t first = (size_t)(p - s.base) / 4096, n = (size_t)dsd_io_staging_round(len) / 4096;
            CHECK((size_t)(p - s.base) % 4096 == 0 && first + n <= s.npages);
            for (size_t i = first; i < first + n; i++) {
                CHECK(owner[i] == 0);
                owner[i] = 1;
            }
            memset(p, 0xAB, len); /* the pages are really ours */
            live[nlive].p = p;
            live[nlive++].len = len;
        } else if (nlive) {
            size_t k = (seed >> 8) % nlive;
            size_t first = (size_t)(live[k].p - s.base) / 4096, n = (size_t)dsd_io_staging_round(live[k].len) / 4096;
            for (size_t i = first; i < first + n; i++)
                owner[i] = 0;
            dsd_io_staging_free(&s, live[k].p, live[k].len);
            live[k] = live[--nlive];
        }
        CHECK(s.in_use <= s.bytes && s.peak <= s.bytes);
    }
    while (nlive) {
        nlive--;
        dsd_io_staging_free(&s, live[nlive].p, live[nlive].len);
    }
    CHECK(s.in_use == 0);
    uint8_t *all = dsd_io_staging_alloc(&s, s.bytes);
    CHECK(all == s.base && dsd_io_staging_alloc(&s, 1) == NULL);
    dsd_io_staging_free(&s, all, s.bytes);
    dsd_io_staging_destroy(&s);
    struct dsd_io_staging none;
    CHECK(dsd_io_staging_init(&none, 0) == 0 && dsd_io_staging_alloc(&none, 1) == NULL);
    dsd_io_staging_destroy(&none);
    printf("ok %s\n", backend_name);
}

int main(void)
{
    staging_model();
    unsigned s = 12345;
    for (size_t i = 0; i < PAYLOAD; i++) {
        s = s * 1103515245u + 12345u;
        payload[i] = (i / 97) % 7 == 0 ? (unsigned char)(s >> 24) : (unsigned char)"dsd io engine "[i % 14];
    }
    backend_name = "posix";
    run(DSD_IO_BACKEND_POSIX);
    backend_name = "uring";
    run(DSD_IO_BACKEND_URING);
    close_with_waiters();
    return 0;
}
