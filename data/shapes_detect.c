/* shapes: the detector and the GenEval-style scoring.
 *
 * Detection
 *   1. Each pixel takes palette colour c if its distance to c (in [-1, 1] units) is at most
 *      FR_SHAPES_COLOR_TOL = 0.8, else it is background. The palette colours are >= 2
 *      apart, so at most one colour is that close.
 *   2. 4-connected components of equal colour. Components under FR_SHAPES_MIN_PIXELS (5)
 *      are specks and ignored (with 3, about 1 uniform-noise image in 50 held exactly one
 *      "object" and passed a single-colour prompt); those over FR_SHAPES_MAX_PIXELS (16;
 *      an object has 9) are blobs -- not objects, and counted against the image, so that
 *      painting the whole image red does not pass as "a red object".
 *   3. Centroid = mean (column, row) of the component's pixels.
 *
 * Scoring (closed world: the image must show what the prompt says and nothing else;
 * GenEval itself ignores extra objects of other classes, we count them because the
 * training data never has any). With r_c the required count of each colour the prompt
 * names (single: 1, counting: n, two / position: 1 each) and n_c the detected count:
 *   count term   t_c = min(n_c, r_c) / max(n_c, r_c)     (1 iff exact, 0 if none)
 *   position     t_rel = 1 if some A and B objects have centroid(B) - centroid(A) >=
 *                FR_SHAPES_POS_MARGIN (2 px) along the prompt's axis (A left of B:
 *                columns; A above B: rows, row 0 at the top), else 0. Like GenEval,
 *                only the named axis is checked.
 *   extras       n_x = objects of colours the prompt does not name + blobs
 *   score        mean(t_c ..., t_rel) / (1 + n_x)
 *   correct      score == 1  (every count exact, relation holds, nothing extra).
 * An empty image scores 0; a right object beside a wrong one scores 1/2; swapped
 * positions score 2/3. */
#include <math.h>
#include <string.h>

#include "data/shapes_internal.h"

#define HW (FR_SHAPES_H * FR_SHAPES_W)

/* Colour index of pixel p, or -1 for background. */
static int classify(const float *x, int p) // x: (3, H, W)
{
    for (int c = 0; c < FR_SHAPES_NCOLORS; c++) {
        float d2 = 0.0f;
        for (int ch = 0; ch < 3; ch++) {
            float d = x[ch * HW + p] - fr_shapes_palette[c][ch];
            d2 = d2 + d * d;
        }
        if (d2 <= FR_SHAPES_COLOR_TOL * FR_SHAPES_COLOR_TOL) return c;
    }
    return -1;
}

fr_status fr_shapes_detect(const float *x, fr_shapes_detection *det) { return fr_shapes_detect_pixels(x, det, NULL); }

fr_status fr_shapes_check_finite(const float *x, const char *who)
{
    for (int i = 0; i < 3 * HW; i++)
        if (!isfinite(x[i]))
            return fr_fail(FR_ERR_NUMERIC, "%s: element %d (channel %d, row %d, column %d) is %g, expected a finite value",
                           who, i, i / HW, (i % HW) / FR_SHAPES_W, i % FR_SHAPES_W, (double)x[i]);
    return FR_OK;
}

fr_status fr_shapes_detect_pixels(const float *x, fr_shapes_detection *det, int *pix)
{
    FR_TRY(fr_shapes_check_finite(x, "shapes detector"));
    memset(det, 0, sizeof *det);
    int color[HW];
    for (int p = 0; p < HW; p++) color[p] = classify(x, p);
    if (pix)
        for (int p = 0; p < HW; p++) pix[p] = FR_SHAPES_PIX_BACKGROUND;
    int members[HW];

    unsigned char seen[HW] = {0};
    int stack[HW];
    for (int start = 0; start < HW; start++) {
        if (seen[start] || color[start] < 0) continue;
        int c = color[start], top = 0, size = 0, sum_x = 0, sum_y = 0;
        seen[start] = 1;
        stack[top++] = start;
        while (top > 0) {
            int p = stack[--top], py = p / FR_SHAPES_W, px = p % FR_SHAPES_W;
            members[size] = p;
            size++;
            sum_x += px;
            sum_y += py;
            int nb[4] = {px > 0 ? p - 1 : -1, px < FR_SHAPES_W - 1 ? p + 1 : -1,
                         py > 0 ? p - FR_SHAPES_W : -1, py < FR_SHAPES_H - 1 ? p + FR_SHAPES_W : -1};
            for (int k = 0; k < 4; k++) {
                int q = nb[k];
                if (q >= 0 && !seen[q] && color[q] == c) {
                    seen[q] = 1;
                    stack[top++] = q;
                }
            }
        }
        const int label = size < FR_SHAPES_MIN_PIXELS   ? FR_SHAPES_PIX_SPECK
                          : size > FR_SHAPES_MAX_PIXELS ? FR_SHAPES_PIX_BLOB
                                                        : det->n_objects;
        if (pix)
            for (int k = 0; k < size; k++) pix[members[k]] = label;
        if (size < FR_SHAPES_MIN_PIXELS) continue;
        if (size > FR_SHAPES_MAX_PIXELS) {
            det->n_blobs++;
            continue;
        }
        /* at most HW / MIN_PIXELS components reach MIN_PIXELS, so obj[] never overflows */
        fr_shapes_object *o = &det->obj[det->n_objects++];
        o->color = c;
        o->pixels = size;
        o->cx = (float)sum_x / (float)size;
        o->cy = (float)sum_y / (float)size;
        det->counts[c]++;
    }
    return FR_OK;
}

