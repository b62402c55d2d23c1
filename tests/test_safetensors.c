/* safetensors read/write: round trips, byte-exact output, hand-written known bytes, the
 * malformed/valid corpus (tests/corpus/safetensors, made by tests/corpus/gen_safetensors.py),
 * truncation and seeded header corruption, atomic writes, and `flowrl tensors`. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowrl/digest.h"
#include "flowrl/safetensors.h"
#include "tests/suites.h"
#include "tests/testutil.h"

/* ---- helpers ------------------------------------------------------------------------ */

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/fr_st_XXXXXX";
    char *d = mkdtemp(tmpl);
    ck_assert_msg(d != NULL, "mkdtemp failed");
    return strdup(d);
}

/* Removes the files of a flat directory and the directory. */
static void rm_tmpdir(char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[1024];
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (unlink(p) != 0) rmdir(p);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "opendir %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void spit(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_int_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* A tensor with seeded random bytes. */
static fr_tensor rand_tensor(fr_dtype dt, int ndim, const int64_t *shape, uint64_t *seed)
{
    fr_tensor t;
    ck_assert_int_eq(fr_tensor_alloc(&t, dt, ndim, shape), FR_OK);
    unsigned char *p = t.data;
    for (size_t i = 0; i < fr_tensor_nbytes(&t); i++) p[i] = (unsigned char)fr_test_next(seed);
    return t;
}

static void assert_same_tensor(const char *name, const fr_tensor *a, const fr_tensor *b)
{
    ck_assert_msg(a->dtype == b->dtype, "%s: dtype %s vs %s", name, fr_dtype_name(a->dtype),
                  fr_dtype_name(b->dtype));
    ck_assert_msg(fr_tensor_same_shape(a, b), "%s: shape differs", name);
    ck_assert_msg(b->owned, "%s: read tensor not owned", name);
    size_t n = fr_tensor_nbytes(a);
    ck_assert_msg(n == 0 || memcmp(a->data, b->data, n) == 0, "%s: bytes differ", name);
}

static void assert_same_file(const fr_st_file *a, const fr_st_file *b)
{
    ck_assert_uint_eq(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        ck_assert_str_eq(a->entries[i].name, b->entries[i].name);
        assert_same_tensor(a->entries[i].name, &a->entries[i].t, &b->entries[i].t);
    }
    ck_assert_uint_eq(a->n_meta, b->n_meta);
    for (size_t i = 0; i < a->n_meta; i++) {
        ck_assert_str_eq(a->meta[i].key, b->meta[i].key);
        ck_assert_str_eq(a->meta[i].value, b->meta[i].value);
    }
}

/* Every dtype in 0-d, 1-d, 4-d and empty shapes, plus metadata. */
static void build_sample(fr_st_file *f, uint64_t seed)
{
    static const int64_t s1[] = {5}, s4[] = {2, 1, 3, 2}, s0[] = {3, 0};
    fr_st_init(f);
    char name[64];
    for (int dt = 0; dt < FR_DTYPE_COUNT; dt++) {
        const char *dn = fr_dtype_name((fr_dtype)dt);
        fr_tensor t;
        snprintf(name, sizeof name, "%s.scalar", dn);
        t = rand_tensor((fr_dtype)dt, 0, NULL, &seed);
        ck_assert_int_eq(fr_st_add_take(f, name, &t), FR_OK);
        snprintf(name, sizeof name, "%s.vec", dn);
        t = rand_tensor((fr_dtype)dt, 1, s1, &seed);
        ck_assert_int_eq(fr_st_add_take(f, name, &t), FR_OK);
        snprintf(name, sizeof name, "%s.w4", dn);
        t = rand_tensor((fr_dtype)dt, 4, s4, &seed);
        ck_assert_int_eq(fr_st_add(f, name, &t), FR_OK); /* the copying path */
        fr_tensor_free(&t);
        snprintf(name, sizeof name, "%s.empty", dn);
        t = rand_tensor((fr_dtype)dt, 2, s0, &seed);
        ck_assert_int_eq(fr_st_add_take(f, name, &t), FR_OK);
    }
    ck_assert_int_eq(fr_st_set_meta(f, "step", "12"), FR_OK);
    ck_assert_int_eq(fr_st_set_meta(f, "flowrl", "0.1"), FR_OK);
    ck_assert_int_eq(fr_st_set_meta(f, "quote\"\\\n\x01", "caf\xc3\xa9 \xf0\x9f\x98\x80"), FR_OK);
    ck_assert_int_eq(fr_st_set_meta(f, "", ""), FR_OK);
}

static const char *corpus_dir(char *buf, size_t n, const char *sub)
{
    snprintf(buf, n, "%s/tests/corpus/safetensors%s", fr_test_src(), sub);
    return buf;
}

/* ---- round trips and determinism ----------------------------------------------------- */

/* Every error message is one line, whatever a file's strings hold (fr_fail, flowrl/status.h). */
START_TEST(test_error_message_one_line)
{
    char bad[] = {'d', 'i', 'g', '\n', '6', '\r', '\t', 0x7f, 'x', 0};
    ck_assert_int_eq(fr_fail(FR_ERR_FORMAT, "f: stored %s (corrupted)", bad), FR_ERR_FORMAT);
    ck_assert_str_eq(fr_last_error(), "f: stored dig?6???x (corrupted)");
}
END_TEST

START_TEST(test_roundtrip)
{
    char *dir = make_tmpdir(), path[512];
    fr_st_file a, b;
    build_sample(&a, 1);
    ck_assert_uint_eq(a.n, 4 * FR_DTYPE_COUNT);
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    ck_assert_msg(fr_st_write(&a, path) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(fr_st_read(&b, path) == FR_OK, "%s", fr_last_error());
    assert_same_file(&a, &b);
    ck_assert_str_eq(fr_st_get_meta(&b, "step"), "12");
    ck_assert_str_eq(fr_st_get_meta(&b, "quote\"\\\n\x01"), "caf\xc3\xa9 \xf0\x9f\x98\x80");
    ck_assert_ptr_null(fr_st_get_meta(&b, "nope"));
    const fr_tensor *w = fr_st_get(&b, "BF16.w4");
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(w->ndim, 4);
    ck_assert_int_eq(w->shape[2], 3);
    ck_assert_int_eq(fr_st_get(&b, "I64.scalar")->ndim, 0);
    ck_assert_ptr_null(fr_st_get(&b, "F32"));
    fr_st_free(&b);

    void *buf;
    size_t len;
    ck_assert_int_eq(fr_st_write_mem(&a, &buf, &len), FR_OK);
    ck_assert_int_eq(fr_st_read_mem(&b, buf, len, "mem"), FR_OK);
    assert_same_file(&a, &b);
    fr_st_free(&b);
    free(buf);
    fr_st_free(&a);
    ck_assert_uint_eq(a.n, 0);
    rm_tmpdir(dir);
}
END_TEST

START_TEST(test_deterministic_bytes)
{
    char *dir = make_tmpdir(), p1[512], p2[512];
    fr_st_file a, b;
    build_sample(&a, 7);
    /* The same content with metadata set in another order (and one value replaced). */
    fr_st_init(&b);
    for (size_t i = 0; i < a.n; i++)
        ck_assert_int_eq(fr_st_add(&b, a.entries[i].name, &a.entries[i].t), FR_OK);
    for (size_t i = a.n_meta; i-- > 0;)
        ck_assert_int_eq(fr_st_set_meta(&b, a.meta[i].key, "placeholder"), FR_OK);
    for (size_t i = 0; i < a.n_meta; i++)
        ck_assert_int_eq(fr_st_set_meta(&b, a.meta[i].key, a.meta[i].value), FR_OK);
    snprintf(p1, sizeof p1, "%s/1.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/2.safetensors", dir);
    ck_assert_int_eq(fr_st_write(&a, p1), FR_OK);
    ck_assert_int_eq(fr_st_write(&b, p2), FR_OK);
    ck_assert_int_eq(fr_st_write(&a, p2), FR_OK); /* overwrites in place */
    ck_assert_int_eq(fr_st_write(&b, p2), FR_OK);
    size_t n1, n2, nm;
    unsigned char *b1 = fr_test_slurp(p1, &n1), *b2 = fr_test_slurp(p2, &n2);
    void *m;
    ck_assert_int_eq(fr_st_write_mem(&a, &m, &nm), FR_OK);
    ck_assert_uint_eq(n1, n2);
    ck_assert_uint_eq(n1, nm);
    ck_assert_msg(memcmp(b1, b2, n1) == 0, "same content, different bytes");
    ck_assert_msg(memcmp(b1, m, n1) == 0, "fr_st_write and fr_st_write_mem differ");
    /* Layout: N % 8 == 0, JSON first byte '{', "__metadata__" first, padding spaces. */
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | b1[i];
    ck_assert_uint_eq(hl % 8, 0);
    ck_assert(memcmp(b1 + 8, "{\"__metadata__\":{\"\":\"\",\"flowrl\"", 31) == 0);
    ck_assert(b1[8 + hl - 1] == '}' || b1[8 + hl - 1] == ' ');
    /* A different byte in one tensor changes the file. */
    ((unsigned char *)b.entries[b.n - 3].t.data)[0] ^= 1;
    ck_assert_int_eq(fr_st_write(&b, p2), FR_OK);
    free(b2);
    b2 = fr_test_slurp(p2, &n2);
    ck_assert(n1 == n2 && memcmp(b1, b2, n1) != 0);
    ck_assert_int_eq(count_entries(dir), 2); /* no temporary files left */
    free(b1);
    free(b2);
    free(m);
    fr_st_free(&a);
    fr_st_free(&b);
    rm_tmpdir(dir);
}
END_TEST

/* Built by hand from the format description, not by fr_st_write. */
static const char k_known_hdr[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

static size_t known_bytes(unsigned char *out, int pad)
{
    size_t h = strlen(k_known_hdr), hp = pad ? (h + 7) / 8 * 8 : h;
    memset(out, 0, 8);
    out[0] = (unsigned char)hp;
    memcpy(out + 8, k_known_hdr, h);
    memset(out + 8 + h, ' ', hp - h);
    const unsigned char data[8] = {0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0}; /* 1.5, -2 */
    memcpy(out + 8 + hp, data, 8);
    return 8 + hp + 8;
}

START_TEST(test_known_bytes)
{
    unsigned char raw[128];
    for (int pad = 0; pad <= 1; pad++) {
        size_t n = known_bytes(raw, pad);
        fr_st_file f;
        ck_assert_msg(fr_st_read_mem(&f, raw, n, "known") == FR_OK, "%s", fr_last_error());
        ck_assert_uint_eq(f.n, 1);
        ck_assert_str_eq(f.entries[0].name, "a");
        const fr_tensor *t = fr_st_get(&f, "a");
        ck_assert_int_eq(t->dtype, FR_F32);
        ck_assert_int_eq(t->ndim, 1);
        ck_assert_int_eq(t->shape[0], 2);
        ck_assert(((float *)t->data)[0] == 1.5f && ((float *)t->data)[1] == -2.0f);
        ck_assert_uint_eq(f.n_meta, 0);
        fr_st_free(&f);
    }
    /* And the writer produces exactly these bytes (padded: 54 -> 56). */
    size_t n = known_bytes(raw, 1);
    ck_assert_uint_eq(n, 8 + 56 + 8);
    float v[2] = {1.5f, -2.0f};
    fr_tensor t = fr_tensor_f32(v, 1, (int64_t[]){2});
    fr_st_file f;
    fr_st_init(&f);
    ck_assert_int_eq(fr_st_add(&f, "a", &t), FR_OK);
    void *m;
    size_t mn;
    ck_assert_int_eq(fr_st_write_mem(&f, &m, &mn), FR_OK);
    ck_assert_uint_eq(mn, n);
    ck_assert_msg(memcmp(m, raw, n) == 0, "writer bytes differ from the hand-built file");
    free(m);
    fr_st_free(&f);
}
END_TEST

START_TEST(test_large_tensor)
{
    enum { N = 3 * 1024 * 1024 + 5 }; /* 12 MB of F32 */
    char *dir = make_tmpdir(), path[512];
    uint64_t seed = 99;
    fr_st_file a, b;
    fr_st_init(&a);
    fr_tensor t = rand_tensor(FR_F32, 2, (int64_t[]){N, 1}, &seed);
    fr_tensor small = rand_tensor(FR_U8, 1, (int64_t[]){3}, &seed);
    ck_assert_int_eq(fr_st_add_take(&a, "small", &small), FR_OK);
    void *moved = t.data;
    ck_assert_int_eq(fr_st_add_take(&a, "big", &t), FR_OK);
    ck_assert_ptr_null(t.data); /* moved, not copied */
    ck_assert_ptr_eq(fr_st_get(&a, "big")->data, moved);
    snprintf(path, sizeof path, "%s/big.safetensors", dir);
    ck_assert_int_eq(fr_st_write(&a, path), FR_OK);
    ck_assert_msg(fr_st_read(&b, path) == FR_OK, "%s", fr_last_error());
    assert_same_file(&a, &b);
    fr_st_free(&a);
    fr_st_free(&b);
    rm_tmpdir(dir);
}
END_TEST

/* ---- the container API ---------------------------------------------------------------- */

START_TEST(test_api_errors)
{
    fr_st_file f;
    fr_st_init(&f);
    float v[3] = {1, 2, 3};
    fr_tensor t = fr_tensor_f32(v, 1, (int64_t[]){3});
    ck_assert_int_eq(fr_st_add(&f, "x", &t), FR_OK);
    ck_assert_int_eq(fr_st_add(&f, "x", &t), FR_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(fr_last_error(), "'x'"));
    ck_assert_int_eq(fr_st_add(&f, "__metadata__", &t), FR_ERR_ARG);
    ck_assert_int_eq(fr_st_add(&f, "bad\xff", &t), FR_ERR_ARG);
    ck_assert_int_eq(fr_st_set_meta(&f, "k", "bad\xc0\xaf"), FR_ERR_ARG);
    fr_tensor gpu = t;
    gpu.device = FR_DEVICE_CUDA;
    ck_assert_int_eq(fr_st_add(&f, "g", &gpu), FR_ERR_ARG);
    /* A view handed to add_take is copied; the caller's memory is untouched and unowned. */
    ck_assert_int_eq(fr_st_add_take(&f, "view", &t), FR_OK);
    ck_assert_ptr_eq(t.data, v);
    ck_assert(fr_st_get(&f, "view")->data != (void *)v);
    v[0] = 9;
    ck_assert(((float *)fr_st_get(&f, "x")->data)[0] == 1.0f);
    /* A failed add_take leaves the caller's owned tensor alone. */
    fr_tensor own;
    ck_assert_int_eq(fr_tensor_alloc(&own, FR_I32, 1, (int64_t[]){2}), FR_OK);
    ck_assert_int_eq(fr_st_add_take(&f, "x", &own), FR_ERR_ARG);
    ck_assert(own.owned && own.data);
    fr_tensor_free(&own);
    ck_assert_int_eq(fr_st_set_meta(&f, "k", "1"), FR_OK);
    ck_assert_int_eq(fr_st_set_meta(&f, "k", "2"), FR_OK);
    ck_assert_uint_eq(f.n_meta, 1);
    ck_assert_str_eq(fr_st_get_meta(&f, "k"), "2");
    ck_assert_uint_eq(f.n, 2);
    fr_st_free(&f);
}
END_TEST

START_TEST(test_failed_write_leaves_nothing)
{
    char *dir = make_tmpdir(), path[512];
    fr_st_file f;
    build_sample(&f, 3);
    snprintf(path, sizeof path, "%s/missing/x.safetensors", dir);
    ck_assert_int_eq(fr_st_write(&f, path), FR_ERR_IO);
    ck_assert_ptr_nonnull(strstr(fr_last_error(), path));
    ck_assert_int_eq(count_entries(dir), 0);
    /* The rename fails (the target is a non-empty directory): the temporary file goes. */
    snprintf(path, sizeof path, "%s/sub", dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    char inner[600];
    snprintf(inner, sizeof inner, "%s/keep", path);
    spit(inner, "x", 1);
    ck_assert_int_eq(fr_st_write(&f, path), FR_ERR_IO);
    ck_assert_int_eq(count_entries(dir), 1);
    ck_assert_int_eq(count_entries(path), 1);
    unlink(inner);
    /* An old file survives a failed overwrite untouched. */
    snprintf(path, sizeof path, "%s/sub", dir);
    rmdir(path);
    snprintf(path, sizeof path, "%s/old.safetensors", dir);
    spit(path, "old", 3);
    ck_assert_int_eq(chmod(dir, 0500), 0);
    if (access(dir, W_OK) != 0) { /* not root: the directory is really read-only */
        ck_assert_int_eq(fr_st_write(&f, path), FR_ERR_IO);
        size_t n;
        unsigned char *b = fr_test_slurp(path, &n);
        ck_assert(n == 3 && memcmp(b, "old", 3) == 0);
        free(b);
    }
    ck_assert_int_eq(chmod(dir, 0700), 0);
    ck_assert_int_eq(count_entries(dir), 1);
    fr_st_free(&f);
    rm_tmpdir(dir);
}
END_TEST

/* ---- validation ----------------------------------------------------------------------- */

static void assert_rejected(const unsigned char *b, size_t n, const char *label)
{
    fr_st_file f;
    fr_status s = fr_st_read_mem(&f, b, n, label);
    ck_assert_msg(s == FR_ERR_FORMAT, "%s: status %s, want format error (%s)", label,
                  fr_status_name(s), fr_last_error());
    ck_assert_msg(strncmp(fr_last_error(), label, strlen(label)) == 0 &&
                      strlen(fr_last_error()) > strlen(label) + 5,
                  "%s: message does not name the input: '%s'", label, fr_last_error());
    ck_assert(f.n == 0 && f.n_meta == 0 && f.entries == NULL && f.meta == NULL);
}

/* Calls fn(path, name) for every regular file of dir; returns the count. */
static int for_each_file(const char *dir, void (*fn)(const char *, const char *))
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open corpus directory %s (FLOWRL_SRC=%s)", dir, fr_test_src());
    struct dirent *e;
    int n = 0;
    char p[1024];
    while ((e = readdir(d))) {
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        fn(p, e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static void check_malformed(const char *path, const char *name)
{
    fr_st_file f;
    fr_status s = fr_st_read(&f, path);
    ck_assert_msg(s == FR_ERR_FORMAT, "corpus %s: status %s, want format error (%s)", name,
                  fr_status_name(s), fr_last_error());
    ck_assert_msg(strncmp(fr_last_error(), path, strlen(path)) == 0 &&
                      strlen(fr_last_error()) > strlen(path) + 5,
                  "corpus %s: message does not name the file: '%s'", name, fr_last_error());
    size_t n;
    unsigned char *b = fr_test_slurp(path, &n);
    assert_rejected(b, n, name);
    free(b);
}

static void check_valid(const char *path, const char *name)
{
    fr_st_file f, g;
    ck_assert_msg(fr_st_read(&f, path) == FR_OK, "valid corpus %s rejected: %s", name,
                  fr_last_error());
    size_t n;
    unsigned char *b = fr_test_slurp(path, &n);
    ck_assert_msg(fr_st_read_mem(&g, b, n, name) == FR_OK, "%s (memory): %s", name, fr_last_error());
    assert_same_file(&f, &g);
    free(b);
    fr_st_free(&f);
    fr_st_free(&g);
}

START_TEST(test_corpus_malformed)
{
    char dir[1024];
    int n = for_each_file(corpus_dir(dir, sizeof dir, ""), check_malformed);
    ck_assert_msg(n >= 60, "only %d malformed corpus files in %s", n, dir);
}
END_TEST

START_TEST(test_corpus_valid)
{
    char dir[1024];
    int n = for_each_file(corpus_dir(dir, sizeof dir, "/valid"), check_valid);
    ck_assert_msg(n >= 10, "only %d valid corpus files in %s", n, dir);
}
END_TEST

static const char *message_for(const char *file)
{
    char dir[1024], path[1200];
    snprintf(path, sizeof path, "%s/%s.safetensors", corpus_dir(dir, sizeof dir, ""), file);
    fr_st_file f;
    ck_assert_int_eq(fr_st_read(&f, path), FR_ERR_FORMAT);
    return fr_last_error();
}

#define ASSERT_MSG_HAS(file, ...)                                                             \
    do {                                                                                   \
        const char *want_[] = {__VA_ARGS__};                                               \
        const char *m_ = message_for(file);                                                \
        for (size_t i_ = 0; i_ < sizeof want_ / sizeof want_[0]; i_++)                     \
            ck_assert_msg(strstr(m_, want_[i_]), "%s: message lacks '%s': %s", file, want_[i_], m_); \
    } while (0)

/* The messages name the tensor and the field, and say what was expected. */
START_TEST(test_messages)
{
    ASSERT_MSG_HAS("short_7_bytes", "7 bytes", "8-byte");
    ASSERT_MSG_HAS("hlen_zero", "header length is 0");
    ASSERT_MSG_HAS("hlen_u64_max", "header length", "limit");
    ASSERT_MSG_HAS("hlen_past_eof", "past the end");
    ASSERT_MSG_HAS("header_not_json", "not valid JSON");
    ASSERT_MSG_HAS("header_array", "start with '{'");
    ASSERT_MSG_HAS("header_trailing_garbage", "after the JSON");
    ASSERT_MSG_HAS("header_bad_utf8", "UTF-8");
    ASSERT_MSG_HAS("header_nul_escape", "u0000");
    ASSERT_MSG_HAS("entry_number", "'a'", "expected an object");
    ASSERT_MSG_HAS("missing_shape", "'a'", "missing field 'shape'");
    ASSERT_MSG_HAS("dtype_unknown_f8", "'a'", "unknown dtype 'F8_E4M3'");
    ASSERT_MSG_HAS("dtype_twice", "'dtype' appears twice");
    ASSERT_MSG_HAS("shape_5_dims", "'a'", "5 dims", "at most 4");
    ASSERT_MSG_HAS("shape_negative", "'a'", "shape[0]", "negative");
    ASSERT_MSG_HAS("shape_fraction", "shape[0]", "not an integer");
    ASSERT_MSG_HAS("shape_huge_dim", "shape[0]", "too large");
    ASSERT_MSG_HAS("shape_numel_overflow", "'a'", "63 bits");
    ASSERT_MSG_HAS("shape_bytes_overflow", "'a'", "63 bits");
    ASSERT_MSG_HAS("offsets_one_value", "'a'", "data_offsets", "2 integers");
    ASSERT_MSG_HAS("offsets_backwards", "begin > end");
    ASSERT_MSG_HAS("offsets_past_end", "'a'", "end 16 is past the end", "8-byte data buffer");
    ASSERT_MSG_HAS("offsets_wrong_size", "'a'", "span 8 bytes", "F32 (1) needs 4");
    ASSERT_MSG_HAS("tensors_gap_between", "'b'", "gap", "tensor 'a' ends at 4");
    ASSERT_MSG_HAS("tensors_overlap", "'b'", "overlap");
    ASSERT_MSG_HAS("buffer_not_covered", "cover 8 bytes of the 12-byte");
    ASSERT_MSG_HAS("duplicate_name", "'a' appears twice");
    ASSERT_MSG_HAS("metadata_value_number", "__metadata__['step']", "expected a string");
    ASSERT_MSG_HAS("metadata_duplicate_key", "'k' appears twice");
}
END_TEST

START_TEST(test_truncation)
{
    fr_st_file a;
    build_sample(&a, 11);
    void *m;
    size_t n;
    ck_assert_int_eq(fr_st_write_mem(&a, &m, &n), FR_OK);
    fr_st_free(&a);
    char label[64];
    for (size_t len = 0; len < n; len++) {
        /* A fresh, exactly sized copy: ASan catches any read past len. */
        unsigned char *cut = malloc(len ? len : 1);
        memcpy(cut, m, len);
        snprintf(label, sizeof label, "cut@%zu", len);
        assert_rejected(cut, len, label);
        free(cut);
    }
    /* One extra byte at the end is not covered by any tensor. */
    unsigned char *longer = malloc(n + 1);
    memcpy(longer, m, n);
    longer[n] = 0;
    assert_rejected(longer, n + 1, "plus1");
    free(longer);
    free(m);
}
END_TEST

START_TEST(test_header_corruption)
{
    const uint64_t seed0 = 20240611;
    fr_st_file a;
    build_sample(&a, 5);
    void *m;
    size_t n;
    ck_assert_int_eq(fr_st_write_mem(&a, &m, &n), FR_OK);
    fr_st_free(&a);
    size_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | ((unsigned char *)m)[i];
    uint64_t seed = seed0;
    int ok = 0, rejected = 0;
    unsigned char *b = malloc(n);
    for (int it = 0; it < 4000; it++) {
        memcpy(b, m, n);
        int flips = 1 + (int)(fr_test_next(&seed) % 4);
        for (int k = 0; k < flips; k++) {
            /* mostly the header, sometimes the length prefix */
            size_t at = fr_test_next(&seed) % 16 ? 8 + fr_test_next(&seed) % hl : fr_test_next(&seed) % 8;
            uint64_t r = fr_test_next(&seed);
            b[at] = r & 1 ? (unsigned char)(b[at] ^ (1u << (r >> 1) % 8)) : (unsigned char)(r >> 8);
        }
        fr_st_file f;
        fr_status s = fr_st_read_mem(&f, b, n, "flip");
        ck_assert_msg(s == FR_OK || s == FR_ERR_FORMAT,
                      "seed %llu iteration %d: status %s (%s)", (unsigned long long)seed0, it,
                      fr_status_name(s), fr_last_error());
        if (s == FR_OK) ok++;
        else {
            rejected++;
            ck_assert_msg(fr_last_error()[0], "seed %llu iteration %d: empty message",
                          (unsigned long long)seed0, it);
        }
        fr_st_free(&f);
    }
    /* Most corruptions must be caught; the few accepted ones hit names or metadata text. */
    ck_assert_msg(rejected > 3000, "only %d of 4000 corruptions rejected (seed %llu)", rejected,
                  (unsigned long long)seed0);
    free(b);
    free(m);
}
END_TEST

/* ---- flowrl tensors --------------------------------------------------------------------- */

static char g_out[1 << 16];

START_TEST(test_cli_tensors)
{
    ck_assert_msg(getenv("FLOWRL_BIN") != NULL, "FLOWRL_BIN is not set (make check sets it)");
    char *dir = make_tmpdir(), path[512], args[1200];
    fr_st_file f;
    fr_st_init(&f);
    uint64_t seed = 4;
    fr_tensor w = rand_tensor(FR_F32, 2, (int64_t[]){2, 3}, &seed);
    fr_tensor step = rand_tensor(FR_I64, 0, NULL, &seed);
    fr_tensor long_name = rand_tensor(FR_BF16, 4, (int64_t[]){1, 2, 3, 4}, &seed);
    ck_assert_int_eq(fr_st_add_take(&f, "w", &w), FR_OK);
    ck_assert_int_eq(fr_st_add_take(&f, "step", &step), FR_OK);
    ck_assert_int_eq(fr_st_add_take(&f, "layers.0.attention.qkv", &long_name), FR_OK);
    ck_assert_int_eq(fr_st_set_meta(&f, "zeta", "last"), FR_OK);
    ck_assert_int_eq(fr_st_set_meta(&f, "alpha", "first\nline"), FR_OK);
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    ck_assert_int_eq(fr_st_write(&f, path), FR_OK);

    snprintf(args, sizeof args, "tensors %s", path);
    ck_assert_int_eq(fr_test_run_cli(args, g_out, sizeof g_out), 0);
    /* Expected lines: names padded to the longest (22) + 2, dtype to 4 + 2, shape to 12 + 2. */
    char want[2048], hex[3][17];
    for (int i = 0; i < 3; i++) fr_digest_hex(fr_tensor_digest(&f.entries[i].t), hex[i]);
    snprintf(want, sizeof want,
             "w                       F32   (2, 3)        %s\n"
             "step                    I64   ()            %s\n"
             "layers.0.attention.qkv  BF16  (1, 2, 3, 4)  %s\n",
             hex[0], hex[1], hex[2]);
    ck_assert_str_eq(g_out, want);

    snprintf(args, sizeof args, "tensors --meta %s", path);
    ck_assert_int_eq(fr_test_run_cli(args, g_out, sizeof g_out), 0);
    char *meta = strstr(g_out, "__metadata__ (2)\n");
    ck_assert_msg(meta != NULL, "%s", g_out);
    ck_assert_str_eq(meta, "__metadata__ (2)\n  alpha = first\\nline\n  zeta = last\n");

    /* A corrupt file: one line naming the file, exit 1. */
    size_t n;
    unsigned char *b = fr_test_slurp(path, &n);
    b[8 + 3] = '#';
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    spit(path, b, n - 1);
    free(b);
    snprintf(args, sizeof args, "tensors %s", path);
    ck_assert_int_eq(fr_test_run_cli(args, g_out, sizeof g_out), 1);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "flowrl tensors: %s: ", path);
    ck_assert_msg(strncmp(g_out, prefix, strlen(prefix)) == 0, "%s", g_out);
    ck_assert_msg(strchr(g_out, '\n') == g_out + strlen(g_out) - 1, "not one line: %s", g_out);

    snprintf(args, sizeof args, "tensors %s/none.safetensors", dir);
    ck_assert_int_eq(fr_test_run_cli(args, g_out, sizeof g_out), 1);
    ck_assert_ptr_nonnull(strstr(g_out, "none.safetensors: cannot open"));
    ck_assert_int_eq(fr_test_run_cli("tensors", g_out, sizeof g_out), 2);
    ck_assert_int_eq(fr_test_run_cli("tensors a b", g_out, sizeof g_out), 2);
    ck_assert_int_eq(fr_test_run_cli("tensors --bogus x", g_out, sizeof g_out), 2);
    ck_assert_int_eq(fr_test_run_cli("tensors --help", g_out, sizeof g_out), 0);
    ck_assert_ptr_nonnull(strstr(g_out, "Usage: flowrl tensors FILE [--meta]"));
    fr_st_free(&f);
    rm_tmpdir(dir);
}
END_TEST

Suite *suite_safetensors(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("safetensors");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_error_message_one_line);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_deterministic_bytes);
    tcase_add_test(tc, test_known_bytes);
    tcase_add_test(tc, test_large_tensor);
    tcase_add_test(tc, test_api_errors);
    tcase_add_test(tc, test_failed_write_leaves_nothing);
    tcase_add_test(tc, test_corpus_malformed);
    tcase_add_test(tc, test_corpus_valid);
    tcase_add_test(tc, test_messages);
    tcase_add_test(tc, test_truncation);
    tcase_add_test(tc, test_header_corruption);
    tcase_add_test(tc, test_cli_tensors);
    suite_add_tcase(s, tc);
    return s;
}
