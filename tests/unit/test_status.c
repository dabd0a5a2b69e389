/*
 * test_status.c — the pool status (status.c) and the status page
 * (status_page.c) from a real scoreboard and real listeners: the JSON
 * members read back with json_read (sums over the slots and both banks,
 * per-listener counts, the kernel's queue depth, pool modes, reload fields,
 * escaping of hostile bytes, the fixed-size reload message), the
 * OpenMetrics text checked against its line grammar, which requests ask for
 * the page, and the page served over FastCGI.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "conn/conn.h"
#include "core/json.h"
#include "ctl/json_read.h"
#include "os/listen.h"
#include "core/scoreboard.h"
#include "status/status.h"
#include "worker/status_page.h"
#include "codec_helpers.h"

#define STORE(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)

/* ---- a pool as the master and its workers leave the scoreboard ---- */

#define POOL_MAX 4     /* --max-processes: the bank size */
#define POOL_THREADS 2 /* --threads */

/* The expected sums of the slots pool_open fills. */
#define EXP_REQUESTS 121
#define EXP_ERRORS 8
#define EXP_ACCEPTED 60
#define EXP_RESPAWNS 3
#define EXP_ACCEPTED_L0 57
#define EXP_ACCEPTED_L1 3

struct pool {
    char dir[64];
    char path[2][108];
    char name1[320]; /* listener 1's name as it must come out: valid UTF-8 */
    struct config cfg;
    struct scoreboard sb;
    struct listener l[2];
    int clients[3];
    struct status_src src;
};

static void pool_listen(struct pool *p, int i, const char *proto, const char *file,
                        unsigned backlog)
{
    char spec[256], err[512], dir[sizeof(p->dir)];
    memcpy(dir, p->dir, sizeof(dir));
    snprintf(p->path[i], sizeof(p->path[i]), "%s/%s", dir, file);
    snprintf(spec, sizeof(spec), "%s:unix:%s", proto, p->path[i]);
    struct listen_addr a;
    if (listen_parse(spec, &a, err, sizeof(err)) != 0)
        fail_msg("listen_parse: %s", err);
    if (listen_open(&p->l[i], &a, backlog, 0600, err, sizeof(err)) != 0)
        fail_msg("listen_open: %s", err);
    assert_string_equal(p->l[i].name, spec);
}

/*
 * A static pool of 2 processes (max 4) with 2 threads, two unix listeners
 * (the second one's path holds a quote, a backslash, a control byte and a
 * byte that is not UTF-8) and 3 clients waiting on the first. Slots:
 *   0  running, one busy thread (GET, a URI that fills the slot's field)
 *   1  running, idle
 *   2  empty (its worker was reaped), its counters stay
 *   3  starting
 *   5  the other bank: a worker of a previous generation, stopping
 */
static void pool_open(struct pool *p)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->dir, sizeof(p->dir), "/tmp/corral-test-status-XXXXXX");
    assert_non_null(mkdtemp(p->dir));

    config_defaults(&p->cfg);
    p->cfg.processes = 2;
    p->cfg.max_processes = POOL_MAX;
    p->cfg.threads = POOL_THREADS;
    p->cfg.status_path = strdup("/corral-status");
    config_finish(&p->cfg);

    pool_listen(p, 0, "uwsgi", "a.sock", 16);
    pool_listen(p, 1, "fastcgi", "q\"b\\c\001d\xff.sock", 8);
    snprintf(p->name1, sizeof(p->name1), "fastcgi:unix:%s/q\"b\\c\001d\xEF\xBF\xBD.sock", p->dir);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strcpy(sun.sun_path, p->path[0]);
    for (int i = 0; i < 3; i++) {
        p->clients[i] = socket(AF_UNIX, SOCK_STREAM, 0);
        assert_int_equal(connect(p->clients[i], (struct sockaddr *)&sun, sizeof(sun)), 0);
    }

    /* What master_setup and master_pool_publish do. */
    assert_int_equal(scoreboard_create(&p->sb, 2 * POOL_MAX, POOL_THREADS, 2), 0);
    struct sb_header *h = p->sb.hdr;
    STORE(&h->slots, 2);
    h->bank_size = POOL_MAX;
    STORE(&h->generation, 1);
    STORE(&h->reload_last_ok, 2);
    STORE(&h->master_pid, (int32_t)getpid());
    STORE(&h->master_state, SB_MASTER_RUNNING);
    STORE(&h->pool_target, 2);
    STORE(&h->max_reached, 4);

    /* What the workers do in their slots. */
    struct sb_worker *w = p->sb.workers;
    STORE(&w[0].pid, 1001);
    STORE(&w[0].state, SB_WORKER_RUNNING);
    STORE(&w[0].busy, 1);
    STORE(&w[0].threads_live, 2);
    STORE(&w[0].requests, 10);
    STORE(&w[0].errors, 1);
    STORE(&w[0].accepted, 6);
    STORE(&w[0].respawns, 1);
    STORE(scoreboard_accepted(&p->sb, 0, 0), 4);
    STORE(scoreboard_accepted(&p->sb, 0, 1), 2);
    struct sb_thread *t = scoreboard_thread(&p->sb, 0, 0);
    memcpy(t->method, "GET\"\\\x01\xff-----------", sizeof(t->method)); /* no NUL */
    memset(t->uri, 'u', sizeof(t->uri));                                /* no NUL */
    memcpy(t->uri, "/\"\\\x02\xfe", 5);
    STORE(&t->request_start_us, 1);
    STORE(&t->requests, 9);
    STORE(&t->state, SB_THREAD_BUSY);

    STORE(&w[1].pid, 1002);
    STORE(&w[1].state, SB_WORKER_RUNNING);
    STORE(&w[1].threads_live, 2);
    STORE(&w[1].requests, 7);
    STORE(&w[1].errors, 2);
    STORE(&w[1].accepted, 3);
    STORE(&w[1].detached, 5); /* an ASGI loop holding 5 requests, no thread busy */
    STORE(scoreboard_accepted(&p->sb, 1, 0), 3);

    STORE(&w[2].requests, 100);
    STORE(&w[2].errors, 5);
    STORE(&w[2].accepted, 50);
    STORE(&w[2].respawns, 2);
    STORE(scoreboard_accepted(&p->sb, 2, 0), 50);

    STORE(&w[3].pid, 1003);
    STORE(&w[3].state, SB_WORKER_STARTING);

    STORE(&w[5].pid, 1005);
    STORE(&w[5].state, SB_WORKER_STOPPING);
    STORE(&w[5].busy, 1);
    STORE(&w[5].threads_live, 2);
    STORE(&w[5].requests, 4);
    STORE(&w[5].accepted, 1);
    STORE(scoreboard_accepted(&p->sb, 5, 1), 1);

    p->src =
        (struct status_src){.cfg = &p->cfg, .sb = &p->sb, .listeners = p->l, .listener_count = 2};
}

