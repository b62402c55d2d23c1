/* fr_tensor basics and the floating-point build contract. */
#include "flowrl/buildinfo.h"
#include "flowrl/tensor.h"
#include "tests/suites.h"

START_TEST(test_alloc_and_views)
{
    fr_tensor t;
    ck_assert_int_eq(fr_tensor_alloc(&t, FR_F32, 3, (int64_t[]){2, 3, 4}), FR_OK);
    ck_assert_int_eq(fr_tensor_numel(&t), 24);
    ck_assert_uint_eq(fr_tensor_nbytes(&t), 96);
    float *d = t.data;
    for (int i = 0; i < 24; i++) ck_assert(d[i] == 0.0f);
    fr_tensor c;
    d[5] = 3.5f;
    ck_assert_int_eq(fr_tensor_clone(&c, &t), FR_OK);
    ck_assert(((float *)c.data)[5] == 3.5f && c.data != t.data && fr_tensor_same_shape(&c, &t));
    fr_tensor v = fr_tensor_f32(d, 2, (int64_t[]){4, 6});
    ck_assert(!v.owned && !fr_tensor_same_shape(&v, &t));
    fr_tensor_free(&v); /* a view frees nothing */
    ck_assert(d[5] == 3.5f);
    char buf[64];
    ck_assert_str_eq(fr_shape_str(t.ndim, t.shape, buf, sizeof buf), "(2, 3, 4)");
    fr_tensor_free(&c);
    fr_tensor_free(&t);
    ck_assert_ptr_null(t.data);
}
END_TEST

START_TEST(test_bad_shapes)
{
    fr_tensor t;
    ck_assert_int_eq(fr_tensor_alloc(&t, FR_F32, 5, (int64_t[]){1, 1, 1, 1, 1}), FR_ERR_ARG);
    ck_assert_int_eq(fr_tensor_alloc(&t, FR_F32, 2, (int64_t[]){-1, 3}), FR_ERR_ARG);
    ck_assert_int_eq(fr_shape_numel(2, (int64_t[]){INT64_MAX / 2, 3}), -1);
    ck_assert_int_eq(fr_tensor_alloc(&t, FR_F32, 0, NULL), FR_OK); /* a scalar */
    ck_assert_int_eq(fr_tensor_numel(&t), 1);
    fr_tensor_free(&t);
}
END_TEST

START_TEST(test_dtypes)
{
    for (int i = 0; i < FR_DTYPE_COUNT; i++) {
        fr_dtype back;
        ck_assert(fr_dtype_from_name(fr_dtype_name((fr_dtype)i), &back) && back == (fr_dtype)i);
        ck_assert_uint_gt(fr_dtype_size((fr_dtype)i), 0);
    }
    fr_dtype x;
    ck_assert(!fr_dtype_from_name("F8", &x));
    ck_assert_uint_eq(fr_dtype_size(FR_BF16), 2);
}
END_TEST

START_TEST(test_fp_contract)
{
    /* The library's own check that it was built with -ffp-contract=off, without fast-math. */
    ck_assert_msg(fr_fp_selftest() == FR_OK, "%s", fr_last_error());
}
END_TEST

Suite *suite_tensor(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("tensor");
    tcase_add_test(tc, test_alloc_and_views);
    tcase_add_test(tc, test_bad_shapes);
    tcase_add_test(tc, test_dtypes);
    tcase_add_test(tc, test_fp_contract);
    suite_add_tcase(s, tc);
    return s;
}
