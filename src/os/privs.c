/*
 * privs.c — service user and privilege drop (see privs.h).
 */
#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* A decimal id, or -1 when TEXT is not one. */
static long privs_number(const char *text)
{
    char *end;
    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (*end || errno || v >= 0xFFFFFFFFul)
        return -1;
    return (long)v;
}

int privs_resolve_user(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
    long n = privs_number(user);
    errno = 0;
    struct passwd *pw = n >= 0 ? getpwuid((uid_t)n) : getpwnam(user);
    if (pw) {
        *uid = pw->pw_uid;
        *gid = pw->pw_gid;
        return 0;
    }
    if (n >= 0) {
        *uid = (uid_t)n;
        *gid = (gid_t)-1;
        return 0;
    }
    snprintf(err, errlen, "expected a user name or a numeric uid, got '%s' (no such user)", user);
    return -1;
}

int privs_resolve_group(const char *group, gid_t *gid, char *err, size_t errlen)
{
    long n = privs_number(group);
    if (n >= 0) {
        *gid = (gid_t)n;
        return 0;
    }
    struct group *gr = getgrnam(group);
    if (!gr) {
        snprintf(err, errlen, "expected a group name or a numeric gid, got '%s' (no such group)",
                 group);
        return -1;
    }
    *gid = gr->gr_gid;
    return 0;
}

int privs_resolve_owner(const char *spec, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
    char user[256];
    const char *colon = strchr(spec, ':');
    size_t ulen = colon ? (size_t)(colon - spec) : strlen(spec);
    if (ulen == 0 || ulen >= sizeof(user) || (colon && colon[1] == '\0')) {
        snprintf(err, errlen, "expected USER[:GROUP] (names or numeric ids), got '%s'", spec);
        return -1;
    }
    memcpy(user, spec, ulen);
    user[ulen] = '\0';
    if (privs_resolve_user(user, uid, gid, err, errlen) < 0)
        return -1;
    if (colon)
        return privs_resolve_group(colon + 1, gid, err, errlen);
    if (*gid == (gid_t)-1) {
        snprintf(err, errlen, "uid %s has no passwd entry: give its group too, as USER:GROUP, "
                 "in '%s'", user, spec);
        return -1;
    }
    return 0;
}

int privs_check_user(const char *value, char *err, size_t errlen)
{
    uid_t u;
    gid_t g;
    return privs_resolve_user(value, &u, &g, err, errlen);
}

int privs_check_group(const char *value, char *err, size_t errlen)
{
    gid_t g;
    return privs_resolve_group(value, &g, err, errlen);
}

int privs_check_owner(const char *value, char *err, size_t errlen)
{
    uid_t u;
    gid_t g;
    return privs_resolve_owner(value, &u, &g, err, errlen);
}

/* The ids --uid/--gid ask for: -1 for what is not asked. */
static int privs_target(const char *user, const char *group, uid_t *uid, gid_t *gid, char *err,
                        size_t errlen)
{
    gid_t primary = (gid_t)-1;
    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    if (user && privs_resolve_user(user, uid, &primary, err, errlen) < 0)
        return -1;
    if (group)
        return privs_resolve_group(group, gid, err, errlen);
    *gid = primary;
    if (user && primary == (gid_t)-1) {
        snprintf(err, errlen, "uid %s has no passwd entry: give --gid too", user);
        return -1;
    }
    return 0;
}

int privs_check_plan(const char *user, const char *group, bool allow_root, char *err,
                     size_t errlen)
{
    uid_t uid;
    gid_t gid;
    if (privs_target(user, group, &uid, &gid, err, errlen) < 0)
        return -1;
    if (geteuid() != 0) {
        if ((user && uid != geteuid()) || (group && gid != getegid())) {
            snprintf(err, errlen, "--uid/--gid need root to switch users: corral runs as uid "
                     "%u gid %u", (unsigned)geteuid(), (unsigned)getegid());
            return -1;
        }
        return 0;
    }
    if (allow_root)
        return 0;
    if (!user) {
        snprintf(err, errlen, "refusing to run the application as root: give --uid USER (and "
                 "--gid GROUP) to drop privileges once the sockets are bound, or --allow-root");
        return -1;
    }
    if (uid == 0) {
        snprintf(err, errlen, "refusing to run the application as root: --uid %s is root; give "
                 "another user, or --allow-root", user);
        return -1;
    }
    return 0;
}

int privs_drop(const char *user, const char *group, char *err, size_t errlen)
{
    uid_t uid;
    gid_t gid;
    if (geteuid() != 0 || (!user && !group))
        return 0;
    if (privs_target(user, group, &uid, &gid, err, errlen) < 0)
        return -1;
    struct passwd *pw = user ? getpwuid(uid) : NULL;
    if (pw && pw->pw_name) {
        if (initgroups(pw->pw_name, gid) < 0) {
            snprintf(err, errlen, "initgroups(\"%s\", %u) failed: %s", pw->pw_name,
                     (unsigned)gid, strerror(errno));
            return -1;
        }
    } else if (setgroups(1, &gid) < 0) {
        snprintf(err, errlen, "setgroups(%u) failed: %s", (unsigned)gid, strerror(errno));
        return -1;
    }
    if (setgid(gid) < 0) {
        snprintf(err, errlen, "setgid(%u) failed: %s", (unsigned)gid, strerror(errno));
        return -1;
    }
    if (user && setuid(uid) < 0) {
        snprintf(err, errlen, "setuid(%u) failed: %s", (unsigned)uid, strerror(errno));
        return -1;
    }
    /* Trust, but verify: a partial drop must never go unnoticed. */
    if (getgid() != gid || getegid() != gid ||
        (user && (getuid() != uid || geteuid() != uid || (uid != 0 && setuid(0) == 0)))) {
        snprintf(err, errlen, "the privileges were not dropped: uid %u/%u gid %u/%u",
                 (unsigned)getuid(), (unsigned)geteuid(), (unsigned)getgid(),
                 (unsigned)getegid());
        return -1;
    }
    return 0;
}
