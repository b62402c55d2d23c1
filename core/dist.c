/* Many processes over MPI (flowrl/dist.h): rank, size, the first-error agreement and the
 * row gather of the run loop. Without MPI (or outside mpirun) one rank and no-ops. */
#include "flowrl/dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"

#if FR_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_mpi = 0;
static uint64_t g_recv_bytes = 0;
static double g_comm_seconds = 0.0;
/* a failed agreement: its error, returned by every later call */
static int g_failed = 0;
static fr_status g_fail_code = FR_OK;
static char g_fail_msg[1024];

int fr_dist_built(void) { return FR_HAVE_MPI; }
int fr_dist_rank(void) { return g_rank; }
int fr_dist_size(void) { return g_size; }
int fr_dist_joined(void) { return g_mpi; }
uint64_t fr_dist_recv_bytes(void) { return g_recv_bytes; }
double fr_dist_comm_seconds(void) { return g_comm_seconds; }

#if FR_HAVE_MPI
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#endif

/* The size a launcher announces in the environment (0: not started by one). */
static int launcher_size(void)
{
    const char *v[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        const char *s = getenv(v[i]);
        if (s && atoi(s) > 0) return atoi(s);
    }
    return getenv("PMIX_RANK") ? 1 : 0;
}

fr_status fr_dist_init(void)
{
    const int launched = launcher_size();
#if FR_HAVE_MPI
    if (launched > 0 && !g_mpi) {
        int inited = 0;
        MPI_Initialized(&inited);
        if (!inited && MPI_Init(NULL, NULL) != MPI_SUCCESS) return fr_fail(FR_ERR_IO, "MPI_Init failed");
        MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
        MPI_Comm_size(MPI_COMM_WORLD, &g_size);
        g_mpi = 1;
    }
    return FR_OK;
#else
    if (launched > 1)
        return fr_fail(FR_ERR_UNSUPPORTED, "started by mpirun with %d ranks, but this flowrl was built without MPI "
                                           "(./configure found no Open MPI): every rank would run the whole job",
                       launched);
    return FR_OK;
#endif
}

void fr_dist_finalize(void)
{
#if FR_HAVE_MPI
    if (g_mpi) MPI_Finalize();
#endif
    g_mpi = 0;
    g_rank = 0;
    g_size = 1;
}

void fr_dist_block(int64_t n, int64_t unit, int k, int R, int64_t *lo, int64_t *hi)
{
    if (unit < 1 || n % unit != 0) unit = 1;
    const int64_t u = n / unit, q = u / R, rem = u % R;
    const int64_t a = (int64_t)k * q + (k < rem ? k : rem);
    *lo = a * unit;
    *hi = (a + q + (k < rem)) * unit;
}

fr_status fr_dist_agree(fr_status s)
{
    if (g_size == 1) return s;
    if (g_failed) return fr_fail(g_fail_code, "%s", g_fail_msg);
#if FR_HAVE_MPI
    int mine = s == FR_OK ? g_size : g_rank, first = g_size;
    const double t0 = now();
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    g_comm_seconds += now() - t0;
    if (first == g_size) return FR_OK;
    struct {
        int code;
        char msg[sizeof g_fail_msg];
    } m;
    memset(&m, 0, sizeof m);
    if (g_rank == first) {
        m.code = (int)s;
        snprintf(m.msg, sizeof m.msg, "%s (rank %d of %d)", fr_last_error(), g_rank, g_size);
    }
    MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, first, MPI_COMM_WORLD);
    g_failed = 1;
    g_fail_code = (fr_status)m.code;
    memcpy(g_fail_msg, m.msg, sizeof g_fail_msg);
    g_fail_msg[sizeof g_fail_msg - 1] = '\0';
    return fr_fail(g_fail_code, "%s", g_fail_msg);
#else
    return s;
#endif
}

