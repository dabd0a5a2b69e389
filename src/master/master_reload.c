/*
 * master_reload.c — reloads without dropped requests (SIGHUP, corralctl
 * reload and chain-reload; see master_state.h for the phases).
 *
 * A reload builds the whole new configuration first — the same command line
 * and config file the master started with, parsed again and validated —
 * and the app for it (app_prepare); any error leaves everything as it
 * was. An adapter with a check (app.h: the native handler) is checked in a
 * child the loop reaps (RELOAD_CHECKING, master_reexec.c), never in the
 * loop itself; a failed check is refused like an error above. Then the
 * new generation is forked into the bank of slots the old one does not
 * use, with the new config and app, while the old generation keeps
 * serving. Only when every new worker reports RUNNING in the
 * scoreboard is the new config committed and the old workers sent SIGTERM
 * (they stop accepting, serve what they accepted and what already waited
 * in the listen queue, and exit). A new worker that dies before RUNNING
 * (lazy WSGI: an import error, exit 3) or a start that takes longer than
 * MASTER_RELOAD_START_MS rolls back: the new workers are stopped, the old
 * config and app are current again, and the old generation never stopped
 * serving. chain-reload does the same one slot at a time: new worker i,
 * RUNNING, then SIGTERM to old worker i, then slot i + 1.
 *
 * The listening sockets are never closed or re-bound: they belong to the
 * master. What is fixed at start (listeners, threads, the scoreboard's
 * max_processes, the control socket, log files, pidfile, --preload) keeps
 * its old value, and the reload says so in the log and the reply.
 *
 * With --preload the app lives in the master, so new code needs a new
 * master image: the import is first checked in a child (RELOAD_CHECKING),
 * then the master re-executes itself, keeping its pid, listeners, control
 * socket, scoreboard and workers (master_reexec.c), and the new image starts
 * the new generation from STARTING like the path above (master_adopt.c).
 * There is no old config to roll back to after the exec: a new generation
 * that fails then leaves the old workers serving, "stranded" (they cannot
 * be replaced until a reload succeeds).
 */
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_load.h"
#include "core/log.h"
#include "master_state.h"
#include "worker/worker.h"
#include "core/clock.h"

#define MASTER_RELOAD_START_MS 60000 /* new workers must be RUNNING by then */

const char *master_reload_phase_name(enum master_reload_phase p)
{
    switch (p) {
    case RELOAD_CHECKING:
        return "checking";
    case RELOAD_STARTING:
        return "starting";
    case RELOAD_DRAINING:
        return "draining";
    default:
        return "idle";
    }
}

/* --env of C, in the master's environment: lazy workers import with it. */
static void master_reload_apply_env(const struct config *c)
{
    for (size_t i = 0; i < c->env_count; i++) {
        const char *eq = strchr(c->env[i], '=');
        char name[256];
        size_t len = (size_t)(eq - c->env[i]);
        if (len >= sizeof(name))
            continue; /* config_validate refuses such names */
        memcpy(name, c->env[i], len);
        name[len] = '\0';
        if (setenv(name, eq + 1, 1) < 0)
            log_msg(LOG_ERROR, "reload: setenv(\"%s\") failed: out of memory", name);
    }
}

/* The new configuration, or NULL with the reason in err. What only changes
 * on a restart keeps its running value, named in NOTE (config_keep_fixed). */
