/*
 * test_json.c — the JSON writer (json.c) and reader (json_read.c): string
 * escaping, invalid UTF-8, separators, the size bound, and that what the
 * writer makes the reader takes back unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/json.h"
#include "ctl/json_read.h"

/* The document of one string value written from N bytes of S. */
static const char *json_of(struct json *j, const char *s, size_t n)
{
    json_reset(j);
    json_string_n(j, s, n);
    assert_false(json_failed(j));
    return json_text(j, NULL);
}

static void json_escapes_quotes_backslashes_and_controls(void **state)
{
    (void)state;
    struct json j;
    json_init(&j, 4096);
    assert_string_equal(json_of(&j, "a\"b\\c", 5), "\"a\\\"b\\\\c\"");
    assert_string_equal(json_of(&j, "\n\r\t\b\f", 5), "\"\\n\\r\\t\\b\\f\"");
    assert_string_equal(json_of(&j, "\x01\x1f\x7f", 3), "\"\\u0001\\u001f\x7f\"");
    /* A NUL inside the bytes is kept, escaped. */
    assert_string_equal(json_of(&j, "a\0b", 3), "\"a\\u0000b\"");
    /* '/' needs no escape; an empty string is "". */
    assert_string_equal(json_of(&j, "/x/", 3), "\"/x/\"");
    assert_string_equal(json_of(&j, "", 0), "\"\"");
    json_free(&j);
}

