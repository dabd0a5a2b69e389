/*
 * test_config.c — the option table, the config file reader (config.c),
 * the command line (cli.c) and the load sequence of start and reload
 * (config_load.c).
 *
 * Config files are written to /tmp with mkstemp; the fixture removes them.
 * conf/corral.conf is found through $top_srcdir (set by make check), else
 * relative to the current directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/cli.h"
#include "config/config.h"
#include "config/config_load.h"
#include "config/options.h"

enum { TEST_MAX_PATHS = 16, TEST_PATHLEN = 256, TEST_ERRLEN = 1024, TEST_OUTLEN = 16384 };

struct fixture {
    struct config c;
    char err[TEST_ERRLEN];
    char want[TEST_ERRLEN];
    char paths[TEST_MAX_PATHS][TEST_PATHLEN];
    size_t npaths;
    char dir[64];
};

static int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    config_defaults(&f->c);
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    config_free(&f->c);
    for (size_t i = 0; i < f->npaths; i++)
        unlink(f->paths[i]);
    if (f->dir[0])
        rmdir(f->dir);
    free(f);
    return 0;
}

/* Write TEXT to PATH (created), remember it for removal. */
static const char *test_write_at(struct fixture *f, const char *path, const char *text)
{
    assert_true(f->npaths < TEST_MAX_PATHS);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
    snprintf(f->paths[f->npaths], sizeof(f->paths[0]), "%s", path);
    return f->paths[f->npaths++];
}

/* A new temporary config file holding TEXT; returns its path. */
static const char *test_write(struct fixture *f, const char *text)
{
    char path[] = "/tmp/corral-test-config-XXXXXX";
    assert_true(f->npaths < TEST_MAX_PATHS); /* before anything to remove */
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    return test_write_at(f, path, text);
}

/* Load TEXT from a fresh file into f->c; the return of config_load_file. */
static int test_load(struct fixture *f, const char *text, const char **path)
{
    const char *p = test_write(f, text);
    if (path)
        *path = p;
    f->err[0] = '\0';
    return config_load_file(&f->c, p, f->err, sizeof(f->err));
}

/* Loading TEXT fails with exactly the message "PATH" MSG_AFTER_PATH, PATH
 * being the temporary file. */
static void test_load_fails(struct fixture *f, const char *text, const char *msg_after_path)
{
    const char *path;
    assert_int_equal(test_load(f, text, &path), -1);
    snprintf(f->want, sizeof(f->want), "%s%s", path, msg_after_path);
    assert_string_equal(f->err, f->want);
}

static enum cli_action test_cli_argv(struct fixture *f, char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    f->err[0] = '\0';
    return cli_parse(argc, argv, &f->c, f->err, sizeof(f->err));
}

/* Run cli_parse on "corral" followed by the arguments. */
#define TEST_CLI(f, ...) test_cli_argv((f), (char *[]){"corral", __VA_ARGS__, NULL})

/* Run cli_parse with stdout captured into OUT. */
static enum cli_action test_cli_capture(struct fixture *f, char **argv, char *out, size_t outlen)
{
    char path[] = "/tmp/corral-test-out-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDOUT_FILENO) >= 0);
    enum cli_action a = test_cli_argv(f, argv);
    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    ssize_t n = read(fd, out, outlen - 1);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
    return a;
}

static const char *test_example_conf(char *buf, size_t len)
{
    const char *top = getenv("top_srcdir");
    if (top && top[0])
        snprintf(buf, len, "%s/conf/corral.conf", top);
    else
        snprintf(buf, len, "conf/corral.conf");
    return buf;
}

/* ---- the table ---- */

static bool test_cli_only(enum option_type t)
{
    return t == OPTION_CONFIG_FILE || t == OPTION_TEST || t == OPTION_HELP || t == OPTION_VERSION;
}

static bool test_numeric(enum option_type t)
{
    return t == OPTION_UINT || t == OPTION_SIZE || t == OPTION_MODE || t == OPTION_DURATION;
}

static void options_table_is_consistent(void **state)
{
    struct fixture *f = *state;
    assert_true(options_count > 0);
    for (size_t i = 0; i < options_count; i++) {
        const struct option_spec *o = &options_table[i];
        assert_non_null(o->name);
        assert_non_null(o->help);
        assert_non_null(o->group);
        /* A key exactly when the option is not command-line only, spelled
         * like the flag with '_' for '-'. */
        assert_int_equal(o->key == NULL, test_cli_only(o->type));
        if (o->key) {
            char expect[64];
            snprintf(expect, sizeof(expect), "%s", o->name);
            for (char *p = expect; *p; p++)
                if (*p == '-')
                    *p = '_';
            assert_string_equal(o->key, expect);
            assert_ptr_equal(options_by_key(o->key), o);
        }
        assert_ptr_equal(options_by_name(o->name), o);
        if (o->short_name)
            assert_ptr_equal(options_by_short(o->short_name), o);
        /* Takes an argument exactly when it has a value to read. */
        bool takes_arg = !(o->type == OPTION_TEST || o->type == OPTION_HELP ||
                           o->type == OPTION_VERSION || o->type == OPTION_BOOL);
        assert_int_equal(o->metavar != NULL, takes_arg);
        if (o->type == OPTION_STRING_LIST)
            assert_true(o->count_offset != 0);
        if (test_numeric(o->type)) {
            assert_true(o->size == 4 || o->size == 8);
            assert_true(o->min <= o->max);
            if (o->size == 4)
                assert_true(o->max <= UINT32_MAX);
            /* The default is a value the option accepts. */
            uint64_t v = options_get_number(o, &f->c);
            assert_in_range(v, o->min, o->max);
        }
    }
}

/* ---- config file ---- */

static void config_defaults_sets_documented_defaults(void **state)
{
    struct fixture *f = *state;
    const struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    assert_int_equal(f->c.processes, 1);
    assert_int_equal(f->c.threads, 1);
    assert_int_equal(f->c.chmod_mode, 0660);
    assert_int_equal(f->c.backlog, 1024);
    assert_int_equal(f->c.max_conns, 1024);
    assert_int_equal(f->c.limits.max_head, lim.max_head);
    assert_int_equal(f->c.limits.max_params, lim.max_params);
    assert_int_equal(f->c.limits.max_field, lim.max_field);
    assert_int_equal(f->c.limits.max_body, lim.max_body);
    assert_int_equal(f->c.io_timeout_ms, 60000);
    assert_int_equal(f->c.idle_timeout_ms, 75000);
    assert_int_equal(f->c.graceful_timeout_ms, 30000);
    assert_int_equal(f->c.max_processes, 0);
    assert_null(f->c.control);
    assert_int_equal(f->c.control_chmod, 0600);
    assert_int_equal(f->c.control_timeout_ms, 10000);
    assert_null(f->c.listen);
    assert_int_equal(f->c.listen_count, 0);
    assert_null(f->c.handler);
    assert_null(f->c.error_log);
    assert_null(f->c.access_log);
    assert_null(f->c.pidfile);
    assert_null(f->c.source_file);
}

