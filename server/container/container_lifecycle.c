/* Container lifecycle after create: start, stop with the stop signal and a grace period,
 * remove (also of a whole pod, for the sandbox area), live resource updates and log reopen.
 * Locks: c->op_lock serialises operations on one container; c->lock is only
 * held to read or change fields, never across a child process. */
#include "server/container/container_internal.h"
#include "server/spec/spec.h"
#include "server/hooks.h"
#include "server/pod/pod.h"
#include "server/spec/spec.h"
#include "server/container/container_restore.h"
#include "common/cgroup_systemd.h"
#include "image/image.h"
#include "conmon/conmon.h"
#include "common/crashpoint.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>

/* ---- sandbox hooks ------------------------------------------------------------------------- */
static int hook_stop_all(void *opaque, struct sandbox *sb, hull_error_t *err)
{
    return container_stop_pod(opaque, sandbox_id(sb), err);
}

static int hook_remove_all(void *opaque, struct sandbox *sb, hull_error_t *err)
{
    return container_remove_pod(opaque, sandbox_id(sb), err);
}

void ctr_register_hooks(struct hull_server *srv)
{
    struct sandbox_container_hooks hooks = {
        .opaque = srv, .stop_all = hook_stop_all, .remove_all = hook_remove_all};
    sandbox_set_container_hooks(srv, &hooks);
}

/* ---- start ---------------------------------------------------------------------------------- */
int container_start(struct hull_server *srv, const char *id, hull_error_t *err)
{
    _cleanup_container_ struct container *c = ctr_find(srv, id, err);
    if (c == NULL)
        return -hull_error_status(err);
    _cleanup_sandbox_ struct sandbox *sb = NULL;
    int r = sandbox_lookup(srv, c->pod_id, &sb, err);
    if (r < 0)
        return r;
    r = sandbox_hold(sb, err);
    if (r < 0)
        return r;
    pthread_mutex_lock(&c->op_lock);
    pthread_mutex_lock(&c->lock);
    int state = c->state;
    pthread_mutex_unlock(&c->lock);
    if (ctr_gone(c)) {
        r = hull_error_setx(err, ENOENT, "container \"%s\" not found", c->id);
    } else if (state != CONTAINER_CREATED) {
        r = hull_error_setx(err, EBUSY, "container \"%s\" is %s, not created", c->id,
                            state == CONTAINER_RUNNING  ? "running"
                            : state == CONTAINER_EXITED ? "exited"
                                                        : "in an unknown state");
    } else if ((r = hooks_start(srv, c, err)) == 0) {
        const char *args[] = {"start", c->id, NULL};
        pthread_mutex_lock(&c->lock);
        c->busy = true;
        pthread_mutex_unlock(&c->lock);
        /* the process is released during `start`: take the time before, so a process that
         * exits at once never finishes before it started */
        int64_t started = hull_now_ns();
        hull_crash_point("start:before-runtime");
        r = c->restore_pending ? ctr_restore_start(srv, c, err) : ctr_runtime_run(c, args, err);
        hull_crash_point("start:after-runtime");
        pthread_mutex_lock(&c->lock);
        if (r == 0 && c->state == CONTAINER_CREATED) {
            c->state = CONTAINER_RUNNING;
            c->started_ns = started;
        }
        pthread_mutex_unlock(&c->lock);
        if (r == 0) {
            ctr_save_running(srv, c, NULL);
            events_publish(srv, c->id, c->pod_id,
                           RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT);
        }
        /* busy until STARTED is out: the exit watcher must not publish STOPPED before it */
        pthread_mutex_lock(&c->lock);
        c->busy = false;
        pthread_mutex_unlock(&c->lock);
        if (r == 0) {
            hooks_post_start(srv, c);
            ctr_collect_exit(srv, c); /* it may already be done */
        } else {
            hull_error_wrap(err, "start container \"%s\"", c->id);
        }
    }
    pthread_mutex_unlock(&c->op_lock);
    sandbox_release(sb);
    return r;
}

/* ---- stop ----------------------------------------------------------------------------------- */
/* Waits until c exited or timeout_ms passed; true if it exited. */
static bool wait_exited(struct hull_server *srv, struct container *c, int64_t timeout_ms)
{
    int64_t deadline = hull_monotonic_ns() + timeout_ms * 1000000;
    for (;;) {
        ctr_collect_exit(srv, c);
        pthread_mutex_lock(&c->lock);
        bool done = c->state == CONTAINER_EXITED;
        if (!done) {
            struct timespec ts;
            int64_t until = hull_monotonic_ns() + 200 * 1000000LL;
            if (until > deadline)
                until = deadline;
            ts.tv_sec = until / 1000000000LL;
            ts.tv_nsec = until % 1000000000LL;
            pthread_cond_timedwait(&c->exited_cv, &c->lock, &ts);
            done = c->state == CONTAINER_EXITED;
        }
        pthread_mutex_unlock(&c->lock);
        if (done)
            return true;
        if (hull_monotonic_ns() >= deadline)
            return false;
    }
}

