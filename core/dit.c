/* The diffusion transformer (model.arch = dit; docs/algorithms/dit.md): forward and backward
 * written against the op table only, as the MLP of core/model.c, for the same callers.
 *
 *   x (B,D) an image (C, Hi, Wi) in CHW order, p the patch side, N = (Hi/p)(Wi/p) image
 *   tokens of P = C·p·p values, S = n_slots prompt tokens, L = N + S, nh heads of dh = H/nh.
 *
 *   tok_n   = patch_n(x) W_patch^T + b_patch + pos[n]                  n < N      (B,N,H)
 *   tok_N+s = cond[c_s] + prompt_pos[s]                                 s < S      (B,S,H)
 *   h_0     = [tok_0 .. tok_{N−1}, tok_N .. tok_{L−1}]                             (B,L,H)
 *   cvec    = W_t2 act(W_t1 sin_emb(t) + b_t1) + b_t2 + Σ_s cond[c_s]               (B,H)
 *   sc      = silu(cvec)
 *   block k (adaLN-zero, Peebles & Xie 2023 §3.2): (β1 γ1 α1 β2 γ2 α2) = sc W_ada^T + b_ada
 *     h' = h + α1 ⊙ Attn(LN(h)·(1 + γ1) + β1)       joint self-attention over all L tokens
 *     h  = h' + α2 ⊙ MLP(LN(h')·(1 + γ2) + β2)      MLP = W2 act(W1 · + b1) + b2
 *   Attn(z): [q k v] = z W_qkv^T + b_qkv, per head softmax(q kᵀ / √dh) v, then W_proj, b_proj
 *   final:  (β γ) = sc W_fada^T + b_fada, o_n = (LN(h_n)(1 + γ) + β) W_out^T + b_out (P per
 *           image token n), out = unpatchify(o): the MLP's heads (velocity, x0, ε) on it.
 *   LN has no affine (DiT's elementwise_affine=False; adaLN supplies scale and shift).
 *
 * The prompt enters twice, as in SD3's MMDiT: as tokens of a joint attention, and pooled (the
 * sum of its rows) into the adaLN vector with the time.
 *
 * Layout moves (patchify, unpatchify, the head split and merge, the token sequence) are
 * gather_rows with index tables made once per workspace on the host: each sample's rows form a
 * contiguous block, so a table for cap_B samples serves every B <= cap_B as a prefix. QKᵀ, PV
 * and their backward are per (sample, head) calls of the canonical gemm; the softmax and
 * adaLN are the ops of flowrl/attn_elem.h. Each output row depends only on its own sample. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/lora.h"
#include "model_internal.h"

/* The activations and index tables of one workspace (device arrays unless noted). */
struct fr_dit_ws {
    int64_t N, S, L, P, p, nh, hd, cap; /* hd: the head width H/nh */
    float alpha;              /* 1/√hd */
    int64_t slots;            /* per-block slots: n_blocks (keep) or 1 */
    float *xp;                /* (cap·N, P) patches */
    float *tok;               /* (cap·N + cap·S, H) token staging: image rows, then prompt rows */
    float *temb_in;           /* (cap, E) */
    float *t1, *a1, *cvec, *sc; /* (cap, H) */
    float *h;                 /* (n_blocks + 1 or 1, cap·L, H) */
    float *mod;               /* (slots, cap, 6H) */
    float *ln1, *m1, *hmid, *ln2, *m2, *o, *att, *y; /* (slots, cap·L, H) */
    float *mean1, *rstd1, *mean2, *rstd2;              /* (slots, cap·L) */
    float *qh;                /* (slots, cap, 3, nh, L, dh) */
    float *pr;                /* (slots, cap, nh, L, L) attention probabilities */
    float *u, *a;             /* (slots, cap·L, F) */
    float *sa;                /* keep: (slots, cap·L, F), the MLP activation's saved transcendental
                               * (act_fwd_save), so the backward does not compute it again */
    float *qkv, *oh;          /* (cap·L, 3H), (cap, nh, L, dh) scratch */
    float *fmod;              /* (cap, 2H) */
    float *lnf, *mf, *meanf, *rstdf; /* (cap·L, H), (cap·L) */
    float *outp;              /* (cap·L, P) */
    float *xo, *den, *dxh;    /* heads, as fr_model_ws */
    /* backward scratch (keep) */
    float *dh, *dt, *dt2;     /* (cap·L, H) */
    float *dF1, *dF2;         /* (cap·L, F) */
    float *dqh, *dqkv;        /* (cap·L·3H) */
    float *dpr;               /* (cap, nh, L, L) */
    float *dmod;              /* (cap, 6H) */
    float *dsc, *dcv, *dtH, *dtH2; /* (cap, H) */
    float *doutp;             /* (cap·L, P) */
    float *dxp;               /* (cap·N, P) */
    float *dtok;              /* like tok */
    int32_t *c;               /* (cap, S) copy of the condition ids */
    fr_lora_scratch ls;       /* a LoRA view's s·z Aᵀ slots (model_internal.h), or all NULL */
    /* index tables (gather_rows), each a prefix-closed list of per-sample blocks */
    int32_t *i_patch;         /* rows of p: xp (b,n,c,dy) <- x (b,c,y,bx) */
    int32_t *i_unpatch_x;     /* rows of p: x <- xp (dx) */
    int32_t *i_unpatch_o;     /* rows of p: out <- outp */
    int32_t *i_patch_o;       /* rows of p: doutp <- dout, −1 on prompt tokens */
    int32_t *i_split, *i_split_inv; /* rows of dh: qh <- qkv, and back */
    int32_t *i_merge, *i_merge_inv; /* rows of dh: o (b,l,head) <- oh (b,head,l), and back */
    int32_t *i_seq;           /* rows of H: h_0 (b,l) <- tok */
    int32_t *i_img, *i_prm;   /* rows of H: dtok image / prompt rows <- dh_0 */
    void *buf;
};

