/*
 * test_reexec.c — $CORRAL_REEXEC, what a --preload reload hands to the
 * re-executed master: written and read back, and every malformed text
 * refused with a reason; and the scoreboard memfd it names, adopted only
 * when of this build's layout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "master/reexec_state.h"
#include "core/scoreboard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

static struct reexec_state state_a, state_b;
static char text[1 << 16];

/* A state with everything set, paths with bytes that need escaping. */
static void fill(struct reexec_state *s)
{
    memset(s, 0, sizeof(*s));
    s->sb_fd = 5;
    s->target = 2;
    s->threads = 4;
    s->max_processes = 16;
    snprintf(s->pool, sizeof(s->pool), "dynamic");
    s->chain = true;
    s->pending_hup = false;
    s->listener_count = 2;
    s->listeners[0] = (struct reexec_listener){.fd = 6, .backlog = 1024, .owns_path = true};
    snprintf(s->listeners[0].spec, sizeof(s->listeners[0].spec), "uwsgi:unix:/run/a b,c%%d.sock");
    s->listeners[1] = (struct reexec_listener){.fd = 7, .backlog = 128, .owns_path = false};
    snprintf(s->listeners[1].spec, sizeof(s->listeners[1].spec), "fastcgi:tcp:[::1]:9000");
    s->control_fd = 8;
    snprintf(s->control_path, sizeof(s->control_path), "/run/corral ctl.sock");
    s->client_count = 2;
    s->clients[0] = 9;
    s->clients[1] = 10;
    s->error_log_fd = 11;
    snprintf(s->error_log, sizeof(s->error_log), "logs/error=1.log");
    s->access_log_fd = -1;
    snprintf(s->pidfile, sizeof(s->pidfile), "-");
    s->pidfile_fd = 12;
    snprintf(s->why, sizeof(s->why), "corralctl chain-reload");
}

/* A scoreboard of this layout is adopted; one of another layout, or one
 * without the mark (the build before it), is refused with a reason and its
 * descriptor left open for the caller's fallback. */
static void scoreboard_attach_checks_the_layout(void **state)
{
    (void)state;
    struct scoreboard a, b;
    char err[256];
    assert_int_equal(scoreboard_create(&a, 4, 2, 1), 0);
    a.hdr->bank_size = 2; /* two banks, as the master makes them */
    assert_int_equal(scoreboard_attach(&b, a.fd, err, sizeof(err)), 0);
    assert_int_equal(b.hdr->max_workers, 4);
    munmap(b.map, b.map_len);

    a.hdr->layout = SB_LAYOUT + 1;
    err[0] = '\0';
    assert_int_equal(scoreboard_attach(&b, a.fd, err, sizeof(err)), SB_ATTACH_LAYOUT);
    char want[64];
    snprintf(want, sizeof(want), "has layout %u, this build layout %u", SB_LAYOUT + 1, SB_LAYOUT);
    assert_non_null(strstr(err, want));
    assert_true(fcntl(a.fd, F_GETFD) >= 0);

    a.hdr->magic = 4; /* layout 1 began with max_workers */
    a.hdr->layout = 2;
    assert_int_equal(scoreboard_attach(&b, a.fd, err, sizeof(err)), SB_ATTACH_LAYOUT);
    assert_non_null(strstr(err, "no layout mark"));
    scoreboard_destroy(&a);
}

static void reexec_state_round_trips(void **state)
{
    (void)state;
    char err[256];
    fill(&state_a);
    assert_int_equal(reexec_format(&state_a, text, sizeof(text)), 0);
    assert_null(strchr(text, '\n'));
    assert_int_equal(reexec_parse(text, &state_b, err, sizeof(err)), REEXEC_PARSE_OK);
    assert_int_equal(state_b.sb_fd, 5);
    assert_int_equal(state_b.target, 2);
    assert_int_equal(state_b.threads, 4);
    assert_int_equal(state_b.max_processes, 16);
    assert_string_equal(state_b.pool, "dynamic");
    assert_true(state_b.chain);
    assert_false(state_b.pending_hup);
    assert_int_equal(state_b.listener_count, 2);
    assert_int_equal(state_b.listeners[0].fd, 6);
    assert_int_equal(state_b.listeners[0].backlog, 1024);
    assert_true(state_b.listeners[0].owns_path);
    assert_string_equal(state_b.listeners[0].spec, "uwsgi:unix:/run/a b,c%d.sock");
    assert_false(state_b.listeners[1].owns_path);
    assert_string_equal(state_b.listeners[1].spec, "fastcgi:tcp:[::1]:9000");
    assert_int_equal(state_b.control_fd, 8);
    assert_string_equal(state_b.control_path, "/run/corral ctl.sock");
    assert_int_equal(state_b.client_count, 2);
    assert_int_equal(state_b.clients[1], 10);
    assert_int_equal(state_b.error_log_fd, 11);
    assert_string_equal(state_b.error_log, "logs/error=1.log");
    assert_int_equal(state_b.access_log_fd, -1);
    assert_string_equal(state_b.access_log, "");
    assert_string_equal(state_b.pidfile, "-"); /* a file named "-" is not "none" */
    assert_int_equal(state_b.pidfile_fd, 12);
    assert_string_equal(state_b.why, "corralctl chain-reload");
}

