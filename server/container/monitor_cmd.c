/* The hull-conmon command line (struct monitor_args) and its start: spawn, then read the
 * monitor's first sync message (the container pid or the runtime's error). */
#include "server/container/container_internal.h"
#include "common/cgroup_systemd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define CREATE_SYNC_TIMEOUT_MS (120 * 1000)

/* ---- monitor start -------------------------------------------------------------------------- */
/* Reads one '\n'-terminated line from fd within timeout_ms. */
int ctr_monitor_read_line(int fd, int timeout_ms, char **out, hull_error_t *err)
{
    size_t cap = 256, n = 0;
    _cleanup_free_ char *buf = xmalloc0(cap);
    int64_t deadline = hull_monotonic_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int64_t left = (deadline - hull_monotonic_ns()) / 1000000;
        if (left <= 0)
            return hull_error_setx(err, ETIMEDOUT, "no answer from the monitor in %d s",
                                   timeout_ms / 1000);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        char ch;
        ssize_t got = read(fd, &ch, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return hull_error_setx(err, EPIPE, "the monitor exited without reporting");
        if (ch == '\n')
            break;
        if (n + 2 >= cap) {
            if (cap >= 64 * 1024)
                return hull_error_setx(err, EPROTO, "monitor message too long");
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        buf[n++] = ch;
        buf[n] = '\0';
    }
    *out = hull_steal(buf);
    return 0;
}

void margs_add(struct monitor_args *a, const char *s)
{
    if (a->n < sizeof(a->argv) / sizeof(a->argv[0]) - 1)
        a->argv[a->n++] = s;
    a->argv[a->n] = NULL;
}

const char *margs_own(struct monitor_args *a, char *s)
{
    if (a->n_owned < sizeof(a->owned) / sizeof(a->owned[0]))
        a->owned[a->n_owned++] = s;
    return s;
}

void margs_free(struct monitor_args *a)
{
    for (size_t i = 0; i < a->n_owned; i++)
        free(a->owned[i]);
}

void margs_monitor(struct monitor_args *a, struct hull_server *srv, struct container *c,
                   const char *bundle, const char *socket_dir, const char *exit_dir)
{
    margs_add(a, ctr_service(srv)->conmon_path);
    margs_add(a, "--cid");
    margs_add(a, c->id);
    margs_add(a, "--bundle");
    margs_add(a, bundle);
    margs_add(a, "--runtime");
    margs_add(a, margs_own(a, ctr_runtime_exec_path(srv, c->runtime_path)));
    margs_add(a, "--runtime-root");
    margs_add(a, c->runtime_root);
    if (hull_systemd_path_form(c->cgroups_path)) {
        /* systemd driver: runc's global flag, which hull-oci takes too */
        margs_add(a, "--runtime-arg");
        margs_add(a, "--systemd-cgroup");
    }
    margs_add(a, "--socket-dir");
    margs_add(a, socket_dir);
    margs_add(a, "--exit-dir");
    margs_add(a, exit_dir);
    margs_add(a, "--sync-fd");
    margs_add(a, "3");
}

/* Starts hull-conmon with argv, reads its first sync message: the container pid or the
 * runtime's error.  sync_fd_out (optional) keeps the read end open for a second message. */
int ctr_monitor_start(struct monitor_args *a, pid_t *pid, pid_t *monitor_pid, int *sync_fd_out,
                      hull_error_t *err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return hull_error_set(err, errno, "pipe");
    _cleanup_close_ int rd = p[0];
    _cleanup_close_ int wr = p[1];
    pid_t child = -1;
    int r = proc_spawn_with_fd((char *const *)a->argv, wr, &child, err);
    if (r < 0)
        return r;
    close(hull_steal_fd(wr));
    _cleanup_free_ char *line = NULL;
    r = ctr_monitor_read_line(rd, CREATE_SYNC_TIMEOUT_MS, &line, err);
    if (!sync_fd_out) {
        /* the first process forks the monitor away and exits at once */
        int st;
        while (waitpid(child, &st, 0) < 0 && errno == EINTR)
            ;
    }
    if (r < 0) {
        if (sync_fd_out)
            kill(child, SIGKILL), waitpid(child, NULL, 0);
        return r;
    }
    _cleanup_yajl_ yajl_val doc = NULL;
    r = hull_json_parse(line, "monitor message", &doc, err);
    if (r < 0)
        return r;
    long long cpid = hull_json_get_int(doc, "pid", -1);
    *monitor_pid = (pid_t)hull_json_get_int(doc, "monitor_pid", -1);
    if (cpid <= 0) {
        const char *e = hull_json_get_string(doc, "error", "unknown error");
        if (sync_fd_out)
            waitpid(child, NULL, 0);
        /* the runtime did not finish within the exec's timeout: a deadline, not a failure */
        return hull_error_setx(err, hull_json_get_bool(doc, "timed_out", false) ? ETIMEDOUT : EIO,
                               "%s", e);
    }
    *pid = (pid_t)cpid;
    if (sync_fd_out) {
        *sync_fd_out = hull_steal_fd(rd);
        *monitor_pid = child;
    }
    return 0;
}

/* Whether pid is a zombie (exited, not yet reaped by us). */
static bool is_zombie(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' && paren[2] == 'Z';
}

/* StartTransientUnit(unit) in system.slice for the monitor; a failure is logged (quietly for
 * a monitor that exited already: a quick exec's may be done before systemd could move it). */
static void monitor_scope_start(const char *unit, const char *desc, pid_t monitor_pid)
{
    _cleanup_error_ hull_error_t e = NULL;
    if (hull_systemd_start_unit(unit, "system.slice", desc, &monitor_pid, 1, NULL, &e) < 0) {
        if (is_zombie(monitor_pid))
            log_debug("%s: scope %s: %s (the monitor exited already)", desc, unit,
                      hull_error_msg(&e));
        else
            log_warn("%s: scope %s: %s", desc, unit, hull_error_msg(&e));
    }
}

void ctr_monitor_scope(const char *cgroups_path, const char *id, pid_t monitor_pid)
{
    if (monitor_pid <= 0 || !hull_systemd_path_form(cgroups_path))
        return;
    _cleanup_free_ char *unit = xasprintf("hull-conmon-%s.scope", id);
    _cleanup_free_ char *desc = xasprintf("hull-conmon of container %s", id);
    monitor_scope_start(unit, desc, monitor_pid);
}

char *ctr_exec_monitor_scope(const char *cgroups_path, const char *id, const char *exec_id,
                             pid_t monitor_pid)
{
    if (monitor_pid <= 0 || !hull_systemd_path_form(cgroups_path))
        return NULL;
    _cleanup_free_ char *unit = xasprintf("hull-conmon-%s-exec-%s.scope", id, exec_id);
    _cleanup_free_ char *desc = xasprintf("hull-conmon of exec %s in container %s", exec_id, id);
    monitor_scope_start(unit, desc, monitor_pid);
    /* even when the start failed: a failed unit is stopped (collected) with the others */
    return hull_steal(unit);
}

void ctr_exec_monitor_scope_stop(char *unit)
{
    if (unit == NULL)
        return;
    _cleanup_error_ hull_error_t e = NULL;
    if (hull_systemd_stop_unit(unit, &e) < 0)
        log_warn("exec monitor scope %s: %s", unit, hull_error_msg(&e));
    free(unit);
}

/* ---- the sealed hull-oci -------------------------------------------------------------------- */
#define OCI_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int sealed_copy(const char *path, struct stat *st)
{
    _cleanup_close_ int src = open(path, O_RDONLY | O_CLOEXEC);
    if (src < 0 || fstat(src, st) < 0 || !S_ISREG(st->st_mode))
        return -1;
    _cleanup_close_ int mfd = memfd_create("hull-oci", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0)
        return -1;
    off_t off = 0;
    while (off < st->st_size) {
        ssize_t n = sendfile(mfd, src, &off, (size_t)(st->st_size - off));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
    }
    if (fchmod(mfd, 0500) < 0 || fcntl(mfd, F_ADD_SEALS, OCI_SEALS) < 0)
        return -1;
    return hull_steal_fd(mfd);
}

char *ctr_runtime_exec_path(struct hull_server *srv, const char *runtime_path)
{
    struct container_service *cs = ctr_service(srv);
    struct stat now;
    if (strcmp(runtime_path, cs->hull_oci_path) != 0 || stat(runtime_path, &now) < 0)
        return xstrdup(runtime_path);
    char *out = NULL;
    pthread_mutex_lock(&cs->oci_mu);
    if (cs->oci_memfd < 0 || !same_file(&now, &cs->oci_src)) {
        struct stat st;
        int fd = sealed_copy(runtime_path, &st);
        if (fd >= 0) {
            /* an older copy stays open: a monitor handed its path may not have executed it yet
             * (one per hull-oci upgrade while hulld runs) */
            cs->oci_memfd = fd;
            cs->oci_src = st;
            free(cs->oci_exec_path);
            cs->oci_exec_path = xasprintf("/proc/%d/fd/%d", (int)getpid(), fd);
        } else {
            log_warn("sealed copy of %s: %s; hull-oci copies itself", runtime_path,
                     strerror(errno));
        }
    }
    out = xstrdup(cs->oci_exec_path && same_file(&now, &cs->oci_src) ? cs->oci_exec_path
                                                                     : runtime_path);
    pthread_mutex_unlock(&cs->oci_mu);
    return out;
}
