/*
 * bad_abi.c — a handler object built for another ABI version: the loader
 * must refuse it before calling anything.
 */
#include <corral.h>

CORRAL_EXPORT const unsigned corral_module_abi = CORRAL_ABI_VERSION + 41;

CORRAL_EXPORT int handler(corral_request *req)
{
    (void)req;
    return -1;
}
