/* Labelled sample grids and scatter panels (flowrl/sample_grid.h).
 *
 * Layout, left to right: margin | label column | panel 0 | gap | panel 1 | ... | margin.
 * An image panel is n_cols cells per row, each the upscaled sample inside a 2-pixel frame
 * whose colour is the verdict, followed by the row's "k/n" count; a 2-D panel is one
 * scatter square, and the label column becomes a colour legend. A title row sits above the
 * panels, a key line below them when anything was judged. */
#include "flowrl/sample_grid.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/font5x7.h"
#include "flowrl/png.h"

#define MARGIN 8
#define FRAME 2     /* verdict frame around a tile */
#define CELL_GAP 2  /* between cells */
#define PANEL_GAP 16
#define MAX_PANELS 16

static const uint8_t k_white[3] = {255, 255, 255}, k_ink[3] = {30, 30, 30}, k_grey[3] = {170, 170, 170},
                     k_green[3] = {44, 160, 44}, k_red[3] = {214, 39, 40};
/* tab10, as the other scatter plots (cli/cmd_sample.c) */
static const uint8_t k_tab10[10][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                       {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                       {188, 189, 34},  {23, 190, 207}};

static const char k_key_images[] = "green frame = correct, red = incorrect, grey = not judged (task detector)",
                  k_key_scatter[] = "square = correct, x = incorrect (task detector)";

typedef struct {
    uint8_t *rgb;
    int h, w;
} canvas;

static void fill(canvas *c, int x, int y, int w, int h, const uint8_t col[3])
{
    for (int r = y < 0 ? 0 : y; r < y + h && r < c->h; r++)
        for (int q = x < 0 ? 0 : x; q < x + w && q < c->w; q++) memcpy(&c->rgb[((size_t)r * c->w + q) * 3], col, 3);
}

static void text(canvas *c, int x, int y, const char *s, int n, int scale, const uint8_t col[3])
{
    fr_font_draw(c->rgb, c->h, c->w, x, y, s, n, scale, col);
}

static const uint8_t *verdict_color(const int *correct, int64_t i)
{
    int v = correct ? correct[i] : -1;
    return v == 1 ? k_green : v == 0 ? k_red : k_grey;
}

/* ---- label wrapping ---------------------------------------------------------------------- */

/* The next line of at most `width` characters of s (words kept whole unless one alone is
 * longer than a line): *len characters from s are the line, the return value is where the
 * next one starts. */
static const char *wrap_line(const char *s, int width, int *len)
{
    while (*s == ' ') s++;
    int n = (int)strlen(s);
    if (n <= width) {
        *len = n;
        return s + n;
    }
    int cut = width;
    while (cut > 0 && s[cut] != ' ') cut--;
    if (cut == 0) cut = width; /* one word longer than the line: split it */
    *len = cut;
    return s + cut;
}

/* Draws label s wrapped into at most max_lines lines of width characters from (x, y); a
 * label that does not fit ends in "..". */
static void draw_label(canvas *c, int x, int y, const char *s, int width, int max_lines, int ts)
{
    char line[256];
    if (width > (int)sizeof line - 1) width = (int)sizeof line - 1;
    for (int l = 0; l < max_lines && *s; l++) {
        int len;
        const char *next = wrap_line(s, width, &len);
        memcpy(line, s, (size_t)len);
        line[len] = '\0';
        while (*next == ' ') next++;
        if (l == max_lines - 1 && *next) { /* truncated */
            if (len > width - 2) len = width - 2;
            if (len < 0) len = 0;
            memcpy(line + len, "..", 3);
            len += 2;
        }
        text(c, x, y + l * FR_FONT_LINE * ts, line, len, ts, k_ink);
        s = next;
    }
}

/* ---- geometry --------------------------------------------------------------------------- */

typedef struct {
    int ts, adv, line;            /* text scale, character advance and line height (pixels) */
    int label_w;                  /* label column, 0 without labels */
    int header_h, footer_h;
    int tile_w, tile_h, cell_w, row_h; /* image panels */
    int count_w;                  /* "k/n" after each image panel row */
    int panel_w, panel_h;         /* one panel without its title */
    int scatter;                  /* 1: 2-D panels */
    int judged;                   /* some verdict is known */
} layout;

static int digits(int64_t v)
{
    int d = 1;
    while (v >= 10) v /= 10, d++;
    return d;
}

static fr_status plan(const fr_task *t, int n_rows, int has_labels, int n_cols, int n_panels,
                      const fr_sample_panel *p, const fr_sample_grid_opts *o, layout *L, int *h, int *w)
{
    memset(L, 0, sizeof *L);
    const int scale = o->scale > 0 ? o->scale : 4, chars = o->label_chars > 0 ? o->label_chars : 22;
    L->ts = o->text_scale > 0 ? o->text_scale : 2;
    if (scale > 64 || L->ts > 16 || chars > 200 || n_rows < 1 || n_cols < 1 || n_panels < 1 || n_panels > MAX_PANELS)
        return fr_fail(FR_ERR_ARG, "sample grid: %d rows x %d columns x %d panels, scale %d, text scale %d, "
                                   "%d label characters: expected >= 1 rows, columns and panels (panels <= %d), "
                                   "scale <= 64, text scale <= 16, label <= 200",
                       n_rows, n_cols, n_panels, scale, L->ts, chars, MAX_PANELS);
    L->scatter = t->C == 0;
    if (L->scatter && t->D != 2)
        return fr_fail(FR_ERR_ARG, "sample grid: task %s has %d dims and no image form: nothing to draw", t->name,
                       t->D);
    L->adv = FR_FONT_ADVANCE * L->ts;
    L->line = FR_FONT_LINE * L->ts;
    L->label_w = has_labels ? chars * L->adv + MARGIN : 0;
    for (int k = 0; k < n_panels; k++) {
        if (!p[k].x) return fr_fail(FR_ERR_ARG, "sample grid: panel %d has no samples", k);
        if (p[k].title) L->header_h = L->line + 6;
        for (int64_t i = 0; p[k].correct && i < (int64_t)n_rows * n_cols; i++) L->judged |= p[k].correct[i] >= 0;
    }
    if (L->judged) L->footer_h = L->line + 8;
    int64_t body_h;
    if (L->scatter) {
        L->panel_w = L->panel_h = o->scatter_size > 0 ? o->scatter_size : 384;
        int64_t legend_h = (int64_t)n_rows * L->line;
        body_h = legend_h > L->panel_h ? legend_h : L->panel_h;
    } else {
        L->tile_w = t->W * scale;
        L->tile_h = t->H * scale;
        L->cell_w = L->tile_w + 2 * FRAME + CELL_GAP;
        L->row_h = L->tile_h + 2 * FRAME + CELL_GAP;
        if (L->row_h < L->line + CELL_GAP) L->row_h = L->line + CELL_GAP;
        L->count_w = MARGIN + (2 * digits(n_cols) + 1) * L->adv;
        L->panel_w = (int)((int64_t)n_cols * L->cell_w > (1 << 24) ? (1 << 24) : n_cols * L->cell_w) + L->count_w;
        body_h = (int64_t)n_rows * L->row_h;
        L->panel_h = (int)(body_h > (1 << 24) ? (1 << 24) : body_h);
    }
    int64_t W = 2 * MARGIN + L->label_w + (int64_t)n_panels * L->panel_w + (int64_t)(n_panels - 1) * PANEL_GAP;
    int64_t H = 2 * MARGIN + L->header_h + body_h + L->footer_h;
    const char *key = L->scatter ? k_key_scatter : k_key_images;
    if (L->judged && W < 2 * MARGIN + fr_font_width((int)strlen(key), L->ts))
        W = 2 * MARGIN + fr_font_width((int)strlen(key), L->ts); /* room for the key line */
    if (W > 16384 || H > 16384)
        return fr_fail(FR_ERR_ARG, "sample grid: %lld x %lld pixels, the PNG limit is 16384 per side "
                                   "(fewer columns or a smaller --scale)",
                       (long long)W, (long long)H);
    *w = (int)W;
    *h = (int)H;
    return FR_OK;
}

/* ---- panels --------------------------------------------------------------------------------- */

static fr_status draw_image_panel(canvas *c, const fr_task *t, const layout *L, int x0, int y0, int n_rows,
                                  int n_cols, const fr_sample_panel *p, int scale)
{
    const int D = t->D;
    uint8_t *tile = fr_malloc((size_t)t->H * t->W * 3);
    if (!tile) return FR_ERR_NOMEM;
    fr_status s = FR_OK;
    for (int r = 0; r < n_rows && s == FR_OK; r++) {
        int ok = 0, judged = 0;
        for (int q = 0; q < n_cols && s == FR_OK; q++) {
            int64_t i = (int64_t)r * n_cols + q;
            s = fr_png_to_rgb(p->x + i * D, t->C, t->H, t->W, tile);
            if (s != FR_OK) {
                char why[512];
                snprintf(why, sizeof why, "%s", fr_last_error());
                s = fr_fail(s, "sample grid: row %d, sample %d: %s", r, q, why);
                break;
            }
            int cx = x0 + q * L->cell_w, cy = y0 + r * L->row_h;
            fill(c, cx, cy, L->tile_w + 2 * FRAME, L->tile_h + 2 * FRAME, verdict_color(p->correct, i));
            for (int y = 0; y < L->tile_h; y++)
                for (int x = 0; x < L->tile_w; x++)
                    memcpy(&c->rgb[((size_t)(cy + FRAME + y) * c->w + cx + FRAME + x) * 3],
                           &tile[((size_t)(y / scale) * t->W + x / scale) * 3], 3);
            if (p->correct && p->correct[i] >= 0) judged++, ok += p->correct[i] == 1;
        }
        if (judged) {
            char cnt[48];
            int n = snprintf(cnt, sizeof cnt, "%d/%d", ok, judged);
            text(c, x0 + n_cols * L->cell_w + MARGIN, y0 + r * L->row_h + FRAME, cnt, n, L->ts, k_ink);
        }
    }
    free(tile);
    return s;
}

/* The scatter panel: background (axes, the task's marks, e.g. gmm2d's ring and mode crosses) from core/png.c,
 * then each point as a filled square (correct or unknown) or an x (incorrect) in its row's
 * colour. The pixel mapping is fr_scatter_opts' (flowrl/png.h): [-extent, extent]^2, y up. */
static fr_status draw_scatter_panel(canvas *c, const fr_task *t, const layout *L, int x0, int y0, int n_rows,
                                    int n_cols, const fr_sample_panel *p)
{
    fr_scatter_opts so = fr_scatter_opts_default();
    so.size = L->panel_w;
    float marks[2 * 64];
    if (t->scatter_marks) { /* the task's background (data/) */
        so.n_marks = t->scatter_marks(t, marks, 64, &so.ring_radius);
        so.marks = marks;
    }
    const int64_t N = (int64_t)n_rows * n_cols;
    for (int64_t i = 0; i < 2 * N; i++)
        if (!isfinite(p->x[i]))
            return fr_fail(FR_ERR_NUMERIC, "sample grid: row %lld, sample %lld: coordinate %lld is %g, expected finite",
                           (long long)(i / 2 / n_cols), (long long)(i / 2 % n_cols), (long long)(i % 2),
                           (double)p->x[i]);
    const int S = so.size;
    uint8_t *bg = fr_malloc((size_t)S * S * 3);
    if (!bg) return FR_ERR_NOMEM;
    fr_status s = fr_png_scatter_render(NULL, 0, NULL, &so, bg);
    for (int y = 0; s == FR_OK && y < S; y++)
        memcpy(&c->rgb[((size_t)(y0 + y) * c->w + x0) * 3], &bg[(size_t)y * S * 3], (size_t)S * 3);
    free(bg);
    if (s != FR_OK) return s;
    for (int64_t i = 0; i < N; i++) {
        float u = (p->x[2 * i] + so.extent) * (float)S / (2.0f * so.extent);
        float v = (so.extent - p->x[2 * i + 1]) * (float)S / (2.0f * so.extent);
        if (!(u >= 0.0f && u < (float)S && v >= 0.0f && v < (float)S)) continue;
        int col = x0 + (int)u, row = y0 + (int)v;
        const uint8_t *k = k_tab10[(i / n_cols) % 10];
        if (p->correct && p->correct[i] == 0) {
            for (int d = -3; d <= 3; d++) {
                if (row + d < y0 || row + d >= y0 + S) continue;
                if (col + d >= x0 && col + d < x0 + S) fill(c, col + d, row + d, 1, 1, k);
                if (col - d >= x0 && col - d < x0 + S) fill(c, col - d, row + d, 1, 1, k);
            }
        } else {
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++)
                    if (row + dy >= y0 && row + dy < y0 + S && col + dx >= x0 && col + dx < x0 + S)
                        fill(c, col + dx, row + dy, 1, 1, k);
        }
    }
    return FR_OK;
}

