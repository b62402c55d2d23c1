/* Canonical GEMM for opt: every output C[i,j] is ONE fmaf chain along k = 0..K-1,
 * starting from 0 or the old C[i,j] (flowrl/reduce.h, docs/determinism.md "Canonical
 * orders"), bitwise equal to ref/ref_gemm.c.
 *
 * How the order is kept while going fast:
 *  - The micro-kernel holds a 6x16 tile of C in 12 AVX2 registers (24 NEON registers on
 *    aarch64) and, for each k in increasing order, does acc = fma(a[i,k], b[k,j..j+7], acc):
 *    the vector lanes are different outputs (j), never different k. _mm256_fmadd_ps and
 *    vfmaq_f32 round once, like fmaf.
 *  - k is tiled by KC: the next tile loads the partial C and continues the same chain
 *    (the partial is a float in C exactly as it was in the register).
 *  - Threads own disjoint row or column blocks of C and run the whole k loop for them,
 *    so the thread count never changes an output's chain.
 * Packing (B panels, transposed when tb) only moves data; a B inside a frozen range (the op
 * table's freeze: a rollout's weights) is packed whole on its first call and the panels reused
 * while the range stays frozen (opt/opt_frozen.c). */
#include "opt/opt_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "opt/opt_simd.h"

#define MR 6
#define NR 16
#define KC 256
/* Rows of C per block: the kernel streams MR rows of kc floats of A per tile, read in place (not
 * ta) or packed (ta), so a block's A is MC*KC floats = 384 KiB, kept in L2 across its B panels,
 * and each B panel is packed once per k tile for up to MC rows (an update's 288 rows: once; a
 * weight gradient's 256-768 rows: once or twice, not 3-8 times as with blocks of 96). */
#define MC 384

/* Below this many multiply-adds a GEMM runs on one thread (a pool round trip costs a few
 * microseconds; 2^18 fmas is ~10 us on one core). */
#define GEMM_MIN_FMAS_PER_THREAD (1 << 18)

typedef struct {
    int64_t M, N, K;
    const float *A, *B;
    float *C;
    int64_t sai, sak; /* op(A)[i,k] = A[i*sai + k*sak] */
    int64_t sbk, sbj; /* op(B)[k,j] = B[k*sbk + j*sbj] */
    int tb, accumulate;
    /* op(B) packed whole while B lies in a frozen range (opt/opt_frozen.c), else NULL: the panel
     * of k tile pc (kc deep) and columns [j, j+NR) is at bpack + pc*n_panels*NR + (j/NR)*kc*NR */
    const float *bpack;
    int64_t n_panels;
    int split_cols;      /* threads split columns (1) or rows (0) */
    int64_t tiles;       /* tiles (NR columns or MR rows) along the split dimension */
    int64_t chunk_tiles; /* tiles per chunk, the unit a thread takes */
    int64_t n_chunks;
    _Atomic int64_t next_chunk;
} gemm_job;

/* One SIMD target's pieces of the blocked GEMM. */
typedef struct {
    void (*kern)(int64_t kc, const float *a, const int64_t *r_off, int64_t sak, const float *b,
                 int64_t ldb, float *c, int64_t ldc, int load_c);
    void (*pack_b)(const gemm_job *g, int64_t pc, int64_t kc, int64_t j, int64_t nr, float *bp);
    void (*pack_a_t)(const gemm_job *g, int64_t pc, int64_t kc, int64_t i, int64_t mr, float *ap);
} gemm_simd;


/* Portable path: the ref order, over the block rows [i0,i1) x cols [j0,j1). */
static void block_scalar(const gemm_job *g, int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
    for (int64_t i = i0; i < i1; i++)
        for (int64_t j = j0; j < j1; j++) {
            float acc = g->accumulate ? g->C[i * g->N + j] : 0.0f;
            const float *a = g->A + i * g->sai, *b = g->B + j * g->sbj;
            for (int64_t k = 0; k < g->K; k++) acc = fmaf(a[k * g->sak], b[k * g->sbk], acc);
            g->C[i * g->N + j] = acc;
        }
}

/* Packing in plain C, for targets without a faster one: bp (kc,16) = op(B)[pc + k, j + jj]
 * for jj < nr, 0 beyond (the padded columns feed outputs that are never stored). */
