/*
 * main.c — corral's entry point: the configuration (config_load), then the
 * listeners and the app, then the master loop; the setup steps in order and
 * one teardown path undoing them in reverse.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apps/app.h"
#include "config/config.h"
#include "config/config_load.h"
#include "os/listen.h"
#include "core/log.h"
#include "master/master.h"
#include "os/pidfile.h"
#include "os/privs.h"
#include "os/rlimit.h"
#include "master/reexec_state.h"
#include "pools/pools.h"

/* --pidfile, locked for the master's life (os/pidfile.c). Returns 0, or -1
 * (logged: the one line names the pidfile and the pid holding it). A
 * re-executed master (RX) takes back the lock the previous image held and
 * goes on whatever happens (its workers serve): a failure is a warning. */
static int main_lock_pidfile(const char *path, const struct reexec_state *rx)
{
    char err[1024];
    if (!rx) {
        if (pidfile_lock(path, err, sizeof(err)) == 0)
            return 0;
        log_msg(LOG_ERROR, "%s: stopping", err);
        return -1;
    }
    /* An image that held no lock (an older build) passes none. */
    if (rx->pidfile_fd >= 0 && pidfile_adopt(rx->pidfile_fd, path, err, sizeof(err)) < 0)
        log_msg(LOG_WARN, "%s; going on without the pidfile's lock", err);
    return 0;
}

static void main_close_listeners(struct listener *ls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        listen_close(&ls[i], true);
}

/* Bind every listener (as root, when started as root): unix sockets get
 * --chmod, then --chown; TCP ones (also inherited) get the --allow-from
 * list ALLOW. */
static int main_open_listeners(const struct config *cfg, struct listener *out,
                               const struct allow_list *allow)
{
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    char err[512], list[512];
    if (cfg->chown && privs_resolve_owner(cfg->chown, &uid, &gid, err, sizeof(err)) < 0) {
        log_msg(LOG_ERROR, "chown: %s", err);
        return -1;
    }
    for (size_t i = 0; i < cfg->listen_count; i++) {
        struct listen_addr addr;
        bool opened = false;
        if (listen_parse(cfg->listen[i], &addr, err, sizeof(err)) < 0 ||
            listen_open(&out[i], &addr, cfg->backlog, cfg->chmod_mode, err, sizeof(err)) < 0 ||
            !(opened = true) ||
            (cfg->chown && listen_chown(&out[i], (long)uid, (long)gid, err, sizeof(err)) < 0)) {
            log_msg(LOG_ERROR, "listener %s: %s", cfg->listen[i], err);
            main_close_listeners(out, i + opened);
            return -1;
        }
        if (out[i].inet) {
            out[i].allow = allow;
            allow_format(allow, list, sizeof(list));
            log_msg(LOG_INFO, "listening on %s (peers allowed: %s)", out[i].name, list);
        } else {
            log_msg(LOG_INFO, "listening on %s", out[i].name);
        }
    }
    return 0;
}

/* A re-executed master (a --preload reload): the listeners of the previous
 * image, as they were configured. */
static int main_adopt_listeners(const struct reexec_state *rx, struct listener *out,
                                const struct allow_list *allow)
{
    char err[512];
    for (size_t i = 0; i < rx->listener_count; i++) {
        const struct reexec_listener *l = &rx->listeners[i];
        if (listen_adopt(&out[i], l->spec, l->fd, l->backlog, l->owns_path, err,
                         sizeof(err)) < 0) {
            log_msg(LOG_ERROR, "listener %s (fd %d) of the previous image: %s", l->spec, l->fd,
                    err);
            return -1;
        }
        if (out[i].inet)
            out[i].allow = allow;
    }
    return 0;
}

/* $CORRAL_CHECK_APP: the child a --preload reload starts to see whether the
 * new code imports (master_reexec.c). Exit status 0 or 1; the traceback on
 * stderr, which is the master's error log. */
static int main_check_app(const struct config *cfg)
{
    struct app app = {0};
    char err[1024];
    if (app_load(&app, cfg, err, sizeof(err)) < 0) {
        log_msg(LOG_ERROR, "import check: %s", err);
        return 1;
    }
    if (cfg->preload && app.ops->preload && app.ops->preload(&app) < 0) {
        log_msg(LOG_ERROR, "import check: the app failed to load (see above)");
        return 1;
    }
    return 0;
}

/* A --preload reload re-executed this master: read what the previous image
 * hands over (once, then out of the environment: the app and the workers
 * must not see it) into *RX, and adopt its log files at once (whatever
 * fails from here on must reach them). *IS_RX tells whether there was any.
 * SPECS gets its listeners' specs, for config_load. Returns 0 or -1 (said
 * on stderr). */
