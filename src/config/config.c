/*
 * config.c — defaults, the libconfig file reader and whole-configuration
 * validation (see config.h). Which keys exist, their types and limits come
 * from the table in options.c; this file only maps libconfig's value types
 * onto it. Library-like: it reports into an error buffer and never logs.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

#include <libconfig.h>

void config_defaults(struct config *c)
{
    *c = (struct config){
        .processes = 1,
        .threads = 1,
        .chmod_mode = 0660,
        .backlog = 1024,
        .max_conns = 1024,
        .control_chmod = 0600,
        .control_timeout_ms = 10 * 1000,
        .limits = PROTO_LIMITS_DEFAULT,
        .io_timeout_ms = 60 * 1000,
        .idle_timeout_ms = 75 * 1000,
        .header_timeout_ms = 60 * 1000,
        .body_timeout_ms = 60 * 1000,
        .send_timeout_ms = 60 * 1000,
        .min_rate = 500,
        .graceful_timeout_ms = 30 * 1000,
        .min_spare = 1,
        .max_spare = 3,
        .idle_worker_timeout_ms = 10 * 1000,
        .cgi_timeout_ms = 60 * 1000,
        .cgi_queue_timeout_ms = 10 * 1000,
    };
}

void config_free(struct config *c)
{
    for (size_t i = 0; i < options_count; i++) {
        const struct option_spec *o = &options_table[i];
        if (o->type == OPTION_STRING) {
            char **field = options_at(c, o->offset);
            free(*field);
            *field = NULL;
        } else if (o->type == OPTION_STRING_LIST) {
            options_clear_list(o, c);
        }
    }
    for (size_t i = 0; i < c->pools_count; i++)
        free(c->pools[i]);
    free(c->pools);
    c->pools = NULL;
    c->pools_count = 0;
    free(c->source_file);
    c->source_file = NULL;
}

const char *config_pool_name(const struct config *c)
{
    return c->pool_name ? c->pool_name : CONFIG_POOL_DEFAULT_NAME;
}

/* Deep copy of SRC into DST (which owns nothing yet). Returns 0, or -1 when
 * out of memory with DST freed. */
static int config_copy(struct config *dst, const struct config *src)
{
    *dst = *src;
    dst->source_file = NULL;
    dst->pools = NULL;
    dst->pools_count = 0;
    for (size_t i = 0; i < options_count; i++) {
        const struct option_spec *o = &options_table[i];
        if (o->type == OPTION_STRING) {
            char **field = options_at(dst, o->offset);
            *field = NULL;
        } else if (o->type == OPTION_STRING_LIST) {
            char ***list = options_at(dst, o->offset);
            size_t *count = options_at(dst, o->count_offset);
            *list = NULL;
            *count = 0;
        }
    }
    for (size_t i = 0; i < options_count; i++) {
        const struct option_spec *o = &options_table[i];
        if (o->type == OPTION_STRING) {
            char *const *s = options_at_const(src, o->offset);
            char **field = options_at(dst, o->offset);
            if (*s && !(*field = strdup(*s)))
                goto fail;
        } else if (o->type == OPTION_STRING_LIST) {
            char *const *const *list = options_at_const(src, o->offset);
            const size_t *count = options_at_const(src, o->count_offset);
            char ***dlist = options_at(dst, o->offset);
            size_t *dcount = options_at(dst, o->count_offset);
            if (*count == 0)
                continue;
            if (!(*dlist = calloc(*count, sizeof(**dlist))))
                goto fail;
            for (size_t j = 0; j < *count; j++) {
                if (!((*dlist)[j] = strdup((*list)[j])))
                    goto fail;
                /* Count what is there, so config_free releases it. */
                *dcount = j + 1;
            }
        }
    }
    if (src->source_file && !(dst->source_file = strdup(src->source_file)))
        goto fail;
    if (src->pools_count && !(dst->pools = calloc(src->pools_count, sizeof(*dst->pools))))
        goto fail;
    for (size_t i = 0; i < src->pools_count; i++, dst->pools_count = i)
        if (!(dst->pools[i] = strdup(src->pools[i])))
            goto fail;
    return 0;
fail:
    config_free(dst);
    return -1;
}

static unsigned config_saturating_mul(unsigned a, unsigned b)
{
    return b != 0 && a > UINT_MAX / b ? UINT_MAX : a * b;
}

