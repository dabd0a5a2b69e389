/*
 * test_pid_cache.c — getpid() from memory (src/core/pid_cache.c): the
 * kernel's answer before and after it is enabled, and in children made by
 * fork() and by a raw fork system call (no fork handlers run: the page the
 * kernel wipes is what keeps the child right).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/pid_cache.h"

static pid_t kernel_pid(void)
{
    return (pid_t)syscall(SYS_getpid);
}

/* In a child: 0 when its getpid() is its own pid, not the parent's PARENT. */
static int child_check(pid_t parent)
{
    pid_t p = getpid();
    return p == kernel_pid() && p != parent ? 0 : 1;
}

static void wait_ok(pid_t child)
{
    int status = -1;
    assert_true(child > 0);
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void pid_cache_answers_the_kernels_pid(void **state)
{
    (void)state;
    assert_int_equal(getpid(), kernel_pid());
    assert_int_equal(pid_cache_enable(), 0);
    assert_int_equal(pid_cache_enable(), 0); /* twice: the same page */
    assert_int_equal(getpid(), kernel_pid());
    assert_int_equal(getpid(), kernel_pid());
}

static void pid_cache_child_of_fork_has_its_own_pid(void **state)
{
    (void)state;
    assert_int_equal(pid_cache_enable(), 0);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0)
        _exit(child_check(parent));
    wait_ok(child);
    assert_int_equal(getpid(), parent);
}

static void pid_cache_child_of_raw_fork_has_its_own_pid(void **state)
{
    (void)state;
    assert_int_equal(pid_cache_enable(), 0);
    pid_t parent = getpid();
    pid_t child = (pid_t)syscall(SYS_fork);
    if (child == 0)
        syscall(SYS_exit, child_check(parent));
    wait_ok(child);
    assert_int_equal(getpid(), parent);
}

/* A grandchild: the child's own answer was kept in its page, and its
 * child asks again. */
static void pid_cache_grandchild_has_its_own_pid(void **state)
{
    (void)state;
    assert_int_equal(pid_cache_enable(), 0);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        pid_t me = getpid();
        if (child_check(parent) != 0)
            _exit(1);
        pid_t grandchild = fork();
        if (grandchild == 0)
            _exit(child_check(me));
        int status = -1;
        waitpid(grandchild, &status, 0);
        _exit(WIFEXITED(status) && WEXITSTATUS(status) == 0 && getpid() == me ? 0 : 1);
    }
    wait_ok(child);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pid_cache_answers_the_kernels_pid),
        cmocka_unit_test(pid_cache_child_of_fork_has_its_own_pid),
        cmocka_unit_test(pid_cache_child_of_raw_fork_has_its_own_pid),
        cmocka_unit_test(pid_cache_grandchild_has_its_own_pid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