static int main_read_reexec(struct reexec_state *rx, bool *is_rx, char **specs)
{
    char err[1024];
    const char *text = getenv(REEXEC_ENV);
    *is_rx = text != NULL;
    if (!text)
        return 0;
    if (reexec_parse(text, rx, err, sizeof(err)) != REEXEC_PARSE_OK) {
        fprintf(stderr, "corral: $" REEXEC_ENV " is malformed: %s\n", err);
        return -1;
    }
    unsetenv(REEXEC_ENV);
    for (size_t i = 0; i < rx->listener_count; i++)
        specs[i] = rx->listeners[i].spec;
    if (log_adopt(rx->error_log_fd, rx->error_log[0] ? rx->error_log : NULL, rx->access_log_fd,
                  rx->access_log[0] ? rx->access_log : NULL) < 0) {
        fprintf(stderr, "corral: out of memory\n");
        return -1;
    }
    return 0;
}

/* The configuration (config_load); a re-executed master (RX non-NULL, with
 * its listeners' SPECS) keeps what the previous image ran with
 * (reexec_keep_fixed). Errors are said on stderr, and in the log of a
 * re-executed master. */
static enum config_load_result main_load(struct config *cfg, int argc, char **argv,
                                         const struct reexec_state *rx, char *const *specs)
{
    char err[1024];
    enum config_load_result loaded =
        config_load(cfg, argc, argv, specs, rx ? rx->listener_count : 0, err, sizeof(err));
    if (loaded == CONFIG_LOAD_RUN && rx && reexec_keep_fixed(cfg, rx) < 0) {
        fprintf(stderr, "corral: out of memory\n");
        return CONFIG_LOAD_FAIL;
    }
    if (loaded == CONFIG_LOAD_FAIL) {
        fprintf(stderr, "corral: %s\n", err);
        if (rx) /* the previous workers end with this process: say why where it is read */
            log_msg(LOG_ERROR, "re-executed master (--preload reload): the configuration no "
                    "longer loads: %s: stopping", err);
    }
    return loaded;
}

/* --env: set before anything reads the environment (the app's import in
 * the workers inherits it). Returns 0 or -1 (said on stderr). */
