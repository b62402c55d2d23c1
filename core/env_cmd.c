/* An environment program over a pipe (`--env cmd:PROGRAM`; flowrl/env_ctl.h,
 * docs/env-protocol.md): the hello / reset / step messages over the child-process plumbing of
 * the reward programs (core/reward_cmd_proc.c). The instance is a control environment whose
 * state (2 doubles: episode, step) only orders the messages; the program keeps the real one.
 * One thread at a time drives it. Every failure of the program is one line "environment
 * program `P`, <message>: <what>; it <how it ended>", after which the program is stopped and
 * every later call fails naming the first error. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/reward_cmd_proc.h"
#include "core/reward_cmd_reply.h"
#include "flowrl/env_ctl.h"

#define MAX_WIDTH 4096
#define CLOSE_GRACE_S 2.0

#define O fr_env_cmd_opts
static const fr_opt k_rows[] = {
    FR_OPT_STR(O, program, "env_program", "", "the environment program (set by --env cmd:PROGRAM)", FR_OPT_HIDDEN),
    FR_OPT_F64(O, timeout_s, "env_timeout", "60", 0.001, 1e6, "seconds an environment program may take per message",
               FR_OPT_RESUMABLE),
    FR_OPT_STR(O, cwd, "env_cwd", "", "the directory the program runs in (set by the run: where it started)",
               FR_OPT_HIDDEN),
};
#undef O

typedef struct {
    fr_env_cmd_opts o;
    fr_rcproc proc;
    uint32_t seq;       /* messages sent */
    int failed;
    char first_error[1024];
    float *low, *high;  /* (action_dim,) the program's action bounds */
    unsigned char *buf; /* message scratch */
    size_t cap;
} cmd_env;

static cmd_env *ce(const fr_env *e) { return e->impl; }

const char *fr_env_cmd_program(const char *spec)
{
    const size_t n = strlen(FR_ENV_CMD_PREFIX);
    return spec && strncmp(spec, FR_ENV_CMD_PREFIX, n) == 0 ? spec + n : NULL;
}

