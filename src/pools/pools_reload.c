/*
 * pools_reload.c — a pool's configuration, adding and forgetting pools, and
 * the diff a reload of the top master makes (see pools_state.h).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_load.h"
#include "config/options.h"
#include "core/log.h"
#include "pools_state.h"

int pools_load_pool(const struct pools *ps, const char *name, struct config *cfg, char *err,
                    size_t errlen)
{
    char *argv[] = {ps->argv[0], "-c", ps->file, "--pool-name", (char *)name, NULL};
    enum config_load_result r = config_load(cfg, 5, argv, NULL, 0, err, errlen);
    if (r == CONFIG_LOAD_RUN)
        return 0;
    if (r != CONFIG_LOAD_FAIL)
        snprintf(err, errlen, "the pool's configuration does not ask to serve");
    return -1;
}

void pools_start(struct pools *ps, struct pool *p)
{
    char err[1024];
    if (!p->nls && pools_bind(p, err, sizeof(err)) < 0) {
        log_msg(LOG_ERROR, "pool %s: not started: %s", p->name, err);
        p->state = POOLS_FAILED;
        return;
    }
    if (pools_spawn(ps, p, err, sizeof(err)) < 0) {
        log_msg(LOG_ERROR, "pool %s: not started: %s", p->name, err);
        p->state = POOLS_FAILED;
    }
}

struct pool *pools_add(struct pools *ps, const char *name)
{
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? 2 * ps->cap : 8;
        struct pool *grown = realloc(ps->p, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        ps->p = grown;
        ps->cap = cap;
    }
    struct pool *p = &ps->p[ps->n];
    memset(p, 0, sizeof(*p));
    config_defaults(&p->cfg);
    if (!(p->name = strdup(name)))
        return NULL;
    ps->n++;
    char err[1024];
    if (pools_load_pool(ps, name, &p->cfg, err, sizeof(err)) < 0) {
        log_msg(LOG_ERROR, "pool %s: not started: %s", name, err);
        p->state = POOLS_FAILED;
        return p;
    }
    p->cfg_ok = true;
    pools_start(ps, p);
    return p;
}

void pools_forget(struct pools *ps, size_t i)
{
    struct pool *p = &ps->p[i];
    pools_unbind(p);
    config_free(&p->cfg);
    free(p->name);
    memmove(p, p + 1, (ps->n - i - 1) * sizeof(*p));
    ps->n--;
}

/* The pool named NAME that is not on its way out, or NULL. */
static struct pool *pools_find(struct pools *ps, const char *name)
{
    for (size_t i = 0; i < ps->n; i++)
        if (!ps->p[i].removed && strcmp(ps->p[i].name, name) == 0)
            return &ps->p[i];
    return NULL;
}

/* Whether A and B hold the same value for every key of KEYS (NULL: every
 * key of the table). */
static bool pools_same(const struct config *a, const struct config *b, const char *const *keys)
{
    if (keys) {
        for (; *keys; keys++)
            if (!options_same_value(options_by_key(*keys), a, b))
                return false;
        return true;
    }
    for (size_t i = 0; i < options_count; i++)
        if (options_table[i].key && !options_same_value(&options_table[i], a, b))
            return false;
    return true;
}

/* The keys a running master cannot take over by a reload of its own: the
 * top master binds them. */
static const char *const pools_listen_keys[] = {"listen", "chmod", "chown", "backlog", NULL};

/* Whether A and B agree on what a pool master's own reload cannot change:
 * the rows read at start only, and its user and group (it dropped to them). */
static bool pools_same_start(const struct config *a, const struct config *b)
{
    static const char *const ids[] = {"uid", "gid", NULL};
    for (size_t i = 0; i < options_count; i++)
        if (options_table[i].key && options_table[i].fixed &&
            !options_same_value(&options_table[i], a, b))
            return false;
    return pools_same(a, b, ids);
}

