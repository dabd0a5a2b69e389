/*
 * test_control.c — the control socket: the command-line parser against the
 * master's real command table, and the socket itself (control.c) driven
 * through its epoll events with a table of test commands: replies in
 * order, overlong lines and garbage, silent and slow clients, the client
 * limit, the socket's mode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "master/control.h"
#include "ctl/json_read.h"
#include "master/master.h"

/* ---- the parser ---- */

static enum control_parse_result parse(const char *line, struct control_request *req,
                                       char *err, size_t errlen)
{
    return control_parse(master_commands, master_command_count, line, strlen(line), req, err,
                         errlen);
}

static void control_parses_commands_and_blanks(void **state)
{
    (void)state;
    struct control_request req;
    char err[512];
    assert_int_equal(parse("status", &req, err, sizeof(err)), CONTROL_PARSE_OK);
    assert_string_equal(req.cmd->name, "status");
    assert_int_equal(parse("  workers \t\r", &req, err, sizeof(err)), CONTROL_PARSE_OK);
    assert_string_equal(req.cmd->name, "workers");
    assert_int_equal(parse("reopen-logs", &req, err, sizeof(err)), CONTROL_PARSE_OK);
    assert_int_equal(parse("", &req, err, sizeof(err)), CONTROL_PARSE_EMPTY);
    assert_int_equal(parse(" \t \r", &req, err, sizeof(err)), CONTROL_PARSE_EMPTY);
}

static void control_parses_scale_arguments(void **state)
{
    (void)state;
    struct control_request req;
    char err[512];
    assert_int_equal(parse("scale 3", &req, err, sizeof(err)), CONTROL_PARSE_OK);
    assert_int_equal(req.scale_op, CONTROL_SCALE_SET);
    assert_int_equal(req.scale_n, 3);
    assert_int_equal(parse("scale +2", &req, err, sizeof(err)), CONTROL_PARSE_OK);
    assert_int_equal(req.scale_op, CONTROL_SCALE_ADD);
    assert_int_equal(req.scale_n, 2);
    assert_int_equal(parse("scale   -1  ", &req, err, sizeof(err)), CONTROL_PARSE_OK);
    assert_int_equal(req.scale_op, CONTROL_SCALE_SUB);
    assert_int_equal(req.scale_n, 1);
    assert_int_equal(parse("scale 65535", &req, err, sizeof(err)), CONTROL_PARSE_OK);
    static const char *const bad[] = {"scale",    "scale x",  "scale 3x", "scale +",
                                      "scale --1", "scale 65536", "scale 1e3", "scale 0x10",
                                      "scale 99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &req, err, sizeof(err)) != CONTROL_PARSE_BAD)
            fail_msg("accepted '%s'", bad[i]);
        assert_non_null(strstr(err, "scale: expected N, +N or -N"));
    }
    assert_int_equal(parse("scale 1 2", &req, err, sizeof(err)), CONTROL_PARSE_BAD);
    assert_string_equal(err, "scale: too many arguments; usage: scale N|+N|-N");
}

static void control_refuses_unknown_commands_and_stray_arguments(void **state)
{
    (void)state;
    struct control_request req;
    char err[512];
    assert_int_equal(parse("bogus", &req, err, sizeof(err)), CONTROL_PARSE_BAD);
    assert_non_null(strstr(err, "unknown command 'bogus'; try: status, workers, scale"));
    assert_int_equal(parse("STATUS", &req, err, sizeof(err)), CONTROL_PARSE_BAD);
    assert_int_equal(parse("status now", &req, err, sizeof(err)), CONTROL_PARSE_BAD);
    assert_string_equal(err, "status takes no argument; usage: status");
    assert_int_equal(parse("stat", &req, err, sizeof(err)), CONTROL_PARSE_BAD);
    /* A long unknown word is not echoed whole. */
    char longword[300];
    memset(longword, 'x', sizeof(longword) - 1);
    longword[sizeof(longword) - 1] = '\0';
    assert_int_equal(parse(longword, &req, err, sizeof(err)), CONTROL_PARSE_BAD);
    assert_true(strlen(err) < 250);
}

