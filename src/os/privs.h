/*
 * privs.h — running as a service user: resolve --uid/--gid/--chown, drop
 * root's privileges once the listeners, pidfile and logs are open, and
 * refuse to run the application as root unless --allow-root.
 *
 * Resolving and checking fill an error buffer and never log; privs_drop is
 * called once, in the master, before any worker is forked and before the
 * app is loaded (so before a --preload import).
 */
#ifndef CORRAL_PRIVS_H
#define CORRAL_PRIVS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* USER: a user name or a numeric uid. *gid gets the user's primary group
 * (the uid's, or (gid_t)-1 when a numeric uid has no passwd entry). */
int privs_resolve_user(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen);

/* GROUP: a group name or a numeric gid. */
int privs_resolve_group(const char *group, gid_t *gid, char *err, size_t errlen);

/* USER[:GROUP] (--chown): GROUP defaults to the user's primary group. */
int privs_resolve_owner(const char *spec, uid_t *uid, gid_t *gid, char *err, size_t errlen);

/* Option checks (options.c): the value resolves. */
int privs_check_user(const char *value, char *err, size_t errlen);
int privs_check_group(const char *value, char *err, size_t errlen);
int privs_check_owner(const char *value, char *err, size_t errlen);

/*
 * Before anything is bound: whether a server with --uid USER, --gid GROUP
 * (each NULL when not given) and --allow-root ALLOW_ROOT may run at all as
 * the current user. Refused (-1 with the reason in err): root without
 * --uid and without --allow-root; --uid naming root without --allow-root;
 * --uid/--gid other than ours when we are not root (only root can switch).
 */
int privs_check_plan(const char *user, const char *group, bool allow_root, char *err,
                     size_t errlen);

/*
 * Switch to --uid USER/--gid GROUP (NULL: not given; when given and we are
 * root): supplementary groups
 * (initgroups for a user with a name, else just GID), then setgid, then
 * setuid, each checked, and then checked again: the real and effective ids
 * are the new ones and setuid(0) fails. Returns 0 (also when there is
 * nothing to do), or -1 with the failing call in err.
 */
int privs_drop(const char *user, const char *group, char *err, size_t errlen);

#endif
