/*
 * Per-client registry of the io engine: the files a client opened and the shared-memory
 * regions it registered, keyed by the u32 ids the client chose.
 *
 * Files and regions are refcounted: the registry holds one reference, and every request in
 * flight holds one, so removing a file or region (or closing the registry because the client
 * vanished) never pulls an fd or a mapping from under a read; the fd is closed / the region
 * unmapped when the last reference goes. Functions return 0 or -errno.
 */
#ifndef DSD_IO_REGISTRY_H
#define DSD_IO_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "io_slots.h"

struct dsd_io_mapping;

struct dsd_io_file {
    atomic_uint refs;
    uint32_t id;
    int fd;                   /* our dup of the caller's fd: buffered reads */
    int fd_direct;            /* the same file reopened with O_DIRECT, or -1 when unusable */
    uint32_t dio_mem_align;   /* O_DIRECT alignment of the buffer address (power of two) */
    uint32_t dio_off_align;   /* O_DIRECT alignment of offset and size (power of two) */
    atomic_int direct_broken; /* set when the filesystem rejected an O_DIRECT read */
    int sized;                /* regular file or block device: size checks apply at submit */
    int writable;             /* added for writing: WRITE requests allowed */
    uint64_t size_seq;        /* registry batch in which `size` was sampled (under reg lock) */
    uint64_t size;
    struct dsd_io_slot_ref slot; /* io_uring registered-file slot (io_slots.h) */
    _Atomic(struct dsd_io_mapping *) mapping; /* the mapped read path's state (io_mapped.h), made on first use */
    atomic_int map_refused;   /* the file could not be mapped: the path leaves it alone */
};

struct dsd_io_region {
    atomic_uint refs;
    uint32_t id;
    uint8_t *base;
    uint64_t size;
    struct dsd_io_slot_ref slot; /* io_uring registered-buffer slot (io_slots.h) */
};

struct dsd_io_registry;

int dsd_io_registry_new(struct dsd_io_registry **out);
/* Drops every file and region (deferred release as above) and frees the registry. */
void dsd_io_registry_free(struct dsd_io_registry *reg);

/* dup()s fd (close-on-exec) and owns the dup; -EEXIST if id is taken, -EBADF for a bad fd. */
int dsd_io_registry_add_file(struct dsd_io_registry *reg, uint32_t id, int fd);
/* The same; flags DSD_IO_FILE_WRITABLE allows WRITE requests (the fd must be open for writing,
 * else -EBADF; the O_DIRECT reopen keeps the fd's access mode). */
#define DSD_IO_FILE_WRITABLE 1u
int dsd_io_registry_add_file_ex(struct dsd_io_registry *reg, uint32_t id, int fd, unsigned flags);
int dsd_io_registry_remove_file(struct dsd_io_registry *reg, uint32_t id); /* -ENOENT */
/* mmap()s fd MAP_SHARED read/write; -EINVAL if size is 0 or larger than the file. */
int dsd_io_registry_add_region(struct dsd_io_registry *reg, uint32_t id, int fd, uint64_t size);
int dsd_io_registry_remove_region(struct dsd_io_registry *reg, uint32_t id); /* -ENOENT */
/* Removes everything; the registry stays usable (empty). */
void dsd_io_registry_clear(struct dsd_io_registry *reg);
void dsd_io_registry_counts(struct dsd_io_registry *reg, size_t *files, size_t *regions);
/* Ids currently registered, up to cap of them; returns how many there are. */
size_t dsd_io_registry_file_ids(struct dsd_io_registry *reg, uint32_t *ids, size_t cap);
size_t dsd_io_registry_region_ids(struct dsd_io_registry *reg, uint32_t *ids, size_t cap);

/* A new reference to a region (for views of it); -ENOENT if unknown. */
int dsd_io_registry_get_region(struct dsd_io_registry *reg, uint32_t id, struct dsd_io_region **out);

/* Batch lookups (io engine): lock once per batch, look ids up, take references, unlock. */
void dsd_io_registry_lock(struct dsd_io_registry *reg);
void dsd_io_registry_unlock(struct dsd_io_registry *reg);
struct dsd_io_file *dsd_io_registry_file_locked(struct dsd_io_registry *reg, uint32_t id);
struct dsd_io_region *dsd_io_registry_region_locked(struct dsd_io_registry *reg, uint32_t id);
/* The file's size, sampled with fstat at most once per locked batch; -errno if fstat fails. */
int dsd_io_registry_file_size_locked(struct dsd_io_registry *reg, struct dsd_io_file *f, uint64_t *size);

static inline void dsd_io_file_get(struct dsd_io_file *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}
void dsd_io_file_put(struct dsd_io_file *f);

static inline void dsd_io_region_get(struct dsd_io_region *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}
void dsd_io_region_put(struct dsd_io_region *r);

#endif
