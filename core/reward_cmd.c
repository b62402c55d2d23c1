/* External reward programs: the request/response protocol of docs/reward-protocol.md over
 * the pipes of core/reward_cmd_proc.c. */
#include "flowrl/reward_cmd.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/reward_cmd_proc.h"
#include "core/reward_cmd_reply.h"

#define REQ_HEADER 36u  /* "FRRQ", version, batch, B, D, C, H, W, payload bytes */
#define RESP_HEADER FR_RC_RESP_HEADER

struct fr_reward_cmd {
    char *program;
    fr_rcproc proc;
    double timeout_s;
    int C, H, W;
    int failed;          /* a program failure happened; only close remains */
    char first_error[1024];
    unsigned char *req;  /* request scratch */
    size_t req_cap;
    unsigned char *resp; /* response scratch: scores land here before the caller's array */
    size_t resp_cap;
};

/* The text default is FR_REWARD_CMD_TIMEOUT_S (60 s): long enough for a model-based
 * reward's first batch (loading weights), short enough that a hung program is noticed. */
const fr_opt fr_reward_cmd_rows[] = {
    FR_OPT_F64(fr_reward_cmd_opts, timeout_s, "reward_timeout", "60", 0.001, 1e6,
               "seconds a reward program (--reward cmd:PROGRAM) may take per batch", FR_OPT_RESUMABLE),
};
const int fr_reward_cmd_nrows = 1;

const char *fr_reward_cmd_program(const char *spec)
{
    size_t n = strlen(FR_REWARD_CMD_PREFIX);
    if (!spec || strncmp(spec, FR_REWARD_CMD_PREFIX, n) != 0) return NULL;
    return spec + n;
}

int fr_reward_cmd_pid(const fr_reward_cmd *rc)
{
    return rc && rc->proc.pid > 0 ? rc->proc.pid : -1;
}

static double close_wait_s(const fr_reward_cmd *rc)
{
    return rc->timeout_s < FR_REWARD_CMD_CLOSE_GRACE_S ? rc->timeout_s
                                                       : FR_REWARD_CMD_CLOSE_GRACE_S;
}

/* A failure of the program in batch `batch`: stop it (waiting up to wait_s for an exit
 * already under way, so its status can be reported), remember the message, and return
 * `s` with "reward program `P`, batch N: <what>; it <how it ended>". */