static void config_loads_every_key(void **state)
{
    struct fixture *f = *state;
    const char *path;
    assert_int_equal(
        test_load(f,
                  "listen = [\"uwsgi:unix:/run/a.sock\", \"fastcgi:tcp:127.0.0.1:9000\",\n"
                  "          \"scgi:fd:3\"];\n"
                  "handler = \"/srv/app.so:entry\";\n"
                  "processes = 4;\n"
                  "threads = 8;\n"
                  "error_log = \"/var/log/e.log\";\n"
                  "access_log = \"/var/log/a.log\";\n"
                  "pidfile = \"/run/corral.pid\";\n"
                  "chmod = \"0600\";\n"
                  "backlog = 512;\n"
                  "max_conns = 300;\n"
                  "max_head = 8192;\n"
                  "max_params = 200;\n"
                  "max_field = \"4K\";\n"
                  "max_body = \"10M\";\n"
                  "io_timeout = 5;\n"
                  "idle_timeout = 2.5;\n"
                  "graceful_timeout = 0;\n",
                  &path),
        0);
    assert_int_equal(f->c.listen_count, 3);
    assert_string_equal(f->c.listen[0], "uwsgi:unix:/run/a.sock");
    assert_string_equal(f->c.listen[1], "fastcgi:tcp:127.0.0.1:9000");
    assert_string_equal(f->c.listen[2], "scgi:fd:3");
    assert_string_equal(f->c.handler, "/srv/app.so:entry");
    assert_int_equal(f->c.processes, 4);
    assert_int_equal(f->c.threads, 8);
    assert_string_equal(f->c.error_log, "/var/log/e.log");
    assert_string_equal(f->c.access_log, "/var/log/a.log");
    assert_string_equal(f->c.pidfile, "/run/corral.pid");
    assert_int_equal(f->c.chmod_mode, 0600);
    assert_int_equal(f->c.backlog, 512);
    assert_int_equal(f->c.max_conns, 300);
    assert_int_equal(f->c.limits.max_head, 8192);
    assert_int_equal(f->c.limits.max_params, 200);
    assert_int_equal(f->c.limits.max_field, 4096);
    assert_int_equal(f->c.limits.max_body, 10 * 1024 * 1024);
    assert_int_equal(f->c.io_timeout_ms, 5000);
    assert_int_equal(f->c.idle_timeout_ms, 2500);
    assert_int_equal(f->c.graceful_timeout_ms, 0);
    assert_string_equal(f->c.source_file, path);
    /* Derived by config_finish. */
    assert_int_equal(f->c.limits.fcgi_max_conns, 4 * 300);
    assert_int_equal(f->c.limits.fcgi_max_reqs, 4 * 8);
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), 0);
}

static void config_accepts_single_listen_string(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_load(f, "listen = \"scgi:tcp:[::1]:4000\";\n", NULL), 0);
    assert_int_equal(f->c.listen_count, 1);
    assert_string_equal(f->c.listen[0], "scgi:tcp:[::1]:4000");
}

static void config_rejects_out_of_range_integer_with_line(void **state)
{
    struct fixture *f = *state;
    test_load_fails(f, "threads = 2;\n\nprocesses = 0;\n",
                    ":3: key 'processes': expected an integer from 1 to 4096, got 0");
    test_load_fails(f, "backlog = 65536;\n",
                    ":1: key 'backlog': expected an integer from 1 to 65535, got 65536");
    test_load_fails(f, "max_conns = -5;\n",
                    ":1: key 'max_conns': expected an integer from 1 to 1000000, got -5");
}

static void config_rejects_unknown_key_with_line(void **state)
{
    struct fixture *f = *state;
    test_load_fails(f, "threads = 2;\nprocesess = 2;\n",
                    ":2: unknown key 'procesess' (did you mean 'processes'?)");
    test_load_fails(f, "error-log = \"x\";\n",
                    ":1: unknown key 'error-log' (did you mean 'error_log'?)");
    test_load_fails(f, "frobnicate = 1;\n", ":1: unknown key 'frobnicate'");
    /* Command-line-only flags are not keys. */
    test_load_fails(f, "config = \"x\";\n", ":1: unknown key 'config'");
}

static void config_rejects_wrong_type_with_line(void **state)
{
    struct fixture *f = *state;
    test_load_fails(f, "handler = 5;\n", ":1: key 'handler': expected a string, got an integer");
    test_load_fails(f, "processes = \"4\";\n",
                    ":1: key 'processes': expected an integer from 1 to 4096, got a string");
    test_load_fails(f, "processes = 1.5;\n",
                    ":1: key 'processes': expected an integer from 1 to 4096, got 1.5");
    test_load_fails(f, "listen = 3;\n",
                    ":1: key 'listen': expected a string or a list of strings, got an integer");
    test_load_fails(f, "io_timeout = true;\n",
                    ":1: key 'io_timeout': expected a number of seconds from 0.001 to 86400, "
                    "got a boolean");
    test_load_fails(f, "max_head = { a = 1; };\n",
                    ":1: key 'max_head': expected a size in bytes from 512 to 16M, got a group");
    test_load_fails(f, "\nhandler = \"\";\n",
                    ":2: key 'handler': expected a non-empty string, got ''");
}

static void config_reports_syntax_error_with_line(void **state)
{
    struct fixture *f = *state;
    test_load_fails(f, "processes = 2;\nthreads = ;\n", ":2: syntax error");
}

static void config_reports_unreadable_file(void **state)
{
    struct fixture *f = *state;
    const char *path = "/nonexistent-dir/corral.conf";
    assert_int_equal(config_load_file(&f->c, path, f->err, sizeof(f->err)), -1);
    assert_string_equal(f->err, "/nonexistent-dir/corral.conf: cannot read: No such file or "
                                "directory");
}

static void config_rejects_bad_listen_with_key_prefix(void **state)
{
    struct fixture *f = *state;
    const char *path;
    assert_int_equal(test_load(f,
                               "listen = [\n"
                               "    \"uwsgi:unix:/run/a.sock\",\n"
                               "    \"https:tcp:127.0.0.1:80\"\n"
                               "];\n",
                               &path),
                     -1);
    /* The reason is listen_parse's, after the key's file and line. */
    snprintf(f->want, sizeof(f->want), "%s:1: key 'listen': ", path);
    assert_memory_equal(f->err, f->want, strlen(f->want));
    assert_non_null(strstr(f->err, "https:tcp:127.0.0.1:80"));
    assert_int_equal(f->c.listen_count, 0);
}

static void config_rejects_non_string_listen_element(void **state)
{
    struct fixture *f = *state;
    /* A list: libconfig itself refuses mixed types in an [array]. */
    test_load_fails(f, "listen = (\"uwsgi:unix:/a\", 5);\n",
                    ":1: key 'listen': expected a list of strings, got an integer as element 2");
    test_load_fails(f, "listen = (\"uwsgi:unix:/a\", (\"scgi:fd:3\"));\n",
                    ":1: key 'listen': expected a list of strings, got a list as element 2");
}

static void config_keeps_old_values_on_error(void **state)
{
    struct fixture *f = *state;
    const char *first;
    assert_int_equal(
        test_load(f, "processes = 3;\nlisten = \"uwsgi:unix:/a\";\nhandler = \"a.so\";\n", &first),
        0);
    assert_int_equal(
        test_load(f, "processes = 5;\nlisten = [\"scgi:unix:/b\"];\nthreads = 0;\n", NULL), -1);
    assert_int_equal(f->c.processes, 3);
    assert_int_equal(f->c.threads, 1);
    assert_int_equal(f->c.listen_count, 1);
    assert_string_equal(f->c.listen[0], "uwsgi:unix:/a");
    assert_string_equal(f->c.handler, "a.so");
    assert_string_equal(f->c.source_file, first);
}

