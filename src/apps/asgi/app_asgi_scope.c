/*
 * app_asgi_scope.c — the ASGI HTTP scope of a request, built from its
 * params (the same ones WSGI's environ is built from) in one pass over
 * them. What every scope shares is made once per process: the keys (as
 * interned str), the constant values, the common methods, and the header
 * names as bytes (b"accept-encoding" for HTTP_ACCEPT_ENCODING): a cache of
 * immutable objects, so sharing them between scopes is invisible to apps.
 * Each scope, its "asgi" dict and its headers list are new objects.
 *
 * Only the loop thread runs this code, with the GIL.
 */
#include "app_asgi_state.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn/conn.h"
#include "conn/request.h"

enum {
    K_TYPE,
    K_ASGI,
    K_VERSION,
    K_SPEC_VERSION,
    K_HTTP_VERSION,
    K_METHOD,
    K_SCHEME,
    K_PATH,
    K_RAW_PATH,
    K_QUERY_STRING,
    K_ROOT_PATH,
    K_HEADERS,
    K_CLIENT,
    K_SERVER,
    V_HTTP,
    V_HTTPS,
    V_WEBSOCKET,
    V_3_0,
    V_2_3,
    V_1_0,
    V_1_1,
    V_2,
    V_EMPTY,
    V_COUNT
};

static const char *const app_asgi_scope_words[V_COUNT] = {
    "type", "asgi",     "version",      "spec_version", "http_version", "method", "scheme",
    "path", "raw_path", "query_string", "root_path",    "headers",      "client", "server",
    "http", "https",    "websocket",    "3.0",          "2.3",          "1.0",    "1.1",
    "2",    "",
};

static PyObject *app_asgi_words[V_COUNT];

/* The methods kept as objects (any other is decoded each time). */
static const char *const app_asgi_methods[] = {"GET",    "POST",  "HEAD",   "PUT",
                                               "DELETE", "PATCH", "OPTIONS"};
#define APP_ASGI_METHODS (sizeof(app_asgi_methods) / sizeof(app_asgi_methods[0]))
static PyObject *app_asgi_method_objs[APP_ASGI_METHODS];

/* Header names, by the param's name: an open-addressed table that only
 * grows (a header name seen once is kept: a front end sends few distinct
 * ones; past APP_ASGI_NAMES_MAX the names are made each time). */
#define APP_ASGI_NAMES 256 /* slots, a power of two */
#define APP_ASGI_NAMES_MAX 192
#define APP_ASGI_NAME_LEN 48
struct app_asgi_name {
    unsigned char len; /* 0: a free slot */
    char param[APP_ASGI_NAME_LEN];
    PyObject *bytes;
};
static struct app_asgi_name app_asgi_names[APP_ASGI_NAMES];
static unsigned app_asgi_name_count;

int app_asgi_scope_init(void)
{
    for (int i = 0; i < V_COUNT; i++) {
        if (!app_asgi_words[i] &&
            !(app_asgi_words[i] = PyUnicode_InternFromString(app_asgi_scope_words[i])))
            return -1;
    }
    for (size_t i = 0; i < APP_ASGI_METHODS; i++) {
        if (!app_asgi_method_objs[i] &&
            !(app_asgi_method_objs[i] = PyUnicode_InternFromString(app_asgi_methods[i])))
            return -1;
    }
    return 0;
}

/* A str of the UTF-8 bytes S (LEN), undecodable bytes kept as surrogates. */
static PyObject *app_asgi_str(const char *s, size_t len)
{
    if (len == 0)
        return Py_NewRef(app_asgi_words[V_EMPTY]);
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, "surrogateescape");
}

static PyObject *app_asgi_method(const char *s, size_t len)
{
    for (size_t i = 0; i < APP_ASGI_METHODS; i++)
        if (strlen(app_asgi_methods[i]) == len && memcmp(app_asgi_methods[i], s, len) == 0)
            return Py_NewRef(app_asgi_method_objs[i]);
    return app_asgi_str(s, len);
}

/* "ACCEPT_ENCODING" (a param's name past HTTP_) -> b"accept-encoding". */
static PyObject *app_asgi_make_name(const char *from, size_t n)
{
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (!b)
        return NULL;
    char *buf = PyBytes_AS_STRING(b);
    for (size_t i = 0; i < n; i++) {
        char ch = from[i];
        buf[i] = ch == '_' ? '-' : (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    return b;
}

/* The header name for the param NAME past its HTTP_ (N bytes): new ref. */
static PyObject *app_asgi_header_name(const char *name, size_t n)
{
    if (n == 0 || n >= APP_ASGI_NAME_LEN)
        return app_asgi_make_name(name, n);
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)name[i]) * 16777619u;
    for (unsigned i = 0; i < APP_ASGI_NAMES; i++) {
        struct app_asgi_name *e = &app_asgi_names[(h + i) & (APP_ASGI_NAMES - 1)];
        if (e->len == n && memcmp(e->param, name, n) == 0)
            return Py_NewRef(e->bytes);
        if (e->len == 0) {
            PyObject *b = app_asgi_make_name(name, n);
            if (b && app_asgi_name_count < APP_ASGI_NAMES_MAX) {
                memcpy(e->param, name, n);
                e->len = (unsigned char)n;
                e->bytes = Py_NewRef(b);
                app_asgi_name_count++;
            }
            return b;
        }
    }
    return app_asgi_make_name(name, n);
}

