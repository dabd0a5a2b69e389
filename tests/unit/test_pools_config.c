/*
 * test_pools_config.c — the pools list of a config file (config.c): the
 * top master's view (the names), one pool picked with --pool-name (global
 * keys left out, the group's keys over the inherited ones, the control
 * socket PATH.NAME), the errors that name file, line and key, the
 * global-only rows of the option table, and config_load's outcome.
 *
 * Config files are written to a mkdtemp directory the fixture removes;
 * conf/pools.conf is found through $top_srcdir (set by make check).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_load.h"
#include "config/options.h"

struct fixture {
    struct config c;
    char err[1024];
    char dir[64];
    char path[128];
};

static int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/corral-pools-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/p.conf", f->dir);
    config_defaults(&f->c);
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    config_free(&f->c);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_file(const struct fixture *f, const char *text)
{
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static const char *example(char *buf, size_t len)
{
    const char *top = getenv("top_srcdir");
    snprintf(buf, len, "%s/conf/pools.conf", top && top[0] ? top : ".");
    return buf;
}

static const char two_pools[] =
    "control = \"/run/c.sock\";\n"
    "pidfile = \"/run/c.pid\";\n"
    "processes = 3;\n"
    "error_log = \"/var/log/e.log\";\n"
    "pools = (\n"
    "  { name = \"www\"; wsgi = \"app\"; listen = \"uwsgi:unix:/run/www.sock\"; },\n"
    "  { name = \"api\"; handler = \"/x/api.so\"; listen = \"http:tcp:127.0.0.1:81\";\n"
    "    processes = 5; error_log = \"/var/log/api.log\"; }\n"
    ");\n";

/* Without --pool-name: the top-level keys as they are, and the names. */
static void top_master_reads_the_names(void **state)
{
    struct fixture *f = *state;
    write_file(f, two_pools);
    assert_int_equal(config_load_file(&f->c, f->path, f->err, sizeof(f->err)), 0);
    assert_int_equal(f->c.pools_count, 2);
    assert_string_equal(f->c.pools[0], "www");
    assert_string_equal(f->c.pools[1], "api");
    assert_string_equal(f->c.pidfile, "/run/c.pid");
    assert_string_equal(f->c.control, "/run/c.sock");
    assert_int_equal(f->c.listen_count, 0);
}

/* --pool-name api: inherited keys, the group's over them, no pidfile, the
 * control socket PATH.NAME. */
static void a_picked_pool_inherits_and_overrides(void **state)
{
    struct fixture *f = *state;
    write_file(f, two_pools);
    f->c.pool_name = strdup("api");
    assert_int_equal(config_load_file(&f->c, f->path, f->err, sizeof(f->err)), 0);
    assert_int_equal(f->c.pools_count, 0);
    assert_string_equal(f->c.pool_name, "api");
    assert_string_equal(config_pool_name(&f->c), "api");
    assert_null(f->c.pidfile);
    assert_string_equal(f->c.control, "/run/c.sock.api");
    assert_int_equal(f->c.processes, 5);
    assert_string_equal(f->c.error_log, "/var/log/api.log");
    assert_string_equal(f->c.handler, "/x/api.so");
    assert_null(f->c.wsgi);
    assert_int_equal(f->c.listen_count, 1);
    assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), 0);

    config_free(&f->c);
    config_defaults(&f->c);
    f->c.pool_name = strdup("www");
    assert_int_equal(config_load_file(&f->c, f->path, f->err, sizeof(f->err)), 0);
    assert_int_equal(f->c.processes, 3);
    assert_string_equal(f->c.error_log, "/var/log/e.log");
    assert_string_equal(f->c.wsgi, "app");
}

static void a_missing_pool_is_an_error(void **state)
{
    struct fixture *f = *state;
    write_file(f, two_pools);
    f->c.pool_name = strdup("nope");
    assert_int_equal(config_load_file(&f->c, f->path, f->err, sizeof(f->err)), -1);
    assert_non_null(strstr(f->err, "p.conf: the pools list has no pool named 'nope'"));
}

/* The bad files: the message names file, line and key. */
static void bad_pools_lists_name_file_line_and_key(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"pools = (\n  { handler = \"/a.so\"; }\n);\n",
         "p.conf:2: key 'pools': pool 1 has no name"},
        {"pools = (\n  { name = \"a\"; },\n  { name = \"a\"; }\n);\n",
         "p.conf:3: key 'name': two pools are named 'a' (the other at line 2)"},
        {"pools = (\n  { name = \"a\";\n    pidfile = \"/x.pid\"; }\n);\n",
         "p.conf:3: key 'pidfile' is global: give it outside the pools list"},
        {"pools = (\n  { name = \"a\";\n    control = \"/x.sock\"; }\n);\n",
         "p.conf:3: key 'control' is global: give it outside the pools list"},
        {"pools = (\n  { name = \"a b\"; }\n);\n", "p.conf:2: key 'name': expected a name"},
        {"pools = ();\n", "p.conf:1: key 'pools': expected a list of groups"},
        {"listen = \"http:tcp:127.0.0.1:80\";\npools = ( { name = \"a\"; } );\n",
         "p.conf:1: key 'listen': with a pools list, give each pool its own listen"},
        {"pools = [ \"a\" ];\n", "p.conf:1: key 'pools': expected a list of groups"},
        {"pools = (\n  { name = \"a\";\n    procesess = 2; }\n);\n",
         "p.conf:3: unknown key 'procesess' (did you mean 'processes'?)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        config_free(&f->c);
        config_defaults(&f->c);
        write_file(f, cases[i].text);
        /* The unknown key shows once a pool is picked. */
        if (strstr(cases[i].text, "procesess"))
            f->c.pool_name = strdup("a");
        assert_int_equal(config_load_file(&f->c, f->path, f->err, sizeof(f->err)), -1);
        if (!strstr(f->err, cases[i].want))
            fail_msg("case %zu: got '%s', want '%s'", i, f->err, cases[i].want);
    }
}

