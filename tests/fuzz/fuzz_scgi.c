/*
 * fuzz_scgi.c — libFuzzer target for the SCGI decoder; the driver is
 * tests/fuzz/fuzz_unframed.h.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. \
 *     protocols/params.c protocols/unframed.c protocols/scgi.c tests/fuzz/fuzz_scgi.c \
 *     -o fuzz_scgi
 *   ./fuzz_scgi tests/fuzz/corpus/scgi
 */
#define CODEC proto_scgi
#include "fuzz_unframed.h"

/* The CONTENT_LENGTH the params table says, by an independent reading: the
 * first pair, decimal digits, and no second CONTENT_LENGTH or SCGI. */
static int64_t expected_length(const struct params *p)
{
    CHECK(p->count >= 1);
    const struct params_entry *e = &p->entries[0];
    const char *v = params_value(p, e);
    CHECK(strcmp(params_name(p, e), "CONTENT_LENGTH") == 0);
    CHECK(e->value_len > 0 && strspn(v, "0123456789") == e->value_len);
    int scgi = 0;
    for (size_t i = 1; i < p->count; i++) {
        const struct params_entry *x = &p->entries[i];
        CHECK(!(x->name_len == 14 && !memcmp(params_name(p, x), "CONTENT_LENGTH", 14)));
        if (x->name_len == 4 && !memcmp(params_name(p, x), "SCGI", 4)) {
            CHECK(!scgi++ && x->value_len == 1 && params_value(p, x)[0] == '1');
        }
    }
    return (int64_t)strtoull(v, NULL, 10);
}
