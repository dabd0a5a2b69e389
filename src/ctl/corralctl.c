/*
 * corralctl.c — the control client: sends one command line to corral's
 * control socket (--control) and prints the JSON reply as text for people,
 * or as it came with --json. `top` is a live full-screen view
 * (corralctl_top.c).
 *
 * Exit status: 0 when the server answered ok, 1 when it answered
 * ok:false, 2 for a usage error, 3 when it could not be reached, timed out
 * or answered something that is not JSON.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "corralctl.h"
#include "core/clock.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

static void ctl_usage(FILE *out)
{
    fprintf(out,
            "Usage: corralctl [-s SOCKET] [-p POOL] [--json] COMMAND [ARGS]\n"
            "       (the options may also follow the command: corralctl workers --json)\n"
            "\n"
            "Control a running corral server through its control socket (corral\n"
            "--control PATH).\n"
            "\n"
            "Commands:\n"
            "  status          version, uptime, the pool, totals, listeners and their queues\n"
            "  workers         each worker: pid, state, requests, current requests, memory\n"
            "  top             a live view, refreshed every second (q or Ctrl-C leaves)\n"
            "  scale N|+N|-N   set, raise or lower the number of worker processes\n"
            "  stop            graceful stop (like SIGTERM)\n"
            "  quit            stop now (like SIGINT)\n"
            "  reopen-logs     reopen the log files, in every process (like SIGUSR1)\n"
            "  reload          a new generation of workers with the config read again; the\n"
            "                  old one finishes its requests (like SIGHUP)\n"
            "  chain-reload    the same, one worker at a time\n"
            "                  (both wait until the new workers run and the old ones have\n"
            "                  exited; exit 1 if the new ones could not start and the old\n"
            "                  generation kept serving)\n"
            "  help            the commands this server knows\n"
            "\n"
            "Options:\n"
            "  -s, --socket PATH     the control socket (default: $CORRAL_CONTROL)\n"
            "  -p, --pool NAME       with a pools list: pool NAME's control socket (SOCKET.NAME);\n"
            "                        without -p the top master answers status (the pools),\n"
            "                        reload, stop, quit, reopen-logs and help\n"
            "  -j, --json            print the server's JSON reply as it is\n"
            "  -t, --timeout SECONDS how long to wait for a reply (default 5)\n"
            "  -h, --help            this text\n"
            "  -V, --version         the version\n"
            "\n"
            "Exit status: 0 done, 1 the server refused the command, 2 usage error,\n"
            "3 the server could not be reached, timed out or answered nonsense.\n");
}

/* ---- tables ---- */

#define CTL_MAX_COLS 12

struct ctl_table {
    size_t cols, rows, cap;
    const char *head[CTL_MAX_COLS];
    bool right[CTL_MAX_COLS]; /* right-aligned (numbers) */
    char **cells;             /* rows * cols strings */
};

static void ctl_table_init(struct ctl_table *t, const char *spec)
{
    /* SPEC: "NAME>|NAME<|...": > right-aligned, < left-aligned. */
    memset(t, 0, sizeof(*t));
    static char names[512];
    snprintf(names, sizeof(names), "%s", spec);
    for (char *save = NULL, *tok = strtok_r(names, "|", &save); tok && t->cols < CTL_MAX_COLS;
         tok = strtok_r(NULL, "|", &save)) {
        size_t n = strlen(tok);
        t->right[t->cols] = n && tok[n - 1] == '>';
        if (n)
            tok[n - 1] = '\0';
        t->head[t->cols++] = tok;
    }
}

/* Add a row: COLS strings (NULL = empty). */
static void ctl_table_row(struct ctl_table *t, const char *const *cells)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **grown = realloc(t->cells, cap * t->cols * sizeof(*grown));
        if (!grown)
            return;
        t->cells = grown;
        t->cap = cap;
    }
    for (size_t i = 0; i < t->cols; i++)
        t->cells[t->rows * t->cols + i] = strdup(cells[i] ? cells[i] : "");
    t->rows++;
}