/* From /proc/<pid>/status: whether pid is its PID namespace's init (the kernel drops a signal
 * sent to such an init while it has no handler for it) and whether it catches sig. */
static bool ns_init_catches(pid_t pid, int sig, bool *ns_init)
{
    *ns_init = false;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    _cleanup_fclose_ FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    char line[512];
    unsigned long long caught = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "NSpid:", 6) == 0) {
            const char *last = strrchr(line, '\t');
            *ns_init = last != NULL && strtol(last + 1, NULL, 10) == 1;
        } else if (strncmp(line, "SigCgt:", 7) == 0) {
            caught = strtoull(line + 7, NULL, 16);
        }
    }
    return sig >= 1 && sig <= 64 && (caught >> (sig - 1)) & 1;
}

/* Waits up to timeout_ms for c to exit after its stop signal went to its init pid (dropped: pid had
 * no handler for sig at the send).  An init that had no handler yet (a container stopped right
 * after it started: busybox top sets its handlers a few ms after exec) never got the signal: it is
 * sent again once the handler is there. */
static bool wait_stopped(struct hull_server *srv, struct container *c, pid_t pid, int sig,
                         bool dropped, const char *const *args, int64_t timeout_ms)
{
    int64_t deadline = hull_monotonic_ns() + timeout_ms * 1000000;
    while (dropped) {
        int64_t left = (deadline - hull_monotonic_ns()) / 1000000;
        if (left <= 0)
            return false;
        if (wait_exited(srv, c, left < 50 ? left : 50))
            return true;
        bool ns_init;
        if (ns_init_catches(pid, sig, &ns_init) || !ns_init) {
            _cleanup_error_ hull_error_t kerr = NULL;
            log_debug("container %s: init now handles signal %d: sending it again", c->id, sig);
            if (ctr_runtime_run(c, args, &kerr) < 0)
                log_debug("container %s: stop signal: %s", c->id, hull_error_msg(&kerr));
            break;
        }
    }
    int64_t left = (deadline - hull_monotonic_ns()) / 1000000;
    return wait_exited(srv, c, left > 0 ? left : 0);
}

static int stop_locked(struct hull_server *srv, struct container *c, int64_t timeout_s,
                       hull_error_t *err)
{
    pthread_mutex_lock(&c->lock);
    int state = c->state;
    pthread_mutex_unlock(&c->lock);
    if (state == CONTAINER_EXITED)
        return 0;
    if (ctr_collect_exit(srv, c))
        return 0;
    if (c->restore_pending) { /* nothing runs yet */
        ctr_restore_stop_pending(srv, c);
        return 0;
    }
    _cleanup_error_ hull_error_t kerr = NULL;
    if (timeout_s > 0 && state == CONTAINER_RUNNING) {
        int signo = ctr_signal_number(c->stop_signal);
        _cleanup_free_ char *sig = xasprintf("%d", signo);
        const char *args[] = {"kill", c->id, sig, NULL};
        pthread_mutex_lock(&c->lock);
        pid_t ipid = c->pid;
        pthread_mutex_unlock(&c->lock);
        bool ns_init = false;
        bool dropped = ipid > 0 && !ns_init_catches(ipid, signo, &ns_init) && ns_init;
        if (ctr_runtime_run(c, args, &kerr) < 0)
            log_debug("container %s: stop signal: %s", c->id, hull_error_msg(&kerr));
        hull_error_free(&kerr);
        hull_crash_point("stop:after-signal");
        if (wait_stopped(srv, c, ipid, signo, dropped, args, timeout_s * 1000))
            return 0;
        log_info("container %s did not stop within %lld s: killing it", c->id,
                 (long long)timeout_s);
    }
    const char *args[] = {"kill", "--all", c->id, "KILL", NULL};
    bool all_ok = ctr_runtime_run(c, args, &kerr) >= 0;
    if (!all_ok) {
        log_debug("container %s: kill: %s", c->id, hull_error_msg(&kerr));
        hull_error_free(&kerr);
    }
    /* runc 1.1 on a v1 host lists the processes of --all from the container's devices cgroup,
     * which a systemd-driver container in a nested slice is not in (runc leaves its init in the
     * parent slice's): it then signals nothing and succeeds.  The init too, then: its end takes
     * the rest of its PID namespace with it. */
    if (!all_ok || !wait_exited(srv, c, 2000)) {
        const char *args1[] = {"kill", c->id, "KILL", NULL};
        if (ctr_runtime_run(c, args1, &kerr) < 0)
            log_debug("container %s: kill: %s", c->id, hull_error_msg(&kerr));
        hull_error_free(&kerr);
    }
    hull_crash_point("stop:after-kill");
    if (wait_exited(srv, c, 30 * 1000))
        return 0;
    /* A monitor that is gone can't report: the container is lost. */
    pthread_mutex_lock(&c->lock);
    pid_t mpid = c->monitor_pid;
    pthread_mutex_unlock(&c->lock);
    if (mpid <= 0 || kill(mpid, 0) < 0) {
        pthread_mutex_lock(&c->lock);
        c->state = CONTAINER_EXITED;
        c->exit_code = 137;
        c->finished_ns = hull_now_ns();
        free(c->reason);
        c->reason = xstrdup("Error");
        pthread_cond_broadcast(&c->exited_cv);
        pthread_mutex_unlock(&c->lock);
        ctr_save(srv, c, NULL);
        return 0;
    }
    return hull_error_setx(err, ETIMEDOUT, "container \"%s\" did not stop after SIGKILL", c->id);
}

