/*
 * fuzz_reexec.c — libFuzzer target for the $CORRAL_REEXEC parser
 * (reexec_parse in src/reexec_state.c), which a re-executed master runs on
 * its environment.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -Iprotocols \
 *     src/reexec_state.c ...(run.sh lists the rest) tests/fuzz/fuzz_reexec.c -lconfig
 *   ./fuzz_reexec tests/fuzz/corpus/reexec
 *
 * reexec_parse reads a C string: the input is copied into a buffer of
 * exactly its length + 1 (the NUL), so ASan sees any read past it. Besides
 * "no crash":
 *  - a refusal has a reason;
 *  - an accepted state keeps the parser's promises (counts within their
 *    limits, descriptors 3 and up and each named once, paths and descriptors
 *    of the logs agree);
 *  - the text is canonical: reexec_format of the state needs exactly the
 *    input's length (it fails with one byte less) and writes the input's
 *    tokens, perhaps in another order;
 *  - reexec_parse of that text gives the identical struct (memcmp: the
 *    parser zeroes the struct first).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/reexec_state.h"

#include "fuzz_check.h"

static void check_state(const struct reexec_state *s)
{
    int fds[1 + REEXEC_MAX_LISTENERS + 1 + REEXEC_MAX_CLIENTS + 2];
    size_t n = 0;
    CHECK(s->listener_count >= 1 && s->listener_count <= REEXEC_MAX_LISTENERS);
    CHECK(s->client_count <= REEXEC_MAX_CLIENTS);
    CHECK(s->pool[0] && memchr(s->pool, '\0', sizeof(s->pool)));
    CHECK(s->threads >= 1 && s->threads <= 65535);
    CHECK(s->max_processes >= 1 && s->max_processes <= 65535 && s->target <= 65535);
    fds[n++] = s->sb_fd;
    for (size_t i = 0; i < s->listener_count; i++) {
        const struct reexec_listener *l = &s->listeners[i];
        CHECK(l->spec[0] && memchr(l->spec, '\0', sizeof(l->spec)));
        CHECK(l->backlog >= 1 && l->backlog <= 65535);
        fds[n++] = l->fd;
    }
    if (s->control_fd >= 0) {
        CHECK(s->control_path[0]);
        fds[n++] = s->control_fd;
    } else {
        CHECK(s->control_fd == -1 && !s->control_path[0]);
    }
    for (size_t i = 0; i < s->client_count; i++)
        fds[n++] = s->clients[i];
    CHECK((s->error_log_fd >= 0) == (s->error_log[0] != '\0'));
    CHECK((s->access_log_fd >= 0) == (s->access_log[0] != '\0'));
    if (s->error_log_fd >= 0)
        fds[n++] = s->error_log_fd;
    else
        CHECK(s->error_log_fd == -1);
    if (s->access_log_fd >= 0)
        fds[n++] = s->access_log_fd;
    else
        CHECK(s->access_log_fd == -1);
    for (size_t i = 0; i < n; i++) {
        CHECK(fds[i] >= 3);
        for (size_t j = 0; j < i; j++)
            CHECK(fds[i] != fds[j]);
    }
}

static int by_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The space-separated tokens of TEXT (changed in place), sorted; their
 * number. */
static size_t tokens(char *text, char **out, size_t max)
{
    size_t n = 0;
    for (char *t = strtok(text, " "); t; t = strtok(NULL, " ")) {
        CHECK(n < max);
        out[n++] = t;
    }
    qsort(out, n, sizeof(*out), by_text);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct reexec_state s, again;
    char err[256];
    char *text = malloc(size + 1);
    CHECK(text);
    memcpy(text, data, size);
    text[size] = '\0';
    size_t len = strlen(text);

    err[0] = '\0';
    if (reexec_parse(text, &s, err, sizeof(err)) != REEXEC_PARSE_OK) {
        CHECK(err[0] && memchr(err, '\0', sizeof(err)));
        free(text);
        return 0;
    }
    check_state(&s);

    /* Exactly the input's length and its NUL; one byte less does not do. */
    char *out = malloc(len + 1);
    CHECK(out);
    CHECK(reexec_format(&s, out, len + 1) == 0);
    CHECK(strlen(out) == len);
    CHECK(reexec_format(&s, out, len) == -1);
    CHECK(reexec_format(&s, out, len + 1) == 0);

    memset(&again, 0xa5, sizeof(again));
    err[0] = '\0';
    if (reexec_parse(out, &again, err, sizeof(err)) != REEXEC_PARSE_OK)
        fprintf(stderr, "formatted as \"%s\": %s\n", out, err);
    CHECK(reexec_parse(out, &again, err, sizeof(err)) == REEXEC_PARSE_OK);
    CHECK(memcmp(&s, &again, sizeof(s)) == 0);

    /* The same tokens: at most every other byte starts one. */
    size_t max = len / 2 + 2;
    char **a = malloc(max * sizeof(*a)), **b = malloc(max * sizeof(*b));
    CHECK(a && b);
    size_t na = tokens(text, a, max), nb = tokens(out, b, max);
    CHECK(na == nb);
    for (size_t i = 0; i < na; i++)
        CHECK(strcmp(a[i], b[i]) == 0);
    free(a);
    free(b);
    free(out);
    free(text);
    return 0;
}
