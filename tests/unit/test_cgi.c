/*
 * test_cgi.c — the parts of the CGI adapters that need no process: the
 * header block (src/apps/cgi_head.c: split anywhere, CRLF or LF, too big,
 * Status:, Location:), which front-end params pass to a script
 * (src/apps/cgi/cgi_env.c), and which file a request may run
 * (src/apps/cgi/cgi_script.c: PATH_INFO by walking back, and the
 * refusals).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "apps/cgi/cgi_env.h"
#include "apps/cgi/cgi_script.h"
#include "apps/cgi_head.h"

static struct cgi_head head;

/* Feed TEXT in pieces of STEP bytes; the body bytes that come with the end
 * of the head go into BODY. Returns the last state. */
static enum cgi_head_state feed(const char *text, size_t step, char *body, size_t cap)
{
    cgi_head_init(&head);
    size_t n = strlen(text), used = 0;
    body[0] = '\0';
    enum cgi_head_state st = CGI_HEAD_MORE;
    for (size_t off = 0; off < n && st == CGI_HEAD_MORE; off += step) {
        size_t len = n - off < step ? n - off : step;
        struct cgi_head_rest rest;
        st = cgi_head_feed(&head, (const uint8_t *)text + off, len, &rest);
        if (st == CGI_HEAD_DONE) {
            for (int i = 0; i < 2; i++) {
                assert_true(used + rest.len[i] < cap);
                memcpy(body + used, rest.p[i], rest.len[i]);
                used += rest.len[i];
            }
            body[used] = '\0';
            /* The bytes after this piece are body too. */
            size_t after = off + len;
            assert_true(used + (n - after) < cap);
            memcpy(body + used, text + after, n - after);
            body[used + n - after] = '\0';
        }
    }
    return st;
}

static void cgi_head_finds_the_blank_line_at_every_split(void **state)
{
    (void)state;
    const char *texts[] = {"Status: 404 Gone\r\nX-A: 1\r\n\r\nbody bytes",
                           "Status: 404 Gone\nX-A: 1\n\nbody bytes"};
    for (size_t t = 0; t < 2; t++) {
        for (size_t step = 1; step <= strlen(texts[t]); step++) {
            char body[64];
            assert_int_equal(feed(texts[t], step, body, sizeof(body)), CGI_HEAD_DONE);
            assert_string_equal(body, "body bytes");
            cgi_head_parse(&head);
            assert_int_equal(head.status, 404);
            assert_string_equal(head.reason, "Gone");
            assert_int_equal(head.nfields, 1);
            assert_string_equal(head.fields[0].name, "X-A");
            assert_string_equal(head.fields[0].value, "1");
            assert_null(head.location);
        }
    }
}

static void cgi_head_location_without_status(void **state)
{
    (void)state;
    char body[16];
    assert_int_equal(feed("Location: /next?a=1\r\n\r\n", 5, body, sizeof(body)), CGI_HEAD_DONE);
    cgi_head_parse(&head);
    assert_int_equal(head.status, 0);
    assert_string_equal(head.location, "/next?a=1");
    assert_string_equal(body, "");
}

static void cgi_head_drops_lines_without_colon_and_bad_status(void **state)
{
    (void)state;
    char body[16];
    assert_int_equal(feed("garbage\nStatus: 42\nA:b\n\n", 64, body, sizeof(body)), CGI_HEAD_DONE);
    cgi_head_parse(&head);
    assert_int_equal(head.dropped, 1);
    assert_int_equal(head.status, 0); /* 42 is no status */
    assert_int_equal(head.nfields, 1);
    assert_string_equal(head.fields[0].value, "b");
}

static void cgi_head_over_the_limit_is_malformed(void **state)
{
    (void)state;
    char *big = malloc(CGI_HEAD_MAX + 100);
    memset(big, 'x', CGI_HEAD_MAX + 99);
    big[CGI_HEAD_MAX + 99] = '\0';
    char body[16];
    assert_int_equal(feed(big, 1000, body, sizeof(body)), CGI_HEAD_TOO_BIG);
    free(big);
}