static void reexec_state_without_control_or_files(void **state)
{
    (void)state;
    char err[256];
    fill(&state_a);
    state_a.control_fd = -1;
    state_a.client_count = 0;
    state_a.error_log_fd = -1;
    state_a.error_log[0] = '\0';
    state_a.pidfile[0] = '\0';
    assert_int_equal(reexec_format(&state_a, text, sizeof(text)), 0);
    assert_null(strstr(text, "ctl="));
    assert_int_equal(reexec_parse(text, &state_b, err, sizeof(err)), REEXEC_PARSE_OK);
    assert_int_equal(state_b.control_fd, -1);
    assert_int_equal(state_b.error_log_fd, -1);
    assert_string_equal(state_b.pidfile, "");
}

static void reexec_format_refuses_a_short_buffer(void **state)
{
    (void)state;
    char small[64];
    fill(&state_a);
    assert_int_equal(reexec_format(&state_a, small, sizeof(small)), -1);
}

/* TEXT is refused with a reason that contains WANT. */
static void refused(const char *bad, const char *want)
{
    char err[256] = "";
    if (reexec_parse(bad, &state_b, err, sizeof(err)) != REEXEC_PARSE_BAD)
        fail_msg("accepted: %s", bad);
    if (!strstr(err, want))
        fail_msg("for %s: the reason \"%s\" does not say \"%s\"", bad, err, want);
}

#define BASE                                                                                       \
    "sb=5 target=2 threads=1 maxproc=4 pool=static chain=0 hup=0 listen=6,1024,1,uwsgi:unix:/a"
#define TAIL " elog=-1,- alog=-1,- pidfile=- why=SIGHUP"

static void reexec_parse_refuses_malformed_text(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(reexec_parse("v1 " BASE TAIL, &state_b, err, sizeof(err)), REEXEC_PARSE_OK);
    assert_int_equal(state_b.pidfile_fd, -1); /* pidlock is optional: no lock held */
    refused("v1 " BASE TAIL " pidlock=2", "stderr");
    refused("v1 " BASE TAIL " pidlock=6", "twice"); /* the listener's descriptor */
    refused("v1 " BASE TAIL " pidlock=x", "pidlock");
    refused("", "version");
    refused("v2 " BASE TAIL, "version");
    refused("v1x " BASE TAIL, "version");
    refused(BASE TAIL, "version");
    refused("v1  " BASE TAIL, "empty token");
    refused("v1 " BASE TAIL " ", "empty token");
    refused("v1 " BASE TAIL " nokey", "KEY=VALUE");
    refused("v1 " BASE TAIL " color=red", "unknown key");
    refused("v1 " BASE TAIL " sb=7", "twice");
    refused("v1 sb=5 target=2 threads=1 maxproc=4 pool=static chain=0 hup=0" TAIL, "listen");
    refused("v1 " BASE " alog=-1,- pidfile=- why=SIGHUP", "elog");
    /* numbers */
    refused("v1 sb=05 target=2 threads=1 maxproc=4 pool=static chain=0 hup=0 "
            "listen=6,1024,1,uwsgi:unix:/a" TAIL,
            "sb");
    refused("v1 sb=-5 target=2 threads=1 maxproc=4 pool=static chain=0 hup=0 "
            "listen=6,1024,1,uwsgi:unix:/a" TAIL,
            "sb");
    refused("v1 sb=99999999999 target=2 threads=1 maxproc=4 pool=static chain=0 hup=0 "
            "listen=6,1024,1,uwsgi:unix:/a" TAIL,
            "sb");
    refused("v1 sb=5 target=2 threads=0 maxproc=4 pool=static chain=0 hup=0 "
            "listen=6,1024,1,uwsgi:unix:/a" TAIL,
            "threads");
    refused("v1 sb=5 target=2 threads=1 maxproc=65536 pool=static chain=0 hup=0 "
            "listen=6,1024,1,uwsgi:unix:/a" TAIL,
            "maxproc");
    refused("v1 sb=5 target= threads=1 maxproc=4 pool=static chain=0 hup=0 "
            "listen=6,1024,1,uwsgi:unix:/a" TAIL,
            "target");
    refused("v1 sb=5 target=2 threads=1 maxproc=4 pool=static chain=2 hup=0 "
            "listen=6,1024,1,uwsgi:unix:/a" TAIL,
            "chain");
    /* listeners */
    refused("v1 sb=5 target=2 threads=1 maxproc=4 pool=static chain=0 hup=0 "
            "listen=6,1024,uwsgi:unix:/a" TAIL,
            "listen");
    refused("v1 sb=5 target=2 threads=1 maxproc=4 pool=static chain=0 hup=0 "
            "listen=6,0,1,uwsgi:unix:/a" TAIL,
            "backlog");
    refused("v1 sb=5 target=2 threads=1 maxproc=4 pool=static chain=0 hup=0 "
            "listen=6,1024,1," TAIL,
            "listen");
    refused("v1 sb=5 target=2 threads=1 maxproc=4 pool=static chain=0 hup=0 "
            "listen=-1,1024,1,uwsgi:unix:/a" TAIL,
            "listen");
    /* escapes: unencoded bytes, bad or short escapes, NUL, an escaped plain byte */
    refused("v1 " BASE TAIL " ctl=8,/a,b", "ctl");
    refused("v1 " BASE TAIL " ctl=8,/a%2", "ctl");
    refused("v1 " BASE TAIL " ctl=8,/a%zz", "ctl");
    refused("v1 " BASE TAIL " ctl=8,/a%2c", "ctl"); /* lower case is never written */
    refused("v1 " BASE TAIL " ctl=8,/a%00b", "ctl");
    refused("v1 " BASE TAIL " ctl=8,%41", "ctl");
    refused("v1 " BASE TAIL " ctl=8,", "ctl");
    /* log files: a descriptor goes with a path, none with none */
    refused("v1 " BASE " elog=3,- alog=-1,- pidfile=- why=x", "elog");
    refused("v1 " BASE " elog=-1,/e alog=-1,- pidfile=- why=x", "elog");
    refused("v1 " BASE " elog=-2,- alog=-1,- pidfile=- why=x", "elog");
    /* descriptors: each once, never 0..2 */
    refused("v1 " BASE TAIL " client=6", "given twice");
    refused("v1 " BASE TAIL " client=9 client=9", "given twice");
    refused("v1 " BASE TAIL " client=2", "stdin, stdout, stderr");
}

