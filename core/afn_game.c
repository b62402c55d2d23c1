/* Tic-tac-toe for adversarial flow networks (flowrl/afn.h; docs/algorithms/afn.md §1): the rules,
 * exact minimax by negamax over the 3^9 board codes, the optimal-move table, and the registered
 * environment "tictactoe" (kind "game"). */
#include <stdio.h>
#include <string.h>

#include "flowrl/afn.h"

static const int8_t k_lines[8][3] = {{0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {0, 3, 6},
                                     {1, 4, 7}, {2, 5, 8}, {0, 4, 8}, {2, 4, 6}};

int fr_ttt_code(const int8_t *board)
{
    int c = 0;
    for (int i = 8; i >= 0; i--) c = 3 * c + board[i];
    return c;
}

void fr_ttt_board(int c, int8_t *board)
{
    for (int i = 0; i < 9; i++, c /= 3) board[i] = (int8_t)(c % 3);
}

int fr_ttt_to_move(const int8_t *board)
{
    int n = 0;
    for (int i = 0; i < 9; i++) n += board[i] != 0;
    return n & 1;
}

int fr_ttt_winner(const int8_t *board)
{
    for (int l = 0; l < 8; l++) {
        int8_t v = board[k_lines[l][0]];
        if (v && v == board[k_lines[l][1]] && v == board[k_lines[l][2]]) return v;
    }
    return 0;
}

int fr_ttt_over(const int8_t *board)
{
    if (fr_ttt_winner(board)) return 1;
    for (int i = 0; i < 9; i++)
        if (!board[i]) return 0;
    return 1;
}

int fr_ttt_legal(const int8_t *board, uint8_t *mask)
{
    int n = 0;
    for (int i = 0; i < 9; i++) {
        mask[i] = board[i] == 0;
        n += mask[i];
    }
    return n;
}

/* The tables, built on first use: value (for the player to move), optimal-move bits, reachable. */
static int8_t g_value[FR_TTT_CODES];
static uint16_t g_opt[FR_TTT_CODES];
static uint8_t g_seen[FR_TTT_CODES];
static int g_built;

/* Negamax of board b (reachable: marks it); returns its value for the player to move. */
static int8_t negamax(int8_t *b)
{
    const int c = fr_ttt_code(b);
    if (g_seen[c]) return g_value[c];
    g_seen[c] = 1;
    if (fr_ttt_over(b)) { /* the previous mover made the line: the player to move lost */
        g_value[c] = (int8_t)(fr_ttt_winner(b) ? -1 : 0);
        return g_value[c];
    }
    const int8_t piece = (int8_t)(1 + fr_ttt_to_move(b));
    int8_t best = -2, child[9];
    for (int a = 0; a < 9; a++) {
        if (b[a]) continue;
        b[a] = piece;
        child[a] = (int8_t)-negamax(b);
        b[a] = 0;
        if (child[a] > best) best = child[a];
    }
    uint16_t bits = 0;
    for (int a = 0; a < 9; a++)
        if (!b[a] && child[a] == best) bits |= (uint16_t)(1u << a);
    g_value[c] = best;
    g_opt[c] = bits;
    return best;
}

static void build(void)
{
    if (g_built) return;
    int8_t b[9] = {0};
    negamax(b);
    g_built = 1;
}

const int8_t *fr_ttt_values(void)
{
    build();
    return g_value;
}

const uint16_t *fr_ttt_optimal(void)
{
    build();
    return g_opt;
}

int fr_ttt_positions(int32_t *codes)
{
    build();
    int n = 0;
    for (int c = 0; c < FR_TTT_CODES; c++)
        if (g_seen[c] && g_opt[c]) {
            if (codes) codes[n] = c;
            n++;
        }
    return n;
}

/* ---- the environment: sizes only (the rules are the functions above) ------------------------ */
typedef struct {
    double lambda;
} ttt_opts;

#define O ttt_opts
static const fr_opt k_rows[] = {
    FR_OPT_F64(O, lambda, "lambda", "10", 1e-6, 1e6, "log R0 = +lambda if player 0 wins, -lambda if it loses, 0 on a draw", 0),
};
#undef O

static fr_status create(const void *ov, fr_env *e)
{
    const ttt_opts *o = ov;
    ttt_opts *copy = fr_malloc(sizeof *copy);
    if (!copy) return FR_ERR_NOMEM;
    *copy = *o;
    e->impl = copy;
    e->state_dim = 9;
    e->obs_dim = 28; /* one-hot of the 9 cells (empty, player 0, player 1) and the player to move */
    e->n_actions = 9;
    e->action_dim = 0;
    e->exit_action = -1;
    e->max_steps = 9;
    e->n_states = fr_ttt_positions(NULL); /* reachable positions with a move to make */
    e->gfn = NULL;
    e->ctl = NULL;
    snprintf(e->desc, sizeof e->desc, "tictactoe lambda=%g", o->lambda);
    return FR_OK;
}

double fr_ttt_lambda(const fr_env *e) { return ((const ttt_opts *)e->impl)->lambda; }

const fr_env_class fr_env_tictactoe = {
    "tictactoe",
    "tic-tac-toe for adversarial flow networks (two players, log R0 = +-lambda or 0; exact minimax by search)",
    "docs/algorithms/afn.md",
    "game",
    k_rows,
    (int)(sizeof k_rows / sizeof k_rows[0]),
    sizeof(ttt_opts),
    create,
};
