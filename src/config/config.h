/*
 * config.h — the one configuration structure, built from a libconfig file
 * (config.c) with the command line applied over it (cli.c), validated once;
 * start and reload both build it through config_load (config_load.h).
 *
 * Every option exists both as a command-line flag and as a config key; the
 * single table in options.c describes each one (flag, key, type, limits,
 * help), so the two can never drift apart.
 */
#ifndef CORRAL_CONFIG_H
#define CORRAL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocols/protocol.h" /* struct proto_limits, held by value */

struct config {
    /* Listeners as given: "PROTO:ADDR" (parsed by listen.c). */
    char **listen;
    size_t listen_count;

    char *handler;                 /* "path.so[:symbol]", NULL when none */
    char *wsgi;                    /* "module[:callable]", NULL when none */
    char *wsgi_file;               /* a .py file defining the WSGI callable */
    char *asgi;                    /* "module[:app]": an ASGI app, NULL when none */
    char *asgi_loop;               /* "corral" (NULL) or "asyncio": the ASGI event loop */
    char *fastcgi_program;         /* "CMD ARGS": FastCGI programs corral runs, NULL = none */
    unsigned program_processes;    /* how many; 0 = processes x threads */
    char *cgi;                     /* --cgi ROOT: CGI scripts under ROOT, NULL = none */
    unsigned cgi_timeout_ms;       /* a script's time limit (60 s) */
    unsigned cgi_max_scripts;      /* scripts per worker at once; 0 = threads */
    unsigned cgi_queue_timeout_ms; /* waiting for one of them (10 s) */
    char **cgi_params;             /* front-end params passed to scripts as well */
    size_t cgi_params_count;
    uint64_t cgi_rlimit_as;  /* rlimits of a script; 0 = inherited */
    unsigned cgi_rlimit_cpu; /* seconds */
    unsigned cgi_rlimit_nproc;
    unsigned cgi_rlimit_nofile;
    char *chdir;       /* workers chdir here before the import */
    char **pythonpath; /* prepended to sys.path, in order */
    size_t pythonpath_count;
    char *virtualenv; /* a venv whose site-packages the app uses */
    bool preload;     /* import the app in the master, before the fork */
    bool own_gil;     /* WSGI: an interpreter with its own GIL per thread */
    char **env;       /* "NAME=VALUE", set in the master at start */
    size_t env_count;

    unsigned processes;     /* default 1 */
    unsigned max_processes; /* scaling limit; 0 = config_max_processes' default */

    /* Pool mode (config_pool_mode): NULL or "static" = --processes workers;
     * "dynamic" keeps the idle workers within [min_spare, max_spare];
     * "ondemand" starts workers only while connections wait. */
    char *pool;
    unsigned start_processes;        /* dynamic: workers at start; 0 = between the spares */
    unsigned min_spare;              /* dynamic: fewest idle workers (default 1) */
    unsigned max_spare;              /* dynamic: most idle workers (default 3) */
    unsigned idle_worker_timeout_ms; /* ondemand: an idle worker exits (10 s) */

    char *status_path; /* the pool answers this path with its status; NULL = off */
    char *health_path; /* the worker answers this path 200 ok / 503 stopping; NULL = off */

    /* Recycling and request time limits (0 = off). */
    unsigned max_requests;        /* a worker is replaced after this many requests */
    unsigned max_requests_jitter; /* ... plus a random 0..jitter, per worker */
    unsigned max_rss_mib;         /* ... or once its RSS is over this after a request */
    unsigned slowlog_ms;          /* a slower request is logged with its stack */
    unsigned harakiri_ms;         /* a slower request ends its worker */
    unsigned threads;             /* default 1 */

    char *error_log;  /* NULL = stderr */
    char *access_log; /* NULL = off */
    char *pidfile;    /* NULL = none */

    unsigned chmod_mode; /* unix listener mode, default 0660 */
    char *chown;         /* "USER[:GROUP]" for unix listener files, NULL = keep */
    char **allow_from;   /* peers TCP listeners accept (allow.c); none = loopback */
    size_t allow_from_count;
    char **trusted_proxies; /* peers whose X-Forwarded-* and Forwarded are believed
                               (http listeners, src/conn/peer.c); none = nobody */
    size_t trusted_proxies_count;

    /* Running as a service (privs.c). */
    char *uid;          /* user name or uid to switch to, NULL = stay */
    char *gid;          /* group name or gid, NULL = the user's group */
    bool allow_root;    /* run the app as root all the same */
    unsigned backlog;   /* listen backlog, default 1024 */
    unsigned max_conns; /* open connections per worker, default 1024 */

    char *control;               /* control socket path, NULL = none */
    unsigned control_chmod;      /* its mode, default 0600 */
    unsigned control_timeout_ms; /* a silent control client is dropped (10 s) */

    struct proto_limits limits;

