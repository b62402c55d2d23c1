/* Element-wise difference of two tensors for `flowrl audit` (include/flowrl/runcompare.h). */
#include <math.h>
#include <string.h>

#include "flowrl/runcompare.h"

/* IEEE binary16 -> double (exact). */
static double half_to_double(uint16_t h)
{
    int e = (h >> 10) & 0x1F, m = h & 0x3FF;
    double s = h & 0x8000 ? -1.0 : 1.0;
    if (e == 0x1F) return m ? NAN : s * INFINITY;
    if (e == 0) return s * ldexp((double)m, -24);
    return s * ldexp((double)(m | 0x400), e - 25);
}

/* The monotone unsigned image of a float's bits (width w bits, sign bit at w-1):
 * ulp distance = |key(a) - key(b)|; -0 and +0 are adjacent. */
static uint64_t ord_key(uint64_t bits, int w)
{
    uint64_t sign = (uint64_t)1 << (w - 1);
    uint64_t mask = w == 64 ? ~(uint64_t)0 : ((uint64_t)1 << w) - 1;
    return bits & sign ? (~bits) & mask : bits | sign;
}

typedef struct {
    double v;
    uint64_t bits;
    int nan;
} elem;

static elem load(const fr_tensor *t, int64_t i)
{
    elem e = {0, 0, 0};
    const unsigned char *p = (const unsigned char *)t->data + (size_t)i * fr_dtype_size(t->dtype);
    switch (t->dtype) {
    case FR_F32: { float f; uint32_t u; memcpy(&f, p, 4); memcpy(&u, p, 4); e.v = f; e.bits = u; break; }
    case FR_F64: { uint64_t u; memcpy(&e.v, p, 8); memcpy(&u, p, 8); e.bits = u; break; }
    case FR_F16: { uint16_t u; memcpy(&u, p, 2); e.v = half_to_double(u); e.bits = u; break; }
    case FR_BF16: {
        uint16_t u; float f; uint32_t w;
        memcpy(&u, p, 2);
        w = (uint32_t)u << 16;
        memcpy(&f, &w, 4);
        e.v = f;
        e.bits = u;
        break;
    }
    case FR_I64: { int64_t v; memcpy(&v, p, 8); e.v = (double)v; e.bits = (uint64_t)v; break; }
    case FR_I32: { int32_t v; memcpy(&v, p, 4); e.v = v; e.bits = (uint32_t)v; break; }
    case FR_I16: { int16_t v; memcpy(&v, p, 2); e.v = v; e.bits = (uint16_t)v; break; }
    case FR_I8: { int8_t v; memcpy(&v, p, 1); e.v = v; e.bits = (uint8_t)v; break; }
    case FR_U64: { uint64_t v; memcpy(&v, p, 8); e.v = (double)v; e.bits = v; break; }
    case FR_U32: { uint32_t v; memcpy(&v, p, 4); e.v = v; e.bits = v; break; }
    case FR_U16: { uint16_t v; memcpy(&v, p, 2); e.v = v; e.bits = v; break; }
    case FR_U8: case FR_BOOL: e.v = p[0]; e.bits = p[0]; break;
    default: break;
    }
    e.nan = isnan(e.v);
    return e;
}

fr_status fr_tensor_diff_compute(const fr_tensor *a, const fr_tensor *b, fr_tensor_diff *d)
{
    memset(d, 0, sizeof *d);
    d->first_index = -1;
    if (a->dtype != b->dtype || !fr_tensor_same_shape(a, b))
        return fr_fail(FR_ERR_ARG, "tensor diff: dtype or shape differs (%s vs %s)", fr_dtype_name(a->dtype),
                       fr_dtype_name(b->dtype));
    if (a->device != FR_DEVICE_CPU || b->device != FR_DEVICE_CPU)
        return fr_fail(FR_ERR_ARG, "tensor diff: tensors must be on the CPU");
    int w = a->dtype == FR_F32 ? 32 : a->dtype == FR_F64 ? 64 : (a->dtype == FR_F16 || a->dtype == FR_BF16) ? 16 : 0;
    d->has_ulp = w != 0;
    d->numel = fr_tensor_numel(a);
    for (int64_t i = 0; i < d->numel; i++) {
        elem x = load(a, i), y = load(b, i);
        if (x.nan && y.nan) continue; /* the digest canonicalises NaN payloads too */
        if (x.bits == y.bits) continue;
        if (d->first_index < 0) {
            d->first_index = i;
            d->first_a = x.v;
            d->first_b = y.v;
            int64_t r = i;
            for (int k = a->ndim - 1; k >= 0; k--) {
                d->first_coord[k] = a->shape[k] ? r % a->shape[k] : 0;
                r = a->shape[k] ? r / a->shape[k] : 0;
            }
        }
        d->n_differ++;
        double ad = x.nan != y.nan ? INFINITY : isinf(x.v) || isinf(y.v) ? (x.v == y.v ? 0.0 : INFINITY)
                                                                          : fabs(x.v - y.v);
        if (ad > d->max_abs) d->max_abs = ad;
        if (w) {
            uint64_t u;
            if (x.nan != y.nan) {
                u = UINT64_MAX;
            } else {
                uint64_t kx = ord_key(x.bits, w), ky = ord_key(y.bits, w);
                u = kx > ky ? kx - ky : ky - kx;
            }
            if (u > d->max_ulp) d->max_ulp = u;
        }
    }
    return FR_OK;
}