/* ---- the picture ------------------------------------------------------------------------------ */

fr_status fr_sample_grid_render(const fr_task *t, int n_rows, const char *const *labels, int n_cols, int n_panels,
                                const fr_sample_panel *panels, const fr_sample_grid_opts *o_in, uint8_t **rgb,
                                int *h, int *w)
{
    static const fr_sample_grid_opts k_default;
    const fr_sample_grid_opts *o = o_in ? o_in : &k_default;
    *rgb = NULL;
    layout L;
    FR_TRY(plan(t, n_rows, labels != NULL, n_cols, n_panels, panels, o, &L, h, w));
    canvas c = {fr_malloc((size_t)*h * *w * 3), *h, *w};
    if (!c.rgb) return FR_ERR_NOMEM;
    fill(&c, 0, 0, c.w, c.h, k_white);
    const int body_y = MARGIN + L.header_h, chars = (L.label_w - MARGIN) / L.adv;
    for (int r = 0; labels && r < n_rows; r++) {
        const char *s = labels[r] ? labels[r] : "";
        if (L.scatter) { /* legend: swatch + one line of text */
            fill(&c, MARGIN, body_y + r * L.line, L.line - 2 * L.ts, L.line - 2 * L.ts, k_tab10[r % 10]);
            draw_label(&c, MARGIN + L.line, body_y + r * L.line, s, chars - (L.line + L.adv - 1) / L.adv, 1, L.ts);
        } else {
            draw_label(&c, MARGIN, body_y + r * L.row_h + FRAME, s, chars, (L.row_h - CELL_GAP) / L.line, L.ts);
        }
    }
    fr_status s = FR_OK;
    for (int k = 0; k < n_panels && s == FR_OK; k++) {
        const fr_sample_panel *p = &panels[k];
        int x0 = MARGIN + L.label_w + k * (L.panel_w + PANEL_GAP);
        if (p->title) {
            int64_t ok = 0, judged = 0;
            for (int64_t i = 0; p->correct && i < (int64_t)n_rows * n_cols; i++)
                if (p->correct[i] >= 0) judged++, ok += p->correct[i] == 1;
            char head[160];
            int fit = L.panel_w / L.adv;
            int n = judged ? snprintf(head, sizeof head, "%s: %lld/%lld correct", p->title, (long long)ok,
                                      (long long)judged)
                           : snprintf(head, sizeof head, "%s", p->title);
            if (judged && n > fit) /* a narrow panel: the count without the word */
                n = snprintf(head, sizeof head, "%s: %lld/%lld", p->title, (long long)ok, (long long)judged);
            if (n > (int)sizeof head - 1) n = (int)sizeof head - 1;
            text(&c, x0, MARGIN, head, n < fit ? n : fit, L.ts, k_ink);
        }
        s = L.scatter ? draw_scatter_panel(&c, t, &L, x0, body_y, n_rows, n_cols, p)
                      : draw_image_panel(&c, t, &L, x0, body_y, n_rows, n_cols, p, o->scale > 0 ? o->scale : 4);
    }
    if (s == FR_OK && L.judged) {
        const char *key = L.scatter ? k_key_scatter : k_key_images;
        text(&c, MARGIN, c.h - MARGIN - FR_FONT_H * L.ts, key, (int)strlen(key), L.ts, k_ink);
    }
    if (s != FR_OK) {
        free(c.rgb);
        return s;
    }
    *rgb = c.rgb;
    return FR_OK;
}

