/*
 * cgi_watch.h — one descriptor of a running CGI request in the loop's
 * epoll (cgi_loop.h): the interest it has now, kept in step with the
 * kernel's copy by cgi_watch_set. Level-triggered; a descriptor with no
 * interest is out of the set (EPOLLHUP and EPOLLERR are reported whatever
 * the interest, and a paused pipe whose writer is gone would wake the loop
 * again and again). The event's data is the watch itself: its job and kind
 * tell the loop whom it is for.
 */
#ifndef CORRAL_CGI_WATCH_H
#define CORRAL_CGI_WATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct cgi_job;

enum cgi_watch_kind {
    CGI_WATCH_IN,   /* the script's stdin (write end) */
    CGI_WATCH_OUT,  /* its stdout */
    CGI_WATCH_ERR,  /* its stderr */
    CGI_WATCH_PID,  /* its pidfd */
    CGI_WATCH_CONN, /* the front end's connection */
};

struct cgi_watch {
    struct cgi_job *job;
    enum cgi_watch_kind kind;
    int fd;        /* -1: none */
    uint32_t mask; /* the interest in the set (0: not in it) */
};

static inline void cgi_watch_init(struct cgi_watch *w, struct cgi_job *job,
                                  enum cgi_watch_kind kind, int fd)
{
    *w = (struct cgi_watch){.job = job, .kind = kind, .fd = fd};
}

/* Make W's interest in EPFD MASK (0: out of the set). Returns 0, or -1
 * when epoll_ctl failed (out of memory: the caller gives up on the run). */
static inline int cgi_watch_set(int epfd, struct cgi_watch *w, uint32_t mask)
{
    if (w->fd < 0 || mask == w->mask)
        return 0;
    struct epoll_event ev = {.events = mask, .data.ptr = w};
    int op = !mask ? EPOLL_CTL_DEL : w->mask ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int rc = epoll_ctl(epfd, op, w->fd, &ev);
    if (rc == 0 || op == EPOLL_CTL_DEL)
        w->mask = mask;
    return rc;
}

/* W's descriptor is about to be closed: out of the set first. */
static inline void cgi_watch_drop(int epfd, struct cgi_watch *w)
{
    cgi_watch_set(epfd, w, 0);
    w->fd = -1;
}

#endif
