/* Checkpoint integrity at the file layer (per-tensor digests, corrupted headers) and the
 * run-directory lock (flowrl/checkpoint.h, flowrl/safetensors.h "Digests", flowrl/dir_lock.h). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flowrl/ops.h"
#include "flowrl/checkpoint.h"
#include "flowrl/digest.h"
#include "flowrl/dir_lock.h"
#include "flowrl/file_util.h"
#include "flowrl/model.h"
#include "flowrl/safetensors.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static char g_dir[64];

static void setup(void) { fr_test_mkdtemp(g_dir, sizeof g_dir, "integrity"); }

static void teardown(void) { fr_test_rmtree(g_dir); }

/* XORs `mask` into byte `at` of the file. */
static void flip_byte(const char *path, long at, unsigned char mask)
{
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    unsigned char b;
    ck_assert_int_eq(pread(fd, &b, 1, at), 1);
    b ^= mask;
    ck_assert_int_eq(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

static long file_size(const char *path)
{
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    return (long)sb.st_size;
}

/* The header length N of a safetensors file (data starts at 8 + N). */
static long header_len(const char *path)
{
    char *buf;
    size_t len;
    ck_assert_int_eq(fr_read_file(path, &buf, &len), FR_OK);
    ck_assert_uint_ge(len, 8);
    long n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | (unsigned char)buf[i];
    free(buf);
    return n;
}

/* Writes src to dst with the first `from` in its JSON header replaced by `to` (the length
 * prefix adjusted, the data unchanged). */
static void edit_header(const char *src, const char *dst, const char *from, const char *to)
{
    char *raw;
    size_t len;
    ck_assert_int_eq(fr_read_file(src, &raw, &len), FR_OK);
    size_t n = (size_t)header_len(src), nf = strlen(from), nt = strlen(to);
    char *hit = memmem(raw + 8, n, from, nf);
    ck_assert_msg(hit != NULL, "'%s' is not in the header of %s", from, src);
    size_t at = (size_t)(hit - raw), n2 = n - nf + nt;
    FILE *fp = fopen(dst, "wb");
    ck_assert_ptr_nonnull(fp);
    for (int i = 0; i < 8; i++) fputc((int)((n2 >> (8 * i)) & 0xff), fp);
    fwrite(raw + 8, 1, at - 8, fp);
    fwrite(to, 1, nt, fp);
    fwrite(hit + nf, 1, len - at - nf, fp);
    ck_assert_int_eq(fclose(fp), 0);
    free(raw);
}

/* A gmm2d-s model with EMA and AdamW state, written as a checkpoint at path; digests on/off. */
static void write_checkpoint(const char *path, int digests, fr_model *m)
{
    fr_backend *be = fr_test_ref_be();
    fr_model_config mc;
    ck_assert_int_eq(fr_model_preset("gmm2d-s", 2, 8, &mc), FR_OK);
    ck_assert_int_eq(fr_model_init(m, fr_test_ref_be(), &mc, 3), FR_OK);
    fr_ema e;
    fr_adamw_state o;
    ck_assert_int_eq(fr_ema_init(be, &e, m->params, m->n_params), FR_OK);
    ck_assert_int_eq(fr_adamw_state_init(fr_test_ref_be(), &o, m->params, m->n_params), FR_OK);
    fr_st_file f;
    fr_st_init(&f);
    ck_assert_int_eq(fr_checkpoint_to_st(&f, m, &e, &o), FR_OK);
    ck_assert_int_eq(f.digests, 1);
    /* a tensor the caller adds after fr_checkpoint_to_st is covered too */
    int64_t sh[1] = {3};
    fr_tensor x;
    ck_assert_int_eq(fr_tensor_alloc(&x, FR_I64, 1, sh), FR_OK);
    ck_assert_int_eq(fr_st_add_take(&f, "caller.extra", &x), FR_OK);
    f.digests = digests;
    ck_assert_msg(fr_st_write(&f, path) == FR_OK, "%s", fr_last_error());
    fr_st_free(&f);
    fr_ema_free(&e);
    fr_adamw_state_free(&o);
}

START_TEST(test_digests_written_and_checked)
{
    char path[128];
    snprintf(path, sizeof path, "%s/step-3.safetensors", g_dir);
    fr_model m;
    write_checkpoint(path, 1, &m);
    fr_st_file f;
    ck_assert_msg(fr_st_read(&f, path) == FR_OK, "%s", fr_last_error());
    /* the digests are the file layer's: checked, then gone from the metadata */
    ck_assert_int_eq(f.digests, 1);
    for (size_t i = 0; i < f.n_meta; i++) ck_assert(strncmp(f.meta[i].key, "digest.", 7) != 0);
    ck_assert_uint_eq(f.n, (size_t)(4 * m.n_params + 1));
    /* one entry per tensor, as XXH3-64 of its bytes: a reader without flowrl can check it */
    char *raw;
    size_t len;
    ck_assert_int_eq(fr_read_file(path, &raw, &len), FR_OK);
    for (size_t i = 0; i < f.n; i++) {
        char want[300], hex[17];
        fr_digest_hex(fr_digest_bytes(f.entries[i].t.data, fr_tensor_nbytes(&f.entries[i].t)), hex);
        snprintf(want, sizeof want, "\"digest.%s\":\"%s\"", f.entries[i].name, hex);
        ck_assert_msg(memmem(raw, len, want, strlen(want)) != NULL, "missing %s", want);
    }
    /* writing what was read gives the same bytes */
    void *again;
    size_t alen;
    ck_assert_int_eq(fr_st_write_mem(&f, &again, &alen), FR_OK);
    ck_assert_uint_eq(alen, len);
    ck_assert(memcmp(again, raw, len) == 0);
    free(again);
    free(raw);
    fr_st_free(&f);
    ck_assert_int_eq(fr_checkpoint_verify(path), FR_OK);
    fr_model_free(&m);
}
END_TEST

/* One flipped bit in the data of the first parameter: every loader refuses, naming both. */
START_TEST(test_flipped_data_bit_refused)
{
    char path[128];
    snprintf(path, sizeof path, "%s/step-3.safetensors", g_dir);
    fr_model m;
    write_checkpoint(path, 1, &m);
    long data = 8 + header_len(path);
    flip_byte(path, data + 5, 0x10);
    char want[256];
    snprintf(want, sizeof want, "%s: tensor '%s': digest ", path, m.params[0].name);
    fr_st_file f;
    ck_assert_int_eq(fr_st_read(&f, path), FR_ERR_FORMAT);
    ck_assert_msg(strstr(fr_last_error(), want) && strstr(fr_last_error(), "(corrupted)"), "%s", fr_last_error());
    ck_assert_uint_eq(f.n, 0);
    ck_assert_int_eq(fr_checkpoint_verify(path), FR_ERR_FORMAT);
    ck_assert_msg(strstr(fr_last_error(), want), "%s", fr_last_error());
    fr_model m2;
    ck_assert_int_eq(fr_model_load(&m2, fr_test_ref_be(), path), FR_ERR_FORMAT);
    ck_assert_msg(strstr(fr_last_error(), want), "%s", fr_last_error());
    /* the same through the in-memory reader, labelled by the caller */
    char *raw;
    size_t len;
    ck_assert_int_eq(fr_read_file(path, &raw, &len), FR_OK);
    ck_assert_int_eq(fr_st_read_mem(&f, raw, len, "archive:ck"), FR_ERR_FORMAT);
    ck_assert_msg(strstr(fr_last_error(), "archive:ck: tensor '"), "%s", fr_last_error());
    free(raw);
    /* the last byte belongs to the tensor the caller added */
    flip_byte(path, data + 5, 0x10);
    flip_byte(path, file_size(path) - 1, 0x01);
    ck_assert_int_eq(fr_checkpoint_verify(path), FR_ERR_FORMAT);
    ck_assert_msg(strstr(fr_last_error(), "tensor 'caller.extra': digest"), "%s", fr_last_error());
    fr_model_free(&m);
}
END_TEST

/* Every flipped header bit is an error that names the file: the JSON, the tensor table and
 * the metadata values are all covered (the header digest), the digests themselves too. */
START_TEST(test_flipped_header_names_file)
{
    char path[128];
    snprintf(path, sizeof path, "%s/step-3.safetensors", g_dir);
    fr_model m;
    write_checkpoint(path, 1, &m);
    fr_model_free(&m);
    long n = header_len(path);
    for (long at = 0; at < 8 + n; at++) {
        int bit = (int)(at % 8); /* one bit a byte, each bit position in turn */
        flip_byte(path, at, (unsigned char)(1u << bit));
        fr_st_file f;
        fr_status s = fr_st_read(&f, path);
        if (s == FR_OK) fr_st_free(&f);
        ck_assert_msg(s != FR_OK, "byte %ld bit %d: a flip there was accepted", at, bit);
        ck_assert_msg(strncmp(fr_last_error(), path, strlen(path)) == 0, "byte %ld: '%s' does not name the file", at,
                      fr_last_error());
        flip_byte(path, at, (unsigned char)(1u << bit));
    }
    ck_assert_int_eq(fr_checkpoint_verify(path), FR_OK);
}
END_TEST

/* Checkpoints written before digests existed still load. */
START_TEST(test_old_checkpoint_loads)
{
    char path[128];
    snprintf(path, sizeof path, "%s/old.safetensors", g_dir);
    fr_model m, m2;
    write_checkpoint(path, 0, &m);
    char *raw;
    size_t len;
    ck_assert_int_eq(fr_read_file(path, &raw, &len), FR_OK);
    ck_assert_ptr_null(memmem(raw, len, "digest.", 7));
    free(raw);
    ck_assert_int_eq(fr_checkpoint_verify(path), FR_OK);
    ck_assert_msg(fr_model_load(&m2, fr_test_ref_be(), path) == FR_OK, "%s", fr_last_error());
    for (int i = 0; i < m.n_params; i++)
        ck_assert(fr_tensor_digest(m.params[i].value) == fr_tensor_digest(m2.params[i].value));
    fr_st_file f;
    ck_assert_int_eq(fr_st_read(&f, path), FR_OK);
    ck_assert_int_eq(f.digests, 0);
    fr_st_free(&f);
    fr_model_free(&m);
    fr_model_free(&m2);
}
END_TEST

/* fr_model_save writes digests too. Hand-edited headers: a tensor without its digest, a digest
 * without its tensor, a changed metadata value or shape, a missing header digest: each is
 * FR_ERR_FORMAT naming the file and what changed. */
START_TEST(test_model_file_and_partial_digests)
{
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", g_dir);
    fr_model_config mc;
    ck_assert_int_eq(fr_model_preset("gmm2d-s", 2, 8, &mc), FR_OK);
    fr_model m;
    ck_assert_int_eq(fr_model_init(&m, fr_test_ref_be(), &mc, 5), FR_OK);
    ck_assert_int_eq(fr_model_save(&m, path), FR_OK);
    fr_st_file f;
    ck_assert_int_eq(fr_st_read(&f, path), FR_OK);
    ck_assert_int_eq(f.digests, 1);
    fr_st_free(&f);
    fr_model_free(&m);

    int64_t sh[1] = {4};
    fr_tensor a, b;
    ck_assert_int_eq(fr_tensor_alloc(&a, FR_F32, 1, sh), FR_OK);
    ck_assert_int_eq(fr_tensor_alloc(&b, FR_F32, 1, sh), FR_OK);
    ((float *)b.data)[2] = 1.5f;
    char hex_b[17], entry_b[64], entry_c[64];
    fr_digest_hex(fr_digest_bytes(b.data, fr_tensor_nbytes(&b)), hex_b);
    snprintf(entry_b, sizeof entry_b, "\"digest.b\":\"%s\",", hex_b);
    snprintf(entry_c, sizeof entry_c, "\"digest.b\":\"%s\",\"digest.c\":\"%s\",", hex_b, hex_b);
    fr_st_init(&f);
    f.digests = 1;
    ck_assert_int_eq(fr_st_add_take(&f, "a", &a), FR_OK);
    ck_assert_int_eq(fr_st_add_take(&f, "b", &b), FR_OK);
    ck_assert_int_eq(fr_st_set_meta(&f, "note", "x"), FR_OK);
    snprintf(path, sizeof path, "%s/partial.safetensors", g_dir);
    ck_assert_int_eq(fr_st_write(&f, path), FR_OK);
    fr_st_free(&f);
    ck_assert_int_eq(fr_checkpoint_verify(path), FR_OK);
    /* each edit keeps a well-formed header; the digests tell what changed */
    const struct {
        const char *from, *to, *msg;
    } edits[] = {
        {entry_b, "", "tensor 'b' has no stored digest"},
        {entry_b, entry_c, "'digest.c' is the digest of a tensor the file does not have"},
        {"\"note\":\"x\"", "\"note\":\"y\"", "header (metadata and tensor table): digest "},
        {"\"shape\":[4]", "\"shape\":[2,2]", "header (metadata and tensor table): digest "},
        {"\"digest.__metadata__\"", "\"digest-__metadata__\"", "header: no stored digest 'digest.__metadata__'"},
    };
    char copy[160];
    snprintf(copy, sizeof copy, "%s/edited.safetensors", g_dir);
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        edit_header(path, copy, edits[i].from, edits[i].to);
        ck_assert_int_eq(fr_checkpoint_verify(copy), FR_ERR_FORMAT);
        ck_assert_msg(strstr(fr_last_error(), edits[i].msg) && strstr(fr_last_error(), copy), "edit %zu: %s", i,
                      fr_last_error());
    }
}
END_TEST

/* ---- dir_lock.c ------------------------------------------------------------------------ */

START_TEST(test_dir_lock_fork)
{
    int ready[2], go[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(go), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        fr_lock_file l;
        char c = fr_dir_lock(g_dir, &l) == FR_OK ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1) _exit(2);
        if (read(go[0], &c, 1) != 1) _exit(3); /* hold until the parent has tried */
        _exit(0);                                /* exits holding it: the kernel releases it */
    }
    char c = 0;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    ck_assert_int_eq(c, 'y');
    fr_lock_file l;
    ck_assert_int_eq(fr_dir_lock(g_dir, &l), FR_ERR_IO);
    ck_assert_int_eq(l.fd, -1);
    char want[256];
    snprintf(want, sizeof want, "%s: locked by PID %ld (another flowrl run)", g_dir, (long)child);
    ck_assert_str_eq(fr_last_error(), want);
    ck_assert_int_eq(write(go[1], "x", 1), 1);
    int st;
    ck_assert_int_eq(waitpid(child, &st, 0), child);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* free after the holder exited, and the file now names this process */
    ck_assert_msg(fr_dir_lock(g_dir, &l) == FR_OK, "%s", fr_last_error());
    char p[128], *buf;
    size_t len;
    snprintf(p, sizeof p, "%s/%s", g_dir, FR_DIR_LOCK_NAME);
    ck_assert_int_eq(fr_read_file(p, &buf, &len), FR_OK);
    ck_assert_int_eq(atol(buf), (long)getpid());
    free(buf);
    /* a second taker in the same process is refused too (flock is per open file) */
    fr_lock_file l2;
    ck_assert_int_eq(fr_dir_lock(g_dir, &l2), FR_ERR_IO);
    fr_dir_unlock(&l);
    ck_assert_int_eq(l.fd, -1);
    fr_dir_unlock(&l); /* a no-op */
    ck_assert_int_eq(fr_dir_lock(g_dir, &l2), FR_OK);
    fr_dir_unlock(&l2);
    for (int i = 0; i < 2; i++) {
        close(ready[i]);
        close(go[i]);
    }
    /* a directory that does not exist */
    snprintf(p, sizeof p, "%s/missing", g_dir);
    ck_assert_int_eq(fr_dir_lock(p, &l), FR_ERR_IO);
    ck_assert_msg(strstr(fr_last_error(), p), "%s", fr_last_error());
}
END_TEST

Suite *suite_integrity(void)
{
    Suite *s = suite_create("integrity");
    TCase *tc = tcase_create("checkpoint digests and run-directory lock");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_digests_written_and_checked);
    tcase_add_test(tc, test_flipped_data_bit_refused);
    tcase_add_test(tc, test_flipped_header_names_file);
    tcase_add_test(tc, test_old_checkpoint_loads);
    tcase_add_test(tc, test_model_file_and_partial_digests);
    tcase_add_test(tc, test_dir_lock_fork);
    suite_add_tcase(s, tc);
    return s;
}
