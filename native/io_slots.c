/* Slot directories (io_slots.h): a free list of slot numbers, generations, a refcount. */
#include "io_slots.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct dsd_io_slots {
    pthread_mutex_t lock;
    unsigned refs;          /* creator + slotted objects (lock) */
    dsd_io_slot_evict_fn evict;
    void *ctx;              /* NULL after detach */
    uint32_t cap;
    uint32_t nfree;
    uint32_t *free_slots;
    uint64_t next_gen;
    int full;               /* hint read without the lock: skip the lock when nothing is free */
};

int dsd_io_slots_new(uint32_t cap, dsd_io_slot_evict_fn evict, void *ctx, struct dsd_io_slots **out)
{
    struct dsd_io_slots *s = calloc(1, sizeof(*s));
    if (s == NULL || cap == 0)
        goto fail;
    s->free_slots = malloc(cap * sizeof(*s->free_slots));
    if (s->free_slots == NULL)
        goto fail;
    pthread_mutex_init(&s->lock, NULL);
    s->refs = 1;
    s->evict = evict;
    s->ctx = ctx;
    s->cap = cap;
    for (uint32_t i = 0; i < cap; i++)
        s->free_slots[i] = cap - 1 - i; /* low slots first */
    s->nfree = cap;
    s->next_gen = 2;
    *out = s;
    return 0;
fail:
    free(s);
    return cap == 0 ? -EINVAL : -ENOMEM;
}

static void slots_unref_locked(struct dsd_io_slots *s)
{
    if (--s->refs) {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_destroy(&s->lock);
    free(s->free_slots);
    free(s);
}

void dsd_io_slots_detach(struct dsd_io_slots *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    s->ctx = NULL;
    s->evict = NULL;
    slots_unref_locked(s);
}

int dsd_io_slots_assign(struct dsd_io_slots *s, struct dsd_io_slot_ref *ref)
{
    struct dsd_io_slots *owner = dsd_io_slot_owner(ref);
    if (owner != NULL)
        return owner == s;
    if (__atomic_load_n(&s->full, __ATOMIC_RELAXED))
        return 0;
    pthread_mutex_lock(&s->lock);
    int ok = 0;
    owner = dsd_io_slot_owner(ref); /* another ring may have assigned it meanwhile */
    if (owner != NULL) {
        ok = owner == s;
    } else if (s->nfree > 0 && s->evict != NULL) {
        ref->slot = s->free_slots[--s->nfree];
        ref->gen = s->next_gen;
        s->next_gen += 2;
        s->refs++;
        __atomic_store_n(&ref->owner, s, __ATOMIC_RELEASE);
        ok = 1;
    }
    __atomic_store_n(&s->full, s->nfree == 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&s->lock);
    return ok;
}

void dsd_io_slot_release(struct dsd_io_slot_ref *ref)
{
    struct dsd_io_slots *s = dsd_io_slot_owner(ref);
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    if (s->evict)
        s->evict(s->ctx, ref->slot, ref->gen); /* rings drop their entries, then the slot is free */
    s->free_slots[s->nfree++] = ref->slot;
    __atomic_store_n(&s->full, 0, __ATOMIC_RELAXED);
    ref->owner = NULL;
    slots_unref_locked(s);
}
