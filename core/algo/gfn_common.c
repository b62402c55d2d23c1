/* The GFlowNet rows' shared run-loop callbacks and evaluation tail (core/algo/gfn_common.h). */
#include "core/algo/gfn_common.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "flowrl/digest.h"
#include "flowrl/png.h"

void fr_gfn_loop_defaults_at(fr_run_opts *ro, int64_t epochs, int64_t checkpoint_every, int64_t eval_every, double lr)
{
    ro->run.seed = 1;
    ro->run.epochs = epochs;
    ro->run.checkpoint_every = checkpoint_every;
    ro->opt.lr = lr;
    ro->opt.weight_decay = 0.0;
    ro->opt.max_grad_norm = 0.0f;
    ro->ev.eval_every = eval_every;
}

void fr_gfn_loop_defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_gfn_loop_defaults_at(ro, 250, 25, 25, 1e-3);
}

fr_gfn_opts fr_gfn_loop_opts(const fr_run *r, int64_t batch, int64_t hidden, int64_t n_hidden, int uniform_pb,
                             double epsilon, double temperature)
{
    fr_gfn_opts o = fr_gfn_opts_default();
    o.batch = batch;
    o.hidden = hidden;
    o.n_hidden = n_hidden;
    o.uniform_pb = uniform_pb;
    o.lr = r->o->opt.lr;
    o.weight_decay = r->o->opt.weight_decay;
    o.epsilon = epsilon;
    o.temperature = temperature;
    o.seed = r->o->run.seed;
    return o;
}

void fr_gfn_loop_groups(int n, int n_net, double lr_z, fr_run_group *groups, int *n_groups)
{
    groups[0] = (fr_run_group){0, n_net, -1.0, -1.0}; /* the run's --lr and --weight-decay */
    *n_groups = 1;
    if (n > n_net) groups[(*n_groups)++] = (fr_run_group){n_net, n - n_net, lr_z, 0.0};
}

fr_status fr_gfn_loop_step(fr_run *r, double loss, const char *what)
{
    if (!isfinite(loss))
        return fr_fail(FR_ERR_NUMERIC, "train: epoch %lld: the %s loss is %g", (long long)r->epoch + 1, what, loss);
    FR_TRY(fr_run_rec_scalar(r, "loss", (float)loss));
    float gn;
    FR_TRY(fr_run_optimizer_step(r, 0, &gn));
    fr_run_metric(r, "loss", loss);
    return FR_OK;
}

void fr_gfn_loop_tiny(fr_run_opts *ro)
{
    ro->run.epochs = 3;
    ro->run.checkpoint_every = 1;
    ro->ev.eval_every = 2;
    if (ro->env_class == &fr_env_hypergrid) {
        fr_hypergrid_opts *h = ro->env_opts;
        h->ndim = 2;
        h->height = 4;
    }
}

fr_status fr_gfn_sample_png(const fr_run *r, const char *key, float *xy, int64_t n, float extent)
{
    char dir[1200], path[1300];
    snprintf(dir, sizeof dir, "%s/samples", r->dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return fr_fail(FR_ERR_IO, "%s: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/%s.png", dir, key);
    uint8_t *col = fr_malloc((size_t)(6 * n));
    if (!col) return FR_ERR_NOMEM;
    const uint8_t target[3] = {255, 127, 14}, sampler[3] = {31, 119, 180};
    for (int64_t i = 0; i < n; i++) {
        memcpy(col + 3 * i, target, 3);
        memcpy(col + 3 * (n + i), sampler, 3);
    }
    for (int64_t i = 0; i < 4 * n; i++)
        if (!isfinite(xy[i])) xy[i] = 1e30f;
    fr_scatter_opts so = fr_scatter_opts_default();
    so.extent = extent;
    fr_status s = fr_png_write_scatter(path, xy, (int)(2 * n), col, &so);
    free(col);
    return s;
}

void fr_gfn_digest_line(const fr_run *r, uint64_t digest, int64_t np)
{
    char hex[17];
    fr_digest_hex(digest, hex);
    fr_run_info(r, "parameters %lld, digest %s", (long long)np, hex);
}