static void control_refuses_bytes_outside_printable_ascii(void **state)
{
    (void)state;
    struct control_request req;
    char err[512];
    assert_int_equal(control_parse(master_commands, master_command_count, "sta\0tus", 7, &req,
                                   err, sizeof(err)),
                     CONTROL_PARSE_BAD);
    assert_string_equal(err, "byte 0x00 at offset 3: a command line is printable ASCII");
    assert_int_equal(parse("status\x1b[2J", &req, err, sizeof(err)), CONTROL_PARSE_BAD);
    assert_int_equal(parse("\xff\xfe", &req, err, sizeof(err)), CONTROL_PARSE_BAD);
    assert_string_equal(err, "byte 0xff at offset 0: a command line is printable ASCII");
}

/* ---- the socket ---- */

static void cmd_hello(void *owner, const struct control_request *req, struct json *j)
{
    (void)req;
    int *calls = owner;
    ++*calls;
    json_object_begin(j);
    json_kv_bool(j, "ok", true);
    json_kv_int(j, "calls", *calls);
    json_object_end(j);
}

/* {"ok":true,"data":[COUNT strings of SIZE - 1 bytes]}. */
static void reply_chunks(struct json *j, size_t size, size_t count)
{
    char *chunk = malloc(size);
    assert_non_null(chunk);
    memset(chunk, 'c', size - 1);
    chunk[size - 1] = '\0';
    json_object_begin(j);
    json_kv_bool(j, "ok", true);
    json_key(j, "data");
    json_array_begin(j);
    for (size_t i = 0; i < count; i++)
        json_string(j, chunk);
    json_array_end(j);
    json_object_end(j);
    free(chunk);
}

/* About 2 MiB: more than a socket buffer holds. */
static void cmd_big(void *owner, const struct control_request *req, struct json *j)
{
    (void)owner;
    (void)req;
    reply_chunks(j, 1024, 2048);
}

/* More than CONTROL_REPLY_MAX. */
static void cmd_huge(void *owner, const struct control_request *req, struct json *j)
{
    (void)owner;
    (void)req;
    reply_chunks(j, 4096, CONTROL_REPLY_MAX / 4096 + 2);
}

static const struct control_command test_commands[] = {
    {.name = "hello", .usage = "hello", .run = cmd_hello},
    {.name = "big", .usage = "big", .run = cmd_big},
    {.name = "huge", .usage = "huge", .run = cmd_huge},
};

