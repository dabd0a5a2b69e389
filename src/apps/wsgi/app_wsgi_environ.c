/*
 * app_wsgi_environ.c — the environ dict of each request: a copy of the
 * constant part built at start-up, then every param of the request as a
 * Latin-1 str (PEP 3333), wsgi.url_scheme and wsgi.input.
 *
 * A front end sends the same twenty-odd names on every request, and many of
 * the same values (REQUEST_METHOD, SERVER_PROTOCOL, HTTP_HOST, ...). Each
 * interpreter keeps a small cache of interned name strings (their hash computed
 * once) and, per name, the str of the last value seen: a repeat costs a
 * compare and a reference instead of an allocation and a hash. The cache is
 * bounded (a front end sending endless new names only gets them decoded
 * each time) and is touched only with its interpreter's GIL held (the
 * strings are that interpreter's: with --own-gil each has its own cache).
 */
#include "app_wsgi.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn/request.h"

enum {
    ENV_SLOTS = 256,      /* power of two */
    ENV_PROBES = 8,       /* slots tried before a name goes uncached */
    ENV_NAME_MAX = 47,    /* longer names are not cached */
    ENV_VALUE_MAX = 63,   /* longer values are decoded each time */
};

/* What the environ loop must notice about a name. */
enum env_role { ENV_PLAIN, ENV_HTTPS, ENV_REQUEST_SCHEME, ENV_SCRIPT_NAME, ENV_PATH_INFO };

struct env_slot {
    PyObject *key;          /* interned str; NULL = free slot */
    PyObject *value;        /* the str of the last value, or NULL */
    uint8_t name_len, value_len;
    uint8_t role;
    char name[ENV_NAME_MAX + 1];
    char value_bytes[ENV_VALUE_MAX + 1];
};

struct app_wsgi_env_cache {
    struct env_slot slots[ENV_SLOTS];
};

struct app_wsgi_env_cache *app_wsgi_environ_cache_new(void)
{
    return calloc(1, sizeof(struct app_wsgi_env_cache));
}

static uint32_t env_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static enum env_role env_role_of(const char *name, size_t len)
{
    static const struct {
        const char *name;
        enum env_role role;
    } roles[] = {{"HTTPS", ENV_HTTPS},
                 {"REQUEST_SCHEME", ENV_REQUEST_SCHEME},
                 {"SCRIPT_NAME", ENV_SCRIPT_NAME},
                 {"PATH_INFO", ENV_PATH_INFO}};
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (strlen(roles[i].name) == len && memcmp(roles[i].name, name, len) == 0)
            return roles[i].role;
    return ENV_PLAIN;
}

/* The cache slot of NAME, filled on first sight; NULL when it cannot be
 * cached (too long, or its probe window is full). */
static struct env_slot *env_slot_of(struct app_wsgi_env_cache *cache, const char *name, size_t len)
{
    if (len > ENV_NAME_MAX)
        return NULL;
    uint32_t h = env_hash(name, len);
    for (unsigned i = 0; i < ENV_PROBES; i++) {
        struct env_slot *s = &cache->slots[(h + i) & (ENV_SLOTS - 1)];
        if (!s->key) {
            PyObject *key = PyUnicode_DecodeLatin1(name, (Py_ssize_t)len, NULL);
            if (!key) {
                PyErr_Clear();
                return NULL;
            }
            PyUnicode_InternInPlace(&key);
            s->key = key;
            s->name_len = (uint8_t)len;
            memcpy(s->name, name, len);
            s->role = (uint8_t)env_role_of(name, len);
            return s;
        }
        if (s->name_len == len && memcmp(s->name, name, len) == 0)
            return s;
    }
    return NULL;
}

/* The value str for SLOT (new reference): the cached one when the bytes
 * are the same, else decoded (and cached when short). */
static PyObject *env_value(struct env_slot *s, const char *value, size_t len)
{
    if (s->value && s->value_len == len && memcmp(s->value_bytes, value, len) == 0) {
        Py_INCREF(s->value);
        return s->value;
    }
    PyObject *v = PyUnicode_DecodeLatin1(value, (Py_ssize_t)len, NULL);
    if (v && len <= ENV_VALUE_MAX) {
        Py_INCREF(v);
        Py_XSETREF(s->value, v);
        s->value_len = (uint8_t)len;
        memcpy(s->value_bytes, value, len);
    }
    return v;
}

/* nginx's stock fastcgi_params send the whole path as SCRIPT_NAME and no
 * PATH_INFO: the app then believes it is mounted at that path and routes
 * nothing. Said once per worker, with the fix. */
static void env_warn_script_name(corral_request *req)
{
    static atomic_bool warned; /* once per process, whatever the interpreter */
    if (atomic_exchange(&warned, true))
        return;
    const char *sn = corral_param(req, "SCRIPT_NAME");
    corral_log(CORRAL_LOG_WARN,
               "wsgi: the front end sends SCRIPT_NAME=\"%.200s\" and no PATH_INFO: the app sees "
               "itself mounted at that path with an empty path (nginx's stock fastcgi_params do "
               "this; add fastcgi_param SCRIPT_NAME \"\"; and fastcgi_param PATH_INFO "
               "$document_uri; after them, see the README). Said once per worker.",
               sn ? sn : "");
}

PyObject *app_wsgi_environ_new(const struct app_wsgi_environ_consts *k, corral_request *req,
                               PyObject *input)
{
    PyObject *env = PyDict_Copy(k->base);
    if (!env)
        return NULL;
    bool https = false, script_name = false, path_info = false;
    size_t count = corral_param_count(req);
    for (size_t i = 0; i < count; i++) {
        const char *name, *value;
        size_t nlen, vlen;
        request_param_at(req, i, &name, &nlen, &value, &vlen);
        struct env_slot *s = env_slot_of(k->cache, name, nlen);
        PyObject *key, *v;
        enum env_role role;
        if (s) {
            key = s->key;
            Py_INCREF(key);
            v = env_value(s, value, vlen);
            role = (enum env_role)s->role;
        } else {
            key = PyUnicode_DecodeLatin1(name, (Py_ssize_t)nlen, NULL);
            v = key ? PyUnicode_DecodeLatin1(value, (Py_ssize_t)vlen, NULL) : NULL;
            role = env_role_of(name, nlen);
        }
        int rc = v ? PyDict_SetItem(env, key, v) : -1;
        Py_XDECREF(key);
        Py_XDECREF(v);
        if (rc < 0)
            goto fail;
        switch (role) {
        case ENV_HTTPS:
            https = https || strcasecmp(value, "on") == 0 || strcmp(value, "1") == 0;
            break;
        case ENV_REQUEST_SCHEME:
            https = https || strcasecmp(value, "https") == 0;
            break;
        case ENV_SCRIPT_NAME:
            script_name = vlen > 0; /* a repeated param: the last wins */
            break;
        case ENV_PATH_INFO:
            path_info = true;
            break;
        case ENV_PLAIN:
            break;
        }
    }
    if (script_name && !path_info)
        env_warn_script_name(req);
    if (PyDict_SetItem(env, k->url_scheme_key, https ? k->https : k->http) < 0 ||
        PyDict_SetItem(env, k->input_key, input) < 0)
        goto fail;
    return env;
fail:
    Py_DECREF(env);
    return NULL;
}