int fr_env_cmd_pid(const fr_env *e)
{
    return e && e->cls == &fr_env_cmd && ce(e) && ce(e)->proc.pid > 0 ? ce(e)->proc.pid : -1;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static fr_status grow(cmd_env *c, size_t n)
{
    if (n <= c->cap) return FR_OK;
    unsigned char *b = realloc(c->buf, n);
    if (!b) return FR_ERR_NOMEM;
    c->buf = b;
    c->cap = n;
    return FR_OK;
}

/* The program failed during message `what`: stop it, keep and return the line. */
static fr_status failed(cmd_env *c, fr_status s, const char *what, double wait_s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
static fr_status failed(cmd_env *c, fr_status s, const char *what, double wait_s, const char *fmt, ...)
{
    char why[512], how[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    fr_rcproc_stop(&c->proc, wait_s, how, sizeof how);
    c->failed = 1;
    snprintf(c->first_error, sizeof c->first_error, "environment program `%.200s`, %s: %s; it %s", c->o.program, what,
             why, how);
    return fr_fail(s, "%s", c->first_error);
}

static double grace(const cmd_env *c) { return c->o.timeout_s < CLOSE_GRACE_S ? c->o.timeout_s : CLOSE_GRACE_S; }

static fr_status io_failed(cmd_env *c, const char *what, fr_rcio io, int sending, size_t done, size_t want)
{
    if (io == FR_RCIO_TIMEOUT)
        return failed(c, FR_ERR_IO, what, 0, "%s within the %g s timeout (%zu of %zu bytes)",
                      sending ? "did not read its message" : "no answer", c->o.timeout_s, done, want);
    if (io == FR_RCIO_CLOSED) {
        if (sending) return failed(c, FR_ERR_IO, what, grace(c), "stopped reading (%zu of %zu bytes taken)", done, want);
        if (done > 0)
            return failed(c, FR_ERR_FORMAT, what, grace(c), "answer cut short: %zu of %zu bytes, then end of output", done,
                          want);
        return failed(c, FR_ERR_IO, what, grace(c), "ended its output without answering");
    }
    if (io == FR_RCIO_EARLY) {
        unsigned char b[16];
        char shown[80];
        fr_rc_show_bytes(b, fr_rcproc_pending(&c->proc, b, sizeof b), shown, sizeof shown);
        return failed(c, FR_ERR_FORMAT, what, 0, "wrote %s before reading its whole message (logs belong on stderr)",
                      shown);
    }
    return failed(c, FR_ERR_IO, what, 0, "pipe error");
}

/* Sends len bytes of c->buf, then reads the answer's 8-byte head (magic, seq) and `rest` more
 * bytes into c->buf; checks the magic and the echoed sequence number. */
static fr_status exchange(cmd_env *c, const char *what, size_t len, const char *magic, size_t rest)
{
    if (c->failed)
        return fr_fail(FR_ERR_IO, "environment program `%.200s`, %s: not sent, the program was stopped after an earlier "
                       "error: %s", c->o.program, what, c->first_error);
    const double deadline = fr_rcproc_now() + c->o.timeout_s;
    size_t got;
    fr_rcio io = fr_rcproc_write(&c->proc, c->buf, len, deadline, &got);
    if (io != FR_RCIO_OK) return io_failed(c, what, io, 1, got, len);
    const uint32_t seq = c->seq++;
    FR_TRY(grow(c, 8 + rest));
    io = fr_rcproc_read(&c->proc, c->buf, 8, deadline, &got);
    if (io != FR_RCIO_OK) return io_failed(c, what, io, 0, got, 8 + rest);
    if (memcmp(c->buf, magic, 4) != 0) {
        char shown[80];
        fr_rc_show_bytes(c->buf, 8, shown, sizeof shown);
        return failed(c, FR_ERR_FORMAT, what, 0, "answer starts %s, expected '%s'", shown, magic);
    }
    if (get_u32(c->buf + 4) != seq)
        return failed(c, FR_ERR_FORMAT, what, 0, "answer is for message %" PRIu32 ", expected %" PRIu32,
                      get_u32(c->buf + 4), seq);
    if (rest) {
        io = fr_rcproc_read(&c->proc, c->buf + 8, rest, deadline, &got);
        if (io != FR_RCIO_OK) return io_failed(c, what, io, 0, 8 + got, 8 + rest);
    }
    return FR_OK;
}

/* After a whole answer: nothing more may be waiting. */
static fr_status no_extra(cmd_env *c, const char *what)
{
    unsigned char extra[16];
    const size_t n = fr_rcproc_pending(&c->proc, extra, sizeof extra);
    if (n == 0) return FR_OK;
    char shown[80];
    fr_rc_show_bytes(extra, n, shown, sizeof shown);
    return failed(c, FR_ERR_FORMAT, what, 0, "wrote %s after its answer (logs belong on stderr)", shown);
}

static void head(unsigned char *p, const char *magic, uint32_t seq)
{
    memcpy(p, magic, 4);
    put_u32(p + 4, seq);
}

/* The answer's observation count and values at c->buf + off: n_obs must be obs_dim, every value
 * finite. */
static fr_status read_obs(cmd_env *c, const fr_env *e, const char *what, size_t off, uint32_t n_obs, float *obs)
{
    if (n_obs != (uint32_t)e->obs_dim)
        return failed(c, FR_ERR_FORMAT, what, 0, "answered %" PRIu32 " observation values, expected %d (its hello)",
                      n_obs, e->obs_dim);
    size_t got;
    const double deadline = fr_rcproc_now() + c->o.timeout_s;
    FR_TRY(grow(c, off + 4u * n_obs));
    fr_rcio io = fr_rcproc_read(&c->proc, c->buf + off, 4u * n_obs, deadline, &got);
    if (io != FR_RCIO_OK) return io_failed(c, what, io, 0, off + got, off + 4u * n_obs);
    for (uint32_t i = 0; i < n_obs; i++) {
        float v;
        memcpy(&v, c->buf + off + 4u * i, 4);
        if (!isfinite(v)) return failed(c, FR_ERR_NUMERIC, what, 0, "observation element %" PRIu32 " is %g", i, (double)v);
        obs[i] = v;
    }
    return no_extra(c, what);
}

/* reset: "FERS" seq seed episode → "FERO" seq n_obs obs[n_obs] */
static fr_status reset(const fr_env *e, uint32_t seed, uint32_t episode, double *st, float *obs)
{
    cmd_env *c = ce(e);
    char what[64];
    snprintf(what, sizeof what, "reset of episode %" PRIu32, episode);
    FR_TRY(grow(c, 16));
    head(c->buf, "FERS", c->seq);
    put_u32(c->buf + 8, seed);
    put_u32(c->buf + 12, episode);
    FR_TRY(exchange(c, what, 16, "FERO", 4));
    FR_TRY(read_obs(c, e, what, 12, get_u32(c->buf + 8), obs));
    st[0] = (double)episode;
    st[1] = 0.0;
    return FR_OK;
}

/* step: "FEST" seq episode t n_act action[n_act] → "FESO" seq n_obs done reward(f64) obs[n_obs] */
static fr_status step(const fr_env *e, double *st, const float *action, float *obs, double *reward, int *done)
{
    cmd_env *c = ce(e);
    const uint32_t episode = (uint32_t)st[0], t = (uint32_t)st[1];
    char what[96];
    snprintf(what, sizeof what, "step %" PRIu32 " of episode %" PRIu32, t, episode);
    for (int i = 0; i < e->action_dim; i++)
        if (!isfinite(action[i]))
            return fr_fail(FR_ERR_NUMERIC, "environment program `%.200s`, %s: action element %d is %g; not sent",
                           c->o.program, what, i, (double)action[i]);
    const size_t len = 20 + 4u * (size_t)e->action_dim;
    FR_TRY(grow(c, len));
    head(c->buf, "FEST", c->seq);
    put_u32(c->buf + 8, episode);
    put_u32(c->buf + 12, t);
    put_u32(c->buf + 16, (uint32_t)e->action_dim);
    memcpy(c->buf + 20, action, 4u * (size_t)e->action_dim);
    FR_TRY(exchange(c, what, len, "FESO", 16));
    const uint32_t n_obs = get_u32(c->buf + 8), d = get_u32(c->buf + 12);
    double r;
    memcpy(&r, c->buf + 16, 8);
    if (d > 1) return failed(c, FR_ERR_FORMAT, what, 0, "done flag %" PRIu32 ", expected 0 or 1", d);
    if (!isfinite(r)) return failed(c, FR_ERR_NUMERIC, what, 0, "reward is %g", r);
    FR_TRY(read_obs(c, e, what, 24, n_obs, obs));
    *reward = r;
    *done = (int)d;
    st[1] = (double)(t + 1);
    return FR_OK;
}

static void close_env(fr_env *e)
{
    cmd_env *c = ce(e);
    if (!c) return;
    char how[256];
    if (c->proc.pid > 0 && !fr_rcproc_stop(&c->proc, grace(c), how, sizeof how) && !c->failed)
        fprintf(stderr, "flowrl: environment program `%.200s` at close: it %s\n", c->o.program, how);
    free(c->low);
    free(c->high);
    free(c->buf);
    c->low = c->high = NULL;
    c->buf = NULL;
}

/* replay: the program's episodes are functions of (seed, episode, actions) (docs/env-protocol.md
 * §1), so a resumed run rebuilds those in flight in a fresh program */
static const fr_env_ctl_ops k_ops = {reset, step, NULL, close_env, 1};

/* hello: "FEHI" seq version → "FEHO" seq version obs_dim action_dim max_steps low[action_dim]
 * high[action_dim] */
static fr_status hello(fr_env *e, cmd_env *c)
{
    const char *what = "hello";
    FR_TRY(grow(c, 12));
    head(c->buf, "FEHI", c->seq);
    put_u32(c->buf + 8, FR_ENV_CMD_VERSION);
    FR_TRY(exchange(c, what, 12, "FEHO", 16));
    const uint32_t ver = get_u32(c->buf + 8), od = get_u32(c->buf + 12), ad = get_u32(c->buf + 16),
                   ms = get_u32(c->buf + 20);
    if (ver != FR_ENV_CMD_VERSION)
        return failed(c, FR_ERR_FORMAT, what, 0, "protocol version %" PRIu32 ", this flowrl speaks %u", ver,
                      FR_ENV_CMD_VERSION);
    if (od < 1 || od > MAX_WIDTH || ad < 1 || ad > MAX_WIDTH || ms < 1 || ms > (1u << 30))
        return failed(c, FR_ERR_FORMAT, what, 0, "obs_dim %" PRIu32 ", action_dim %" PRIu32 ", max_steps %" PRIu32
                      ", expected 1..%d, 1..%d, 1..2^30", od, ad, ms, MAX_WIDTH, MAX_WIDTH);
    e->obs_dim = (int)od;
    e->action_dim = (int)ad;
    e->max_steps = (int)ms;
    c->low = fr_malloc(4u * ad);
    c->high = fr_malloc(4u * ad);
    if (!c->low || !c->high) return FR_ERR_NOMEM;
    size_t got;
    FR_TRY(grow(c, 8u * ad));
    fr_rcio io = fr_rcproc_read(&c->proc, c->buf, 8u * ad, fr_rcproc_now() + c->o.timeout_s, &got);
    if (io != FR_RCIO_OK) return io_failed(c, what, io, 0, 24 + got, 24 + 8u * ad);
    memcpy(c->low, c->buf, 4u * ad);
    memcpy(c->high, c->buf + 4u * ad, 4u * ad);
    for (uint32_t i = 0; i < ad; i++)
        if (!(c->low[i] <= c->high[i]) || isnan(c->low[i]) || isnan(c->high[i]))
            return failed(c, FR_ERR_FORMAT, what, 0, "action bounds [%g, %g] of element %" PRIu32 " are not an interval",
                          (double)c->low[i], (double)c->high[i], i);
    return no_extra(c, what);
}

static fr_status create(const void *ov, fr_env *e)
{
    const fr_env_cmd_opts *o = ov;
    if (!o->program[0])
        return fr_fail(FR_ERR_ARG, "environment program: empty command (expected --env cmd:PROGRAM)");
    cmd_env *c = fr_calloc(1, sizeof *c);
    if (!c) return FR_ERR_NOMEM;
    c->o = *o;
    c->proc.pid = -1;
    e->impl = c;
    e->ctl = &k_ops;
    e->state_dim = 2;
    e->n_actions = 0;
    e->exit_action = -1;
    const int err = fr_rcproc_spawn_in(&c->proc, o->cwd, o->program);
    fr_status s = err ? fr_fail(FR_ERR_IO, "environment program `%.200s`: cannot start /bin/sh: %s", o->program,
                                strerror(err))
                      : hello(e, c);
    if (s != FR_OK) {
        close_env(e);
        free(c);
        e->impl = NULL;
        e->ctl = NULL;
        return s;
    }
    snprintf(e->desc, sizeof e->desc, "cmd:%.60s (obs %d, actions %d, T=%d)", o->program, e->obs_dim, e->action_dim,
             e->max_steps);
    return FR_OK;
}

const fr_env_class fr_env_cmd = {
    "cmd",
    "an environment program over a pipe: --env cmd:PROGRAM (docs/env-protocol.md; tools/gym_env.py for Gymnasium)",
    "docs/env-protocol.md",
    "control",
    k_rows,
    (int)(sizeof k_rows / sizeof k_rows[0]),
    sizeof(fr_env_cmd_opts),
    create,
};

fr_status fr_env_cmd_bounds(const fr_env *e, const float **low, const float **high)
{
    if (!e || e->cls != &fr_env_cmd || !ce(e))
        return fr_fail(FR_ERR_ARG, "environment %s is not a program (--env cmd:PROGRAM)", e ? e->desc : "(null)");
    *low = ce(e)->low;
    *high = ce(e)->high;
    return FR_OK;
}