static void json_keeps_valid_utf8_and_replaces_invalid_bytes(void **state)
{
    (void)state;
    struct json j;
    json_init(&j, 4096);
    /* é (2 bytes), € (3), 😀 (4): kept as they are. */
    assert_string_equal(json_of(&j, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9),
                        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    /* A lone continuation byte, a cut sequence, an overlong '/', a UTF-16
     * surrogate, a code point above U+10FFFF, 0xFF: each bad byte is U+FFFD. */
    assert_string_equal(json_of(&j, "a\x80z", 3), "\"a\\ufffdz\"");
    assert_string_equal(json_of(&j, "\xe2\x82", 2), "\"\\ufffd\\ufffd\"");
    assert_string_equal(json_of(&j, "\xc0\xaf", 2), "\"\\ufffd\\ufffd\"");
    assert_string_equal(json_of(&j, "\xed\xa0\x80", 3), "\"\\ufffd\\ufffd\\ufffd\"");
    assert_string_equal(json_of(&j, "\xf4\x90\x80\x80", 4),
                        "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    assert_string_equal(json_of(&j, "\xff", 1), "\"\\ufffd\"");
    json_free(&j);
}

static void json_places_commas_and_colons(void **state)
{
    (void)state;
    struct json j;
    json_init(&j, 4096);
    json_object_begin(&j);
    json_kv_bool(&j, "ok", true);
    json_key(&j, "list");
    json_array_begin(&j);
    json_uint(&j, 1);
    json_int(&j, -2);
    json_null(&j);
    json_object_begin(&j);
    json_object_end(&j);
    json_array_begin(&j);
    json_array_end(&j);
    json_array_end(&j);
    json_kv_double(&j, "avg", 1.23456, 3);
    json_kv_string(&j, "none", NULL);
    json_kv_uint(&j, "big", UINT64_MAX);
    json_object_end(&j);
    assert_false(json_failed(&j));
    assert_string_equal(json_text(&j, NULL), "{\"ok\":true,\"list\":[1,-2,null,{},[]],"
                                             "\"avg\":1.235,\"none\":null,"
                                             "\"big\":18446744073709551615}");
    json_free(&j);
}

static void json_writes_null_for_numbers_json_cannot_hold(void **state)
{
    (void)state;
    struct json j;
    json_init(&j, 4096);
    json_array_begin(&j);
    json_double(&j, NAN, 2);
    json_double(&j, INFINITY, 2);
    json_double(&j, -2.5, 1);
    json_array_end(&j);
    assert_string_equal(json_text(&j, NULL), "[null,null,-2.5]");
    json_free(&j);
}

static void json_fails_past_its_size_bound(void **state)
{
    (void)state;
    struct json j;
    json_init(&j, 64);
    json_array_begin(&j);
    for (int i = 0; i < 100; i++)
        json_string(&j, "0123456789");
    json_array_end(&j);
    assert_true(json_failed(&j));
    size_t len;
    json_text(&j, &len);
    assert_true(len <= 64);
    /* json_reset starts a new document within the bound. */
    json_reset(&j);
    assert_false(json_failed(&j));
    json_string(&j, "ok");
    assert_string_equal(json_text(&j, NULL), "\"ok\"");
    json_free(&j);
}

static void json_fails_on_misuse(void **state)
{
    (void)state;
    struct json j;
    json_init(&j, 4096);
    json_array_end(&j); /* nothing open */
    assert_true(json_failed(&j));
    json_reset(&j);
    json_array_begin(&j);
    json_key(&j, "k"); /* a key in an array */
    assert_true(json_failed(&j));
    json_reset(&j);
    json_object_begin(&j);
    json_uint(&j, 1); /* a value without its key */
    assert_true(json_failed(&j));
    json_reset(&j);
    json_object_begin(&j);
    json_array_end(&j); /* the wrong bracket */
    assert_true(json_failed(&j));
    json_reset(&j);
    for (int i = 0; i <= JSON_MAX_DEPTH; i++)
        json_array_begin(&j);
    assert_true(json_failed(&j));
    json_free(&j);
}

/* ---- the reader ---- */

static void json_reader_round_trips_every_byte(void **state)
{
    (void)state;
    struct json j;
    json_init(&j, 1 << 16);
    char all[256];
    for (int i = 0; i < 128; i++)
        all[i] = (char)i; /* ASCII only: high bytes are replaced, tested above */
    json_object_begin(&j);
    json_key(&j, "s");
    json_string_n(&j, all, 128);
    json_kv_string(&j, "u", "\xc3\xa9\xf0\x9f\x98\x80");
    json_object_end(&j);
    char err[128];
    size_t len;
    const char *text = json_text(&j, &len);
    struct json_value *v = json_parse(text, len, err, sizeof(err));
    assert_non_null(v);
    const struct json_value *s = json_get(v, "s");
    assert_non_null(s);
    assert_int_equal(s->length, 128);
    assert_memory_equal(s->string, all, 128);
    assert_string_equal(json_str(json_get(v, "u"), ""), "\xc3\xa9\xf0\x9f\x98\x80");
    json_value_free(v);
    json_free(&j);
}

static void json_reader_reads_values_and_escapes(void **state)
{
    (void)state;
    char err[128];
    const char *text = " {\"a\": [1, -2.5e1, 0, true, false, null], \"b\": {\"c\": \"x\\u00e9"
                       "\\ud83d\\ude00\\n\\/\"}, \"n\": 12345678901} ";
    struct json_value *v = json_parse(text, strlen(text), err, sizeof(err));
    assert_non_null(v);
    const struct json_value *a = json_get(v, "a");
    assert_int_equal(a->type, JSON_ARRAY);
    assert_int_equal(a->count, 6);
    assert_true(a->child->number == 1);
    assert_true(a->child->next->number == -25);
    assert_int_equal(a->child->next->next->next->type, JSON_TRUE);
    assert_int_equal(a->child->next->next->next->next->next->type, JSON_NULL);
    assert_string_equal(json_str(json_get(json_get(v, "b"), "c"), ""),
                        "x\xc3\xa9\xf0\x9f\x98\x80\n/");
    assert_true(json_number(json_get(v, "n"), 0) == 12345678901.0);
    assert_null(json_get(v, "missing"));
    assert_true(json_number(json_get(v, "missing"), 7) == 7);
    json_value_free(v);
}

static void json_reader_refuses_malformed_text(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",         "{",          "[1,]",         "{\"a\" 1}", "{\"a\":1,}", "[1 2]",
        "01",       "1.",         "-",            "tru",       "\"abc",      "\"a\\x\"",
        "\"\\ud800\"", "\"\\udc00\"", "\"a\nb\"",  "{1:2}",     "[1] x",      "nul",
    };
    char err[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct json_value *v = json_parse(bad[i], strlen(bad[i]), err, sizeof(err));
        if (v)
            fail_msg("accepted malformed JSON: %s", bad[i]);
        assert_non_null(strstr(err, "at byte "));
    }
    /* Nesting deeper than the limit is refused, not a stack overflow. */
    static char deep[100001];
    memset(deep, '[', sizeof(deep) - 1);
    assert_null(json_parse(deep, sizeof(deep) - 1, err, sizeof(err)));
    assert_non_null(strstr(err, "nested too deep"));
    /* The limit counts arrays and objects, an empty innermost one too. */
    char at_limit[2 * JSON_READ_MAX_DEPTH + 3];
    for (size_t levels = JSON_READ_MAX_DEPTH; levels <= JSON_READ_MAX_DEPTH + 1; levels++) {
        memset(at_limit, '[', levels);
        memset(at_limit + levels, ']', levels);
        struct json_value *v = json_parse(at_limit, 2 * levels, err, sizeof(err));
        if (levels == JSON_READ_MAX_DEPTH) {
            assert_non_null(v);
            json_value_free(v);
        } else {
            assert_null(v);
            assert_non_null(strstr(err, "nested too deep"));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_escapes_quotes_backslashes_and_controls),
        cmocka_unit_test(json_keeps_valid_utf8_and_replaces_invalid_bytes),
        cmocka_unit_test(json_places_commas_and_colons),
        cmocka_unit_test(json_writes_null_for_numbers_json_cannot_hold),
        cmocka_unit_test(json_fails_past_its_size_bound),
        cmocka_unit_test(json_fails_on_misuse),
        cmocka_unit_test(json_reader_round_trips_every_byte),
        cmocka_unit_test(json_reader_reads_values_and_escapes),
        cmocka_unit_test(json_reader_refuses_malformed_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