static void pool_close(struct pool *p)
{
    for (int i = 0; i < 3; i++)
        close(p->clients[i]);
    listen_close(&p->l[0], true);
    listen_close(&p->l[1], true);
    scoreboard_destroy(&p->sb);
    config_free(&p->cfg);
    rmdir(p->dir);
}

/* cmocka fixture: the pool of pool_open in static mode, closed (its
 * sockets and directory removed) even when the test fails. */
static int pool_setup(void **state)
{
    struct pool *p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    pool_open(p);
    *state = p;
    return 0;
}

static int pool_teardown(void **state)
{
    pool_close(*state);
    free(*state);
    return 0;
}

/* The status members of P in an object, parsed back; *TEXT_LEN gets the
 * length of the text. */
static struct json_value *pool_json(const struct pool *p, size_t *text_len)
{
    struct json j;
    json_init(&j, 1 << 20);
    json_object_begin(&j);
    status_json_members(&p->src, &j);
    json_object_end(&j);
    assert_false(json_failed(&j));
    size_t len;
    const char *text = json_text(&j, &len);
    char err[256];
    struct json_value *v = json_parse(text, len, err, sizeof(err));
    if (!v)
        fail_msg("status JSON does not parse: %s\n%s", err, text);
    json_free(&j);
    if (text_len)
        *text_len = len;
    return v;
}

/* The number at V.PATH (keys separated by '.'); fails when it is missing. */
static double num(const struct json_value *v, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        v = json_get(v, k);
    if (!v || v->type != JSON_NUMBER)
        fail_msg("no number at %s", path);
    return v->number;
}

static const char *str(const struct json_value *v, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        v = json_get(v, k);
    if (!v || v->type != JSON_STRING)
        fail_msg("no string at %s", path);
    return v->string;
}

static const struct json_value *element(const struct json_value *array, size_t i)
{
    assert_non_null(array);
    assert_int_equal(array->type, JSON_ARRAY);
    const struct json_value *e = array->child;
    for (; e && i; i--)
        e = e->next;
    assert_non_null(e);
    return e;
}

static void status_json_sums_slots_and_reads_listen_queue(void **state)
{
    struct pool *p = *state;
    size_t len;
    struct json_value *v = pool_json(p, &len);

    /* The members status.h names, in order, and nothing else: the busy
     * thread's method and URI (unterminated in their slot) are no part of
     * the pool status. */
    static const char *const members[] = {"version", "pid",    "started_at", "uptime_s", "state",
                                          "pool",    "totals", "reload",     "listeners",
                                          "in_flight"};
    assert_int_equal(v->type, JSON_OBJECT);
    assert_int_equal(v->count, sizeof(members) / sizeof(members[0]));
    const struct json_value *m = v->child;
    for (size_t i = 0; i < v->count; i++, m = m->next)
        assert_string_equal(m->key, members[i]);
    assert_true(len < 4096);

    assert_string_equal(str(v, "state"), "running");
    assert_int_equal(num(v, "pid"), getpid());
    assert_true(fabs(num(v, "started_at") - (double)time(NULL)) <= 5);
    assert_true(num(v, "uptime_s") >= 0 && num(v, "uptime_s") < 5);
    assert_true(strlen(str(v, "version")) > 0);

    assert_string_equal(str(v, "pool.mode"), "static");
    assert_int_equal(num(v, "pool.processes"), 2);
    assert_int_equal(num(v, "pool.max_processes"), POOL_MAX);
    assert_int_equal(num(v, "pool.processes_live"), 3);    /* slots 0, 1, 3 */
    assert_int_equal(num(v, "pool.processes_running"), 2); /* 0, 1 */
    assert_int_equal(num(v, "pool.processes_idle"), 1);    /* 1 */
    assert_int_equal(num(v, "pool.max_reached"), 4);
    assert_int_equal(num(v, "pool.threads"), POOL_THREADS);
    assert_int_equal(num(v, "pool.threads_live"), 4); /* not slot 5's */
    assert_int_equal(num(v, "pool.threads_busy"), 1);
    /* Slot 0's busy thread and slot 1's 5 detached requests. */
    assert_int_equal(num(v, "pool.requests_in_flight"), 6);
    const struct json_value *fl = json_get(v, "in_flight");
    assert_non_null(fl);
    assert_int_equal(fl->count, 3); /* slots 0, 1, 3: the serving bank's live workers */
    assert_int_equal(num(element(fl, 0), "index"), 0);
    assert_int_equal(num(element(fl, 0), "requests_in_flight"), 1);
    assert_int_equal(num(element(fl, 1), "pid"), 1002);
    assert_int_equal(num(element(fl, 1), "requests_in_flight"), 5);
    assert_int_equal(num(element(fl, 2), "index"), 3);
    assert_int_equal(num(element(fl, 2), "requests_in_flight"), 0);
    /* Static pools have no spare bounds nor spawn rate. */
    assert_null(json_get(json_get(v, "pool"), "min_spare"));
    assert_null(json_get(json_get(v, "pool"), "spawn_rate"));

    /* Every slot counts, the empty one and the other bank's too. */
    assert_int_equal(num(v, "totals.requests"), EXP_REQUESTS);
    assert_int_equal(num(v, "totals.errors"), EXP_ERRORS);
    assert_int_equal(num(v, "totals.accepted"), EXP_ACCEPTED);
    assert_int_equal(num(v, "totals.respawns"), EXP_RESPAWNS);

    assert_int_equal(num(v, "reload.generation"), 1);
    assert_string_equal(str(v, "reload.state"), "idle");
    assert_int_equal(num(v, "reload.reloads"), 0);
    assert_int_equal(num(v, "reload.failed"), 0);
    assert_int_equal(num(v, "reload.other_live"), 1);
    const struct json_value *last = json_get(json_get(v, "reload"), "last");
    assert_non_null(last);
    assert_int_equal(last->type, JSON_NULL);

    const struct json_value *ls = json_get(v, "listeners");
    assert_non_null(ls);
    assert_int_equal(ls->count, 2);
    const struct json_value *l0 = element(ls, 0), *l1 = element(ls, 1);
    assert_string_equal(str(l0, "address"), p->l[0].name);
    assert_string_equal(str(l0, "protocol"), "uwsgi");
    assert_int_equal(num(l0, "accepted"), EXP_ACCEPTED_L0);
    assert_int_equal(num(l0, "queue"), 3); /* the clients nobody accepted */
    assert_int_equal(num(l0, "backlog"), 16);
    /* Quote, backslash and control byte survive; the stray byte is U+FFFD. */
    assert_string_equal(str(l1, "address"), p->name1);
    assert_string_equal(str(l1, "protocol"), "fastcgi");
    assert_int_equal(num(l1, "accepted"), EXP_ACCEPTED_L1);
    assert_int_equal(num(l1, "queue"), 0);
    assert_int_equal(num(l1, "backlog"), 8);
    json_value_free(v);

    /* The queue is read when asked: one accepted, one fewer waiting. */
    int fd = accept(p->l[0].fd, NULL, NULL);
    assert_true(fd >= 0);
    v = pool_json(p, NULL);
    assert_int_equal(num(element(json_get(v, "listeners"), 0), "queue"), 2);
    json_value_free(v);
    close(fd);

    /* A closed listener (stopping) has no queue: null, not a number. */
    int saved = p->l[1].fd;
    p->l[1].fd = -1;
    v = pool_json(p, NULL);
    const struct json_value *q = json_get(element(json_get(v, "listeners"), 1), "queue");
    assert_non_null(q);
    assert_int_equal(q->type, JSON_NULL);
    json_value_free(v);
    p->l[1].fd = saved;
}

