/*
 * The io engine through its C API, under ASan/UBSan, for both backends: random reads checked
 * against pread(), validation failures, EOF, cancellation, drop_client and close with work
 * queued. io_uring SKIPs (exit status stays 0, the reason printed) where the kernel forbids it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../io_engine.h"
#include "io_test_wait.h"

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, backend_name, #cond); \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

static const char *backend_name = "";

#define MAXC 20000
static struct dsd_completion_record got[MAXC];
static uint64_t got_key[MAXC];
static size_t ngot;

static int on_reap(void *ctx, uint64_t key, const struct dsd_completion_record *recs, size_t n,
                   const struct dsd_request_record *failed, size_t nfailed)
{
    (void)ctx;
    size_t f = 0;
    for (size_t i = 0; i < n && ngot < MAXC; i++) {
        got_key[ngot] = key;
        got[ngot++] = recs[i];
        /* each FAILED completion comes with its own request record, in order */
        if (recs[i].status == DSD_STATUS_FAILED && (f >= nfailed || failed[f++].request_id != recs[i].request_id))
            return -EINVAL;
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
        CHECK(dsd_io_engine_reap(e, on_reap, NULL) == 0);
    }
    CHECK(ngot == want);
}

static const struct dsd_completion_record *find(uint64_t id)
{
    for (size_t i = 0; i < ngot; i++)
        if (got[i].request_id == id)
            return &got[i];
    return NULL;
}

static struct dsd_request_record rd(uint64_t id, uint32_t file, uint64_t off, uint32_t size, uint32_t region,
                                    uint64_t dst)
{
    struct dsd_request_record r;
    memset(&r, 0, sizeof(r));
    r.request_id = id;
    r.src_offset = off;
    r.src_size = size;
    r.src_id = file;
    r.dst_offset = dst;
    r.dst_size = size;
    r.dst_id = region;
    return r;
}

#define FILE_SIZE (3u << 20)
#define REGION_SIZE (32u << 20)

static unsigned char *file_data;
static int coalesce; /* io_uring: hold completions per burst (the Python default) or not */
static int mapped;   /* enum dsd_io_mapped_mode: cached reads copied from a mapping (the default), or not */

