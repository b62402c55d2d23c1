/* The op table's freeze for opt (flowrl/ops.h): ranges of memory the caller promised not to
 * write, and the GEMM B operands inside them kept packed while their range stays frozen.
 *
 * Why: the rollout runs the same weights T times (core/rollout_engine.c freezes the model's
 * weights around it), and opt's GEMM otherwise re-packs every weight into its kernel's panels on
 * every call (the packing transposes a forward's B: ~10% of a shapes-s Flow-GRPO epoch,
 * issue 15). Packing only moves data, so a panel packed once and read T times gives the kernel
 * the very floats it would have packed itself: every output keeps its one fmaf chain.
 *
 * A packed form lives until its range is unfrozen (then freed). Lookups take one mutex (GEMMs
 * may be called from several host threads); a B is packed under it, on the calling thread, once
 * per frozen period. Out of slots or memory: the range or the B is simply not cached. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "opt/opt_internal.h"

#define MAX_RANGES 64

typedef struct {
    const char *p;
    size_t bytes;
    int depth; /* nested freezes; 0: a free slot */
} frozen_range;

typedef struct {
    const float *B;
    int tb;
    int64_t N, K;
    int range; /* the slot of the range it lies in */
    float *panels;
} packed_b;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static frozen_range g_ranges[MAX_RANGES];
static _Atomic int g_n_frozen; /* slots with depth > 0: the GEMM's lock-free "nothing frozen" test */
static packed_b *g_packed;
static int g_n_packed, g_cap_packed;

static void drop_range_packs(int slot)
{
    int w = 0;
    for (int i = 0; i < g_n_packed; i++) {
        if (g_packed[i].range == slot) free(g_packed[i].panels);
        else g_packed[w++] = g_packed[i];
    }
    g_n_packed = w;
    if (!g_n_packed) free(g_packed), g_packed = NULL, g_cap_packed = 0;
}

void fr_opt_freeze(const void *p, size_t bytes, int frozen)
{
    if (!p || !bytes) return;
    pthread_mutex_lock(&g_lock);
    int slot = -1, free_slot = -1;
    for (int i = 0; i < MAX_RANGES && slot < 0; i++) {
        if (g_ranges[i].depth > 0 && g_ranges[i].p == p && g_ranges[i].bytes == bytes) slot = i;
        else if (g_ranges[i].depth == 0 && free_slot < 0) free_slot = i;
    }
    if (frozen) {
        if (slot >= 0) g_ranges[slot].depth++;
        else if (free_slot >= 0) { /* else out of slots: the range is not cached */
            g_ranges[free_slot] = (frozen_range){p, bytes, 1};
            atomic_fetch_add(&g_n_frozen, 1);
        }
    } else if (slot >= 0 && --g_ranges[slot].depth == 0) {
        drop_range_packs(slot);
        g_ranges[slot] = (frozen_range){0};
        atomic_fetch_sub(&g_n_frozen, 1);
    }
    pthread_mutex_unlock(&g_lock);
}

int fr_opt_frozen_ranges(void) { return atomic_load(&g_n_frozen); }

const float *fr_opt_frozen_packed(const float *B, size_t b_bytes, int tb, int64_t N, int64_t K, size_t floats,
                                  fr_opt_pack_fn pack, void *ctx)
{
    if (atomic_load(&g_n_frozen) == 0) return NULL;
    const char *b = (const char *)B;
    const float *out = NULL;
    pthread_mutex_lock(&g_lock);
    int slot = -1;
    for (int i = 0; i < MAX_RANGES && slot < 0; i++) {
        const frozen_range *r = &g_ranges[i];
        if (r->depth > 0 && b >= r->p && b_bytes <= r->bytes && (size_t)(b - r->p) <= r->bytes - b_bytes) slot = i;
    }
    if (slot >= 0) {
        for (int i = 0; i < g_n_packed && !out; i++) {
            const packed_b *e = &g_packed[i];
            if (e->B == B && e->tb == tb && e->N == N && e->K == K && e->range == slot) out = e->panels;
        }
        if (!out && g_n_packed == g_cap_packed) {
            int cap = g_cap_packed ? 2 * g_cap_packed : 16;
            packed_b *grown = realloc(g_packed, (size_t)cap * sizeof *grown);
            if (grown) g_packed = grown, g_cap_packed = cap;
        }
        if (!out && g_n_packed < g_cap_packed) {
            float *panels = aligned_alloc(32, (floats * sizeof(float) + 31) / 32 * 32);
            if (panels) {
                pack(ctx, panels);
                g_packed[g_n_packed++] = (packed_b){B, tb, N, K, slot, panels};
                out = panels;
            }
        }
    }
    pthread_mutex_unlock(&g_lock);
    return out;
}