fr_status fr_dist_gather_rows(fr_status s, void *buf, int64_t outer, int64_t n, size_t row_bytes, int64_t unit)
{
    FR_TRY(fr_dist_agree(s));
    if (g_size == 1 || outer == 0 || n == 0 || row_bytes == 0) return FR_OK;
#if FR_HAVE_MPI
    const int R = g_size;
    int *counts = fr_calloc((size_t)R, sizeof *counts), *displs = fr_calloc((size_t)R, sizeof *displs);
    int64_t lo, hi;
    fr_dist_block(n, unit, g_rank, R, &lo, &hi);
    const int64_t mine = hi - lo;
    char *send = fr_malloc((size_t)(outer * (mine ? mine : 1)) * row_bytes);
    char *recv = fr_malloc((size_t)(outer * n) * row_bytes);
    fr_status st = counts && displs && send && recv ? FR_OK : FR_ERR_NOMEM;
    if (st == FR_OK && outer * n > INT32_MAX) st = fr_fail(FR_ERR_NOMEM, "dist: %lld rows exceed an MPI count", (long long)(outer * n));
    st = fr_dist_agree(st);
    if (st == FR_OK) {
        MPI_Datatype row;
        MPI_Type_contiguous((int)row_bytes, MPI_BYTE, &row);
        MPI_Type_commit(&row);
        char *b = buf;
        /* pack: this rank's rows of every slice; receive: rank by rank, slice-major within a rank */
        for (int64_t o = 0; o < outer; o++)
            memcpy(send + (size_t)(o * mine) * row_bytes, b + (size_t)(o * n + lo) * row_bytes, (size_t)mine * row_bytes);
        int64_t at = 0;
        for (int k = 0; k < R; k++) {
            int64_t l, h;
            fr_dist_block(n, unit, k, R, &l, &h);
            counts[k] = (int)(outer * (h - l));
            displs[k] = (int)at;
            at += outer * (h - l);
        }
        const double t0 = now();
        MPI_Allgatherv(send, (int)(outer * mine), row, recv, counts, displs, row, MPI_COMM_WORLD);
        g_comm_seconds += now() - t0;
        MPI_Type_free(&row);
        for (int k = 0; k < R; k++) {
            int64_t l, h;
            fr_dist_block(n, unit, k, R, &l, &h);
            if (k == g_rank) continue;
            for (int64_t o = 0; o < outer; o++)
                memcpy(b + (size_t)(o * n + l) * row_bytes, recv + (size_t)(displs[k] + o * (h - l)) * row_bytes,
                       (size_t)(h - l) * row_bytes);
        }
        g_recv_bytes += (uint64_t)(outer * (n - mine)) * row_bytes;
    }
    free(counts);
    free(displs);
    free(send);
    free(recv);
    return st;
#else
    return FR_OK;
#endif
}

fr_status fr_dist_sum_i64(fr_status s, int64_t *v)
{
    FR_TRY(fr_dist_agree(s));
#if FR_HAVE_MPI
    if (g_size > 1) {
        int64_t in = *v;
        MPI_Allreduce(&in, v, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    }
#endif
    return FR_OK;
}

fr_status fr_dist_max_int(fr_status s, int *flag)
{
    FR_TRY(fr_dist_agree(s));
#if FR_HAVE_MPI
    if (g_size > 1) {
        int in = *flag;
        MPI_Allreduce(&in, flag, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    }
#endif
    return FR_OK;
}

fr_status fr_dist_bcast(fr_status s, void *buf, size_t bytes, int root)
{
    FR_TRY(fr_dist_agree(s));
#if FR_HAVE_MPI
    if (g_size > 1) {
        if (bytes > INT32_MAX) return fr_fail(FR_ERR_NOMEM, "dist: a broadcast of %zu bytes exceeds an MPI count", bytes);
        const double t0 = now();
        MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD);
        g_comm_seconds += now() - t0;
        if (g_rank != root) g_recv_bytes += bytes;
    }
#else
    (void)buf, (void)bytes, (void)root;
#endif
    return FR_OK;
}

void fr_dist_count(uint64_t recv_bytes, double seconds)
{
    g_recv_bytes += recv_bytes;
    g_comm_seconds += seconds;
}
