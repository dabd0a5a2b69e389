/*
 * fuzz_allow.c — libFuzzer target for the --allow-from parser (allow_parse
 * in src/allow.c): an IPv4/IPv6 address or CIDR prefix from the command
 * line or the config file.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *     src/allow.c tests/fuzz/fuzz_allow.c -o fuzz_allow
 *   ./fuzz_allow tests/fuzz/corpus/allow
 *
 * allow_parse reads a C string: the input is copied into a buffer of
 * exactly its length + 1 (the NUL), so ASan sees any read past it.
 * Properties of an accepted network: the prefix is at most 128 and the host
 * bits are zero; it matches its own network address and its last address
 * (as an IPv6 peer, and as an IPv4 peer when it is an IPv4 network); with a
 * prefix, the address one bit outside does not match; a truncated sockaddr
 * never matches; allow_format's text parses back to the same network.
 * allow_check agrees with allow_parse, and a refusal has a message.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os/allow.h"

#include "fuzz_check.h"

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int bit(const uint8_t a[16], unsigned i)
{
    return a[i / 8] >> (7 - i % 8) & 1;
}

/* Whether ADDR matches the list holding NET only, asked as an IPv6 peer
 * and, for a v4-mapped address, as an IPv4 peer too (both must agree). */
static int matches(const struct allow_net *net, const uint8_t addr[16])
{
    struct allow_net copy = *net;
    struct allow_list l = {.nets = &copy, .count = 1};
    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    memcpy(&s6.sin6_addr, addr, 16);
    int m6 = allow_match(&l, (const struct sockaddr *)&s6, sizeof(s6));
    CHECK(!allow_match(&l, (const struct sockaddr *)&s6, sizeof(s6) - 1));
    if (memcmp(addr, v4_mapped, 12) == 0) {
        struct sockaddr_in s4;
        memset(&s4, 0, sizeof(s4));
        s4.sin_family = AF_INET;
        memcpy(&s4.sin_addr, addr + 12, 4);
        CHECK(allow_match(&l, (const struct sockaddr *)&s4, sizeof(s4)) == m6);
        CHECK(!allow_match(&l, (const struct sockaddr *)&s4, sizeof(s4) - 1));
    }
    return m6;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    CHECK(text);
    memcpy(text, data, size);
    text[size] = '\0';

    struct allow_net net;
    char err[512], err2[512];
    err[0] = err2[0] = '\0';
    int r = allow_parse(text, &net, err, sizeof(err));
    CHECK(allow_check(text, err2, sizeof(err2)) == r);
    if (r < 0) {
        CHECK(r == -1 && err[0] && strcmp(err, err2) == 0);
        free(text);
        return 0;
    }
    CHECK(r == 0 && net.prefix <= 128);
    for (unsigned i = net.prefix; i < 128; i++)
        CHECK(!bit(net.addr, i));
    if (memcmp(net.addr, v4_mapped, 12) == 0 && !strchr(text, ':'))
        CHECK(net.prefix >= 96); /* an IPv4 entry */

    CHECK(matches(&net, net.addr));
    uint8_t last[16];
    memcpy(last, net.addr, 16);
    for (unsigned i = net.prefix; i < 128; i++)
        last[i / 8] |= (uint8_t)(0x80u >> (i % 8));
    CHECK(matches(&net, last));
    if (net.prefix > 0) {
        uint8_t outside[16];
        memcpy(outside, net.addr, 16);
        unsigned i = net.prefix - 1;
        outside[i / 8] ^= (uint8_t)(0x80u >> (i % 8));
        CHECK(!matches(&net, outside));
    }

    struct allow_list l = {.nets = &net, .count = 1};
    char shown[128];
    allow_format(&l, shown, sizeof(shown));
    struct allow_net back;
    if (allow_parse(shown, &back, err, sizeof(err)) != 0)
        fprintf(stderr, "\"%s\" shown as \"%s\": %s\n", text, shown, err);
    CHECK(allow_parse(shown, &back, err, sizeof(err)) == 0);
    CHECK(memcmp(&net, &back, sizeof(net)) == 0);
    free(text);
    return 0;
}
