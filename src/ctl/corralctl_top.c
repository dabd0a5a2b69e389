/*
 * corralctl_top.c — `corralctl top`: a live full-screen view of the pool,
 * refreshed every second, drawn with plain ANSI escapes on the terminal's
 * alternate screen (termios: no echo, no line buffering). Requests per
 * second come from the difference of two samples. q, Ctrl-C, SIGTERM or
 * SIGHUP leave it; the terminal is restored on every way out.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "corralctl.h"
#include "core/clock.h"

#define TOP_PERIOD_MS 1000

static volatile sig_atomic_t top_quit;
static volatile sig_atomic_t top_resized;

static void top_on_quit(int sig)
{
    (void)sig;
    top_quit = 1;
}

static void top_on_winch(int sig)
{
    (void)sig;
    top_resized = 1;
}

/* ---- the screen: lines cut to the width, written in one go ---- */

struct top_screen {
    char *buf;
    size_t len, cap;
    int width, height, row;
};

static void top_put(struct top_screen *s, const char *p, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 8192;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *grown = realloc(s->buf, cap);
        if (!grown)
            return;
        s->buf = grown;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

/* One line of the screen, cut to the width (counting UTF-8 characters);
 * nothing past the last row but the last line. */
static void top_line(struct top_screen *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void top_line(struct top_screen *s, const char *fmt, ...)
{
    if (s->row >= s->height)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    size_t n = 0;
    int cols = 0;
    while (line[n]) {
        if (((unsigned char)line[n] & 0xC0) != 0x80) {
            if (cols == s->width)
                break;
            cols++;
        }
        n++;
    }
    top_put(s, line, n);
    s->row++;
    /* Clear the rest of the row; no newline after the bottom row (it
     * would scroll the screen). */
    top_put(s, "\033[K", 3);
    if (s->row < s->height)
        top_put(s, "\r\n", 2);
}

/* ---- samples ---- */

struct top_sample {
    int64_t at_ms;
    double total;    /* totals.requests */
    double *worker;  /* requests per worker slot */
    size_t workers;
};

static void top_sample_take(struct top_sample *smp, const struct json_value *status,
                            const struct json_value *workers, int64_t now)
{
    smp->at_ms = now;
    smp->total = json_number(json_get(json_get(status, "totals"), "requests"), 0);
    const struct json_value *ws = json_get(workers, "workers");
    size_t n = ws ? ws->count : 0;
    if (n > smp->workers) {
        double *grown = realloc(smp->worker, n * sizeof(*grown));
        if (!grown)
            return;
        smp->worker = grown;
    }
    smp->workers = n;
    size_t i = 0;
    for (const struct json_value *w = ws ? ws->child : NULL; w; w = w->next)
        smp->worker[i++] = json_number(json_get(w, "requests"), 0);
}

/* Requests per second between two samples; "-" before there are two. */
static void top_rate(const struct top_sample *prev, double before, double now_v, int64_t now,
                     char *out, size_t cap)
{
    if (!prev->at_ms || now <= prev->at_ms || now_v < before) {
        snprintf(out, cap, "-");
        return;
    }
    snprintf(out, cap, "%.1f", (now_v - before) * 1000.0 / (double)(now - prev->at_ms));
}

static void top_draw(struct top_screen *s, const struct json_value *st,
                     const struct json_value *wk, const struct top_sample *prev, int64_t now)
{
    char up[32], rate[32], clock[16], buf[512];
    time_t t = time(NULL);
    struct tm tm;
    strftime(clock, sizeof(clock), "%H:%M:%S", localtime_r(&t, &tm));
    ctl_fmt_duration(json_number(json_get(st, "uptime_s"), 0), up, sizeof(up));
    const struct json_value *pool = json_get(st, "pool"), *tot = json_get(st, "totals");
    double total = json_number(json_get(tot, "requests"), 0);
    top_rate(prev, prev->total, total, now, rate, sizeof(rate));

    s->len = 0;
    s->row = 0;
    top_put(s, "\033[H", 3);
    top_line(s, "corral %s  pid %.0f  up %s  %s  %s", json_str(json_get(st, "version"), "?"),
             json_number(json_get(st, "pid"), 0), up, json_str(json_get(st, "state"), "?"),
             clock);
    top_line(s, "pool %s: %.0f/%.0f processes (max %.0f), %.0f threads live, %.0f busy, "
                "%.0f requests in flight",
             json_str(json_get(pool, "mode"), "?"), json_number(json_get(pool, "processes_live"), 0),
             json_number(json_get(pool, "processes"), 0),
             json_number(json_get(pool, "max_processes"), 0),
             json_number(json_get(pool, "threads_live"), 0),
             json_number(json_get(pool, "threads_busy"), 0),
             json_number(json_get(pool, "requests_in_flight"), 0));
    top_line(s, "requests %.0f (%s/s)  errors %.0f  accepted %.0f  respawns %.0f", total, rate,
             json_number(json_get(tot, "errors"), 0), json_number(json_get(tot, "accepted"), 0),
             json_number(json_get(tot, "respawns"), 0));
    const struct json_value *ls = json_get(st, "listeners");
    for (const struct json_value *l = ls ? ls->child : NULL; l; l = l->next) {
        const struct json_value *q = json_get(l, "queue");
        char depth[32] = "-";
        if (q && q->type == JSON_NUMBER)
            snprintf(depth, sizeof(depth), "%.0f", q->number);
        ctl_sanitize(json_str(json_get(l, "address"), "?"), buf, sizeof(buf));
        top_line(s, "queue %s/%.0f  accepted %.0f  %s", depth,
                 json_number(json_get(l, "backlog"), 0), json_number(json_get(l, "accepted"), 0),
                 buf);
    }
    top_line(s, "%s", "");
    top_line(s, "%6s %7s %-10s %8s %9s %9s %8s %8s %5s  %s", "WORKER", "PID", "STATE", "REQ/S",
             "REQUESTS", "IN FLIGHT", "AVG MS", "RSS MiB", "BUSY", "CURRENT");
    const struct json_value *ws = json_get(wk, "workers");
    size_t i = 0;
    double threads = json_number(json_get(wk, "threads"), 0);
    for (const struct json_value *w = ws ? ws->child : NULL; w; w = w->next, i++) {
        double reqs = json_number(json_get(w, "requests"), 0);
        char wrate[32] = "-", avg[32] = "-", rss[32] = "-", cur[512] = "";
        if (i < prev->workers)
            top_rate(prev, prev->worker[i], reqs, now, wrate, sizeof(wrate));
        const struct json_value *a = json_get(w, "avg_ms"), *r = json_get(w, "rss_kb");
        if (a && a->type == JSON_NUMBER)
            snprintf(avg, sizeof(avg), "%.3f", a->number);
        if (r && r->type == JSON_NUMBER)
            snprintf(rss, sizeof(rss), "%.1f", r->number / 1024.0);
        const struct json_value *ths = json_get(w, "threads");
        bool first = true;
        for (const struct json_value *th = ths ? ths->child : NULL; th || first;
             th = th ? th->next : NULL) {
            cur[0] = '\0';
            if (th && !ctl_thread_current(th, cur, sizeof(cur)))
                continue;
            if (first) {
                double pid = json_number(json_get(w, "pid"), 0);
                char pids[16] = "-";
                if (pid > 0)
                    snprintf(pids, sizeof(pids), "%.0f", pid);
                top_line(s, "%6.0f %7s %-10s %8s %9.0f %9.0f %8s %8s %2.0f/%-2.0f  %s",
                         json_number(json_get(w, "index"), 0), pids,
                         json_str(json_get(w, "state"), "?"), wrate, reqs,
                         json_number(json_get(w, "requests_in_flight"), 0), avg, rss,
                         json_number(json_get(w, "busy"), 0), threads, cur);
                first = false;
            } else {
                top_line(s, "%6s %7s %-10s %8s %9s %9s %8s %8s %5s  %s", "", "", "", "", "", "",
                         "", "", "", cur);
            }
            if (!th)
                break;
        }
    }
    top_line(s, "%s", "");
    top_line(s, "q: quit");
    top_put(s, "\033[J", 3);
}

/* ---- the terminal ---- */

struct top_term {
    struct termios saved;
    bool raw;
};

static int top_term_enter(struct top_term *tt)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "corralctl: top needs a terminal (try: corralctl status, or workers)\n");
        return -1;
    }
    if (tcgetattr(STDIN_FILENO, &tt->saved) < 0) {
        fprintf(stderr, "corralctl: tcgetattr failed: %s\n", strerror(errno));
        return -1;
    }
    struct termios raw = tt->saved;
    raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO); /* ISIG stays: Ctrl-C is SIGINT */
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0) {
        fprintf(stderr, "corralctl: tcsetattr failed: %s\n", strerror(errno));
        return -1;
    }
    tt->raw = true;
    struct sigaction sa = {.sa_handler = top_on_quit}; /* no SA_RESTART: poll returns */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = top_on_winch;
    sigaction(SIGWINCH, &sa, NULL);
    /* The alternate screen, cursor hidden. */
    fputs("\033[?1049h\033[?25l\033[H\033[2J", stdout);
    fflush(stdout);
    return 0;
}

