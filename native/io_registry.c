/*
 * Per-client files and regions (io_registry.h). Lookups happen once per request in a batch,
 * so the id maps are open-addressing hash tables; everything else is rare and simple.
 */
#define _GNU_SOURCE
#include "io_registry.h"
#include "io_mapped.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- u32 -> pointer map (linear probing, tombstones, load <= 1/2) ---- */

#define MAP_TOMBSTONE ((void *)1)

struct idmap {
    uint32_t *keys;
    void **vals;
    size_t cap;   /* power of two, or 0 */
    size_t count; /* live entries */
    size_t used;  /* live + tombstones */
};

static size_t idmap_hash(uint32_t key, size_t cap)
{
    return (size_t)((key * 0x9E3779B1u) ^ (key >> 16)) & (cap - 1);
}

static void *idmap_get(const struct idmap *m, uint32_t key)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = idmap_hash(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        void *v = m->vals[i];
        if (v == NULL)
            return NULL;
        if (v != MAP_TOMBSTONE && m->keys[i] == key)
            return v;
    }
}

static int idmap_grow(struct idmap *m)
{
    size_t ncap = m->cap ? m->cap : 16;
    while (m->count * 2 + 2 > ncap)
        ncap *= 2;
    if (ncap == m->cap && m->used * 2 + 2 <= m->cap)
        return 0;
    uint32_t *keys = calloc(ncap, sizeof(*keys));
    void **vals = calloc(ncap, sizeof(*vals));
    if (keys == NULL || vals == NULL) {
        free(keys);
        free(vals);
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        void *v = m->vals[i];
        if (v == NULL || v == MAP_TOMBSTONE)
            continue;
        size_t j = idmap_hash(m->keys[i], ncap);
        while (vals[j] != NULL)
            j = (j + 1) & (ncap - 1);
        keys[j] = m->keys[i];
        vals[j] = v;
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = ncap;
    m->used = m->count;
    return 0;
}

/* Caller checked the key is absent. */
static int idmap_put(struct idmap *m, uint32_t key, void *val)
{
    if ((m->used + 1) * 2 > m->cap) {
        int rc = idmap_grow(m);
        if (rc < 0)
            return rc;
    }
    size_t i = idmap_hash(key, m->cap);
    while (m->vals[i] != NULL && m->vals[i] != MAP_TOMBSTONE)
        i = (i + 1) & (m->cap - 1);
    if (m->vals[i] == NULL)
        m->used++;
    m->keys[i] = key;
    m->vals[i] = val;
    m->count++;
    return 0;
}

static void *idmap_remove(struct idmap *m, uint32_t key)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = idmap_hash(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        void *v = m->vals[i];
        if (v == NULL)
            return NULL;
        if (v != MAP_TOMBSTONE && m->keys[i] == key) {
            m->vals[i] = MAP_TOMBSTONE;
            m->count--;
            return v;
        }
    }
}

static size_t idmap_keys(const struct idmap *m, uint32_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->vals[i] != NULL && m->vals[i] != MAP_TOMBSTONE) {
            if (n < cap)
                out[n] = m->keys[i];
            n++;
        }
    }
    return n;
}

