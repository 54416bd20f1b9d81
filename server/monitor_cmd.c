/* The hull-conmon command line (struct monitor_args) and its start: spawn, then read the
 * monitor's first sync message (the container pid or the runtime's error). */
#include "server/container_internal.h"
#include "common/cgroup_systemd.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
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
    margs_add(a, c->runtime_path);
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
        return hull_error_setx(err, EIO, "%s", e);
    }
    *pid = (pid_t)cpid;
    if (sync_fd_out) {
        *sync_fd_out = hull_steal_fd(rd);
        *monitor_pid = child;
    }
    return 0;
}