unsigned config_program_processes(const struct config *c)
{
    if (c->program_processes)
        return c->program_processes;
    unsigned n = config_saturating_mul(c->processes, c->threads);
    return n > 1024 ? 1024 : n;
}

void config_finish(struct config *c)
{
    c->limits.fcgi_max_conns = config_saturating_mul(c->processes, c->max_conns);
    c->limits.fcgi_max_reqs = config_saturating_mul(c->processes, c->threads);
}

/* "an integer", "a list", ...: what a libconfig setting is, for "got ...". */
static const char *config_type_name(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a floating-point number";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_ARRAY:
        return "an array";
    case CONFIG_TYPE_LIST:
        return "a list";
    case CONFIG_TYPE_GROUP:
        return "a group";
    default:
        return "nothing";
    }
}

static int config_wrong_type(const struct option_spec *o, const config_setting_t *s, char *err,
                             size_t errlen)
{
    char want[128];
    snprintf(err, errlen, "expected %s, got %s", options_expected(o, want, sizeof(want)),
             config_type_name(s));
    return -1;
}

/*
 * An integer written for an octal mode. libconfig has no octal literals: it
 * reads "chmod = 0660;" as the decimal integer 660, so the decimal digits
 * are taken as the octal ones. A hexadecimal literal (or an octal one, in
 * libconfig versions that have them) is taken as the mode itself.
 */
static int config_mode_integer(const struct option_spec *o, struct config *c,
                               const config_setting_t *s, char *err, size_t errlen)
{
    int64_t v = config_setting_get_int64(s);
    int format = config_setting_get_format(s);
    bool literal = format == CONFIG_FORMAT_HEX;
#ifdef CONFIG_FORMAT_OCT
    literal = literal || format == CONFIG_FORMAT_OCT;
#endif
    if (literal || v < 0)
        return options_set_integer(o, c, v, err, errlen);
    int64_t mode = 0, scale = 1;
    for (int64_t rest = v; rest > 0; rest /= 10, scale *= 8) {
        if (rest % 10 > 7 || scale > (INT64_MAX >> 3)) {
            char want[128];
            snprintf(err, errlen, "expected %s, got %" PRId64,
                     options_expected(o, want, sizeof(want)), v);
            return -1;
        }
        mode += (rest % 10) * scale;
    }
    return options_set_integer(o, c, mode, err, errlen);
}

/* Store setting S into *c as option O. Returns 0, or -1 with the reason in
 * err. */
static int config_apply_value(const struct option_spec *o, struct config *c,
                              const config_setting_t *s, char *err, size_t errlen)
{
    int type = config_setting_type(s);
    switch (o->type) {
    case OPTION_STRING:
        if (type != CONFIG_TYPE_STRING)
            return config_wrong_type(o, s, err, errlen);
        return options_set_text(o, c, config_setting_get_string(s), err, errlen);
    case OPTION_STRING_LIST:
        if (type == CONFIG_TYPE_STRING) {
            options_clear_list(o, c);
            return options_set_text(o, c, config_setting_get_string(s), err, errlen);
        }
        if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
            return config_wrong_type(o, s, err, errlen);
        options_clear_list(o, c);
        /* Messages keep the key's line: libconfig dates an element by the
         * token after it, which may be on the next line. */
        for (int i = 0; i < config_setting_length(s); i++) {
            const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            if (config_setting_type(e) != CONFIG_TYPE_STRING) {
                snprintf(err, errlen, "expected a list of strings, got %s as element %d",
                         config_type_name(e), i + 1);
                return -1;
            }
            if (options_set_text(o, c, config_setting_get_string(e), err, errlen) < 0)
                return -1;
        }
        return 0;
    case OPTION_UINT:
    case OPTION_SIZE:
    case OPTION_MODE:
    case OPTION_DURATION:
        if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) {
            if (o->type == OPTION_MODE)
                return config_mode_integer(o, c, s, err, errlen);
            return options_set_integer(o, c, config_setting_get_int64(s), err, errlen);
        }
        if (type == CONFIG_TYPE_FLOAT)
            return options_set_double(o, c, config_setting_get_float(s), err, errlen);
        /* Sizes ("16M") and modes ("0660") are also written as strings. */
        if (type == CONFIG_TYPE_STRING && (o->type == OPTION_SIZE || o->type == OPTION_MODE))
            return options_set_text(o, c, config_setting_get_string(s), err, errlen);
        return config_wrong_type(o, s, err, errlen);
    case OPTION_BOOL:
        if (type != CONFIG_TYPE_BOOL)
            return config_wrong_type(o, s, err, errlen);
        options_set_bool(o, c, config_setting_get_bool(s) != 0);
        return 0;
    default:
        return config_wrong_type(o, s, err, errlen);
    }
}

