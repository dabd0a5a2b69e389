/*
 * cli.c — getopt_long over the option table (see cli.h).
 *
 * Two passes over argv: the first finds -c, -t, --help and --version and
 * reports malformed flags; the second, after the file is loaded, applies
 * every other flag over it.
 */
#include "cli.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "options.h"

#ifdef PACKAGE_VERSION
#define CLI_VERSION PACKAGE_VERSION
#else
#define CLI_VERSION "0.1.0"
#endif

/* getopt_long returns CLI_LONG_BASE + row index for a long flag. */
enum { CLI_LONG_BASE = 256 };

/* The getopt tables for options_table; free with cli_tables_free. */
struct cli_tables {
    struct option *longopts;
    char *shortopts;
    bool *list_seen; /* per row: a list flag already replaced the file's list */
};

static void cli_tables_free(struct cli_tables *t)
{
    free(t->longopts);
    free(t->shortopts);
    free(t->list_seen);
}

static int cli_tables_build(struct cli_tables *t)
{
    t->longopts = calloc(options_count + 1, sizeof(*t->longopts));
    t->shortopts = calloc(2 * options_count + 2, 1);
    t->list_seen = calloc(options_count, sizeof(*t->list_seen));
    if (!t->longopts || !t->shortopts || !t->list_seen)
        return -1;
    /* Leading ':': a missing argument is reported as ':', not '?'. */
    char *s = t->shortopts;
    *s++ = ':';
    for (size_t i = 0; i < options_count; i++) {
        const struct option_spec *o = &options_table[i];
        t->longopts[i] = (struct option){
            .name = o->name,
            .has_arg = o->metavar ? required_argument : no_argument,
            .flag = NULL,
            .val = CLI_LONG_BASE + (int)i,
        };
        if (o->short_name) {
            *s++ = o->short_name;
            if (o->metavar)
                *s++ = ':';
        }
    }
    return 0;
}

/* The row getopt_long's return value CH stands for, or NULL. */
static const struct option_spec *cli_option(int ch)
{
    if (ch >= CLI_LONG_BASE && (size_t)(ch - CLI_LONG_BASE) < options_count)
        return &options_table[ch - CLI_LONG_BASE];
    if (ch == '?' || ch == ':')
        return NULL;
    return options_by_short(ch);
}

/* The message for a flag getopt_long refused (it returned CH). */
static void cli_bad_flag(int ch, char **argv, char *err, size_t errlen)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    const struct option_spec *o = cli_option(optopt);
    char want[128];
    if (ch == ':' && o) {
        bool numeric = o->type == OPTION_UINT || o->type == OPTION_SIZE || o->type == OPTION_MODE ||
                       o->type == OPTION_DURATION;
        snprintf(err, errlen, "--%s: expected %s, got nothing", o->name,
                 numeric ? options_expected(o, want, sizeof(want)) : o->metavar);
        return;
    }
    if (o) {
        const char *eq = strchr(arg, '=');
        snprintf(err, errlen, "--%s: takes no argument, got '%s'", o->name, eq ? eq + 1 : arg);
        return;
    }
    if (optopt != 0) {
        snprintf(err, errlen, "unknown option '-%c'; see corral --help", optopt);
        return;
    }
    /* An unknown or ambiguous long flag: "--name" or "--name=value". */
    char name[64];
    const char *flag = strncmp(arg, "--", 2) == 0 ? arg + 2 : arg;
    snprintf(name, sizeof(name), "%.*s", (int)strcspn(flag, "="), flag);
    size_t used = 0, matches = 0;
    char list[256] = "";
    for (size_t i = 0; i < options_count; i++) {
        if (strncmp(options_table[i].name, name, strlen(name)) != 0 || used >= sizeof(list))
            continue;
        int n = snprintf(list + used, sizeof(list) - used, "%s--%s", matches ? ", " : "",
                         options_table[i].name);
        used += n > 0 ? (size_t)n : 0;
        matches++;
    }
    if (name[0] && matches > 1) {
        snprintf(err, errlen, "ambiguous option '--%s' (%s); see corral --help", name, list);
        return;
    }
    const char *near = options_suggest(name, false);
    if (near)
        snprintf(err, errlen, "unknown option '--%s' (did you mean '--%s'?); see corral --help",
                 name, near);
    else
        snprintf(err, errlen, "unknown option '--%s'; see corral --help", name);
}

enum cli_action cli_parse(int argc, char **argv, struct config *c, char *err, size_t errlen)
{
    enum cli_action action = CLI_FAIL;
    struct cli_tables t = {0};
    const char *file = NULL;
    bool help = false, version = false, check = false;
    char why[512];
    int ch;

    if (cli_tables_build(&t) < 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }

