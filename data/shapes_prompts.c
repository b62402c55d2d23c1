/* The shapes prompt table: grammar, train / held-out split, text and tokens.
 *
 * Canonical order (kind-major), 70 prompts over 4 colours:
 *   single    "a red object"                      colour c                  4
 *   counting  "three blue objects"                count n = 2..4, colour c  12
 *   two       "a red and a green object"          colours a < b             6
 *   position  "a red object left of a blue object" a != b, rel (left, right,
 *                                                  above, below)            48
 * Held out for evaluation (GenEval-style unseen combinations) when key % 4 == 3:
 *   single: key = c (only "a yellow object"; yellow is still seen in the other kinds),
 *   counting: key = n + c, two: key = a + b,
 *   position: key = 2L + R + axis, with (L, R) the (left, right) or (upper, lower)
 *   colours and axis 0 horizontal / 1 vertical -- so a phrase and its mirror
 *   ("A left of B", "B right of A") fall on the same side of the split.
 * Every colour, count and relation still appears in training (tests/test_tasks.c).
 * Ids: training prompts first, in canonical order, then the held-out ones. */
#include <stdio.h>
#include <string.h>

#include "data/shapes_internal.h"

#define N_SINGLE FR_SHAPES_NCOLORS
#define N_COUNTING ((FR_SHAPES_MAX_COUNT - 1) * FR_SHAPES_NCOLORS)
#define N_TWO (FR_SHAPES_NCOLORS * (FR_SHAPES_NCOLORS - 1) / 2)
#define N_POSITION (FR_SHAPES_NCOLORS * (FR_SHAPES_NCOLORS - 1) * 4)
#define N_CANONICAL (N_SINGLE + N_COUNTING + N_TWO + N_POSITION)
_Static_assert(N_CANONICAL == FR_SHAPES_N_PROMPTS, "FR_SHAPES_N_PROMPTS");

const char *const fr_shapes_color_names[FR_SHAPES_NCOLORS] = {"red", "green", "blue", "yellow"};

/* Canonical prompt i in [0, N_CANONICAL). */
static fr_shapes_prompt canonical(int i)
{
    fr_shapes_prompt p = {FR_SHAPES_SINGLE, 0, -1, 1, -1};
    if (i < N_SINGLE) {
        p.color_a = i;
        return p;
    }
    i -= N_SINGLE;
    if (i < N_COUNTING) {
        p.kind = FR_SHAPES_COUNTING;
        p.count = 2 + i / FR_SHAPES_NCOLORS;
        p.color_a = i % FR_SHAPES_NCOLORS;
        return p;
    }
    i -= N_COUNTING;
    if (i < N_TWO) {
        p.kind = FR_SHAPES_TWO;
        for (int a = 0; a < FR_SHAPES_NCOLORS; a++)
            for (int b = a + 1; b < FR_SHAPES_NCOLORS; b++)
                if (i-- == 0) {
                    p.color_a = a;
                    p.color_b = b;
                    return p;
                }
    }
    i -= N_TWO;
    p.kind = FR_SHAPES_POSITION;
    int pair = i / 4, k = 0;
    p.rel = i % 4;
    for (int a = 0; a < FR_SHAPES_NCOLORS; a++)
        for (int b = 0; b < FR_SHAPES_NCOLORS; b++)
            if (a != b && k++ == pair) {
                p.color_a = a;
                p.color_b = b;
            }
    return p;
}

int fr_shapes_is_eval(const fr_shapes_prompt *p)
{
    int key = 0;
    switch (p->kind) {
    case FR_SHAPES_SINGLE: key = p->color_a; break;
    case FR_SHAPES_COUNTING: key = p->count + p->color_a; break;
    case FR_SHAPES_TWO: key = p->color_a + p->color_b; break;
    default: {
        int first = p->rel == FR_SHAPES_LEFT || p->rel == FR_SHAPES_ABOVE;
        int lo = first ? p->color_a : p->color_b, hi = first ? p->color_b : p->color_a;
        int axis = p->rel == FR_SHAPES_ABOVE || p->rel == FR_SHAPES_BELOW;
        key = 2 * lo + hi + axis;
    }
    }
    return key % 4 == 3;
}