static void ctl_table_print(struct ctl_table *t)
{
    size_t width[CTL_MAX_COLS];
    for (size_t c = 0; c < t->cols; c++) {
        width[c] = strlen(t->head[c]);
        for (size_t r = 0; r < t->rows; r++) {
            const char *s = t->cells[r * t->cols + c];
            if (s && strlen(s) > width[c])
                width[c] = strlen(s);
        }
    }
    for (size_t r = 0; r <= t->rows; r++) {
        char line[2048];
        size_t used = 0;
        for (size_t c = 0; c < t->cols && used < sizeof(line); c++) {
            const char *s = r == 0 ? t->head[c] : t->cells[(r - 1) * t->cols + c];
            int n = snprintf(line + used, sizeof(line) - used, t->right[c] ? "%*s%s" : "%-*s%s",
                             (int)width[c], s ? s : "", c + 1 < t->cols ? "  " : "");
            used += n > 0 ? (size_t)n : 0;
        }
        if (used >= sizeof(line))
            used = sizeof(line) - 1;
        while (used > 0 && line[used - 1] == ' ')
            used--; /* no trailing blanks */
        printf("%.*s\n", (int)used, line);
    }
    for (size_t i = 0; i < t->rows * t->cols; i++)
        free(t->cells[i]);
    free(t->cells);
}

/* ---- replies as text ---- */

static const char *ctl_num(const struct json_value *v, char *buf, size_t cap, int decimals)
{
    if (!v || v->type != JSON_NUMBER)
        return "-";
    snprintf(buf, cap, "%.*f", decimals, v->number);
    return buf;
}

static void ctl_print_status(const struct json_value *r)
{
    const struct json_value *pool = json_get(r, "pool"), *tot = json_get(r, "totals");
    char up[32];
    ctl_fmt_duration(json_number(json_get(r, "uptime_s"), 0), up, sizeof(up));
    printf("corral %s, pid %.0f, up %s, %s\n", json_str(json_get(r, "version"), "?"),
           json_number(json_get(r, "pid"), 0), up, json_str(json_get(r, "state"), "?"));
    printf("pool: %s, %.0f of %.0f processes live (at most %.0f), %.0f of %.0f threads live, "
           "%.0f busy, %.0f requests in flight\n",
           json_str(json_get(pool, "mode"), "?"), json_number(json_get(pool, "processes_live"), 0),
           json_number(json_get(pool, "processes"), 0),
           json_number(json_get(pool, "max_processes"), 0),
           json_number(json_get(pool, "threads_live"), 0),
           json_number(json_get(pool, "threads"), 0) *
               json_number(json_get(pool, "processes"), 0),
           json_number(json_get(pool, "threads_busy"), 0),
           json_number(json_get(pool, "requests_in_flight"), 0));
    printf("totals: %.0f requests, %.0f errors, %.0f connections accepted, %.0f respawns\n",
           json_number(json_get(tot, "requests"), 0), json_number(json_get(tot, "errors"), 0),
           json_number(json_get(tot, "accepted"), 0), json_number(json_get(tot, "respawns"), 0));
    const struct json_value *rl = json_get(r, "reload"), *last = json_get(rl, "last");
    printf("reload: generation %.0f, %s, %.0f reloads, %.0f failed", 
           json_number(json_get(rl, "generation"), 0), json_str(json_get(rl, "state"), "?"),
           json_number(json_get(rl, "reloads"), 0), json_number(json_get(rl, "failed"), 0));
    if (last && last->type == JSON_OBJECT)
        printf("; last: %s", json_str(json_get(last, "message"), "?"));
    printf("\n\n");
    struct ctl_table t;
    ctl_table_init(&t, "LISTENER<|PROTOCOL<|ACCEPTED>|QUEUE>|BACKLOG>");
    const struct json_value *ls = json_get(r, "listeners");
    for (const struct json_value *l = ls ? ls->child : NULL; l; l = l->next) {
        char a[32], q[32], b[32];
        const char *row[] = {json_str(json_get(l, "address"), "?"),
                             json_str(json_get(l, "protocol"), "?"),
                             ctl_num(json_get(l, "accepted"), a, sizeof(a), 0),
                             ctl_num(json_get(l, "queue"), q, sizeof(q), 0),
                             ctl_num(json_get(l, "backlog"), b, sizeof(b), 0)};
        ctl_table_row(&t, row);
    }
    ctl_table_print(&t);
}