static const float *W(const fr_model *m, int i) { return (const float *)m->w[i].data; }
/* NULL in a LoRA view (the base is frozen) */
static float *G(fr_model *m, int i) { return m->lora ? NULL : (float *)m->grads[i].data; }
static int64_t lora_rank(const fr_model *m) { return m->lora && m->adapter >= 0 ? m->lora->r : 0; }

/* ---- config, parameter list, counts ---------------------------------------------------- */

fr_status fr_dit_config_check(const fr_model_config *c)
{
    if ((int)c->arch < 0 || c->arch >= FR_ARCH_COUNT)
        return fr_fail(FR_ERR_ARG, "model config: arch = %d, expected mlp or dit", (int)c->arch);
    if (c->arch == FR_ARCH_MLP) {
        if (c->img_c || c->img_h || c->img_w || c->patch || c->n_heads)
            return fr_fail(FR_ERR_ARG, "model config: img_c, img_h, img_w, patch, n_heads are for arch dit; "
                                       "expected 0");
        return FR_OK;
    }
    const int64_t dims[] = {c->img_c, c->img_h, c->img_w, c->patch, c->n_heads};
    const char *names[] = {"img_c", "img_h", "img_w", "patch", "n_heads"};
    for (int i = 0; i < 5; i++)
        if (dims[i] < 1 || dims[i] > 4096)
            return fr_fail(FR_ERR_ARG, "model config (dit): %s = %lld, expected 1..4096", names[i], (long long)dims[i]);
    if (c->img_c * c->img_h * c->img_w != c->D)
        return fr_fail(FR_ERR_ARG, "model config (dit): D = %lld, expected img_c·img_h·img_w = %lld",
                       (long long)c->D, (long long)(c->img_c * c->img_h * c->img_w));
    if (c->img_h % c->patch || c->img_w % c->patch)
        return fr_fail(FR_ERR_ARG, "model config (dit): patch %lld does not divide the %lldx%lld image",
                       (long long)c->patch, (long long)c->img_h, (long long)c->img_w);
    if (c->H % c->n_heads)
        return fr_fail(FR_ERR_ARG, "model config (dit): n_heads %lld does not divide H = %lld",
                       (long long)c->n_heads, (long long)c->H);
    const int64_t L = (c->img_h / c->patch) * (c->img_w / c->patch) + c->n_slots;
    if (L > 4096 || 6 * c->H * c->H >= ((int64_t)1 << 31))
        return fr_fail(FR_ERR_ARG, "model config (dit): %lld tokens of width %lld is too large", (long long)L,
                       (long long)c->H);
    return FR_OK;
}

static int64_t n_img_tokens(const fr_model_config *c) { return (c->img_h / c->patch) * (c->img_w / c->patch); }
static int64_t patch_dim(const fr_model_config *c) { return c->img_c * c->patch * c->patch; }

/* The linear weights (every one goes through fr_model_linear_bwd): patch, time, the blocks'
 * adaln, qkv, proj, fc1, fc2, the final adaln and out; not pos, cond or prompt_pos. */
int fr_dit_dw_split(const fr_model_config *c, int i)
{
    const int nb = (int)c->n_blocks;
    if (i == FR_DP_PATCH_W || i == FR_DP_T1_W || i == FR_DP_T2_W || i == FR_DP_HEAD(nb, FR_DPH_ADA_W) ||
        i == FR_DP_HEAD(nb, FR_DPH_OUT_W))
        return 1;
    if (i < FR_DP_BLOCK0 || i >= FR_DP_HEAD(nb, 0)) return 0;
    const int j = (i - FR_DP_BLOCK0) % FR_DPB_COUNT;
    return j == FR_DPB_ADA_W || j == FR_DPB_QKV_W || j == FR_DPB_PROJ_W || j == FR_DPB_FC1_W || j == FR_DPB_FC2_W;
}

int fr_dit_n_specs(const fr_model_config *c) { return (int)(FR_DP_BLOCK0 + FR_DPB_COUNT * c->n_blocks + FR_DPH_COUNT); }

