/*
 * cli.h — the command line, applied over the configuration file.
 *
 * Flags come from the option table (options.c): every option with a config
 * key has a flag of the same name with '-' for '_' (--max-conns is
 * max_conns); -c/--config, -t/--test-config, --help and --version exist
 * only on the command line.
 */
#ifndef CORRAL_CLI_H
#define CORRAL_CLI_H

#include <stddef.h>
#include <stdio.h>

struct config;

enum cli_action {
    CLI_RUN,   /* *c is ready: validate it, then serve */
    CLI_CHECK, /* -t: validate *c, report, exit */
    CLI_DONE,  /* --help or --version was printed to stdout: exit 0 */
    CLI_FAIL,  /* err holds the message: exit with an error */
};

/*
 * Parse argv into *c (already config_defaults'ed). -c/--config FILE is loaded
 * first wherever it appears (given twice is an error), then every other
 * option overrides the file: the command line wins, and the first --listen
 * replaces the file's listen list (more --listen flags add to it). --help
 * prints usage and --version "corral VERSION" to stdout → CLI_DONE, before
 * anything is loaded. -t/--test-config → CLI_CHECK. Errors → one message in
 * err (no trailing newline) and CLI_FAIL; *c may then be partly updated but
 * stays valid for config_free. On CLI_RUN/CLI_CHECK config_finish has run;
 * config_validate has not.
 *
 * getopt_long permutes argv and uses global state (optind, opterr): not
 * thread-safe, but it can be called again, e.g. with the same saved argv on
 * a reload to rebuild the configuration.
 */
enum cli_action cli_parse(int argc, char **argv, struct config *c, char *err, size_t errlen);

/* The --help text, generated from the option table: grouped, with the
 * defaults of config_defaults. */
void cli_usage(FILE *out);

#endif
