/*
 * test_systemd.c — the systemd protocols: socket activation variables
 * becoming fd:N listeners, and the notify datagram.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/config_load.h"
#include "os/systemd.h"

/* Set the socket activation variables as systemd would for a process whose
 * pid is ours + PID_DELTA. */
static void set_listen_env(int pid_delta, const char *fds, const char *names)
{
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)getpid() + pid_delta);
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", fds, 1);
    if (names)
        setenv("LISTEN_FDNAMES", names, 1);
}

static void systemd_listen_fds_become_fd_listeners(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    config_defaults(&c);
    set_listen_env(0, "3", "fastcgi:uwsgi:scgi:web");
    assert_int_equal(config_take_activated(&c, err, sizeof(err)), 3);
    assert_int_equal(c.listen_count, 3);
    assert_string_equal(c.listen[0], "fastcgi:fd:3");
    assert_string_equal(c.listen[1], "uwsgi:fd:4");
    assert_string_equal(c.listen[2], "scgi:fd:5");
    assert_null(getenv("LISTEN_PID"));
    assert_null(getenv("LISTEN_FDS"));
    assert_null(getenv("LISTEN_FDNAMES"));
    config_free(&c);
}

static void systemd_listen_fds_skip_what_the_config_names(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    config_defaults(&c);
    char *l0 = strdup("uwsgi:fd:3");
    c.listen = calloc(1, sizeof(char *));
    c.listen[0] = l0;
    c.listen_count = 1;
    set_listen_env(0, "1", "scgi");
    assert_int_equal(config_take_activated(&c, err, sizeof(err)), 0);
    assert_int_equal(c.listen_count, 1);
    config_free(&c);
}

static void systemd_listen_fds_for_another_pid_are_ignored(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    config_defaults(&c);
    set_listen_env(1, "1", "fastcgi");
    assert_int_equal(config_take_activated(&c, err, sizeof(err)), 0);
    assert_int_equal(c.listen_count, 0);
    assert_null(getenv("LISTEN_FDS")); /* children never see them */
    config_free(&c);
}

static void systemd_listen_fds_need_a_protocol_name(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    config_defaults(&c);
    set_listen_env(0, "2", "fastcgi:unknown");
    assert_int_equal(config_take_activated(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "descriptor 4 is named 'unknown'"));
    assert_non_null(strstr(err, "FileDescriptorName="));
    config_free(&c);

    config_defaults(&c);
    set_listen_env(0, "x", NULL);
    assert_int_equal(config_take_activated(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "LISTEN_FDS: expected a number of descriptors, got 'x'"));
    config_free(&c);
}

static void systemd_notify_sends_one_datagram_to_an_abstract_socket(void **state)
{
    (void)state;
    char name[64], err[256], buf[256];
    snprintf(name, sizeof(name), "@corral-test-notify-%d", (int)getpid());
    int rx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(rx >= 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, name, strlen(name));
    sun.sun_path[0] = '\0';
    assert_int_equal(bind(rx, (struct sockaddr *)&sun,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name))),
                     0);
    setenv("NOTIFY_SOCKET", name, 1);
    struct systemd_notify n;
    assert_int_equal(systemd_notify_open(&n, err, sizeof(err)), 0);
    assert_null(getenv("NOTIFY_SOCKET"));
    assert_int_equal(systemd_notify_send(&n, "READY=1\nSTATUS=up"), 0);
    ssize_t got = recv(rx, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    assert_int_equal(got, 17);
    buf[got] = '\0';
    assert_string_equal(buf, "READY=1\nSTATUS=up");
    systemd_notify_close(&n);
    close(rx);

    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_int_equal(systemd_notify_open(&n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "NOTIFY_SOCKET: expected an absolute path"));
    assert_int_equal(systemd_notify_open(&n, err, sizeof(err)), 0); /* unset: nothing to do */
    assert_int_equal(n.fd, -1);
    assert_int_equal(systemd_notify_send(&n, "READY=1"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(systemd_listen_fds_become_fd_listeners),
        cmocka_unit_test(systemd_listen_fds_skip_what_the_config_names),
        cmocka_unit_test(systemd_listen_fds_for_another_pid_are_ignored),
        cmocka_unit_test(systemd_listen_fds_need_a_protocol_name),
        cmocka_unit_test(systemd_notify_sends_one_datagram_to_an_abstract_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
