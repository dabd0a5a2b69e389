/*
 * test_fastcgi_client.c — the client side of FastCGI
 * (protocols/fastcgi_client.c): the records corral sends to a FastCGI
 * program, and the decoder of its answer, fed whole and one byte at a time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "protocols/fastcgi_client.h"

static void client_begin_is_a_responder_record(void **state)
{
    (void)state;
    uint8_t b[16];
    fcgi_client_begin(b, 1, false);
    const uint8_t want[16] = {1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(b, want, 16);
    fcgi_client_begin(b, 0x1234, true);
    assert_int_equal(b[2], 0x12);
    assert_int_equal(b[3], 0x34);
    assert_int_equal(b[10], 1); /* KEEP_CONN */
    uint8_t a[8];
    fcgi_client_abort(a, 7);
    const uint8_t abort_want[8] = {1, 2, 0, 7, 0, 0, 0, 0};
    assert_memory_equal(a, abort_want, 8);
}

static void client_pairs_use_short_and_long_lengths(void **state)
{
    (void)state;
    uint8_t out[300];
    size_t n = fcgi_client_pair(out, sizeof(out), "A", 1, "xy", 2);
    assert_int_equal(n, 5);
    const uint8_t want[5] = {1, 2, 'A', 'x', 'y'};
    assert_memory_equal(out, want, 5);
    char big[200];
    memset(big, 'v', sizeof(big));
    n = fcgi_client_pair(out, sizeof(out), "N", 1, big, sizeof(big));
    assert_int_equal(n, 1 + 4 + 1 + 200);
    assert_int_equal(out[0], 1);
    const uint8_t len4[4] = {0x80, 0, 0, 200};
    assert_memory_equal(out + 1, len4, 4);
    assert_int_equal(fcgi_client_pair_size(1, 200), n);
    /* It does not fit: nothing is written. */
    assert_int_equal(fcgi_client_pair(out, 10, "N", 1, big, sizeof(big)), 0);
}

/* An answer: STDOUT "Status: 200\r\n\r\nhi" in two records (one padded),
 * STDERR "oops", an empty STDOUT, END_REQUEST with app status 3. */
static size_t make_answer(uint8_t *b, uint16_t id)
{
    size_t n = 0;
    uint8_t *h = b + n;
    fcgi_client_header(h, FCGI_CLIENT_STDOUT, id, 13);
    h[6] = 3; /* padding */
    n += 8;
    memcpy(b + n, "Status: 200\r\n", 13);
    n += 13;
    memset(b + n, 0xee, 3);
    n += 3;
    fcgi_client_header(b + n, FCGI_CLIENT_STDOUT, id, 4);
    n += 8;
    memcpy(b + n, "\r\nhi", 4);
    n += 4;
    fcgi_client_header(b + n, FCGI_CLIENT_STDERR, id, 4);
    n += 8;
    memcpy(b + n, "oops", 4);
    n += 4;
    fcgi_client_header(b + n, FCGI_CLIENT_STDOUT, id, 0);
    n += 8;
    fcgi_client_header(b + n, FCGI_CLIENT_END_REQUEST, id, 8);
    n += 8;
    const uint8_t end[8] = {0, 0, 0, 3, 0, 0, 0, 0};
    memcpy(b + n, end, 8);
    return n + 8;
}

/* Decode IN in pieces of STEP bytes; collect STDOUT and STDERR. Returns
 * the last event. */
static enum fcgi_client_event run(const uint8_t *in, size_t len, size_t step, char *out, char *err,
                                  uint32_t *app_status)
{
    struct fcgi_client_dec d;
    fcgi_client_dec_init(&d, 1);
    size_t pos = 0, on = 0, en = 0;
    enum fcgi_client_event ev = FCGI_CLIENT_NEED_MORE;
    while (pos < len) {
        size_t avail = len - pos < step ? len - pos : step, off = 0;
        while (off < avail || ev == FCGI_CLIENT_OUT) {
            size_t used;
            struct fcgi_client_piece p;
            ev = fcgi_client_decode(&d, in + pos + off, avail - off, &used, &p);
            off += used;
            if (ev == FCGI_CLIENT_OUT) {
                memcpy(out + on, p.data, p.len);
                on += p.len;
            } else if (ev == FCGI_CLIENT_ERR) {
                memcpy(err + en, p.data, p.len);
                en += p.len;
            } else if (ev == FCGI_CLIENT_END) {
                *app_status = p.app_status;
                out[on] = err[en] = '\0';
                return ev;
            } else if (ev == FCGI_CLIENT_ERROR) {
                return ev;
            } else if (off == avail) {
                break;
            }
        }
        pos += avail;
    }
    out[on] = err[en] = '\0';
    return ev;
}

static void client_decodes_an_answer_whole_and_byte_by_byte(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t n = make_answer(b, 1);
    size_t steps[] = {n, 1, 3, 7};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        char out[64], err[64];
        uint32_t st = 0;
        assert_int_equal(run(b, n, steps[i], out, err, &st), FCGI_CLIENT_END);
        assert_string_equal(out, "Status: 200\r\n\r\nhi");
        assert_string_equal(err, "oops");
        assert_int_equal(st, 3);
    }
}

static void client_refuses_another_request_id_and_bad_records(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t n = make_answer(b, 2); /* the decoder expects id 1 */
    char out[64], err[64];
    uint32_t st;
    assert_int_equal(run(b, n, n, out, err, &st), FCGI_CLIENT_ERROR);
    n = make_answer(b, 1);
    b[0] = 2; /* version */
    assert_int_equal(run(b, n, n, out, err, &st), FCGI_CLIENT_ERROR);
    /* An END_REQUEST shorter than its 8 bytes. */
    fcgi_client_header(b, FCGI_CLIENT_END_REQUEST, 1, 4);
    assert_int_equal(run(b, 12, 12, out, err, &st), FCGI_CLIENT_ERROR);
    /* A record of another type (GET_VALUES_RESULT) is skipped. */
    fcgi_client_header(b, 10, 0, 2);
    b[8] = b[9] = 0;
    n = 10 + make_answer(b + 10, 1);
    assert_int_equal(run(b, n, 1, out, err, &st), FCGI_CLIENT_END);
    assert_string_equal(out, "Status: 200\r\n\r\nhi");
}

static void client_decoder_stops_after_end(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t n = make_answer(b, 1);
    struct fcgi_client_dec d;
    fcgi_client_dec_init(&d, 1);
    size_t pos = 0, used;
    struct fcgi_client_piece p;
    enum fcgi_client_event ev;
    do {
        ev = fcgi_client_decode(&d, b + pos, n - pos, &used, &p);
        pos += used;
    } while (ev != FCGI_CLIENT_END);
    assert_int_equal(pos, n);
    assert_int_equal(fcgi_client_decode(&d, b, n, &used, &p), FCGI_CLIENT_NEED_MORE);
    assert_int_equal(used, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(client_begin_is_a_responder_record),
        cmocka_unit_test(client_pairs_use_short_and_long_lengths),
        cmocka_unit_test(client_decodes_an_answer_whole_and_byte_by_byte),
        cmocka_unit_test(client_refuses_another_request_id_and_bad_records),
        cmocka_unit_test(client_decoder_stops_after_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