static void pack_b_plain(const gemm_job *g, int64_t pc, int64_t kc, int64_t j, int64_t nr, float *bp)
{
    for (int64_t k = 0; k < kc; k++) {
        const float *src = g->B + (pc + k) * g->sbk + j * g->sbj;
        for (int64_t jj = 0; jj < NR; jj++) bp[k * NR + jj] = jj < nr ? src[jj * g->sbj] : 0.0f;
    }
}

/* ap (mr rows, kc), 6 floats per k, when ta (as pack_a_t). */
static void pack_a_t_plain(const gemm_job *g, int64_t pc, int64_t kc, int64_t i, int64_t mr, float *ap)
{
    for (int64_t k = 0; k < kc; k++) {
        const float *src = g->A + (pc + k) * g->sak + i;
        for (int64_t r = 0; r < MR; r++) ap[k * MR + r] = r < mr ? src[r] : 0.0f;
    }
}

#if FR_OPT_X86

/* c (6,16) [ldc] = (load_c ? c : 0) + sum_k a[k] (x) b[k], one fma per k per output.
 * Row r of the A tile is a[r_off[r] + k*sak]; b[k] is 16 floats at b + k*ldb. */
__attribute__((target("avx2,fma"))) static void
kern_6x16(int64_t kc, const float *a, const int64_t *r_off, int64_t sak, const float *b,
          int64_t ldb, float *c, int64_t ldc, int load_c)
{
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    if (load_c) {
        c00 = _mm256_loadu_ps(c + 0 * ldc), c01 = _mm256_loadu_ps(c + 0 * ldc + 8);
        c10 = _mm256_loadu_ps(c + 1 * ldc), c11 = _mm256_loadu_ps(c + 1 * ldc + 8);
        c20 = _mm256_loadu_ps(c + 2 * ldc), c21 = _mm256_loadu_ps(c + 2 * ldc + 8);
        c30 = _mm256_loadu_ps(c + 3 * ldc), c31 = _mm256_loadu_ps(c + 3 * ldc + 8);
        c40 = _mm256_loadu_ps(c + 4 * ldc), c41 = _mm256_loadu_ps(c + 4 * ldc + 8);
        c50 = _mm256_loadu_ps(c + 5 * ldc), c51 = _mm256_loadu_ps(c + 5 * ldc + 8);
    } else {
        c00 = c01 = c10 = c11 = c20 = c21 = _mm256_setzero_ps();
        c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
    }
    const int64_t o1 = r_off[1], o2 = r_off[2], o3 = r_off[3], o4 = r_off[4], o5 = r_off[5];
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), av;
        av = _mm256_broadcast_ss(a);
        c00 = _mm256_fmadd_ps(av, b0, c00), c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(a + o1);
        c10 = _mm256_fmadd_ps(av, b0, c10), c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(a + o2);
        c20 = _mm256_fmadd_ps(av, b0, c20), c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(a + o3);
        c30 = _mm256_fmadd_ps(av, b0, c30), c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(a + o4);
        c40 = _mm256_fmadd_ps(av, b0, c40), c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(a + o5);
        c50 = _mm256_fmadd_ps(av, b0, c50), c51 = _mm256_fmadd_ps(av, b1, c51);
        a += sak;
        b += ldb;
    }
    _mm256_storeu_ps(c + 0 * ldc, c00), _mm256_storeu_ps(c + 0 * ldc + 8, c01);
    _mm256_storeu_ps(c + 1 * ldc, c10), _mm256_storeu_ps(c + 1 * ldc + 8, c11);
    _mm256_storeu_ps(c + 2 * ldc, c20), _mm256_storeu_ps(c + 2 * ldc + 8, c21);
    _mm256_storeu_ps(c + 3 * ldc, c30), _mm256_storeu_ps(c + 3 * ldc + 8, c31);
    _mm256_storeu_ps(c + 4 * ldc, c40), _mm256_storeu_ps(c + 4 * ldc + 8, c41);
    _mm256_storeu_ps(c + 5 * ldc, c50), _mm256_storeu_ps(c + 5 * ldc + 8, c51);
}

/* bp (kc,16) = op(B)[pc + k, j + jj] for jj < nr, 0 beyond (the padded columns feed
 * outputs that are never stored). When tb, op(B)[k,j] = B[j*K + k]: 8x8 transposes. */