/* The file being read, for messages. */
struct config_reader {
    const char *file; /* as given to config_load_file */
    char *dir;        /* its directory (libconfig's include dir), or NULL */
};

/*
 * The name of the file libconfig says NAME came from, as a path the user can
 * open: libconfig reports an included file by its @include name, which is
 * relative to the including file's directory.
 */
static const char *config_source(const struct config_reader *r, const char *name, char *buf,
                                 size_t buflen)
{
    if (!name)
        return r->file;
    if (strcmp(name, r->file) == 0 || name[0] == '/' || !r->dir)
        return name;
    snprintf(buf, buflen, "%s/%s", r->dir, name);
    return buf;
}

/* Apply one setting (top-level, or IN_POOL of a pool's group, where a
 * global-only key is refused); the message names its file, line and key. */
static int config_apply(struct config *c, const config_setting_t *s, const struct config_reader *r,
                        bool in_pool, char *err, size_t errlen)
{
    char path[1024];
    const char *name = config_setting_name(s);
    const char *src = config_source(r, config_setting_source_file(s), path, sizeof(path));
    unsigned line = config_setting_source_line(s);
    const struct option_spec *o = name ? options_by_key(name) : NULL;
    if (!o) {
        const char *near = name ? options_suggest(name, true) : NULL;
        if (near)
            snprintf(err, errlen, "%s:%u: unknown key '%s' (did you mean '%s'?)", src, line, name,
                     near);
        else
            snprintf(err, errlen, "%s:%u: unknown key '%s'", src, line, name ? name : "");
        return -1;
    }
    if (in_pool && o->global) {
        snprintf(err, errlen, "%s:%u: key '%s' is global: give it outside the pools list", src,
                 line, name);
        return -1;
    }
    char why[512];
    if (config_apply_value(o, c, s, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "%s:%u: key '%s': %s", src, line, name, why);
        return -1;
    }
    return 0;
}

/* A pool group's "name" setting, or NULL. */
static const char *config_pool_group_name(const config_setting_t *g)
{
    const config_setting_t *n = config_setting_get_member(g, "name");
    return n && config_setting_type(n) == CONFIG_TYPE_STRING ? config_setting_get_string(n)
                                                             : NULL;
}

/* Check the pools list POOLS: a non-empty list of groups, each with a valid
 * name no other has, and no global-only key (the values themselves are
 * checked when a pool is selected). *PICK gets the group named WANT (NULL:
 * none asked). Returns 0, or -1 with FILE:LINE: ... in err. */
