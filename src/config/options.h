/*
 * options.h — the one table of configuration options.
 *
 * Each row describes an option once: its command-line flag, its config-file
 * key, its type and limits, where it lives in struct config and its help.
 * cli.c (getopt_long) and config.c (libconfig) are both driven by this
 * table, so adding an option is adding a row in options.c and a field in
 * struct config — never an if-chain.
 *
 * The functions here convert and store values; they never print or log:
 * failures fill an error buffer with "expected ..., got ..." and the caller
 * adds where the value came from ("--processes: " or "FILE:LINE: key
 * 'processes': ").
 */
#ifndef CORRAL_OPTIONS_H
#define CORRAL_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;

enum option_type {
    OPTION_STRING,      /* char *, owned (strdup'ed) by struct config */
    OPTION_STRING_LIST, /* char ** + size_t count; a repeatable flag; in the
                           file a string or a list/array of strings */
    OPTION_UINT,        /* unsigned integer in [min, max] */
    OPTION_SIZE,        /* bytes in [min, max]; text takes a K, M or G suffix
                           (powers of 1024) */
    OPTION_MODE,        /* permission bits written in octal, in [min, max] */
    OPTION_DURATION,    /* seconds, fractional allowed ("0.5"), stored as
                           unsigned milliseconds; min and max in ms */
    OPTION_BOOL,        /* bool; a flag without an argument sets it */
    /* Command line only: no key, no field. */
    OPTION_CONFIG_FILE, /* -c FILE: load FILE before everything else */
    OPTION_TEST,        /* -t: check the configuration and exit */
    OPTION_HELP,
    OPTION_VERSION,
};

struct option_spec {
    const char *name; /* long flag without dashes: "error-log" */
    char short_name;  /* 'c', or 0 */
    const char *key;  /* config key: "error_log"; NULL = CLI only */
    enum option_type type;
    size_t offset;       /* of the field in struct config */
    size_t size;         /* sizeof the field (numbers: 4 or 8 bytes) */
    size_t count_offset; /* OPTION_STRING_LIST: offset of the size_t count */
    uint64_t min, max;   /* numeric types, inclusive */
    /* Extra check of one string value (OPTION_STRING, OPTION_STRING_LIST):
     * returns 0, or -1 with a reason in err. NULL = any non-empty string. */
    int (*check)(const char *value, char *err, size_t errlen);
    const char *metavar; /* argument name in --help ("N", "FILE"); NULL
                            when the flag takes no argument */
    const char *group;   /* --help section */
    const char *help;    /* one line */
    const char *unset;   /* --help: what an unset string/list means */
    /* Only takes effect at start (listeners, threads, log files, ...): a
     * reload keeps the running value and says so (config_keep_fixed). */
    bool fixed;
    /* Global only: in a file with a pools list (config.h), a key of the top
     * master, refused inside a pool's group and not inherited by the pools
     * (the pidfile, the top control socket). */
    bool global;
};

/* A pool's name (--pool-name, a pool group's name): 0, or -1 with what was
 * expected in err. */
int options_check_pool_name(const char *value, char *err, size_t errlen);

/* The values of --pool, in the order of enum pool_mode (config.h), and
 * their check: 0, or -1 with what was expected in err. */
#define OPTIONS_POOL_MODES 3
extern const char *const options_pool_modes[OPTIONS_POOL_MODES];
int options_check_pool_mode(const char *value, char *err, size_t errlen);

/* The field at OFFSET (a row's offset or count_offset) in *c. */
static inline void *options_at(struct config *c, size_t offset)
{
    return (char *)c + offset;
}

static inline const void *options_at_const(const struct config *c, size_t offset)
{
    return (const char *)c + offset;
}

extern const struct option_spec options_table[];
extern const size_t options_count;

/* The row whose key is KEY / whose long flag is NAME (without dashes), or
 * NULL. options_by_short takes the one-letter flag. */
const struct option_spec *options_by_key(const char *key);
const struct option_spec *options_by_name(const char *name);
const struct option_spec *options_by_short(int short_name);

/*
 * A known key (want_key) or long flag name close enough to WORD to be a
 * likely typo (edit distance with transpositions of at most 2), or NULL.
 * The returned string is static.
 */
const char *options_suggest(const char *word, bool want_key);

/* "an integer from 1 to 4096", "a size in bytes from 512 to 16M", ...:
 * what a value of O must look like, for error messages. */
const char *options_expected(const struct option_spec *o, char *buf, size_t buflen);

/*
 * Parse TEXT as a value of O and store it into *c (strings are duplicated
 * and replace the old value; a list gets TEXT appended). Returns 0, or -1
 * with "expected ..., got 'TEXT'" (or the check's reason) in err; *c is
 * unchanged on error. Not for the command-line-only types.
 */
int options_set_text(const struct option_spec *o, struct config *c, const char *text, char *err,
                     size_t errlen);

/*
 * Store the integer V into the numeric field of O (for OPTION_DURATION, V is
 * in seconds; OPTION_MODE takes V as the mode itself). Range-checked, the
 * message shows V as written: "expected an integer from 1 to 4096, got 0".
 */
int options_set_integer(const struct option_spec *o, struct config *c, int64_t v, char *err,
                        size_t errlen);

/* Store the fractional number of seconds V into an OPTION_DURATION field;
 * other numeric types reject it ("..., got 1.5"). */
int options_set_double(const struct option_spec *o, struct config *c, double v, char *err,
                       size_t errlen);

/* Store B into an OPTION_BOOL field. */
void options_set_bool(const struct option_spec *o, struct config *c, bool b);

/* Empty the OPTION_STRING_LIST field of O (free the strings). */
void options_clear_list(const struct option_spec *o, struct config *c);

/* The numeric field of O in *c, widened. */
uint64_t options_get_number(const struct option_spec *o, const struct config *c);

/* Whether the field of O holds the same value in A and B (strings and
 * lists compared by content, NULL equal only to NULL). */
bool options_same_value(const struct option_spec *o, const struct config *a,
                        const struct config *b);

/* Copy the field of O from SRC into DST (strings and lists duplicated, the
 * old ones freed). Returns 0, or -1 when out of memory (DST unchanged). */
int options_copy_value(const struct option_spec *o, struct config *dst, const struct config *src);

/* Write the current value of O in *c as it would be typed ("1", "64K",
 * "0660", "0.5", a string, the list joined by ", "); O->unset or "" for an
 * unset string or empty list. */
void options_format_value(const struct option_spec *o, const struct config *c, char *buf,
                          size_t buflen);

#endif