static void config_later_file_overrides_earlier(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_load(f,
                               "processes = 3;\nlisten = [\"uwsgi:unix:/a\", "
                               "\"scgi:unix:/b\"];\nhandler = \"a.so\";\n",
                               NULL),
                     0);
    assert_int_equal(test_load(f, "listen = \"fastcgi:unix:/c\";\nhandler = \"b.so\";\n", NULL), 0);
    assert_int_equal(f->c.processes, 3);
    assert_int_equal(f->c.listen_count, 1);
    assert_string_equal(f->c.listen[0], "fastcgi:unix:/c");
    assert_string_equal(f->c.handler, "b.so");
}

static void config_reads_chmod_as_string_or_octal_digits(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_load(f, "chmod = \"0640\";\n", NULL), 0);
    assert_int_equal(f->c.chmod_mode, 0640);
    /* libconfig reads 0600 as decimal 600: the digits are octal. */
    assert_int_equal(test_load(f, "chmod = 0600;\n", NULL), 0);
    assert_int_equal(f->c.chmod_mode, 0600);
    assert_int_equal(test_load(f, "chmod = 666;\n", NULL), 0);
    assert_int_equal(f->c.chmod_mode, 0666);
    assert_int_equal(test_load(f, "chmod = 0x1a0;\n", NULL), 0);
    assert_int_equal(f->c.chmod_mode, 0640);
    test_load_fails(f, "chmod = 0689;\n",
                    ":1: key 'chmod': expected an octal mode from 0 to 0777, got 689");
    test_load_fails(f, "chmod = 1777;\n",
                    ":1: key 'chmod': expected an octal mode from 0 to 0777, got 01777");
    test_load_fails(f, "chmod = \"rw\";\n",
                    ":1: key 'chmod': expected an octal mode from 0 to 0777, got 'rw'");
    assert_int_equal(f->c.chmod_mode, 0640);
}

static void config_reads_durations_as_integer_or_fraction(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_load(f, "io_timeout = 0.5;\nidle_timeout = 10;\n", NULL), 0);
    assert_int_equal(f->c.io_timeout_ms, 500);
    assert_int_equal(f->c.idle_timeout_ms, 10000);
    test_load_fails(f, "io_timeout = 0;\n",
                    ":1: key 'io_timeout': expected a number of seconds from 0.001 to 86400, "
                    "got 0");
    test_load_fails(f, "idle_timeout = -1.5;\n",
                    ":1: key 'idle_timeout': expected a number of seconds from 0.001 to 86400, "
                    "got -1.5");
    test_load_fails(f, "graceful_timeout = 86401;\n",
                    ":1: key 'graceful_timeout': expected a number of seconds from 0 to 86400, "
                    "got 86401");
}

static void config_reads_sizes_as_integer_or_suffixed_string(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_load(f, "max_body = \"2G\";\nmax_head = \"16M\";\n", NULL), 0);
    assert_int_equal(f->c.limits.max_body, 2ULL << 30);
    assert_int_equal(f->c.limits.max_head, 16 << 20);
    assert_int_equal(test_load(f, "max_body = 5000000000L;\n", NULL), 0);
    assert_int_equal(f->c.limits.max_body, 5000000000ULL);
    test_load_fails(f, "max_head = 100;\n",
                    ":1: key 'max_head': expected a size in bytes from 512 to 16M, got 100");
    test_load_fails(f, "max_head = \"17M\";\n",
                    ":1: key 'max_head': expected a size in bytes from 512 to 16M, got '17M'");
}

static void config_names_included_file_in_errors(void **state)
{
    struct fixture *f = *state;
    snprintf(f->dir, sizeof(f->dir), "/tmp/corral-test-dir-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char main_path[128], part_path[128];
    snprintf(main_path, sizeof(main_path), "%s/main.conf", f->dir);
    snprintf(part_path, sizeof(part_path), "%s/part.conf", f->dir);
    /* The include is relative to the including file, not to the cwd. */
    test_write_at(f, part_path, "processes = 2;\nthreads = 0;\n");
    test_write_at(f, main_path, "@include \"part.conf\"\n");
    assert_int_equal(config_load_file(&f->c, main_path, f->err, sizeof(f->err)), -1);
    snprintf(f->want, sizeof(f->want),
             "%s:2: key 'threads': expected an integer from 1 to 1024, got 0", part_path);
    assert_string_equal(f->err, f->want);
}

static void config_validate_requires_listener(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_load(f, "handler = \"a.so\";\n", NULL), 0);
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    assert_string_equal(f->err,
                        "no listener: give --listen PROTO:ADDR or listen = [...] in the config");
}

static void config_validate_asgi_is_one_app(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_load(f, "listen = \"http:unix:/a\";\nasgi = \"app:app\";\n", NULL), 0);
    assert_string_equal(f->c.asgi, "app:app");
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), 0);
    f->c.preload = true;
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    assert_non_null(strstr(f->err, "preload applies to WSGI apps, not to --asgi"));
    f->c.preload = false;
    f->c.wsgi = strdup("w:app");
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    assert_string_equal(f->err, "give only one application: --asgi, or one of --handler, "
                                "--wsgi, --wsgi-file and --fastcgi-program");
}

static void config_validate_requires_handler(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_load(f, "listen = \"uwsgi:unix:/a\";\n", NULL), 0);
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    assert_string_equal(f->err, "no application: give --wsgi MODULE[:CALLABLE], --wsgi-file "
                                "PATH, --handler FILE.so, --fastcgi-program \"CMD ARGS\", "
                                "--cgi ROOT or --asgi MODULE[:APP]");
}

static void config_loads_control_socket_keys(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_load(f,
                               "control = \"/run/corral/ctl.sock\";\ncontrol_chmod = \"0660\";\n"
                               "control_timeout = 2.5;\nmax_processes = 32;\nprocesses = 8;\n",
                               NULL),
                     0);
    assert_string_equal(f->c.control, "/run/corral/ctl.sock");
    assert_int_equal(f->c.control_chmod, 0660);
    assert_int_equal(f->c.control_timeout_ms, 2500);
    assert_int_equal(f->c.max_processes, 32);
    assert_int_equal(config_max_processes(&f->c), 32);
    test_load_fails(f, "control_timeout = 0.01;\n",
                    ":1: key 'control_timeout': expected a number of seconds from 0.1 to 3600, "
                    "got 0.01");
}

