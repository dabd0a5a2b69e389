/*
 * main.c — corral's entry point: command line and configuration, then the
 * listeners and the app, then the master loop.
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
#include "config/cli.h"
#include "config/config.h"
#include "os/listen.h"
#include "core/log.h"
#include "master/master.h"
#include "os/privs.h"
#include "master/reexec_state.h"
#include "os/systemd.h"

static int main_write_pidfile(const char *path)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, buf, (size_t)n) != n) {
        log_msg(LOG_ERROR, "writing the pidfile \"%s\" failed: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Remove the pidfile only if it still names us: a newer server may have
 * taken the path over while we were stopping. */
static void main_remove_pidfile(const char *path)
{
    char buf[32] = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n > 0 && atoi(buf) == (int)getpid() && unlink(path) < 0)
        log_msg(LOG_WARN, "could not remove the pidfile %s: %s (uid %u)", path, strerror(errno),
                (unsigned)geteuid());
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

int main(int argc, char **argv)
{
    struct config cfg;
    char err[1024];
    int status = 1;

    signal(SIGPIPE, SIG_IGN); /* a front end that went away is an error return */
    config_defaults(&cfg);
    /* A --preload reload re-executed this master: what the previous image
     * hands over. Read once, then out of the environment (the app and the
     * workers must not see it). */
    static struct reexec_state rx_state;
    const struct reexec_state *rx = NULL;
    const char *rx_text = getenv(REEXEC_ENV);
    if (rx_text) {
        if (reexec_parse(rx_text, &rx_state, err, sizeof(err)) != REEXEC_PARSE_OK) {
            fprintf(stderr, "corral: $" REEXEC_ENV " is malformed: %s\n", err);
            return 1;
        }
        rx = &rx_state;
        unsetenv(REEXEC_ENV);
        /* The log files of the previous image, at once: whatever fails from
         * here on must reach them. */
        if (log_adopt(rx->error_log_fd, rx->error_log[0] ? rx->error_log : NULL,
                      rx->access_log_fd, rx->access_log[0] ? rx->access_log : NULL) < 0) {
            fprintf(stderr, "corral: out of memory\n");
            return 1;
        }
    }
    bool check_app = getenv(REEXEC_CHECK_ENV) != NULL;
    unsetenv(REEXEC_CHECK_ENV);
    enum cli_action action = cli_parse(argc, argv, &cfg, err, sizeof(err));
    if (action == CLI_DONE) {
        config_free(&cfg);
        return 0;
    }
    /* Sockets passed by systemd become fd:N listeners before validation
     * (a socket-activated corral may have no --listen). -t checks the
     * user plan too: a config that -t passes must not be refused at start. */
    if (action == CLI_RUN && rx && reexec_keep_fixed(&cfg, rx) < 0) {
        fprintf(stderr, "corral: out of memory\n");
        config_free(&cfg);
        return 1;
    }
    if (action == CLI_FAIL || systemd_listen_fds(&cfg, err, sizeof(err)) < 0 ||
        config_validate(&cfg, err, sizeof(err)) < 0 ||
        privs_check_plan(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "corral: %s\n", err);
        if (rx) /* the previous workers end with this process: say why where it is read */
            log_msg(LOG_ERROR, "re-executed master (--preload reload): the configuration no "
                    "longer loads: %s: stopping", err);
        config_free(&cfg);
        return 1;
    }

    /* --env: set before anything reads the environment (the app's import
     * in the workers inherits it). */
    for (size_t i = 0; i < cfg.env_count; i++) {
        char *eq = strchr(cfg.env[i], '=');
        *eq = '\0';
        int rc = setenv(cfg.env[i], eq + 1, 1);
        *eq = '=';
        if (rc < 0) {
            fprintf(stderr, "corral: setenv(\"%s\") failed: %s\n", cfg.env[i], strerror(errno));
            config_free(&cfg);
            return 1;
        }
    }

    if (check_app && action == CLI_RUN) {
        log_open(NULL, NULL);
        status = main_check_app(&cfg);
        config_free(&cfg);
        return status;
    }

    struct app app = {0};
    if (action == CLI_CHECK) {
        if (app_load(&app, &cfg, err, sizeof(err)) < 0) {
            fprintf(stderr, "corral: %s\n", err);
            config_free(&cfg);
            return 1;
        }
        printf("corral: the configuration%s%s is valid\n", cfg.source_file ? " in " : "",
               cfg.source_file ? cfg.source_file : "");
        config_free(&cfg);
        return 0;
    }
    struct allow_list allow = {0};
    if (allow_list_init(&allow, cfg.allow_from, cfg.allow_from_count, err, sizeof(err)) < 0) {
        fprintf(stderr, "corral: allow_from: %s\n", err);
        config_free(&cfg);
        return 1;
    }
    if (!rx && log_open(cfg.error_log, cfg.access_log) < 0) {
        allow_list_free(&allow);
        config_free(&cfg);
        return 1;
    }

    /* As root: bind, create the socket files, the pidfile and the logs;
     * then drop to --uid/--gid before any app code (the handler's dlopen,
     * a --preload import) runs and before any worker is forked. */
    struct listener *listeners = calloc(cfg.listen_count, sizeof(*listeners));
    if (!listeners || (rx ? main_adopt_listeners(rx, listeners, &allow)
                          : main_open_listeners(&cfg, listeners, &allow)) < 0)
        goto out;
    /* Where corral started: a --preload reload re-executes from here (the
     * command line may name files relative to it; the preload may chdir). */
    struct master_start start = {.cwd_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC),
                                 .rx = rx, .app_ok = true};
    if (start.cwd_fd < 0)
        log_msg(LOG_WARN, "open(\".\") failed: %s; a --preload reload re-executes corral "
                "from the app's directory", strerror(errno));
    if (cfg.pidfile && !rx && main_write_pidfile(cfg.pidfile) < 0) {
        main_close_listeners(listeners, cfg.listen_count);
        goto out;
    }
    if (privs_drop(&cfg, err, sizeof(err)) < 0) {
        log_msg(LOG_ERROR, "dropping privileges: %s: stopping", err);
        main_close_listeners(listeners, cfg.listen_count);
        if (cfg.pidfile)
            main_remove_pidfile(cfg.pidfile);
        goto out;
    }
    if (cfg.uid || cfg.gid)
        log_msg(LOG_INFO, "running as uid %u, gid %u", (unsigned)getuid(), (unsigned)getgid());
    if (rx) {
        /* The old workers serve on whatever happens to the new import: a
         * failure here strands them rather than stopping corral. */
        start.app_ok = app_load(&app, &cfg, err, sizeof(err)) == 0;
        if (!start.app_ok)
            log_msg(LOG_ERROR, "re-executed master: %s", err);
        else if (app.ops->preload && app.ops->preload(&app) < 0)
            start.app_ok = false;
        if (!start.app_ok)
            log_msg(LOG_ERROR, "the app failed to load in the re-executed master (--preload)");
    } else if (app_load(&app, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "corral: %s\n", err);
        if (cfg.error_log)
            log_msg(LOG_ERROR, "%s", err);
        main_close_listeners(listeners, cfg.listen_count);
        if (cfg.pidfile)
            main_remove_pidfile(cfg.pidfile);
        goto out;
    }
    /* --preload: the app starts in the master once the listeners are bound
     * (the front end's connections queue meanwhile) and the logs open (its
     * traceback goes to the error log). */
    if (!rx && cfg.preload && app.ops->preload && app.ops->preload(&app) < 0) {
        log_msg(LOG_ERROR, "the app failed to load in the master (--preload): stopping");
        main_close_listeners(listeners, cfg.listen_count);
        if (cfg.pidfile)
            main_remove_pidfile(cfg.pidfile);
        goto out;
    }
    start.preloads = cfg.preload && (!app.ops || app.ops->preload);
    status = master_run(&cfg, listeners, cfg.listen_count, &app, argc, argv, &start);
    if (start.cwd_fd >= 0)
        close(start.cwd_fd);
    if (cfg.pidfile)
        main_remove_pidfile(cfg.pidfile);
out:
    free(listeners);
    allow_list_free(&allow);
    log_close();
    config_free(&cfg);
    return status;
}