static void idmap_free(struct idmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* ---- files and regions ---- */

struct dsd_io_registry {
    pthread_mutex_t lock;
    struct idmap files;
    struct idmap regions;
    uint64_t batch_seq; /* bumped by every locked batch, so file sizes are sampled once each */
};

void dsd_io_file_put(struct dsd_io_file *f)
{
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    dsd_io_slot_release(&f->slot); /* rings drop their registered copies first */
    dsd_io_mapping_free(atomic_load_explicit(&f->mapping, memory_order_acquire));
    close(f->fd);
    if (f->fd_direct >= 0)
        close(f->fd_direct);
    free(f);
}

void dsd_io_region_put(struct dsd_io_region *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    dsd_io_slot_release(&r->slot); /* unpin the pages the rings registered */
    munmap(r->base, (size_t)r->size);
    free(r);
}

int dsd_io_registry_new(struct dsd_io_registry **out)
{
    struct dsd_io_registry *reg = calloc(1, sizeof(*reg));
    if (reg == NULL)
        return -ENOMEM;
    int rc = pthread_mutex_init(&reg->lock, NULL);
    if (rc != 0) {
        free(reg);
        return -rc;
    }
    *out = reg;
    return 0;
}

void dsd_io_registry_clear(struct dsd_io_registry *reg)
{
    pthread_mutex_lock(&reg->lock);
    struct idmap files = reg->files, regions = reg->regions;
    memset(&reg->files, 0, sizeof(reg->files));
    memset(&reg->regions, 0, sizeof(reg->regions));
    pthread_mutex_unlock(&reg->lock);
    /* Release outside the lock: closing fds and munmap can take a while. */
    for (size_t i = 0; i < files.cap; i++)
        if (files.vals[i] != NULL && files.vals[i] != MAP_TOMBSTONE)
            dsd_io_file_put(files.vals[i]);
    for (size_t i = 0; i < regions.cap; i++)
        if (regions.vals[i] != NULL && regions.vals[i] != MAP_TOMBSTONE)
            dsd_io_region_put(regions.vals[i]);
    idmap_free(&files);
    idmap_free(&regions);
}

void dsd_io_registry_free(struct dsd_io_registry *reg)
{
    if (reg == NULL)
        return;
    dsd_io_registry_clear(reg);
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

/* O_DIRECT alignment for the file behind fd_direct; 0 if the filesystem refuses O_DIRECT. */
static void probe_dio_alignment(struct dsd_io_file *f, const struct stat *st)
{
    struct statx stx;
    f->dio_mem_align = 0;
    f->dio_off_align = 0;
    if (statx(f->fd_direct, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN)) {
        f->dio_mem_align = stx.stx_dio_mem_align;
        f->dio_off_align = stx.stx_dio_offset_align;
        return; /* 0 means "no O_DIRECT here" */
    }
    /* Older kernels: the logical block size of the device, or the page size as a safe bound. */
    unsigned int align = 4096;
    if (S_ISBLK(st->st_mode)) {
        int lbs = 0;
        if (ioctl(f->fd_direct, BLKSSZGET, &lbs) == 0 && lbs > 0)
            align = (unsigned int)lbs;
    }
    f->dio_mem_align = align;
    f->dio_off_align = align;
}

static void open_direct(struct dsd_io_file *f, const struct stat *st)
{
    f->fd_direct = -1;
    int fl = fcntl(f->fd, F_GETFL);
    if (fl < 0 || (fl & O_DIRECT))
        return;
    /* the reopen gets the fd's own access mode, never more: read-only stays read-only, and a
     * write-only fd is only reopened for a writable file (it must not gain read access) */
    int mode = fl & O_ACCMODE;
    if (!f->writable)
        mode = O_RDONLY;
    if ((fl & O_ACCMODE) == O_WRONLY && !f->writable)
        return;
    if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode))
        return;
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", f->fd);
    int dfd = open(path, mode | O_DIRECT | O_CLOEXEC | O_NOCTTY);
    if (dfd < 0)
        return;
    struct stat dst;
    /* the reopen must reach the same inode (it could not differ short of a /proc trick) */
    if (fstat(dfd, &dst) != 0 || dst.st_ino != st->st_ino || dst.st_dev != st->st_dev) {
        close(dfd);
        return;
    }
    f->fd_direct = dfd;
    probe_dio_alignment(f, st);
    if (f->dio_mem_align == 0 || f->dio_off_align == 0 || (f->dio_mem_align & (f->dio_mem_align - 1)) ||
        (f->dio_off_align & (f->dio_off_align - 1))) {
        close(dfd);
        f->fd_direct = -1;
        f->dio_mem_align = f->dio_off_align = 0;
    }
}

int dsd_io_registry_add_file(struct dsd_io_registry *reg, uint32_t id, int fd)
{
    return dsd_io_registry_add_file_ex(reg, id, fd, 0);
}

int dsd_io_registry_add_file_ex(struct dsd_io_registry *reg, uint32_t id, int fd, unsigned flags)
{
    if (fd < 0 || (flags & ~DSD_IO_FILE_WRITABLE))
        return fd < 0 ? -EBADF : -EINVAL;
    if (flags & DSD_IO_FILE_WRITABLE) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0)
            return -errno;
        if ((fl & O_ACCMODE) == O_RDONLY)
            return -EBADF; /* not open for writing */
        if (fl & O_APPEND)
            return -EINVAL; /* pwrite would ignore the offset and append */
    }
    pthread_mutex_lock(&reg->lock);
    int exists = idmap_get(&reg->files, id) != NULL;
    pthread_mutex_unlock(&reg->lock);
    if (exists)
        return -EEXIST;

    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (S_ISDIR(st.st_mode))
        return -EISDIR;
    struct dsd_io_file *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    atomic_init(&f->refs, 1);
    atomic_init(&f->direct_broken, 0);
    f->id = id;
    f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (f->fd < 0) {
        int e = -errno;
        free(f);
        return e;
    }
    f->sized = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
    f->writable = (flags & DSD_IO_FILE_WRITABLE) != 0;
    open_direct(f, &st);

    pthread_mutex_lock(&reg->lock);
    int rc = idmap_get(&reg->files, id) != NULL ? -EEXIST : idmap_put(&reg->files, id, f);
    pthread_mutex_unlock(&reg->lock);
    if (rc < 0)
        dsd_io_file_put(f);
    return rc;
}

