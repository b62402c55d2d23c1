/* Progress display (flowrl/progress.h). */
#include "flowrl/progress.h"

#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOSS_BETA 0.98 /* EMA weight of the old average */
#define BAR_WIDTH 24

double fr_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *fr_format_duration(double s, char *buf, size_t n)
{
    if (!(s >= 0.0) || s > 1e9) {
        snprintf(buf, n, "?");
    } else if (s < 60.0) {
        snprintf(buf, n, "%.1fs", s);
    } else if (s < 3600.0) {
        long t = (long)(s + 0.5);
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    } else {
        long t = (long)(s / 60.0 + 0.5);
        snprintf(buf, n, "%ldh%02ldm", t / 60, t % 60);
    }
    return buf;
}

void fr_progress_init_at(fr_progress *p, FILE *out, fr_progress_mode mode, const char *label,
                         int64_t total, int64_t first, int64_t every, double now)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    if (!out) mode = FR_PROGRESS_OFF;
    if (mode == FR_PROGRESS_AUTO) mode = isatty(fileno(out)) ? FR_PROGRESS_TTY : FR_PROGRESS_PLAIN;
    p->mode = mode;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->total = total;
    p->first = first;
    p->done = first;
    p->every = every;
    p->min_interval_s = 10.0;
    p->tty_interval_s = 0.1;
    p->t0 = now;
    p->t_last = now;
    p->drawn_done = -1;
}

void fr_progress_init(fr_progress *p, FILE *out, fr_progress_mode mode, const char *label,
                      int64_t total, int64_t first, int64_t every)
{
    fr_progress_init_at(p, out, mode, label, total, first, every, fr_now_seconds());
}

double fr_progress_loss(const fr_progress *p)
{
    return p->n_loss ? p->loss_avg / p->loss_w : NAN;
}

/* "loss 0.4123  35.2 steps/s  ETA 51s" (the parts that are known). */
static void stats(const fr_progress *p, double now, char *buf, size_t n, int with_elapsed)
{
    char d1[32], d2[32];
    size_t used = 0;
    buf[0] = '\0';
    double loss = fr_progress_loss(p);
    if (p->n_loss) used += (size_t)snprintf(buf + used, n - used, "  loss %.4g", loss);
    double dt = now - p->t0;
    int64_t steps = p->done - p->first;
    double rate = dt > 0.0 && steps > 0 ? (double)steps / dt : 0.0;
    if (used < n && rate > 0.0)
        used += (size_t)snprintf(buf + used, n - used, "  %.3g steps/s", rate);
    if (used < n && with_elapsed)
        used += (size_t)snprintf(buf + used, n - used, "  elapsed %s",
                                 fr_format_duration(dt, d1, sizeof d1));
    if (used < n && rate > 0.0 && p->total > 0 && p->done < p->total)
        snprintf(buf + used, n - used, "  ETA %s",
                 fr_format_duration((double)(p->total - p->done) / rate, d2, sizeof d2));
}

static void draw(fr_progress *p, double now)
{
    char st[160];
    if (p->mode == FR_PROGRESS_TTY) {
        stats(p, now, st, sizeof st, 0);
        char bar[BAR_WIDTH + 1];
        int fill = 0;
        if (p->total > 0) {
            int64_t d = p->done < p->total ? p->done : p->total;
            fill = (int)(d * BAR_WIDTH / p->total);
        }
        for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
        bar[BAR_WIDTH] = '\0';
        if (p->total > 0)
            fprintf(p->out, "\r%s [%s] %lld/%lld%s\033[K", p->label, bar, (long long)p->done,
                    (long long)p->total, st);
        else
            fprintf(p->out, "\r%s %lld%s\033[K", p->label, (long long)p->done, st);
        p->drawn = 1;
    } else {
        stats(p, now, st, sizeof st, 1);
        if (p->total > 0)
            fprintf(p->out, "%s step %lld/%lld%s\n", p->label, (long long)p->done,
                    (long long)p->total, st);
        else
            fprintf(p->out, "%s step %lld%s\n", p->label, (long long)p->done, st);
    }
    fflush(p->out);
    p->t_last = now;
    p->drawn_done = p->done;
}

void fr_progress_update_at(fr_progress *p, int64_t done, float loss, double now)
{
    if (p->mode == FR_PROGRESS_OFF) return;
    int64_t prev = p->done;
    p->done = done;
    if (!isnan(loss)) {
        p->loss_avg = LOSS_BETA * p->loss_avg + (1.0 - LOSS_BETA) * (double)loss;
        p->loss_w = LOSS_BETA * p->loss_w + (1.0 - LOSS_BETA);
        p->n_loss++;
    }
    int due;
    if (p->mode == FR_PROGRESS_TTY) {
        due = now - p->t_last >= p->tty_interval_s || (p->total > 0 && done >= p->total);
    } else {
        /* a multiple of `every` crossed since the last update, or the time interval */
        due = (p->every > 0 && done / p->every != prev / p->every) ||
              now - p->t_last >= p->min_interval_s;
    }
    if (due) draw(p, now);
}

void fr_progress_update(fr_progress *p, int64_t done, float loss)
{
    fr_progress_update_at(p, done, loss, fr_now_seconds());
}

void fr_progress_finish_at(fr_progress *p, double now)
{
    if (p->mode == FR_PROGRESS_OFF) return;
    /* TTY: redraw the final state; PLAIN: unless the last line already showed it */
    if (p->mode == FR_PROGRESS_TTY || p->drawn_done != p->done) draw(p, now);
    if (p->mode == FR_PROGRESS_TTY && p->drawn) {
        fputc('\n', p->out);
        fflush(p->out);
    }
}

void fr_progress_finish(fr_progress *p)
{
    fr_progress_finish_at(p, fr_now_seconds());
}
