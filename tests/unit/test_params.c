/*
 * test_params.c — the params table: fields in pieces, lookup, limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "protocols/params.h"

static void push_pair(struct params *p, const char *name, const char *value)
{
    assert_int_equal(params_push(p, name, strlen(name)), PARAMS_OK);
    assert_int_equal(params_end_field(p), PARAMS_OK);
    assert_int_equal(params_push(p, value, strlen(value)), PARAMS_OK);
    assert_int_equal(params_end_field(p), PARAMS_OK);
}

static void params_builds_fields_from_pieces(void **state)
{
    (void)state;
    struct params p;
    params_init(&p, 1024, 10, 100);
    assert_int_equal(params_push(&p, "REQUEST_", 8), PARAMS_OK);
    assert_int_equal(params_push(&p, "METHOD", 6), PARAMS_OK);
    assert_int_equal(params_end_field(&p), PARAMS_OK);
    assert_int_equal(params_push(&p, "G", 1), PARAMS_OK);
    assert_int_equal(params_push(&p, "ET", 2), PARAMS_OK);
    assert_int_equal(params_end_field(&p), PARAMS_OK);
    assert_int_equal(p.count, 1);
    assert_string_equal(params_get(&p, "REQUEST_METHOD"), "GET");
    assert_string_equal(params_name(&p, params_last(&p)), "REQUEST_METHOD");
    params_free(&p);
}

static void params_lookup_is_exact_and_first_wins(void **state)
{
    (void)state;
    struct params p;
    params_init(&p, 1024, 10, 100);
    push_pair(&p, "A", "1");
    push_pair(&p, "AB", "2");
    push_pair(&p, "A", "3");
    push_pair(&p, "EMPTY", "");
    assert_string_equal(params_get(&p, "A"), "1");
    assert_string_equal(params_get(&p, "AB"), "2");
    assert_string_equal(params_get(&p, "EMPTY"), "");
    assert_null(params_get(&p, "a"));
    assert_null(params_get(&p, "ABC"));
    params_free(&p);
}

static void params_keeps_binary_bytes_and_grows(void **state)
{
    (void)state;
    struct params p;
    params_init(&p, 1 << 20, 10000, 1 << 20);
    char name[32], value[300];
    memset(value, 0xE9, sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof(name), "N%d", i);
        push_pair(&p, name, value);
    }
    assert_int_equal(p.count, 2000);
    size_t vl;
    assert_memory_equal(params_getn(&p, "N1999", 5, &vl), value, sizeof(value) - 1);
    assert_int_equal(vl, sizeof(value) - 1);
    params_free(&p);
}

static void params_refuses_over_limits(void **state)
{
    (void)state;
    struct params p;
    params_init(&p, 10, 2, 6);
    /* One field over max_field. */
    assert_int_equal(params_push(&p, "123456", 6), PARAMS_OK);
    assert_int_equal(params_push(&p, "7", 1), PARAMS_FIELD_TOO_LONG);
    params_reset(&p);
    /* Total over max_bytes: 10 bytes fit exactly, one more does not. */
    push_pair(&p, "AB", "CDE");
    assert_int_equal(params_push(&p, "FGHIJ", 5), PARAMS_OK);
    assert_int_equal(params_end_field(&p), PARAMS_OK);
    assert_int_equal(params_push(&p, "K", 1), PARAMS_TOO_BIG);
    params_reset(&p);
    /* More pairs than max_count. */
    push_pair(&p, "A", "1");
    push_pair(&p, "B", "2");
    assert_int_equal(params_push(&p, "C", 1), PARAMS_OK);
    assert_int_equal(params_end_field(&p), PARAMS_TOO_MANY);
    assert_string_equal(params_strerror(PARAMS_TOO_MANY), "too many params");
    params_free(&p);
}

static void params_reset_forgets_but_keeps_memory(void **state)
{
    (void)state;
    struct params p;
    params_init(&p, 1024, 10, 100);
    push_pair(&p, "A", "1");
    char *store = p.store;
    params_reset(&p);
    assert_int_equal(p.count, 0);
    assert_null(params_get(&p, "A"));
    push_pair(&p, "B", "2");
    assert_ptr_equal(p.store, store);
    assert_string_equal(params_get(&p, "B"), "2");
    params_free(&p);
}

static void params_parses_lengths_strictly(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(params_parse_length("0", 1, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(params_parse_length("10485760", 8, &v), 0);
    assert_int_equal(v, 10485760);
    assert_int_equal(params_parse_length("9223372036854775807", 19, &v), 0);
    assert_int_equal(params_parse_length("9223372036854775808", 19, &v), -1);
    assert_int_equal(params_parse_length("", 0, &v), -1);
    assert_int_equal(params_parse_length("-1", 2, &v), -1);
    assert_int_equal(params_parse_length("+1", 2, &v), -1);
    assert_int_equal(params_parse_length(" 5", 2, &v), -1);
    assert_int_equal(params_parse_length("12a", 3, &v), -1);
    assert_int_equal(params_parse_length("99999999999999999999", 20, &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(params_builds_fields_from_pieces),
        cmocka_unit_test(params_lookup_is_exact_and_first_wins),
        cmocka_unit_test(params_keeps_binary_bytes_and_grows),
        cmocka_unit_test(params_refuses_over_limits),
        cmocka_unit_test(params_reset_forgets_but_keeps_memory),
        cmocka_unit_test(params_parses_lengths_strictly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