/* NAME (LEN) is the literal L. */
#define APP_ASGI_IS(name, len, l) ((len) == sizeof(l) - 1 && memcmp(name, l, sizeof(l) - 1) == 0)

struct app_asgi_view {
    const char *v;
    size_t n;
};

/* The params the scope is made of, the first of each name. */
struct app_asgi_params {
    struct app_asgi_view method, path, script, query, uri, proto, https, rscheme, raddr, rport,
        sname, sport;
    size_t headers;
    bool upgrade_ws, connection_upgrade;
};

/* Whether V (N) holds "upgrade", in any case, as a word of a list. */
static bool app_asgi_has_upgrade(const char *v, size_t n)
{
    for (size_t i = 0; i + 7 <= n; i++)
        if (strncasecmp(v + i, "upgrade", 7) == 0)
            return true;
    return false;
}

static void app_asgi_take_param(struct app_asgi_params *p, const char *name, size_t nl,
                                const char *value, size_t vl)
{
    struct app_asgi_view *slot = NULL;
    if (nl > 5 && memcmp(name, "HTTP_", 5) == 0) {
        p->headers++;
        if (APP_ASGI_IS(name, nl, "HTTP_UPGRADE"))
            p->upgrade_ws = p->upgrade_ws || (vl == 9 && strncasecmp(value, "websocket", 9) == 0);
        else if (APP_ASGI_IS(name, nl, "HTTP_CONNECTION"))
            p->connection_upgrade = p->connection_upgrade || app_asgi_has_upgrade(value, vl);
        return;
    }
    switch (name[0]) {
    case 'C':
        if (APP_ASGI_IS(name, nl, "CONTENT_TYPE") || APP_ASGI_IS(name, nl, "CONTENT_LENGTH"))
            p->headers++;
        return;
    case 'H':
        if (APP_ASGI_IS(name, nl, "HTTPS"))
            slot = &p->https;
        break;
    case 'P':
        if (APP_ASGI_IS(name, nl, "PATH_INFO"))
            slot = &p->path;
        break;
    case 'Q':
        if (APP_ASGI_IS(name, nl, "QUERY_STRING"))
            slot = &p->query;
        break;
    case 'R':
        if (APP_ASGI_IS(name, nl, "REQUEST_METHOD"))
            slot = &p->method;
        else if (APP_ASGI_IS(name, nl, "REQUEST_URI"))
            slot = &p->uri;
        else if (APP_ASGI_IS(name, nl, "REQUEST_SCHEME"))
            slot = &p->rscheme;
        else if (APP_ASGI_IS(name, nl, "REMOTE_ADDR"))
            slot = &p->raddr;
        else if (APP_ASGI_IS(name, nl, "REMOTE_PORT"))
            slot = &p->rport;
        break;
    case 'S':
        if (APP_ASGI_IS(name, nl, "SCRIPT_NAME"))
            slot = &p->script;
        else if (APP_ASGI_IS(name, nl, "SERVER_PROTOCOL"))
            slot = &p->proto;
        else if (APP_ASGI_IS(name, nl, "SERVER_NAME"))
            slot = &p->sname;
        else if (APP_ASGI_IS(name, nl, "SERVER_PORT"))
            slot = &p->sport;
        break;
    default:
        break;
    }
    if (slot && !slot->v) {
        slot->v = value;
        slot->n = vl;
    }
}

/* The scope's headers: [[name, value], ...] from the HTTP_* params (and
 * CONTENT_TYPE, CONTENT_LENGTH), COUNT of them. */
