/*
 * fastcgi_client.h — the client side of FastCGI, a pure codec: the records
 * a web server sends to a FastCGI application (BEGIN_REQUEST, PARAMS,
 * STDIN, ABORT_REQUEST) and a streaming decoder of what the application
 * answers (STDOUT, STDERR, END_REQUEST). It shares no state with the server
 * side (fastcgi.c); the adapter of FastCGI programs (src/apps/program/) uses
 * it. No I/O, no allocation.
 */
#ifndef CORRAL_FASTCGI_CLIENT_H
#define CORRAL_FASTCGI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FCGI_CLIENT_HEADER_LEN 8
#define FCGI_CLIENT_MAX_CONTENT 65535u

enum fcgi_client_type {
    FCGI_CLIENT_BEGIN_REQUEST = 1,
    FCGI_CLIENT_ABORT_REQUEST = 2,
    FCGI_CLIENT_END_REQUEST = 3,
    FCGI_CLIENT_PARAMS = 4,
    FCGI_CLIENT_STDIN = 5,
    FCGI_CLIENT_STDOUT = 6,
    FCGI_CLIENT_STDERR = 7,
};

/* Write the 8-byte record header of a record of TYPE for request ID with
 * CONTENT_LEN (<= FCGI_CLIENT_MAX_CONTENT) content bytes and no padding. */
void fcgi_client_header(uint8_t out[FCGI_CLIENT_HEADER_LEN], enum fcgi_client_type type,
                        uint16_t id, uint16_t content_len);

/* The 16 bytes of a BEGIN_REQUEST record (role RESPONDER), with the
 * KEEP_CONN flag when KEEP. */
void fcgi_client_begin(uint8_t out[16], uint16_t id, bool keep);

/* The 8 bytes of an ABORT_REQUEST record. */
void fcgi_client_abort(uint8_t out[8], uint16_t id);

/* The size of one name-value pair of NLEN and VLEN bytes in a PARAMS
 * stream (1- or 4-byte lengths). */
size_t fcgi_client_pair_size(size_t nlen, size_t vlen);

/* The length prefix of a pair of NLEN and VLEN bytes (each < 2^31) into
 * OUT; the name and value follow it in the stream. Returns its size (2..8). */
size_t fcgi_client_lengths(uint8_t out[8], size_t nlen, size_t vlen);

/* Append the name-value pair to OUT (CAP bytes). Returns the bytes written,
 * or 0 when it does not fit or a length is over 2^31 - 1. */
size_t fcgi_client_pair(uint8_t *out, size_t cap, const char *name, size_t nlen, const char *value,
                        size_t vlen);

/* The decoder of the application's records for one request. */
struct fcgi_client_dec {
    uint16_t id; /* the request id expected */
    uint8_t hdr[FCGI_CLIENT_HEADER_LEN];
    unsigned hdr_have; /* header bytes gathered */
    uint8_t type;      /* of the record being read */
    uint32_t content;  /* content bytes left in it */
    uint32_t padding;  /* padding bytes left after them */
    uint8_t end[8];    /* END_REQUEST's body */
    unsigned end_have;
    bool done; /* END_REQUEST was read */
};

enum fcgi_client_event {
    FCGI_CLIENT_NEED_MORE, /* all input consumed, nothing to report */
    FCGI_CLIENT_OUT,       /* a piece of STDOUT */
    FCGI_CLIENT_ERR,       /* a piece of STDERR */
    FCGI_CLIENT_END,       /* END_REQUEST: app_status and protocol_status set */
    FCGI_CLIENT_ERROR,     /* malformed: wrong version, request id, or an END too short */
};

struct fcgi_client_piece {
    const uint8_t *data; /* inside the input (OUT, ERR) */
    size_t len;
    uint32_t app_status;     /* END */
    uint8_t protocol_status; /* END */
};

/* Start decoding the answer to request ID. */
void fcgi_client_dec_init(struct fcgi_client_dec *d, uint16_t id);

/*
 * Decode from IN (LEN bytes): returns one event and sets *USED to the bytes
 * consumed; call again with the rest. Records of other types (a stray
 * GET_VALUES_RESULT, UNKNOWN_TYPE) are skipped. Empty STDOUT/STDERR
 * records (end of stream) report nothing. After END, or ERROR, the decoder
 * consumes nothing more.
 */
enum fcgi_client_event fcgi_client_decode(struct fcgi_client_dec *d, const uint8_t *in, size_t len,
                                          size_t *used, struct fcgi_client_piece *piece);

#endif