static fr_status program_failed(fr_reward_cmd *rc, fr_status s, uint32_t batch, double wait_s,
                                const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
static fr_status program_failed(fr_reward_cmd *rc, fr_status s, uint32_t batch, double wait_s,
                                const char *fmt, ...)
{
    char what[512], how[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    fr_rcproc_stop(&rc->proc, wait_s, how, sizeof how);
    rc->failed = 1;
    snprintf(rc->first_error, sizeof rc->first_error,
             "reward program `%.200s`, batch %u: %s; it %s", rc->program, batch, what, how);
    return fr_fail(s, "%s", rc->first_error);
}

fr_status fr_reward_cmd_open(const char *program, const fr_reward_cmd_opts *opts,
                             fr_reward_cmd **out)
{
    *out = NULL;
    if (!program || !*program)
        return fr_fail(FR_ERR_ARG, "reward program: empty command (expected --reward cmd:PROGRAM)");
    fr_reward_cmd_opts o = {0};
    if (opts) o = *opts;
    if (o.C < 0 || o.H < 0 || o.W < 0 || ((o.C > 0) != (o.H > 0)) || ((o.C > 0) != (o.W > 0)))
        return fr_fail(FR_ERR_ARG, "reward program `%.200s`: image dims (%d, %d, %d) must be all "
                       "positive or all 0", program, o.C, o.H, o.W);
    fr_reward_cmd *rc = fr_calloc(1, sizeof *rc);
    if (!rc) return FR_ERR_NOMEM;
    size_t n = strlen(program) + 1;
    rc->program = fr_malloc(n);
    if (!rc->program) {
        free(rc);
        return FR_ERR_NOMEM;
    }
    memcpy(rc->program, program, n);
    rc->timeout_s = o.timeout_s > 0 ? o.timeout_s : FR_REWARD_CMD_TIMEOUT_S;
    rc->C = o.C;
    rc->H = o.H;
    rc->W = o.W;
    int err = fr_rcproc_spawn_in(&rc->proc, o.cwd, program);
    if (err != 0) {
        fr_status s = fr_fail(FR_ERR_IO, "reward program `%.200s`: cannot start /bin/sh: %s",
                              program, strerror(err));
        free(rc->program);
        free(rc);
        return s;
    }
    *out = rc;
    return FR_OK;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static fr_status grow(unsigned char **buf, size_t *cap, size_t n)
{
    if (n <= *cap) return FR_OK;
    unsigned char *b = fr_malloc(n);
    if (!b) return FR_ERR_NOMEM;
    free(*buf);
    *buf = b;
    *cap = n;
    return FR_OK;
}

/* Request (docs/reward-protocol.md §2): header, then prompt ids, samples, texts. */
static fr_status build_request(fr_reward_cmd *rc, uint32_t version, uint32_t batch, int B, int D,
                               const int *prompt_ids, const char *const *texts, const float *x,
                               size_t *len)
{
    uint64_t payload = (uint64_t)B * 4u + (uint64_t)B * (uint64_t)D * 4u;
    for (int b = 0; b < B; b++) payload += 4u + (texts && texts[b] ? strlen(texts[b]) : 0);
    if (payload > UINT32_MAX - REQ_HEADER)
        return fr_fail(FR_ERR_ARG, "reward program `%.200s`, batch %u: request of %llu bytes "
                       "exceeds the protocol's 4 GiB limit", rc->program, batch,
                       (unsigned long long)payload);
    *len = REQ_HEADER + (size_t)payload;
    FR_TRY(grow(&rc->req, &rc->req_cap, *len));
    unsigned char *p = rc->req;
    memcpy(p, "FRRQ", 4);
    const uint32_t head[8] = {version, batch, (uint32_t)B, (uint32_t)D,
                              (uint32_t)rc->C, (uint32_t)rc->H, (uint32_t)rc->W,
                              (uint32_t)payload};
    for (int i = 0; i < 8; i++) put_u32(p + 4 + 4 * i, head[i]);
    p += REQ_HEADER;
    for (int b = 0; b < B; b++, p += 4) put_u32(p, (uint32_t)(int32_t)prompt_ids[b]);
    for (size_t i = 0; i < (size_t)B * (size_t)D; i++, p += 4) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        put_u32(p, u);
    }
    for (int b = 0; b < B; b++) {
        size_t n = texts && texts[b] ? strlen(texts[b]) : 0;
        put_u32(p, (uint32_t)n);
        if (n) memcpy(p + 4, texts[b], n);
        p += 4 + n;
    }
    return FR_OK;
}

/* A short or failed pipe operation, as the program's failure: `sending` tells the request
 * (done of want bytes taken) from the answer (done of want bytes received). */
static fr_status io_failed(fr_reward_cmd *rc, uint32_t batch, fr_rcio io, int sending,
                           size_t done, size_t want)
{
    switch (io) {
    case FR_RCIO_TIMEOUT:
        if (sending)
            return program_failed(rc, FR_ERR_IO, batch, 0, "did not read its request within "
                                  "the %g s timeout (%zu of %zu bytes taken)", rc->timeout_s,
                                  done, want);
        return program_failed(rc, FR_ERR_IO, batch, 0, "no answer within the %g s timeout "
                              "(%zu of %zu bytes received)", rc->timeout_s, done, want);
    case FR_RCIO_CLOSED:
        if (sending)
            return program_failed(rc, FR_ERR_IO, batch, close_wait_s(rc), "stopped reading "
                                  "its request (%zu of %zu bytes taken)", done, want);
        if (done > 0)
            return program_failed(rc, FR_ERR_FORMAT, batch, close_wait_s(rc), "answer cut "
                                  "short: %zu of %zu bytes, then end of output", done, want);
        return program_failed(rc, FR_ERR_IO, batch, close_wait_s(rc), "ended its output "
                              "without answering");
    case FR_RCIO_EARLY: {
        unsigned char b[16];
        char shown[80];
        size_t n = fr_rcproc_pending(&rc->proc, b, sizeof b);
        fr_rc_show_bytes(b, n, shown, sizeof shown);
        return program_failed(rc, FR_ERR_FORMAT, batch, 0, "wrote %s to stdout before reading "
                              "its whole request (logs belong on stderr)", shown);
    }
    default:
        return program_failed(rc, FR_ERR_IO, batch, 0, "pipe error while %s: %s",
                              sending ? "sending the request" : "reading the answer",
                              strerror(errno));
    }
}

/* One batch: version 1 (scores) or FR_REWARD_CMD_VERSION_GRAD (scores and gradients,
 * docs/reward-protocol.md §6); grad (B, D) is NULL for version 1. */
static fr_status exchange(fr_reward_cmd *rc, uint32_t version, uint32_t batch_index, int B, int D,
                          const int *prompt_ids, const char *const *prompt_texts, const float *x, float *scores,
                          float *grad)
{
    if (!rc) return fr_fail(FR_ERR_ARG, "reward program: NULL handle");
    if (rc->failed)
        return fr_fail(FR_ERR_IO, "reward program `%.200s`, batch %u: not scored, the program "
                       "was stopped after an earlier error: %s", rc->program, batch_index,
                       rc->first_error);
    if (B <= 0 || D <= 0 || !prompt_ids || !x || !scores || (version != FR_REWARD_CMD_VERSION && !grad))
        return fr_fail(FR_ERR_ARG, "reward program `%.200s`, batch %u: bad arguments (B %d, "
                       "D %d)", rc->program, batch_index, B, D);
    if (rc->C > 0 && (int64_t)rc->C * rc->H * rc->W != D)
        return fr_fail(FR_ERR_ARG, "reward program `%.200s`, batch %u: D = %d but the image "
                       "dims are (%d, %d, %d)", rc->program, batch_index, D, rc->C, rc->H, rc->W);
    for (size_t i = 0; i < (size_t)B * (size_t)D; i++)
        if (!isfinite(x[i]))
            return fr_fail(FR_ERR_NUMERIC, "reward program `%.200s`, batch %u: sample %zu "
                           "element %zu is %g; not sent", rc->program, batch_index,
                           i / (size_t)D, i % (size_t)D, (double)x[i]);

    const int with_grad = version == FR_REWARD_CMD_VERSION_GRAD;
    size_t len = 0;
    FR_TRY(build_request(rc, version, batch_index, B, D, prompt_ids, prompt_texts, x, &len));
    const size_t n_floats = (size_t)B * (with_grad ? 1u + (size_t)D : 1u);
    size_t want = RESP_HEADER + 4u * n_floats;
    FR_TRY(grow(&rc->resp, &rc->resp_cap, want));

    double deadline = fr_rcproc_now() + rc->timeout_s;
    size_t got;
    fr_rcio io = fr_rcproc_write(&rc->proc, rc->req, len, deadline, &got);
    if (io != FR_RCIO_OK) return io_failed(rc, batch_index, io, 1, got, len);

    io = fr_rcproc_read(&rc->proc, rc->resp, RESP_HEADER, deadline, &got);
    if (io == FR_RCIO_CLOSED && got == 0 && with_grad)
        return program_failed(rc, FR_ERR_IO, batch_index, close_wait_s(rc), "ended its output without answering a "
                              "gradient request (protocol version 2, docs/reward-protocol.md §6: a version-1 program "
                              "gives scores only)");
    if (io != FR_RCIO_OK) return io_failed(rc, batch_index, io, 0, got, want);
    char why[512];
    fr_status st = fr_rc_reply_header_magic(rc->resp, with_grad ? "FRRG" : "FRRS", batch_index, B, why, sizeof why);
    if (st != FR_OK) return program_failed(rc, st, batch_index, 0, "%s", why);
    io = fr_rcproc_read(&rc->proc, rc->resp + RESP_HEADER, want - RESP_HEADER, deadline, &got);
    if (io != FR_RCIO_OK)
        return io_failed(rc, batch_index, io, 0, RESP_HEADER + got, want);
    unsigned char extra[16];
    size_t n_extra = fr_rcproc_pending(&rc->proc, extra, sizeof extra);
    if (n_extra > 0) {
        char shown[80];
        fr_rc_show_bytes(extra, n_extra, shown, sizeof shown);
        return program_failed(rc, FR_ERR_FORMAT, batch_index, 0, "wrote more than its answer: "
                              "%s follows the %d scores%s (logs belong on stderr)", shown, B,
                              with_grad ? " and gradients" : "");
    }
    if (with_grad) {
        st = fr_rc_reply_grads(rc->resp + RESP_HEADER + 4u * (size_t)B, B, D, prompt_ids, grad, why, sizeof why);
        if (st != FR_OK) return program_failed(rc, st, batch_index, 0, "%s", why);
    }
    st = fr_rc_reply_scores(rc->resp + RESP_HEADER, B, prompt_ids, scores, why, sizeof why);
    if (st != FR_OK) return program_failed(rc, st, batch_index, 0, "%s", why);
    return FR_OK;
}

fr_status fr_reward_cmd_score(fr_reward_cmd *rc, uint32_t batch_index, int B, int D,
                              const int *prompt_ids, const char *const *prompt_texts,
                              const float *x, float *scores)
{
    return exchange(rc, FR_REWARD_CMD_VERSION, batch_index, B, D, prompt_ids, prompt_texts, x, scores, NULL);
}

fr_status fr_reward_cmd_score_grad(fr_reward_cmd *rc, uint32_t batch_index, int B, int D, const int *prompt_ids,
                                   const char *const *prompt_texts, const float *x, float *scores, float *grad)
{
    return exchange(rc, FR_REWARD_CMD_VERSION_GRAD, batch_index, B, D, prompt_ids, prompt_texts, x, scores, grad);
}

/* The prompt texts of task t, then a version-1 (grad NULL) or gradient exchange. */
static fr_status score_task(fr_reward_cmd *rc, const fr_task *t, uint32_t batch_index, int B, const int *prompt_ids,
                            const float *x, float *scores, float *grad)
{
    if (!rc || !t || B <= 0 || !prompt_ids)
        return fr_fail(FR_ERR_ARG, "reward program: bad arguments for batch %u", batch_index);
    if (t->C != rc->C || t->H != rc->H || t->W != rc->W)
        return fr_fail(FR_ERR_ARG, "reward program `%.200s`: task %s has dims (%d, %d, %d) but "
                       "the program was opened with (%d, %d, %d)", rc->program, t->name, t->C,
                       t->H, t->W, rc->C, rc->H, rc->W);
    char *text = fr_malloc((size_t)B * FR_PROMPT_TEXT_MAX);
    const char **texts = fr_malloc((size_t)B * sizeof *texts);
    fr_status s = text && texts ? FR_OK : FR_ERR_NOMEM;
    for (int b = 0; b < B && s == FR_OK; b++) {
        texts[b] = text + (size_t)b * FR_PROMPT_TEXT_MAX;
        s = t->prompt_text(prompt_ids[b], text + (size_t)b * FR_PROMPT_TEXT_MAX,
                           FR_PROMPT_TEXT_MAX);
    }
    if (s == FR_OK)
        s = exchange(rc, grad ? FR_REWARD_CMD_VERSION_GRAD : FR_REWARD_CMD_VERSION, batch_index, B, t->D, prompt_ids,
                     texts, x, scores, grad);
    free(texts);
    free(text);
    return s;
}

fr_status fr_reward_cmd_score_task(fr_reward_cmd *rc, const fr_task *t, uint32_t batch_index,
                                   int B, const int *prompt_ids, const float *x, float *scores)
{
    return score_task(rc, t, batch_index, B, prompt_ids, x, scores, NULL);
}

fr_status fr_reward_cmd_score_grad_task(fr_reward_cmd *rc, const fr_task *t, uint32_t batch_index, int B,
                                        const int *prompt_ids, const float *x, float *scores, float *grad)
{
    if (!grad) return fr_fail(FR_ERR_ARG, "reward program: no gradient buffer for batch %u", batch_index);
    return score_task(rc, t, batch_index, B, prompt_ids, x, scores, grad);
}

fr_status fr_reward_cmd_close(fr_reward_cmd *rc)
{
    if (!rc) return FR_OK;
    fr_status s = FR_OK;
    if (!rc->failed) {
        char how[256];
        if (!fr_rcproc_stop(&rc->proc, close_wait_s(rc), how, sizeof how))
            s = fr_fail(FR_ERR_IO, "reward program `%.200s` at close: it %s", rc->program, how);
    } else {
        char how[256];
        fr_rcproc_stop(&rc->proc, 0, how, sizeof how); /* already stopped: closes nothing */
    }
    free(rc->req);
    free(rc->resp);
    free(rc->program);
    free(rc);
    return s;
}