struct fx {
    char dir[64], path[96];
    int epfd;
    int calls;
    struct control *ctl;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/corral-test-control-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/ctl.sock", f->dir);
    f->epfd = epoll_create1(EPOLL_CLOEXEC);
    assert_true(f->epfd >= 0);
    char err[256];
    f->ctl = control_open(f->path, 0600, 300, f->epfd, 100, test_commands,
                          sizeof(test_commands) / sizeof(test_commands[0]), &f->calls, err,
                          sizeof(err));
    if (!f->ctl)
        fail_msg("control_open: %s", err);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    control_close(f->ctl);
    close(f->epfd);
    rmdir(f->dir);
    free(f);
    return 0;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Run the "master loop" for MS milliseconds: epoll events and ticks. */
static void pump(struct fx *f, int ms)
{
    long end = now_ms() + ms;
    do {
        struct epoll_event evs[8];
        long left = end - now_ms();
        int n = epoll_wait(f->epfd, evs, 8, left < 0 ? 0 : left > 20 ? 20 : (int)left);
        for (int i = 0; i < n; i++) {
            assert_true(control_owns(f->ctl, evs[i].data.u64));
            control_event(f->ctl, evs[i].data.u64, evs[i].events);
        }
        control_tick(f->ctl);
    } while (now_ms() < end);
}

static int client(struct fx *f)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* What arrived on FD, pumping the loop meanwhile, until N newlines or the
 * peer closed (*closed) or MS passed. */
static size_t collect(struct fx *f, int fd, char *buf, size_t cap, int lines, int ms,
                      bool *closed)
{
    size_t len = 0;
    int seen = 0;
    long end = now_ms() + ms;
    *closed = false;
    while (seen < lines && now_ms() < end) {
        pump(f, 10);
        for (;;) {
            ssize_t n = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
            if (n == 0) {
                *closed = true;
                buf[len] = '\0';
                return len;
            }
            if (n < 0)
                break;
            for (ssize_t i = 0; i < n; i++)
                seen += buf[len + (size_t)i] == '\n';
            len += (size_t)n;
        }
    }
    buf[len] = '\0';
    return len;
}

/* Send TEXT on FD and collect LINES reply lines into BUF; returns whether
 * the server closed the connection. */
static bool ask(struct fx *f, int fd, const char *text, int lines, char *buf, size_t cap)
{
    bool closed;
    send_all(fd, text, strlen(text));
    collect(f, fd, buf, cap, lines, 3000, &closed);
    return closed;
}

static void assert_prefix(const char *s, const char *prefix)
{
    if (strncmp(s, prefix, strlen(prefix)) != 0)
        fail_msg("'%.200s' does not start with '%s'", s, prefix);
}

static void control_socket_is_private_by_default(void **state)
{
    struct fx *f = *state;
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void control_answers_each_line_in_order(void **state)
{
    struct fx *f = *state;
    int fd = client(f);
    char buf[4096];
    bool closed;
    /* Two commands in one write, a blank line between (no reply for it). */
    closed = ask(f, fd, "hello\n\nhello\r\n", 2, buf, sizeof(buf));
    assert_false(closed);
    assert_string_equal(buf, "{\"ok\":true,\"calls\":1}\n{\"ok\":true,\"calls\":2}\n");
    /* A command split over several writes. */
    send_all(fd, "hel", 3);
    pump(f, 30);
    closed = ask(f, fd, "lo\n", 1, buf, sizeof(buf));
    assert_string_equal(buf, "{\"ok\":true,\"calls\":3}\n");
    close(fd);
}

static void control_answers_garbage_with_an_error_and_goes_on(void **state)
{
    struct fx *f = *state;
    int fd = client(f);
    char buf[4096];
    bool closed;
    closed = ask(f, fd, "\x01\x02\xff garbage\nnope\nhello\n", 3, buf, sizeof(buf));
    assert_false(closed);
    char *second = strchr(buf, '\n') + 1, *third = strchr(second, '\n') + 1;
    assert_prefix(buf, "{\"ok\":false,\"error\":\"byte 0x01 at offset 0: ");
    assert_prefix(second, "{\"ok\":false,\"error\":\"unknown command 'nope'; try: hello, ");
    assert_string_equal(third, "{\"ok\":true,\"calls\":1}\n");
    close(fd);
}

static void control_closes_after_an_overlong_line(void **state)
{
    struct fx *f = *state;
    int fd = client(f);
    char line[CONTROL_LINE_MAX + 100], buf[4096];
    bool closed;
    memset(line, 'a', sizeof(line));
    send_all(fd, line, sizeof(line));
    collect(f, fd, buf, sizeof(buf), 5, 2000, &closed);
    assert_true(closed);
    assert_string_equal(buf, "{\"ok\":false,\"error\":\"line too long (the limit is 511 bytes)\"}\n");
    close(fd);
    /* The socket still serves. */
    fd = client(f);
    closed = ask(f, fd, "hello\n", 1, buf, sizeof(buf));
    assert_string_equal(buf, "{\"ok\":true,\"calls\":1}\n");
    close(fd);
}

static void control_drops_a_silent_client_after_the_timeout(void **state)
{
    struct fx *f = *state;
    int silent = client(f), partial = client(f);
    send_all(partial, "hel", 3); /* never finished */
    char buf[256];
    bool closed;
    long t0 = now_ms();
    collect(f, silent, buf, sizeof(buf), 1, 3000, &closed);
    assert_true(closed);
    long took = now_ms() - t0;
    assert_true(took >= 250 && took < 1500);
    collect(f, partial, buf, sizeof(buf), 1, 1000, &closed);
    assert_true(closed);
    close(silent);
    close(partial);
}

static void control_never_waits_for_a_client_that_does_not_read(void **state)
{
    struct fx *f = *state;
    int slow = client(f);
    /* Many big replies asked for, none read: the loop must go on. */
    for (int i = 0; i < 5; i++)
        send_all(slow, "big\n", 4);
    long t0 = now_ms();
    pump(f, 100);
    assert_true(now_ms() - t0 < 1000);
    /* Another client is served meanwhile. */
    int other = client(f);
    char buf[4096];
    bool closed;
    closed = ask(f, other, "hello\n", 1, buf, sizeof(buf));
    assert_string_equal(buf, "{\"ok\":true,\"calls\":1}\n");
    /* The one that does not read is dropped after the timeout. */
    pump(f, 600);
    char *big = malloc(8u << 20);
    assert_non_null(big);
    size_t got = collect(f, slow, big, 8u << 20, 1000, 2000, &closed);
    assert_true(closed);
    assert_true(got < 5 * (2u << 20)); /* it did not get all five replies */
    free(big);
    close(slow);
    close(other);
}

static void control_replaces_an_oversized_reply_with_an_error(void **state)
{
    struct fx *f = *state;
    int fd = client(f);
    char buf[4096];
    bool closed;
    closed = ask(f, fd, "huge\nhello\n", 2, buf, sizeof(buf));
    assert_false(closed);
    assert_string_equal(buf, "{\"ok\":false,\"error\":\"the reply is larger than 4194304 bytes\"}\n"
                             "{\"ok\":true,\"calls\":1}\n");
    close(fd);
}

static void control_limits_the_number_of_clients(void **state)
{
    struct fx *f = *state;
    int fds[CONTROL_MAX_CLIENTS + 1];
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        fds[i] = client(f);
        pump(f, 5);
    }
    fds[CONTROL_MAX_CLIENTS] = client(f);
    char buf[4096];
    bool closed;
    collect(f, fds[CONTROL_MAX_CLIENTS], buf, sizeof(buf), 1, 1000, &closed);
    assert_string_equal(buf, "{\"ok\":false,\"error\":\"too many control connections (the "
                             "limit is 16)\"}\n");
    /* A slot frees up when a client leaves. */
    close(fds[0]);
    pump(f, 30);
    int fd = client(f);
    closed = ask(f, fd, "hello\n", 1, buf, sizeof(buf));
    assert_string_equal(buf, "{\"ok\":true,\"calls\":1}\n");
    close(fd);
    for (int i = 1; i <= CONTROL_MAX_CLIENTS; i++)
        close(fds[i]);
}

static void control_refuses_a_path_a_live_server_holds(void **state)
{
    struct fx *f = *state;
    char err[256];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct control *second = control_open(f->path, 0600, 300, ep, 100, test_commands, 1, NULL,
                                          err, sizeof(err));
    assert_null(second);
    assert_non_null(strstr(err, "another server is listening"));
    close(ep);
}

#define FX(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(control_parses_commands_and_blanks),
        cmocka_unit_test(control_parses_scale_arguments),
        cmocka_unit_test(control_refuses_unknown_commands_and_stray_arguments),
        cmocka_unit_test(control_refuses_bytes_outside_printable_ascii),
        FX(control_socket_is_private_by_default),
        FX(control_answers_each_line_in_order),
        FX(control_answers_garbage_with_an_error_and_goes_on),
        FX(control_closes_after_an_overlong_line),
        FX(control_drops_a_silent_client_after_the_timeout),
        FX(control_never_waits_for_a_client_that_does_not_read),
        FX(control_replaces_an_oversized_reply_with_an_error),
        FX(control_limits_the_number_of_clients),
        FX(control_refuses_a_path_a_live_server_holds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
