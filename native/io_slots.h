/*
 * Slot directories for io_uring registered files and buffers.
 *
 * A ring's registered-file (or buffer) table is indexed by small integers. The engine owns one
 * directory per kind that hands a slot to each file (region) the first time a ring wants to use
 * it registered; every ring then installs the object at that slot lazily, tagged with the slot's
 * generation. When the file (region) is freed, the directory calls back so every ring removes
 * its entry (the kernel would otherwise keep the file open or the pages pinned), and the slot is
 * reused with a new generation, so a late removal never hits the new owner.
 *
 * A directory is refcounted: files and regions that hold a slot keep it alive after the engine
 * is gone (detach), and then simply give the slot back.
 */
#ifndef DSD_IO_SLOTS_H
#define DSD_IO_SLOTS_H

#include <stdint.h>

struct dsd_io_slots;

struct dsd_io_slot_ref {
    struct dsd_io_slots *owner; /* set once (release store) when a slot is assigned */
    uint32_t slot;
    uint64_t gen;               /* even, never 0 */
};

/* Called (with no engine lock held by the directory) when a slotted object is freed. */
typedef void (*dsd_io_slot_evict_fn)(void *ctx, uint32_t slot, uint64_t gen);

int dsd_io_slots_new(uint32_t cap, dsd_io_slot_evict_fn evict, void *ctx, struct dsd_io_slots **out);
/* The engine is closing: no more evict calls; drops the creator's reference. */
void dsd_io_slots_detach(struct dsd_io_slots *s);
/* Gives ref a slot of s unless it has one: 1 if ref's slot belongs to s now, 0 if not (full, or
 * the object is slotted by another engine's directory). */
int dsd_io_slots_assign(struct dsd_io_slots *s, struct dsd_io_slot_ref *ref);
/* The slotted object is being freed. */
void dsd_io_slot_release(struct dsd_io_slot_ref *ref);

static inline struct dsd_io_slots *dsd_io_slot_owner(const struct dsd_io_slot_ref *ref)
{
    return __atomic_load_n(&ref->owner, __ATOMIC_ACQUIRE);
}

#endif