static void run(int backend, int file_fd)
{
    struct dsd_io_config cfg = {.backend = backend, .workers = 2, .queue_depth = 8, .coalesce = coalesce,
                                .mapped = mapped};
    struct dsd_io_engine *e;
    char reason[256];
    int rc = dsd_io_engine_new(&cfg, &e, reason, sizeof(reason));
    if (backend == DSD_IO_BACKEND_URING && rc < 0) {
        char why[256];
        if (!dsd_io_uring_probe(why, sizeof(why))) {
            printf("SKIP uring: %s\n", why);
            return;
        }
    }
    CHECK(rc == 0);
    CHECK(strcmp(dsd_io_engine_backend(e), backend_name) == 0);

    struct dsd_io_registry *reg;
    CHECK(dsd_io_registry_new(&reg) == 0);
    int shm = memfd_create("dsd-test-region", MFD_CLOEXEC);
    CHECK(shm >= 0 && ftruncate(shm, REGION_SIZE) == 0);
    CHECK(dsd_io_registry_add_file(reg, 1, file_fd) == 0);
    CHECK(dsd_io_registry_add_file(reg, 1, file_fd) == -EEXIST);
    CHECK(dsd_io_registry_add_region(reg, 2, shm, REGION_SIZE) == 0);
    CHECK(dsd_io_registry_add_region(reg, 3, shm, REGION_SIZE + 1) == -EINVAL);
    unsigned char *view = mmap(NULL, REGION_SIZE, PROT_READ, MAP_SHARED, shm, 0);
    CHECK(view != MAP_FAILED);

    /* random reads, aligned and not, against the file's bytes */
    enum { N = 1500 };
    static struct dsd_request_record recs[N];
    static uint64_t offs[N], dsts[N];
    uint64_t dst = 0;
    srand(7);
    for (int i = 0; i < N; i++) {
        uint32_t size = (i % 3 == 0) ? (uint32_t)(1 + rand() % 8) * 4096 : (uint32_t)(rand() % 9000);
        uint64_t off = (i % 3 == 0) ? (uint64_t)(rand() % (FILE_SIZE / 4096 - 8)) * 4096
                                    : (uint64_t)(rand() % (FILE_SIZE - size));
        if (i % 3 == 0)
            dst = (dst + 4095) & ~4095ull;
        CHECK(dst + size <= REGION_SIZE); /* every destination distinct */
        offs[i] = off;
        dsts[i] = dst;
        recs[i] = rd((uint64_t)i, 1, off, size, 2, dst);
        dst += size + (uint64_t)(rand() % 3);
    }
    size_t accepted;
    CHECK(dsd_io_engine_submit(e, reg, 77, recs, N, &accepted) == 0 && accepted == N);
    collect(e, N);
    for (int i = 0; i < N; i++) {
        const struct dsd_completion_record *c = find((uint64_t)i);
        CHECK(c && c->status == DSD_STATUS_OK && c->bytes == recs[i].src_size && c->hresult == 0);
    }
    for (int i = 0; i < N; i++)
        CHECK(memcmp(view + dsts[i], file_data + offs[i], recs[i].src_size) == 0);
    {
        /* the file was just written, so it is cached: the mapped path takes its reads when on */
        struct dsd_io_stats st;
        dsd_io_engine_stats(e, &st);
        CHECK(mapped == DSD_IO_MAPPED_AUTO ? st.mapped_reads > 0 : st.mapped_reads == 0);
        CHECK(st.mapped_redone == 0 && st.mapped == mapped);
    }

    /* validation and EOF */
    struct dsd_request_record bad[6] = {
        rd(1, 9, 0, 10, 2, 0),                      /* unknown file */
        rd(2, 1, 0, 10, 9, 0),                      /* unknown region */
        rd(3, 1, 0, 10, 2, REGION_SIZE - 5),        /* bounds */
        rd(4, 1, FILE_SIZE - 5, 10, 2, 0),          /* EOF */
        rd(5, 1, 0, 10, 2, 0),                      /* reserved */
        rd(6, 1, FILE_SIZE, 0, 2, 0),               /* 0 bytes at EOF: OK */
    };
    bad[4].reserved = 1;
    CHECK(dsd_io_engine_submit(e, reg, 77, bad, 6, &accepted) == 0 && accepted == 1);
    collect(e, 6);
    CHECK(find(1)->reason == DSD_REASON_BAD_FILE && find(1)->hresult == DSD_E_FILE_NOT_OPEN);
    CHECK(find(2)->reason == DSD_REASON_BAD_REGION);
    CHECK(find(3)->reason == DSD_REASON_REGION_BOUNDS);
    CHECK(find(4)->reason == DSD_REASON_EOF && find(4)->hresult == DSD_E_END_OF_FILE);
    CHECK(find(5)->reason == DSD_REASON_RESERVED);
    CHECK(find(6)->status == DSD_STATUS_OK && find(6)->bytes == 0);

    /* cancel queued requests by tag, drop a client with work in flight: both need reads still
     * queued when they act, and with the mapped path on the cached file's reads finish first */
    if (mapped == DSD_IO_MAPPED_OFF) {
        for (int i = 0; i < N; i++) {
            recs[i] = rd((uint64_t)i, 1, (uint64_t)i * 512, 16384, 2, (uint64_t)i * 16384); /* no two share bytes */
            recs[i].cancel_tag = (uint64_t)(i & 1);
        }
        CHECK(dsd_io_engine_submit(e, reg, 5, recs, N, &accepted) == 0 && accepted == N);
        size_t reached;
        CHECK(dsd_io_engine_cancel(e, 5, 1, 1, 0, 0, &reached) == 0 && reached > 0);
        collect(e, N);
        size_t cancelled = 0;
        for (size_t i = 0; i < ngot; i++) {
            CHECK(got_key[i] == 5);
            if (got[i].status == DSD_STATUS_CANCELLED) {
                CHECK(got[i].request_id & 1);
                CHECK(got[i].hresult == DSD_E_ABORT && got[i].reason == DSD_REASON_CANCELLED);
                cancelled++;
            } else {
                CHECK(got[i].status == DSD_STATUS_OK);
            }
        }
        CHECK(cancelled > 0 && cancelled <= reached);

        /* drop a client with work in flight: nothing reported afterwards */
        CHECK(dsd_io_engine_submit(e, reg, 6, recs, N, &accepted) == 0);
        CHECK(dsd_io_engine_drop_client(e, 6) == 0);
        struct dsd_io_stats st;
        CHECK(wait_until_idle(e, &st) == 0);
        ngot = 0;
        CHECK(dsd_io_engine_reap(e, on_reap, NULL) == 0 && ngot == 0);
        CHECK(st.dropped > 0);
    }

    /* close with work queued: every request completes once, the unstarted ones SHUTDOWN */
    CHECK(dsd_io_engine_submit(e, reg, 8, recs, N, &accepted) == 0);
    dsd_io_engine_close(e);
    CHECK(dsd_io_engine_submit(e, reg, 8, recs, 1, &accepted) == -ESHUTDOWN);
    collect(e, N);
    for (size_t i = 0; i < ngot; i++)
        CHECK(got[i].status == DSD_STATUS_OK ||
              (got[i].status == DSD_STATUS_CANCELLED && got[i].reason == DSD_REASON_SHUTDOWN));

    dsd_io_registry_free(reg);
    munmap(view, REGION_SIZE);
    close(shm);
    dsd_io_engine_free(e);
    printf("ok %s\n", backend_name);
}