static void config_loads_service_keys(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_load(f,
                               "uid = \"nobody\";\ngid = \"0\";\nallow_root = true;\n"
                               "chown = \"nobody:nogroup\";\n"
                               "allow_from = [\"10.0.0.0/8\", \"::1\"];\n",
                               NULL),
                     0);
    assert_string_equal(f->c.uid, "nobody");
    assert_string_equal(f->c.gid, "0");
    assert_true(f->c.allow_root);
    assert_string_equal(f->c.chown, "nobody:nogroup");
    assert_int_equal(f->c.allow_from_count, 2);
    assert_string_equal(f->c.allow_from[1], "::1");
    test_load_fails(f, "allow_from = [\"10.0.0.0/8\", \"10.0.0.1/8\"];\n",
                    ":1: key 'allow_from': expected an address or CIDR (such as 10.0.0.0/8 or "
                    "fd00::/8), got '10.0.0.1/8' (address bits are set past the prefix)");
    test_load_fails(f, "uid = \"no-such-user-here\";\n",
                    ":1: key 'uid': expected a user name or a numeric uid, got "
                    "'no-such-user-here' (no such user)");
    test_load_fails(f, "gid = \"no-such-group-here\";\n",
                    ":1: key 'gid': expected a group name or a numeric gid, got "
                    "'no-such-group-here' (no such group)");
    test_load_fails(f, "chown = \":nogroup\";\n",
                    ":1: key 'chown': expected USER[:GROUP] (names or numeric ids), got "
                    "':nogroup'");
}

static void cli_reads_service_options(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(TEST_CLI(f, "--uid", "65534", "--gid", "nogroup", "--allow-from",
                              "192.168.0.0/16", "--allow-from", "fd00::/8", "--chown", "0",
                              "--allow-root"),
                     CLI_RUN);
    assert_string_equal(f->c.uid, "65534");
    assert_string_equal(f->c.gid, "nogroup");
    assert_int_equal(f->c.allow_from_count, 2);
    assert_string_equal(f->c.allow_from[0], "192.168.0.0/16");
    assert_string_equal(f->c.chown, "0");
    assert_true(f->c.allow_root);
    assert_int_equal(TEST_CLI(f, "--allow-from", "example.com"), CLI_FAIL);
    assert_string_equal(f->err, "--allow-from: expected an address or CIDR (such as 10.0.0.0/8 "
                                "or fd00::/8), got 'example.com' (host names are not resolved)");
    /* A numeric uid without a passwd entry needs its group spelled out. */
    assert_int_equal(TEST_CLI(f, "--chown", "4000000"), CLI_FAIL);
    assert_string_equal(f->err, "--chown: uid 4000000 has no passwd entry: give its group too, "
                                "as USER:GROUP, in '4000000'");
}

static void config_max_processes_defaults_to_four_times_at_least_sixteen(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(config_max_processes(&f->c), 16);
    f->c.processes = 10;
    assert_int_equal(config_max_processes(&f->c), 40);
    f->c.processes = 4096;
    assert_int_equal(config_max_processes(&f->c), 4096);
}

static void config_validate_refuses_max_processes_below_processes(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_load(f,
                               "listen = \"uwsgi:unix:/a\";\nhandler = \"a.so\";\n"
                               "processes = 8;\nmax_processes = 4;\n",
                               NULL),
                     0);
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    assert_string_equal(f->err, "max_processes (4) is less than processes (8)");
    f->c.max_processes = 8;
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), 0);
}

static void config_loads_pool_keys(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(config_pool_mode(&f->c), POOL_STATIC);
    assert_int_equal(f->c.min_spare, 1);
    assert_int_equal(f->c.max_spare, 3);
    assert_int_equal(f->c.idle_worker_timeout_ms, 10000);
    assert_int_equal(config_start_processes(&f->c), 2);
    assert_int_equal(test_load(f,
                               "pool = \"dynamic\";\nstart_processes = 3;\nmin_spare = 2;\n"
                               "max_spare = 5;\nidle_worker_timeout = 2.5;\n"
                               "status_path = \"/corral-status\";\n",
                               NULL),
                     0);
    assert_int_equal(config_pool_mode(&f->c), POOL_DYNAMIC);
    assert_int_equal(config_start_processes(&f->c), 3);
    assert_int_equal(f->c.min_spare, 2);
    assert_int_equal(f->c.max_spare, 5);
    assert_int_equal(f->c.idle_worker_timeout_ms, 2500);
    assert_string_equal(f->c.status_path, "/corral-status");
    assert_string_equal(config_pool_mode_name(POOL_ONDEMAND), "ondemand");
}

static void config_rejects_unknown_pool_mode(void **state)
{
    struct fixture *f = *state;
    test_load_fails(f, "pool = \"elastic\";\n",
                    ":1: key 'pool': expected static, dynamic or ondemand, got 'elastic'");
}

/* A dynamic pool's numbers, each bad combination with its message. */
static void config_validate_checks_dynamic_pool_numbers(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_load(f,
                               "listen = \"uwsgi:unix:/a\";\nhandler = \"a.so\";\n"
                               "pool = \"dynamic\";\nmin_spare = 4;\nmax_spare = 2;\n"
                               "max_processes = 8;\n",
                               NULL),
                     0);
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    assert_string_equal(f->err, "pool dynamic: min_spare (4) is more than max_spare (2)");
    f->c.max_spare = 10;
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    assert_string_equal(f->err, "pool dynamic: max_spare (10) is more than max_processes (8)");
    f->c.max_spare = 6;
    f->c.start_processes = 2;
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    assert_string_equal(f->err, "pool dynamic: start_processes (2) must be from min_spare (4) "
                                "to max_processes (8)");
    f->c.start_processes = 9;
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    f->c.start_processes = 0; /* 4 + (6 - 4) / 2 */
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), 0);
    assert_int_equal(config_start_processes(&f->c), 5);
    /* The spares of a static pool are not checked. */
    free(f->c.pool);
    f->c.pool = NULL;
    f->c.min_spare = 7;
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), 0);
}

static void config_validate_wants_status_path_absolute(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_load(f,
                               "listen = \"uwsgi:unix:/a\";\nhandler = \"a.so\";\n"
                               "status_path = \"corral-status\";\n",
                               NULL),
                     0);
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    assert_string_equal(f->err, "status_path must start with '/', got 'corral-status'");
}

/* --health-path and --stop-delay: off by default, read from the file and
 * the command line, checked (an absolute path, not the status path; at
 * most an hour). */
static void config_reads_health_path_and_stop_delay(void **state)
{
    struct fixture *f = *state;
    assert_null(f->c.health_path);
    assert_int_equal(f->c.stop_delay_ms, 0);
    assert_int_equal(test_load(f, "health_path = \"/healthz\";\nstop_delay = 2.5;\n", NULL), 0);
    assert_string_equal(f->c.health_path, "/healthz");
    assert_int_equal(f->c.stop_delay_ms, 2500);
    assert_int_equal(TEST_CLI(f, "--health-path", "/ready", "--stop-delay", "3600"), CLI_RUN);
    assert_string_equal(f->c.health_path, "/ready");
    assert_int_equal(f->c.stop_delay_ms, 3600000);
    test_load_fails(f, "stop_delay = 3601;\n",
                    ":1: key 'stop_delay': expected a number of seconds from 0 to 3600, "
                    "got 3601");
}

static void config_validate_checks_health_path(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_load(f,
                               "listen = \"uwsgi:unix:/a\";\nhandler = \"a.so\";\n"
                               "health_path = \"healthz\";\n",
                               NULL),
                     0);
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    assert_string_equal(f->err, "health_path must start with '/', got 'healthz'");
    free(f->c.health_path);
    f->c.health_path = strdup("/corral-status");
    f->c.status_path = strdup("/corral-status");
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    assert_string_equal(f->err, "health_path and status_path are the same path "
                                "('/corral-status')");
    free(f->c.status_path);
    f->c.status_path = strdup("/status");
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), 0);
}

