/*
 * test_allow.c — --allow-from: parsing addresses and CIDRs, matching IPv4,
 * IPv6 and v4-mapped peers, the loopback default, the log rate limit.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cmocka.h>

#include "os/allow.h"

static struct sockaddr_storage peer4(const char *ip, socklen_t *len)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    in->sin_port = htons(5555);
    assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    *len = sizeof(*in);
    return ss;
}

static struct sockaddr_storage peer6(const char *ip, socklen_t *len)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    in6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
    *len = sizeof(*in6);
    return ss;
}

static bool allowed(const struct allow_list *l, const char *ip)
{
    socklen_t len;
    struct sockaddr_storage ss = strchr(ip, ':') ? peer6(ip, &len) : peer4(ip, &len);
    return allow_match(l, (struct sockaddr *)&ss, len);
}

static void allow_default_is_loopback_only(void **state)
{
    (void)state;
    struct allow_list l;
    char err[256], text[256];
    assert_int_equal(allow_list_init(&l, NULL, 0, err, sizeof(err)), 0);
    assert_true(allowed(&l, "127.0.0.1"));
    assert_true(allowed(&l, "127.255.3.4"));
    assert_true(allowed(&l, "::1"));
    assert_true(allowed(&l, "::ffff:127.0.0.1")); /* v4-mapped on a dual-stack socket */
    assert_false(allowed(&l, "128.0.0.1"));
    assert_false(allowed(&l, "10.0.0.1"));
    assert_false(allowed(&l, "::2"));
    assert_false(allowed(&l, "::ffff:10.0.0.1"));
    allow_format(&l, text, sizeof(text));
    assert_string_equal(text, "127.0.0.0/8, ::1/128");
    allow_list_free(&l);
}

static void allow_matches_cidrs_of_both_families(void **state)
{
    (void)state;
    char *specs[] = {"10.0.0.0/8", "192.168.1.7", "fd00::/8", "2001:db8::1/128", "172.16.0.0/12"};
    struct allow_list l;
    char err[256];
    assert_int_equal(allow_list_init(&l, specs, 5, err, sizeof(err)), 0);
    assert_true(allowed(&l, "10.1.2.3"));
    assert_true(allowed(&l, "::ffff:10.200.0.1"));
    assert_true(allowed(&l, "192.168.1.7"));
    assert_false(allowed(&l, "192.168.1.8"));
    assert_true(allowed(&l, "172.31.255.255"));
    assert_false(allowed(&l, "172.32.0.0"));
    assert_true(allowed(&l, "fdab::1"));
    assert_false(allowed(&l, "fe80::1"));
    assert_true(allowed(&l, "2001:db8::1"));
    assert_false(allowed(&l, "2001:db8::2"));
    assert_false(allowed(&l, "127.0.0.1")); /* a list replaces the loopback default */
    allow_list_free(&l);
}

static void allow_zero_prefix_allows_everyone_of_its_family(void **state)
{
    (void)state;
    char *specs[] = {"0.0.0.0/0"};
    struct allow_list l;
    char err[256];
    assert_int_equal(allow_list_init(&l, specs, 1, err, sizeof(err)), 0);
    assert_true(allowed(&l, "8.8.8.8"));
    assert_true(allowed(&l, "::ffff:8.8.8.8"));
    assert_false(allowed(&l, "2001:db8::1"));
    allow_list_free(&l);
}

static void allow_lets_unix_peers_through(void **state)
{
    (void)state;
    char *specs[] = {"10.0.0.0/8"};
    struct allow_list l;
    char err[256];
    assert_int_equal(allow_list_init(&l, specs, 1, err, sizeof(err)), 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    assert_true(allow_match(&l, (struct sockaddr *)&sun, sizeof(sa_family_t)));
    /* A truncated inet address is never let through. */
    socklen_t len;
    struct sockaddr_storage ss = peer4("10.0.0.1", &len);
    assert_false(allow_match(&l, (struct sockaddr *)&ss, 4));
    allow_list_free(&l);
}

static void allow_rejects_bad_entries_with_reasons(void **state)
{
    (void)state;
    static const struct {
        const char *text, *expect;
    } bad[] = {
        {"", "expected an address or CIDR"},
        {"localhost", "host names are not resolved"},
        {"10.0.0.0/33", "the prefix must be 0 to 32"},
        {"::/129", "the prefix must be 0 to 128"},
        {"10.0.0.0/", "the prefix must be"},
        {"10.0.0.0/-1", "the prefix must be"},
        {"10.0.0.0/8x", "the prefix must be"},
        {"10.0.0.1/8", "address bits are set past the prefix"},
        {"fd00::1/8", "address bits are set past the prefix"},
        {"10.0.0", "expected an address or CIDR"},
        {"1.2.3.4.5", "got '1.2.3.4.5'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        struct allow_net n;
        assert_int_equal(allow_parse(bad[i].text, &n, err, sizeof(err)), -1);
        if (!strstr(err, bad[i].expect))
            fail_msg("'%s': message '%s' lacks '%s'", bad[i].text, err, bad[i].expect);
    }
    char *specs[] = {"10.0.0.0/8", "nope"};
    struct allow_list l;
    char err[256];
    assert_int_equal(allow_list_init(&l, specs, 2, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "got 'nope'"));
    assert_int_equal(l.count, 0);
}

static void allow_ratelimit_logs_once_a_second_with_a_count(void **state)
{
    (void)state;
    struct allow_ratelimit r = {0};
    unsigned long suppressed = 99;
    assert_true(allow_ratelimit_due(&r, 100, &suppressed));
    assert_int_equal(suppressed, 0);
    for (int i = 0; i < 5; i++)
        assert_false(allow_ratelimit_due(&r, 100, &suppressed));
    assert_true(allow_ratelimit_due(&r, 101, &suppressed));
    assert_int_equal(suppressed, 5);
    assert_true(allow_ratelimit_due(&r, 105, &suppressed));
    assert_int_equal(suppressed, 0);
    /* Second 0 (a clock just started) works too. */
    struct allow_ratelimit z = {0};
    assert_true(allow_ratelimit_due(&z, 0, &suppressed));
    assert_false(allow_ratelimit_due(&z, 0, &suppressed));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allow_default_is_loopback_only),
        cmocka_unit_test(allow_matches_cidrs_of_both_families),
        cmocka_unit_test(allow_zero_prefix_allows_everyone_of_its_family),
        cmocka_unit_test(allow_lets_unix_peers_through),
        cmocka_unit_test(allow_rejects_bad_entries_with_reasons),
        cmocka_unit_test(allow_ratelimit_logs_once_a_second_with_a_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
