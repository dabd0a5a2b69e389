/*
 * options.c — the option table and the conversions shared by the command
 * line and the config file (see options.h).
 */
#include "options.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "os/allow.h"
#include "os/listen.h"
#include "os/privs.h"

enum {
    OPTIONS_KIB = 1024,
    OPTIONS_MIB = 1024 * 1024,
    OPTIONS_GIB = 1024 * 1024 * 1024,
    OPTIONS_MS_PER_S = 1000,
};

/* NAME=VALUE with a non-empty NAME without '='. */
static int options_check_env(const char *value, char *err, size_t errlen)
{
    const char *eq = strchr(value, '=');
    if (!eq || eq == value) {
        snprintf(err, errlen, "expected NAME=VALUE, got '%s'", value);
        return -1;
    }
    return 0;
}

/* A unix socket path: it must fit in sockaddr_un. */
static int options_check_socket_path(const char *value, char *err, size_t errlen)
{
    if (strlen(value) > 107) {
        snprintf(err, errlen, "expected a socket path of at most 107 bytes, got %zu bytes",
                 strlen(value));
        return -1;
    }
    return 0;
}

const char *const options_pool_modes[OPTIONS_POOL_MODES] = {"static", "dynamic", "ondemand"};

int options_check_pool_mode(const char *value, char *err, size_t errlen)
{
    for (size_t i = 0; i < OPTIONS_POOL_MODES; i++)
        if (strcmp(value, options_pool_modes[i]) == 0)
            return 0;
    snprintf(err, errlen, "expected static, dynamic or ondemand, got '%s'", value);
    return -1;
}

/* --asgi-loop: corral's loop (asyncio's with its per-callback paths in C)
 * or asyncio's own. */
static int options_check_asgi_loop(const char *value, char *err, size_t errlen)
{
    if (strcmp(value, "corral") == 0 || strcmp(value, "asyncio") == 0)
        return 0;
    snprintf(err, errlen, "expected corral or asyncio, got '%s'", value);
    return -1;
}

/* A pool's name: letters, digits, '-', '_' and '.', at most 64 bytes, not
 * starting with '.' (it names the pool's control socket, PATH.NAME). */
int options_check_pool_name(const char *value, char *err, size_t errlen)
{
    size_t len = strlen(value);
    bool ok = len > 0 && len <= 64 && value[0] != '.';
    for (size_t i = 0; ok && i < len; i++)
        ok = isalnum((unsigned char)value[i]) || strchr("-_.", value[i]) != NULL;
    if (!ok) {
        snprintf(err, errlen,
                 "expected a name of 1 to 64 letters, digits, '-', '_' or '.' "
                 "(not starting with '.'), got '%s'",
                 value);
        return -1;
    }
    return 0;
}

/* A listen spec must be one listen_parse accepts. */
static int options_check_listen(const char *value, char *err, size_t errlen)
{
    struct listen_addr addr;
    return listen_parse(value, &addr, err, errlen);
}

#define OPTIONS_FIELD(f)                                                                           \
    .offset = offsetof(struct config, f), .size = sizeof(((struct config *)0)->f)

#define OPTIONS_SECONDS(s) ((s) * (uint64_t)OPTIONS_MS_PER_S)