/* Write MSG (LEN bytes, no terminator needed) as the last reload's message,
 * the way master_pool_publish does: between two increments of the seq. */
static void publish_reload_message(struct sb_header *h, const char *msg, size_t len)
{
    atomic_fetch_add_explicit(&h->reload_seq, 1, memory_order_acq_rel);
    memset(h->reload_last, 0, sizeof(h->reload_last));
    memcpy(h->reload_last, msg, len);
    atomic_fetch_add_explicit(&h->reload_seq, 1, memory_order_release);
}

static void status_json_reports_reload_and_states(void **state)
{
    struct pool *p = *state;
    struct sb_header *h = p->sb.hdr;
    /* Generation 3 serves from the second bank; the first bank drains. */
    STORE(&h->bank_base, POOL_MAX);
    STORE(&h->generation, 3);
    STORE(&h->reload_phase, 2);
    STORE(&h->reloads, 2);
    STORE(&h->reload_failed, 1);
    STORE(&h->reload_last_ok, 1);
    STORE(&p->sb.workers[5].state, SB_WORKER_RUNNING);
    STORE(&p->sb.workers[5].busy, 0);
    static const char ok_msg[] = "generation 3 serving; generation 2 stopped";
    publish_reload_message(h, ok_msg, sizeof(ok_msg) - 1);

    struct json_value *v = pool_json(p, NULL);
    assert_int_equal(num(v, "reload.generation"), 3);
    assert_string_equal(str(v, "reload.state"), "draining");
    assert_int_equal(num(v, "reload.reloads"), 2);
    assert_int_equal(num(v, "reload.failed"), 1);
    assert_int_equal(num(v, "reload.other_live"), 3); /* slots 0, 1, 3 */
    assert_true(json_is_true(json_get(json_get(json_get(v, "reload"), "last"), "ok")));
    assert_string_equal(str(v, "reload.last.message"), ok_msg);
    assert_int_equal(num(v, "pool.processes_live"), 1); /* slot 5 */
    assert_int_equal(num(v, "pool.processes_running"), 1);
    assert_int_equal(num(v, "pool.processes_idle"), 1);
    assert_int_equal(num(v, "pool.threads_live"), 2);
    assert_int_equal(num(v, "pool.threads_busy"), 0);
    /* Totals still add up both banks. */
    assert_int_equal(num(v, "totals.requests"), EXP_REQUESTS);
    json_value_free(v);

    /* A failed reload whose message fills the field to its last byte, with
     * bytes that need escaping and a multi-byte character cut by the end. */
    char full[sizeof(h->reload_last)];
    memset(full, 'm', sizeof(full));
    memcpy(full, "\"\\\x01\xff\xC3\xA9", 6);
    full[sizeof(full) - 2] = (char)0xC3;
    full[sizeof(full) - 1] = 'z';
    publish_reload_message(h, full, sizeof(full));
    STORE(&h->reload_last_ok, 0);
    STORE(&h->reload_phase, 1);
    size_t text_len;
    v = pool_json(p, &text_len);
    assert_string_equal(str(v, "reload.state"), "starting");
    assert_false(json_is_true(json_get(json_get(json_get(v, "reload"), "last"), "ok")));
    const char *m = str(v, "reload.last.message");
    char expect[600];
    size_t n = 0;
    memcpy(expect, "\"\\\x01\xEF\xBF\xBD\xC3\xA9", 8);
    n = 8;
    memset(expect + n, 'm', sizeof(full) - 2 - 6);
    n += sizeof(full) - 2 - 6;
    memcpy(expect + n, "\xEF\xBF\xBD", 4); /* the cut 0xC3; 'z' is past the bound */
    assert_string_equal(m, expect);
    assert_true(text_len < 4096);
    json_value_free(v);

    /* The master's states and the reload phases by name. */
    static const char *const states[] = {"running", "stopping", "stopping-now"};
    static const char *const phases[] = {"idle", "starting", "draining"};
    for (uint32_t s = 0; s < 3; s++) {
        STORE(&h->master_state, s);
        STORE(&h->reload_phase, s);
        v = pool_json(p, NULL);
        assert_string_equal(str(v, "state"), states[s]);
        assert_string_equal(str(v, "reload.state"), phases[s]);
        json_value_free(v);
    }
}