int fr_dit_make_specs(const fr_model_config *c, fr_param_spec *s)
{
    int n = 0;
    const int64_t H = c->H, F = c->F, P = patch_dim(c);
#define DP(r, k, how, fan, ...)                                                            \
    do {                                                                                   \
        snprintf(s[n].name, sizeof s[n].name, __VA_ARGS__);                                \
        s[n].ndim = (k) ? 2 : 1, s[n].shape[0] = (r), s[n].shape[1] = (k) ? (k) : 1;       \
        s[n].init = (how), s[n].fan_in = (fan), n++;                                       \
    } while (0)
    DP(H, P, INIT_LINEAR, P, "patch.weight");
    DP(H, 0, INIT_ZERO, 0, "patch.bias");
    DP(n_img_tokens(c), H, INIT_NORMAL_SMALL, 0, "pos");
    DP(H, c->E, INIT_LINEAR, c->E, "time.fc1.weight");
    DP(H, 0, INIT_ZERO, 0, "time.fc1.bias");
    DP(H, H, INIT_LINEAR, H, "time.fc2.weight");
    DP(H, 0, INIT_ZERO, 0, "time.fc2.bias");
    DP(c->n_cond + 1, H, INIT_NORMAL, 0, "cond.weight");
    DP(c->n_slots, H, INIT_NORMAL_SMALL, 0, "prompt_pos");
    for (int64_t k = 0; k < c->n_blocks; k++) {
        const long long K = (long long)k;
        DP(6 * H, H, INIT_ZERO, H, "blocks.%lld.adaln.weight", K); /* adaLN-zero */
        DP(6 * H, 0, INIT_ZERO, 0, "blocks.%lld.adaln.bias", K);
        DP(3 * H, H, INIT_LINEAR, H, "blocks.%lld.attn.qkv.weight", K);
        DP(3 * H, 0, INIT_ZERO, 0, "blocks.%lld.attn.qkv.bias", K);
        DP(H, H, INIT_LINEAR, H, "blocks.%lld.attn.proj.weight", K);
        DP(H, 0, INIT_ZERO, 0, "blocks.%lld.attn.proj.bias", K);
        DP(F, H, INIT_LINEAR, H, "blocks.%lld.fc1.weight", K);
        DP(F, 0, INIT_ZERO, 0, "blocks.%lld.fc1.bias", K);
        DP(H, F, INIT_LINEAR, F, "blocks.%lld.fc2.weight", K);
        DP(H, 0, INIT_ZERO, 0, "blocks.%lld.fc2.bias", K);
    }
    DP(2 * H, H, INIT_ZERO, H, "final.adaln.weight");
    DP(2 * H, 0, INIT_ZERO, 0, "final.adaln.bias");
    DP(P, H, INIT_ZERO, H, "out.weight"); /* DiT's zero-initialised final layer */
    DP(P, 0, INIT_ZERO, 0, "out.bias");
#undef DP
    return n;
}

int64_t fr_dit_num_params(const fr_model_config *c)
{
    const int64_t H = c->H, F = c->F, P = patch_dim(c), N = n_img_tokens(c);
    const int64_t stem = P * H + H + N * H + c->E * H + H + H * H + H + (c->n_cond + 1) * H + c->n_slots * H;
    const int64_t block = 6 * H * H + 6 * H + 3 * H * H + 3 * H + H * H + H + F * H + F + H * F + H;
    return stem + c->n_blocks * block + 2 * H * H + 2 * H + P * H + P;
}

double fr_dit_flops(const fr_model_config *c)
{
    const double H = (double)c->H, F = (double)c->F, P = (double)patch_dim(c), N = (double)n_img_tokens(c);
    const double L = N + (double)c->n_slots;
    /* per token: qkv, proj, fc1, fc2; per sample: QKᵀ and PV (2 L² H), adaLN, time */
    const double block = L * (3 * H * H + H * H + 2 * H * F) + 2 * L * L * H + 6 * H * H;
    const double macs = N * P * H + (double)c->E * H + H * H + (double)c->n_blocks * block + 2 * H * H + L * P * H;
    return 2.0 * macs;
}

/* ---- workspace ------------------------------------------------------------------------- */

/* The index tables for cap samples (host), see struct fr_dit_ws. */
static void make_tables(const fr_model_config *cf, struct fr_dit_ws *d, int32_t **tab)
{
    const int64_t C = cf->img_c, Hi = cf->img_h, Wi = cf->img_w, p = d->p, bw = Wi / p, N = d->N, L = d->L;
    const int64_t rows_x = cf->D / p; /* rows of p per sample of x */
    const int64_t nh = d->nh, S = d->S;
    for (int64_t b = 0; b < d->cap; b++) {
        for (int64_t c = 0; c < C; c++)
            for (int64_t y = 0; y < Hi; y++)
                for (int64_t bx = 0; bx < bw; bx++) {
                    const int64_t n = (y / p) * bw + bx, dy = y % p;
                    const int64_t xr = b * rows_x + (c * Hi + y) * bw + bx;
                    const int64_t pr = (b * N + n) * C * p + c * p + dy;  /* xp, N tokens */
                    const int64_t or_ = (b * L + n) * C * p + c * p + dy; /* outp, L tokens */
                    tab[0][pr] = (int32_t)xr;
                    tab[1][xr] = (int32_t)pr;
                    tab[2][xr] = (int32_t)or_;
                    tab[3][or_] = (int32_t)xr;
                }
        for (int64_t r = (b * L + N) * C * p; r < (b + 1) * L * C * p; r++) tab[3][r] = -1;
        for (int64_t l = 0; l < L; l++) {
            for (int64_t w = 0; w < 3; w++)
                for (int64_t hh = 0; hh < nh; hh++) {
                    const int64_t src = ((b * L + l) * 3 + w) * nh + hh, dst = ((b * 3 + w) * nh + hh) * L + l;
                    tab[4][dst] = (int32_t)src;
                    tab[5][src] = (int32_t)dst;
                }
            for (int64_t hh = 0; hh < nh; hh++) {
                const int64_t o = (b * L + l) * nh + hh, oh = (b * nh + hh) * L + l;
                tab[6][o] = (int32_t)oh;
                tab[7][oh] = (int32_t)o;
            }
            const int64_t st = l < N ? b * N + l : d->cap * N + b * S + (l - N);
            tab[8][b * L + l] = (int32_t)st;
            if (l < N) tab[9][b * N + l] = (int32_t)(b * L + l);
            else tab[10][b * S + l - N] = (int32_t)(b * L + l);
        }
    }
}