static float count_term(int n, int r) { return (float)(n < r ? n : r) / (float)(n > r ? n : r); }

static int relation_holds(const fr_shapes_detection *det, int a, int b, int rel)
{
    for (int i = 0; i < det->n_objects; i++) {
        if (det->obj[i].color != a) continue;
        for (int j = 0; j < det->n_objects; j++) {
            if (det->obj[j].color != b) continue;
            const fr_shapes_object *A = &det->obj[i], *B = &det->obj[j];
            float d;
            switch (rel) {
            case FR_SHAPES_LEFT: d = B->cx - A->cx; break;
            case FR_SHAPES_RIGHT: d = A->cx - B->cx; break;
            case FR_SHAPES_ABOVE: d = B->cy - A->cy; break;
            default: d = A->cy - B->cy;
            }
            if (d >= FR_SHAPES_POS_MARGIN) return 1;
        }
    }
    return 0;
}

fr_status fr_shapes_score(int prompt_id, const fr_shapes_detection *det, float *score,
                          int *correct)
{
    fr_shapes_prompt p;
    FR_TRY(fr_shapes_prompt_get(prompt_id, &p));
    int required[FR_SHAPES_NCOLORS] = {0};
    required[p.color_a] = p.count;
    if (p.color_b >= 0) required[p.color_b] = 1;

    float sum = 0.0f;
    int terms = 0, extras = det->n_blobs;
    for (int c = 0; c < FR_SHAPES_NCOLORS; c++) {
        if (required[c] > 0) {
            sum = sum + count_term(det->counts[c], required[c]);
            terms++;
        } else {
            extras += det->counts[c];
        }
    }
    if (p.kind == FR_SHAPES_POSITION) {
        sum = sum + (relation_holds(det, p.color_a, p.color_b, p.rel) ? 1.0f : 0.0f);
        terms++;
    }
    float s = sum / (float)terms / (float)(1 + extras);
    *score = s;
    if (correct) *correct = s == 1.0f;
    return FR_OK;
}

/* The per-pixel correctness map (PXPO's reward map, docs/algorithms/pxpo.md §2; a flowrl choice:
 * the spec fixes no map for shapes). From the detector's own components and terms:
 *   background                                            0
 *   a speck, a blob, or an object of a colour not named   -1   (what the score counts as extra)
 *   an object of a named colour c                          t_c  (its count term), times t_rel
 *                                                               for a position prompt
 * so an image that scores 1 has +1 on its objects and 0 elsewhere. The redquad reward has its own
 * map (data/shapes_redquad.c). */
fr_status fr_shapes_pixel_reward(int reward_id, int prompt_id, const float *x, float *map)
{
    if (reward_id == FR_SHAPES_REWARD_REDQUAD) { /* its own map (data/shapes_redquad.c) */
        fr_shapes_prompt p;
        FR_TRY(fr_shapes_prompt_get(prompt_id, &p));
        return fr_shapes_redquad_map(x, map);
    }
    /* geneval, strict and classifier share the detector's map */
    fr_shapes_prompt p;
    FR_TRY(fr_shapes_prompt_get(prompt_id, &p));
    fr_shapes_detection det;
    int pix[HW];
    FR_TRY(fr_shapes_detect_pixels(x, &det, pix));
    int required[FR_SHAPES_NCOLORS] = {0};
    required[p.color_a] = p.count;
    if (p.color_b >= 0) required[p.color_b] = 1;
    const float rel = p.kind == FR_SHAPES_POSITION && !relation_holds(&det, p.color_a, p.color_b, p.rel) ? 0.0f : 1.0f;
    for (int q = 0; q < HW; q++) {
        const int l = pix[q];
        if (l == FR_SHAPES_PIX_BACKGROUND) {
            map[q] = 0.0f;
        } else if (l < 0) {
            map[q] = -1.0f;
        } else {
            const int c = det.obj[l].color;
            map[q] = required[c] > 0 ? count_term(det.counts[c], required[c]) * rel : -1.0f;
        }
    }
    return FR_OK;
}
