/*
 * test_program_keep.c — the connections a worker keeps to its FastCGI
 * programs (src/apps/program/program_keep.c): reused only for the program
 * they were made to (the slot's gen), dropped by the keeper thread as soon
 * as the table forbids keeping, not kept for a php-cgi at its
 * PHP_FCGI_MAX_REQUESTS, dropped at the worker's stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

#include <cmocka.h>

#include "apps/program/program_keep.h"
#include "core/clock.h"

static struct program_table *make(unsigned n)
{
    char err[256];
    struct program_table *t = program_table_create(n, err, sizeof(err));
    assert_non_null(t);
    return t;
}

/* A connected socket (its peer stays open: the test closes nothing else). */
static int new_fd(void)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    return sv[0];
}

static bool is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static void keep_reuses_only_for_the_same_program(void **state)
{
    (void)state;
    unsetenv("PHP_FCGI_MAX_REQUESTS");
    struct program_table *t = make(2);
    program_table_set_keep(t, true);
    /* Static: the keeper thread outlives the test and reads K. */
    static struct program_keep k;
    assert_int_equal(program_keep_init(&k, t), 0);
    assert_true(program_keep_wanted(&k, 1));
    assert_int_equal(program_keep_take(&k, 1), -1);
    int fd = new_fd();
    uint32_t gen = atomic_load(&t->slots[1].gen);
    program_keep_put(&k, 1, fd, gen);
    assert_int_equal(program_keep_take(&k, 0), -1); /* another program's */
    assert_int_equal(program_keep_take(&k, 1), fd);
    assert_int_equal(program_keep_take(&k, 1), -1); /* taken: its thread has it */
    program_keep_put(&k, 1, fd, gen);
    /* The master started a new program in the slot: not reused, closed. */
    atomic_fetch_add(&t->slots[1].gen, 1);
    assert_int_equal(program_keep_take(&k, 1), -1);
    assert_false(is_open(fd));
    program_keep_stop(&k);
}

static void keep_forbidden_drops_the_idle_connections(void **state)
{
    (void)state;
    struct program_table *t = make(2);
    program_table_set_keep(t, true);
    /* Static: the keeper thread outlives the test and reads K. */
    static struct program_keep k;
    assert_int_equal(program_keep_init(&k, t), 0);
    int a = new_fd(), b = new_fd();
    program_keep_put(&k, 0, a, 0);
    program_keep_put(&k, 1, b, 0);
    assert_true(is_open(a) && is_open(b));
    /* The master forbids keeping (a second worker is about to start): the
     * keeper thread closes both without any request coming. */
    program_table_set_keep(t, false);
    uint64_t until = clock_now_ms() + 5000;
    while ((is_open(a) || is_open(b)) && clock_now_ms() < until)
        usleep(1000);
    assert_false(is_open(a));
    assert_false(is_open(b));
    assert_false(program_keep_wanted(&k, 0));
    /* A connection that comes back meanwhile is closed, not kept. */
    int c = new_fd();
    program_keep_put(&k, 0, c, 0);
    assert_false(is_open(c));
    assert_int_equal(program_keep_take(&k, 0), -1);
    /* Allowed again: kept again. */
    program_table_set_keep(t, true);
    int d = new_fd();
    program_keep_put(&k, 0, d, 0);
    assert_int_equal(program_keep_take(&k, 0), d);
    close(d);
    program_keep_stop(&k);
}

static void keep_not_for_a_php_cgi_at_its_last_request(void **state)
{
    (void)state;
    setenv("PHP_FCGI_MAX_REQUESTS", "3", 1);
    struct program_table *t = make(1);
    program_table_set_keep(t, true);
    /* Static: the keeper thread outlives the test and reads K. */
    static struct program_keep k;
    assert_int_equal(program_keep_init(&k, t), 0);
    atomic_store(&t->slots[0].requests, 1);
    assert_true(program_keep_wanted(&k, 0));
    int fd = new_fd();
    program_keep_put(&k, 0, fd, 0);
    atomic_store(&t->slots[0].requests, 2);
    /* The third request is its last: php-cgi exits after it. */
    assert_false(program_keep_wanted(&k, 0));
    atomic_store(&t->slots[0].requests, 3);
    assert_int_equal(program_keep_take(&k, 0), -1);
    assert_false(is_open(fd));
    unsetenv("PHP_FCGI_MAX_REQUESTS");
    program_keep_stop(&k);
}

static void keep_stop_drops_and_keeps_nothing(void **state)
{
    (void)state;
    struct program_table *t = make(1);
    program_table_set_keep(t, true);
    /* Static: the keeper thread outlives the test and reads K. */
    static struct program_keep k;
    assert_int_equal(program_keep_init(&k, t), 0);
    int fd = new_fd();
    program_keep_put(&k, 0, fd, 0);
    program_keep_stop(&k);
    assert_false(is_open(fd));
    assert_false(program_keep_wanted(&k, 0));
    int again = new_fd();
    program_keep_put(&k, 0, again, 0);
    assert_false(is_open(again));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keep_reuses_only_for_the_same_program),
        cmocka_unit_test(keep_forbidden_drops_the_idle_connections),
        cmocka_unit_test(keep_not_for_a_php_cgi_at_its_last_request),
        cmocka_unit_test(keep_stop_drops_and_keeps_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
