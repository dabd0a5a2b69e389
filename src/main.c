/*
 * main.c — corral's entry point: command line and configuration, then the
 * listeners and the app, then the master loop.
 */
#include <errno.h>
#include <fcntl.h>
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
    if (n > 0 && atoi(buf) == (int)getpid())
        unlink(path);
}

static int main_open_listeners(const struct config *cfg, struct listener *out)
{
    for (size_t i = 0; i < cfg->listen_count; i++) {
        char err[512];
        struct listen_addr addr;
        if (listen_parse(cfg->listen[i], &addr, err, sizeof(err)) < 0 ||
            listen_open(&out[i], &addr, cfg->backlog, cfg->chmod_mode, err, sizeof(err)) < 0) {
            log_msg(LOG_ERROR, "listener %s: %s", cfg->listen[i], err);
            while (i-- > 0)
                listen_close(&out[i], true);
            return -1;
        }
        log_msg(LOG_INFO, "listening on %s", out[i].name);
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
    if (action == CLI_FAIL || config_validate(&cfg, err, sizeof(err)) < 0) {
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
    if (app_load(&app, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "corral: %s\n", err);
        config_free(&cfg);
        return 1;
    }
    if (action == CLI_CHECK) {
        printf("corral: the configuration%s%s is valid\n", cfg.source_file ? " in " : "",
               cfg.source_file ? cfg.source_file : "");
        config_free(&cfg);
        return 0;
    }
    if (log_open(cfg.error_log, cfg.access_log) < 0) {
        config_free(&cfg);
        return 1;
    }

    struct listener *listeners = calloc(cfg.listen_count, sizeof(*listeners));
    if (!listeners || main_open_listeners(&cfg, listeners) < 0)
        goto out;
    if (cfg.pidfile && main_write_pidfile(cfg.pidfile) < 0) {
        for (size_t i = 0; i < cfg.listen_count; i++)
            listen_close(&listeners[i], true);
        goto out;
    }
    /* --preload: the app starts in the master once the listeners are bound
     * (the front end's connections queue meanwhile) and the logs open (its
     * traceback goes to the error log). */
    if (cfg.preload && app.ops->preload && app.ops->preload(&app) < 0) {
        log_msg(LOG_ERROR, "the app failed to load in the master (--preload): stopping");
        for (size_t i = 0; i < cfg.listen_count; i++)
            listen_close(&listeners[i], true);
        if (cfg.pidfile)
            main_remove_pidfile(cfg.pidfile);
        goto out;
    }
    status = master_run(&cfg, listeners, cfg.listen_count, &app, argc, argv);
    if (cfg.pidfile)
        main_remove_pidfile(cfg.pidfile);
out:
    free(listeners);
    log_close();
    config_free(&cfg);
    return status;
}