static void cgi_env_passes_cgi_names_and_listed_ones_only(void **state)
{
    (void)state;
    char *listed[] = {"GIT_PROJECT_ROOT"};
    struct cgi_env_base base = {.params = listed, .params_count = 1};
#define PASSES(s) cgi_env_passes(&base, s, strlen(s))
    assert_true(PASSES("QUERY_STRING"));
    assert_true(PASSES("REMOTE_USER"));
    assert_true(PASSES("HTTP_COOKIE"));
    assert_true(PASSES("GIT_PROJECT_ROOT"));
    assert_false(PASSES("HTTP_PROXY")); /* httpoxy */
    assert_false(PASSES("LD_PRELOAD"));
    assert_false(PASSES("PATH"));
    assert_false(PASSES("GIT_PROJECT_ROOTX"));
    assert_false(PASSES("HTTP_"));
    assert_false(PASSES(""));
#undef PASSES
}

static char dir[256], root[1024];

static void put(const char *name, mode_t mode)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\n", f);
    fclose(f);
    assert_int_equal(chmod(p, mode), 0);
}

static int script_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/corral-test-cgi.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/root", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/root/sub", dir);
    mkdir(p, 0755);
    put("root/run.sh", 0755);
    put("root/plain.txt", 0644);
    put("root/setuid.sh", 04755);
    put("outside.sh", 0755);
    char target[PATH_MAX];
    snprintf(target, sizeof(target), "%s/outside.sh", dir);
    snprintf(p, sizeof(p), "%s/root/link.sh", dir);
    if (symlink(target, p) < 0)
        return -1;
    snprintf(p, sizeof(p), "%s/root/inlink.sh", dir);
    if (symlink("run.sh", p) < 0)
        return -1;
    snprintf(p, sizeof(p), "%s/root", dir);
    char real[PATH_MAX];
    if (!realpath(p, real) || strlen(real) >= sizeof(root))
        return -1;
    strcpy(root, real);
    return 0;
}

static int script_teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static enum cgi_script_verdict resolve(const char *rel, struct cgi_script *s)
{
    char name[2048];
    snprintf(name, sizeof(name), "%s/%s", root, rel);
    return cgi_script_resolve(root, name, s);
}

static void cgi_script_resolves_and_refuses(void **state)
{
    (void)state;
    struct cgi_script *s = malloc(sizeof(*s));
    char want[2048];
    snprintf(want, sizeof(want), "%s/run.sh", root);
    assert_int_equal(resolve("run.sh", s), CGI_SCRIPT_OK);
    assert_string_equal(s->path, want);
    assert_string_equal(s->dir, root);
    assert_string_equal(s->tail, "");
    assert_int_equal(resolve("run.sh/a/b", s), CGI_SCRIPT_OK);
    assert_string_equal(s->path, want);
    assert_string_equal(s->tail, "/a/b");
    assert_int_equal(resolve("inlink.sh", s), CGI_SCRIPT_OK); /* a symlink inside: its target */
    assert_string_equal(s->path, want);
    assert_int_equal(resolve("link.sh", s), CGI_SCRIPT_OUTSIDE);
    assert_int_equal(resolve("../outside.sh", s), CGI_SCRIPT_OUTSIDE);
    assert_int_equal(resolve("sub/../../outside.sh", s), CGI_SCRIPT_OUTSIDE);
    assert_int_equal(resolve("plain.txt", s), CGI_SCRIPT_NOT_EXEC);
    assert_int_equal(resolve("setuid.sh", s), CGI_SCRIPT_SET_ID);
    assert_int_equal(resolve("sub", s), CGI_SCRIPT_DIRECTORY);
    assert_int_equal(resolve("sub/missing.sh", s), CGI_SCRIPT_NOT_FOUND);
    assert_int_equal(resolve("missing.sh", s), CGI_SCRIPT_NOT_FOUND);
    assert_int_equal(cgi_script_resolve(root, "relative/run.sh", s), CGI_SCRIPT_NOT_FOUND);
    assert_int_equal(cgi_script_status(CGI_SCRIPT_OUTSIDE), 403);
    assert_int_equal(cgi_script_status(CGI_SCRIPT_NOT_FOUND), 404);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cgi_head_finds_the_blank_line_at_every_split),
        cmocka_unit_test(cgi_head_location_without_status),
        cmocka_unit_test(cgi_head_drops_lines_without_colon_and_bad_status),
        cmocka_unit_test(cgi_head_over_the_limit_is_malformed),
        cmocka_unit_test(cgi_env_passes_cgi_names_and_listed_ones_only),
        cmocka_unit_test_setup_teardown(cgi_script_resolves_and_refuses, script_setup,
                                        script_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