__attribute__((target("avx2,fma"))) static void pack_b(const gemm_job *g, int64_t pc,
                                                       int64_t kc, int64_t j, int64_t nr,
                                                       float *bp)
{
    int64_t k = 0;
    if (!g->tb && nr == NR) {
        for (; k < kc; k++) {
            const float *src = g->B + (pc + k) * g->sbk + j;
            _mm256_store_ps(bp + k * NR, _mm256_loadu_ps(src));
            _mm256_store_ps(bp + k * NR + 8, _mm256_loadu_ps(src + 8));
        }
    }
    if (g->tb && nr == NR) {
        for (; k + 8 <= kc; k += 8)
            for (int h = 0; h < 2; h++)
                fr_v_transpose8(g->B + (j + 8 * h) * g->sbj + (pc + k), g->sbj, bp + k * NR + 8 * h, NR);
    }
    if (k < kc) pack_b_plain(g, pc + k, kc - k, j, nr, bp + k * NR);
}

/* ap (mr rows, kc) for rows [i, i+mr) when ta (op(A)[i,k] = A[k*M + i]): the 6 values
 * of one k contiguous, so the kernel reads one cache line per k instead of one row of A
 * (M floats apart, which maps many k onto few L1 sets). */
__attribute__((target("avx2,fma"))) static void
pack_a_t(const gemm_job *g, int64_t pc, int64_t kc, int64_t i, int64_t mr, float *ap)
{
    if (mr == MR) { /* 6 floats per k (masked load), stored as 8: the next k overwrites
                       the 2 extra, the buffer has room after the last */
        const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
        for (int64_t k = 0; k < kc; k++)
            _mm256_storeu_ps(ap + k * MR, _mm256_maskload_ps(g->A + (pc + k) * g->sak + i, six));
        return;
    }
    pack_a_t_plain(g, pc, kc, i, mr, ap);
}

#endif /* FR_OPT_X86 */

#if FR_OPT_NEON
/* c (6,16) [ldc] = (load_c ? c : 0) + sum_k a[k] (x) b[k], one vfmaq_f32 per k per output
 * (4 registers of 4 outputs per row). Row r of the A tile is a[r_off[r] + k*sak]. */
static void kern_6x16_neon(int64_t kc, const float *a, const int64_t *r_off, int64_t sak,
                           const float *b, int64_t ldb, float *c, int64_t ldc, int load_c)
{
    float32x4_t acc[MR][4];
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = load_c ? vld1q_f32(c + r * ldc + 4 * q) : vdupq_n_f32(0.0f);
    for (int64_t k = 0; k < kc; k++) {
        const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8), b3 = vld1q_f32(b + 12);
        for (int r = 0; r < MR; r++) {
            const float32x4_t av = vdupq_n_f32(a[r_off[r]]);
            acc[r][0] = vfmaq_f32(acc[r][0], av, b0), acc[r][1] = vfmaq_f32(acc[r][1], av, b1);
            acc[r][2] = vfmaq_f32(acc[r][2], av, b2), acc[r][3] = vfmaq_f32(acc[r][3], av, b3);
        }
        a += sak;
        b += ldb;
    }
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < 4; q++) vst1q_f32(c + r * ldc + 4 * q, acc[r][q]);
}
#endif

/* The blocked kernel over rows [i0,i1) x cols [j0,j1) of C, all of k, with one SIMD
 * target's micro-kernel and packing. work holds KC*NR + MC*KC + 8 floats (32-byte aligned). */
