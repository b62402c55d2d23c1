/* Bias add and its gradient (the batch-reduction order of flowrl/reduce.h). */
#include "ref/ref_internal.h"

void fr_ref_bias_add(int64_t M, int64_t N,
                     float *y,       // (M,N)
                     const float *b) // (N,)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) y[i * N + j] = y[i * N + j] + b[j];
}

/* db[j] = init + dy[0,j] + dy[1,j] + ... (rows in order, plain adds), init = 0 or the
 * old db[j]. */
void fr_ref_bias_grad(int64_t M, int64_t N,
                      const float *dy, // (M,N)
                      float *db,       // (N,)
                      int accumulate)
{
    if (!accumulate)
        for (int64_t j = 0; j < N; j++) db[j] = 0.0f;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) db[j] = db[j] + dy[i * N + j];
}
