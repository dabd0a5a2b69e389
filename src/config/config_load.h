/*
 * config_load.h — the one sequence that turns the command line into a
 * configuration to run, at start and again on every reload.
 *
 * Start (main.c) and reload (master_reload.c) both call config_load; a
 * reload then calls config_keep_fixed (config.h), and a re-executed master
 * reexec_keep_fixed (reexec_state.c), which calls it too.
 */
#ifndef CORRAL_CONFIG_LOAD_H
#define CORRAL_CONFIG_LOAD_H

#include <stddef.h>

struct config;

enum config_load_result {
    CONFIG_LOAD_RUN,   /* *c is valid: serve it */
    CONFIG_LOAD_CHECK, /* -t: *c is valid; report and exit */
    CONFIG_LOAD_DONE,  /* --help or --version was printed to stdout: exit 0 */
    CONFIG_LOAD_FAIL,  /* err holds the message */
    CONFIG_LOAD_POOLS, /* the file has a pools list and no --pool-name picked one: *c is the
                          top master's (c->pools; -t: CONFIG_LOAD_CHECK with c->pools_count) */
};

/*
 * Fill *c (uninitialised on entry) from ARGV: defaults (config_defaults),
 * the command line and its -c file (cli_parse), then the listeners on
 * inherited descriptors, then config_validate, then privs_check_plan (a
 * configuration -t passes is not refused at start, and a reload refuses a
 * --uid/--gid the running master could no longer switch to).
 *
 * Inherited descriptors: at start, the sockets systemd passed
 * (config_take_activated).
 * INHERIT (INHERIT_COUNT specs, NULL at a plain start) are the listeners of
 * the running server: each "PROTO:fd:N" among them that *c does not name
 * is appended first, so that a socket-activated server reloads with the
 * same listeners, although the variables are gone by then.
 *
 * A file with a pools list read without --pool-name is not validated as a
 * pool (each pool is, when it is loaded with --pool-name NAME).
 *
 * The outcome is one of the above; *c is always safe to config_free (and
 * must be freed, whatever the outcome). Not thread-safe (cli_parse).
 */
enum config_load_result config_load(struct config *c, int argc, char **argv,
                                     char *const *inherit, size_t inherit_count, char *err,
                                     size_t errlen);

/*
 * Socket activation: append to c->listen each socket systemd passed, as
 * "PROTO:fd:N", unless the list already names fd:N (systemd_listen_fds,
 * which removes its variables from the environment: a second call takes
 * nothing). Returns the number appended, or -1 with a message in err.
 */
int config_take_activated(struct config *c, char *err, size_t errlen);

#endif
