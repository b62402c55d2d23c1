/* The emulator's launch (flowrl/kernel.h): a kernel's phases run block by block, each phase
 * for every thread of the block before the next one (what __syncthreads() guarantees on the
 * device), with the device memory open for the launch only. Shared memory and registers are
 * filled with 0xff bytes (NaN floats) first, so a body that reads what no phase wrote gives
 * wrong bits here as it could on the device, instead of a lucky zero.
 *
 * FLOWRL_EMU_ORDER=reverse runs blocks and the threads of each phase last to first: a kernel
 * whose threads race (one reads what another writes in the same phase) gives other bits in
 * the other order, which the default order alone could hide. make check runs the golden suite
 * both ways. */
#include "emu/emu_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/kernel.h"

static atomic_uint_fast64_t g_launches;

uint64_t fr_emu_launches(void) { return (uint64_t)atomic_load(&g_launches); }

/* FLOWRL_EMU_ORDER=reverse, read at each launch (a test may set it between launches). */
static int reverse_order(void)
{
    const char *e = getenv("FLOWRL_EMU_ORDER");
    return e && strcmp(e, "reverse") == 0;
}

/* Index i of n in the launch's order. */
static uint32_t nth(uint32_t i, uint32_t n, int rev) { return rev ? n - 1 - i : i; }

static void run_phase(fr_emu_phase ph, fr_kidx *k, const void *args, void *smem, unsigned char *regs, size_t regs_bytes)
{
    const fr_dim3 bd = k->bdim;
    const int rev = reverse_order();
    for (uint32_t z = 0; z < bd.z; z++)
        for (uint32_t y = 0; y < bd.y; y++)
            for (uint32_t x = 0; x < bd.x; x++) {
                k->thread = fr_dim3_make(nth(x, bd.x, rev), nth(y, bd.y, rev), nth(z, bd.z, rev));
                const size_t t = ((size_t)k->thread.z * bd.y + k->thread.y) * bd.x + k->thread.x;
                ph(k, args, smem, regs ? regs + t * regs_bytes : NULL);
            }
}

void fr_emu_launch(const char *kernel, fr_dim3 grid, fr_dim3 block, size_t smem_bytes, size_t regs_bytes,
                   int64_t n_iter, fr_emu_phase init, fr_emu_phase load, fr_emu_phase compute, fr_emu_phase store,
                   const void *args)
{
    const size_t n_threads = (size_t)block.x * block.y * block.z;
    if (!init || n_threads == 0 || n_threads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0) {
        fprintf(stderr, "flowrl: cuda-emu: kernel %s launched with grid %ux%ux%u, block %ux%ux%u (1..1024 threads)\n",
                kernel, grid.x, grid.y, grid.z, block.x, block.y, block.z);
        abort();
    }
    unsigned char *smem = smem_bytes ? (unsigned char *)malloc(smem_bytes) : NULL;
    unsigned char *regs = regs_bytes ? (unsigned char *)malloc(n_threads * regs_bytes) : NULL;
    if ((smem_bytes && !smem) || (regs_bytes && !regs)) {
        fprintf(stderr, "flowrl: cuda-emu: out of host memory for kernel %s's shared memory / registers\n", kernel);
        abort();
    }
    atomic_fetch_add(&g_launches, 1);
    fr_emu_open();
    fr_kidx k;
    memset(&k, 0, sizeof k);
    k.grid = grid;
    k.bdim = block;
    const int rev = reverse_order();
    for (uint32_t bz = 0; bz < grid.z; bz++)
        for (uint32_t by = 0; by < grid.y; by++)
            for (uint32_t bx = 0; bx < grid.x; bx++) {
                k.block = fr_dim3_make(nth(bx, grid.x, rev), nth(by, grid.y, rev), nth(bz, grid.z, rev));
                k.iter = 0;
                if (smem) memset(smem, 0xff, smem_bytes);
                if (regs) memset(regs, 0xff, n_threads * regs_bytes);
                run_phase(init, &k, args, smem, regs, regs_bytes);
                for (k.iter = 0; k.iter < n_iter; k.iter++) {
                    run_phase(load, &k, args, smem, regs, regs_bytes);
                    run_phase(compute, &k, args, smem, regs, regs_bytes);
                }
                if (store) run_phase(store, &k, args, smem, regs, regs_bytes);
            }
    fr_emu_close();
    free(smem);
    free(regs);
}