static void top_term_leave(struct top_term *tt)
{
    if (!tt->raw)
        return;
    fputs("\033[?25h\033[?1049l", stdout);
    fflush(stdout);
    tcsetattr(STDIN_FILENO, TCSANOW, &tt->saved);
    tt->raw = false;
}

static void top_size(struct top_screen *s)
{
    struct winsize ws;
    s->width = 80;
    s->height = 24;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row) {
        s->width = ws.ws_col > 1000 ? 1000 : ws.ws_col;
        s->height = ws.ws_row;
    }
}

static void top_write(const struct top_screen *s)
{
    size_t off = 0;
    while (off < s->len) {
        ssize_t n = write(STDOUT_FILENO, s->buf + off, s->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

/* Wait until DEADLINE for a key; true when it says quit. */
static bool top_wait(int64_t deadline)
{
    while (!top_quit && !top_resized) {
        int64_t left = deadline - (int64_t)clock_now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        int n = poll(&p, 1, (int)left);
        if (n <= 0)
            continue; /* timeout, or a signal (the loop condition decides) */
        char keys[64];
        ssize_t k = read(STDIN_FILENO, keys, sizeof(keys));
        if (k == 0)
            return true; /* the terminal went away */
        for (ssize_t i = 0; i < k; i++)
            if (keys[i] == 'q' || keys[i] == 'Q' || keys[i] == 3 /* ^C */)
                return true;
    }
    return top_quit;
}

int ctl_top(struct ctl_conn *c)
{
    struct top_term tt = {0};
    if (top_term_enter(&tt) < 0)
        return CTL_EXIT_USAGE;
    struct top_screen s = {0};
    struct top_sample prev = {0};
    char err[1024] = "";
    int status = CTL_EXIT_OK;
    while (!top_quit) {
        int64_t started = (int64_t)clock_now_ms();
        struct json_value *st = ctl_call(c, "status", err, sizeof(err));
        struct json_value *wk = st ? ctl_call(c, "workers", err, sizeof(err)) : NULL;
        if (!st || !wk) {
            json_value_free(st);
            status = CTL_EXIT_IO;
            break;
        }
        top_resized = 0;
        top_size(&s);
        int64_t now = (int64_t)clock_now_ms();
        top_draw(&s, st, wk, &prev, now);
        top_write(&s);
        top_sample_take(&prev, st, wk, now);
        json_value_free(st);
        json_value_free(wk);
        if (top_wait(started + TOP_PERIOD_MS))
            break;
    }
    top_term_leave(&tt);
    if (status != CTL_EXIT_OK)
        fprintf(stderr, "corralctl: top: %s\n", err);
    free(s.buf);
    free(prev.worker);
    return status;
}