fr_status fr_dit_ws_alloc(fr_model_ws *ws, const fr_model *m, int64_t cap_B, int keep)
{
    const fr_model_config *cf = &m->cfg;
    if (cap_B < 1 || cap_B > ((int64_t)1 << 20))
        return fr_fail(FR_ERR_ARG, "model workspace: batch %lld, expected 1..2^20", (long long)cap_B);
    struct fr_dit_ws *d = fr_calloc(1, sizeof *d);
    if (!d) return FR_ERR_NOMEM;
    const int64_t cap = cap_B, H = cf->H, F = cf->F, E = cf->E, D = cf->D, nb = cf->n_blocks;
    d->p = cf->patch, d->N = n_img_tokens(cf), d->S = cf->n_slots, d->L = d->N + d->S, d->P = patch_dim(cf);
    d->nh = cf->n_heads, d->hd = H / cf->n_heads, d->cap = cap;
    d->alpha = 1.0f / sqrtf((float)d->hd);
    const int64_t L = d->L, N = d->N, S = d->S, P = d->P, nh = d->nh, CL = cap * L;
    const int64_t sl = keep ? nb : 1;
    d->slots = sl;
    const int x0 = cf->head == FR_HEAD_X0, eps = fr_model_eps_head(cf), k = keep ? 1 : 0;
    const int64_t r = lora_rank(m), n_lz = r ? (keep ? m->lora->n_t : 1) : 0;
    struct {
        float **p;
        int64_t n;
    } parts[] = {
        {&d->xp, cap * N * P}, {&d->tok, cap * (N + S) * H}, {&d->temb_in, cap * E},
        {&d->t1, cap * H}, {&d->a1, cap * H}, {&d->cvec, cap * H}, {&d->sc, cap * H},
        {&d->h, (keep ? nb + 1 : 1) * CL * H}, {&d->mod, sl * cap * 6 * H},
        {&d->ln1, sl * CL * H}, {&d->m1, sl * CL * H}, {&d->hmid, sl * CL * H}, {&d->ln2, sl * CL * H},
        {&d->m2, sl * CL * H}, {&d->o, sl * CL * H}, {&d->att, sl * CL * H}, {&d->y, sl * CL * H},
        {&d->mean1, sl * CL}, {&d->rstd1, sl * CL}, {&d->mean2, sl * CL}, {&d->rstd2, sl * CL},
        {&d->qh, sl * CL * 3 * H}, {&d->pr, sl * cap * nh * L * L}, {&d->u, sl * CL * F},
        {&d->a, k * sl * CL * F}, {&d->sa, k * sl * CL * F}, {&d->qkv, CL * 3 * H}, {&d->oh, CL * H}, {&d->fmod, cap * 2 * H},
        {&d->lnf, CL * H}, {&d->mf, CL * H}, {&d->meanf, CL}, {&d->rstdf, CL}, {&d->outp, CL * P},
        {&d->xo, x0 ? cap * D : 0}, {&d->den, x0 && keep ? (eps ? 2 * cap : cap) : 0},
        {&d->dxh, eps && keep ? cap * D : 0},
        {&d->dh, k * CL * H}, {&d->dt, k * CL * H}, {&d->dt2, k * CL * H}, {&d->dF1, k * CL * F},
        {&d->dF2, k * CL * F}, {&d->dqh, k * CL * 3 * H}, {&d->dqkv, k * CL * 3 * H},
        {&d->dpr, k * cap * nh * L * L}, {&d->dmod, k * cap * 6 * H}, {&d->dsc, k * cap * H},
        {&d->dcv, k * cap * H}, {&d->dtH, k * cap * H}, {&d->dtH2, k * cap * H}, {&d->doutp, k * CL * P},
        {&d->dxp, k * cap * N * P}, {&d->dtok, k * cap * (N + S) * H},
        {&d->ls.zs, n_lz * CL * r}, {&d->ls.dzs, k * CL * r},
    };
    const int64_t rows_x = cap * D / d->p;
    struct {
        int32_t **p;
        int64_t n;
    } ints[] = {
        {&d->i_patch, rows_x}, {&d->i_unpatch_x, rows_x}, {&d->i_unpatch_o, rows_x},
        {&d->i_patch_o, CL * P / d->p}, {&d->i_split, CL * 3 * nh}, {&d->i_split_inv, CL * 3 * nh},
        {&d->i_merge, CL * nh}, {&d->i_merge_inv, CL * nh}, {&d->i_seq, CL}, {&d->i_img, cap * N},
        {&d->i_prm, cap * S}, {&d->c, cap * S},
    };
    const int n_parts = (int)(sizeof parts / sizeof parts[0]), n_ints = (int)(sizeof ints / sizeof ints[0]);
    int64_t total = 0, itotal = 0;
    for (int i = 0; i < n_parts; i++) total += fr_arena_slot(parts[i].n);
    for (int i = 0; i < n_ints; i++) itotal += fr_arena_slot(ints[i].n);
    const size_t bytes = (size_t)(total + itotal) * sizeof(float);
    d->buf = fr_dev_alloc(m->be, bytes); /* zero-filled */
    int32_t *host = fr_malloc((size_t)itotal * sizeof *host);
    if (!d->buf || !host) {
        if (d->buf) fr_dev_free(m->be, d->buf);
        free(d);
        free(host);
        return fr_fail(FR_ERR_NOMEM, "model workspace (dit): cannot allocate %zu bytes", bytes);
    }
    float *p = (float *)d->buf;
    for (int i = 0; i < n_parts; i++) {
        *parts[i].p = parts[i].n ? p : NULL;
        p += fr_arena_slot(parts[i].n);
    }
    if (!keep) d->a = d->u; /* the activation overwrites u */
    d->ls.slot = CL * r, d->ls.per_target = keep;
    int32_t *tab[12], *hp = host;
    for (int i = 0; i < n_ints; i++) {
        *ints[i].p = (int32_t *)p;
        tab[i] = hp;
        p += fr_arena_slot(ints[i].n);
        hp += fr_arena_slot(ints[i].n);
    }
    make_tables(cf, d, tab);
    /* the tables go over in one copy (their slots are contiguous after the floats) */
    fr_status st = fr_h2d(m->be, d->i_patch, host, (size_t)itotal * sizeof *host);
    free(host);
    if (st != FR_OK) {
        fr_dev_free(m->be, d->buf);
        free(d);
        return st;
    }
    ws->dit = d;
    ws->be = m->be;
    ws->cap_B = cap_B;
    ws->keep = keep;
    ws->D = D, ws->H = H, ws->F = F, ws->E = E, ws->n_blocks = nb;
    ws->lora_r = r;
    return FR_OK;
}