static int config_pools_check(const config_setting_t *pools, const struct config_reader *r,
                              const char *want, const config_setting_t **pick, char *err,
                              size_t errlen)
{
    char path[1024], why[256];
    const char *src = config_source(r, config_setting_source_file(pools), path, sizeof(path));
    int n = config_setting_type(pools) == CONFIG_TYPE_LIST ? config_setting_length(pools) : 0;
    if (n == 0) {
        snprintf(err, errlen, "%s:%u: key 'pools': expected a list of groups ( { name = \"www\";"
                 " ... }, ... ), got %s", src, config_setting_source_line(pools),
                 config_setting_type(pools) == CONFIG_TYPE_LIST ? "an empty list"
                                                                : config_type_name(pools));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(pools, (unsigned)i);
        const char *name = config_pool_group_name(g);
        unsigned line = config_setting_source_line(g);
        src = config_source(r, config_setting_source_file(g), path, sizeof(path));
        if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
            snprintf(err, errlen, "%s:%u: key 'pools': element %d: expected a group { name = "
                     "\"NAME\"; ... }, got %s", src, line, i + 1, config_type_name(g));
            return -1;
        }
        if (!name) {
            snprintf(err, errlen, "%s:%u: key 'pools': pool %d has no name (name = \"NAME\";)",
                     src, line, i + 1);
            return -1;
        }
        if (options_check_pool_name(name, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "%s:%u: key 'name': %s", src, line, why);
            return -1;
        }
        for (int j = 0; j < i; j++) {
            const config_setting_t *o = config_setting_get_elem(pools, (unsigned)j);
            if (strcmp(name, config_pool_group_name(o)) == 0) {
                snprintf(err, errlen, "%s:%u: key 'name': two pools are named '%s' (the other "
                         "at line %u)", src, line, name, config_setting_source_line(o));
                return -1;
            }
        }
        for (int k = 0; k < config_setting_length(g); k++) {
            const config_setting_t *s = config_setting_get_elem(g, (unsigned)k);
            const struct option_spec *o = options_by_key(config_setting_name(s));
            if (o && o->global) {
                snprintf(err, errlen, "%s:%u: key '%s' is global: give it outside the pools list",
                         config_source(r, config_setting_source_file(s), path, sizeof(path)),
                         config_setting_source_line(s), o->key);
                return -1;
            }
        }
        if (want && strcmp(want, name) == 0)
            *pick = g;
    }
    /* A top-level listen would be inherited by every pool: each would bind
     * the same addresses. */
    const config_setting_t *ls = config_setting_get_member(config_setting_parent(pools), "listen");
    if (ls) {
        snprintf(err, errlen,
                 "%s:%u: key 'listen': with a pools list, give each pool its own listen",
                 config_source(r, config_setting_source_file(ls), path, sizeof(path)),
                 config_setting_source_line(ls));
        return -1;
    }
    if (want && !*pick) {
        snprintf(err, errlen, "%s: the pools list has no pool named '%s'", r->file, want);
        return -1;
    }
    return 0;
}

/* After the top-level keys: with PICK (the selected group), its keys over
 * them and the control socket PATH.NAME; without, the pools' names into
 * C->pools. Returns 0, or -1 with the message in err. */
static int config_pools_select(struct config *c, const config_setting_t *pools,
                               const config_setting_t *pick, const struct config_reader *r,
                               char *err, size_t errlen)
{
    if (pick) {
        /* The top-level control (skipped as global) names this pool's. */
        const config_setting_t *root = config_setting_parent(pools);
        const char *ctl = NULL;
        if (config_setting_lookup_string(root, "control", &ctl) == CONFIG_TRUE) {
            char path[256];
            snprintf(path, sizeof(path), "%s.%s", ctl, config_pool_group_name(pick));
            if (options_set_text(options_by_key("control"), c, path, err, errlen) < 0)
                return -1;
        }
        for (int k = 0; k < config_setting_length(pick); k++) {
            const config_setting_t *s = config_setting_get_elem(pick, (unsigned)k);
            if (strcmp(config_setting_name(s), "name") == 0)
                continue;
            if (config_apply(c, s, r, true, err, errlen) < 0)
                return -1;
        }
        return 0;
    }
    int n = config_setting_length(pools);
    if (!(c->pools = calloc((size_t)n, sizeof(*c->pools)))) {
        snprintf(err, errlen, "%s: out of memory", r->file);
        return -1;
    }
    for (int i = 0; i < n; i++, c->pools_count = (size_t)i) {
        const char *name = config_pool_group_name(config_setting_get_elem(pools, (unsigned)i));
        if (!(c->pools[i] = strdup(name))) {
            snprintf(err, errlen, "%s: out of memory", r->file);
            return -1;
        }
    }
    return 0;
}