/* The global-only keys are decided in the table, one place. */
static void global_keys_are_rows_of_the_table(void **state)
{
    (void)state;
    const char *global[] = {"pidfile", "control", "pool_name"};
    size_t n = 0;
    for (size_t i = 0; i < options_count; i++)
        n += options_table[i].global;
    assert_int_equal(n, sizeof(global) / sizeof(global[0]));
    for (size_t i = 0; i < sizeof(global) / sizeof(global[0]); i++) {
        const struct option_spec *o = options_by_key(global[i]);
        assert_non_null(o);
        assert_true(o->global);
        assert_true(o->fixed); /* a pool master cannot take one over by a reload */
    }
    char err[256];
    assert_int_equal(options_check_pool_name("www-2.api_x", err, sizeof(err)), 0);
    assert_int_equal(options_check_pool_name(".hidden", err, sizeof(err)), -1);
    assert_int_equal(options_check_pool_name("a/b", err, sizeof(err)), -1);
}

/* config_load: a pools file is the top master's (CONFIG_LOAD_POOLS); a flag
 * beside it is refused; --pool-name picks a pool that then validates. */
static void config_load_tells_the_top_master(void **state)
{
    struct fixture *f = *state;
    write_file(f, two_pools);
    config_free(&f->c);
    char *top[] = {"corral", "-c", f->path, NULL};
    assert_int_equal(config_load(&f->c, 3, top, NULL, 0, f->err, sizeof(f->err)),
                     CONFIG_LOAD_POOLS);
    config_free(&f->c);
    char *check[] = {"corral", "-t", "-c", f->path, NULL};
    assert_int_equal(config_load(&f->c, 4, check, NULL, 0, f->err, sizeof(f->err)),
                     CONFIG_LOAD_CHECK);
    assert_int_equal(f->c.pools_count, 2);
    config_free(&f->c);
    char *flag[] = {"corral", "-c", f->path, "--threads", "2", NULL};
    assert_int_equal(config_load(&f->c, 5, flag, NULL, 0, f->err, sizeof(f->err)),
                     CONFIG_LOAD_FAIL);
    assert_non_null(strstr(f->err, "--threads: "));
    assert_non_null(strstr(f->err, "has a pools list"));
    config_free(&f->c);
    char *pick[] = {"corral", "-c", f->path, "--pool-name", "www", "--allow-root", NULL};
    /* --allow-root: the unit tests may run as root; a picked pool takes flags. */
    assert_int_equal(config_load(&f->c, 6, pick, NULL, 0, f->err, sizeof(f->err)), CONFIG_LOAD_RUN);
    assert_string_equal(f->c.pool_name, "www");
    assert_string_equal(f->c.control, "/run/c.sock.www");
}

/* conf/pools.conf: the example loads, and each of its pools validates. */
static void example_pools_conf_loads(void **state)
{
    struct fixture *f = *state;
    char path[1024];
    example(path, sizeof(path));
    assert_int_equal(config_load_file(&f->c, path, f->err, sizeof(f->err)), 0);
    assert_true(f->c.pools_count >= 2);
    size_t n = f->c.pools_count;
    char *names[8];
    for (size_t i = 0; i < n && i < 8; i++)
        names[i] = strdup(f->c.pools[i]);
    for (size_t i = 0; i < n && i < 8; i++) {
        config_free(&f->c);
        config_defaults(&f->c);
        f->c.pool_name = names[i];
        if (config_load_file(&f->c, path, f->err, sizeof(f->err)) < 0 ||
            config_validate(&f->c, f->err, sizeof(f->err)) < 0)
            fail_msg("pool %zu: %s", i, f->err);
        assert_null(f->c.pidfile);
    }
}

/* No pools list, no --pool-name: the default name. */
static void the_default_pool_name_is_main(void **state)
{
    struct fixture *f = *state;
    assert_null(f->c.pool_name);
    assert_string_equal(config_pool_name(&f->c), "main");
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(top_master_reads_the_names),        TEST(a_picked_pool_inherits_and_overrides),
        TEST(a_missing_pool_is_an_error),        TEST(bad_pools_lists_name_file_line_and_key),
        TEST(global_keys_are_rows_of_the_table), TEST(config_load_tells_the_top_master),
        TEST(example_pools_conf_loads),          TEST(the_default_pool_name_is_main),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
