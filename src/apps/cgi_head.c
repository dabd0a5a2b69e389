/*
 * cgi_head.c — the header block of a CGI response (see cgi_head.h): used by
 * the FastCGI program adapter (program/program_forward.c) and the CGI
 * script adapter (cgi/cgi_run.c).
 */
#include "cgi_head.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

void cgi_head_init(struct cgi_head *h)
{
    h->len = 0;
    h->done = false;
    h->nfields = 0;
    h->dropped = 0;
    h->status = 0;
    h->reason = NULL;
    h->location = NULL;
}

enum cgi_head_state cgi_head_feed(struct cgi_head *h, const uint8_t *p, size_t len,
                                  struct cgi_head_rest *rest)
{
    size_t room = CGI_HEAD_MAX - h->len;
    size_t take = len < room ? len : room;
    memcpy(h->buf + h->len, p, take);
    size_t old = h->len;
    h->len += take;
    h->buf[h->len] = '\0';
    /* The blank line may start in the bytes seen before. */
    size_t from = old > 3 ? old - 3 : 0;
    size_t end = 0, body = 0;
    for (size_t i = from; i < h->len; i++) {
        if (h->buf[i] != '\n')
            continue;
        if (i + 1 < h->len && h->buf[i + 1] == '\n') {
            end = i + 1;
            body = i + 2;
            break;
        }
        if (i + 2 < h->len && h->buf[i + 1] == '\r' && h->buf[i + 2] == '\n') {
            end = i + 1;
            body = i + 3;
            break;
        }
    }
    if (!body)
        return h->len == CGI_HEAD_MAX ? CGI_HEAD_TOO_BIG : CGI_HEAD_MORE;
    h->done = true;
    h->buf[end] = '\0';
    /* Body bytes: those of the head buffer past the blank line, then the
     * rest of the piece that did not fit in it. */
    rest->p[0] = (const uint8_t *)h->buf + body;
    rest->len[0] = h->len - body;
    rest->p[1] = p + take;
    rest->len[1] = len - take;
    return CGI_HEAD_DONE;
}

void cgi_head_end(struct cgi_head *h)
{
    h->done = true;
}

void cgi_head_parse(struct cgi_head *h)
{
    char *save = NULL;
    for (char *line = strtok_r(h->buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r')
            line[--n] = '\0';
        char *colon = strchr(line, ':');
        if (!colon) {
            h->dropped++;
            continue;
        }
        *colon = '\0';
        char *value = colon + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        if (strcasecmp(line, "Status") == 0) {
            char *end;
            long code = strtol(value, &end, 10);
            while (*end == ' ')
                end++;
            if (code >= 100 && code <= 999) {
                h->status = (int)code;
                h->reason = *end ? end : NULL;
            }
            continue;
        }
        if (strcasecmp(line, "Location") == 0)
            h->location = value;
        if (h->nfields == CGI_HEAD_FIELDS) {
            h->dropped++;
            continue;
        }
        h->fields[h->nfields].name = line;
        h->fields[h->nfields].value = value;
        h->nfields++;
    }
}

void cgi_head_apply(corral_request *req, const struct cgi_head *h, const char *who)
{
    bool have_status = h->status && corral_set_status(req, h->status, h->reason) == 0;
    if (h->dropped)
        log_msg(LOG_WARN, "%s: %u header line(s) without ':' (or too many) dropped", who,
                h->dropped);
    for (size_t i = 0; i < h->nfields; i++) {
        if (corral_add_header(req, h->fields[i].name, h->fields[i].value) < 0)
            log_msg(LOG_WARN, "%s: header %s refused", who, h->fields[i].name);
    }
    if (h->location && !have_status)
        corral_set_status(req, 302, NULL);
}