static PyObject *app_asgi_headers(corral_request *req, size_t count)
{
    PyObject *list = PyList_New((Py_ssize_t)count);
    if (!list)
        return NULL;
    size_t total = corral_param_count(req), at = 0;
    for (size_t i = 0; i < total && at < count; i++) {
        const char *name, *value;
        size_t nl, vl;
        request_param_at(req, i, &name, &nl, &value, &vl);
        PyObject *k;
        if (nl > 5 && memcmp(name, "HTTP_", 5) == 0)
            k = app_asgi_header_name(name + 5, nl - 5);
        else if (APP_ASGI_IS(name, nl, "CONTENT_TYPE") || APP_ASGI_IS(name, nl, "CONTENT_LENGTH"))
            k = app_asgi_header_name(name, nl);
        else
            continue;
        PyObject *v = k ? PyBytes_FromStringAndSize(value, (Py_ssize_t)vl) : NULL;
        PyObject *pair = v ? PyList_New(2) : NULL;
        if (!pair) {
            Py_XDECREF(k);
            Py_XDECREF(v);
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(pair, 0, k);
        PyList_SET_ITEM(pair, 1, v);
        PyList_SET_ITEM(list, (Py_ssize_t)at++, pair);
    }
    if (at < count && PyList_SetSlice(list, (Py_ssize_t)at, (Py_ssize_t)count, NULL) < 0)
        Py_CLEAR(list);
    return list;
}

/* (host, port) of the params, or None. */
static PyObject *app_asgi_addr(struct app_asgi_view host, struct app_asgi_view port)
{
    if (!host.v)
        Py_RETURN_NONE;
    PyObject *h = app_asgi_str(host.v, host.n);
    PyObject *p = h ? PyLong_FromLong(port.v ? atoi(port.v) : 0) : NULL;
    PyObject *t = p ? PyTuple_New(2) : NULL;
    if (!t) {
        Py_XDECREF(h);
        Py_XDECREF(p);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, h);
    PyTuple_SET_ITEM(t, 1, p);
    return t;
}

/* Set D[words[K]] = V, taking V (NULL: fails). */
static int app_asgi_put(PyObject *d, int k, PyObject *v)
{
    if (!v)
        return -1;
    int rc = PyDict_SetItem(d, app_asgi_words[k], v);
    Py_DECREF(v);
    return rc;
}

PyObject *app_asgi_scope_new(corral_request *req, bool websocket_ok)
{
    struct app_asgi_params p = {0};
    size_t count = corral_param_count(req);
    for (size_t i = 0; i < count; i++) {
        const char *name, *value;
        size_t nl, vl;
        request_param_at(req, i, &name, &nl, &value, &vl);
        if (nl)
            app_asgi_take_param(&p, name, nl, value, vl);
    }
    bool tls = (p.https.v && (strcasecmp(p.https.v, "on") == 0 || strcmp(p.https.v, "1") == 0)) ||
               (p.rscheme.v && strcasecmp(p.rscheme.v, "https") == 0);
    /* Without PATH_INFO (nginx's stock fastcgi_params) SCRIPT_NAME holds
     * the path and the app is mounted at the root. */
    struct app_asgi_view path = p.path, root = p.script;
    if (!path.v) {
        path = p.script.v ? p.script : p.uri;
        if (!p.script.v && p.uri.v)
            path.n = strcspn(p.uri.v, "?");
        root.v = NULL;
        root.n = 0;
    }
    int version = V_1_1;
    if (p.proto.v && strncmp(p.proto.v, "HTTP/", 5) == 0)
        version = strcmp(p.proto.v + 5, "1.0") == 0   ? V_1_0
                  : strcmp(p.proto.v + 5, "2.0") == 0 ? V_2
                                                      : V_1_1;
    bool ws = websocket_ok && p.upgrade_ws && p.connection_upgrade && p.method.v &&
              APP_ASGI_IS(p.method.v, p.method.n, "GET");
    PyObject *scope = PyDict_New(), *asgi = PyDict_New();
    if (!scope || !asgi || app_asgi_put(asgi, K_VERSION, Py_NewRef(app_asgi_words[V_3_0])) < 0 ||
        app_asgi_put(asgi, K_SPEC_VERSION, Py_NewRef(app_asgi_words[V_2_3])) < 0)
        goto fail;
    /* The websocket scope's own keys are the glue's (asgi_glue.py). */
    if (app_asgi_put(scope, K_TYPE, Py_NewRef(app_asgi_words[ws ? V_WEBSOCKET : V_HTTP])) < 0 ||
        app_asgi_put(scope, K_ASGI, Py_NewRef(asgi)) < 0 ||
        app_asgi_put(scope, K_HTTP_VERSION, Py_NewRef(app_asgi_words[version])) < 0 ||
        app_asgi_put(scope, K_METHOD,
                     p.method.v ? app_asgi_method(p.method.v, p.method.n)
                                : Py_NewRef(app_asgi_method_objs[0])) < 0 ||
        app_asgi_put(scope, K_SCHEME, Py_NewRef(app_asgi_words[tls ? V_HTTPS : V_HTTP])) < 0 ||
        app_asgi_put(scope, K_PATH,
                     path.v ? app_asgi_str(path.v, path.n) : PyUnicode_FromString("/")) < 0 ||
        app_asgi_put(scope, K_RAW_PATH,
                     p.uri.v ? PyBytes_FromStringAndSize(p.uri.v, (Py_ssize_t)strcspn(p.uri.v, "?"))
                             : Py_NewRef(Py_None)) < 0 ||
        app_asgi_put(scope, K_QUERY_STRING,
                     PyBytes_FromStringAndSize(p.query.v ? p.query.v : "",
                                               p.query.v ? (Py_ssize_t)p.query.n : 0)) < 0 ||
        app_asgi_put(scope, K_ROOT_PATH, app_asgi_str(root.v, root.n)) < 0 ||
        app_asgi_put(scope, K_HEADERS, app_asgi_headers(req, p.headers)) < 0 ||
        app_asgi_put(scope, K_CLIENT, app_asgi_addr(p.raddr, p.rport)) < 0 ||
        app_asgi_put(scope, K_SERVER, app_asgi_addr(p.sname, p.sport)) < 0)
        goto fail;
    Py_DECREF(asgi);
    return scope;
fail:
    Py_XDECREF(asgi);
    Py_XDECREF(scope);
    return NULL;
}
