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

#include "app.h"
#include "cli.h"
#include "config.h"
#include "listen.h"
#include "log.h"
#include "master.h"
#include "privs.h"
#include "systemd.h"

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

int main(int argc, char **argv)
{
    struct config cfg;
    char err[1024];
    int status = 1;

    signal(SIGPIPE, SIG_IGN); /* a front end that went away is an error return */
    config_init(&cfg);
    enum cli_action action = cli_parse(argc, argv, &cfg, err, sizeof(err));
    if (action == CLI_DONE) {
        config_free(&cfg);
        return 0;
    }
    /* Sockets passed by systemd become fd:N listeners before validation
     * (a socket-activated corral may have no --listen). -t checks the
     * user plan too: a config that -t passes must not be refused at start. */
    if (action == CLI_FAIL || systemd_listen_fds(&cfg, err, sizeof(err)) < 0 ||
        config_validate(&cfg, err, sizeof(err)) < 0 ||
        privs_check_plan(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "corral: %s\n", err);
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
    if (log_open(cfg.error_log, cfg.access_log) < 0) {
        allow_list_free(&allow);
        config_free(&cfg);
        return 1;
    }

    /* As root: bind, create the socket files, the pidfile and the logs;
     * then drop to --uid/--gid before any app code (the handler's dlopen,
     * a --preload import) runs and before any worker is forked. */
    struct listener *listeners = calloc(cfg.listen_count, sizeof(*listeners));
    if (!listeners || main_open_listeners(&cfg, listeners, &allow) < 0)
        goto out;
    if (cfg.pidfile && main_write_pidfile(cfg.pidfile) < 0) {
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
    if (app_load(&app, &cfg, err, sizeof(err)) < 0) {
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
    if (cfg.preload && app.ops->preload && app.ops->preload(&app) < 0) {
        log_msg(LOG_ERROR, "the app failed to load in the master (--preload): stopping");
        main_close_listeners(listeners, cfg.listen_count);
        if (cfg.pidfile)
            main_remove_pidfile(cfg.pidfile);
        goto out;
    }
    status = master_run(&cfg, listeners, cfg.listen_count, &app, argc, argv);
    if (cfg.pidfile)
        main_remove_pidfile(cfg.pidfile);
out:
    free(listeners);
    allow_list_free(&allow);
    log_close();
    config_free(&cfg);
    return status;
}
