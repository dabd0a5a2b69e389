/*
 * fuzz_fastcgi_client.c — libFuzzer target for the client-side FastCGI
 * decoder (protocols/fastcgi_client.c): what a FastCGI program answers.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. \
 *     protocols/fastcgi_client.c tests/fuzz/fuzz_fastcgi_client.c -o fuzz_fastcgi_client
 *
 * The first input byte sets the size of the pieces the rest is fed in.
 * Properties: each call consumes at most what it was given; a piece points
 * inside the input and is not empty; once END or ERROR came, nothing more is
 * consumed (END) or decoding stops (ERROR); the STDOUT bytes decoded are the
 * same whatever the piece size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/fastcgi_client.h"

#include "fuzz_check.h"

/* Decode DATA in pieces of STEP; returns the STDOUT bytes' count and a
 * simple sum of them in *SUM. */
static size_t decode(const uint8_t *data, size_t size, size_t step, uint64_t *sum)
{
    struct fcgi_client_dec d;
    fcgi_client_dec_init(&d, 1);
    size_t pos = 0, out = 0;
    *sum = 0;
    bool ended = false;
    while (pos < size) {
        size_t avail = size - pos < step ? size - pos : step;
        size_t used;
        struct fcgi_client_piece p;
        enum fcgi_client_event ev = fcgi_client_decode(&d, data + pos, avail, &used, &p);
        CHECK(used <= avail);
        if (ended)
            CHECK(used == 0);
        if (ev == FCGI_CLIENT_OUT || ev == FCGI_CLIENT_ERR) {
            CHECK(p.len > 0 && p.data >= data + pos && p.data + p.len <= data + pos + used);
            if (ev == FCGI_CLIENT_OUT) {
                out += p.len;
                for (size_t i = 0; i < p.len; i++)
                    *sum = *sum * 31 + p.data[i];
            }
        }
        pos += used;
        if (ev == FCGI_CLIENT_ERROR)
            break;
        if (ev == FCGI_CLIENT_END) {
            ended = true;
            break;
        }
        if (ev == FCGI_CLIENT_NEED_MORE) {
            CHECK(used == avail);
        }
    }
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    data++;
    size--;
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    uint64_t s1, s2;
    size_t whole = decode(copy, size, size ? size : 1, &s1);
    size_t pieces = decode(copy, size, step, &s2);
    /* Piece-wise decoding may stop at an ERROR that the whole decoding
     * reaches too: the output before it is the same. */
    CHECK(whole == pieces && s1 == s2);
    free(copy);
    return 0;
}
