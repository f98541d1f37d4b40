/*
 * The io engine's staging arena: one page-aligned mapping of `staging_bytes`, handed out in
 * 4 KiB pages to compressed requests (the compressed bytes a read lands in before decoding, the
 * output a compressed write is encoded into). Reserved once, reused by every request, so memory
 * stays bounded and no large buffer is malloc'ed per request; pages are aligned for O_DIRECT.
 *
 * No locking here: the engine calls it under its own lock (io_engine.c), which also keeps the
 * FIFO of requests waiting for space. First fit over a page bitmap.
 */
#ifndef DSD_IO_STAGING_H
#define DSD_IO_STAGING_H

#include <stddef.h>
#include <stdint.h>

#define DSD_STAGING_PAGE 4096u

struct dsd_io_staging {
    uint8_t *base;     /* NULL when bytes == 0 */
    uint64_t bytes;    /* the limit: whole pages, rounded up */
    uint64_t limit;    /* the configured limit (a request's size is checked against this) */
    size_t npages;
    uint64_t *used;    /* bitmap, 1 = page in use */
    size_t hint;       /* first page that may be free */
    uint64_t in_use;   /* bytes (whole pages) handed out */
    uint64_t peak;
};

/* Reserves the arena (MAP_NORESERVE: pages cost memory only once used). 0 or -errno. */
int dsd_io_staging_init(struct dsd_io_staging *s, uint64_t bytes);
void dsd_io_staging_destroy(struct dsd_io_staging *s);
/* Bytes a request of len bytes takes (whole pages); 0 for len 0. */
static inline uint64_t dsd_io_staging_round(uint64_t len)
{
    return (len + DSD_STAGING_PAGE - 1) / DSD_STAGING_PAGE * DSD_STAGING_PAGE;
}
/* A contiguous run for len (> 0) bytes, or NULL if there is none right now. */
uint8_t *dsd_io_staging_alloc(struct dsd_io_staging *s, uint64_t len);
void dsd_io_staging_free(struct dsd_io_staging *s, uint8_t *p, uint64_t len);

#endif