static void block_tiled(const gemm_job *g, const gemm_simd *sd, int64_t i0, int64_t i1,
                        int64_t j0, int64_t j1, float *work)
{
    _Alignas(32) float tile[MR * NR];
    float *bp = work, *apk = work + KC * NR;
    const int64_t N = g->N;
    const int pack_a = g->sak != 1; /* ta */
    /* Rows per block: MC (see its definition). Only the order in which tiles are visited
     * changes, never a chain. */
    const int64_t mc = MC;
    for (int64_t pc = 0; pc < g->K; pc += KC) {
        int64_t kc = g->K - pc < KC ? g->K - pc : KC;
        int load_c = g->accumulate || pc > 0; /* continue the chain from the partial C */
        for (int64_t ic = i0; ic < i1; ic += mc) {
            int64_t ie = i1 - ic < mc ? i1 : ic + mc;
            if (pack_a)
                for (int64_t i = ic; i < ie; i += MR)
                    sd->pack_a_t(g, pc, kc, i, ie - i < MR ? ie - i : MR, apk + (i - ic) * KC);
            for (int64_t j = j0; j < j1; j += NR) {
                int64_t nr = j1 - j < NR ? j1 - j : NR;
                const float *bpj = bp;
                if (g->bpack) bpj = g->bpack + pc * g->n_panels * NR + (j / NR) * kc * NR;
                else sd->pack_b(g, pc, kc, j, nr, bp);
                for (int64_t i = ic; i < ie; i += MR) {
                    int64_t mr = ie - i < MR ? ie - i : MR;
                    const float *a;
                    int64_t r_off[MR], sak;
                    if (pack_a) {
                        a = apk + (i - ic) * KC, sak = MR;
                        for (int r = 0; r < MR; r++) r_off[r] = r;
                    } else {
                        a = g->A + i * g->sai + pc, sak = 1;
                        /* rows past the edge re-read row 0; their outputs are dropped */
                        for (int r = 0; r < MR; r++) r_off[r] = (r < mr ? r : 0) * g->sai;
                    }
                    float *c = g->C + i * N + j;
                    if (load_c && i + MR < ie) /* the next tile's C rows, toward L1 */
                        for (int r = 0; r < MR; r++) {
                            __builtin_prefetch(c + (MR + r) * N);
                            __builtin_prefetch(c + (MR + r) * N + NR - 1);
                        }
                    if (mr == MR && nr == NR) {
                        sd->kern(kc, a, r_off, sak, bpj, NR, c, N, load_c);
                        continue;
                    }
                    /* Edge tile: through a full 6x16 scratch tile, only the valid part of
                     * C is read and written. */
                    if (load_c)
                        for (int64_t r = 0; r < mr; r++)
                            memcpy(tile + r * NR, c + r * N, (size_t)nr * sizeof(float));
                    sd->kern(kc, a, r_off, sak, bpj, NR, tile, NR, load_c);
                    for (int64_t r = 0; r < mr; r++)
                        memcpy(c + r * N, tile + r * NR, (size_t)nr * sizeof(float));
                }
            }
        }
    }
}


/* The packing buffers of block_tiled, KC*NR + MC*KC + 8 floats (~400 KiB), one per thread for its
 * life (allocating them per call costs page faults on every GEMM); a thread's exit frees its own. */
static pthread_key_t g_work_key;
static pthread_once_t g_work_once = PTHREAD_ONCE_INIT;
static void work_key_make(void) { (void)pthread_key_create(&g_work_key, free); }

static float *gemm_work(void)
{
    static _Thread_local float *work;
    if (work) return work;
    (void)pthread_once(&g_work_once, work_key_make);
    work = aligned_alloc(32, (size_t)(KC * NR + MC * KC + 8) * sizeof(float));
    if (work) (void)pthread_setspecific(g_work_key, work);
    return work;
}

/* Threads take chunks of tiles (columns or rows of C) from a shared counter until none
 * are left: a thread that gets less CPU (a busy machine) simply takes fewer chunks. Which
 * thread computes a chunk never matters to the bits (each output is one chain). */
/* The SIMD target's pieces, NULL: the portable path. */
static const gemm_simd *gemm_simd_pick(void)
{
#if FR_OPT_X86
    static const gemm_simd k_avx2 = {kern_6x16, pack_b, pack_a_t};
    if (fr_opt_avx2) return &k_avx2;
#endif
#if FR_OPT_NEON
    static const gemm_simd k_neon = {kern_6x16_neon, pack_b_plain, pack_a_t_plain};
    if (fr_opt_neon) return &k_neon;
#endif
    return NULL;
}

/* op(B) whole, panel by panel with the target's pack_b, in gemm_job.bpack's layout. */
typedef struct {
    const gemm_job *g;
    const gemm_simd *sd;
} whole_b;

static void pack_whole_b(void *ctx, float *dst)
{
    const whole_b *w = ctx;
    const gemm_job *g = w->g;
    for (int64_t pc = 0; pc < g->K; pc += KC) {
        int64_t kc = g->K - pc < KC ? g->K - pc : KC;
        for (int64_t j = 0; j < g->N; j += NR)
            w->sd->pack_b(g, pc, kc, j, g->N - j < NR ? g->N - j : NR, dst + pc * g->n_panels * NR + (j / NR) * kc * NR);
    }
}

