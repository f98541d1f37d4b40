/* Staging arena of the io engine (io_staging.h). */
#define _GNU_SOURCE
#include "io_staging.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int dsd_io_staging_init(struct dsd_io_staging *s, uint64_t bytes)
{
    memset(s, 0, sizeof(*s));
    s->limit = bytes;
    s->bytes = dsd_io_staging_round(bytes);
    if (s->bytes == 0)
        return 0;
    if (s->bytes > ((uint64_t)1 << 44))
        return -EINVAL;
    s->npages = (size_t)(s->bytes / DSD_STAGING_PAGE);
    s->used = calloc((s->npages + 63) / 64, sizeof(uint64_t));
    if (s->used == NULL)
        return -ENOMEM;
    void *p = mmap(NULL, (size_t)s->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        int rc = -errno;
        free(s->used);
        s->used = NULL;
        return rc;
    }
    s->base = p;
    return 0;
}

void dsd_io_staging_destroy(struct dsd_io_staging *s)
{
    if (s->base)
        munmap(s->base, (size_t)s->bytes);
    free(s->used);
    memset(s, 0, sizeof(*s));
}

static int page_used(const struct dsd_io_staging *s, size_t i)
{
    return (int)((s->used[i / 64] >> (i % 64)) & 1);
}

static void mark(struct dsd_io_staging *s, size_t first, size_t n, int used)
{
    for (size_t i = first; i < first + n; i++) {
        uint64_t bit = (uint64_t)1 << (i % 64);
        if (used)
            s->used[i / 64] |= bit;
        else
            s->used[i / 64] &= ~bit;
    }
}

uint8_t *dsd_io_staging_alloc(struct dsd_io_staging *s, uint64_t len)
{
    uint64_t bytes = dsd_io_staging_round(len);
    if (bytes == 0 || bytes > s->bytes - s->in_use)
        return NULL;
    size_t need = (size_t)(bytes / DSD_STAGING_PAGE);
    size_t run = 0;
    for (size_t i = s->hint; i < s->npages; i++) {
        if (run == 0 && (i % 64) == 0 && s->used[i / 64] == ~(uint64_t)0) {
            i += 63; /* a full word: skip it */
            continue;
        }
        if (page_used(s, i)) {
            run = 0;
            continue;
        }
        if (++run == need) {
            size_t first = i + 1 - need;
            mark(s, first, need, 1);
            if (first == s->hint)
                s->hint = i + 1;
            s->in_use += bytes;
            if (s->in_use > s->peak)
                s->peak = s->in_use;
            return s->base + first * DSD_STAGING_PAGE;
        }
    }
    return NULL;
}

void dsd_io_staging_free(struct dsd_io_staging *s, uint8_t *p, uint64_t len)
{
    uint64_t bytes = dsd_io_staging_round(len);
    if (p == NULL || bytes == 0)
        return;
    size_t first = (size_t)((uint64_t)(p - s->base) / DSD_STAGING_PAGE);
    mark(s, first, (size_t)(bytes / DSD_STAGING_PAGE), 0);
    if (first < s->hint)
        s->hint = first;
    s->in_use -= bytes;
}
