/*
 * config_load.c — the configuration load sequence of start and reload (see
 * config_load.h).
 */
#include "config_load.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "options.h"
#include "os/privs.h"
#include "os/systemd.h"

/* Whether C's listeners name descriptor FD ("PROTO:fd:FD"), given as the
 * suffix ":fd:FD". */
static bool config_load_names_fd(const struct config *c, const char *suffix)
{
    size_t slen = strlen(suffix);
    for (size_t i = 0; i < c->listen_count; i++) {
        size_t len = strlen(c->listen[i]);
        if (len >= slen && strcmp(c->listen[i] + len - slen, suffix) == 0)
            return true;
    }
    return false;
}

/* Append to C each "PROTO:fd:N" of INHERIT that C does not name. */
static int config_load_inherit(struct config *c, char *const *inherit, size_t count, char *err,
                               size_t errlen)
{
    const struct option_spec *listen = options_by_key("listen");
    for (size_t i = 0; i < count; i++) {
        const char *fd = strstr(inherit[i], ":fd:");
        char why[256];
        if (!fd || config_load_names_fd(c, fd))
            continue;
        if (options_set_text(listen, c, inherit[i], why, sizeof(why)) < 0) {
            snprintf(err, errlen, "inherited listener %s: %s", inherit[i], why);
            return -1;
        }
    }
    return 0;
}

/* systemd_take_fn: append SPEC ("PROTO:fd:N") to the listeners of the
 * config CTX unless they name that descriptor already. */
static int config_load_take(void *ctx, const char *spec, char *err, size_t errlen)
{
    struct config *c = ctx;
    if (config_load_names_fd(c, strstr(spec, ":fd:")))
        return 0;
    if (options_set_text(options_by_key("listen"), c, spec, err, errlen) < 0)
        return -1;
    return 1;
}

int config_take_activated(struct config *c, char *err, size_t errlen)
{
    return systemd_listen_fds(config_load_take, c, err, errlen);
}

enum config_load_result config_load(struct config *c, int argc, char **argv, char *const *inherit,
                                    size_t inherit_count, char *err, size_t errlen)
{
    config_defaults(c);
    enum cli_action action = cli_parse(argc, argv, c, err, errlen);
    if (action == CLI_DONE)
        return CONFIG_LOAD_DONE;
    if (action != CLI_FAIL && c->pools_count)
        return action == CLI_CHECK ? CONFIG_LOAD_CHECK : CONFIG_LOAD_POOLS;
    /* Inherited sockets become fd:N listeners before validation: a
     * socket-activated corral may have no --listen. */
    if (action == CLI_FAIL || config_load_inherit(c, inherit, inherit_count, err, errlen) < 0 ||
        config_take_activated(c, err, errlen) < 0 || config_validate(c, err, errlen) < 0 ||
        privs_check_plan(c->uid, c->gid, c->allow_root, err, errlen) < 0)
        return CONFIG_LOAD_FAIL;
    return action == CLI_CHECK ? CONFIG_LOAD_CHECK : CONFIG_LOAD_RUN;
}