int dsd_io_registry_remove_file(struct dsd_io_registry *reg, uint32_t id)
{
    pthread_mutex_lock(&reg->lock);
    struct dsd_io_file *f = idmap_remove(&reg->files, id);
    pthread_mutex_unlock(&reg->lock);
    if (f == NULL)
        return -ENOENT;
    dsd_io_file_put(f);
    return 0;
}

int dsd_io_registry_add_region(struct dsd_io_registry *reg, uint32_t id, int fd, uint64_t size)
{
    if (fd < 0)
        return -EBADF;
    if (size == 0 || size > (uint64_t)SIZE_MAX / 2)
        return -EINVAL;
    pthread_mutex_lock(&reg->lock);
    int exists = idmap_get(&reg->regions, id) != NULL;
    pthread_mutex_unlock(&reg->lock);
    if (exists)
        return -EEXIST;

    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    /* Touching a mapping beyond the end of its file raises SIGBUS: refuse such regions. */
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < size)
        return -EINVAL;
    void *base = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
        return -errno;
    struct dsd_io_region *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        munmap(base, (size_t)size);
        return -ENOMEM;
    }
    atomic_init(&r->refs, 1);
    r->id = id;
    r->base = base;
    r->size = size;

    pthread_mutex_lock(&reg->lock);
    int rc = idmap_get(&reg->regions, id) != NULL ? -EEXIST : idmap_put(&reg->regions, id, r);
    pthread_mutex_unlock(&reg->lock);
    if (rc < 0)
        dsd_io_region_put(r);
    return rc;
}

int dsd_io_registry_remove_region(struct dsd_io_registry *reg, uint32_t id)
{
    pthread_mutex_lock(&reg->lock);
    struct dsd_io_region *r = idmap_remove(&reg->regions, id);
    pthread_mutex_unlock(&reg->lock);
    if (r == NULL)
        return -ENOENT;
    dsd_io_region_put(r);
    return 0;
}

void dsd_io_registry_counts(struct dsd_io_registry *reg, size_t *files, size_t *regions)
{
    pthread_mutex_lock(&reg->lock);
    *files = reg->files.count;
    *regions = reg->regions.count;
    pthread_mutex_unlock(&reg->lock);
}

size_t dsd_io_registry_file_ids(struct dsd_io_registry *reg, uint32_t *ids, size_t cap)
{
    pthread_mutex_lock(&reg->lock);
    size_t n = idmap_keys(&reg->files, ids, cap);
    pthread_mutex_unlock(&reg->lock);
    return n;
}

size_t dsd_io_registry_region_ids(struct dsd_io_registry *reg, uint32_t *ids, size_t cap)
{
    pthread_mutex_lock(&reg->lock);
    size_t n = idmap_keys(&reg->regions, ids, cap);
    pthread_mutex_unlock(&reg->lock);
    return n;
}

int dsd_io_registry_get_region(struct dsd_io_registry *reg, uint32_t id, struct dsd_io_region **out)
{
    pthread_mutex_lock(&reg->lock);
    struct dsd_io_region *r = idmap_get(&reg->regions, id);
    if (r != NULL)
        dsd_io_region_get(r);
    pthread_mutex_unlock(&reg->lock);
    *out = r;
    return r != NULL ? 0 : -ENOENT;
}

void dsd_io_registry_lock(struct dsd_io_registry *reg)
{
    pthread_mutex_lock(&reg->lock);
    reg->batch_seq++;
}

void dsd_io_registry_unlock(struct dsd_io_registry *reg)
{
    pthread_mutex_unlock(&reg->lock);
}

struct dsd_io_file *dsd_io_registry_file_locked(struct dsd_io_registry *reg, uint32_t id)
{
    return idmap_get(&reg->files, id);
}

struct dsd_io_region *dsd_io_registry_region_locked(struct dsd_io_registry *reg, uint32_t id)
{
    return idmap_get(&reg->regions, id);
}

int dsd_io_registry_file_size_locked(struct dsd_io_registry *reg, struct dsd_io_file *f, uint64_t *size)
{
    if (f->size_seq != reg->batch_seq) {
        struct stat st;
        if (fstat(f->fd, &st) != 0)
            return -errno;
        uint64_t sz = (uint64_t)st.st_size;
        if (S_ISBLK(st.st_mode) && ioctl(f->fd, BLKGETSIZE64, &sz) != 0)
            return -errno;
        f->size = sz;
        f->size_seq = reg->batch_seq;
    }
    *size = f->size;
    return 0;
}