void fr_dit_ws_free(fr_model_ws *ws)
{
    if (ws->dit) {
        fr_dev_free(ws->be, ws->dit->buf);
        free(ws->dit);
    }
    ws->dit = NULL;
}

static fr_status check_ws(const fr_model *m, const fr_model_ws *ws, int64_t B)
{
    const fr_model_config *c = &m->cfg;
    const struct fr_dit_ws *d = ws->dit;
    if (!d || ws->D != c->D || ws->H != c->H || ws->F != c->F || ws->E != c->E || ws->n_blocks != c->n_blocks ||
        d->p != c->patch || d->nh != c->n_heads || d->S != c->n_slots || (c->head == FR_HEAD_X0) != (d->xo != NULL) ||
        (ws->keep && fr_model_eps_head(c) != (d->dxh != NULL)) || ws->lora_r != lora_rank(m))
        return fr_fail(FR_ERR_ARG, "model workspace was not allocated for this model");
    if (B < 1 || B > ws->cap_B)
        return fr_fail(FR_ERR_ARG, "model forward: batch %lld, workspace holds 1..%lld", (long long)B,
                       (long long)ws->cap_B);
    return FR_OK;
}

/* ---- attention ------------------------------------------------------------------------- */

/* Per (sample, head): P = softmax(α Q Kᵀ), O = P V. qh (B,3,nh,L,dh), pr (B,nh,L,L), oh (B,nh,L,dh). */
static void attn_fwd(fr_backend *be, const struct fr_dit_ws *d, int64_t B, const float *qh, float *pr, float *oh)
{
    const int64_t L = d->L, dh = d->hd, nh = d->nh, blk = L * dh;
    for (int64_t b = 0; b < B; b++)
        for (int64_t hh = 0; hh < nh; hh++) {
            const float *q = qh + ((b * 3 + 0) * nh + hh) * blk, *kk = qh + ((b * 3 + 1) * nh + hh) * blk;
            be->ops->gemm(0, 1, L, L, dh, q, kk, pr + (b * nh + hh) * L * L, 0);
        }
    be->ops->softmax_rows(B * nh * L, L, d->alpha, pr, pr);
    for (int64_t b = 0; b < B; b++)
        for (int64_t hh = 0; hh < nh; hh++) {
            const float *v = qh + ((b * 3 + 2) * nh + hh) * blk;
            be->ops->gemm(0, 0, L, dh, L, pr + (b * nh + hh) * L * L, v, oh + (b * nh + hh) * blk, 0);
        }
}