/* ---- stress: submit, cancel, drop, reap and registry changes from several threads at once;
 * ASan catches a use after free, the counters catch a lost or doubled completion ---- */

struct stress {
    struct dsd_io_engine *e;
    struct dsd_io_registry *reg;
    int file_fd, shm_fd;
    atomic_int stop;
    atomic_ulong reaped;
};

static int stress_reap_cb(void *ctx, uint64_t key, const struct dsd_completion_record *recs, size_t n,
                          const struct dsd_request_record *failed, size_t nfailed)
{
    struct stress *st = ctx;
    (void)key;
    (void)recs;
    (void)failed;
    (void)nfailed;
    atomic_fetch_add(&st->reaped, n);
    return 0;
}

static void *stress_submit(void *arg)
{
    struct stress *st = arg;
    unsigned seed = 1;
    struct dsd_request_record recs[64];
    while (!atomic_load(&st->stop)) {
        for (int i = 0; i < 64; i++) {
            uint32_t size = (uint32_t)(rand_r(&seed) % 20000);
            recs[i] = rd((uint64_t)rand_r(&seed), (uint32_t)(rand_r(&seed) % 3), (uint64_t)(rand_r(&seed) % FILE_SIZE),
                         size, (uint32_t)(rand_r(&seed) % 3), (uint64_t)(rand_r(&seed) % (1 << 20)));
            recs[i].cancel_tag = (uint64_t)(rand_r(&seed) % 4);
        }
        size_t accepted;
        CHECK(dsd_io_engine_submit(st->e, st->reg, (uint64_t)(rand_r(&seed) % 4), recs, 64, &accepted) == 0);
    }
    return NULL;
}

static void *stress_chaos(void *arg)
{
    struct stress *st = arg;
    unsigned seed = 2;
    while (!atomic_load(&st->stop)) {
        size_t n;
        switch (rand_r(&seed) % 6) {
        case 0: dsd_io_engine_cancel(st->e, (uint64_t)(rand_r(&seed) % 4), 3, (uint64_t)(rand_r(&seed) % 4), 0, 0, &n); break;
        case 1: dsd_io_engine_drop_client(st->e, (uint64_t)(rand_r(&seed) % 4)); break;
        case 2: dsd_io_registry_remove_file(st->reg, 2); dsd_io_registry_add_file(st->reg, 2, st->file_fd); break;
        case 3: dsd_io_registry_remove_region(st->reg, 2); dsd_io_registry_add_region(st->reg, 2, st->shm_fd, 1 << 20); break;
        default: dsd_io_engine_reap(st->e, stress_reap_cb, st); break;
        }
        usleep(50);
    }
    return NULL;
}

