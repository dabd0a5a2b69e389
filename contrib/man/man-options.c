/*
 * man-options — writes corral's option table (src/config/options.c) as mdoc,
 * for the man pages: with --flags the option list of corral(8), with --keys
 * the key list of corral.conf(5). Each entry has the row's help, its default
 * and whether a reload can change it, grouped as `corral --help` groups
 * them. make runs it when it builds the pages (contrib/man/Makefile rules
 * in Makefile.am), so an option added to the table is in both pages.
 *
 *   man-options --flags|--keys < TEMPLATE > PAGE
 *
 * The template is copied, with its line "@OPTIONS@" replaced by the list.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "config/options.h"

/* TEXT as one mdoc text line: backslashes escaped, and a line that would
 * start with a control character made literal. */
static void man_text(const char *text)
{
    if (text[0] == '.' || text[0] == '\'')
        fputs("\\&", stdout);
    for (const char *p = text; *p; p++) {
        if (*p == '\\')
            fputs("\\e", stdout);
        else
            putchar(*p);
    }
    putchar('\n');
}

/* An argument of a macro line, quoted (metavars hold brackets and colons). */
static void man_arg(const char *macro, const char *arg)
{
    printf(" %s \"", macro);
    for (const char *p = arg; *p; p++) {
        if (*p == '"')
            fputs("\\(dq", stdout);
        else if (*p == '\\')
            fputs("\\e", stdout);
        else
            putchar(*p);
    }
    putchar('"');
}

/* A long flag as mdoc: "Fl \-name" (Fl adds the first dash). */
static void man_flag(const struct option_spec *o)
{
    printf(" Fl \\-");
    for (const char *p = o->name; *p; p++) {
        if (*p == '-')
            fputs("\\-", stdout);
        else
            putchar(*p);
    }
}

static void man_entry(const struct option_spec *o, const struct config *defaults, bool keys)
{
    char value[256];
    options_format_value(o, defaults, value, sizeof(value));
    if (keys) {
        printf(".It Cm %s", o->key);
        if (o->metavar)
            man_arg("No = Ar", o->metavar);
        putchar('\n');
    } else {
        printf(".It ");
        if (o->short_name)
            printf("Fl %c , ", o->short_name);
        man_flag(o);
        if (o->metavar)
            man_arg("Ar", o->metavar);
        putchar('\n');
    }
    /* The one-line help as a sentence: a capital and a full stop. */
    char sentence[640];
    size_t n = (size_t)snprintf(sentence, sizeof(sentence), "%s", o->help);
    if (sentence[0] >= 'a' && sentence[0] <= 'z')
        sentence[0] = (char)(sentence[0] - 'a' + 'A');
    if (n > 0 && n + 1 < sizeof(sentence) && sentence[n - 1] != '.')
        snprintf(sentence + n, sizeof(sentence) - n, ".");
    man_text(sentence);
    if (o->key && value[0]) {
        char line[320];
        snprintf(line, sizeof(line), "Default: %s.", value);
        man_text(line);
    }
    if (keys) {
        printf("On the command line:\n.");
        man_flag(o);
        printf(" .\n");
    } else if (o->key) {
        printf("In the configuration file:\n.Cm %s .\n", o->key);
    }
    if (o->fixed)
        man_text("Read at start only: a reload keeps the running value and says so.");
    if (o->global && keys)
        man_text("Global: not allowed inside a pool of the pools list, nor inherited by the "
                 "pools.");
}

static void man_list(bool keys)
{
    struct config defaults;
    config_defaults(&defaults);
    /* Each group once, at the place of its first row (as --help does). */
    for (size_t g = 0; g < options_count; g++) {
        const char *group = options_table[g].group;
        bool first = true, any = false;
        for (size_t j = 0; j < g && first; j++)
            first = strcmp(options_table[j].group, group) != 0;
        for (size_t i = g; i < options_count && first && !any; i++)
            any = strcmp(options_table[i].group, group) == 0 && (!keys || options_table[i].key);
        if (!first || !any)
            continue;
        printf(".Ss %s\n.Bl -tag -width Ds\n", group);
        for (size_t i = g; i < options_count; i++) {
            const struct option_spec *o = &options_table[i];
            if (strcmp(o->group, group) == 0 && (!keys || o->key))
                man_entry(o, &defaults, keys);
        }
        printf(".El\n");
    }
    config_free(&defaults);
}

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "--flags") != 0 && strcmp(argv[1], "--keys") != 0)) {
        fprintf(stderr, "usage: man-options --flags|--keys < TEMPLATE > PAGE\n");
        return 2;
    }
    bool keys = strcmp(argv[1], "--keys") == 0, done = false;
    char line[4096];
    while (fgets(line, sizeof(line), stdin)) {
        if (strcmp(line, "@OPTIONS@\n") == 0 && !done) {
            man_list(keys);
            done = true;
        } else {
            fputs(line, stdout);
        }
    }
    if (!done) {
        fprintf(stderr, "man-options: the template has no @OPTIONS@ line\n");
        return 1;
    }
    return 0;
}