/* Given doh = dL/dO: dqh = dL/d[Q K V] (same layout as qh); dpr is scratch. */
static void attn_bwd(fr_backend *be, const struct fr_dit_ws *d, int64_t B, const float *qh, const float *pr,
                     const float *doh, float *dpr, float *dqh)
{
    const int64_t L = d->L, dh = d->hd, nh = d->nh, blk = L * dh;
    for (int64_t b = 0; b < B; b++)
        for (int64_t hh = 0; hh < nh; hh++) {
            const float *v = qh + ((b * 3 + 2) * nh + hh) * blk, *p = pr + (b * nh + hh) * L * L;
            const float *dout = doh + (b * nh + hh) * blk;
            be->ops->gemm(1, 0, L, dh, L, p, dout, dqh + ((b * 3 + 2) * nh + hh) * blk, 0); /* dV = Pᵀ dO */
            be->ops->gemm(0, 1, L, L, dh, dout, v, dpr + (b * nh + hh) * L * L, 0);        /* dP = dO Vᵀ */
        }
    be->ops->softmax_rows_bwd(B * nh * L, L, d->alpha, pr, dpr, dpr); /* dS, scale α included */
    for (int64_t b = 0; b < B; b++)
        for (int64_t hh = 0; hh < nh; hh++) {
            const float *q = qh + ((b * 3 + 0) * nh + hh) * blk, *kk = qh + ((b * 3 + 1) * nh + hh) * blk;
            const float *ds = dpr + (b * nh + hh) * L * L;
            be->ops->gemm(0, 0, L, dh, L, ds, kk, dqh + ((b * 3 + 0) * nh + hh) * blk, 0); /* dQ = dS K */
            be->ops->gemm(1, 0, L, dh, L, ds, q, dqh + ((b * 3 + 1) * nh + hh) * blk, 0);  /* dK = dSᵀ Q */
        }
}

/* ---- forward --------------------------------------------------------------------------- */

fr_status fr_dit_forward(const fr_model *m, fr_backend *be, fr_model_ws *ws, int64_t B, const float *x,
                         const float *t, const int32_t *c, float *out)
{
    FR_TRY(check_ws(m, ws, B));
    struct fr_dit_ws *d = ws->dit;
    const fr_model_config *cf = &m->cfg;
    const fr_ops *op = be->ops;
    const int64_t H = cf->H, F = cf->F, E = cf->E, nb = cf->n_blocks, S = d->S, N = d->N, L = d->L, P = d->P;
    const int64_t p = d->p, BL = B * L, nc = cf->n_cond + 1, rows_x = B * cf->D / p;
    ws->ready = 0;
    ws->B = B;
    be->work.fwd_rows += (uint64_t)B; /* the NFE count (flowrl/backend.h) */
    if (ws->keep) FR_TRY(fr_d2d(be, d->c, c, (size_t)(B * S) * sizeof *c));

    /* tokens: patches (x is read here and not again unless a head needs it), prompt rows */
    op->gather_rows(B * N * P / p, p, d->i_patch, rows_x, x, d->xp);
    float *ptok = d->tok + d->cap * N * H;
    fr_model_linear(m, be, &d->ls, FR_DP_PATCH_W, B * N, d->xp, d->tok);
    op->bias_add(B, N * H, d->tok, W(m, FR_DP_POS));
    op->fill(B * S * H, 0.0f, ptok);
    op->embed_gather_add(B * S, 1, H, nc, W(m, FR_DP_COND), c, ptok);
    op->bias_add(B, S * H, ptok, W(m, FR_DP_PPOS));
    op->gather_rows(BL, H, d->i_seq, d->cap * (N + S), d->tok, d->h);

    /* the adaLN vector: time MLP + pooled prompt, then SiLU */
    op->temb_sinusoidal(B, E, t, d->temb_in);
    fr_model_linear(m, be, &d->ls, FR_DP_T1_W, B, d->temb_in, d->t1);
    op->act_fwd(cf->act, B * H, d->t1, d->a1);
    fr_model_linear(m, be, &d->ls, FR_DP_T2_W, B, d->a1, d->cvec);
    op->embed_gather_add(B, S, H, nc, W(m, FR_DP_COND), c, d->cvec);
    op->act_fwd(FR_ACT_SILU, B * H, d->cvec, d->sc);

    for (int64_t k = 0; k < nb; k++) {
        const int64_t s = ws->keep ? k : 0;
        float *hk = d->h + (ws->keep ? k : 0) * BL * H, *hn = d->h + (ws->keep ? k + 1 : 0) * BL * H;
        float *mod = d->mod + s * B * 6 * H;
        float *ln1 = d->ln1 + s * BL * H, *m1 = d->m1 + s * BL * H, *hmid = d->hmid + s * BL * H;
        float *ln2 = d->ln2 + s * BL * H, *m2 = d->m2 + s * BL * H, *o = d->o + s * BL * H;
        float *att = d->att + s * BL * H, *y = d->y + s * BL * H, *qh = d->qh + s * BL * 3 * H;
        float *pr = d->pr + s * B * d->nh * L * L, *u = d->u + s * BL * F, *a = d->a + s * BL * F;
        fr_model_linear(m, be, &d->ls, FR_DP_BLOCK(k, FR_DPB_ADA_W), B, d->sc, mod); /* β1 γ1 α1 β2 γ2 α2 */
        op->layernorm_fwd(BL, H, hk, NULL, NULL, cf->ln_eps, ln1, d->mean1 + s * BL, d->rstd1 + s * BL);
        op->adaln_mod(B, L, H, 6 * H, ln1, mod, mod + H, m1);
        fr_model_linear(m, be, &d->ls, FR_DP_BLOCK(k, FR_DPB_QKV_W), BL, m1, d->qkv);
        op->gather_rows(BL * 3 * d->nh, d->hd, d->i_split, BL * 3 * d->nh, d->qkv, qh);
        attn_fwd(be, d, B, qh, pr, d->oh);
        op->gather_rows(BL * d->nh, d->hd, d->i_merge, BL * d->nh, d->oh, o);
        fr_model_linear(m, be, &d->ls, FR_DP_BLOCK(k, FR_DPB_PROJ_W), BL, o, att);
        op->gate_add(B, L, H, 6 * H, hk, mod + 2 * H, att, hmid);
        op->layernorm_fwd(BL, H, hmid, NULL, NULL, cf->ln_eps, ln2, d->mean2 + s * BL, d->rstd2 + s * BL);
        op->adaln_mod(B, L, H, 6 * H, ln2, mod + 3 * H, mod + 4 * H, m2);
        fr_model_linear(m, be, &d->ls, FR_DP_BLOCK(k, FR_DPB_FC1_W), BL, m2, u);
        if (d->sa) op->act_fwd_save(cf->act, BL * F, u, a, d->sa + s * BL * F); /* keep only */
        else op->act_fwd(cf->act, BL * F, u, a);
        fr_model_linear(m, be, &d->ls, FR_DP_BLOCK(k, FR_DPB_FC2_W), BL, a, y);
        op->gate_add(B, L, H, 6 * H, hmid, mod + 5 * H, y, hn);
    }

    const float *hf = d->h + (ws->keep ? nb : 0) * BL * H;
    fr_model_linear(m, be, &d->ls, FR_DP_HEAD(nb, FR_DPH_ADA_W), B, d->sc, d->fmod); /* β γ */
    op->layernorm_fwd(BL, H, hf, NULL, NULL, cf->ln_eps, d->lnf, d->meanf, d->rstdf);
    op->adaln_mod(B, L, H, 2 * H, d->lnf, d->fmod, d->fmod + H, d->mf);
    fr_model_linear(m, be, &d->ls, FR_DP_HEAD(nb, FR_DPH_OUT_W), BL, d->mf, d->outp);
    /* unpatchify the image tokens (the prompt tokens' outputs are dropped) */
    op->gather_rows(rows_x, p, d->i_unpatch_o, BL * P / p, d->outp, cf->head == FR_HEAD_X0 ? d->xo : out);
    fr_model_head_fwd(m, be, B, t, x, d->xo, ws->keep ? d->den : NULL, out);
    ws->ready = ws->keep;
    return FR_OK;
}