static void gemm_part(void *arg, int t, int nt)
{
    (void)t, (void)nt;
    gemm_job *g = (gemm_job *)arg;
    const gemm_simd *sd = gemm_simd_pick();
    float *work = sd ? gemm_work() : NULL;
    if (sd && !work) sd = NULL; /* out of memory for the packing buffers: the portable path */
    for (;;) {
        int64_t ch = atomic_fetch_add(&g->next_chunk, 1);
        if (ch >= g->n_chunks) break;
        int64_t tb = ch * g->chunk_tiles, te = tb + g->chunk_tiles;
        if (te > g->tiles) te = g->tiles;
        int64_t i0 = 0, i1 = g->M, j0 = 0, j1 = g->N;
        if (g->split_cols) {
            j0 = tb * NR;
            j1 = te * NR < g->N ? te * NR : g->N;
        } else {
            i0 = tb * MR;
            i1 = te * MR < g->M ? te * MR : g->M;
        }
        if (work) block_tiled(g, sd, i0, i1, j0, j1, work);
        else block_scalar(g, i0, i1, j0, j1);
    }
}

void fr_opt_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K,
                 const float *A, // (M,K), or (K,M) if ta
                 const float *B, // (K,N), or (N,K) if tb
                 float *C,       // (M,N)
                 int accumulate)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* empty chains: 0, or C unchanged */
        if (!accumulate) memset(C, 0, (size_t)(M * N) * sizeof *C);
        return;
    }
    if (fr_opt_gemm_small(ta, tb, M, N, K, A, B, C, accumulate)) return; /* opt/opt_gemm_small.c */
    gemm_job g = {
        .M = M, .N = N, .K = K, .A = A, .B = B, .C = C,
        .sai = ta ? 1 : K, .sak = ta ? M : 1,
        .sbk = tb ? 1 : N, .sbj = tb ? K : 1,
        .tb = tb, .accumulate = accumulate,
    };
    int64_t tiles_m = (M + MR - 1) / MR, tiles_n = (N + NR - 1) / NR;
    const gemm_simd *sd = gemm_simd_pick();
    if (sd && fr_opt_frozen_ranges()) { /* B in a frozen range: packed once for its frozen period */
        whole_b w = {&g, sd};
        g.n_panels = tiles_n;
        g.bpack = fr_opt_frozen_packed(B, (size_t)(K * N) * sizeof(float), tb, N, K, (size_t)(K * tiles_n * NR),
                                       pack_whole_b, &w);
    }
    double fmas = (double)M * (double)N * (double)K;
    int max = fr_opt_get_threads();
    int64_t nt = fr_opt_split_all() ? max : (int64_t)(fmas / GEMM_MIN_FMAS_PER_THREAD);
    if (nt > max) nt = max;
    if (nt < 1) nt = 1;
    /* Columns unless C is too narrow to give each thread a few column chunks: a column
     * chunk re-packs A only when ta, a row chunk re-packs B always. */
    g.split_cols = tiles_n >= 4 * nt || tiles_n >= tiles_m;
    g.tiles = g.split_cols ? tiles_n : tiles_m;
    /* Chunks of >= 64 columns / 48 rows (packing stays a few % of the work), about three
     * per thread so that a slowed thread can be covered by the others. */
    int64_t min_tiles = fr_opt_split_all() ? 1 : g.split_cols ? 64 / NR : 48 / MR;
    int64_t ct = (g.tiles + 3 * nt - 1) / (3 * nt);
    g.chunk_tiles = nt == 1 ? g.tiles : (ct < min_tiles ? min_tiles : ct);
    g.n_chunks = (g.tiles + g.chunk_tiles - 1) / g.chunk_tiles;
    if (nt > g.n_chunks) nt = g.n_chunks;
    atomic_init(&g.next_chunk, 0);
    if (nt == 1) {
        g.chunk_tiles = g.tiles, g.n_chunks = 1;
        gemm_part(&g, 0, 1);
    } else {
        fr_opt_run((int)nt, gemm_part, &g);
    }
}
