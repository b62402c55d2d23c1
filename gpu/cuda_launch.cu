/* Launch errors and the first failure of the process (flowrl/cuda.h "Errors"). FR_LAUNCH
 * (flowrl/kernel.h) calls fr_cuda_after_launch after every kernel launch; op entries return
 * nothing, so what goes wrong is kept here and returned by the next memory call. */
#include <pthread.h>
#include <stdio.h>

#include "gpu/cuda_internal.h"

extern "C" {
#include "flowrl/kernel.h"
}

int fr_cuda_sync_each;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static fr_status g_status = FR_OK;
static char g_msg[512];

void fr_cuda_note_text(fr_status s, const char *what, const char *text)
{
    pthread_mutex_lock(&g_lock);
    if (g_status == FR_OK) {
        g_status = s;
        snprintf(g_msg, sizeof g_msg, "cuda: %s: %s", what, text);
    }
    pthread_mutex_unlock(&g_lock);
}

void fr_cuda_note(const char *what, cudaError_t e)
{
    fr_cuda_note_text(e == cudaErrorMemoryAllocation ? FR_ERR_NOMEM : FR_ERR_IO, what,
                      cudaGetErrorString(e));
}

fr_status fr_cuda_first_error(void)
{
    pthread_mutex_lock(&g_lock);
    fr_status s = g_status;
    char msg[sizeof g_msg];
    snprintf(msg, sizeof msg, "%s", g_msg);
    pthread_mutex_unlock(&g_lock);
    return s == FR_OK ? FR_OK : fr_fail(s, "%s", msg);
}

fr_status fr_cuda_fail(const char *what, cudaError_t e)
{
    fr_cuda_note(what, e);
    return fr_cuda_first_error();
}

extern "C" void fr_cuda_after_launch(const char *kernel)
{
    char what[160];
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) {
        snprintf(what, sizeof what, "launch of kernel %s", kernel);
        fr_cuda_note(what, e);
        return;
    }
    if (fr_cuda_sync_each && (e = cudaDeviceSynchronize()) != cudaSuccess) {
        snprintf(what, sizeof what, "kernel %s (FLOWRL_CUDA_SYNC=1)", kernel);
        fr_cuda_note(what, e);
    }
}