static void ctl_print_workers(const struct json_value *r)
{
    struct ctl_table t;
    ctl_table_init(&t, "WORKER>|PID>|STATE<|REQUESTS>|IN FLIGHT>|ERRORS>|AVG MS>|RSS MiB>|UP>|"
                       "RESPAWNS>|CURRENT<");
    double now = (double)time(NULL);
    const struct json_value *ws = json_get(r, "workers");
    for (const struct json_value *w = ws ? ws->child : NULL; w; w = w->next) {
        char idx[16], pid[16], req[32], fl[16], err[32], avg[32], rss[32], up[32] = "-", resp[16];
        char cur[512] = "";
        const struct json_value *rv = json_get(w, "rss_kb"), *st = json_get(w, "started_at");
        if (rv && rv->type == JSON_NUMBER)
            snprintf(rss, sizeof(rss), "%.1f", rv->number / 1024.0);
        else
            snprintf(rss, sizeof(rss), "-");
        if (st && st->type == JSON_NUMBER)
            ctl_fmt_duration(now - st->number, up, sizeof(up));
        double p = json_number(json_get(w, "pid"), 0);
        snprintf(pid, sizeof(pid), p > 0 ? "%.0f" : "-", p);
        const char *row[] = {ctl_num(json_get(w, "index"), idx, sizeof(idx), 0),
                             pid,
                             json_str(json_get(w, "state"), "?"),
                             ctl_num(json_get(w, "requests"), req, sizeof(req), 0),
                             ctl_num(json_get(w, "requests_in_flight"), fl, sizeof(fl), 0),
                             ctl_num(json_get(w, "errors"), err, sizeof(err), 0),
                             ctl_num(json_get(w, "avg_ms"), avg, sizeof(avg), 3),
                             rss,
                             up,
                             ctl_num(json_get(w, "respawns"), resp, sizeof(resp), 0),
                             cur};
        /* One line per busy thread: the first on the worker's row. */
        bool first = true;
        const struct json_value *ths = json_get(w, "threads");
        for (const struct json_value *th = ths ? ths->child : NULL; th; th = th->next) {
            if (!ctl_thread_current(th, cur, sizeof(cur)))
                continue;
            if (first) {
                ctl_table_row(&t, row);
                first = false;
            } else {
                const char *more[CTL_MAX_COLS] = {0};
                more[10] = cur;
                ctl_table_row(&t, more);
            }
        }
        if (first)
            ctl_table_row(&t, row);
    }
    ctl_table_print(&t);
}

static void ctl_print_scale(const struct json_value *r)
{
    printf("scaled from %.0f to %.0f processes (at most %.0f)\n",
           json_number(json_get(r, "previous"), 0), json_number(json_get(r, "processes"), 0),
           json_number(json_get(r, "max_processes"), 0));
}

static void ctl_print_stopping(const struct json_value *r)
{
    printf("corral is %s (%.0f workers to stop)\n", json_str(json_get(r, "state"), "?"),
           json_number(json_get(r, "workers"), 0));
}

static void ctl_print_reopen(const struct json_value *r)
{
    printf("log files reopened; %.0f workers asked to reopen theirs\n",
           json_number(json_get(r, "workers_signalled"), 0));
}

