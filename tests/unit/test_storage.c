/*
 * test_storage.c - the large-block storage cache: a freed large block is reused by the next
 * allocation of its size class, account charging is unaffected by caching, the cache bound
 * holds, trimming empties it, and zero-filled storage is zero even when the block is reused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "td_core.h"

#define MIB ((size_t)1 << 20)

static int setup(void **state)
{
    (void)state;
    td_storage_cache_set_limit((size_t)1 << 30);
    td_storage_cache_trim();
    return 0;
}

static void test_reuse_same_class(void **state)
{
    (void)state;
    struct td_account acct = {0};
    struct td_error err;
    struct td_storage *a = NULL, *b = NULL;
    assert_int_equal(td_storage_new(8 * MIB, false, &acct, &a, &err), 0);
    assert_int_equal(acct.bytes, 8 * MIB);
    void *first = a->data;
    memset(a->data, 0xab, 8 * MIB);
    td_storage_release(a);
    assert_int_equal(acct.bytes, 0);
    assert_int_equal(td_storage_cache_bytes(), 8 * MIB);
    /* 7.5 MiB rounds to the same 2 MiB class as 8 MiB: the block comes back. */
    assert_int_equal(td_storage_new(8 * MIB - MIB / 2, false, &acct, &b, &err), 0);
    assert_ptr_equal(b->data, first);
    assert_int_equal(td_storage_cache_bytes(), 0);
    assert_int_equal(acct.bytes, 8 * MIB - MIB / 2);
    td_storage_release(b);
    td_storage_cache_trim();
    assert_int_equal(td_storage_cache_bytes(), 0);
}

static void test_zero_fill_on_reuse(void **state)
{
    (void)state;
    struct td_error err;
    struct td_storage *a = NULL, *b = NULL;
    assert_int_equal(td_storage_new(4 * MIB, false, NULL, &a, &err), 0);
    memset(a->data, 0x5a, 4 * MIB);
    td_storage_release(a);
    assert_int_equal(td_storage_new(4 * MIB, true, NULL, &b, &err), 0);
    const unsigned char *p = b->data;
    for (size_t i = 0; i < 4 * MIB; i += 4093)
        assert_int_equal(p[i], 0);
    assert_int_equal(p[4 * MIB - 1], 0);
    td_storage_release(b);
    td_storage_cache_trim();
}

static void test_cache_limit(void **state)
{
    (void)state;
    struct td_error err;
    struct td_storage *a = NULL, *b = NULL;
    td_storage_cache_set_limit(6 * MIB);
    assert_int_equal(td_storage_new(4 * MIB, false, NULL, &a, &err), 0);
    assert_int_equal(td_storage_new(4 * MIB, false, NULL, &b, &err), 0);
    td_storage_release(a);
    td_storage_release(b);   /* would exceed the 6 MiB bound: unmapped instead */
    assert_int_equal(td_storage_cache_bytes(), 4 * MIB);
    td_storage_cache_set_limit(0);
    assert_int_equal(td_storage_cache_bytes(), 0);
    td_storage_cache_set_limit((size_t)1 << 30);
}

static void test_small_blocks_not_cached(void **state)
{
    (void)state;
    struct td_error err;
    struct td_storage *a = NULL;
    assert_int_equal(td_storage_new(1000, false, NULL, &a, &err), 0);
    td_storage_release(a);
    assert_int_equal(td_storage_cache_bytes(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_reuse_same_class, setup),
        cmocka_unit_test_setup(test_zero_fill_on_reuse, setup),
        cmocka_unit_test_setup(test_cache_limit, setup),
        cmocka_unit_test_setup(test_small_blocks_not_cached, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