int container_stop(struct hull_server *srv, const char *id, int64_t timeout_s, hull_error_t *err)
{
    struct container *c = ctr_find(srv, id, err);
    if (c == NULL)
        return -hull_error_status(err);
    pthread_mutex_lock(&c->op_lock);
    int r = ctr_gone(c) ? 0 : stop_locked(srv, c, timeout_s, err);
    pthread_mutex_unlock(&c->op_lock);
    ctr_put(c);
    return r;
}

/* ---- remove --------------------------------------------------------------------------------- */
/* Whether the monitor deleted c's runtime state at its exit already (--delete-on-exit). */
static bool ctr_runtime_deleted(struct container *c)
{
    pthread_mutex_lock(&c->lock);
    bool deleted = c->state == CONTAINER_EXITED && c->runtime_deleted;
    pthread_mutex_unlock(&c->lock);
    return deleted;
}

static int remove_locked(struct hull_server *srv, struct container *c, hull_error_t *err)
{
    int r = stop_locked(srv, c, 0, err);
    if (r < 0)
        return r;
    /* from here on the removal is owed: a restart finishes it */
    if (c->phase != CTR_PHASE_REMOVING) {
        pthread_mutex_lock(&c->lock);
        c->phase = CTR_PHASE_REMOVING;
        pthread_mutex_unlock(&c->lock);
        if ((r = ctr_save(srv, c, err)) < 0)
            return hull_error_wrap(err, "remove container \"%s\"", c->id);
    }
    hull_crash_point("remove:after-intent");
    _cleanup_error_ hull_error_t e = NULL;
    const char *args[] = {"delete", "--force", c->id, NULL};
    if (!ctr_runtime_deleted(c) && ctr_runtime_run(c, args, &e) < 0)
        log_debug("container %s: delete: %s", c->id, hull_error_msg(&e));
    hull_error_free(&e);
    hull_crash_point("remove:after-delete");
    _cleanup_free_ char *sdir = ctr_state_dir(srv, c->id);
    _cleanup_free_ char *rootfs = hull_path_join(sdir, "rootfs");
    if (umount2(rootfs, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
        return hull_error_set(err, errno, "remove container \"%s\": unmount rootfs", c->id);
    hull_crash_point("remove:after-umount");
    _cleanup_free_ char *rdir = ctr_root_dir(srv, c->id);
    _cleanup_free_ char *mon = ctr_socket_dir(srv, c->id, NULL);
    /* the bundle and the writable layer go to the trash (a rename each) and are deleted in the
     * background: their many unlinks wait on the filesystem journal under load */
    struct ctr_trash *trash = ctr_service(srv)->trash;
    if ((r = hull_rm_rf(mon, err)) < 0 ||
        (r = ctr_trash_discard(trash, CTR_TRASH_STATE, sdir, c->id, err)) < 0 ||
        (r = spec_release_mounts(rdir, err)) < 0 ||
        (spec_image_mounts_release(ctr_service(srv)->images, rdir),
         (r = ctr_trash_discard(trash, CTR_TRASH_ROOT, rdir, c->id, err)) < 0))
        return hull_error_wrap(err, "remove container \"%s\"", c->id);
    hull_crash_point("remove:after-dirs");
    _cleanup_free_ char *exitf = hull_path_join(ctr_service(srv)->exit_dir, c->id);
    unlink(exitf);
    r = ctr_remove_record(srv, c, err);
    if (r < 0)
        return r;
    ctr_image_release(srv, c);
    ctr_unlink(srv, c);
    hooks_remove(srv, c);
    log_info("container %s removed", c->id);
    events_publish(srv, c->id, c->pod_id,
                   RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT);
    return 0;
}

int container_remove(struct hull_server *srv, const char *id, hull_error_t *err)
{
    _cleanup_error_ hull_error_t ferr = NULL;
    struct container *c = ctr_find(srv, id, &ferr);
    if (c == NULL) {
        if (hull_error_status(&ferr) == ENOENT)
            return 0; /* idempotent */
        *err = hull_steal(ferr);
        return -hull_error_status(err);
    }
    pthread_mutex_lock(&c->op_lock);
    /* a create that failed (or a removal) finished while we waited: nothing left to do */
    int r = ctr_gone(c) ? 0 : remove_locked(srv, c, err);
    pthread_mutex_unlock(&c->op_lock);
    ctr_put(c);
    return r;
}

static int for_pod(struct hull_server *srv, const char *pod_id, bool remove, hull_error_t *err)
{
    struct container_snapshot **l = NULL;
    size_t n = 0;
    container_list(srv, pod_id, &l, &n, err);
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        _cleanup_error_ hull_error_t e = NULL;
        int r = remove ? container_remove(srv, l[i]->id, &e) : container_stop(srv, l[i]->id, 0, &e);
        if (r < 0 && first == 0) {
            first = r;
            hull_error_setx(err, hull_error_status(&e), "%s", hull_error_msg(&e));
        }
    }
    container_snapshot_list_free(l, n);
    return first;
}

int container_stop_pod(struct hull_server *srv, const char *pod_id, hull_error_t *err)
{
    return for_pod(srv, pod_id, false, err);
}

int container_remove_pod(struct hull_server *srv, const char *pod_id, hull_error_t *err)
{
    return for_pod(srv, pod_id, true, err);
}
/* ---- update, reopen -------------------------------------------------------------------------- */
int container_update_resources(struct hull_server *srv, const char *id,
                               const Runtime__V1__LinuxContainerResources *res, hull_error_t *err)
{
    struct container *c = ctr_find(srv, id, err);
    if (c == NULL)
        return -hull_error_status(err);
    if (res == NULL) { /* nothing to change, but the id must name a container */
        ctr_put(c);
        return 0;
    }
    _cleanup_free_ char *json = NULL;
    _cleanup_free_ char *sdir = ctr_state_dir(srv, c->id);
    _cleanup_free_ char *file = hull_path_join(sdir, "resources.json");
    pthread_mutex_lock(&c->op_lock);
    pthread_mutex_lock(&c->lock);
    int state = c->state;
    pthread_mutex_unlock(&c->lock);
    int r = 0;
    if (state != CONTAINER_RUNNING && state != CONTAINER_CREATED) {
        r = hull_error_setx(err, EBUSY, "container \"%s\" is not running", c->id);
        goto out;
    }
    if ((r = spec_resources_from_cri(res, &json, err)) < 0 ||
        (r = hull_write_file_atomic_flags(file, json, strlen(json), 0600, HULL_ATOMIC_NOSYNC,
                                          err)) < 0)
        goto out;
    const char *args[] = {"update", "--resources", file, c->id, NULL};
    r = ctr_runtime_run(c, args, err);
    if (r < 0) {
        hull_error_wrap(err, "update container \"%s\"", c->id);
        goto out;
    }
    size_t len = protobuf_c_message_get_packed_size(&res->base);
    uint8_t *pb = xmalloc0(len + 1);
    protobuf_c_message_pack(&res->base, pb);
    pthread_mutex_lock(&c->lock);
    free(c->resources_pb);
    c->resources_pb = pb;
    c->resources_len = len;
    pthread_mutex_unlock(&c->lock);
    r = ctr_save(srv, c, err);
out:
    pthread_mutex_unlock(&c->op_lock);
    ctr_put(c);
    return r;
}

int container_reopen_log(struct hull_server *srv, const char *id, hull_error_t *err)
{
    _cleanup_container_ struct container *c = ctr_find_running(srv, id, err);
    if (c == NULL)
        return -hull_error_status(err);
    int r = 0;
    _cleanup_free_ char *mon = ctr_socket_dir(srv, c->id, NULL);
    _cleanup_free_ char *path = hull_path_join(mon, HULL_CONMON_CTL_SOCK);
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return hull_error_setx(err, ENAMETOOLONG, "control socket path too long");
    strcpy(sa.sun_path, path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return hull_error_set(err, errno, "reopen log of container \"%s\": connect monitor", c->id);
    if (send(fd, "reopen", 6, MSG_NOSIGNAL) < 0)
        return hull_error_set(err, errno, "reopen log: send");
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    char buf[512];
    if (poll(&pfd, 1, 10000) <= 0)
        return hull_error_setx(err, ETIMEDOUT, "reopen log: the monitor did not answer");
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return hull_error_setx(err, EPIPE, "reopen log: the monitor closed the connection");
    buf[n] = '\0';
    if (strncmp(buf, "ok", 2) != 0)
        r = hull_error_setx(err, EIO, "reopen log of container \"%s\": %s", c->id, buf);
    return r;
}
