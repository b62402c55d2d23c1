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

#include "flowrl/range_set.h"
#include "opt/opt_internal.h"

typedef struct {
    const float *B;
    int tb;
    int64_t N, K;
    int range; /* the slot of the range it lies in */
    float *panels;
} packed_b;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static fr_range_set g_ranges;
static _Atomic int g_n_frozen; /* g_ranges.live: the GEMM's lock-free "nothing frozen" test */
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
    int ended, slot = fr_range_set_freeze(&g_ranges, p, bytes, frozen, &ended);
    if (ended) drop_range_packs(slot);
    atomic_store(&g_n_frozen, g_ranges.live);
    pthread_mutex_unlock(&g_lock);
}

int fr_opt_frozen_ranges(void) { return atomic_load(&g_n_frozen); }

const float *fr_opt_frozen_packed(const float *B, size_t b_bytes, int tb, int64_t N, int64_t K, size_t floats,
                                  fr_opt_pack_fn pack, void *ctx)
{
    if (atomic_load(&g_n_frozen) == 0) return NULL;
    const float *out = NULL;
    pthread_mutex_lock(&g_lock);
    const int slot = fr_range_set_find(&g_ranges, B, b_bytes);
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