static struct config *master_reload_read(struct master *m, char *err, size_t errlen, char *note,
                                         size_t notelen)
{
    struct config *c = malloc(sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    enum config_load_result a =
        config_load(c, m->argc, m->argv, m->cfg->listen, m->cfg->listen_count, err, errlen);
    if (a != CONFIG_LOAD_RUN) {
        if (a != CONFIG_LOAD_FAIL)
            snprintf(err, errlen, "the command line no longer asks to serve");
        goto fail;
    }
    if (config_keep_fixed(c, m->cfg, note, notelen) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (c->processes > m->max_workers) {
        snprintf(err, errlen,
                 "processes = %u is over max_processes = %u, which is fixed at start "
                 "(restart to raise it)",
                 c->processes, m->max_workers);
        goto fail;
    }
    return c;
fail:
    config_free(c);
    free(c);
    return NULL;
}

/* Gracefully stop worker slot I (if it runs) and keep it from respawning. */
static void master_reload_retire(struct master *m, unsigned i)
{
    struct master_worker *mw = &m->workers[i];
    mw->respawn_at_ms = 0;
    if (mw->pid && !mw->retiring) {
        kill(mw->pid, SIGTERM);
        mw->retiring = true;
    }
}

static void master_reload_run_pending(struct master *m);

static void master_reload_record(struct master *m, bool ok, const char *fmt, const char *a,
                                 const char *b)
{
    m->reload.last_ok = ok;
    /* A long message is cut to fit (the log line has all of it). */
    if (snprintf(m->reload.last, sizeof(m->reload.last), fmt, a, b) < 0)
        m->reload.last[0] = '\0';
}

/* Start the generation of m->cfg and m->app in the other bank while the
 * current one serves (the phase STARTING). */
static void master_reload_begin(struct master *m, bool chain, const char *why, const char *note)
{
    struct master_reload *r = &m->reload;
    const struct config *c = m->cfg;
    unsigned next_base = m->base ? 0 : m->max_workers;
    r->old_base = m->base;
    r->old_target = m->target;
    r->chain = chain;
    r->next_slot = 0;
    /* A static pool starts its (new) --processes; a dynamic or ondemand
     * one as many workers as it has now (at least 1, so that the reload
     * can see the new code run), and sizes itself again once they run. */
    unsigned start;
    if (m->pool.mode == POOL_STATIC) {
        m->target = c->processes;
        start = m->target;
    } else {
        start = master_bank_live(m, m->base);
        if (start < 1)
            start = 1;
    }
    m->base = next_base;
    r->start_count = start;
    uint64_t now = clock_now_ms();
    for (unsigned p = 0; p < m->max_workers; p++) {
        struct master_worker *mw = &m->workers[master_slot(m, p)];
        memset(mw, 0, sizeof(*mw));
        if (p < start && (!chain || p == 0))
            mw->respawn_at_ms = now;
    }
    if (r->phase != RELOAD_CHECKING)
        master_notify_reloading(m); /* a --preload reload told systemd before its check */
    r->phase = RELOAD_STARTING;
    r->deadline_ms = now + MASTER_RELOAD_START_MS;
    master_update_slots(m);
    if (note[0])
        log_msg(LOG_WARN,
                "%s: these settings only change on a restart and keep their old "
                "values: %s",
                why, note);
    log_msg(LOG_INFO,
            "%s: generation %u starting with %u processes%s; generation %u serves "
            "until they run",
            why, r->generation + 1, start, chain ? ", one at a time" : "", r->generation);
    snprintf(r->last, sizeof(r->last), "generation %u starting (%s)", r->generation + 1, why);
}

/* Free the master-side state of an app a reload replaced (the workers
 * that run it have their own copy); OWNED: the reload allocated it. */
static void master_reload_drop_app(struct app *app, bool owned)
{
    if (!app)
        return;
    if (app->ops && app->ops->unload)
        app->ops->unload(app);
    if (owned)
        free(app);
}

/* Start the generation of config C and app APP (both built by a reload,
 * now owned here) beside the current one, which is kept for a rollback. */
static void master_reload_start(struct master *m, struct config *c, struct app *app, bool chain,
                                const char *why, const char *note)
{
    struct master_reload *r = &m->reload;
    r->old_cfg = m->cfg;
    r->old_app = m->app;
    r->old_app_owned = r->app_owned;
    r->app_owned = true;
    r->old_owned = r->owned_cfg;
    r->owned_cfg = c;
    r->reloads++;
    m->cfg = c;
    m->app = app;
    master_reload_apply_env(c);
    master_reload_begin(m, chain, why, note);
}

void master_reload_adopted(struct master *m, bool chain, const char *why)
{
    struct master_reload *r = &m->reload;
    /* The previous image's config and app are gone with it: a failure from
     * here on strands the old workers instead of rolling back. */
    r->old_cfg = NULL;
    r->old_app = NULL;
    r->old_owned = r->owned_cfg = NULL;
    r->adopted = true;
    r->phase = RELOAD_CHECKING; /* systemd heard RELOADING=1 before the exec */
    master_reload_begin(m, chain, why, "");
}

void master_reload_check_failed(struct master *m, const char *reason)
{
    struct master_reload *r = &m->reload;
    r->phase = RELOAD_IDLE;
    r->failures++;
    char gen[16];
    snprintf(gen, sizeof(gen), "%u", r->generation + 1);
    master_reload_record(m, false, "generation %s was not started: %s", gen, reason);
    log_msg(LOG_ERROR, "%s: reload failed, generation %u keeps serving: %s", r->why, r->generation,
            reason);
    master_notify_ready(m);
    master_reload_run_pending(m);
}

/* A reload that failed before any new worker started: counted, logged. */
static void master_reload_refused(struct master *m, const char *why, const char *err)
{
    struct master_reload *r = &m->reload;
    r->failures++;
    master_reload_record(m, false, "%s: %s", why, err);
    log_msg(LOG_ERROR, "%s: reload refused, generation %u keeps serving: %s", why, r->generation,
            err);
}

int master_reload(struct master *m, bool chain, const char *why, char *err, size_t errlen,
                  char *note, size_t notelen)
{
    struct master_reload *r = &m->reload;
    note[0] = '\0';
    if (m->state != MASTER_RUNNING) {
        snprintf(err, errlen, "corral is stopping: nothing to reload");
        goto busy;
    }
    if (m->stop_delay_until_ms) {
        snprintf(err, errlen,
                 "corral is in its stop delay (--stop-delay) before stopping: "
                 "nothing to reload");
        goto busy;
    }
    unsigned next_base = m->base ? 0 : m->max_workers;
    unsigned left = master_bank_live(m, next_base);
    if ((r->phase != RELOAD_IDLE || left) && strcmp(why, "SIGHUP") == 0) {
        /* A signal has no reply to carry a refusal: run it next. */
        r->pending_hup = true;
        log_msg(LOG_INFO, "SIGHUP: a reload is in progress; reloading again when it is done");
        return 0;
    }
    if (r->phase != RELOAD_IDLE) {
        snprintf(err, errlen,
                 "a reload is in progress (generation %u %s): try again when it is "
                 "done (corralctl status)",
                 r->generation + (r->phase == RELOAD_STARTING), master_reload_phase_name(r->phase));
        goto busy;
    }
    if (left) {
        snprintf(err, errlen,
                 "%u workers of a previous generation are still stopping: try "
                 "again when they are gone",
                 left);
        goto busy;
    }
    char cerr[1024];
    struct config *c = master_reload_read(m, cerr, sizeof(cerr), note, notelen);
    if (!c) {
        snprintf(err, errlen, "the new configuration is invalid: %s", cerr);
        goto refused;
    }
    if (m->reexec.enabled) {
        /* The new image reads the config again itself. */
        unsigned start = m->pool.mode == POOL_STATIC ? c->processes : master_bank_live(m, m->base);
        config_free(c);
        free(c);
        if (master_reexec_check(m, cerr, sizeof(cerr)) < 0) {
            snprintf(err, errlen, "%s", cerr);
            goto refused;
        }
        r->phase = RELOAD_CHECKING;
        r->chain = chain;
        r->reloads++;
        r->start_count = start ? start : 1;
        r->deadline_ms = clock_now_ms() + MASTER_RELOAD_START_MS;
        snprintf(r->why, sizeof(r->why), "%s", why);
        master_notify_reloading(m);
        if (note[0])
            log_msg(LOG_WARN,
                    "%s: these settings only change on a restart and keep their old "
                    "values: %s",
                    why, note);
        log_msg(LOG_INFO,
                "%s: checking that the app imports (--preload), then re-executing the "
                "master; generation %u serves meanwhile",
                why, r->generation);
        snprintf(r->last, sizeof(r->last), "generation %u: checking the import (%s)",
                 r->generation + 1, why);
        return 0;
    }
    struct app *app = calloc(1, sizeof(*app));
    if (!app || app_prepare(app, c, cerr, sizeof(cerr)) < 0) {
        snprintf(err, errlen, "the new app cannot be loaded: %s", app ? cerr : "out of memory");
        free(app);
        config_free(c);
        free(c);
        goto refused;
    }
    if (app_has_check(app)) {
        /* The adapter checks the new code in a child; the loop reaps it
         * (master_reload_check_reaped) and the generation starts then. */
        if (master_reexec_check_app(m, app, cerr, sizeof(cerr)) < 0) {
            snprintf(err, errlen, "the new app cannot be loaded: %s", cerr);
            master_reload_drop_app(app, true);
            config_free(c);
            free(c);
            goto refused;
        }
        r->next_cfg = c;
        r->next_app = app;
        r->phase = RELOAD_CHECKING;
        r->chain = chain;
        unsigned start = m->pool.mode == POOL_STATIC ? c->processes : master_bank_live(m, m->base);
        r->start_count = start ? start : 1; /* for the reply; set again when it starts */
        r->deadline_ms = clock_now_ms() + MASTER_RELOAD_START_MS;
        snprintf(r->why, sizeof(r->why), "%s", why);
        snprintf(r->note, sizeof(r->note), "%s", note);
        master_notify_reloading(m);
        snprintf(r->last, sizeof(r->last), "generation %u: checking the app (%s)",
                 r->generation + 1, why);
        return 0;
    }
    master_reload_start(m, c, app, chain, why, note);
    return 0;
refused:
    master_reload_refused(m, why, err);
    return -1;
busy: /* not a failed reload: none was tried */
    log_msg(LOG_WARN, "%s: reload refused: %s", why, err);
    return -1;
}

/* The reload a SIGHUP asked for while another one ran. */
static void master_reload_run_pending(struct master *m)
{
    char err[1280], note[256];
    if (!m->reload.pending_hup)
        return;
    m->reload.pending_hup = false;
    master_reload(m, false, "SIGHUP", err, sizeof(err), note, sizeof(note)); /* it logs */
}

/* Every new worker RUNNING: the new config is the config; the old
 * generation stops. */
static void master_reload_commit(struct master *m)
{
    struct master_reload *r = &m->reload;
    for (unsigned p = 0; p < m->max_workers; p++)
        master_reload_retire(m, r->old_base + p);
    if (r->old_owned) {
        config_free(r->old_owned);
        free(r->old_owned);
    }
    master_reload_drop_app(r->old_app, r->old_app_owned);
    r->old_owned = NULL;
    r->old_cfg = NULL;
    r->old_app = NULL;
    r->adopted = r->stranded = false;
    r->generation++;
    r->phase = RELOAD_DRAINING;
    r->deadline_ms = clock_now_ms() + m->cfg->graceful_timeout_ms;
    char gen[16], old[16];
    snprintf(gen, sizeof(gen), "%u", r->generation);
    snprintf(old, sizeof(old), "%u", r->generation - 1);
    master_reload_record(m, true, "generation %s serving; generation %s stopped", gen, old);
    master_notify_ready(m);
    log_msg(LOG_INFO,
            "reload: generation %u is serving; %u workers of generation %u finish "
            "their requests and exit",
            r->generation, master_bank_live(m, r->old_base), r->generation - 1);
    master_update_slots(m);
}

void master_reload_log_stranded(const struct master *m)
{
    log_msg(LOG_ERROR,
            "reload: the new code is not running after the re-exec of the master "
            "(--preload): the previous workers (generation %u, %u processes) keep serving but "
            "cannot be replaced, not even when one exits; fix the app and reload",
            m->reload.generation, master_bank_live(m, m->base));
}

/* A new worker failed to start: back to the old generation, which never
 * stopped serving (a chain reload puts back the slots it already stopped). */
static void master_reload_fail(struct master *m, const char *reason)
{
    struct master_reload *r = &m->reload;
    for (unsigned p = 0; p < m->max_workers; p++) {
        /* One still starting has accepted nothing (a worker accepts once
         * RUNNING): it need not finish its import. The others drain. */
        unsigned i = master_slot(m, p);
        if (m->workers[i].pid && atomic_load(&m->sb.workers[i].state) == SB_WORKER_STARTING)
            kill(m->workers[i].pid, SIGKILL);
        master_reload_retire(m, i);
    }
    if (r->adopted) {
        /* After a re-exec the old config and app are gone: the new ones
         * stay, and the old workers serve on without them (stranded). */
        r->adopted = false;
        r->stranded = true;
    } else {
        config_free(r->owned_cfg);
        free(r->owned_cfg);
        r->owned_cfg = r->old_owned;
        r->old_owned = NULL;
        m->cfg = r->old_cfg;
        master_reload_drop_app(m->app, r->app_owned);
        m->app = r->old_app;
        r->app_owned = r->old_app_owned;
        master_reload_apply_env(m->cfg);
    }
    m->base = r->old_base;
    m->target = r->old_target;
    uint64_t now = clock_now_ms();
    /* A static pool refills its slots; the others size themselves. */
    for (unsigned p = 0; p < m->target && m->pool.mode == POOL_STATIC && !r->stranded; p++) {
        struct master_worker *mw = &m->workers[master_slot(m, p)];
        if (!mw->pid)
            mw->respawn_at_ms = now;
    }
    r->phase = RELOAD_IDLE;
    r->failures++;
    char gen[16];
    snprintf(gen, sizeof(gen), "%u", r->generation + 1);
    master_reload_record(m, false, "generation %s failed to start: %s", gen, reason);
    log_msg(LOG_ERROR, "reload: generation %u failed to start: %s; generation %u keeps serving",
            r->generation + 1, reason, r->generation);
    if (r->stranded)
        master_reload_log_stranded(m);
    master_update_slots(m);
    master_notify_ready(m); /* the old generation serves (systemd saw RELOADING=1) */
    master_reload_run_pending(m);
}

static bool master_reload_running(const struct master *m, unsigned i)
{
    return m->workers[i].pid &&
           atomic_load_explicit(&m->sb.workers[i].state, memory_order_relaxed) == SB_WORKER_RUNNING;
}

static void master_reload_tick_starting(struct master *m)
{
    struct master_reload *r = &m->reload;
    uint64_t now = clock_now_ms();
    if (r->chain) {
        unsigned p = r->next_slot;
        if (!master_reload_running(m, master_slot(m, p)))
            goto deadline;
        /* New worker p serves: its old counterpart may go. */
        master_reload_retire(m, r->old_base + p);
        log_msg(LOG_INFO, "chain reload: worker %u of generation %u runs; old worker %u stops",
                master_slot(m, p), r->generation + 1, r->old_base + p);
        r->next_slot = ++p;
        if (p < r->start_count) {
            m->workers[master_slot(m, p)].respawn_at_ms = now;
            r->deadline_ms = now + MASTER_RELOAD_START_MS;
            return;
        }
        master_reload_commit(m);
        return;
    }
    for (unsigned p = 0; p < r->start_count; p++)
        if (!master_reload_running(m, master_slot(m, p)))
            goto deadline;
    master_reload_commit(m);
    return;
deadline:
    if (now >= r->deadline_ms)
        master_reload_fail(m, "the new workers were not running after 60 s");
}

/* The app's check (CHECKING without --preload) ended: start the new
 * generation, or refuse the reload with the adapter's message. */
static void master_reload_checked(struct master *m, bool ok, const char *reason)
{
    struct master_reload *r = &m->reload;
    struct config *c = r->next_cfg;
    struct app *app = r->next_app;
    r->next_cfg = NULL;
    r->next_app = NULL;
    if (ok) {
        master_reload_start(m, c, app, r->chain, r->why, r->note);
        return;
    }
    master_reload_drop_app(app, true);
    config_free(c);
    free(c);
    r->phase = RELOAD_IDLE;
    char err[1280];
    snprintf(err, sizeof(err), "the new app cannot be loaded: %s", reason);
    master_reload_refused(m, r->why, err);
    master_notify_ready(m); /* systemd saw RELOADING=1 */
    master_reload_run_pending(m);
}

/* CHECKING: the check's deadline (the start deadline of a reload). */
static void master_reload_tick_checking(struct master *m)
{
    if (!master_reexec_checking(m) || clock_now_ms() < m->reload.deadline_ms)
        return;
    master_reexec_cancel(m); /* reaped later; the reload ends now */
    if (m->reload.next_app)
        master_reload_checked(m, false, "its check did not finish within 60 s");
    else
        master_reload_check_failed(m, "the import check did not finish within 60 s");
}

bool master_reload_check_reaped(struct master *m, pid_t pid, int status)
{
    struct master_reload *r = &m->reload;
    char reason[1024];
    enum master_check_end end = master_reexec_reaped(m, pid, status, reason, sizeof(reason));
    if (end == MASTER_CHECK_OTHER)
        return false;
    if (r->phase != RELOAD_CHECKING || m->state != MASTER_RUNNING)
        return true; /* given up on already (deadline, stop) */
    if (r->next_app) {
        master_reload_checked(m, end == MASTER_CHECK_PASSED, reason);
        return true;
    }
    if (end == MASTER_CHECK_PASSED) {
        log_msg(LOG_INFO,
                "import check (pid %d): the new code imports; re-executing the "
                "master",
                (int)pid);
        m->reexec.exec_due = true;
        return true;
    }
    master_reload_check_failed(m, reason);
    return true;
}

void master_reload_reexec(struct master *m)
{
    m->reexec.exec_due = false;
    if (m->state != MASTER_RUNNING || m->reload.phase != RELOAD_CHECKING)
        return;
    if (m->stop_delay_until_ms) {
        /* The new image would not know of the stop delay. */
        master_reload_check_failed(m, "a stop began (--stop-delay): not re-executing");
        return;
    }
    char reason[512];
    if (master_reexec_exec(m, reason, sizeof(reason)) < 0)
        master_reload_check_failed(m, reason);
}

void master_reload_tick(struct master *m)
{
    struct master_reload *r = &m->reload;
    if (r->phase == RELOAD_CHECKING) {
        master_reload_tick_checking(m);
        return;
    }
    if (r->phase == RELOAD_STARTING) {
        master_reload_tick_starting(m);
        return;
    }
    if (r->phase != RELOAD_DRAINING)
        return;
    unsigned left = master_bank_live(m, r->old_base);
    if (!left) {
        r->phase = RELOAD_IDLE;
        log_msg(LOG_INFO, "reload: generation %u done; the previous generation has exited",
                r->generation);
        master_reload_run_pending(m);
        return;
    }
    uint64_t now = clock_now_ms();
    if (now >= r->deadline_ms) {
        log_msg(LOG_WARN,
                "reload: graceful timeout passed: killing %u workers of the previous "
                "generation",
                left);
        for (unsigned p = 0; p < m->max_workers; p++) {
            pid_t pid = m->workers[r->old_base + p].pid;
            if (pid)
                kill(pid, SIGKILL);
        }
        r->deadline_ms = now + 1000;
    }
}

bool master_reload_reaped(struct master *m, unsigned i, pid_t pid, bool never_ran, const char *what)
{
    struct master_reload *r = &m->reload;
    if (!master_is_current(m, i)) {
        log_msg(LOG_INFO, "worker %u (pid %d) of another generation %s", i, (int)pid, what);
        master_update_slots(m);
        if (r->phase == RELOAD_DRAINING)
            master_reload_tick(m);
        else if (r->phase == RELOAD_IDLE && !master_bank_live(m, m->base ? 0 : m->max_workers))
            master_reload_run_pending(m); /* the last of a rolled-back generation */
        return true;
    }
    if (r->phase != RELOAD_STARTING || !never_ran)
        return false;
    char reason[256], app_init[32];
    snprintf(app_init, sizeof(app_init), "exited with status %d", WORKER_EXIT_APP_INIT);
    snprintf(reason, sizeof(reason), "worker %u (pid %d) %s before it was ready%s", i, (int)pid,
             what,
             strcmp(what, app_init) == 0 ? " (the application failed to start: see above)" : "");
    master_reload_fail(m, reason);
    return true;
}

void master_reload_fini(struct master *m)
{
    struct master_reload *r = &m->reload;
    if (r->old_owned) {
        config_free(r->old_owned);
        free(r->old_owned);
    }
    if (r->owned_cfg) {
        config_free(r->owned_cfg);
        free(r->owned_cfg);
    }
    r->owned_cfg = r->old_owned = NULL;
    if (r->next_cfg) { /* a check still running at the stop */
        config_free(r->next_cfg);
        free(r->next_cfg);
    }
    master_reload_drop_app(r->next_app, true);
    r->next_cfg = NULL;
    r->next_app = NULL;
}