    /* Timeouts in milliseconds. */
    unsigned io_timeout_ms;       /* one read/write inside a request (60 s) */
    unsigned idle_timeout_ms;     /* idle kept connection (75 s) */
    unsigned header_timeout_ms;   /* a request head, from its first byte (60 s) */
    unsigned body_timeout_ms;     /* waiting for a request body in all (60 s) ... */
    unsigned send_timeout_ms;     /* ... for the front end to take a response (60 s) */
    unsigned min_rate;            /* ... plus 1 s per this many bytes (500) */
    unsigned post_buffering;      /* body bytes read before the app runs (0: off) */
    unsigned graceful_timeout_ms; /* SIGTERM: in-flight requests (30 s) */
    unsigned stop_delay_ms;       /* SIGTERM: keep serving this long first; 0 = off */

    /* The pool's name (--pool-name, pool_name; a pool group's name); NULL =
     * the default name, CONFIG_POOL_DEFAULT_NAME. */
    char *pool_name;

    /* A file with a pools list read without --pool-name: the top master's
     * configuration. The pools' names in the file's order (checked: each
     * group has a valid name, no two the same, no global-only key); the
     * other fields hold the file's top-level keys. Not an option row:
     * config_free and the copies handle it. */
    char **pools;
    size_t pools_count;

    /* Where this configuration came from, for messages. */
    char *source_file; /* NULL when built from the command line only */
};

/* The name of a pool that has none (no pools list, no --pool-name). */
#define CONFIG_POOL_DEFAULT_NAME "main"

/* The pool's name: c->pool_name or CONFIG_POOL_DEFAULT_NAME. */
const char *config_pool_name(const struct config *c);

/* Fill *c with the defaults above (no allocation). Named config_defaults,
 * not config_init: libconfig exports config_init(config_t *) itself. */
void config_defaults(struct config *c);

/* Free everything *c owns (strings, the listen list, source_file) and leave
 * the pointers NULL; config_defaults it again before reuse. */
void config_free(struct config *c);

/*
 * Load FILE over *c. A file may hold a pools list:
 *   pools = ( { name = "www"; wsgi = "app"; listen = [...]; ... }, ... );
 * each group takes every key but the global-only ones (options.h). With
 * c->pool_name set (--pool-name, read before the file), the pool of that
 * name is selected: the top-level keys but the global-only ones, then the
 * group's keys over them; the top-level control PATH becomes PATH.NAME. A
 * missing pool is an error. Without c->pool_name, the top-level keys are
 * read as they are and c->pools gets the names. On error returns -1 and
 * writes one message naming the file, the line, the key and what was
 * expected into err (size errlen), e.g. "corral.conf:12: key 'processes':
 * expected an integer from 1 to 4096, got 0". Unknown keys are errors.
 * Each key present replaces the value in *c (listen: the whole list); on
 * error *c is left unchanged, so a reload can keep the old configuration.
 * Relative @include paths are taken from FILE's directory. Sets source_file to FILE.
 */
int config_load_file(struct config *c, const char *file, char *err, size_t errlen);

/*
 * Derive the fields that follow from others: limits.fcgi_max_conns =
 * processes * max_conns and limits.fcgi_max_reqs = processes * threads
 * (saturating). config_load_file and cli_parse call it before they return;
 * call it again after changing those fields by hand. (Workers answer
 * GET_VALUES with the pool as it is when a connection is accepted instead:
 * worker_conn_limits.)
 */
void config_finish(struct config *c);

/* The copies of --fastcgi-program to run: program_processes, or when it is
 * 0, processes x threads (at most 1024). */
unsigned config_program_processes(const struct config *c);

/* The most worker processes the pool can be scaled to: max_processes, or
 * when it is 0, 4 × processes and at least 16 (never above 4096). */
unsigned config_max_processes(const struct config *c);

enum pool_mode { POOL_STATIC = 0, POOL_DYNAMIC, POOL_ONDEMAND };

/* The pool mode of c->pool (static when unset). */
enum pool_mode config_pool_mode(const struct config *c);
const char *config_pool_mode_name(enum pool_mode mode);

/* Dynamic pools: the workers started with the pool (start_processes, or
 * when 0, min_spare + (max_spare - min_spare) / 2 as PHP-FPM does). */
unsigned config_start_processes(const struct config *c);

/* What config_validate (and app_load, for a config it did not see) says when
 * no app type is given. */
#define CONFIG_NO_APP                                                                              \
    "no application: give --wsgi MODULE[:CALLABLE], --wsgi-file PATH, --handler FILE.so, "         \
    "--fastcgi-program \"CMD ARGS\", --cgi ROOT or --asgi MODULE[:APP]"

/*
 * Checks that need the whole configuration (at least one listener, a
 * handler, ...). Returns 0, or -1 with a message in err.
 */
int config_validate(const struct config *c, char *err, size_t errlen);

/*
 * Put back into NEW the running value (OLD's) of every option that only
 * takes effect at start (the rows of options.c marked fixed), naming each
 * changed key in NOTE (", "-separated, appended; NOTE may be NULL with
 * NOTELEN 0). max_processes counts as its effective value
 * (config_max_processes(OLD)), and 0 in NEW asks for no change. Then
 * config_finish(NEW). Returns 0, or -1 when out of memory (NEW stays safe
 * to config_free).
 */
int config_keep_fixed(struct config *new, const struct config *old, char *note, size_t notelen);

#endif