static int main_set_env(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->env_count; i++) {
        char *eq = strchr(cfg->env[i], '=');
        *eq = '\0';
        int rc = setenv(cfg->env[i], eq + 1, 1);
        *eq = '=';
        if (rc < 0) {
            fprintf(stderr, "corral: setenv(\"%s\") failed: %s\n", cfg->env[i], strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* -t: the configuration loaded; the app must load too. Exit status. */
static int main_test_config(const struct config *cfg)
{
    struct app app = {0};
    char err[1024];
    if (app_load(&app, cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "corral: %s\n", err);
        return 1;
    }
    printf("corral: the configuration%s%s is valid\n", cfg->source_file ? " in " : "",
           cfg->source_file ? cfg->source_file : "");
    return 0;
}

/* The app, once the privileges are dropped. A re-executed master (RX) goes
 * on whatever happens: the old workers serve on, and a failure strands them
 * rather than stopping corral (START->app_ok says it). Otherwise returns 0,
 * or -1 (logged) when the app does not load, or its --preload import fails:
 * the app starts in the master once the listeners are bound (the front
 * end's connections queue meanwhile) and the logs open (its traceback goes
 * to the error log). */
static int main_load_app(const struct config *cfg, struct app *app, bool rx,
                         struct master_start *start)
{
    char err[1024];
    if (rx) {
        start->app_ok = app_load(app, cfg, err, sizeof(err)) == 0;
        if (!start->app_ok)
            log_msg(LOG_ERROR, "re-executed master: %s", err);
        else if (app->ops->preload && app->ops->preload(app) < 0)
            start->app_ok = false;
        if (!start->app_ok)
            log_msg(LOG_ERROR, "the app failed to load in the re-executed master (--preload)");
        return 0;
    }
    if (app_load(app, cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "corral: %s\n", err);
        if (cfg->error_log)
            log_msg(LOG_ERROR, "%s", err);
        return -1;
    }
    if (cfg->preload && app->ops->preload && app->ops->preload(app) < 0) {
        log_msg(LOG_ERROR, "the app failed to load in the master (--preload): stopping");
        return -1;
    }
    return 0;
}

/*
 * The setup steps in order, then the master loop; every failure leaves
 * through the teardown below it, which undoes the steps done in reverse
 * order. Exit status: 0 after --help, --version, a valid -t or a clean
 * stop; 1 on any failure; the import check's ($CORRAL_CHECK_APP).
 */
int main(int argc, char **argv)
{
    static struct reexec_state rx_state;
    char *rx_specs[REEXEC_MAX_LISTENERS];
    bool is_rx = false;
    struct config cfg;
    struct allow_list allow = {0}, trusted = {0};
    struct listener *listeners = NULL;
    size_t listening = 0; /* listeners main still has to close */
    struct app app = {0};
    /* Where corral started: a --preload reload re-executes from here (the
     * command line may name files relative to it; the preload may chdir). */
    struct master_start start = {.cwd_fd = -1, .app_ok = true};
    char err[1024];
    int status = 1;

    signal(SIGPIPE, SIG_IGN); /* a front end that went away is an error return */
    config_defaults(&cfg);
    if (main_read_reexec(&rx_state, &is_rx, rx_specs) < 0)
        goto out;
    const struct reexec_state *rx = is_rx ? &rx_state : NULL;
    bool check_app = getenv(REEXEC_CHECK_ENV) != NULL;
    unsetenv(REEXEC_CHECK_ENV);
    enum config_load_result loaded = main_load(&cfg, argc, argv, rx, rx_specs);
    if (loaded == CONFIG_LOAD_DONE)
        status = 0;
    /* A file with a pools list: the top master runs each pool's master. */
    if (loaded == CONFIG_LOAD_POOLS || (loaded == CONFIG_LOAD_CHECK && cfg.pools_count)) {
        status = pools_main(&cfg, argc, argv, loaded == CONFIG_LOAD_CHECK);
        goto out;
    }
    if (cfg.pool_name)
        log_set_pool(cfg.pool_name);
    if (loaded == CONFIG_LOAD_DONE || loaded == CONFIG_LOAD_FAIL || main_set_env(&cfg) < 0)
        goto out;
    if (check_app && loaded == CONFIG_LOAD_RUN) {
        log_open(NULL, NULL);
        status = main_check_app(&cfg);
        goto out;
    }
    if (loaded == CONFIG_LOAD_CHECK) {
        status = main_test_config(&cfg);
        goto out;
    }
    if (allow_list_init(&allow, cfg.allow_from, cfg.allow_from_count, err, sizeof(err)) < 0) {
        fprintf(stderr, "corral: allow_from: %s\n", err);
        goto out;
    }
    if (!rx && log_open(cfg.error_log, cfg.access_log) < 0)
        goto out;
    rlimit_raise_nofile(cfg.max_conns, cfg.listen_count); /* the workers inherit it */
    /* Before the listeners: a second server on the same pidfile stops here,
     * before it binds anything. */
    if (cfg.pidfile && main_lock_pidfile(cfg.pidfile, rx) < 0)
        goto out;

    /* As root: bind and create the socket files (the logs and the pidfile
     * are open already); then drop to --uid/--gid before any app code (the
     * handler's dlopen, a --preload import) runs and before any worker is
     * forked. */
    listeners = calloc(cfg.listen_count, sizeof(*listeners));
    if (!listeners || (rx ? main_adopt_listeners(rx, listeners, &allow)
                          : main_open_listeners(&cfg, listeners, &allow)) < 0)
        goto remove_pidfile;
    listening = cfg.listen_count;
    /* --trusted-proxies: for every listener (only http ones read it). */
    if (cfg.trusted_proxies_count) {
        if (allow_list_init(&trusted, cfg.trusted_proxies, cfg.trusted_proxies_count, err,
                            sizeof(err)) < 0) {
            log_msg(LOG_ERROR, "trusted_proxies: %s", err);
            goto close_listeners;
        }
        for (size_t i = 0; i < cfg.listen_count; i++)
            listeners[i].trusted = &trusted;
    }
    start.cwd_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (start.cwd_fd < 0)
        log_msg(LOG_WARN, "open(\".\") failed: %s; a --preload reload re-executes corral "
                "from the app's directory", strerror(errno));
    if (privs_drop(cfg.uid, cfg.gid, err, sizeof(err)) < 0) {
        log_msg(LOG_ERROR, "dropping privileges: %s: stopping", err);
        goto close_listeners;
    }
    if (cfg.uid || cfg.gid)
        log_msg(LOG_INFO, "running as uid %u, gid %u", (unsigned)getuid(), (unsigned)getgid());
    if (main_load_app(&cfg, &app, rx != NULL, &start) < 0)
        goto close_listeners;
    start.rx = rx;
    start.preloads = cfg.preload && (!app.ops || app.ops->preload);
    status = master_run(&cfg, listeners, cfg.listen_count, &app, argc, argv, &start);
    listening = 0; /* the master closed them */

close_listeners:
    if (start.cwd_fd >= 0)
        close(start.cwd_fd);
    main_close_listeners(listeners, listening);
remove_pidfile:
    if (cfg.pidfile)
        pidfile_remove(cfg.pidfile); /* only if we hold its lock */
out:
    free(listeners);
    allow_list_free(&allow);
    allow_list_free(&trusted);
    log_close();
    config_free(&cfg);
    return status;
}
