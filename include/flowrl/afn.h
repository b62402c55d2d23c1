/* Adversarial flow networks on tic-tac-toe (docs/algorithms/afn.md; spec more.md §8.3; public
 * code GFNOrg/AdversarialFlowNetworks@4154f73c src/tb.py, src/eval.py).
 *
 * The game (core/afn_game.c): a board of 9 cells, 0 empty, 1 player 0 (moves first), 2 player 1;
 * the player to move is the parity of the pieces on the board. The registered environment
 * "tictactoe" (kind "game": neither the GFlowNet nor the control tables) carries the sizes; the
 * rules, the exact minimax values and the optimal-move table are the functions below, computed
 * by search over the 3^9 board codes (no table is read from the public code).
 *
 * AFlowNet (core/afn.c): one network π(a | s, player) (an MLP through the op table; input the
 * 27-wide one-hot of the cells and the player to move, 9 logits masked to the empty cells) and
 * one scalar log Z0 (init 0). A game τ = a_0 … a_{n−1} (player 0 at even t) has the residual
 *   r(τ) = log Z0 + Σ_{t even, t < n−1} [log π(a_t|s_t) + log|A(s_t)|]
 *                 − Σ_{t odd,  t < n−1} [log π(a_t|s_t) + log|A(s_t)|] − log R0(τ)
 * (the game-ending move's log π is in neither sum: the code's quirk), log R0 = +λ, −λ, 0 as
 * player 0 wins, loses, draws; loss = mean_b r². */
#ifndef FLOWRL_AFN_H
#define FLOWRL_AFN_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/env.h"
#include "flowrl/optim.h"
#include "flowrl/status.h"

/* ---- the game ------------------------------------------------------------------------------- */
#define FR_TTT_CODES 19683 /* 3^9 board codes */

/* The base-3 code of a board (cell i the digit of 3^i). */
int fr_ttt_code(const int8_t *board);
/* 0: player 0 (1s) to move, 1: player 1 (2s). */
int fr_ttt_to_move(const int8_t *board);
/* The winner: 1 (player 0's line), 2 (player 1's line), 0 none yet (a full board: a draw). */
int fr_ttt_winner(const int8_t *board);
/* 1 if the game is over (a line or a full board). */
int fr_ttt_over(const int8_t *board);
/* Legal moves of a board not over into mask (9,), 1 = empty; returns |A(s)|. */
int fr_ttt_legal(const int8_t *board, uint8_t *mask);

/* Exact minimax (negamax over every position reachable from the empty board), computed once:
 * value of a position for the player to move, +1 win, 0 draw, −1 loss (over: the player to move
 * has lost if there is a line, 0 on a draw); optimal moves of a non-final position as a 9-bit
 * set (bit a set iff −value(after a) = value). Unreachable codes: value 0, no moves. */
const int8_t *fr_ttt_values(void);
const uint16_t *fr_ttt_optimal(void);
/* The reachable non-final positions (each once, in code order) into codes (may be NULL); returns
 * how many (4520). */
int fr_ttt_positions(int32_t *codes);
/* Board of code c. */
void fr_ttt_board(int c, int8_t *board);

extern const fr_env_class fr_env_tictactoe;
/* The instance's λ (--lambda, 10). */
double fr_ttt_lambda(const fr_env *e);

/* ---- the loss ------------------------------------------------------------------------------- */
/* The AFlowNet residual and loss of B games (float64). lp (B, 9): log π(a_t|s_t) of game b's move t
 * at [b, t], t < len[b]; nA (B, 9): |A(s_t)|; outcome (B,): +1 player 0 won, −1 lost, 0 draw; lambda
 * λ. *loss = mean r²; resid (B,) and g_lp (B, 9) (dloss/dlp, 0 at the final move and beyond) and
 * *g_log_z may be NULL. FR_ERR_ARG for a len outside [1, 9]; FR_ERR_NUMERIC for a non-finite lp. */
fr_status fr_afn_loss(int64_t B, const double *lp, const int32_t *nA, const int32_t *len, const int8_t *outcome,
                      double log_z0, double lambda, double *loss, double *resid, double *g_lp, double *g_log_z);

/* ---- the trainer ---------------------------------------------------------------------------- */
typedef struct {
    int64_t batch;    /* self-play games per epoch (512) */
    int64_t hidden;   /* MLP width (128) */
    int64_t n_hidden; /* hidden layers (2) */
    double lambda;    /* λ (10) */
    double temperature; /* self-play samples softmax(logits / τ) (2: the public code's gen_batch) */
    double epsilon;   /* ε-uniform mixed into the sampling policy (0) */
    uint32_t seed;
} fr_afn_opts;
fr_afn_opts fr_afn_opts_default(void);

typedef struct fr_afn_trainer fr_afn_trainer;

fr_status fr_afn_trainer_new(fr_afn_trainer **out, fr_backend *be, const fr_afn_opts *o);
void fr_afn_trainer_free(fr_afn_trainer *t);
/* The trainable list (backend memory): the network's n_net tensors, then "log_z0" (1,). */
int fr_afn_trainer_params(fr_afn_trainer *t, fr_param **ps, int *n_net);
/* Epoch e (0-based): o.batch self-play games of the current policy (at temperature τ, ε-mixed), every draw from
 * Philox (seed, FR_RNG_AFN_GAME, e, game, move); the loss and its gradients into the
 * parameters' grads (zeroed first); no optimiser step. *loss, *decisive (fraction of games
 * won by either player) may be NULL. */
fr_status fr_afn_trainer_grad(fr_afn_trainer *t, int64_t e, double *loss, double *decisive);
/* log Z0 (a copy from the backend). */
fr_status fr_afn_trainer_log_z(fr_afn_trainer *t, double *log_z0);
/* The optimal-move metric (src/eval.py ttt_optimal_percent): over every reachable non-final
 * position, the fraction where the argmax of π (first maximum) is an optimal move; also
 * *mass = the mean π probability of the optimal moves. Either may be NULL. */
fr_status fr_afn_trainer_optimal(fr_afn_trainer *t, double *frac, double *mass);
/* XXH3-64 digest of the network's digest (fr_mlp_digest) and log Z0's bytes. */
fr_status fr_afn_trainer_digest(fr_afn_trainer *t, uint64_t *digest, int64_t *n_params);

#endif