fr_status fr_sample_grid_side_by_side(const char *path, const fr_task *t, int n_rows, const char *const *labels,
                                      int n_cols, int n_panels, const fr_sample_panel *panels,
                                      const fr_sample_grid_opts *o)
{
    uint8_t *rgb;
    int h, w;
    fr_status s = fr_sample_grid_render(t, n_rows, labels, n_cols, n_panels, panels, o, &rgb, &h, &w);
    if (s != FR_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", fr_last_error());
        return fr_fail(s, "%s: %s", path, why);
    }
    s = fr_png_write_rgb(path, rgb, h, w);
    free(rgb);
    return s;
}

fr_status fr_sample_grid_labelled(const char *path, const fr_task *t, int n_rows, const char *const *labels,
                                  int n_cols, const float *x, const int *correct, const fr_sample_grid_opts *o)
{
    fr_sample_panel p = {NULL, x, correct};
    return fr_sample_grid_side_by_side(path, t, n_rows, labels, n_cols, 1, &p, o);
}

fr_status fr_sample_grid_judge(const fr_task *t, int reward_id, int n_rows, const int *prompt_ids, int n_cols,
                               const float *x, int *correct)
{
    if (n_rows < 1 || n_cols < 1)
        return fr_fail(FR_ERR_ARG, "sample grid: %d x %d samples to judge, expected >= 1 x 1", n_rows, n_cols);
    const int64_t N = (int64_t)n_rows * n_cols;
    if (N > INT32_MAX) return fr_fail(FR_ERR_ARG, "sample grid: %lld samples to judge", (long long)N);
    int *pid = fr_malloc((size_t)N * sizeof *pid);
    float *score = fr_malloc((size_t)N * sizeof *score);
    fr_status s = pid && score ? FR_OK : FR_ERR_NOMEM;
    for (int64_t i = 0; s == FR_OK && i < N; i++) pid[i] = prompt_ids[i / n_cols];
    if (s == FR_OK) s = fr_task_reward_batch(t, reward_id, (int)N, pid, x, score, correct);
    free(pid);
    free(score);
    return s;
}