static void reexec_parse_bounds_the_repeated_keys(void **state)
{
    (void)state;
    char err[256];
    size_t n = (size_t)snprintf(text, sizeof(text), "v1 " BASE TAIL);
    for (int i = 0; i < REEXEC_MAX_CLIENTS; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, " client=%d", 100 + i);
    assert_int_equal(reexec_parse(text, &state_b, err, sizeof(err)), REEXEC_PARSE_OK);
    assert_int_equal(state_b.client_count, REEXEC_MAX_CLIENTS);
    snprintf(text + n, sizeof(text) - n, " client=999");
    assert_int_equal(reexec_parse(text, &state_b, err, sizeof(err)), REEXEC_PARSE_BAD);
    assert_non_null(strstr(err, "more than"));
}

/* The new image's config takes the restart-only settings of the old one. */
static void reexec_keep_fixed_restores_restart_only_settings(void **state)
{
    (void)state;
    struct config c;
    config_defaults(&c);
    c.listen = calloc(1, sizeof(*c.listen));
    c.listen[0] = strdup("scgi:unix:/elsewhere");
    c.listen_count = 1;
    c.threads = 8;
    c.processes = 40;
    c.preload = false;
    c.control = strdup("/new/ctl");
    c.error_log = strdup("/new/error.log");
    fill(&state_a);
    state_a.error_log_fd = 11;
    snprintf(state_a.error_log, sizeof(state_a.error_log), "logs/error.log");
    state_a.pidfile[0] = '\0';
    assert_int_equal(reexec_keep_fixed(&c, &state_a), 0);
    assert_int_equal(c.listen_count, 2);
    assert_string_equal(c.listen[0], "uwsgi:unix:/run/a b,c%d.sock");
    assert_string_equal(c.listen[1], "fastcgi:tcp:[::1]:9000");
    assert_int_equal(c.threads, 4);
    assert_int_equal(c.max_processes, 16);
    assert_int_equal(c.processes, 16); /* capped: the scoreboard has 16 slots a bank */
    assert_true(c.preload);
    assert_string_equal(c.pool, "dynamic");
    assert_string_equal(c.control, "/run/corral ctl.sock");
    assert_string_equal(c.error_log, "logs/error.log");
    assert_null(c.access_log);
    assert_null(c.pidfile);
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reexec_state_round_trips),
        cmocka_unit_test(reexec_state_without_control_or_files),
        cmocka_unit_test(reexec_format_refuses_a_short_buffer),
        cmocka_unit_test(reexec_parse_refuses_malformed_text),
        cmocka_unit_test(reexec_parse_bounds_the_repeated_keys),
        cmocka_unit_test(reexec_keep_fixed_restores_restart_only_settings),
        cmocka_unit_test(scoreboard_attach_checks_the_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