static int count_split(int eval)
{
    int n = 0;
    for (int i = 0; i < N_CANONICAL; i++) {
        fr_shapes_prompt p = canonical(i);
        n += fr_shapes_is_eval(&p) == eval;
    }
    return n;
}

fr_status fr_shapes_prompt_get(int prompt_id, fr_shapes_prompt *out)
{
    if (prompt_id < 0 || prompt_id >= N_CANONICAL)
        return fr_fail(FR_ERR_ARG, "shapes: prompt id %d outside [0, %d)", prompt_id, N_CANONICAL);
    int n_train = FR_SHAPES_N_TRAIN;
    int eval = prompt_id >= n_train, rank = eval ? prompt_id - n_train : prompt_id;
    for (int i = 0; i < N_CANONICAL; i++) {
        fr_shapes_prompt p = canonical(i);
        if (fr_shapes_is_eval(&p) != eval) continue;
        if (rank-- == 0) {
            *out = p;
            return FR_OK;
        }
    }
    return fr_fail(FR_ERR_ARG, "shapes: prompt id %d not found", prompt_id);
}

static const char *const k_count_words[FR_SHAPES_MAX_COUNT + 1] = {"zero", "one", "two", "three",
                                                                   "four"};
static const char *const k_rel_words[4] = {"left of", "right of", "above", "below"};

fr_status fr_shapes_prompt_text(int prompt_id, char *buf, size_t cap)
{
    fr_shapes_prompt p;
    FR_TRY(fr_shapes_prompt_get(prompt_id, &p));
    if (cap < FR_PROMPT_TEXT_MAX)
        return fr_fail(FR_ERR_ARG, "shapes: prompt text buffer of %zu bytes, need %d", cap,
                       FR_PROMPT_TEXT_MAX);
    const char *a = fr_shapes_color_names[p.color_a];
    const char *b = p.color_b >= 0 ? fr_shapes_color_names[p.color_b] : "";
    switch (p.kind) {
    case FR_SHAPES_SINGLE: snprintf(buf, cap, "a %s object", a); break;
    case FR_SHAPES_COUNTING: snprintf(buf, cap, "%s %s objects", k_count_words[p.count], a); break;
    case FR_SHAPES_TWO: snprintf(buf, cap, "a %s and a %s object", a, b); break;
    default: snprintf(buf, cap, "a %s object %s a %s object", a, k_rel_words[p.rel], b);
    }
    return FR_OK;
}

/* Slots: kind | colour A | colour B or none | count | relation or none, each slot with
 * its own token range (n_vocab = 4 + 4 + 5 + 4 + 5 = 22). */
#define TOK_KIND 0
#define TOK_A (TOK_KIND + 4)
#define TOK_B (TOK_A + FR_SHAPES_NCOLORS)
#define TOK_COUNT (TOK_B + FR_SHAPES_NCOLORS + 1)
#define TOK_REL (TOK_COUNT + FR_SHAPES_MAX_COUNT)
#define TOK_END (TOK_REL + 5)
_Static_assert(TOK_END == FR_SHAPES_N_VOCAB, "FR_SHAPES_N_VOCAB");

fr_status fr_shapes_prompt_tokens(int prompt_id, int32_t *tokens)
{
    fr_shapes_prompt p;
    FR_TRY(fr_shapes_prompt_get(prompt_id, &p));
    tokens[0] = TOK_KIND + p.kind;
    tokens[1] = TOK_A + p.color_a;
    tokens[2] = TOK_B + (p.color_b >= 0 ? p.color_b : FR_SHAPES_NCOLORS);
    tokens[3] = TOK_COUNT + p.count - 1;
    tokens[4] = TOK_REL + (p.rel >= 0 ? p.rel : 4);
    return FR_OK;
}

int fr_shapes_prompt_group(int prompt_id)
{
    fr_shapes_prompt p;
    return fr_shapes_prompt_get(prompt_id, &p) == FR_OK ? p.kind : -1;
}

/* What the split rule gives; tests/test_tasks.c checks them against FR_SHAPES_N_TRAIN/EVAL. */
int fr_shapes_n_train_prompts(void) { return count_split(0); }
int fr_shapes_n_eval_prompts(void) { return count_split(1); }
