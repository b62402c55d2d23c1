/* Inside cuda-emu (emu/): the arena and its guard (emu_mem.c), shared by the launcher and the
 * table's memory entries. */
#ifndef FLOWRL_EMU_INTERNAL_H
#define FLOWRL_EMU_INTERNAL_H

#include <stddef.h>

#include "flowrl/emu.h"

/* Opens the device memory to the host (nested: the outermost close shuts it again). */
void fr_emu_open(void);
void fr_emu_close(void);

void *fr_emu_mem_alloc(size_t bytes);
void fr_emu_mem_free(void *p);
/* 1 if [p, p + bytes) lies inside one live device allocation. */
int fr_emu_is_device_range(const void *p, size_t bytes);

#endif