static void status_json_pool_modes(void **state)
{
    struct pool *p = *state;
    p->cfg.pool = strdup("dynamic");
    p->cfg.min_spare = 2;
    p->cfg.max_spare = 6;
    STORE(&p->sb.hdr->spawn_rate, 8);
    struct json_value *v = pool_json(p, NULL);
    assert_string_equal(str(v, "pool.mode"), "dynamic");
    assert_int_equal(num(v, "pool.processes"), 3);       /* the live ones, not pool_target */
    assert_int_equal(num(v, "pool.start_processes"), 4); /* 2 + (6 - 2) / 2 */
    assert_int_equal(num(v, "pool.min_spare"), 2);
    assert_int_equal(num(v, "pool.max_spare"), 6);
    assert_int_equal(num(v, "pool.spawn_rate"), 8);
    assert_null(json_get(json_get(v, "pool"), "idle_worker_timeout_s"));
    json_value_free(v);

    free(p->cfg.pool);
    p->cfg.pool = strdup("ondemand");
    p->cfg.idle_worker_timeout_ms = 2500;
    v = pool_json(p, NULL);
    assert_string_equal(str(v, "pool.mode"), "ondemand");
    assert_true(fabs(num(v, "pool.idle_worker_timeout_s") - 2.5) < 1e-9);
    assert_int_equal(num(v, "pool.spawn_rate"), 8);
    assert_null(json_get(json_get(v, "pool"), "min_spare"));
    json_value_free(v);
}

/* ---- OpenMetrics ---- */

/* Whether the N bytes at S are well-formed UTF-8 (RFC 3629). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        } else {
            return false;
        }
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        i += len;
    }
    return true;
}

#define OM_MAX 64

struct om_family {
    char name[128], type[16];
    bool help;
};

struct om_sample {
    char name[128];
    char labels[8][2][400]; /* name, unescaped value */
    int nlabels;
    double value;
};

struct om {
    struct om_family fam[OM_MAX];
    int nfam;
    struct om_sample s[OM_MAX];
    int ns;
};

static bool om_name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* A metric or label name at *P, copied to OUT; fails when there is none. */
static void om_name(const char **p, const char *end, char *out, size_t cap)
{
    const char *s = *p;
    size_t n = 0;
    while (s + n < end && om_name_char(s[n], n == 0))
        n++;
    if (n == 0 || n >= cap)
        fail_msg("expected a name at '%.40s'", s);
    memcpy(out, s, n);
    out[n] = '\0';
    *p = s + n;
}

/* A sample line [LINE, END): name{labels} value, which must belong to FAM. */
static void om_sample_line(struct om *om, const struct om_family *fam, const char *line,
                           const char *end)
{
    if (!fam)
        fail_msg("sample before any # TYPE: %.*s", (int)(end - line), line);
    assert_true(om->ns < OM_MAX);
    struct om_sample *s = &om->s[om->ns++];
    memset(s, 0, sizeof(*s));
    const char *p = line;
    om_name(&p, end, s->name, sizeof(s->name));
    char want[160];
    const char *suffix = strcmp(fam->type, "counter") == 0 ? "_total"
                         : strcmp(fam->type, "info") == 0  ? "_info"
                                                           : "";
    snprintf(want, sizeof(want), "%s%s", fam->name, suffix);
    if (strcmp(s->name, want) != 0)
        fail_msg("sample %s in family %s (%s): expected %s", s->name, fam->name, fam->type, want);
    if (p < end && *p == '{') {
        p++;
        while (p < end && *p != '}') {
            assert_true(s->nlabels < 8);
            char *ln = s->labels[s->nlabels][0], *lv = s->labels[s->nlabels][1];
            om_name(&p, end, ln, 400);
            if (end - p < 2 || p[0] != '=' || p[1] != '"')
                fail_msg("expected =\" after label %s", ln);
            p += 2;
            size_t n = 0;
            for (;;) {
                if (p >= end)
                    fail_msg("unterminated label value of %s", ln);
                char c = *p++;
                if (c == '"')
                    break;
                if (c == '\\') {
                    char e = p < end ? *p++ : 0;
                    if (e == '\\' || e == '"')
                        c = e;
                    else if (e == 'n')
                        c = '\n';
                    else
                        fail_msg("bad escape \\%c in label %s", e, ln);
                }
                assert_true(n < 399);
                lv[n++] = c;
            }
            lv[n] = '\0';
            for (int k = 0; k < s->nlabels; k++)
                assert_string_not_equal(s->labels[k][0], ln);
            s->nlabels++;
            if (p < end && *p == ',')
                p++;
            else if (p >= end || *p != '}')
                fail_msg("expected , or } after label %s", ln);
        }
        if (p >= end)
            fail_msg("unterminated label set in %s", s->name);
        p++;
    }
    if (p >= end || *p != ' ')
        fail_msg("expected a space before the value of %s", s->name);
    p++;
    char num[64];
    size_t n = (size_t)(end - p);
    if (n == 0 || n >= sizeof(num))
        fail_msg("bad value length in %s", s->name);
    memcpy(num, p, n);
    num[n] = '\0';
    char *stop;
    s->value = strtod(num, &stop);
    if (*stop != '\0' || !(num[0] == '-' || (num[0] >= '0' && num[0] <= '9')))
        fail_msg("bad value '%s' of %s", num, s->name);
    if (strcmp(fam->type, "counter") == 0)
        assert_true(s->value >= 0);
    /* No sample twice: same name, same labels. */
    for (int k = 0; k < om->ns - 1; k++) {
        const struct om_sample *o = &om->s[k];
        if (strcmp(o->name, s->name) != 0 || o->nlabels != s->nlabels)
            continue;
        bool same = true;
        for (int l = 0; l < s->nlabels; l++)
            same = same && strcmp(o->labels[l][0], s->labels[l][0]) == 0 &&
                   strcmp(o->labels[l][1], s->labels[l][1]) == 0;
        if (same)
            fail_msg("sample %s repeated", s->name);
    }
}

