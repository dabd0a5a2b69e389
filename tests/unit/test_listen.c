/*
 * test_listen.c — listener addresses: parsing, stale and live unix sockets,
 * socket mode, inherited descriptors, queue depth.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "os/listen.h"

static void listen_parses_unix_tcp_and_fd(void **state)
{
    (void)state;
    struct listen_addr a;
    char err[256];
    assert_int_equal(listen_parse("uwsgi:unix:/run/app.sock", &a, err, sizeof(err)), 0);
    assert_ptr_equal(a.codec, &proto_uwsgi);
    assert_int_equal(a.family, LISTEN_UNIX);
    assert_string_equal(a.path, "/run/app.sock");

    assert_int_equal(listen_parse("fastcgi:tcp:127.0.0.1:9000", &a, err, sizeof(err)), 0);
    assert_ptr_equal(a.codec, &proto_fastcgi);
    assert_int_equal(a.family, LISTEN_TCP);
    assert_string_equal(a.host, "127.0.0.1");
    assert_string_equal(a.port, "9000");

    assert_int_equal(listen_parse("scgi:tcp:[::1]:4000", &a, err, sizeof(err)), 0);
    assert_ptr_equal(a.codec, &proto_scgi);
    assert_string_equal(a.host, "::1");
    assert_string_equal(a.port, "4000");

    assert_int_equal(listen_parse("uwsgi:tcp:localhost:3031", &a, err, sizeof(err)), 0);
    assert_string_equal(a.host, "localhost");

    assert_int_equal(listen_parse("fastcgi:fd:3", &a, err, sizeof(err)), 0);
    assert_int_equal(a.family, LISTEN_FD);
    assert_int_equal(a.fd, 3);
    assert_int_equal(a.bound, LISTEN_FD);

    /* An inherited descriptor with the address it is bound to. */
    assert_int_equal(listen_parse("http:fd:4@tcp:[::1]:8080", &a, err, sizeof(err)), 0);
    assert_int_equal(a.family, LISTEN_FD);
    assert_int_equal(a.fd, 4);
    assert_int_equal(a.bound, LISTEN_TCP);
    assert_string_equal(a.host, "::1");
    assert_string_equal(a.port, "8080");
    assert_int_equal(listen_parse("uwsgi:fd:3@unix:/run/a@b.sock", &a, err, sizeof(err)), 0);
    assert_int_equal(a.bound, LISTEN_UNIX);
    assert_string_equal(a.path, "/run/a@b.sock");
}

static void listen_rejects_bad_specs_with_reasons(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *expect;
    } bad[] = {
        {"uwsgi", "expected PROTO:ADDR"},
        {"https:unix:/x", "expected the protocol uwsgi, fastcgi, scgi or http"},
        {"uwsgi:unix:", "expected a socket path"},
        {"uwsgi:/run/x.sock", "expected the address unix:/PATH"},
        {"uwsgi:tcp:127.0.0.1", "expected tcp:HOST:PORT"},
        {"uwsgi:tcp:127.0.0.1:0", "expected a port from 1 to 65535"},
        {"uwsgi:tcp:127.0.0.1:70000", "expected a port from 1 to 65535"},
        {"uwsgi:tcp:127.0.0.1:80x", "expected a port from 1 to 65535"},
        {"uwsgi:tcp::80", "expected a host"},
        {"uwsgi:tcp:::1:80", "IPv6 address needs brackets"},
        {"uwsgi:tcp:[::1:80", "expected tcp:[IPv6]:PORT"},
        {"uwsgi:fd:x", "expected a descriptor number"},
        {"uwsgi:fd:-1", "expected a descriptor number"},
        {"uwsgi:fd:3@", "expected the address unix:/PATH"},
        {"uwsgi:fd:3@fd:4", "expected unix: or tcp: after '@'"},
        {"uwsgi:fd:3@fd:4@unix:/x", "expected unix: or tcp: after '@'"},
        {"uwsgi:fd:3@tcp:x", "expected tcp:HOST:PORT"},
        {"uwsgi:fd:3x@unix:/x", "expected a descriptor number"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct listen_addr a;
        char err[256] = "";
        assert_int_equal(listen_parse(bad[i].spec, &a, err, sizeof(err)), -1);
        if (!strstr(err, bad[i].expect))
            fail_msg("'%s': got \"%s\", expected it to contain \"%s\"", bad[i].spec, err,
                     bad[i].expect);
    }
}

static void make_path(char *out, size_t len, const char *tag)
{
    snprintf(out, len, "/tmp/corral-test-listen-%d-%s.sock", (int)getpid(), tag);
    unlink(out);
}

static void listen_replaces_stale_socket_and_sets_mode(void **state)
{
    (void)state;
    char path[108], spec[200], err[512];
    make_path(path, sizeof(path), "stale");
    /* A socket file nobody listens on any more: what a killed server leaves. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strcpy(sun.sun_path, path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd);

    snprintf(spec, sizeof(spec), "uwsgi:unix:%s", path);
    struct listen_addr a;
    assert_int_equal(listen_parse(spec, &a, err, sizeof(err)), 0);
    struct listener l;
    if (listen_open(&l, &a, 16, 0600, err, sizeof(err)) != 0)
        fail_msg("listen_open: %s", err);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_string_equal(l.name, spec);
    listen_close(&l, true);
    assert_int_equal(access(path, F_OK), -1);
}

static void listen_refuses_socket_of_live_server(void **state)
{
    (void)state;
    char path[108], spec[200], err[512];
    make_path(path, sizeof(path), "live");
    snprintf(spec, sizeof(spec), "fastcgi:unix:%s", path);
    struct listen_addr a;
    assert_int_equal(listen_parse(spec, &a, err, sizeof(err)), 0);
    struct listener first, second;
    assert_int_equal(listen_open(&first, &a, 16, 0660, err, sizeof(err)), 0);
    assert_int_equal(listen_open(&second, &a, 16, 0660, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "another server is listening"));
    /* The live server's socket is untouched. */
    assert_int_equal(access(path, F_OK), 0);
    listen_close(&first, true);
}

