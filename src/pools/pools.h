/*
 * pools.h — the top master of a config file with a pools list: it runs each
 * named pool as its own master (corral -c FILE --pool-name NAME, today's
 * master, unchanged), binds every pool's listeners itself and hands them
 * over as inherited descriptors, supervises the masters (respawn with
 * back-off; a pool that fails is named in the log and the others serve),
 * forwards the stop signals, and on SIGHUP (or `reload` on its control
 * socket) reads the file again and diffs the pools by name.
 */
#ifndef CORRAL_POOLS_H
#define CORRAL_POOLS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "master/control.h"

/*
 * TOP is the file's configuration as config_load returned it
 * (CONFIG_LOAD_POOLS, or CONFIG_LOAD_CHECK for -t: TOP->pools_count > 0);
 * ARGC/ARGV the command line (-c FILE, and -t). With CHECK, loads every
 * pool's configuration and says whether each is valid. Otherwise runs the
 * pools until a stop. Returns the exit status: 0 after a stop or a valid
 * -t; 1 when no pool ever started, a setup step failed, or -t found an
 * error.
 */
int pools_main(const struct config *top, int argc, char **argv, bool check);

/* The top master's control commands (pools_cmd.c): status, reload, stop,
 * quit, reopen-logs, help; their owner is the struct pools. */
extern const struct control_command pools_commands[];
extern const size_t pools_command_count;

#endif