/* Rows are shown by --help in this order, sections in order of first use. */
const struct option_spec options_table[] = {
    {
        .name = "config",
        .short_name = 'c',
        .type = OPTION_CONFIG_FILE,
        .metavar = "FILE",
        .group = "Configuration",
        .help = "read this libconfig file first; the other flags override it",
    },
    {
        .name = "test-config",
        .short_name = 't',
        .type = OPTION_TEST,
        .group = "Configuration",
        .help = "check the configuration and exit",
    },
    {
        .name = "help",
        .type = OPTION_HELP,
        .group = "Configuration",
        .help = "print this help and exit",
    },
    {
        .name = "version",
        .type = OPTION_VERSION,
        .group = "Configuration",
        .help = "print the version and exit",
    },
    {
        .name = "listen",
        .key = "listen",
        .type = OPTION_STRING_LIST,
        OPTIONS_FIELD(listen),
        .count_offset = offsetof(struct config, listen_count),
        .check = options_check_listen,
        .metavar = "PROTO:ADDR",
        .group = "Listeners",
        .help = "serve PROTO (uwsgi, fastcgi, scgi, http) on ADDR (unix:PATH, tcp:HOST:PORT, fd:N,"
                " fd:N@ADDR); repeatable",
        .unset = "none",
        .fixed = true,
    },
    {
        .name = "chmod",
        .key = "chmod",
        .type = OPTION_MODE,
        OPTIONS_FIELD(chmod_mode),
        .min = 0,
        .max = 0777,
        .metavar = "MODE",
        .group = "Listeners",
        .help = "permissions of the unix socket files, in octal",
        .fixed = true,
    },
    {
        .name = "chown",
        .key = "chown",
        .type = OPTION_STRING,
        OPTIONS_FIELD(chown),
        .check = privs_check_owner,
        .metavar = "USER[:GROUP]",
        .group = "Listeners",
        .help = "owner of the unix socket files (set as root, before dropping privileges)",
        .unset = "corral's user",
    },
    {
        .name = "allow-from",
        .key = "allow_from",
        .type = OPTION_STRING_LIST,
        OPTIONS_FIELD(allow_from),
        .count_offset = offsetof(struct config, allow_from_count),
        .check = allow_check,
        .metavar = "ADDR[/PREFIX]",
        .group = "Listeners",
        .help = "TCP listeners accept only these peers (IPv4/IPv6 addresses or CIDRs);"
                " repeatable",
        .unset = "loopback: 127.0.0.0/8 and ::1",
    },
    {
        .name = "trusted-proxies",
        .key = "trusted_proxies",
        .type = OPTION_STRING_LIST,
        OPTIONS_FIELD(trusted_proxies),
        .count_offset = offsetof(struct config, trusted_proxies_count),
        .check = allow_check,
        .metavar = "ADDR[/PREFIX]",
        .group = "Listeners",
        .help = "http listeners believe X-Forwarded-For, X-Forwarded-Proto and Forwarded"
                " (REMOTE_ADDR, HTTPS) from these peers only (IPv4/IPv6 addresses or CIDRs;"
                " unix socket peers are trusted once any is given); repeatable",
        .unset = "none: the headers are passed to the app, never believed",
        .fixed = true,
    },
    {
        .name = "backlog",
        .key = "backlog",
        .type = OPTION_UINT,
        OPTIONS_FIELD(backlog),
        .min = 1,
        .max = 65535,
        .metavar = "N",
        .group = "Listeners",
        .help = "length of each listener's accept queue",
        .fixed = true,
    },
    {
        .name = "handler",
        .key = "handler",
        .type = OPTION_STRING,
        OPTIONS_FIELD(handler),
        .metavar = "FILE.so[:SYMBOL]",
        .group = "Application",
        .help = "native handler object and its entry symbol; SYMBOL defaults to handler",
        .unset = "none",
    },
    {
        .name = "wsgi",
        .key = "wsgi",
        .type = OPTION_STRING,
        OPTIONS_FIELD(wsgi),
        .metavar = "MODULE[:CALLABLE]",
        .group = "Application",
        .help = "WSGI app to import; CALLABLE defaults to application, then app",
        .unset = "none",
    },
    {
        .name = "wsgi-file",
        .key = "wsgi_file",
        .type = OPTION_STRING,
        OPTIONS_FIELD(wsgi_file),
        .metavar = "PATH",
        .group = "Application",
        .help = "Python file defining the WSGI callable application (or app)",
        .unset = "none",
    },
    {
        .name = "asgi",
        .key = "asgi",
        .type = OPTION_STRING,
        OPTIONS_FIELD(asgi),
        .metavar = "MODULE[:APP]",
        .group = "Application",
        .help = "ASGI 3.0 app to import, run on one asyncio event loop per worker; APP defaults "
                "to application, then app",
        .unset = "none",
    },
    {
        .name = "asgi-loop",
        .key = "asgi_loop",
        .type = OPTION_STRING,
        OPTIONS_FIELD(asgi_loop),
        .check = options_check_asgi_loop,
        .metavar = "LOOP",
        .group = "Application",
        .help = "the ASGI event loop: corral (asyncio's, its callbacks and timers done in C) or "
                "asyncio (the standard library's own)",
        .unset = "corral",
    },
    {
        .name = "fastcgi-program",
        .key = "fastcgi_program",
        .type = OPTION_STRING,
        OPTIONS_FIELD(fastcgi_program),
        .metavar = "\"CMD ARGS\"",
        .group = "Application",
        .help = "run this FastCGI program (php-cgi, a libfcgi program), each copy with its own "
                "socket as fd 0, and forward the requests to them",
        .unset = "none",
    },
    {
        .name = "program-processes",
        .key = "program_processes",
        .type = OPTION_UINT,
        OPTIONS_FIELD(program_processes),
        .min = 0,
        .max = 1024,
        .metavar = "N",
        .group = "Application",
        .help = "copies of the --fastcgi-program to run; 0 = processes x threads",
    },
    {
        .name = "cgi",
        .key = "cgi",
        .type = OPTION_STRING,
        OPTIONS_FIELD(cgi),
        .metavar = "ROOT",
        .group = "CGI scripts (--cgi)",
        .help = "run the executable under ROOT that the front end's SCRIPT_FILENAME (or "
                "DOCUMENT_ROOT + SCRIPT_NAME) names, once per request, as a CGI script",
        .unset = "none",
    },
    {
        .name = "cgi-timeout",
        .key = "cgi_timeout",
        .type = OPTION_DURATION,
        OPTIONS_FIELD(cgi_timeout_ms),
        .min = 100,
        .max = OPTIONS_SECONDS(86400),
        .metavar = "SECONDS",
        .group = "CGI scripts (--cgi)",
        .help = "a script running longer gets SIGTERM, then SIGKILL, to its process group",
    },
    {
        .name = "cgi-max-scripts",
        .key = "cgi_max_scripts",
        .type = OPTION_UINT,
        OPTIONS_FIELD(cgi_max_scripts),
        .min = 0,
        .max = 4096,
        .metavar = "N",
        .group = "CGI scripts (--cgi)",
        .help = "scripts one worker runs at once (more wait, up to --cgi-queue-timeout, then "
                "503); 0 = 64 (a running script holds no thread)",
    },
    {
        .name = "cgi-queue-timeout",
        .key = "cgi_queue_timeout",
        .type = OPTION_DURATION,
        OPTIONS_FIELD(cgi_queue_timeout_ms),
        .min = 0,
        .max = OPTIONS_SECONDS(3600),
        .metavar = "SECONDS",
        .group = "CGI scripts (--cgi)",
        .help = "how long a request waits for one of the --cgi-max-scripts before a 503",
    },
    {
        .name = "cgi-param",
        .key = "cgi_param",
        .type = OPTION_STRING_LIST,
        OPTIONS_FIELD(cgi_params),
        .count_offset = offsetof(struct config, cgi_params_count),
        .metavar = "NAME",
        .group = "CGI scripts (--cgi)",
        .help = "also pass the front end's param NAME (GIT_PROJECT_ROOT...) to scripts; "
                "repeatable",
        .unset = "none: only the RFC 3875 variables, HTTP_* and the usual extensions",
    },
    {
        .name = "cgi-rlimit-as",
        .key = "cgi_rlimit_as",
        .type = OPTION_SIZE,
        OPTIONS_FIELD(cgi_rlimit_as),
        .min = 0,
        .max = UINT64_MAX,
        .metavar = "SIZE",
        .group = "CGI scripts (--cgi)",
        .help = "a script's address space (RLIMIT_AS); 0 = inherited",
    },
    {
        .name = "cgi-rlimit-cpu",
        .key = "cgi_rlimit_cpu",
        .type = OPTION_UINT,
        OPTIONS_FIELD(cgi_rlimit_cpu),
        .min = 0,
        .max = 86400,
        .metavar = "SECONDS",
        .group = "CGI scripts (--cgi)",
        .help = "a script's CPU seconds (RLIMIT_CPU); 0 = inherited",
    },
    {
        .name = "cgi-rlimit-nproc",
        .key = "cgi_rlimit_nproc",
        .type = OPTION_UINT,
        OPTIONS_FIELD(cgi_rlimit_nproc),
        .min = 0,
        .max = 1000000,
        .metavar = "N",
        .group = "CGI scripts (--cgi)",
        .help = "processes of the scripts' user (RLIMIT_NPROC); 0 = inherited",
    },
    {
        .name = "cgi-rlimit-nofile",
        .key = "cgi_rlimit_nofile",
        .type = OPTION_UINT,
        OPTIONS_FIELD(cgi_rlimit_nofile),
        .min = 0,
        .max = 1048576,
        .metavar = "N",
        .group = "CGI scripts (--cgi)",
        .help = "a script's open files (RLIMIT_NOFILE); 0 = inherited",
    },
    {
        .name = "chdir",
        .key = "chdir",
        .type = OPTION_STRING,
        OPTIONS_FIELD(chdir),
        .metavar = "DIR",
        .group = "Application",
        .help = "workers change to DIR before loading the app; it goes first on sys.path",
        .unset = "none",
    },
    {
        .name = "pythonpath",
        .key = "pythonpath",
        .type = OPTION_STRING_LIST,
        OPTIONS_FIELD(pythonpath),
        .count_offset = offsetof(struct config, pythonpath_count),
        .metavar = "DIR",
        .group = "Application",
        .help = "add DIR to the front of sys.path; repeatable",
        .unset = "none",
    },
    {
        .name = "virtualenv",
        .key = "virtualenv",
        .type = OPTION_STRING,
        OPTIONS_FIELD(virtualenv),
        .metavar = "DIR",
        .group = "Application",
        .help = "Python virtual environment (python3 -m venv DIR) whose packages the app uses",
        .unset = "none",
    },
    {
        .name = "preload",
        .key = "preload",
        .type = OPTION_BOOL,
        OPTIONS_FIELD(preload),
        .group = "Application",
        .help = "load the app (WSGI import, or the handler's dlopen) in the master before forking: "
                "workers share its memory",
        .fixed = true,
    },
    {
        .name = "own-gil",
        .key = "own_gil",
        .type = OPTION_BOOL,
        OPTIONS_FIELD(own_gil),
        .group = "Application",
        .help = "WSGI: each worker thread runs the app in its own Python interpreter with its own "
                "GIL, in parallel (Python 3.12+; extension modules must support it)",
    },
    {
        .name = "env",
        .key = "env",
        .type = OPTION_STRING_LIST,
        OPTIONS_FIELD(env),
        .count_offset = offsetof(struct config, env_count),
        .check = options_check_env,
        .metavar = "NAME=VALUE",
        .group = "Application",
        .help = "set this environment variable at start, before the app loads; repeatable",
        .unset = "none",
    },
    {
        .name = "processes",
        .key = "processes",
        .type = OPTION_UINT,
        OPTIONS_FIELD(processes),
        .min = 1,
        .max = 4096,
        .metavar = "N",
        .group = "Workers",
        .help = "worker processes",
    },
    {
        .name = "max-processes",
        .key = "max_processes",
        .type = OPTION_UINT,
        OPTIONS_FIELD(max_processes),
        .min = 0,
        .max = 4096,
        .metavar = "N",
        .group = "Workers",
        .help = "most processes 'corralctl scale' can reach; 0 = 4 x processes, at least 16",
        .fixed = true,
    },
    {
        .name = "pool",
        .key = "pool",
        .type = OPTION_STRING,
        OPTIONS_FIELD(pool),
        .check = options_check_pool_mode,
        .metavar = "MODE",
        .group = "Workers",
        .help = "static (--processes workers), dynamic (idle workers kept within the spares) or "
                "ondemand (workers only while connections wait)",
        .unset = "static",
        .fixed = true,
    },
    {
        .name = "start-processes",
        .key = "start_processes",
        .type = OPTION_UINT,
        OPTIONS_FIELD(start_processes),
        .min = 0,
        .max = 4096,
        .metavar = "N",
        .group = "Workers",
        .help = "dynamic pool: workers at start; 0 = min-spare + (max-spare - min-spare) / 2",
    },
    {
        .name = "min-spare",
        .key = "min_spare",
        .type = OPTION_UINT,
        OPTIONS_FIELD(min_spare),
        .min = 1,
        .max = 4096,
        .metavar = "N",
        .group = "Workers",
        .help = "dynamic pool: start workers while fewer than N are idle",
    },
    {
        .name = "max-spare",
        .key = "max_spare",
        .type = OPTION_UINT,
        OPTIONS_FIELD(max_spare),
        .min = 1,
        .max = 4096,
        .metavar = "N",
        .group = "Workers",
        .help = "dynamic pool: stop an idle worker each second while more than N are idle",
    },
    {
        .name = "idle-worker-timeout",
        .key = "idle_worker_timeout",
        .type = OPTION_DURATION,
        OPTIONS_FIELD(idle_worker_timeout_ms),
        .min = 100,
        .max = OPTIONS_SECONDS(86400),
        .metavar = "SECONDS",
        .group = "Workers",
        .help = "ondemand pool: a worker with no request for this long exits",
    },
    {
        .name = "threads",
        .key = "threads",
        .type = OPTION_UINT,
        OPTIONS_FIELD(threads),
        .min = 1,
        .max = 1024,
        .metavar = "N",
        .group = "Workers",
        .help = "request threads in each worker process",
        .fixed = true,
    },
    {
        .name = "max-conns",
        .key = "max_conns",
        .type = OPTION_UINT,
        OPTIONS_FIELD(max_conns),
        .min = 1,
        .max = 1000000,
        .metavar = "N",
        .group = "Workers",
        .help = "open connections per worker process, idle kept ones included",
    },
    {
        .name = "control",
        .key = "control",
        .type = OPTION_STRING,
        OPTIONS_FIELD(control),
        .check = options_check_socket_path,
        .metavar = "PATH",
        .group = "Control socket",
        .help = "serve corralctl commands (status, workers, scale, ...) on this unix socket; with"
                " a pools list, the top master's (each pool's is PATH.NAME)",
        .unset = "none",
        .fixed = true,
        .global = true,
    },
    {
        .name = "control-chmod",
        .key = "control_chmod",
        .type = OPTION_MODE,
        OPTIONS_FIELD(control_chmod),
        .min = 0,
        .max = 0777,
        .metavar = "MODE",
        .group = "Control socket",
        .help = "permissions of the control socket file, in octal",
        .fixed = true,
    },
    {
        .name = "control-timeout",
        .key = "control_timeout",
        .type = OPTION_DURATION,
        OPTIONS_FIELD(control_timeout_ms),
        .min = 100,
        .max = OPTIONS_SECONDS(3600),
        .metavar = "SECONDS",
        .group = "Control socket",
        .help = "drop a control client that sends no complete command or reads no reply this long",
    },
    {
        .name = "status-path",
        .key = "status_path",
        .type = OPTION_STRING,
        OPTIONS_FIELD(status_path),
        .metavar = "PATH",
        .group = "Control socket",
        .help = "answer requests for this path (e.g. /corral-status) with the pool's status: "
                "JSON, or OpenMetrics with ?openmetrics",
        .unset = "off",
    },
    {
        .name = "health-path",
        .key = "health_path",
        .type = OPTION_STRING,
        OPTIONS_FIELD(health_path),
        .metavar = "PATH",
        .group = "Control socket",
        .help = "answer requests for this path (e.g. /healthz) in the worker, never the app: "
                "200 ok while serving, 503 stopping while corral or the worker stops",
        .unset = "off",
    },
    {
        .name = "error-log",
        .key = "error_log",
        .type = OPTION_STRING,
        OPTIONS_FIELD(error_log),
        .metavar = "FILE",
        .group = "Files",
        .help = "append errors and notices to FILE",
        .unset = "stderr",
        .fixed = true,
    },
    {
        .name = "access-log",
        .key = "access_log",
        .type = OPTION_STRING,
        OPTIONS_FIELD(access_log),
        .metavar = "FILE",
        .group = "Files",
        .help = "append one line per request to FILE",
        .unset = "off",
        .fixed = true,
    },
    {
        .name = "uid",
        .key = "uid",
        .type = OPTION_STRING,
        OPTIONS_FIELD(uid),
        .check = privs_check_user,
        .metavar = "USER|UID",
        .group = "Running as a service",
        .help = "after binding the listeners as root, switch to this user",
        .unset = "none; as root, refused without --allow-root",
    },
    {
        .name = "gid",
        .key = "gid",
        .type = OPTION_STRING,
        OPTIONS_FIELD(gid),
        .check = privs_check_group,
        .metavar = "GROUP|GID",
        .group = "Running as a service",
        .help = "... and to this group",
        .unset = "the user's primary group",
    },
    {
        .name = "allow-root",
        .key = "allow_root",
        .type = OPTION_BOOL,
        OPTIONS_FIELD(allow_root),
        .group = "Running as a service",
        .help = "let the application run as root",
    },
    {
        .name = "pidfile",
        .key = "pidfile",
        .type = OPTION_STRING,
        OPTIONS_FIELD(pidfile),
        .metavar = "FILE",
        .group = "Files",
        .help = "write the master's process id to FILE",
        .unset = "none",
        .fixed = true,
        .global = true,
    },
    {
        .name = "pool-name",
        .key = "pool_name",
        .type = OPTION_STRING,
        OPTIONS_FIELD(pool_name),
        .check = options_check_pool_name,
        .metavar = "NAME",
        .group = "Files",
        .help = "the pool's name in log lines, the status and the metrics; with -c FILE whose"
                " pools list has a pool NAME: run that pool only (the top master starts each"
                " pool so)",
        .unset = "main",
        .fixed = true,
        .global = true,
    },
    {
        .name = "max-head",
        .key = "max_head",
        .type = OPTION_SIZE,
        OPTIONS_FIELD(limits.max_head),
        .min = 512,
        .max = 16 * OPTIONS_MIB,
        .metavar = "SIZE",
        .group = "Request limits (over a limit, the connection is closed)",
        .help = "bytes of request parameters (names and values together)",
    },
    {
        .name = "max-params",
        .key = "max_params",
        .type = OPTION_UINT,
        OPTIONS_FIELD(limits.max_params),
        .min = 1,
        .max = 65536,
        .metavar = "N",
        .group = "Request limits (over a limit, the connection is closed)",
        .help = "number of request parameters",
    },
    {
        .name = "max-field",
        .key = "max_field",
        .type = OPTION_SIZE,
        OPTIONS_FIELD(limits.max_field),
        .min = 64,
        .max = 16 * OPTIONS_MIB,
        .metavar = "SIZE",
        .group = "Request limits (over a limit, the connection is closed)",
        .help = "bytes of one parameter name or value",
    },
    {
        .name = "max-body",
        .key = "max_body",
        .type = OPTION_SIZE,
        OPTIONS_FIELD(limits.max_body),
        .min = 0,
        .max = UINT64_MAX,
        .metavar = "SIZE",
        .group = "Request limits (over a limit, the connection is closed)",
        .help = "bytes of request body; 0 = unlimited",
    },
    {
        .name = "io-timeout",
        .key = "io_timeout",
        .type = OPTION_DURATION,
        OPTIONS_FIELD(io_timeout_ms),
        .min = 1,
        .max = OPTIONS_SECONDS(86400),
        .metavar = "SECONDS",
        .group = "Timeouts",
        .help = "longest wait for one read or write inside a request",
    },
    {
        .name = "idle-timeout",
        .key = "idle_timeout",
        .type = OPTION_DURATION,
        OPTIONS_FIELD(idle_timeout_ms),
        .min = 1,
        .max = OPTIONS_SECONDS(86400),
        .metavar = "SECONDS",
        .group = "Timeouts",
        .help = "close a kept connection that stays idle this long",
    },
    {
        .name = "header-timeout",
        .key = "header_timeout",
        .type = OPTION_DURATION,
        OPTIONS_FIELD(header_timeout_ms),
        .min = 1,
        .max = OPTIONS_SECONDS(86400),
        .metavar = "SECONDS",
        .group = "Timeouts",
        .help = "a request head must arrive whole this long after its first byte",
    },
    {
        .name = "body-timeout",
        .key = "body_timeout",
        .type = OPTION_DURATION,
        OPTIONS_FIELD(body_timeout_ms),
        .min = 1,
        .max = OPTIONS_SECONDS(86400),
        .metavar = "SECONDS",
        .group = "Timeouts",
        .help = "longest wait for a request body in all, plus 1 s per --min-rate bytes "
                "received",
    },
    {
        .name = "send-timeout",
        .key = "send_timeout",
        .type = OPTION_DURATION,
        OPTIONS_FIELD(send_timeout_ms),
        .min = 1,
        .max = OPTIONS_SECONDS(86400),
        .metavar = "SECONDS",
        .group = "Timeouts",
        .help = "longest wait for the front end to take a response in all, plus 1 s per "
                "--min-rate bytes sent",
    },
    {
        .name = "min-rate",
        .key = "min_rate",
        .type = OPTION_SIZE,
        OPTIONS_FIELD(min_rate),
        .min = 0,
        .max = OPTIONS_GIB,
        .metavar = "SIZE",
        .group = "Timeouts",
        .help = "bytes a second that extend --body-timeout and --send-timeout by 1 s each; "
                "0 = no extension",
    },
    {
        .name = "post-buffering",
        .key = "post_buffering",
        .type = OPTION_SIZE,
        OPTIONS_FIELD(post_buffering),
        .min = 0,
        .max = 64ull << 20,
        .metavar = "SIZE",
        .group = "Timeouts",
        .help = "read a request body of up to SIZE into memory before the app runs, so that "
                "a slow body holds no thread (a bigger one streams); 0 = off",
    },
    {
        .name = "graceful-timeout",
        .key = "graceful_timeout",
        .type = OPTION_DURATION,
        OPTIONS_FIELD(graceful_timeout_ms),
        .min = 0,
        .max = OPTIONS_SECONDS(86400),
        .metavar = "SECONDS",
        .group = "Timeouts",
        .help = "on stop or reload, time the requests in flight get to finish",
    },
    {
        .name = "stop-delay",
        .key = "stop_delay",
        .type = OPTION_DURATION,
        OPTIONS_FIELD(stop_delay_ms),
        .min = 0,
        .max = OPTIONS_SECONDS(3600),
        .metavar = "SECONDS",
        .group = "Timeouts",
        .help = "on SIGTERM or corralctl stop, keep accepting and serving this long (the health "
                "path answers 503) before the graceful stop; 0 = stop at once",
    },
    {
        .name = "max-requests",
        .key = "max_requests",
        .type = OPTION_UINT,
        OPTIONS_FIELD(max_requests),
        .min = 0,
        .max = UINT32_MAX,
        .metavar = "N",
        .group = "Recycling and time limits",
        .help = "replace a worker after it served N requests (it finishes them first); 0 = never",
    },
    {
        .name = "max-requests-jitter",
        .key = "max_requests_jitter",
        .type = OPTION_UINT,
        OPTIONS_FIELD(max_requests_jitter),
        .min = 0,
        .max = UINT32_MAX,
        .metavar = "N",
        .group = "Recycling and time limits",
        .help =
            "add a random 0..N to each worker's max-requests, so they do not all restart at once",
    },
    {
        .name = "max-rss",
        .key = "max_rss",
        .type = OPTION_UINT,
        OPTIONS_FIELD(max_rss_mib),
        .min = 0,
        .max = 1024 * 1024,
        .metavar = "MiB",
        .group = "Recycling and time limits",
        .help = "replace a worker whose RSS is over this after a request; 0 = never",
    },
    {
        .name = "slowlog",
        .key = "slowlog",
        .type = OPTION_DURATION,
        OPTIONS_FIELD(slowlog_ms),
        .min = 0,
        .max = OPTIONS_SECONDS(86400),
        .metavar = "SECONDS",
        .group = "Recycling and time limits",
        .help = "log a request running longer, with the stack of its thread; 0 = off",
    },
    {
        .name = "harakiri",
        .key = "harakiri",
        .type = OPTION_DURATION,
        OPTIONS_FIELD(harakiri_ms),
        .min = 0,
        .max = OPTIONS_SECONDS(86400),
        .metavar = "SECONDS",
        .group = "Recycling and time limits",
        .help =
            "a request running longer is logged with its stack and its worker replaced; 0 = off",
    },
};