/*
 * Check TEXT against the OpenMetrics text grammar as far as corral uses it
 * and collect its families and samples: UTF-8 throughout; every line ends
 * in \n; "# TYPE name type" (once per name) opens a family, "# HELP name
 * text" (once) describes the open family; samples follow their family's
 * TYPE and carry its name (counters with _total, info with _info); the text
 * ends with exactly "# EOF\n".
 */
static void om_parse(const char *text, size_t len, struct om *om)
{
    memset(om, 0, sizeof(*om));
    if (!utf8_valid((const unsigned char *)text, len))
        fail_msg("the exposition is not valid UTF-8");
    static const char eof[] = "# EOF\n";
    assert_true(len >= sizeof(eof) - 1);
    assert_memory_equal(text + len - (sizeof(eof) - 1), eof, sizeof(eof) - 1);
    assert_true(memchr(text, '\0', len) == NULL);
    struct om_family *cur = NULL;
    const char *p = text, *stop = text + len;
    while (p < stop) {
        const char *end = memchr(p, '\n', (size_t)(stop - p));
        assert_non_null(end); /* every line ends in \n */
        if (end - p == 5 && memcmp(p, "# EOF", 5) == 0) {
            assert_true(end + 1 == stop); /* nothing after # EOF */
            return;
        }
        if (end - p >= 7 && memcmp(p, "# TYPE ", 7) == 0) {
            assert_true(om->nfam < OM_MAX);
            struct om_family *f = &om->fam[om->nfam];
            const char *q = p + 7;
            om_name(&q, end, f->name, sizeof(f->name));
            if (q >= end || *q != ' ')
                fail_msg("expected a type after # TYPE %s", f->name);
            q++;
            size_t tn = (size_t)(end - q);
            assert_true(tn > 0 && tn < sizeof(f->type));
            memcpy(f->type, q, tn);
            f->type[tn] = '\0';
            static const char *const types[] = {"counter",  "gauge",     "info",
                                                "stateset", "histogram", "gaugehistogram",
                                                "summary",  "unknown"};
            bool known = false;
            for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
                known = known || strcmp(f->type, types[i]) == 0;
            if (!known)
                fail_msg("unknown type '%s' of %s", f->type, f->name);
            for (int i = 0; i < om->nfam; i++)
                if (strcmp(om->fam[i].name, f->name) == 0)
                    fail_msg("family %s declared twice", f->name);
            cur = f;
            om->nfam++;
        } else if (end - p >= 7 && memcmp(p, "# HELP ", 7) == 0) {
            char name[128];
            const char *q = p + 7;
            om_name(&q, end, name, sizeof(name));
            if (!cur || strcmp(cur->name, name) != 0)
                fail_msg("# HELP %s outside its family", name);
            assert_false(cur->help);
            cur->help = true;
            assert_true(q < end && *q == ' ');
        } else if (p < end && *p == '#') {
            fail_msg("unexpected comment line: %.*s", (int)(end - p), p);
        } else {
            om_sample_line(om, cur, p, end);
        }
        p = end + 1;
    }
    fail_msg("no # EOF line");
}

static const char *om_type(const struct om *om, const char *family)
{
    for (int i = 0; i < om->nfam; i++)
        if (strcmp(om->fam[i].name, family) == 0)
            return om->fam[i].type;
    fail_msg("no family %s", family);
    return NULL;
}

/* The value of sample NAME, with the label LABEL="VALUE" when LABEL is not
 * NULL; fails when there is no such sample. */
static double om_value(const struct om *om, const char *name, const char *label, const char *value)
{
    for (int i = 0; i < om->ns; i++) {
        const struct om_sample *s = &om->s[i];
        if (strcmp(s->name, name) != 0)
            continue;
        if (!label && s->nlabels == 0)
            return s->value;
        for (int l = 0; label && l < s->nlabels; l++)
            if (strcmp(s->labels[l][0], label) == 0 && strcmp(s->labels[l][1], value) == 0)
                return s->value;
    }
    fail_msg("no sample %s%s%s", name, label ? " " : "", label ? value : "");
    return -1;
}

static bool om_has(const struct om *om, const char *name, const char *label, const char *value)
{
    for (int i = 0; i < om->ns; i++) {
        const struct om_sample *s = &om->s[i];
        if (strcmp(s->name, name) == 0 && s->nlabels == 1 && strcmp(s->labels[0][0], label) == 0 &&
            strcmp(s->labels[0][1], value) == 0)
            return true;
    }
    return false;
}