static void ctl_print_reload(const struct json_value *r)
{
    printf("generation %.0f is starting (%s, %.0f processes); generation %.0f serves until it "
           "runs\n",
           json_number(json_get(r, "generation"), 0), json_str(json_get(r, "mode"), "?"),
           json_number(json_get(r, "processes"), 0), json_number(json_get(r, "previous"), 0));
    const struct json_value *kept = json_get(r, "kept");
    if (kept && kept->type == JSON_STRING)
        printf("kept from the running config (they change only on a restart): %s\n",
               json_str(kept, "?"));
}

static void ctl_print_help(const struct json_value *r)
{
    const struct json_value *cs = json_get(r, "commands");
    for (const struct json_value *c = cs ? cs->child : NULL; c; c = c->next)
        printf("%s\n", json_str(c, "?"));
}

/* The top master of a pools list answers every command with its pools. */
static void ctl_print_pools(const struct json_value *r)
{
    printf("corral pools, top master pid %.0f, %s\n\n", json_number(json_get(r, "pid"), 0),
           json_str(json_get(r, "state"), "?"));
    struct ctl_table t;
    ctl_table_init(&t, "POOL<|PID>|STATE<|STARTS>|FAILURES>|CONTROL<|LISTENERS<");
    const struct json_value *ps = json_get(r, "pools");
    for (const struct json_value *p = ps ? ps->child : NULL; p; p = p->next) {
        char pid[32], st[32], fl[32];
        const struct json_value *ls = json_get(p, "listeners");
        const struct json_value *l = ls ? ls->child : NULL;
        const char *row[] = {json_str(json_get(p, "name"), "?"),
                             ctl_num(json_get(p, "pid"), pid, sizeof(pid), 0),
                             json_str(json_get(p, "state"), "?"),
                             ctl_num(json_get(p, "starts"), st, sizeof(st), 0),
                             ctl_num(json_get(p, "failures"), fl, sizeof(fl), 0),
                             json_str(json_get(p, "control"), "-"),
                             l ? json_str(json_get(l, "address"), "?") : "-"};
        ctl_table_row(&t, row);
        /* One line per further listener, under the first. */
        for (l = l ? l->next : NULL; l; l = l->next) {
            const char *more[CTL_MAX_COLS] = {0};
            more[6] = json_str(json_get(l, "address"), "?");
            ctl_table_row(&t, more);
        }
    }
    ctl_table_print(&t);
}

static const struct {
    const char *name;
    void (*print)(const struct json_value *reply);
} ctl_printers[] = {
    {"status", ctl_print_status},      {"workers", ctl_print_workers},
    {"scale", ctl_print_scale},        {"stop", ctl_print_stopping},
    {"quit", ctl_print_stopping},      {"reopen-logs", ctl_print_reopen},
    {"help", ctl_print_help},          {"reload", ctl_print_reload},
    {"chain-reload", ctl_print_reload},
};

/* ---- reload: wait for the outcome ---- */

/* The server gives new workers 60 s to run, then the old ones
 * graceful_timeout (30 s by default) to finish. */
#define CTL_RELOAD_WAIT_MS 100000
/* With --preload the master re-executes itself and imports the app before
 * it answers again: a poll may wait that long (the import was already
 * checked to finish within the server's 60 s start deadline). */
#define CTL_RELOAD_POLL_MS 65000

/*
 * After a reload reply R: poll status until the new generation serves and
 * the old one has exited (0: the next reload can start), or the server
 * rolled back (CTL_EXIT_REFUSED, the reason on stderr), so a
 * broken deploy makes `corralctl reload` fail even though the import
 * happens after the reply.
 */
