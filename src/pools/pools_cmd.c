/*
 * pools_cmd.c — the top master's control socket commands (see pools.h):
 * `status` lists the pools (name, master pid, state, starts, control
 * socket, the listeners it bound for each), `reload`, `stop`, `quit` and
 * `reopen-logs` set the flag the loop acts on, as the signals do. Each
 * pool's own commands are on its own control socket, PATH.NAME (corralctl
 * -p NAME).
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "pools.h"
#include "pools_state.h"

static const char *pools_state_name(const struct pool *p)
{
    switch (p->state) {
    case POOLS_STARTING:
        return "starting";
    case POOLS_SERVING:
        return "serving";
    case POOLS_WAITING:
        return "waiting";
    case POOLS_FAILED:
        return "failed";
    default:
        return p->removed ? "removed" : "stopping";
    }
}

/* {"ok":true,"pid":N,"pools":[...] — the caller closes the object. */
static void pools_reply_list(const struct pools *ps, struct json *j)
{
    json_object_begin(j);
    json_kv_bool(j, "ok", true);
    json_kv_int(j, "pid", (int64_t)getpid());
    json_kv_string(j, "state", ps->stop_sig ? "stopping" : "running");
    json_key(j, "pools");
    json_array_begin(j);
    for (size_t i = 0; i < ps->n; i++) {
        const struct pool *p = &ps->p[i];
        json_object_begin(j);
        json_kv_string(j, "name", p->name);
        json_kv_int(j, "pid", (int64_t)p->pid);
        json_kv_string(j, "state", pools_state_name(p));
        json_kv_uint(j, "starts", p->starts);
        json_kv_uint(j, "failures", p->failures);
        json_kv_string(j, "control", p->cfg_ok ? p->cfg.control : NULL);
        /* The listeners this top master bound for the pool (pools_bind), by
         * the address the file gave, as the pool's own status names them. */
        json_key(j, "listeners");
        json_array_begin(j);
        for (size_t k = 0; k < p->nls; k++) {
            json_object_begin(j);
            json_kv_string(j, "address", p->ls[k].name);
            json_kv_string(j, "protocol", p->ls[k].addr.codec->name);
            json_object_end(j);
        }
        json_array_end(j);
        json_object_end(j);
    }
    json_array_end(j);
}

static void pools_cmd_status(void *owner, const struct control_request *req, struct json *j)
{
    (void)req;
    pools_reply_list(owner, j);
    json_object_end(j);
}

static void pools_cmd_reload(void *owner, const struct control_request *req, struct json *j)
{
    struct pools *ps = owner;
    (void)req;
    if (ps->stop_sig) {
        control_reply_error(j, "stopping: no reload");
        return;
    }
    ps->reload_due = true;
    pools_reply_list(ps, j);
    json_kv_bool(j, "reloading", true);
    json_object_end(j);
}

static void pools_cmd_stopping(struct pools *ps, int sig, struct json *j)
{
    if (!ps->stop_sig || sig != SIGTERM)
        ps->stop_sig = sig;
    pools_reply_list(ps, j);
    json_object_end(j);
}

static void pools_cmd_stop(void *owner, const struct control_request *req, struct json *j)
{
    (void)req;
    pools_cmd_stopping(owner, SIGTERM, j);
}

static void pools_cmd_quit(void *owner, const struct control_request *req, struct json *j)
{
    (void)req;
    pools_cmd_stopping(owner, SIGINT, j);
}

static void pools_cmd_reopen_logs(void *owner, const struct control_request *req, struct json *j)
{
    struct pools *ps = owner;
    (void)req;
    ps->reopen_due = true;
    pools_reply_list(ps, j);
    json_object_end(j);
}

static void pools_cmd_help(void *owner, const struct control_request *req, struct json *j)
{
    (void)owner;
    (void)req;
    json_object_begin(j);
    json_kv_bool(j, "ok", true);
    json_key(j, "commands");
    json_array_begin(j);
    for (size_t i = 0; i < pools_command_count; i++)
        json_string(j, pools_commands[i].usage);
    json_array_end(j);
    json_object_end(j);
}

const struct control_command pools_commands[] = {
    {.name = "status", .arg = CONTROL_ARG_NONE, .usage = "status", .run = pools_cmd_status},
    {.name = "reload", .arg = CONTROL_ARG_NONE, .usage = "reload", .run = pools_cmd_reload},
    {.name = "stop", .arg = CONTROL_ARG_NONE, .usage = "stop", .run = pools_cmd_stop},
    {.name = "quit", .arg = CONTROL_ARG_NONE, .usage = "quit", .run = pools_cmd_quit},
    {.name = "reopen-logs",
     .arg = CONTROL_ARG_NONE,
     .usage = "reopen-logs",
     .run = pools_cmd_reopen_logs},
    {.name = "help", .arg = CONTROL_ARG_NONE, .usage = "help", .run = pools_cmd_help},
};

const size_t pools_command_count = sizeof(pools_commands) / sizeof(pools_commands[0]);