int config_load_file(struct config *c, const char *file, char *err, size_t errlen)
{
    struct config next;
    if (config_copy(&next, c) < 0) {
        snprintf(err, errlen, "%s: out of memory", file);
        return -1;
    }

    struct config_reader r = {.file = file, .dir = NULL};
    config_t lc;
    config_init(&lc);
    /* Relative @include paths are relative to the file's directory. */
    const char *slash = strrchr(file, '/');
    if (slash) {
        r.dir = strndup(file, slash == file ? 1 : (size_t)(slash - file));
        if (!r.dir) {
            snprintf(err, errlen, "%s: out of memory", file);
            goto fail;
        }
        config_set_include_dir(&lc, r.dir);
    }

    errno = 0;
    if (!config_read_file(&lc, file)) {
        int saved = errno;
        char path[1024];
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            snprintf(err, errlen, "%s: cannot read: %s", file,
                     saved ? strerror(saved) : config_error_text(&lc));
        else
            snprintf(err, errlen, "%s:%d: %s",
                     config_source(&r, config_error_file(&lc), path, sizeof(path)),
                     config_error_line(&lc), config_error_text(&lc));
        goto fail;
    }

    const config_setting_t *root = config_root_setting(&lc);
    const config_setting_t *pools = config_setting_get_member(root, "pools");
    const config_setting_t *pick = NULL;
    if (pools && config_pools_check(pools, &r, next.pool_name, &pick, err, errlen) < 0)
        goto fail;
    for (int i = 0; i < config_setting_length(root); i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const struct option_spec *o = options_by_key(config_setting_name(s));
        if (s == pools || (pick && o && o->global))
            continue;
        if (config_apply(&next, s, &r, false, err, errlen) < 0)
            goto fail;
    }
    if (pools && config_pools_select(&next, pools, pick, &r, err, errlen) < 0)
        goto fail;

    free(next.source_file);
    if (!(next.source_file = strdup(file))) {
        snprintf(err, errlen, "%s: out of memory", file);
        goto fail;
    }
    config_finish(&next);
    config_destroy(&lc);
    free(r.dir);
    config_free(c);
    *c = next;
    return 0;
fail:
    config_destroy(&lc);
    free(r.dir);
    config_free(&next);
    return -1;
}

/* "uwsgi:unix:/a" -> "unix:/a": the address part, for duplicate checks. */
static const char *config_listen_addr(const char *spec)
{
    const char *colon = strchr(spec, ':');
    return colon ? colon + 1 : spec;
}

unsigned config_max_processes(const struct config *c)
{
    if (c->max_processes)
        return c->max_processes;
    unsigned n = c->processes > 4096 / 4 ? 4096 : c->processes * 4;
    return n < 16 ? 16 : n;
}

_Static_assert(POOL_ONDEMAND + 1 == OPTIONS_POOL_MODES, "options_pool_modes names each pool mode");

enum pool_mode config_pool_mode(const struct config *c)
{
    for (size_t i = 0; c->pool && i < OPTIONS_POOL_MODES; i++)
        if (strcmp(c->pool, options_pool_modes[i]) == 0)
            return (enum pool_mode)i;
    return POOL_STATIC;
}

const char *config_pool_mode_name(enum pool_mode mode)
{
    return options_pool_modes[mode];
}

unsigned config_start_processes(const struct config *c)
{
    if (c->start_processes)
        return c->start_processes;
    return c->min_spare + (c->max_spare - c->min_spare) / 2;
}

/* The numbers of a dynamic pool: min_spare <= max_spare <= max_processes,
 * start_processes within [min_spare, max_processes]. */
static int config_validate_dynamic(const struct config *c, char *err, size_t errlen)
{
    unsigned max = config_max_processes(c);
    if (c->min_spare < 1) {
        snprintf(err, errlen, "pool dynamic: min_spare must be at least 1, got 0");
        return -1;
    }
    if (c->min_spare > c->max_spare) {
        snprintf(err, errlen, "pool dynamic: min_spare (%u) is more than max_spare (%u)",
                 c->min_spare, c->max_spare);
        return -1;
    }
    if (c->max_spare > max) {
        snprintf(err, errlen, "pool dynamic: max_spare (%u) is more than max_processes (%u)",
                 c->max_spare, max);
        return -1;
    }
    unsigned start = config_start_processes(c);
    if (start < c->min_spare || start > max) {
        snprintf(err, errlen,
                 "pool dynamic: start_processes (%u) must be from min_spare (%u) to "
                 "max_processes (%u)",
                 start, c->min_spare, max);
        return -1;
    }
    return 0;
}

/* own_gil: WSGI only, a Python with per-interpreter GILs (PEP 684: 3.12+,
 * HAVE_PYTHON_OWN_GIL from configure), and not with preload (the preloaded
 * app lives in the main interpreter, which no own-GIL thread runs). */
static int config_validate_own_gil(const struct config *c, char *err, size_t errlen)
{
#ifndef HAVE_PYTHON_OWN_GIL
    (void)c;
#ifdef HAVE_PYTHON
    snprintf(err, errlen,
             "own_gil: this corral embeds Python %s; interpreters with their own GIL need Python "
             "3.12 or later (PEP 684): rebuild with ./configure --with-python=python3.12 (or "
             "later), or drop own_gil",
             CORRAL_PYTHON_VERSION);
#else
    snprintf(err, errlen, "own_gil: this corral was built without Python (WSGI)");
#endif
    return -1;
#else
    if (c->handler) {
        snprintf(err, errlen,
                 "own_gil applies to WSGI apps (--wsgi, --wsgi-file), not to "
                 "--handler");
        return -1;
    }
    if (c->preload) {
        snprintf(err, errlen,
                 "own_gil and preload: each thread imports the app in its own interpreter, so "
                 "a preloaded app (in the master's main interpreter) would be shared by no "
                 "thread: drop one of the two");
        return -1;
    }
    return 0;
#endif
}