static void config_validate_takes_wsgi_app_and_its_python_options(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_load(f,
                               "listen = \"uwsgi:unix:/a\";\nwsgi = \"pkg.mod:app\";\n"
                               "chdir = \"/srv\";\npythonpath = [\"/a\", \"/b\"];\n"
                               "env = \"X=1=2\";\n",
                               NULL),
                     0);
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), 0);
    assert_string_equal(f->c.wsgi, "pkg.mod:app");
    assert_string_equal(f->c.chdir, "/srv");
    assert_int_equal(f->c.pythonpath_count, 2);
    assert_string_equal(f->c.pythonpath[1], "/b");
    assert_int_equal(f->c.env_count, 1);
    assert_string_equal(f->c.env[0], "X=1=2");
}

static void config_refuses_env_without_name(void **state)
{
    struct fixture *f = *state;
    test_load_fails(f, "env = \"=x\";\n", ":1: key 'env': expected NAME=VALUE, got '=x'");
    assert_int_equal(test_load(f, "env = [\"A=1\", \"B\"];\n", NULL), -1);
    assert_non_null(strstr(f->err, "expected NAME=VALUE, got 'B'"));
}

static void config_validate_refuses_two_apps(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_load(f,
                               "listen = \"uwsgi:unix:/a\";\nhandler = \"a.so\";\n"
                               "wsgi_file = \"app.py\";\n",
                               NULL),
                     0);
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    assert_string_equal(f->err, "give only one application: --handler, --wsgi, --wsgi-file or "
                                "--fastcgi-program");
}

static void config_validate_rejects_one_address_twice(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_load(f,
                               "listen = [\"uwsgi:unix:/a\", \"scgi:tcp:h:1\", \"scgi:unix:/a\"];\n"
                               "handler = \"a.so\";\n",
                               NULL),
                     0);
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    assert_string_equal(f->err, "listeners 'uwsgi:unix:/a' and 'scgi:unix:/a' have the same "
                                "address");
}

static void example_conf_loads_and_validates(void **state)
{
    struct fixture *f = *state;
    char path[1024];
    struct config defaults;
    config_defaults(&defaults);
    test_example_conf(path, sizeof(path));
    assert_int_equal(config_load_file(&f->c, path, f->err, sizeof(f->err)), 0);
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), 0);
    assert_true(f->c.listen_count >= 1);
    /* The file says its active numeric values are the defaults: check. */
    for (size_t i = 0; i < options_count; i++) {
        const struct option_spec *o = &options_table[i];
        if (test_numeric(o->type))
            assert_int_equal(options_get_number(o, &f->c), options_get_number(o, &defaults));
    }
    config_free(&defaults);
}

/* A commented-out setting of the example: "# key = ..." with a known key,
 * or a commented list element ("# \"..."); *start is where it begins after
 * the "# ". */
static bool test_commented_setting(const char *line, const char **start)
{
    const char *p = line + strspn(line, " ");
    if (strncmp(p, "# ", 2) != 0)
        return false;
    p += 2;
    *start = p;
    if (*p == '"')
        return true;
    char key[64];
    size_t n = strcspn(p, " =");
    if (n == 0 || n >= sizeof(key) || strncmp(p + n, " = ", 3) != 0)
        return false;
    snprintf(key, sizeof(key), "%.*s", (int)n, p);
    return options_by_key(key) != NULL;
}

static void example_conf_commented_settings_are_valid(void **state)
{
    struct fixture *f = *state;
    char path[1024], line[512];
    static char text[65536];
    size_t used = 0, uncommented = 0;
    FILE *fp = fopen(test_example_conf(path, sizeof(path)), "r");
    assert_non_null(fp);
    /* Uncomment every example setting and list element, then load. */
    while (fgets(line, sizeof(line), fp)) {
        const char *start;
        bool setting = test_commented_setting(line, &start);
        uncommented += setting;
        int n = snprintf(text + used, sizeof(text) - used, "%s", setting ? start : line);
        assert_true(n >= 0 && (size_t)n < sizeof(text) - used);
        used += (size_t)n;
    }
    fclose(fp);
    assert_true(uncommented >= 5);
    assert_int_equal(test_load(f, text, NULL), 0);
    /* handler, wsgi and wsgi_file are alternatives: all three at once are
     * refused; with only the handler left the rest is valid. */
    assert_non_null(f->c.wsgi);
    assert_non_null(f->c.wsgi_file);
    assert_non_null(f->c.virtualenv);
    assert_true(f->c.preload);
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    assert_string_equal(f->err, "give only one application: --handler, --wsgi, --wsgi-file or "
                                "--fastcgi-program");
    free(f->c.wsgi);
    free(f->c.wsgi_file);
    free(f->c.fastcgi_program);
    free(f->c.cgi);
    free(f->c.asgi);
    f->c.wsgi = f->c.wsgi_file = f->c.fastcgi_program = f->c.cgi = f->c.asgi = NULL;
    /* The Python-only settings are refused next to a native handler. */
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    assert_string_equal(f->err, "virtualenv applies to WSGI apps (--wsgi, --wsgi-file), not to "
                                "--handler");
    free(f->c.virtualenv);
    f->c.virtualenv = NULL;
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), 0);
    /* The three protocols and the three address forms are shown. */
    const char *forms[] = {"uwsgi:", "fastcgi:", "scgi:", ":unix:", ":tcp:", ":fd:"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        bool found = false;
        for (size_t j = 0; j < f->c.listen_count; j++)
            found = found || strstr(f->c.listen[j], forms[i]) != NULL;
        assert_true(found);
    }
    /* Every key appears in the example. */
    for (size_t i = 0; i < options_count; i++) {
        char setting[80];
        if (!options_table[i].key)
            continue;
        snprintf(setting, sizeof(setting), "\n%s = ", options_table[i].key);
        assert_non_null(strstr(text, setting));
    }
    assert_non_null(f->c.error_log);
    assert_non_null(f->c.access_log);
    assert_non_null(f->c.pidfile);
}

/* ---- command line ---- */

static void cli_loads_config_file_before_other_flags(void **state)
{
    struct fixture *f = *state;
    const char *path = test_write(f, "processes = 2;\nthreads = 3;\n");
    assert_int_equal(TEST_CLI(f, "--processes", "8", "-c", (char *)path), CLI_RUN);
    assert_int_equal(f->c.processes, 8);
    assert_int_equal(f->c.threads, 3);
    assert_string_equal(f->c.source_file, path);
}

static void cli_listen_replaces_file_list(void **state)
{
    struct fixture *f = *state;
    const char *path = test_write(f, "listen = [\"uwsgi:unix:/a\", \"scgi:unix:/b\"];\n");
    assert_int_equal(
        TEST_CLI(f, "--config", (char *)path, "--listen", "fastcgi:tcp:127.0.0.1:9000"), CLI_RUN);
    assert_int_equal(f->c.listen_count, 1);
    assert_string_equal(f->c.listen[0], "fastcgi:tcp:127.0.0.1:9000");
}