static void listen_refuses_path_that_is_not_a_socket(void **state)
{
    (void)state;
    char path[108], spec[200], err[512];
    make_path(path, sizeof(path), "file");
    FILE *f = fopen(path, "w");
    fclose(f);
    snprintf(spec, sizeof(spec), "scgi:unix:%s", path);
    struct listen_addr a;
    struct listener l;
    assert_int_equal(listen_parse(spec, &a, err, sizeof(err)), 0);
    assert_int_equal(listen_open(&l, &a, 16, 0660, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "is not a socket"));
    unlink(path);
}

static void listen_adopts_inherited_fd_and_reads_queue_depth(void **state)
{
    (void)state;
    char path[108], spec[200], err[512];
    make_path(path, sizeof(path), "fd");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strcpy(sun.sun_path, path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(listen(fd, 8), 0);
    snprintf(spec, sizeof(spec), "uwsgi:fd:%d", fd);
    struct listen_addr a;
    struct listener l;
    assert_int_equal(listen_parse(spec, &a, err, sizeof(err)), 0);
    if (listen_open(&l, &a, 8, 0660, err, sizeof(err)) != 0)
        fail_msg("listen_open: %s", err);
    snprintf(spec, sizeof(spec), "uwsgi:fd:%d", fd);
    assert_string_equal(l.name, spec);

    /* Given with its address: named by it, the socket file still not ours. */
    struct listener named;
    snprintf(spec, sizeof(spec), "uwsgi:fd:%d@unix:%s", fd, path);
    assert_int_equal(listen_parse(spec, &a, err, sizeof(err)), 0);
    if (listen_open(&named, &a, 8, 0660, err, sizeof(err)) != 0)
        fail_msg("listen_open: %s", err);
    snprintf(spec, sizeof(spec), "uwsgi:unix:%s", path);
    assert_string_equal(named.name, spec);
    assert_false(named.owns_path);
    assert_int_equal(named.fd, fd);

    unsigned depth = 99;
    assert_int_equal(listen_queue_depth(&l, &depth), 0);
    assert_int_equal(depth, 0);
    int clients[3];
    for (int i = 0; i < 3; i++) {
        clients[i] = socket(AF_UNIX, SOCK_STREAM, 0);
        assert_int_equal(connect(clients[i], (struct sockaddr *)&sun, sizeof(sun)), 0);
    }
    assert_int_equal(listen_queue_depth(&l, &depth), 0);
    assert_int_equal(depth, 3);
    for (int i = 0; i < 3; i++)
        close(clients[i]);
    listen_close(&l, false);
    unlink(path);
}

static void listen_refuses_fd_that_is_not_listening(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char spec[64], err[256];
    snprintf(spec, sizeof(spec), "uwsgi:fd:%d", sv[0]);
    struct listen_addr a;
    struct listener l;
    assert_int_equal(listen_parse(spec, &a, err, sizeof(err)), 0);
    assert_int_equal(listen_open(&l, &a, 8, 0660, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a listening stream socket"));
    close(sv[0]);
    close(sv[1]);
}

static void listen_binds_tcp_loopback_and_names_peer(void **state)
{
    (void)state;
    char err[256];
    struct listen_addr a;
    struct listener l;
    /* Port 0 is refused by the parser; pick a high port and accept EADDRINUSE. */
    assert_int_equal(listen_parse("uwsgi:tcp:127.0.0.1:39731", &a, err, sizeof(err)), 0);
    if (listen_open(&l, &a, 8, 0660, err, sizeof(err)) != 0) {
        assert_non_null(strstr(err, "Address already in use"));
        return;
    }
    assert_string_equal(l.name, "uwsgi:tcp:127.0.0.1:39731");
    unsigned depth = 99;
    assert_int_equal(listen_queue_depth(&l, &depth), 0);
    assert_int_equal(depth, 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    getsockname(l.fd, (struct sockaddr *)&ss, &len);
    char name[64];
    listen_peer_name((struct sockaddr *)&ss, len, name, sizeof(name));
    assert_string_equal(name, "127.0.0.1:39731");
    listen_close(&l, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(listen_parses_unix_tcp_and_fd),
        cmocka_unit_test(listen_rejects_bad_specs_with_reasons),
        cmocka_unit_test(listen_replaces_stale_socket_and_sets_mode),
        cmocka_unit_test(listen_refuses_socket_of_live_server),
        cmocka_unit_test(listen_refuses_path_that_is_not_a_socket),
        cmocka_unit_test(listen_adopts_inherited_fd_and_reads_queue_depth),
        cmocka_unit_test(listen_refuses_fd_that_is_not_listening),
        cmocka_unit_test(listen_binds_tcp_loopback_and_names_peer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
