/* A progress display for long loops (pretrain, train, eval).
 *
 * On a terminal: one line rewritten in place ("\r ... \033[K"):
 *     pretrain  [#######.......]  1200/3000  loss 0.4123  35.2 steps/s  ETA 51s
 * Otherwise (a log file, a pipe, CI): a plain line every `every` steps or every
 * `min_interval_s` seconds, whichever comes first, and at the end:
 *     pretrain step 1200/3000  loss 0.4123  35.2 steps/s  elapsed 34.1s  ETA 51s
 *
 * The loss shown is an exponential moving average of the reported losses (weight 0.02
 * on the newest, debiased as Adam debiases its moments, so the first lines are not
 * pulled toward 0); steps/s is measured since fr_progress_init. It only displays: the
 * numbers never feed back into a computation. The caller owns the FILE. */
#ifndef FLOWRL_PROGRESS_H
#define FLOWRL_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef enum {
    FR_PROGRESS_AUTO = 0, /* TTY if isatty(fileno(out)), else PLAIN */
    FR_PROGRESS_TTY,
    FR_PROGRESS_PLAIN,
    FR_PROGRESS_OFF
} fr_progress_mode;

typedef struct {
    FILE *out;
    fr_progress_mode mode;  /* resolved: TTY, PLAIN or OFF */
    char label[32];
    int64_t total;          /* steps; <= 0: unknown (no bar, no ETA) */
    int64_t first;          /* steps already done at init (a resumed run), not timed */
    int64_t every;          /* PLAIN: a line every `every` steps (<= 0: time only) */
    double min_interval_s;  /* PLAIN: ... or after this many seconds (default 10) */
    double tty_interval_s;  /* TTY: redraw at most this often (default 0.1 s) */
    double t0, t_last;      /* seconds (monotonic clock) at init / at the last line */
    int64_t done;
    double loss_avg, loss_w; /* EMA numerator and its debias weight 1 − 0.98^n */
    int n_loss;
    int drawn;              /* TTY: a line is on screen and needs a newline at the end */
    int64_t drawn_done;     /* `done` at the last line drawn (-1: none yet) */
} fr_progress;

/* label: e.g. "pretrain"; total: the final step count; first: where counting starts
 * (0, or a resumed run's step); every: PLAIN lines every that many steps. */
void fr_progress_init(fr_progress *p, FILE *out, fr_progress_mode mode, const char *label,
                      int64_t total, int64_t first, int64_t every);
/* Records that `done` steps are complete, with the latest loss (NaN: no loss), and
 * draws if it is time. */
void fr_progress_update(fr_progress *p, int64_t done, float loss);
/* The same with an explicit clock reading (seconds since an arbitrary origin, the same
 * one as `now` of fr_progress_init_at), for tests. */
void fr_progress_update_at(fr_progress *p, int64_t done, float loss, double now);
void fr_progress_init_at(fr_progress *p, FILE *out, fr_progress_mode mode, const char *label,
                         int64_t total, int64_t first, int64_t every, double now);
/* Draws the final state (always) and ends the TTY line. */
void fr_progress_finish(fr_progress *p);
void fr_progress_finish_at(fr_progress *p, double now);
/* The smoothed loss shown (NaN before the first loss). */
double fr_progress_loss(const fr_progress *p);
/* A duration as "12.3s", "4m05s" or "2h03m" into buf. */
const char *fr_format_duration(double seconds, char *buf, size_t n);
/* Seconds on a monotonic clock. */
double fr_now_seconds(void);

#endif
