#include "flowrl/digest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "flowrl/file_util.h"

/* The tensor data's XXH3 updates: through libxxhash's run-time dispatch (its AVX2 loop, twice
 * the SSE2 default's speed on the audit records' tens of MB an epoch: issue 15) where the
 * library exports it (x86-64 builds of xxHash >= 0.8 with the dispatcher, as Debian's), else
 * the plain update. XXH3 is defined bit for bit: every path gives the same digest. The
 * reference is weak, so a library without the symbol (a static libxxhash.a) links and
 * takes the plain one. */
#if defined(__x86_64__) && defined(__GNUC__)
extern XXH_errorcode XXH3_64bits_update_dispatch(XXH3_state_t *state, const void *input, size_t len)
    __attribute__((weak));
static XXH_errorcode data_update(XXH3_state_t *st, const void *p, size_t n)
{
    return XXH3_64bits_update_dispatch ? XXH3_64bits_update_dispatch(st, p, n) : XXH3_64bits_update(st, p, n);
}
#else
static XXH_errorcode data_update(XXH3_state_t *st, const void *p, size_t n) { return XXH3_64bits_update(st, p, n); }
#endif

uint64_t fr_digest_bytes(const void *data, size_t n) { return XXH3_64bits(data, n); }

static void put_u64le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Whether n floats / doubles hold a NaN: blocks of a fixed count, which gcc -O2 vectorizes (the
 * audit records of an epoch digest tens of MB: issue 15). */
enum { NAN_BLOCK = 1024 };

static int nan_block_f32(const float *x)
{
    int bad = 0;
    for (int j = 0; j < NAN_BLOCK; j++) bad |= x[j] != x[j];
    return bad;
}

static int nan_block_f64(const double *x)
{
    int bad = 0;
    for (int j = 0; j < NAN_BLOCK; j++) bad |= x[j] != x[j];
    return bad;
}

/* Whether the n elements (esz 4: floats, 8: doubles) at p hold a NaN. */
static int has_nan(const void *p, size_t n, size_t esz)
{
    size_t j = 0;
    if (esz == 4) {
        const float *x = p;
        for (; j + NAN_BLOCK <= n; j += NAN_BLOCK)
            if (nan_block_f32(x + j)) return 1;
        for (; j < n; j++)
            if (x[j] != x[j]) return 1;
    } else {
        const double *x = p;
        for (; j + NAN_BLOCK <= n; j += NAN_BLOCK)
            if (nan_block_f64(x + j)) return 1;
        for (; j < n; j++)
            if (x[j] != x[j]) return 1;
    }
    return 0;
}

/* Feeds n elements of esz bytes at src with every NaN replaced by the canonical quiet NaN, through
 * a buffer. */
static void update_nan_canonical(XXH3_state_t *st, const unsigned char *src, size_t n, size_t esz)
{
    unsigned char buf[4096];
    size_t per = sizeof buf / esz;
    for (size_t i = 0; i < n; i += per) {
        size_t m = n - i < per ? n - i : per;
        memcpy(buf, src + i * esz, m * esz);
        for (size_t j = 0; j < m; j++) {
            if (esz == 4) {
                uint32_t u;
                memcpy(&u, buf + 4 * j, 4);
                if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu)) {
                    u = 0x7FC00000u;
                    memcpy(buf + 4 * j, &u, 4);
                }
            } else {
                uint64_t u;
                memcpy(&u, buf + 8 * j, 8);
                if ((u & 0x7FF0000000000000ull) == 0x7FF0000000000000ull && (u & 0x000FFFFFFFFFFFFFull)) {
                    u = 0x7FF8000000000000ull;
                    memcpy(buf + 8 * j, &u, 8);
                }
            }
        }
        data_update(st, buf, m * esz);
    }
}

/* Feeds the data, replacing NaNs by the canonical quiet NaN, in blocks of HASH_BLOCK bytes: each
 * is checked for a NaN and then hashed while it is still in L1 (one pass over memory, not two:
 * issue 15), as is when it has none, else through update_nan_canonical. XXH3's streaming digest
 * does not depend on how the bytes are split. */
enum { HASH_BLOCK = 4 * 4 * NAN_BLOCK };

static void update_canonical(XXH3_state_t *st, const fr_tensor *t)
{
    size_t nbytes = fr_tensor_nbytes(t);
    if (t->dtype != FR_F32 && t->dtype != FR_F64) {
        if (nbytes) data_update(st, t->data, nbytes);
        return;
    }
    const size_t esz = fr_dtype_size(t->dtype);
    const unsigned char *src = t->data;
    for (size_t off = 0; off < nbytes; off += HASH_BLOCK) {
        size_t m = nbytes - off < HASH_BLOCK ? nbytes - off : HASH_BLOCK;
        if (!has_nan(src + off, m / esz, esz)) data_update(st, src + off, m);
        else update_nan_canonical(st, src + off, m / esz, esz);
    }
}

uint64_t fr_tensor_digest(const fr_tensor *t)
{
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    XXH3_64bits_reset(&st);
    const char *name = fr_dtype_name(t->dtype);
    XXH3_64bits_update(&st, name, strlen(name));
    unsigned char hdr[8 * (1 + FR_MAX_DIMS)];
    put_u64le(hdr, (uint64_t)t->ndim);
    for (int i = 0; i < t->ndim; i++) put_u64le(hdr + 8 * (1 + i), (uint64_t)t->shape[i]);
    XXH3_64bits_update(&st, hdr, 8 * (size_t)(1 + t->ndim));
    update_canonical(&st, t);
    return XXH3_64bits_digest(&st);
}

void fr_digest_hex(uint64_t d, char out[17]) { snprintf(out, 17, "%016llx", (unsigned long long)d); }

fr_status fr_digest_selftest(void)
{
    /* docs/algorithms/numerics.md §5: upstream's sanity values. */
    static const unsigned char empty[1] = {0};
    if (XXH3_64bits(NULL, 0) != 0x2D06800538D394C2ull || XXH3_64bits(empty, 0) != 0x2D06800538D394C2ull)
        return fr_fail(FR_ERR_MISMATCH, "xxHash self-test: XXH3_64bits(\"\") is wrong");
    if (XXH64(NULL, 0, 0) != 0xEF46DB3751D8E999ull)
        return fr_fail(FR_ERR_MISMATCH, "xxHash self-test: XXH64(\"\", 0) is wrong");
    if (XXH3_64bits("abc", 3) != 0x78AF5F94892F3950ull)
        return fr_fail(FR_ERR_MISMATCH, "xxHash self-test: XXH3_64bits(\"abc\") is wrong");
    return FR_OK;
}

fr_status fr_file_digest_hex(const char *path, char hex[17])
{
    char *buf;
    size_t len;
    FR_TRY(fr_read_file(path, &buf, &len));
    fr_digest_hex(fr_digest_bytes(buf, len), hex);
    free(buf);
    return FR_OK;
}