static void status_openmetrics_is_well_formed_and_matches_scoreboard(void **state)
{
    struct pool *p = *state;
    STORE(&p->sb.hdr->reloads, 2);
    STORE(&p->sb.hdr->reload_failed, 1);
    STORE(&p->sb.hdr->generation, 2);
    struct status_text t = {0};
    assert_int_equal(status_openmetrics(&p->src, &t), 0);
    assert_false(t.failed);
    struct om om;
    om_parse(t.buf, t.len, &om);

    assert_string_equal(om_type(&om, "corral"), "info");
    assert_int_equal(om_value(&om, "corral_info", "pool", "static"), 1);
    assert_string_equal(om_type(&om, "corral_requests"), "counter");
    assert_int_equal(om_value(&om, "corral_requests_total", NULL, NULL), EXP_REQUESTS);
    assert_int_equal(om_value(&om, "corral_errors_total", NULL, NULL), EXP_ERRORS);
    assert_int_equal(om_value(&om, "corral_accepted_total", NULL, NULL), EXP_ACCEPTED);
    assert_int_equal(om_value(&om, "corral_respawns_total", NULL, NULL), EXP_RESPAWNS);
    assert_int_equal(om_value(&om, "corral_max_processes_reached_total", NULL, NULL), 4);
    assert_int_equal(om_value(&om, "corral_reloads_total", NULL, NULL), 2);
    assert_int_equal(om_value(&om, "corral_reloads_failed_total", NULL, NULL), 1);
    assert_string_equal(om_type(&om, "corral_workers"), "gauge");
    double up = om_value(&om, "corral_uptime_seconds", NULL, NULL);
    assert_true(up >= 0 && up < 5);
    assert_int_equal(om_value(&om, "corral_workers", NULL, NULL), 3);
    assert_int_equal(om_value(&om, "corral_idle_workers", NULL, NULL), 1);
    assert_int_equal(om_value(&om, "corral_max_workers", NULL, NULL), POOL_MAX);
    assert_int_equal(om_value(&om, "corral_generation", NULL, NULL), 2);
    assert_int_equal(om_value(&om, "corral_previous_generation_workers", NULL, NULL), 1);
    assert_int_equal(om_value(&om, "corral_threads", NULL, NULL), 4);
    assert_int_equal(om_value(&om, "corral_busy_threads", NULL, NULL), 1);
    assert_string_equal(om_type(&om, "corral_requests_in_flight"), "gauge");
    assert_int_equal(om_value(&om, "corral_requests_in_flight", "worker", "0"), 1);
    assert_int_equal(om_value(&om, "corral_requests_in_flight", "worker", "1"), 5);
    assert_int_equal(om_value(&om, "corral_requests_in_flight", "worker", "3"), 0);

    /* Per listener, the names escaped and read back as they are (the
     * stray byte as U+FFFD, as in the JSON). */
    assert_string_equal(om_type(&om, "corral_listener_accepted"), "counter");
    assert_int_equal(om_value(&om, "corral_listener_accepted_total", "listener", p->l[0].name),
                     EXP_ACCEPTED_L0);
    assert_int_equal(om_value(&om, "corral_listener_accepted_total", "listener", p->name1),
                     EXP_ACCEPTED_L1);
    assert_int_equal(om_value(&om, "corral_listen_queue", "listener", p->l[0].name), 3);
    assert_int_equal(om_value(&om, "corral_listen_queue", "listener", p->name1), 0);
    assert_int_equal(om_value(&om, "corral_listen_backlog", "listener", p->l[0].name), 16);
    assert_int_equal(om_value(&om, "corral_listen_backlog", "listener", p->name1), 8);
    /* The quote and backslash went out escaped. */
    assert_non_null(strstr(t.buf, "q\\\"b\\\\c"));
    status_text_free(&t);
    assert_null(t.buf);

    /* A closed listener has no queue sample; its other samples stay. */
    int saved = p->l[1].fd;
    p->l[1].fd = -1;
    assert_int_equal(status_openmetrics(&p->src, &t), 0);
    om_parse(t.buf, t.len, &om);
    assert_false(om_has(&om, "corral_listen_queue", "listener", p->name1));
    assert_true(om_has(&om, "corral_listen_queue", "listener", p->l[0].name));
    assert_true(om_has(&om, "corral_listen_backlog", "listener", p->name1));
    status_text_free(&t);
    p->l[1].fd = saved;

    /* Appending to a text that already holds something keeps it. */
    t = (struct status_text){0};
    assert_int_equal(status_openmetrics(&p->src, &t), 0);
    size_t first = t.len;
    assert_int_equal(status_openmetrics(&p->src, &t), 0);
    assert_true(t.len > first + 100);
    assert_memory_equal(t.buf, "# TYPE corral info\n", 19);
    assert_memory_equal(t.buf + first, "# TYPE corral info\n", 19);
    assert_memory_equal(t.buf + t.len - 6, "# EOF\n", 6);
    status_text_free(&t);
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* The exposition for thousands of listeners, in a child whose address space
 * is capped just above what it uses: realloc fails, status_openmetrics says
 * so and the text it leaves is freed. */
static void status_openmetrics_reports_out_of_memory(void **state)
{
    (void)state;
#ifdef UNDER_ASAN
    skip(); /* ASan reserves terabytes of shadow: no address-space limit works */
#else
    enum { N = 20000 };
    struct scoreboard sb;
    assert_int_equal(scoreboard_create(&sb, 1, 1, N), 0);
    struct listener *ls = calloc(N, sizeof(*ls));
    assert_non_null(ls);
    for (size_t i = 0; i < N; i++) {
        ls[i].fd = -1;
        ls[i].backlog = 1;
        memset(ls[i].name, 'n', 300);
        snprintf(ls[i].name + 300, 12, "%zu", i);
    }
    struct config cfg;
    config_defaults(&cfg);
    struct status_src src = {.cfg = &cfg, .sb = &sb, .listeners = ls, .listener_count = N};

    /* Unlimited, the text is whole: about 14 MB (no queue samples: the
     * listeners are closed). */
    struct status_text t = {0};
    assert_int_equal(status_openmetrics(&src, &t), 0);
    assert_true(t.len > (size_t)N * 600);
    assert_memory_equal(t.buf + t.len - 6, "# EOF\n", 6);
    status_text_free(&t);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        long pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        if (!f || fscanf(f, "%ld", &pages) != 1)
            _exit(2);
        fclose(f);
        struct rlimit rl;
        rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (4u << 20);
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(2);
        struct status_text c = {0};
        int rc = status_openmetrics(&src, &c);
        bool ok = rc == -1 && c.failed && c.len < (size_t)N * 600 &&
                  (c.len < 6 || memcmp(c.buf + c.len - 6, "# EOF\n", 6) != 0);
        status_text_free(&c);
        _exit(ok ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 2)
        fail_msg("the child could not cap its address space");
    assert_int_equal(WEXITSTATUS(st), 0);
    config_free(&cfg);
    free(ls);
    scoreboard_destroy(&sb);
#endif
}

/* ---- the page: a FastCGI request over a socket pair ---- */

struct page {
    int peer; /* the front end's end */
    struct listener listener;
    struct conn conn;
    struct corral_request req;  /* the request on conn (the worker's slot holds both) */
    struct proto_limits limits;
};

/* A FastCGI connection whose request KV is decoded and begun. */
static corral_request *page_open(struct page *pg, const char *const *kv)
{
    memset(pg, 0, sizeof(*pg));
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    pg->peer = sv[1];
    pg->listener.addr.codec = &proto_fastcgi;
    snprintf(pg->listener.name, sizeof(pg->listener.name), "fastcgi:test");
    pg->limits = (struct proto_limits)PROTO_LIMITS_DEFAULT;
    assert_int_equal(conn_init(&pg->conn, sv[0], &pg->listener, &pg->limits, 2000), 0);
    snprintf(pg->conn.peer, sizeof(pg->conn.peer), "test");
    uint8_t pkt[8192];
    size_t n = codec_fcgi_request(pkt, kv, NULL, 0);
    assert_int_equal(write(pg->peer, pkt, n), (ssize_t)n);
    struct proto_event ev;
    for (;;) {
        enum proto_result r = conn_decode(&pg->conn, &ev);
        if (r == PROTO_PARAMS_DONE)
            break;
        assert_int_equal(r, PROTO_NEED_MORE);
        assert_true(conn_fill(&pg->conn, 2000) > 0);
    }
    request_begin(&pg->req, &pg->conn);
    return &pg->req;
}

static void page_close(struct page *pg)
{
    close(pg->conn.fd);
    conn_fini(&pg->conn);
    request_free(&pg->req);
    close(pg->peer);
}

/* The STDOUT stream the front end received (records checked, END_REQUEST
 * required), NUL-terminated in OUT; returns its length. */
static size_t page_response(struct page *pg, char *out, size_t cap)
{
    static uint8_t raw[1 << 20];
    size_t len = 0;
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    setsockopt(pg->peer, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (;;) {
        ssize_t n = read(pg->peer, raw + len, sizeof(raw) - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    size_t off = 0, n = 0;
    bool ended = false;
    while (off + 8 <= len) {
        const uint8_t *h = raw + off;
        size_t cl = (size_t)h[4] << 8 | h[5];
        assert_int_equal(h[0], 1);
        if (h[1] == 6) {
            assert_true(n + cl < cap);
            memcpy(out + n, h + 8, cl);
            n += cl;
        } else if (h[1] == 3) {
            ended = true;
        }
        off += 8 + cl + h[6];
    }
    assert_int_equal(off, len);
    assert_true(ended);
    out[n] = '\0';
    return n;
}

static bool wanted(const struct config *cfg, const char *const *kv)
{
    struct page pg;
    corral_request *r = page_open(&pg, kv);
    bool w = status_page_wanted(cfg, r);
    page_close(&pg);
    return w;
}

#define KV(...) ((const char *const[]){__VA_ARGS__, NULL})

static void status_page_wanted_matches_the_path_only(void **state)
{
    (void)state;
    struct config cfg;
    config_defaults(&cfg);
    cfg.status_path = strdup("/corral-status");

    assert_true(wanted(&cfg, KV("REQUEST_URI", "/corral-status")));
    assert_true(wanted(&cfg, KV("REQUEST_URI", "/corral-status?openmetrics")));
    assert_true(wanted(&cfg, KV("REQUEST_URI", "/corral-status?x=1&y")));
    assert_true(wanted(&cfg, KV("REQUEST_URI", "/corral-status?")));
    assert_false(wanted(&cfg, KV("REQUEST_URI", "/corral-status2")));
    assert_false(wanted(&cfg, KV("REQUEST_URI", "/corral-statusx?openmetrics")));
    assert_false(wanted(&cfg, KV("REQUEST_URI", "/corral-status/")));
    assert_false(wanted(&cfg, KV("REQUEST_URI", "/corral-statu")));
    assert_false(wanted(&cfg, KV("REQUEST_URI", "/corral-statu?s")));
    assert_false(wanted(&cfg, KV("REQUEST_URI", "/corral%2Dstatus"))); /* not decoded */
    assert_false(wanted(&cfg, KV("REQUEST_URI", "")));
    assert_false(wanted(&cfg, KV("REQUEST_URI", "/")));

    /* REQUEST_URI decides when it is there. */
    assert_false(wanted(&cfg, KV("REQUEST_URI", "/app", "DOCUMENT_URI", "/corral-status")));
    assert_false(wanted(&cfg, KV("REQUEST_URI", "/app", "SCRIPT_NAME", "/corral-status")));

    /* Without it, DOCUMENT_URI. */
    assert_true(wanted(&cfg, KV("DOCUMENT_URI", "/corral-status")));
    assert_false(wanted(&cfg, KV("DOCUMENT_URI", "/corral-status2")));
    assert_false(wanted(&cfg, KV("DOCUMENT_URI", "/app", "SCRIPT_NAME", "/corral-status")));

    /* Without either, SCRIPT_NAME + PATH_INFO. */
    assert_true(wanted(&cfg, KV("SCRIPT_NAME", "/corral-status")));
    assert_true(wanted(&cfg, KV("SCRIPT_NAME", "/corral-status", "PATH_INFO", "")));
    assert_true(wanted(&cfg, KV("SCRIPT_NAME", "", "PATH_INFO", "/corral-status")));
    assert_true(wanted(&cfg, KV("PATH_INFO", "/corral-status")));
    assert_true(wanted(&cfg, KV("SCRIPT_NAME", "/corral", "PATH_INFO", "-status")));
    assert_false(wanted(&cfg, KV("SCRIPT_NAME", "/corral-status2")));
    assert_false(wanted(&cfg, KV("SCRIPT_NAME", "/corral-status", "PATH_INFO", "x")));
    assert_false(wanted(&cfg, KV("SCRIPT_NAME", "/corral-status", "PATH_INFO", "/")));
    assert_false(wanted(&cfg, KV("SCRIPT_NAME", "/corral-stat", "PATH_INFO", "usx")));
    assert_false(wanted(&cfg, KV("SCRIPT_NAME", "/corral-status/x", "PATH_INFO", "")));
    assert_false(wanted(&cfg, KV("SCRIPT_NAME", "/corral")));
    assert_false(wanted(&cfg, KV("REQUEST_METHOD", "GET"))); /* no path at all */

    /* The page off: nothing asks for it. */
    free(cfg.status_path);
    cfg.status_path = NULL;
    assert_false(wanted(&cfg, KV("REQUEST_URI", "/corral-status")));
    assert_false(wanted(&cfg, KV("DOCUMENT_URI", "/corral-status")));
    assert_false(wanted(&cfg, KV("SCRIPT_NAME", "", "PATH_INFO", "")));
    assert_false(wanted(&cfg, KV("REQUEST_METHOD", "GET")));
    config_free(&cfg);
}

/* Serve the page of P for the request KV as the worker does (wanted, serve,
 * finish); the response's head and body go to HEAD and *BODY (in BUF). */
static void page_serve(struct pool *p, const char *const *kv, char *buf, size_t cap, char *head,
                       size_t head_cap, const char **body, size_t *body_len)
{
    struct page pg;
    corral_request *r = page_open(&pg, kv);
    assert_true(status_page_wanted(&p->cfg, r));
    int rc = status_page_serve(&p->src, r);
    assert_int_equal(rc, 0);
    assert_int_equal(request_finish(r, rc), 0);
    size_t n = page_response(&pg, buf, cap);
    page_close(&pg);
    char *sep = strstr(buf, "\r\n\r\n");
    assert_non_null(sep);
    size_t hl = (size_t)(sep - buf) + 2;
    assert_true(hl < head_cap);
    memcpy(head, buf, hl);
    head[hl] = '\0';
    *body = sep + 4;
    *body_len = n - (size_t)(sep + 4 - buf);
}

/* The value of header NAME in HEAD ("Name: value\r\n" lines), or NULL. */
static const char *header(const char *head, const char *name, char *out, size_t cap)
{
    char key[64];
    snprintf(key, sizeof(key), "\r\n%s: ", name);
    const char *h = strstr(head, key);
    if (!h)
        return NULL;
    h += strlen(key);
    size_t n = strcspn(h, "\r");
    assert_true(n < cap);
    memcpy(out, h, n);
    out[n] = '\0';
    return out;
}

static void status_page_serves_json_and_openmetrics_over_fastcgi(void **state)
{
    struct pool *p = *state;
    static char buf[1 << 20];
    char head[1024], v[256];
    const char *body;
    size_t body_len;

    /* JSON: the members in one object. */
    page_serve(p, KV("REQUEST_METHOD", "GET", "REQUEST_URI", "/corral-status", "QUERY_STRING", ""),
               buf, sizeof(buf), head, sizeof(head), &body, &body_len);
    assert_true(strncmp(head, "Status: 200 OK\r\n", 16) == 0);
    assert_string_equal(header(head, "Content-Type", v, sizeof(v)), "application/json");
    assert_string_equal(header(head, "Cache-Control", v, sizeof(v)), "no-store");
    assert_non_null(header(head, "Content-Length", v, sizeof(v)));
    assert_int_equal(strtoul(v, NULL, 10), body_len);
    char err[256];
    struct json_value *j = json_parse(body, body_len, err, sizeof(err));
    if (!j)
        fail_msg("page JSON: %s", err);
    assert_int_equal(j->type, JSON_OBJECT);
    assert_int_equal(num(j, "totals.requests"), EXP_REQUESTS);
    assert_int_equal(num(element(json_get(j, "listeners"), 0), "queue"), 3);
    json_value_free(j);

    /* ?openmetrics, alone or among other parameters, with or without a
     * value. */
    static const char *const queries[] = {"openmetrics", "a=1&openmetrics", "openmetrics=1&b",
                                          "x&openmetrics="};
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        char uri[128];
        snprintf(uri, sizeof(uri), "/corral-status?%s", queries[i]);
        page_serve(p, KV("REQUEST_METHOD", "GET", "REQUEST_URI", uri, "QUERY_STRING", queries[i]),
                   buf, sizeof(buf), head, sizeof(head), &body, &body_len);
        assert_true(strncmp(head, "Status: 200 OK\r\n", 16) == 0);
        assert_string_equal(header(head, "Content-Type", v, sizeof(v)), STATUS_OPENMETRICS_TYPE);
        assert_non_null(header(head, "Content-Length", v, sizeof(v)));
        assert_int_equal(strtoul(v, NULL, 10), body_len);
        struct om om;
        om_parse(body, body_len, &om);
        assert_int_equal(om_value(&om, "corral_requests_total", NULL, NULL), EXP_REQUESTS);
        assert_int_equal(om_value(&om, "corral_listen_queue", "listener", p->l[0].name), 3);
    }

    /* A parameter that only starts like it is not it. */
    static const char *const not_om[] = {"openmetricsx", "openmetric", "xopenmetrics",
                                         "a=openmetrics"};
    for (size_t i = 0; i < sizeof(not_om) / sizeof(not_om[0]); i++) {
        page_serve(p, KV("REQUEST_URI", "/corral-status", "QUERY_STRING", not_om[i]), buf,
                   sizeof(buf), head, sizeof(head), &body, &body_len);
        assert_string_equal(header(head, "Content-Type", v, sizeof(v)), "application/json");
    }

    /* HEAD: the head with the length, no body. */
    page_serve(p, KV("REQUEST_METHOD", "HEAD", "REQUEST_URI", "/corral-status"), buf, sizeof(buf),
               head, sizeof(head), &body, &body_len);
    assert_string_equal(header(head, "Content-Type", v, sizeof(v)), "application/json");
    assert_non_null(header(head, "Content-Length", v, sizeof(v)));
    assert_true(strtoul(v, NULL, 10) > 100);
    assert_int_equal(body_len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(status_json_sums_slots_and_reads_listen_queue, pool_setup,
                                        pool_teardown),
        cmocka_unit_test_setup_teardown(status_json_reports_reload_and_states, pool_setup,
                                        pool_teardown),
        cmocka_unit_test_setup_teardown(status_json_pool_modes, pool_setup, pool_teardown),
        cmocka_unit_test_setup_teardown(status_openmetrics_is_well_formed_and_matches_scoreboard,
                                        pool_setup, pool_teardown),
        cmocka_unit_test(status_openmetrics_reports_out_of_memory),
        cmocka_unit_test(status_page_wanted_matches_the_path_only),
        cmocka_unit_test_setup_teardown(status_page_serves_json_and_openmetrics_over_fastcgi,
                                        pool_setup, pool_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
