/*
 * master_notify.c — what the master tells systemd (Type=notify) about the
 * pool: READY=1 once a generation serves, RELOADING=1 when a reload
 * begins. The other messages (STOPPING=1) are one line where they happen.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "master_state.h"

void master_notify_ready(struct master *m)
{
    char msg[256];
    snprintf(msg, sizeof(msg),
             "READY=1\nSTATUS=serving: %u processes x %u threads, %zu "
             "listeners\nMAINPID=%d",
             master_pool_processes(m), m->cfg->threads, m->listener_count, (int)getpid());
    int rc = systemd_notify_send(&m->notify, msg);
    if (rc < 0)
        log_msg(LOG_WARN, "sendto(NOTIFY_SOCKET) failed: %s", strerror(-rc));
    else if (m->notify.fd >= 0)
        log_msg(LOG_INFO, "every worker is running: told systemd READY=1");
    m->ready_sent = true;
}

void master_notify_reloading(struct master *m)
{
    int rc = systemd_notify_send(&m->notify, "RELOADING=1\nSTATUS=reloading");
    if (rc < 0)
        log_msg(LOG_WARN, "sendto(NOTIFY_SOCKET) failed: %s", strerror(-rc));
}