static int ctl_wait_reload(struct ctl_conn *c, const struct json_value *r, bool raw)
{
    double want = json_number(json_get(r, "generation"), 0);
    struct timespec pause = {0, 100 * 1000000L};
    if (c->timeout_ms < CTL_RELOAD_POLL_MS)
        c->timeout_ms = CTL_RELOAD_POLL_MS;
    int64_t deadline = (int64_t)clock_now_ms() + CTL_RELOAD_WAIT_MS;
    while ((int64_t)clock_now_ms() < deadline) {
        char err[1024];
        struct json_value *st = ctl_call(c, "status", err, sizeof(err));
        if (!st) {
            fprintf(stderr, "corralctl: waiting for the reload: %s\n", err);
            return CTL_EXIT_IO;
        }
        const struct json_value *rl = json_get(st, "reload");
        double gen = json_number(json_get(rl, "generation"), 0);
        const char *state = json_str(json_get(rl, "state"), "?");
        int status = -1;
        if (gen >= want && strcmp(state, "draining") == 0) {
            /* the new generation serves; the old one still finishes */
        } else if (gen >= want) {
            if (!raw)
                printf("generation %.0f is serving; the old workers have finished and exited\n",
                       gen);
            status = CTL_EXIT_OK;
        } else if (strcmp(state, "starting") != 0 && strcmp(state, "checking") != 0) {
            fprintf(stderr, "corralctl: reload failed: %s\n",
                    json_str(json_get(json_get(rl, "last"), "message"), "see the error log"));
            status = CTL_EXIT_REFUSED;
        }
        json_value_free(st);
        if (status >= 0)
            return status;
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "corralctl: the reload was still starting after %d s\n",
            CTL_RELOAD_WAIT_MS / 1000);
    return CTL_EXIT_IO;
}

/* ---- main ---- */

/* The command line to send: the words joined by one space. */
static char *ctl_join(int argc, char **argv)
{
    size_t len = 1;
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *line = calloc(1, len);
    if (!line)
        return NULL;
    for (int i = 0; i < argc; i++) {
        if (strpbrk(argv[i], "\r\n")) {
            free(line);
            return NULL;
        }
        if (i)
            strcat(line, " ");
        strcat(line, argv[i]);
    }
    return line;
}

/*
 * Options may come before or after the command and its arguments
 * ("corralctl workers --json" as "corralctl --json workers"). Reorder ARGV
 * into OUT (2 x ARGC + 2 entries, the second half scratch): argv[0], the options with their values, "--",
 * then the words (the command and its arguments) in their order. A word is
 * anything after "--", "-" alone, or a '-' and a digit ("scale -1"); every
 * other word starting with '-' is an option, and -s/-t/--socket/--timeout
 * (or a prefix getopt_long accepts) without an attached value take the next
 * word as theirs. Returns the number of entries in OUT; OUT points into ARGV.
 */