static void cli_listen_is_repeatable(void **state)
{
    struct fixture *f = *state;
    const char *path = test_write(f, "listen = \"uwsgi:unix:/a\";\n");
    assert_int_equal(TEST_CLI(f, "--listen", "uwsgi:unix:/x", "--listen=scgi:fd:3", "-c",
                              (char *)path, "--listen", "fastcgi:tcp:h:9"),
                     CLI_RUN);
    assert_int_equal(f->c.listen_count, 3);
    assert_string_equal(f->c.listen[0], "uwsgi:unix:/x");
    assert_string_equal(f->c.listen[1], "scgi:fd:3");
    assert_string_equal(f->c.listen[2], "fastcgi:tcp:h:9");
}

static void cli_rejects_bad_listen(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(TEST_CLI(f, "--listen", "https:unix:/a"), CLI_FAIL);
    assert_memory_equal(f->err, "--listen: ", strlen("--listen: "));
    assert_non_null(strstr(f->err, "https:unix:/a"));
}

static void cli_reads_sizes_with_suffix(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(TEST_CLI(f, "--max-head", "16K", "--max-field", "1m", "--max-body", "2G",
                              "--max-params", "10"),
                     CLI_RUN);
    assert_int_equal(f->c.limits.max_head, 16384);
    assert_int_equal(f->c.limits.max_field, 1048576);
    assert_int_equal(f->c.limits.max_body, 2ULL << 30);
    assert_int_equal(f->c.limits.max_params, 10);
    assert_int_equal(TEST_CLI(f, "--max-body", "0"), CLI_RUN);
    assert_int_equal(f->c.limits.max_body, 0);
}

static void cli_rejects_size_out_of_range(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(TEST_CLI(f, "--max-head", "17M"), CLI_FAIL);
    assert_string_equal(f->err, "--max-head: expected a size in bytes from 512 to 16M, got '17M'");
    assert_int_equal(TEST_CLI(f, "--max-body", "1T"), CLI_FAIL);
    assert_string_equal(f->err,
                        "--max-body: expected a size in bytes, such as 65536, 64K or 1G, got '1T'");
    assert_int_equal(TEST_CLI(f, "--max-body", "99999999999G"), CLI_FAIL);
    assert_int_equal(TEST_CLI(f, "--max-field", "K"), CLI_FAIL);
}

/* The deadlines of a request: defaults, the file, the command line, limits. */
static void config_reads_request_deadlines(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(f->c.header_timeout_ms, 60000);
    assert_int_equal(f->c.body_timeout_ms, 60000);
    assert_int_equal(f->c.send_timeout_ms, 60000);
    assert_int_equal(f->c.min_rate, 500);
    assert_int_equal(test_load(f, "header_timeout = 2;\nbody_timeout = 2.5;\n"
                                  "send_timeout = 30;\nmin_rate = \"64K\";\n", NULL), 0);
    assert_int_equal(f->c.header_timeout_ms, 2000);
    assert_int_equal(f->c.body_timeout_ms, 2500);
    assert_int_equal(f->c.send_timeout_ms, 30000);
    assert_int_equal(f->c.min_rate, 65536);
    test_load_fails(f, "body_timeout = 0;\n",
                    ":1: key 'body_timeout': expected a number of seconds from 0.001 to 86400, "
                    "got 0");
    assert_int_equal(TEST_CLI(f, "--header-timeout", "0.5", "--send-timeout", "1",
                              "--min-rate", "0"), CLI_RUN);
    assert_int_equal(f->c.header_timeout_ms, 500);
    assert_int_equal(f->c.send_timeout_ms, 1000);
    assert_int_equal(f->c.min_rate, 0);
}

static void cli_reads_fractional_seconds(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(
        TEST_CLI(f, "--io-timeout", "0.5", "--idle-timeout", "1.2345", "--graceful-timeout", "0"),
        CLI_RUN);
    assert_int_equal(f->c.io_timeout_ms, 500);
    assert_int_equal(f->c.idle_timeout_ms, 1235);
    assert_int_equal(f->c.graceful_timeout_ms, 0);
    assert_int_equal(TEST_CLI(f, "--io-timeout", ".25", "--idle-timeout", "7."), CLI_RUN);
    assert_int_equal(f->c.io_timeout_ms, 250);
    assert_int_equal(f->c.idle_timeout_ms, 7000);
}

static void cli_rejects_malformed_seconds(void **state)
{
    struct fixture *f = *state;
    const char *bad[] = {"1.5s", ".", "-1", "", "1e3", "0.0004", "86400.001"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(TEST_CLI(f, "--io-timeout", (char *)bad[i]), CLI_FAIL);
        snprintf(f->want, sizeof(f->want),
                 "--io-timeout: expected a number of seconds from 0.001 to 86400, got '%s'",
                 bad[i]);
        assert_string_equal(f->err, f->want);
    }
    assert_int_equal(f->c.io_timeout_ms, 60000);
}

static void cli_reads_octal_chmod(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(TEST_CLI(f, "--chmod", "0640"), CLI_RUN);
    assert_int_equal(f->c.chmod_mode, 0640);
    assert_int_equal(TEST_CLI(f, "--chmod", "600"), CLI_RUN);
    assert_int_equal(f->c.chmod_mode, 0600);
    assert_int_equal(TEST_CLI(f, "--chmod", "0999"), CLI_FAIL);
    assert_string_equal(f->err, "--chmod: expected an octal mode from 0 to 0777, got '0999'");
    assert_int_equal(TEST_CLI(f, "--chmod", "1777"), CLI_FAIL);
}

static void bool_option_from_flag_and_file(void **state)
{
    struct fixture *f = *state;
    assert_false(f->c.preload);
    assert_int_equal(TEST_CLI(f, "--preload"), CLI_RUN);
    assert_true(f->c.preload);
    assert_int_equal(test_load(f, "preload = false;\n", NULL), 0);
    assert_false(f->c.preload);
    assert_int_equal(test_load(f, "preload = true;\n", NULL), 0);
    assert_true(f->c.preload);
    test_load_fails(f, "preload = \"yes\";\n", ":1: key 'preload': expected true or false, got a "
                                                "string");
    test_load_fails(f, "\npreload = 1;\n", ":2: key 'preload': expected true or false, got an "
                                            "integer");
}

