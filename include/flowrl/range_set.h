/* The frozen memory ranges of the op table's freeze (flowrl/ops.h), with nesting: the bookkeeping
 * that opt's packed-panel cache (opt/opt_frozen.c) and the profile's wrapper (core/profile.c)
 * share. Not thread-safe: callers hold their own lock. */
#ifndef FLOWRL_RANGE_SET_H
#define FLOWRL_RANGE_SET_H

#include <stddef.h>
#include <stdint.h>

#define FR_RANGE_SET_MAX 64

typedef struct {
    const char *p[FR_RANGE_SET_MAX];
    size_t bytes[FR_RANGE_SET_MAX];
    int depth[FR_RANGE_SET_MAX]; /* nested freezes of the slot; 0: a free slot */
    int live;                    /* slots with depth > 0 */
} fr_range_set;

/* frozen = 1: [p, p + bytes) frozen once more (a new slot, or the slot of the same p and bytes);
 * frozen = 0: once less. Returns the slot, -1 when out of slots (the range is then not tracked,
 * and its unfreeze finds nothing) or when an unfreeze matches no slot. *ended: 1 when that
 * unfreeze ended the slot's last freeze (the caller drops what it derived from the range; the slot
 * is free again). */
static inline int fr_range_set_freeze(fr_range_set *s, const void *p, size_t bytes, int frozen, int *ended)
{
    int slot = -1, free_slot = -1;
    *ended = 0;
    for (int i = 0; i < FR_RANGE_SET_MAX && slot < 0; i++) {
        if (s->depth[i] > 0 && s->p[i] == (const char *)p && s->bytes[i] == bytes) slot = i;
        else if (s->depth[i] == 0 && free_slot < 0) free_slot = i;
    }
    if (frozen) {
        if (slot >= 0) {
            s->depth[slot]++;
        } else if (free_slot >= 0) {
            slot = free_slot;
            s->p[slot] = (const char *)p, s->bytes[slot] = bytes, s->depth[slot] = 1;
            s->live++;
        }
    } else if (slot >= 0 && --s->depth[slot] == 0) {
        s->p[slot] = NULL, s->bytes[slot] = 0;
        s->live--;
        *ended = 1;
    }
    return slot;
}

/* The slot of a frozen range that holds all of [p, p + bytes), or -1. */
static inline int fr_range_set_find(const fr_range_set *s, const void *p, size_t bytes)
{
    const uintptr_t b = (uintptr_t)p; /* addresses as integers: p need not lie in a range's object */
    for (int i = 0; i < FR_RANGE_SET_MAX; i++) {
        const uintptr_t lo = (uintptr_t)s->p[i];
        if (s->depth[i] > 0 && b >= lo && bytes <= s->bytes[i] && b - lo <= s->bytes[i] - bytes) return i;
    }
    return -1;
}

#endif
