/* cuda-emu (emu/): the CUDA backend's kernels (kern/) run on the CPU over the same grids and
 * blocks, in a device memory the host cannot touch. Its memory is one reserved arena that is
 * PROT_NONE except inside a launch or a copy; a host read or write of it stops the process
 * with a message naming the offset ("host code touched cuda-emu device memory"). CI proves
 * with it that an epoch keeps its tensors in backend memory and that the kernels' arithmetic
 * is ref's, bit for bit. */
#ifndef FLOWRL_EMU_H
#define FLOWRL_EMU_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/ops.h"
#include "flowrl/status.h"

/* The registry's init (core/backend.c): memory entries and every op entry from kern/. */
fr_status fr_emu_init(fr_ops *ops);

/* 1 if p lies in the device arena (allocated or not). */
int fr_emu_is_device(const void *p);
/* Bytes allocated now, and the arena's high-water mark. */
size_t fr_emu_bytes_in_use(void);
/* Kernel launches since the process started (tests: an op really ran on the emulator). */
uint64_t fr_emu_launches(void);

#endif