static void cli_rejects_bad_integer_with_message(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(TEST_CLI(f, "--processes", "x"), CLI_FAIL);
    assert_string_equal(f->err, "--processes: expected an integer from 1 to 4096, got 'x'");
    assert_int_equal(TEST_CLI(f, "--threads", "1025"), CLI_FAIL);
    assert_string_equal(f->err, "--threads: expected an integer from 1 to 1024, got '1025'");
    const char *bad[] = {"-1", "+2", " 2", "2x", "", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(TEST_CLI(f, "--backlog", (char *)bad[i]), CLI_FAIL);
    assert_int_equal(f->c.backlog, 1024);
}

static void cli_reads_control_socket_options(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(TEST_CLI(f, "--control", "/tmp/c.sock", "--control-chmod", "0640",
                              "--control-timeout", "1", "--max-processes", "64"),
                     CLI_RUN);
    assert_string_equal(f->c.control, "/tmp/c.sock");
    assert_int_equal(f->c.control_chmod, 0640);
    assert_int_equal(f->c.control_timeout_ms, 1000);
    assert_int_equal(f->c.max_processes, 64);
    char longpath[200];
    memset(longpath, 'p', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(TEST_CLI(f, "--control", longpath), CLI_FAIL);
    assert_string_equal(f->err,
                        "--control: expected a socket path of at most 107 bytes, got 199 bytes");
    assert_int_equal(TEST_CLI(f, "--max-processes", "4097"), CLI_FAIL);
    assert_string_equal(f->err, "--max-processes: expected an integer from 0 to 4096, got '4097'");
}

static void cli_sets_fastcgi_limits_from_pool(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(TEST_CLI(f, "--processes", "4", "--threads", "8", "--max-conns", "100"),
                     CLI_RUN);
    assert_int_equal(f->c.limits.fcgi_max_conns, 400);
    assert_int_equal(f->c.limits.fcgi_max_reqs, 32);
}

static void cli_test_config_returns_check(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(TEST_CLI(f, "-t", "--processes", "2"), CLI_CHECK);
    assert_int_equal(f->c.processes, 2);
    assert_int_equal(TEST_CLI(f, "--test-config"), CLI_CHECK);
    assert_int_equal(TEST_CLI(f, "--threads", "2"), CLI_RUN);
}

static void cli_help_prints_usage_and_returns_done(void **state)
{
    struct fixture *f = *state;
    static char out[TEST_OUTLEN];
    /* --help wins before the (missing) file is read. */
    assert_int_equal(
        test_cli_capture(f, (char *[]){"corral", "-c", "/nonexistent.conf", "--help", NULL}, out,
                         sizeof(out)),
        CLI_DONE);
    assert_memory_equal(out, "Usage: corral", strlen("Usage: corral"));
    assert_non_null(strstr(out, "--max-conns N"));
    assert_null(f->c.source_file);
}

static void cli_version_prints_version(void **state)
{
    struct fixture *f = *state;
    static char out[TEST_OUTLEN];
    assert_int_equal(test_cli_capture(f, (char *[]){"corral", "--version", NULL}, out, sizeof(out)),
                     CLI_DONE);
#ifdef PACKAGE_VERSION
    const char *first = "corral " PACKAGE_VERSION "\n";
#else
    const char *first = "corral 0.1.0\n";
#endif
    assert_memory_equal(out, first, strlen(first));
    /* The second line names the embedded Python, or says there is none. */
#ifdef HAVE_PYTHON
    assert_string_equal(out + strlen(first),
                        "wsgi: Python " CORRAL_PYTHON_VERSION " (" CORRAL_PYTHON_EXECUTABLE ")\n");
#else
    assert_string_equal(out + strlen(first), "wsgi: not built (configure --without-python)\n");
#endif
}

static void cli_usage_shows_every_option_and_default(void **state)
{
    struct fixture *f = *state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    cli_usage(out);
    assert_int_equal(fclose(out), 0);
    for (size_t i = 0; i < options_count; i++) {
        const struct option_spec *o = &options_table[i];
        char flag[96];
        snprintf(flag, sizeof(flag), "--%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        assert_non_null(strstr(text, flag));
        assert_non_null(strstr(text, o->group));
    }
    assert_non_null(strstr(text, "(default: 0660)"));
    assert_non_null(strstr(text, "(default: 64K)"));
    assert_non_null(strstr(text, "(default: stderr)"));
    assert_non_null(strstr(text, "-c, --config FILE"));
    /* Wrapped for a terminal. */
    for (const char *line = text; *line;) {
        size_t n = strcspn(line, "\n");
        assert_in_range(n, 0, 80);
        line += n + (line[n] == '\n');
    }
    free(text);
    (void)f;
}

static void cli_rejects_unknown_flag_with_message(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(TEST_CLI(f, "--zzyzx"), CLI_FAIL);
    assert_string_equal(f->err, "unknown option '--zzyzx'; see corral --help");
    assert_int_equal(TEST_CLI(f, "--zzyzx=3"), CLI_FAIL);
    assert_string_equal(f->err, "unknown option '--zzyzx'; see corral --help");
    assert_int_equal(TEST_CLI(f, "--procesess", "3"), CLI_FAIL);
    assert_string_equal(f->err,
                        "unknown option '--procesess' (did you mean '--processes'?); see corral "
                        "--help");
    assert_int_equal(TEST_CLI(f, "-x"), CLI_FAIL);
    assert_string_equal(f->err, "unknown option '-x'; see corral --help");
}

static void cli_rejects_ambiguous_prefix(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(TEST_CLI(f, "--max", "3"), CLI_FAIL);
    assert_string_equal(f->err, "ambiguous option '--max' (--max-processes, --max-spare, "
                                "--max-conns, --max-head, --max-params, --max-field, --max-body, "
                                "--max-requests, --max-requests-jitter, --max-rss); see corral "
                                "--help");
}

static void cli_rejects_missing_argument(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(TEST_CLI(f, "--processes"), CLI_FAIL);
    assert_string_equal(f->err, "--processes: expected an integer from 1 to 4096, got nothing");
    assert_int_equal(TEST_CLI(f, "-c"), CLI_FAIL);
    assert_string_equal(f->err, "--config: expected FILE, got nothing");
}

static void cli_rejects_argument_to_plain_flag(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(TEST_CLI(f, "--test-config=yes"), CLI_FAIL);
    assert_string_equal(f->err, "--test-config: takes no argument, got 'yes'");
}

static void cli_rejects_stray_argument(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(TEST_CLI(f, "--processes", "2", "app.so"), CLI_FAIL);
    assert_string_equal(f->err, "unexpected argument 'app.so'; see corral --help");
}

static void cli_rejects_config_given_twice(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(TEST_CLI(f, "-c", "a.conf", "--config", "b.conf"), CLI_FAIL);
    assert_string_equal(f->err, "--config: given twice ('a.conf' and 'b.conf')");
}

static void cli_reports_config_file_errors(void **state)
{
    struct fixture *f = *state;
    const char *path = test_write(f, "processes = 0;\n");
    assert_int_equal(TEST_CLI(f, "--threads", "2", "-c", (char *)path), CLI_FAIL);
    snprintf(f->want, sizeof(f->want),
             "%s:1: key 'processes': expected an integer from 1 to 4096, got 0", path);
    assert_string_equal(f->err, f->want);
}

static void cli_parses_again_after_a_failure(void **state)
{
    struct fixture *f = *state;
    /* The first call stops in the middle of argv; the second must start
     * over at argv[1] (getopt's state is reset). */
    assert_int_equal(TEST_CLI(f, "--threads", "2", "--processes", "x", "--backlog", "7"), CLI_FAIL);
    struct config other;
    config_defaults(&other);
    char *argv[] = {"corral", "--backlog", "9", NULL};
    assert_int_equal(cli_parse(3, argv, &other, f->err, sizeof(f->err)), CLI_RUN);
    assert_int_equal(other.backlog, 9);
    config_free(&other);
}

/* A reload puts back the running value of every option marked fixed and
 * names each one; the other options take their new value. */
static void config_keep_fixed_puts_back_the_restart_only_options(void **state)
{
    struct fixture *f = *state;
    struct config old;
    config_defaults(&old);
    char *old_argv[] = {"corral", "--listen", "uwsgi:unix:/run/a.sock", "--threads", "2",
                        "--backlog", "64", "--pidfile", "/run/p", NULL};
    assert_int_equal(cli_parse(9, old_argv, &old, f->err, sizeof(f->err)), CLI_RUN);
    char *new_argv[] = {"corral", "--listen", "uwsgi:unix:/run/b.sock", "--threads", "4",
                        "--backlog", "64", "--processes", "3", NULL};
    assert_int_equal(cli_parse(9, new_argv, &f->c, f->err, sizeof(f->err)), CLI_RUN);
    char note[256] = "";
    assert_int_equal(config_keep_fixed(&f->c, &old, note, sizeof(note)), 0);
    assert_string_equal(note, "listen, threads, pidfile");
    assert_int_equal(f->c.listen_count, 1);
    assert_string_equal(f->c.listen[0], "uwsgi:unix:/run/a.sock");
    assert_int_equal(f->c.threads, 2);
    assert_int_equal(f->c.backlog, 64);
    assert_string_equal(f->c.pidfile, "/run/p");
    assert_int_equal(f->c.processes, 3);
    /* max_processes is the running pool's size: 0 asks for no change, and
     * another number is put back. */
    assert_int_equal(f->c.max_processes, config_max_processes(&old));
    f->c.max_processes = 32;
    note[0] = '\0';
    assert_int_equal(config_keep_fixed(&f->c, &old, note, sizeof(note)), 0);
    assert_string_equal(note, "max_processes");
    assert_int_equal(f->c.max_processes, config_max_processes(&old));
    note[0] = '\0';
    assert_int_equal(config_keep_fixed(&f->c, &old, note, sizeof(note)), 0);
    assert_string_equal(note, "");
    config_free(&old);
}

/* On a reload the running listeners on inherited descriptors (socket
 * activation, whose variables are gone by then) carry over unless the
 * configuration names them; the others do not. */
static void config_load_keeps_the_inherited_listeners(void **state)
{
    struct fixture *f = *state;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    char *argv[] = {"corral", "--wsgi", "app", "--allow-root", "--listen", "scgi:fd:4", NULL};
    char *running[] = {"uwsgi:unix:/run/a.sock", "fastcgi:fd:3", "scgi:fd:4"};
    assert_int_equal(config_load(&f->c, 6, argv, running, 3, f->err, sizeof(f->err)),
                     CONFIG_LOAD_RUN);
    assert_int_equal(f->c.listen_count, 2);
    assert_string_equal(f->c.listen[0], "scgi:fd:4");
    assert_string_equal(f->c.listen[1], "fastcgi:fd:3");
    config_free(&f->c);
    char *none[] = {"corral", "--wsgi", "app", "--allow-root", NULL};
    assert_int_equal(config_load(&f->c, 4, none, NULL, 0, f->err, sizeof(f->err)),
                     CONFIG_LOAD_FAIL);
    assert_non_null(strstr(f->err, "no listener"));
}

/* own_gil: refused unless the embedded Python has per-interpreter GILs
 * (configure's HAVE_PYTHON_OWN_GIL: 3.12+), naming the key and the reason;
 * with one, refused next to preload and next to a native handler. */
static void config_own_gil_needs_pep684(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_load(f,
                               "wsgi = \"app:application\";\n"
                               "listen = \"uwsgi:unix:/tmp/corral-own-gil.sock\";\n"
                               "own_gil = true;\n",
                               NULL),
                     0);
    assert_true(f->c.own_gil);
#ifndef HAVE_PYTHON_OWN_GIL
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    assert_true(strncmp(f->err, "own_gil: ", 9) == 0);
#ifdef HAVE_PYTHON
    assert_non_null(strstr(f->err, "need Python 3.12 or later (PEP 684)"));
#endif
#else
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), 0);
    f->c.preload = true;
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    assert_true(strncmp(f->err, "own_gil and preload: ", 21) == 0);
    f->c.preload = false;
    free(f->c.wsgi);
    f->c.wsgi = NULL;
    f->c.handler = strdup("/tmp/app.so");
    assert_non_null(f->c.handler);
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), -1);
    assert_string_equal(f->err, "own_gil applies to WSGI apps (--wsgi, --wsgi-file), not to "
                                "--handler");