const size_t options_count = sizeof(options_table) / sizeof(options_table[0]);

const struct option_spec *options_by_key(const char *key)
{
    for (size_t i = 0; i < options_count; i++)
        if (options_table[i].key && strcmp(options_table[i].key, key) == 0)
            return &options_table[i];
    return NULL;
}

const struct option_spec *options_by_name(const char *name)
{
    for (size_t i = 0; i < options_count; i++)
        if (strcmp(options_table[i].name, name) == 0)
            return &options_table[i];
    return NULL;
}

const struct option_spec *options_by_short(int short_name)
{
    for (size_t i = 0; short_name != 0 && i < options_count; i++)
        if (options_table[i].short_name == short_name)
            return &options_table[i];
    return NULL;
}

/* Edit distance counting an adjacent transposition as one edit (optimal
 * string alignment), case-insensitive; words longer than 63 bytes count as
 * far from everything. */
static size_t options_distance(const char *a, const char *b)
{
    enum { LEN = 64 };
    size_t la = strlen(a), lb = strlen(b);
    if (la >= LEN || lb >= LEN)
        return SIZE_MAX;
    size_t d[LEN][LEN];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t best = d[i - 1][j - 1] + (ca != cb);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                cb == tolower((unsigned char)a[i - 2]) && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

const char *options_suggest(const char *word, bool want_key)
{
    const char *best = NULL;
    size_t best_d = 3; /* suggest at distance 2 at most */
    size_t len = strlen(word);
    for (size_t i = 0; i < options_count; i++) {
        const char *cand = want_key ? options_table[i].key : options_table[i].name;
        if (!cand)
            continue;
        size_t d = options_distance(word, cand);
        if (d < best_d && d < len) {
            best = cand;
            best_d = d;
        }
    }
    return best;
}

/* "512", "64K", "16M", "1G": exact multiples get a suffix. */
static void options_format_size(uint64_t v, char *buf, size_t buflen)
{
    if (v >= OPTIONS_GIB && v % OPTIONS_GIB == 0)
        snprintf(buf, buflen, "%" PRIu64 "G", v / OPTIONS_GIB);
    else if (v >= OPTIONS_MIB && v % OPTIONS_MIB == 0)
        snprintf(buf, buflen, "%" PRIu64 "M", v / OPTIONS_MIB);
    else if (v >= OPTIONS_KIB && v % OPTIONS_KIB == 0)
        snprintf(buf, buflen, "%" PRIu64 "K", v / OPTIONS_KIB);
    else
        snprintf(buf, buflen, "%" PRIu64, v);
}

/* Milliseconds as seconds: "60", "0.5", "0.001". */
static void options_format_ms(uint64_t ms, char *buf, size_t buflen)
{
    uint64_t frac = ms % OPTIONS_MS_PER_S;
    if (frac == 0) {
        snprintf(buf, buflen, "%" PRIu64, ms / OPTIONS_MS_PER_S);
        return;
    }
    char digits[4];
    snprintf(digits, sizeof(digits), "%03" PRIu64, frac);
    for (int i = 2; i > 0 && digits[i] == '0'; i--)
        digits[i] = '\0';
    snprintf(buf, buflen, "%" PRIu64 ".%s", ms / OPTIONS_MS_PER_S, digits);
}

const char *options_expected(const struct option_spec *o, char *buf, size_t buflen)
{
    char lo[32], hi[32];
    switch (o->type) {
    case OPTION_UINT:
        snprintf(buf, buflen, "an integer from %" PRIu64 " to %" PRIu64, o->min, o->max);
        break;
    case OPTION_SIZE:
        options_format_size(o->min, lo, sizeof(lo));
        options_format_size(o->max, hi, sizeof(hi));
        if (o->max == UINT64_MAX && o->min == 0)
            snprintf(buf, buflen, "a size in bytes, such as 65536, 64K or 1G");
        else if (o->max == UINT64_MAX)
            snprintf(buf, buflen, "a size in bytes of at least %s", lo);
        else
            snprintf(buf, buflen, "a size in bytes from %s to %s", lo, hi);
        break;
    case OPTION_MODE:
        snprintf(buf, buflen, "an octal mode from %#" PRIo64 " to %#" PRIo64, o->min, o->max);
        break;
    case OPTION_DURATION:
        options_format_ms(o->min, lo, sizeof(lo));
        options_format_ms(o->max, hi, sizeof(hi));
        snprintf(buf, buflen, "a number of seconds from %s to %s", lo, hi);
        break;
    case OPTION_STRING:
        snprintf(buf, buflen, "a string");
        break;
    case OPTION_STRING_LIST:
        snprintf(buf, buflen, "a string or a list of strings");
        break;
    case OPTION_BOOL:
        snprintf(buf, buflen, "true or false");
        break;
    default:
        snprintf(buf, buflen, "no value");
        break;
    }
    return buf;
}

static int options_fail_text(const struct option_spec *o, const char *text, char *err,
                             size_t errlen)
{
    char want[128];
    snprintf(err, errlen, "expected %s, got '%s'", options_expected(o, want, sizeof(want)), text);
    return -1;
}

static void options_store_number(const struct option_spec *o, struct config *c, uint64_t v)
{
    void *field = options_at(c, o->offset);
    if (o->size == sizeof(uint64_t)) {
        uint64_t x = v;
        memcpy(field, &x, sizeof(x));
    } else if (o->size == sizeof(uint32_t)) {
        uint32_t x = (uint32_t)v;
        memcpy(field, &x, sizeof(x));
    }
}

uint64_t options_get_number(const struct option_spec *o, const struct config *c)
{
    const void *field = options_at_const(c, o->offset);
    if (o->size == sizeof(uint64_t)) {
        uint64_t x;
        memcpy(&x, field, sizeof(x));
        return x;
    }
    if (o->size == sizeof(uint32_t)) {
        uint32_t x;
        memcpy(&x, field, sizeof(x));
        return x;
    }
    return 0;
}

/* Decimal digits only, no sign, no blanks; -1 on anything else or overflow.
 * *end gets the first byte after the digits. */
static int options_parse_digits(const char *s, uint64_t *out, const char **end)
{
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (p == s)
        return -1;
    *out = v;
    *end = p;
    return 0;
}

/* TEXT as the raw value of a numeric option (milliseconds for durations);
 * -1 when it is not well formed. Range checks are the caller's. */
static int options_parse_number(const struct option_spec *o, const char *text, uint64_t *out)
{
    const char *end;
    uint64_t v;
    switch (o->type) {
    case OPTION_UINT:
        if (options_parse_digits(text, &v, &end) < 0 || *end)
            return -1;
        break;
    case OPTION_SIZE: {
        if (options_parse_digits(text, &v, &end) < 0)
            return -1;
        uint64_t mult = 1;
        switch (*end) {
        case '\0':
            break;
        case 'k':
        case 'K':
            mult = OPTIONS_KIB;
            end++;
            break;
        case 'm':
        case 'M':
            mult = OPTIONS_MIB;
            end++;
            break;
        case 'g':
        case 'G':
            mult = OPTIONS_GIB;
            end++;
            break;
        default:
            return -1;
        }
        if (*end || v > UINT64_MAX / mult)
            return -1;
        v *= mult;
        break;
    }
    case OPTION_MODE:
        v = 0;
        for (end = text; *end >= '0' && *end <= '7'; end++) {
            if (v > (UINT64_MAX >> 3))
                return -1;
            v = v << 3 | (uint64_t)(*end - '0');
        }
        if (end == text || *end)
            return -1;
        break;
    case OPTION_DURATION: {
        /* SECONDS[.FRACTION] or .FRACTION, rounded to the millisecond. */
        uint64_t secs = 0, ms = 0;
        end = text;
        if (*text != '.' && options_parse_digits(text, &secs, &end) < 0)
            return -1;
        if (*end == '.') {
            const char *f = ++end;
            uint64_t scale = 100;
            for (; *end >= '0' && *end <= '9'; end++) {
                if (scale > 0)
                    ms += (uint64_t)(*end - '0') * scale;
                else if (end == f + 3 && *end >= '5')
                    ms++;
                scale /= 10;
            }
            if (end == f && end - 1 == text)
                return -1; /* a lone "." */
        }
        if (*end || secs > (UINT64_MAX - ms) / OPTIONS_MS_PER_S)
            return -1;
        v = secs * OPTIONS_MS_PER_S + ms;
        break;
    }
    default:
        return -1;
    }
    *out = v;
    return 0;
}

static int options_no_memory(char *err, size_t errlen)
{
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int options_set_string(const struct option_spec *o, struct config *c, const char *text,
                              char *err, size_t errlen)
{
    if (text[0] == '\0') {
        snprintf(err, errlen, "expected a non-empty string, got ''");
        return -1;
    }
    if (o->check && o->check(text, err, errlen) < 0)
        return -1;
    char *copy = strdup(text);
    if (!copy)
        return options_no_memory(err, errlen);
    if (o->type == OPTION_STRING) {
        char **field = options_at(c, o->offset);
        free(*field);
        *field = copy;
        return 0;
    }
    char ***list = options_at(c, o->offset);
    size_t *count = options_at(c, o->count_offset);
    char **grown = realloc(*list, (*count + 1) * sizeof(**list));
    if (!grown) {
        free(copy);
        return options_no_memory(err, errlen);
    }
    grown[(*count)++] = copy;
    *list = grown;
    return 0;
}

int options_set_text(const struct option_spec *o, struct config *c, const char *text, char *err,
                     size_t errlen)
{
    uint64_t v;
    switch (o->type) {
    case OPTION_STRING:
    case OPTION_STRING_LIST:
        return options_set_string(o, c, text, err, errlen);
    case OPTION_UINT:
    case OPTION_SIZE:
    case OPTION_MODE:
    case OPTION_DURATION:
        if (options_parse_number(o, text, &v) < 0 || v < o->min || v > o->max)
            return options_fail_text(o, text, err, errlen);
        options_store_number(o, c, v);
        return 0;
    case OPTION_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
            options_set_bool(o, c, text[0] == 't');
            return 0;
        }
        return options_fail_text(o, text, err, errlen);
    default:
        snprintf(err, errlen, "takes no value");
        return -1;
    }
}

int options_set_integer(const struct option_spec *o, struct config *c, int64_t v, char *err,
                        size_t errlen)
{
    char want[128], got[32];
    uint64_t raw = v < 0 ? 0 : (uint64_t)v;
    bool ok = v >= 0;
    switch (o->type) {
    case OPTION_UINT:
    case OPTION_SIZE:
        snprintf(got, sizeof(got), "%" PRId64, v);
        break;
    case OPTION_MODE:
        if (v < 0)
            snprintf(got, sizeof(got), "%" PRId64, v);
        else
            snprintf(got, sizeof(got), "%#" PRIo64, raw);
        break;
    case OPTION_DURATION:
        snprintf(got, sizeof(got), "%" PRId64, v);
        ok = ok && raw <= o->max / OPTIONS_MS_PER_S;
        raw *= OPTIONS_MS_PER_S;
        break;
    default:
        snprintf(err, errlen, "expected %s, got an integer",
                 options_expected(o, want, sizeof(want)));
        return -1;
    }
    if (!ok || raw < o->min || raw > o->max) {
        snprintf(err, errlen, "expected %s, got %s", options_expected(o, want, sizeof(want)), got);
        return -1;
    }
    options_store_number(o, c, raw);
    return 0;
}

int options_set_double(const struct option_spec *o, struct config *c, double v, char *err,
                       size_t errlen)
{
    char want[128];
    /* The negated comparisons also refuse NaN. */
    if (o->type != OPTION_DURATION || !(v >= 0) || !(v * OPTIONS_MS_PER_S <= (double)o->max)) {
        snprintf(err, errlen, "expected %s, got %g", options_expected(o, want, sizeof(want)), v);
        return -1;
    }
    uint64_t ms = (uint64_t)(v * OPTIONS_MS_PER_S + 0.5);
    if (ms < o->min || ms > o->max) {
        snprintf(err, errlen, "expected %s, got %g", options_expected(o, want, sizeof(want)), v);
        return -1;
    }
    options_store_number(o, c, ms);
    return 0;
}

void options_set_bool(const struct option_spec *o, struct config *c, bool b)
{
    memcpy(options_at(c, o->offset), &b, sizeof(b));
}

void options_clear_list(const struct option_spec *o, struct config *c)
{
    char ***list = options_at(c, o->offset);
    size_t *count = options_at(c, o->count_offset);
    for (size_t i = 0; i < *count; i++)
        free((*list)[i]);
    free(*list);
    *list = NULL;
    *count = 0;
}

bool options_same_value(const struct option_spec *o, const struct config *a, const struct config *b)
{
    const void *fa = options_at_const(a, o->offset), *fb = options_at_const(b, o->offset);
    switch (o->type) {
    case OPTION_STRING: {
        const char *sa = *(char *const *)fa, *sb = *(char *const *)fb;
        return (!sa && !sb) || (sa && sb && strcmp(sa, sb) == 0);
    }
    case OPTION_STRING_LIST: {
        char *const *la = *(char *const *const *)fa, *const *lb = *(char *const *const *)fb;
        size_t n = *(const size_t *)options_at_const(a, o->count_offset);
        if (n != *(const size_t *)options_at_const(b, o->count_offset))
            return false;
        for (size_t i = 0; i < n; i++)
            if (strcmp(la[i], lb[i]) != 0)
                return false;
        return true;
    }
    case OPTION_UINT:
    case OPTION_SIZE:
    case OPTION_MODE:
    case OPTION_DURATION:
        return options_get_number(o, a) == options_get_number(o, b);
    case OPTION_BOOL:
        return memcmp(fa, fb, sizeof(bool)) == 0;
    default:
        return true;
    }
}

/* A copy of the COUNT strings of LIST (an array of at least one slot), or
 * NULL when out of memory. */
static char **options_copy_list(char *const *list, size_t count)
{
    char **copy = calloc(count ? count : 1, sizeof(*copy));
    for (size_t i = 0; copy && i < count; i++) {
        if (!(copy[i] = strdup(list[i]))) {
            while (i-- > 0)
                free(copy[i]);
            free(copy);
            return NULL;
        }
    }
    return copy;
}

int options_copy_value(const struct option_spec *o, struct config *dst, const struct config *src)
{
    void *fd = options_at(dst, o->offset);
    const void *fs = options_at_const(src, o->offset);
    switch (o->type) {
    case OPTION_STRING: {
        const char *s = *(char *const *)fs;
        char *copy = s ? strdup(s) : NULL;
        if (s && !copy)
            return -1;
        free(*(char **)fd);
        *(char **)fd = copy;
        return 0;
    }
    case OPTION_STRING_LIST: {
        size_t count = *(const size_t *)options_at_const(src, o->count_offset);
        char **copy = options_copy_list(*(char *const *const *)fs, count);
        if (!copy)
            return -1;
        options_clear_list(o, dst);
        *(char ***)fd = copy;
        *(size_t *)options_at(dst, o->count_offset) = count;
        return 0;
    }
    case OPTION_UINT:
    case OPTION_SIZE:
    case OPTION_MODE:
    case OPTION_DURATION:
        options_store_number(o, dst, options_get_number(o, src));
        return 0;
    case OPTION_BOOL:
        memcpy(fd, fs, sizeof(bool));
        return 0;
    default:
        return 0;
    }
}

void options_format_value(const struct option_spec *o, const struct config *c, char *buf,
                          size_t buflen)
{
    const void *field = options_at_const(c, o->offset);
    uint64_t v = 0;
    if (buflen == 0)
        return;
    buf[0] = '\0';
    switch (o->type) {
    case OPTION_STRING: {
        char *const *s = field;
        snprintf(buf, buflen, "%s", *s ? *s : o->unset ? o->unset : "");
        break;
    }
    case OPTION_STRING_LIST: {
        char *const *const *list = field;
        const size_t *count = options_at_const(c, o->count_offset);
        if (*count == 0)
            snprintf(buf, buflen, "%s", o->unset ? o->unset : "");
        for (size_t i = 0, used = 0; i < *count && used < buflen; i++) {
            int n = snprintf(buf + used, buflen - used, "%s%s", i ? ", " : "", (*list)[i]);
            used += n > 0 ? (size_t)n : 0;
        }
        break;
    }
    case OPTION_UINT:
        snprintf(buf, buflen, "%" PRIu64, options_get_number(o, c));
        break;
    case OPTION_SIZE:
        options_format_size(options_get_number(o, c), buf, buflen);
        break;
    case OPTION_MODE:
        v = options_get_number(o, c);
        snprintf(buf, buflen, "%04" PRIo64, v);
        break;
    case OPTION_DURATION:
        options_format_ms(options_get_number(o, c), buf, buflen);
        break;
    case OPTION_BOOL: {
        bool b;
        memcpy(&b, field, sizeof(b));
        snprintf(buf, buflen, "%s", b ? "true" : "false");
        break;
    }
    default:
        break;
    }
}