/* Pool P is in the file still, with NC (loaded; taken over or freed). */
static void pools_update(struct pools *ps, struct pool *p, struct config *nc)
{
    if (p->cfg_ok && pools_same(&p->cfg, nc, NULL)) {
        config_free(nc);
        if (p->state == POOLS_FAILED) {
            log_msg(LOG_INFO, "pool %s: failed before: starting again", p->name);
            p->failures = 0;
            pools_start(ps, p);
        }
        return; /* untouched */
    }
    bool moved = !p->cfg_ok || !pools_same(&p->cfg, nc, pools_listen_keys);
    bool restart = moved || !pools_same_start(&p->cfg, nc);
    config_free(&p->cfg);
    p->cfg = *nc;
    p->cfg_ok = true;
    p->failures = 0;
    if (moved)
        pools_unbind(p); /* bound again, to the new addresses, by pools_start */
    if (p->pid == 0) {
        log_msg(LOG_INFO, "pool %s: changed: starting", p->name);
        p->restart = false;
        pools_start(ps, p);
    } else if (restart) {
        /* Unmoved listeners stay open here: connections wait in their
         * queues for the new master instead of being refused. */
        log_msg(LOG_INFO,
                "pool %s: %s changed: stopping its master (pid %d) gracefully, then "
                "starting a new one",
                p->name, moved ? "its listeners" : "a key read at start only (or uid, gid)",
                (int)p->pid);
        p->restart = true;
        p->state = POOLS_STOPPING;
        pools_signal(p, SIGTERM);
    } else {
        log_msg(LOG_INFO, "pool %s: changed: reloading its master (pid %d)", p->name, (int)p->pid);
        pools_signal(p, SIGHUP);
    }
}

void pools_reload(struct pools *ps)
{
    struct config top;
    char err[1024];
    enum config_load_result r = config_load(&top, ps->argc, ps->argv, NULL, 0, err, sizeof(err));
    if (r != CONFIG_LOAD_POOLS) {
        if (r != CONFIG_LOAD_FAIL)
            snprintf(err, sizeof(err), "%s no longer has a pools list", ps->file);
        log_msg(LOG_ERROR, "reload refused: %s: every pool is left as it is", err);
        config_free(&top);
        return;
    }
    log_msg(LOG_INFO, "reload: %s read again: %zu pools", ps->file, top.pools_count);
    char note[512] = "";
    for (size_t i = 0; i < options_count; i++) {
        const struct option_spec *o = &options_table[i];
        if (o->global && o->key && !options_same_value(o, &top, ps->top)) {
            size_t used = strlen(note);
            snprintf(note + used, sizeof(note) - used, "%s%s", used ? ", " : "", o->key);
        }
    }
    if (note[0])
        log_msg(LOG_WARN, "reload: %s changed: kept as at start (restart corral to change it)",
                note);
    for (size_t i = 0; i < ps->n; i++) {
        struct pool *p = &ps->p[i];
        bool kept = false;
        for (size_t j = 0; j < top.pools_count && !kept; j++)
            kept = strcmp(top.pools[j], p->name) == 0;
        if (kept || p->removed)
            continue;
        p->removed = true;
        pools_unbind(p); /* no new connection reaches it; its master drains its own */
        if (p->pid == 0) {
            log_msg(LOG_INFO, "pool %s: removed from the file", p->name);
            pools_forget(ps, i--);
            continue;
        }
        log_msg(LOG_INFO,
                "pool %s: removed from the file: stopping its master (pid %d) "
                "gracefully",
                p->name, (int)p->pid);
        p->state = POOLS_STOPPING;
        pools_signal(p, SIGTERM);
    }
    for (size_t j = 0; j < top.pools_count; j++) {
        struct pool *p = pools_find(ps, top.pools[j]);
        if (!p) {
            log_msg(LOG_INFO, "pool %s: added to the file: starting", top.pools[j]);
            if (!pools_add(ps, top.pools[j]))
                log_msg(LOG_ERROR, "pool %s: out of memory", top.pools[j]);
            continue;
        }
        struct config nc;
        if (pools_load_pool(ps, p->name, &nc, err, sizeof(err)) < 0) {
            log_msg(LOG_ERROR, "pool %s: reload refused: %s: left as it is", p->name, err);
            config_free(&nc);
            continue;
        }
        pools_update(ps, p, &nc);
    }
    config_free(&top);
}
