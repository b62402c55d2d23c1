/* The GFlowNet rows' shared evaluation tail (core/algo/gfn_common.h). */
#include "core/algo/gfn_common.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "flowrl/digest.h"
#include "flowrl/png.h"

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
