/*
 * fuzz_uwsgi.c — libFuzzer target for the uwsgi decoder; the driver is
 * tests/fuzz/fuzz_unframed.h.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. \
 *     protocols/params.c protocols/unframed.c protocols/uwsgi.c tests/fuzz/fuzz_uwsgi.c \
 *     -o fuzz_uwsgi
 *   ./fuzz_uwsgi tests/fuzz/corpus/uwsgi
 */
#define CODEC proto_uwsgi
#include "fuzz_unframed.h"

/* The CONTENT_LENGTH the params table says, by an independent reading. */
static int64_t expected_length(const struct params *p)
{
    size_t n;
    const char *v = params_getn(p, "CONTENT_LENGTH", 14, &n);
    if (!v || n == 0)
        return 0;
    CHECK(strspn(v, "0123456789") == n);
    return (int64_t)strtoull(v, NULL, 10);
}
