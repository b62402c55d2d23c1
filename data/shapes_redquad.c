/* shapes' "redquad" reward: the PXPO miniature of spec/more.md §3 ("map +1 inside a target quadrant
 * that should turn red, -1 elsewhere; compare with DDPO on the map's mean"), a flowrl reading of it
 * (docs/algorithms/pxpo.md §2.1):
 *
 *   redness_ij = clamp((R_ij - max(G_ij, B_ij)) / 2, 0, 1)      1 on palette red, 0 on the other
 *                                                               palette colours and the background
 *   r_ij       = redness_ij * (+1 inside the target quadrant, -1 elsewhere)
 *   target     = the top-left quadrant, rows 0-7 and columns 0-7, for every prompt (2 x 2 of the
 *                4 x 4 lattice cells of data/shapes.c)
 *   scalar     = the map's mean over the H*W pixels, summed in raster order (every algorithm
 *                other than PXPO, and flowrl eval)
 *
 * so a red object inside the quadrant scores +9/256, one outside -9/256, and an image without red
 * 0; the scalar lies in [-192/256, 64/256]. */
#include "data/shapes_internal.h"

#define HW (FR_SHAPES_H * FR_SHAPES_W)
#define QUAD_ROWS (FR_SHAPES_H / 2)
#define QUAD_COLS (FR_SHAPES_W / 2)

fr_status fr_shapes_redquad_map(const float *x, float *map)
{
    FR_TRY(fr_shapes_check_finite(x, "shapes redquad reward"));
    for (int q = 0; q < HW; q++) {
        const float r = x[q], g = x[HW + q], b = x[2 * HW + q];
        float red = (r - (g > b ? g : b)) * 0.5f;
        red = red < 0.0f ? 0.0f : red > 1.0f ? 1.0f : red;
        const int inside = q / FR_SHAPES_W < QUAD_ROWS && q % FR_SHAPES_W < QUAD_COLS;
        map[q] = inside ? red : -red;
    }
    return FR_OK;
}

fr_status fr_shapes_redquad(const float *x, float *score)
{
    float map[HW];
    FR_TRY(fr_shapes_redquad_map(x, map));
    float sum = 0.0f;
    for (int q = 0; q < HW; q++) sum = sum + map[q];
    *score = sum / (float)HW;
    return FR_OK;
}