int config_validate(const struct config *c, char *err, size_t errlen)
{
    if (c->listen_count == 0) {
        snprintf(err, errlen,
                 "no listener: give --listen PROTO:ADDR or listen = [...] in the config");
        return -1;
    }
    for (size_t i = 0; i < c->listen_count; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(config_listen_addr(c->listen[i]), config_listen_addr(c->listen[j])) == 0) {
                snprintf(err, errlen, "listeners '%s' and '%s' have the same address", c->listen[j],
                         c->listen[i]);
                return -1;
            }
        }
    }
    int apps = (c->handler != NULL) + (c->wsgi != NULL) + (c->wsgi_file != NULL) +
               (c->fastcgi_program != NULL);
    if (apps == 0 && !c->cgi && !c->asgi) {
        snprintf(err, errlen, "%s", CONFIG_NO_APP);
        return -1;
    }
    if (apps > 1) {
        snprintf(err, errlen, "give only one application: --handler, --wsgi, --wsgi-file or "
                              "--fastcgi-program");
        return -1;
    }
    if (c->cgi && (apps || c->asgi)) {
        snprintf(err, errlen, "give only one application: --cgi excludes --handler, --wsgi, "
                              "--wsgi-file, --fastcgi-program and --asgi");
        return -1;
    }
    if (c->asgi && apps) {
        snprintf(err, errlen, "give only one application: --asgi, or one of --handler, --wsgi, "
                              "--wsgi-file and --fastcgi-program");
        return -1;
    }
    if (c->max_processes && c->max_processes < c->processes) {
        snprintf(err, errlen, "max_processes (%u) is less than processes (%u)", c->max_processes,
                 c->processes);
        return -1;
    }
    if (config_pool_mode(c) == POOL_DYNAMIC && config_validate_dynamic(c, err, errlen) < 0)
        return -1;
    if (c->status_path && c->status_path[0] != '/') {
        snprintf(err, errlen, "status_path must start with '/', got '%s'", c->status_path);
        return -1;
    }
    if (c->health_path && c->health_path[0] != '/') {
        snprintf(err, errlen, "health_path must start with '/', got '%s'", c->health_path);
        return -1;
    }
    if (c->health_path && c->status_path && strcmp(c->health_path, c->status_path) == 0) {
        snprintf(err, errlen, "health_path and status_path are the same path ('%s')",
                 c->health_path);
        return -1;
    }
    if (c->own_gil && config_validate_own_gil(c, err, errlen) < 0)
        return -1;
    if (c->asgi && (c->preload || c->own_gil)) {
        snprintf(err, errlen, "%s applies to WSGI apps, not to --asgi (each worker imports the "
                              "app and runs its event loop)",
                 c->preload ? "preload" : "own_gil");
        return -1;
    }
    if (c->handler && c->virtualenv) {
        snprintf(err, errlen,
                 "virtualenv applies to WSGI apps (--wsgi, --wsgi-file), not to "
                 "--handler");
        return -1;
    }
    return 0;
}

static void config_note(char *note, size_t notelen, const char *key)
{
    if (!note || notelen == 0)
        return;
    size_t used = strlen(note);
    snprintf(note + used, notelen - used, "%s%s", used ? ", " : "", key);
}

int config_keep_fixed(struct config *new, const struct config *old, char *note, size_t notelen)
{
    /* The pool was sized by OLD's effective max_processes; OLD itself is
     * only read, so a shallow copy can carry that value. */
    struct config running = *old;
    running.max_processes = config_max_processes(old);
    if (!new->max_processes)
        new->max_processes = running.max_processes;
    for (size_t i = 0; i < options_count; i++) {
        const struct option_spec *o = &options_table[i];
        if (!o->fixed || options_same_value(o, new, &running))
            continue;
        if (options_copy_value(o, new, &running) < 0)
            return -1;
        config_note(note, notelen, o->key);
    }
    config_finish(new);
    return 0;
}
