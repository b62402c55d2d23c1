/* What core/capi.c and core/capi_golden.c share behind flowrl/capi.h's opaque handles. */
#ifndef FLOWRL_CAPI_INTERNAL_H
#define FLOWRL_CAPI_INTERNAL_H

#include "flowrl/backend.h"
#include "flowrl/capi.h"
#include "flowrl/safetensors.h"

struct flowrl_backend {
    fr_backend be;
    char line[160];
};

/* A tensor set (core/capi_golden.c; the GFlowNet losses read and write one, core/capi_gfn.c). */
struct flowrl_tensors {
    fr_st_file f;
};

/* The backend of a call: the caller's, or `ref` opened into *ref for NULL. */
fr_status fr_capi_backend(flowrl_backend *b, fr_backend *ref, fr_backend **be);

#endif
