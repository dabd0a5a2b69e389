/*
 * test_program_table.c — the shared table of FastCGI programs
 * (src/apps/program/program_table.c): claims by compare-and-swap, the
 * master's claim until a program runs, the wait with a deadline, recycling
 * by count, and a waiter in another process woken by a release.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "apps/program/program_table.h"
#include "core/clock.h"

static struct program_table *make(unsigned n)
{
    char err[256];
    struct program_table *t = program_table_create(n, err, sizeof(err));
    assert_non_null(t);
    return t;
}

static void table_slots_are_the_masters_until_their_program_runs(void **state)
{
    (void)state;
    struct program_table *t = make(2);
    /* Nothing runs yet: a claim waits for its deadline and fails. */
    assert_int_equal(program_claim(t, clock_now_ms(), 0), -1);
    program_release_master(t, 1);
    assert_int_equal(program_claim(t, clock_now_ms(), 0), 1);
    /* Both taken now (0 is still the master's). */
    assert_int_equal(program_claim(t, clock_now_ms(), 0), -1);
    program_release_master(t, 0);
    assert_int_equal(program_claim(t, clock_now_ms(), 0), 0);
    /* A request's claim is not the master's to release. */
    program_release_master(t, 0);
    assert_int_equal(atomic_load(&t->slots[0].busy), PROGRAM_CLAIM_REQUEST);
    assert_int_equal(atomic_load(&t->slots[0].owner), (int32_t)getpid());
    program_release(t, 0);
    assert_int_equal(atomic_load(&t->slots[0].busy), PROGRAM_IDLE);
    assert_true(program_claim_master(t, 0));
    assert_false(program_claim_master(t, 0));
    program_table_destroy(t);
}

static void table_claims_pass_over_a_program_due_for_recycling(void **state)
{
    (void)state;
    struct program_table *t = make(1);
    program_release_master(t, 0);
    atomic_store(&t->slots[0].requests, 5);
    assert_int_equal(program_claim(t, clock_now_ms(), 5), -1);
    assert_int_equal(program_claim(t, clock_now_ms(), 6), 0);
    program_release(t, 0);
    assert_int_equal(program_claim(t, clock_now_ms(), 0), 0);
    program_table_destroy(t);
}

static void table_release_wakes_a_waiter_in_another_process(void **state)
{
    (void)state;
    struct program_table *t = make(1);
    program_release_master(t, 0);
    assert_int_equal(program_claim(t, clock_now_ms(), 0), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Waits (up to 10 s) until the parent releases the slot. */
        int i = program_claim(t, clock_now_ms() + 10000, 0);
        _exit(i == 0 ? 0 : 1);
    }
    usleep(100000);
    program_release(t, 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(atomic_load(&t->slots[0].busy), PROGRAM_CLAIM_REQUEST);
    program_table_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_slots_are_the_masters_until_their_program_runs),
        cmocka_unit_test(table_claims_pass_over_a_program_due_for_recycling),
        cmocka_unit_test(table_release_wakes_a_waiter_in_another_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