#endif
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(options_table_is_consistent),
        TEST(config_keep_fixed_puts_back_the_restart_only_options),
        TEST(config_load_keeps_the_inherited_listeners),
        TEST(config_defaults_sets_documented_defaults),
        TEST(config_loads_every_key),
        TEST(config_accepts_single_listen_string),
        TEST(config_rejects_out_of_range_integer_with_line),
        TEST(config_rejects_unknown_key_with_line),
        TEST(config_rejects_wrong_type_with_line),
        TEST(config_reports_syntax_error_with_line),
        TEST(config_reports_unreadable_file),
        TEST(config_rejects_bad_listen_with_key_prefix),
        TEST(config_rejects_non_string_listen_element),
        TEST(config_keeps_old_values_on_error),
        TEST(config_later_file_overrides_earlier),
        TEST(config_reads_chmod_as_string_or_octal_digits),
        TEST(config_reads_durations_as_integer_or_fraction),
        TEST(config_reads_sizes_as_integer_or_suffixed_string),
        TEST(config_names_included_file_in_errors),
        TEST(config_validate_requires_listener),
        TEST(config_validate_asgi_is_one_app),
        TEST(config_validate_requires_handler),
        TEST(config_loads_control_socket_keys),
        TEST(config_loads_service_keys),
        TEST(cli_reads_service_options),
        TEST(config_max_processes_defaults_to_four_times_at_least_sixteen),
        TEST(config_validate_refuses_max_processes_below_processes),
        TEST(config_validate_takes_wsgi_app_and_its_python_options),
        TEST(config_refuses_env_without_name),
        TEST(config_validate_refuses_two_apps),
        TEST(config_validate_rejects_one_address_twice),
        TEST(example_conf_loads_and_validates),
        TEST(example_conf_commented_settings_are_valid),
        TEST(config_own_gil_needs_pep684),
        TEST(cli_loads_config_file_before_other_flags),
        TEST(cli_listen_replaces_file_list),
        TEST(cli_listen_is_repeatable),
        TEST(cli_rejects_bad_listen),
        TEST(cli_reads_sizes_with_suffix),
        TEST(cli_rejects_size_out_of_range),
        TEST(config_reads_request_deadlines),
        TEST(cli_reads_fractional_seconds),
        TEST(cli_rejects_malformed_seconds),
        TEST(cli_reads_octal_chmod),
        TEST(bool_option_from_flag_and_file),
        TEST(cli_rejects_bad_integer_with_message),
        TEST(cli_reads_control_socket_options),
        TEST(cli_sets_fastcgi_limits_from_pool),
        TEST(cli_test_config_returns_check),
        TEST(cli_help_prints_usage_and_returns_done),
        TEST(cli_version_prints_version),
        TEST(cli_usage_shows_every_option_and_default),
        TEST(cli_rejects_unknown_flag_with_message),
        TEST(cli_rejects_ambiguous_prefix),
        TEST(config_loads_pool_keys),
        TEST(config_rejects_unknown_pool_mode),
        TEST(config_validate_checks_dynamic_pool_numbers),
        TEST(config_validate_wants_status_path_absolute),
        TEST(config_reads_health_path_and_stop_delay),
        TEST(config_validate_checks_health_path),
        TEST(cli_rejects_missing_argument),
        TEST(cli_rejects_argument_to_plain_flag),
        TEST(cli_rejects_stray_argument),
        TEST(cli_rejects_config_given_twice),
        TEST(cli_reports_config_file_errors),
        TEST(cli_parses_again_after_a_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