    /* Pass 1: the flags that decide what to do, and malformed ones. */
    optind = 0; /* 0, not 1: glibc then resets all of its state */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, t.shortopts, t.longopts, NULL)) != -1) {
        const struct option_spec *o = cli_option(ch);
        if (!o) {
            cli_bad_flag(ch, argv, err, errlen);
            goto out;
        }
        switch (o->type) {
        case OPTION_CONFIG_FILE:
            if (file) {
                snprintf(err, errlen, "--%s: given twice ('%s' and '%s')", o->name, file, optarg);
                goto out;
            }
            file = optarg;
            break;
        case OPTION_TEST:
            check = true;
            break;
        case OPTION_HELP:
            help = true;
            break;
        case OPTION_VERSION:
            version = true;
            break;
        default:
            /* --pool-name picks the pool of the file's pools list, so it
             * is known before the file is read. */
            if (o == options_by_key("pool_name") &&
                options_set_text(o, c, optarg, why, sizeof(why)) < 0) {
                snprintf(err, errlen, "--%s: %s", o->name, why);
                goto out;
            }
            break;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s'; see corral --help", argv[optind]);
        goto out;
    }
    if (help) {
        cli_usage(stdout);
        action = CLI_DONE;
        goto out;
    }
    if (version) {
        printf("corral %s\n", CLI_VERSION);
#ifdef HAVE_PYTHON
        printf("wsgi: Python %s (%s)\n", CORRAL_PYTHON_VERSION, CORRAL_PYTHON_EXECUTABLE);
#else
        printf("wsgi: not built (configure --without-python)\n");
#endif
        action = CLI_DONE;
        goto out;
    }
    if (file && config_load_file(c, file, err, errlen) < 0)
        goto out;

    /* Pass 2: every other flag, over the file. */
    optind = 0;
    while ((ch = getopt_long(argc, argv, t.shortopts, t.longopts, NULL)) != -1) {
        const struct option_spec *o = cli_option(ch);
        if (!o || !o->key)
            continue;
        if (c->pools_count) {
            snprintf(err, errlen,
                     "--%s: %s has a pools list: give the settings in the file (the "
                     "command line gives only -c and -t, or --pool-name NAME to run one pool)",
                     o->name, file);
            goto out;
        }
        if (o->type == OPTION_BOOL) {
            options_set_bool(o, c, true);
            continue;
        }
        if (o->type == OPTION_STRING_LIST && !t.list_seen[o - options_table]) {
            options_clear_list(o, c);
            t.list_seen[o - options_table] = true;
        }
        if (options_set_text(o, c, optarg, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "--%s: %s", o->name, why);
            goto out;
        }
    }
    config_finish(c);
    action = check ? CLI_CHECK : CLI_RUN;
out:
    cli_tables_free(&t);
    return action;
}

/* In --help text, a space the lines are not broken at. */
#define CLI_NBSP '\1'

/* LEFT, then TEXT word-wrapped in a column starting at CLI_HELP_COL. */
static void cli_usage_row(FILE *out, const char *left, const char *text)
{
    enum { CLI_HELP_COL = 30, CLI_WIDTH = 79 };
    int used = fprintf(out, "%s", left);
    if (used > CLI_HELP_COL - 2) {
        fputc('\n', out);
        used = 0;
    }
    fprintf(out, "%*s", CLI_HELP_COL - used, "");
    used = CLI_HELP_COL;
    for (const char *p = text; *p;) {
        size_t word = strcspn(p, " ");
        if (used > CLI_HELP_COL && used + 1 + (int)word > CLI_WIDTH) {
            fprintf(out, "\n%*s", CLI_HELP_COL, "");
            used = CLI_HELP_COL;
        } else if (used > CLI_HELP_COL) {
            fputc(' ', out);
            used++;
        }
        for (size_t i = 0; i < word; i++)
            fputc(p[i] == CLI_NBSP ? ' ' : p[i], out);
        used += (int)word;
        p += word;
        p += strspn(p, " ");
    }
    fputc('\n', out);
}

void cli_usage(FILE *out)
{
    struct config defaults;
    config_defaults(&defaults);

    /* "-c, -t, --help and --version": the flags that are not keys. */
    char only[128] = "";
    size_t n_only = 0, k = 0;
    for (size_t i = 0; i < options_count; i++)
        n_only += options_table[i].key == NULL;
    for (size_t i = 0; i < options_count; i++) {
        const struct option_spec *o = &options_table[i];
        if (o->key)
            continue;
        char flag[40];
        if (o->short_name)
            snprintf(flag, sizeof(flag), "-%c", o->short_name);
        else
            snprintf(flag, sizeof(flag), "--%s", o->name);
        k++;
        size_t used = strlen(only);
        snprintf(only + used, sizeof(only) - used, "%s%s",
                 k == 1        ? ""
                 : k == n_only ? " and "
                               : ", ",
                 flag);
    }

    fprintf(out,
            "Usage: corral [OPTION]...\n"
            "Serve an application over uwsgi, FastCGI or SCGI to a front end such as nginx.\n"
            "\n"
            "Every option but %s is also a config file key, written\n"
            "with '_' for '-' (--max-conns is max_conns); flags override the file.\n"
            "SIZE is in bytes with an optional K, M or G suffix; SECONDS may be fractional.\n",
            only);

    /* Each section once, at the place of its first row. */
    for (size_t g = 0; g < options_count; g++) {
        const char *group = options_table[g].group;
        bool first = true;
        for (size_t j = 0; j < g && first; j++)
            first = strcmp(options_table[j].group, group) != 0;
        if (!first)
            continue;
        fprintf(out, "\n%s:\n", group);
        for (size_t i = g; i < options_count; i++) {
            const struct option_spec *o = &options_table[i];
            if (strcmp(o->group, group) != 0)
                continue;
            char left[96], text[512], value[256];
            int n =
                snprintf(left, sizeof(left), "  %c%c%s--%s", o->short_name ? '-' : ' ',
                         o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ", o->name);
            if (o->metavar && n > 0 && (size_t)n < sizeof(left))
                snprintf(left + n, sizeof(left) - (size_t)n, " %s", o->metavar);
            options_format_value(o, &defaults, value, sizeof(value));
            if (o->key && value[0])
                snprintf(text, sizeof(text), "%s (default:%c%s)", o->help, CLI_NBSP, value);
            else
                snprintf(text, sizeof(text), "%s", o->help);
            cli_usage_row(out, left, text);
        }
    }
    fprintf(out, "\nExample:\n"
                 "  corral --listen uwsgi:unix:/run/app.sock --handler ./app.so --processes 4\n");
    config_free(&defaults);
}
