/*
 * fastcgi_client.c — the client side of FastCGI (see fastcgi_client.h).
 */
#include "fastcgi_client.h"

#include <string.h>

#define FCGI_CLIENT_VERSION 1
#define FCGI_CLIENT_RESPONDER 1
#define FCGI_CLIENT_KEEP_CONN 1

void fcgi_client_header(uint8_t out[FCGI_CLIENT_HEADER_LEN], enum fcgi_client_type type,
                        uint16_t id, uint16_t content_len)
{
    out[0] = FCGI_CLIENT_VERSION;
    out[1] = (uint8_t)type;
    out[2] = (uint8_t)(id >> 8);
    out[3] = (uint8_t)id;
    out[4] = (uint8_t)(content_len >> 8);
    out[5] = (uint8_t)content_len;
    out[6] = 0;
    out[7] = 0;
}

void fcgi_client_begin(uint8_t out[16], uint16_t id, bool keep)
{
    fcgi_client_header(out, FCGI_CLIENT_BEGIN_REQUEST, id, 8);
    memset(out + 8, 0, 8);
    out[9] = FCGI_CLIENT_RESPONDER;
    out[10] = keep ? FCGI_CLIENT_KEEP_CONN : 0;
}

void fcgi_client_abort(uint8_t out[8], uint16_t id)
{
    fcgi_client_header(out, FCGI_CLIENT_ABORT_REQUEST, id, 0);
}

static size_t fcgi_client_len_size(size_t n)
{
    return n < 128 ? 1 : 4;
}

size_t fcgi_client_pair_size(size_t nlen, size_t vlen)
{
    return fcgi_client_len_size(nlen) + fcgi_client_len_size(vlen) + nlen + vlen;
}

static uint8_t *fcgi_client_put_len(uint8_t *p, size_t n)
{
    if (n < 128) {
        *p++ = (uint8_t)n;
        return p;
    }
    *p++ = (uint8_t)(0x80 | (n >> 24));
    *p++ = (uint8_t)(n >> 16);
    *p++ = (uint8_t)(n >> 8);
    *p++ = (uint8_t)n;
    return p;
}

size_t fcgi_client_lengths(uint8_t out[8], size_t nlen, size_t vlen)
{
    uint8_t *p = fcgi_client_put_len(out, nlen);
    return (size_t)(fcgi_client_put_len(p, vlen) - out);
}

size_t fcgi_client_pair(uint8_t *out, size_t cap, const char *name, size_t nlen, const char *value,
                        size_t vlen)
{
    if (nlen > 0x7fffffffu || vlen > 0x7fffffffu)
        return 0;
    size_t need = fcgi_client_pair_size(nlen, vlen);
    if (need > cap)
        return 0;
    uint8_t *p = out + fcgi_client_lengths(out, nlen, vlen);
    memcpy(p, name, nlen);
    memcpy(p + nlen, value, vlen);
    return need;
}

void fcgi_client_dec_init(struct fcgi_client_dec *d, uint16_t id)
{
    memset(d, 0, sizeof(*d));
    d->id = id;
}

enum fcgi_client_event fcgi_client_decode(struct fcgi_client_dec *d, const uint8_t *in, size_t len,
                                          size_t *used, struct fcgi_client_piece *piece)
{
    size_t pos = 0;
    memset(piece, 0, sizeof(*piece));
    while (!d->done) {
        if (d->hdr_have < FCGI_CLIENT_HEADER_LEN) {
            size_t take = FCGI_CLIENT_HEADER_LEN - d->hdr_have;
            if (take > len - pos)
                take = len - pos;
            memcpy(d->hdr + d->hdr_have, in + pos, take);
            d->hdr_have += (unsigned)take;
            pos += take;
            if (d->hdr_have < FCGI_CLIENT_HEADER_LEN)
                break;
            if (d->hdr[0] != FCGI_CLIENT_VERSION) {
                *used = pos;
                return FCGI_CLIENT_ERROR;
            }
            d->type = d->hdr[1];
            uint16_t id = (uint16_t)(d->hdr[2] << 8 | d->hdr[3]);
            d->content = (uint32_t)(d->hdr[4] << 8 | d->hdr[5]);
            d->padding = d->hdr[6];
            d->end_have = 0;
            bool ours = d->type == FCGI_CLIENT_STDOUT || d->type == FCGI_CLIENT_STDERR ||
                        d->type == FCGI_CLIENT_END_REQUEST;
            if (ours && id != d->id) {
                *used = pos;
                return FCGI_CLIENT_ERROR;
            }
            if (d->type == FCGI_CLIENT_END_REQUEST && d->content < 8) {
                *used = pos;
                return FCGI_CLIENT_ERROR;
            }
        }
        if (d->content) {
            if (pos == len)
                break;
            size_t take = d->content;
            if (take > len - pos)
                take = len - pos;
            const uint8_t *data = in + pos;
            pos += take;
            d->content -= (uint32_t)take;
            if (d->type == FCGI_CLIENT_STDOUT || d->type == FCGI_CLIENT_STDERR) {
                piece->data = data;
                piece->len = take;
                if (!d->content && !d->padding)
                    d->hdr_have = 0;
                *used = pos;
                return d->type == FCGI_CLIENT_STDOUT ? FCGI_CLIENT_OUT : FCGI_CLIENT_ERR;
            }
            if (d->type == FCGI_CLIENT_END_REQUEST && d->end_have < 8) {
                size_t k = 8 - d->end_have < take ? 8 - d->end_have : take;
                memcpy(d->end + d->end_have, data, k);
                d->end_have += (unsigned)k;
            }
            if (d->content)
                continue;
        }
        if (d->padding) {
            if (pos == len)
                break;
            size_t take = d->padding < len - pos ? d->padding : len - pos;
            pos += take;
            d->padding -= (uint32_t)take;
            if (d->padding)
                continue;
        }
        d->hdr_have = 0;
        if (d->type == FCGI_CLIENT_END_REQUEST) {
            d->done = true;
            piece->app_status = (uint32_t)d->end[0] << 24 | (uint32_t)d->end[1] << 16 |
                                (uint32_t)d->end[2] << 8 | d->end[3];
            piece->protocol_status = d->end[4];
            *used = pos;
            return FCGI_CLIENT_END;
        }
    }
    *used = pos;
    return FCGI_CLIENT_NEED_MORE;
}