static void stress(int backend, int file_fd)
{
    struct stress st = {.file_fd = file_fd};
    struct dsd_io_config cfg = {.backend = backend, .workers = 3, .queue_depth = 4, .coalesce = coalesce};
    char reason[256];
    if (dsd_io_engine_new(&cfg, &st.e, reason, sizeof(reason)) < 0) {
        CHECK(backend == DSD_IO_BACKEND_URING && !dsd_io_uring_probe(reason, sizeof(reason)));
        return;
    }
    CHECK(dsd_io_registry_new(&st.reg) == 0);
    st.shm_fd = memfd_create("dsd-stress", MFD_CLOEXEC);
    CHECK(st.shm_fd >= 0 && ftruncate(st.shm_fd, 1 << 20) == 0);
    CHECK(dsd_io_registry_add_file(st.reg, 1, file_fd) == 0 && dsd_io_registry_add_file(st.reg, 2, file_fd) == 0);
    CHECK(dsd_io_registry_add_region(st.reg, 1, st.shm_fd, 1 << 20) == 0);
    CHECK(dsd_io_registry_add_region(st.reg, 2, st.shm_fd, 1 << 20) == 0);
    pthread_t t[3];
    pthread_create(&t[0], NULL, stress_submit, &st);
    pthread_create(&t[1], NULL, stress_chaos, &st);
    pthread_create(&t[2], NULL, stress_chaos, &st);
    usleep(700 * 1000);
    atomic_store(&st.stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    struct dsd_io_stats s;
    for (int spins = 0;; spins++) {
        dsd_io_engine_stats(st.e, &s);
        if (s.in_flight == 0)
            break;
        CHECK(spins < 5000);
        usleep(1000);
    }
    dsd_io_engine_reap(st.e, stress_reap_cb, &st);
    dsd_io_engine_stats(st.e, &s);
    /* every record is accounted for exactly once: reported (and reaped, or forgotten by a drop) or dropped */
    CHECK(s.pending == 0);
    CHECK(s.submitted == s.completed + s.failed + s.cancelled + s.dropped);
    CHECK(atomic_load(&st.reaped) <= s.completed + s.failed + s.cancelled);
    CHECK(s.submitted > 0 && s.completed > 0);
    dsd_io_engine_free(st.e);
    dsd_io_registry_free(st.reg);
    close(st.shm_fd);
    printf("ok stress %s: %llu records, %llu ok, %llu failed, %llu cancelled, %llu dropped\n", backend_name,
           (unsigned long long)s.submitted, (unsigned long long)s.completed, (unsigned long long)s.failed,
           (unsigned long long)s.cancelled, (unsigned long long)s.dropped);
}

int main(void)
{
    char path[] = "/tmp/dsd-test-io-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 1;
    unlink(path);
    file_data = malloc(FILE_SIZE);
    for (size_t i = 0; i < FILE_SIZE; i++)
        file_data[i] = (unsigned char)(i * 2654435761u >> 13);
    if (pwrite(fd, file_data, FILE_SIZE, 0) != (ssize_t)FILE_SIZE)
        return 1;

    backend_name = "posix";
    run(DSD_IO_BACKEND_POSIX, fd);
    mapped = DSD_IO_MAPPED_OFF;
    run(DSD_IO_BACKEND_POSIX, fd);
    backend_name = "uring";
    run(DSD_IO_BACKEND_URING, fd);
    mapped = DSD_IO_MAPPED_AUTO;
    run(DSD_IO_BACKEND_URING, fd);
    coalesce = 1;
    run(DSD_IO_BACKEND_URING, fd);
    backend_name = "posix";
    stress(DSD_IO_BACKEND_POSIX, fd);
    backend_name = "uring";
    stress(DSD_IO_BACKEND_URING, fd);
    coalesce = 0;
    stress(DSD_IO_BACKEND_URING, fd);

    char why[256];
    printf("io_uring probe: %d (%s); O_DIRECT on /tmp: %d\n", dsd_io_uring_probe(why, sizeof(why)), why,
           dsd_io_odirect_probe("/tmp", why, sizeof(why)));
    close(fd);
    free(file_data);
    return 0;
}