/* ---- backward -------------------------------------------------------------------------- */

fr_status fr_dit_backward(fr_model *m, fr_backend *be, fr_model_ws *ws, const float *dout, float *dx)
{
    if (!ws->keep || !ws->ready)
        return fr_fail(FR_ERR_ARG, "model backward: no forward with stored activations "
                                   "(allocate the workspace with keep = 1)");
    const int64_t B = ws->B;
    FR_TRY(check_ws(m, ws, B));
    struct fr_dit_ws *d = ws->dit;
    const fr_model_config *cf = &m->cfg;
    const fr_ops *op = be->ops;
    const int64_t H = cf->H, F = cf->F, nb = cf->n_blocks, S = d->S, N = d->N, L = d->L, P = d->P;
    const int64_t p = d->p, BL = B * L, nc = cf->n_cond + 1, rows_x = B * cf->D / p, nh = d->nh;
    float *dh = d->dh, *dt = d->dt, *dt2 = d->dt2;
    be->work.bwd_rows += (uint64_t)B;

    /* head, then the final layer: o = (LN(h)(1 + γ) + β) W_out^T + b_out on image tokens */
    const float *dy = fr_model_head_bwd(m, be, B, d->den, dout, d->xo, d->dxh, dx != NULL);
    op->fill(BL * P, 0.0f, d->doutp);
    op->gather_rows(BL * P / p, p, d->i_patch_o, rows_x, dy, d->doutp);
    FR_TRY(fr_model_linear_bwd(m, be, &d->ls, FR_DP_HEAD(nb, FR_DPH_OUT_W), BL, d->mf, d->doutp, dt, 0));
    op->adaln_mod_bwd(B, L, H, 2 * H, d->lnf, d->fmod + H, dt, dt2, d->dmod, d->dmod + H);
    op->fill(BL * H, 0.0f, dh);
    op->layernorm_bwd(BL, H, d->h + nb * BL * H, NULL, d->meanf, d->rstdf, dt2, dh, NULL, NULL, 1);
    FR_TRY(fr_model_linear_bwd(m, be, &d->ls, FR_DP_HEAD(nb, FR_DPH_ADA_W), B, d->sc, d->dmod, d->dsc, 0)); /* dsc starts here */

    /* blocks in reverse; dh carries dL/dh_{k+1} in and dL/dh_k out */
    for (int64_t k = nb - 1; k >= 0; k--) {
        const float *hk = d->h + k * BL * H, *mod = d->mod + k * B * 6 * H;
        const float *ln1 = d->ln1 + k * BL * H, *m1 = d->m1 + k * BL * H, *hmid = d->hmid + k * BL * H;
        const float *ln2 = d->ln2 + k * BL * H, *m2 = d->m2 + k * BL * H, *o = d->o + k * BL * H;
        const float *att = d->att + k * BL * H, *y = d->y + k * BL * H, *qh = d->qh + k * BL * 3 * H;
        const float *pr = d->pr + k * B * nh * L * L, *u = d->u + k * BL * F, *a = d->a + k * BL * F;
        float *dmod = d->dmod;
        /* h = h' + α2 ⊙ MLP(m2) */
        op->gate_add_bwd(B, L, H, 6 * H, mod + 5 * H, y, dh, dt, dmod + 5 * H);
        FR_TRY(fr_model_linear_bwd(m, be, &d->ls, FR_DP_BLOCK(k, FR_DPB_FC2_W), BL, a, dt, d->dF1, 0));
        op->act_bwd_saved(cf->act, BL * F, u, d->sa + k * BL * F, d->dF1, d->dF2, 0);
        FR_TRY(fr_model_linear_bwd(m, be, &d->ls, FR_DP_BLOCK(k, FR_DPB_FC1_W), BL, m2, d->dF2, dt, 0));
        op->adaln_mod_bwd(B, L, H, 6 * H, ln2, mod + 4 * H, dt, dt2, dmod + 3 * H, dmod + 4 * H);
        op->layernorm_bwd(BL, H, hmid, NULL, d->mean2 + k * BL, d->rstd2 + k * BL, dt2, dh, NULL, NULL, 1);
        /* h' = h + α1 ⊙ Attn(m1) */
        op->gate_add_bwd(B, L, H, 6 * H, mod + 2 * H, att, dh, dt, dmod + 2 * H);
        FR_TRY(fr_model_linear_bwd(m, be, &d->ls, FR_DP_BLOCK(k, FR_DPB_PROJ_W), BL, o, dt, dt2, 0));
        op->gather_rows(BL * nh, d->hd, d->i_merge_inv, BL * nh, dt2, d->oh);
        attn_bwd(be, d, B, qh, pr, d->oh, d->dpr, d->dqh);
        op->gather_rows(BL * 3 * nh, d->hd, d->i_split_inv, BL * 3 * nh, d->dqh, d->dqkv);
        FR_TRY(fr_model_linear_bwd(m, be, &d->ls, FR_DP_BLOCK(k, FR_DPB_QKV_W), BL, m1, d->dqkv, dt, 0));
        op->adaln_mod_bwd(B, L, H, 6 * H, ln1, mod + H, dt, dt2, dmod, dmod + H);
        op->layernorm_bwd(BL, H, hk, NULL, d->mean1 + k * BL, d->rstd1 + k * BL, dt2, dh, NULL, NULL, 1);
        FR_TRY(fr_model_linear_bwd(m, be, &d->ls, FR_DP_BLOCK(k, FR_DPB_ADA_W), B, d->sc, dmod, d->dsc, 1));
    }

    /* tokens: dh is dL/dh_0; back to the staging rows */
    float *dptok = d->dtok + d->cap * N * H;
    op->gather_rows(B * N, H, d->i_img, BL, dh, d->dtok);
    op->gather_rows(B * S, H, d->i_prm, BL, dh, dptok);
    if (!m->lora) op->bias_grad(B, N * H, d->dtok, G(m, FR_DP_POS), 1);
    FR_TRY(fr_model_linear_bwd(m, be, &d->ls, FR_DP_PATCH_W, B * N, d->xp, d->dtok, dx ? d->dxp : NULL, 0));
    if (!m->lora) op->bias_grad(B, S * H, dptok, G(m, FR_DP_PPOS), 1);
    /* a LoRA view has no gradient below here unless it adapts the time MLP */
    if (!m->lora || m->lora->tidx[FR_DP_T1_W] >= 0 || m->lora->tidx[FR_DP_T2_W] >= 0) {
        /* the adaLN vector: sc = silu(cvec), cvec = time MLP + pooled prompt. cond.weight gets
         * both of a sample's uses together, sample by sample (its prompt tokens, then its pooled
         * rows), so that micro-batches continue the same chains as one batch */
        op->act_bwd(FR_ACT_SILU, B * H, d->cvec, d->dsc, d->dcv, 0);
        for (int64_t b = 0; b < B && !m->lora; b++) {
            op->embed_scatter_add(S, 1, H, nc, d->c + b * S, dptok + b * S * H, G(m, FR_DP_COND));
            op->embed_scatter_add(1, S, H, nc, d->c + b * S, d->dcv + b * H, G(m, FR_DP_COND));
        }
        FR_TRY(fr_model_linear_bwd(m, be, &d->ls, FR_DP_T2_W, B, d->a1, d->dcv, d->dtH, 0));
        op->act_bwd(cf->act, B * H, d->t1, d->dtH, d->dtH2, 0);
        FR_TRY(fr_model_linear_bwd(m, be, &d->ls, FR_DP_T1_W, B, d->temb_in, d->dtH2, NULL, 0));
    }

    if (dx) {
        op->gather_rows(rows_x, p, d->i_unpatch_x, B * N * P / p, d->dxp, dx);
        fr_model_head_dx(m, be, B, d->xo, d->dxh, dx);
    }
    return FR_OK;
}
