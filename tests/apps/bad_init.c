/*
 * bad_init.c — a handler whose per-worker init fails, as an app that cannot
 * connect to its database at start would: corral must stop at start-up with
 * a non-zero status instead of respawning workers in a loop.
 */
#include <corral.h>

CORRAL_MODULE();

CORRAL_EXPORT int corral_worker_init(void)
{
    corral_log(CORRAL_LOG_ERROR, "bad_init: refusing to start (test handler)");
    return -1;
}

CORRAL_EXPORT int handler(corral_request *req)
{
    return corral_write_final(req, "unreachable", 11);
}
