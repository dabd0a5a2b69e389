/*
 * protocol.c — the table of codecs, looked up by name.
 */
#include "protocol.h"

#include <string.h>

static const struct proto_codec *const proto_table[PROTO_KIND_COUNT] = {
    [PROTO_UWSGI] = &proto_uwsgi,
    [PROTO_FASTCGI] = &proto_fastcgi,
    [PROTO_SCGI] = &proto_scgi,
    [PROTO_HTTP] = &proto_http,
};

const struct proto_codec *proto_by_name(const char *name, size_t len)
{
    for (size_t i = 0; i < PROTO_KIND_COUNT; i++) {
        const char *n = proto_table[i]->name;
        if (strlen(n) == len && memcmp(n, name, len) == 0)
            return proto_table[i];
    }
    return NULL;
}
