/* The reference backend's op table (ref/ref_backend.c): the registry starts every backend
 * from it (core/backend.c), and tests compare against it. */
#ifndef FLOWRL_REF_BACKEND_H
#define FLOWRL_REF_BACKEND_H

#include "flowrl/ops.h"

/* Fills every entry of *ops with the ref implementation. */
void fr_ref_fill(fr_ops *ops);

#endif
