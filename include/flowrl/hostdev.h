/* FR_HOSTDEV: one definition of every per-element formula, compiled by both the C
 * compiler (ref, opt) and nvcc (cuda). docs/design.md §1.2: one formula, three backends. */
#ifndef FLOWRL_HOSTDEV_H
#define FLOWRL_HOSTDEV_H

#if defined(__CUDACC__)
#define FR_HOSTDEV __host__ __device__
#else
#define FR_HOSTDEV
#endif

#endif