fr_status fr_sample_grid_prompts(const char *path, const fr_task *t, int reward_id, int n_rows, const int *prompt_ids,
                                 int n_cols, int n_panels, const char *const *titles, const float *const *xs,
                                 const fr_sample_grid_opts *o)
{
    if (n_rows < 1 || n_cols < 1 || n_panels < 1 || n_panels > MAX_PANELS)
        return fr_fail(FR_ERR_ARG, "%s: %d rows x %d columns x %d panels, expected >= 1 each and <= %d panels", path,
                       n_rows, n_cols, n_panels, MAX_PANELS);
    const int64_t N = (int64_t)n_rows * n_cols;
    char *text_buf = fr_malloc((size_t)n_rows * FR_PROMPT_TEXT_MAX);
    const char **labels = fr_malloc((size_t)n_rows * sizeof *labels);
    int *correct = fr_malloc((size_t)(N * n_panels) * sizeof *correct);
    fr_sample_panel panels[MAX_PANELS];
    fr_status s = text_buf && labels && correct ? FR_OK : FR_ERR_NOMEM;
    for (int r = 0; r < n_rows && s == FR_OK; r++) {
        labels[r] = text_buf + (size_t)r * FR_PROMPT_TEXT_MAX;
        s = t->prompt_text(prompt_ids[r], text_buf + (size_t)r * FR_PROMPT_TEXT_MAX, FR_PROMPT_TEXT_MAX);
    }
    for (int k = 0; k < n_panels && s == FR_OK; k++) {
        panels[k] = (fr_sample_panel){titles ? titles[k] : NULL, xs[k], correct + k * N};
        s = fr_sample_grid_judge(t, reward_id, n_rows, prompt_ids, n_cols, xs[k], correct + k * N);
    }
    if (s == FR_OK) s = fr_sample_grid_side_by_side(path, t, n_rows, labels, n_cols, n_panels, panels, o);
    free(text_buf);
    free(labels);
    free(correct);
    return s;
}