static int ctl_reorder_args(int argc, char **argv, char **out)
{
    int n = 0, words = 0;
    char **word = out + argc + 2; /* the words, kept apart until the options are done */
    out[n++] = argv[0];
    bool only_words = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_words || a[0] != '-' || a[1] == '\0' || (a[1] >= '0' && a[1] <= '9')) {
            word[words++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_words = true;
            continue;
        }
        out[n++] = argv[i];
        bool takes_next = false;
        if (a[1] == '-') {
            size_t len = strlen(a + 2);
            takes_next = !strchr(a, '=') && len > 0 &&
                         (strncmp(a + 2, "socket", len) == 0 || strncmp(a + 2, "pool", len) == 0 ||
                          strncmp(a + 2, "timeout", len) == 0);
        } else {
            for (const char *c = a + 1; *c; c++)
                if (*c == 's' || *c == 't' || *c == 'p') {
                    takes_next = c[1] == '\0';
                    break;
                }
        }
        if (takes_next && i + 1 < argc)
            out[n++] = argv[++i];
    }
    out[n++] = "--";
    for (int w = 0; w < words; w++)
        out[n++] = word[w];
    return n;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'}, {"json", no_argument, NULL, 'j'},
        {"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},       {"pool", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    const char *path = getenv("CORRAL_CONTROL"), *pool = NULL;
    bool raw = false;
    double timeout = 5;
    int opt;
    char **args = calloc(2 * (size_t)argc + 2, sizeof(*args));
    if (!args) {
        fprintf(stderr, "corralctl: out of memory\n");
        return CTL_EXIT_IO;
    }
    argc = ctl_reorder_args(argc, argv, args);
    argv = args;
    /* '+': the options come first now and end at the "--" that
     * ctl_reorder_args put before the words, so "scale -1" stays a word. */
    while ((opt = getopt_long(argc, argv, "+s:p:jt:hV", opts, NULL)) != -1) {
        char *end;
        switch (opt) {
        case 's':
            path = optarg;
            break;
        case 'p':
            pool = optarg;
            break;
        case 'j':
            raw = true;
            break;
        case 't':
            timeout = strtod(optarg, &end);
            if (*end || !(timeout > 0 && timeout <= 3600)) {
                fprintf(stderr, "corralctl: --timeout: expected seconds from 0.001 to 3600, "
                                "got '%s'\n",
                        optarg);
                return CTL_EXIT_USAGE;
            }
            break;
        case 'h':
            ctl_usage(stdout);
            return CTL_EXIT_OK;
        case 'V':
            printf("corralctl %s\n", PACKAGE_VERSION);
            return CTL_EXIT_OK;
        default:
            ctl_usage(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        ctl_usage(stderr);
        return CTL_EXIT_USAGE;
    }
    if (!path || !*path) {
        fprintf(stderr, "corralctl: no control socket: give -s PATH or set CORRAL_CONTROL\n");
        return CTL_EXIT_USAGE;
    }
    char pooled[512];
    if (pool) { /* the pool's socket: SOCKET.NAME (src/config/config.c) */
        if (!*pool || strchr(pool, '/') ||
            (size_t)snprintf(pooled, sizeof(pooled), "%s.%s", path, pool) >= sizeof(pooled)) {
            fprintf(stderr, "corralctl: --pool: expected a pool name, got '%s'\n", pool);
            return CTL_EXIT_USAGE;
        }
        path = pooled;
    }
    char *line = ctl_join(argc - optind, argv + optind);
    if (!line) {
        fprintf(stderr, "corralctl: a command cannot contain a line break\n");
        return CTL_EXIT_USAGE;
    }
    struct ctl_conn c;
    char err[1024];
    if (ctl_connect(&c, path, (int)(timeout * 1000), err, sizeof(err)) < 0) {
        fprintf(stderr, "corralctl: %s\n", err);
        free(line);
        return CTL_EXIT_IO;
    }
    int status;
    if (strcmp(line, "top") == 0) {
        status = ctl_top(&c);
    } else {
        struct json_value *r = ctl_call(&c, line, err, sizeof(err));
        if (!r) {
            fprintf(stderr, "corralctl: %s\n", err);
            status = CTL_EXIT_IO;
        } else {
            bool ok = json_is_true(json_get(r, "ok"));
            if (raw)
                printf("%.*s\n", (int)c.reply_len, c.reply);
            if (!ok) {
                fprintf(stderr, "corralctl: %s\n",
                        json_str(json_get(r, "error"), "the command failed"));
                status = CTL_EXIT_REFUSED;
            } else {
                status = CTL_EXIT_OK;
                bool top = json_get(r, "pools") != NULL; /* a pools list's top master */
                if (top && !raw)
                    ctl_print_pools(r);
                size_t np = top || raw ? 0 : sizeof(ctl_printers) / sizeof(ctl_printers[0]);
                for (size_t i = 0; i < np; i++)
                    if (strcmp(ctl_printers[i].name, argv[optind]) == 0)
                        ctl_printers[i].print(r);
                fflush(stdout);
                if (!top && (strcmp(argv[optind], "reload") == 0 ||
                             strcmp(argv[optind], "chain-reload") == 0))
                    status = ctl_wait_reload(&c, r, raw);
            }
            json_value_free(r);
        }
    }
    ctl_close(&c);
    free(line);
    free(args);
    return status;
}
