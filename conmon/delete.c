/* --delete-on-exit: when the container's process has exited, the monitor runs
 * `RUNTIME [--root R] [ARGS] delete --force ID` itself, before it writes the exit file, and
 * the exit file says "runtime_deleted":true when that succeeded.  RemoveContainer then has no
 * runtime to run (that exec was most of its CPU time), and the container's cgroup and runtime
 * state go away when it exits rather than when kubelet removes it, as a containerd shim
 * deletes its task at exit. */
#include "conmon/conmon_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/wait.h>

#define DELETE_TIMEOUT_MS 10000

extern char **environ;

void conmon_runtime_pin(struct conmon_opts *o)
{
    /* hulld hands out a path that lives only as long as it does (its sealed copy of hull-oci,
     * /proc/<hulld>/fd/N): the monitor keeps its own reference for the exit, which may come
     * long after hulld restarted */
    o->runtime_fd = open(o->runtime, O_RDONLY | O_CLOEXEC);
    if (o->runtime_fd < 0)
        log_warn("open %s: %s; hulld deletes the container at removal", o->runtime,
                 strerror(errno));
}

static void exec_delete(const struct conmon_opts *o)
{
    const char *argv[8 + o->n_runtime_args];
    size_t n = 0;
    argv[n++] = o->runtime;
    if (o->runtime_root) {
        argv[n++] = "--root";
        argv[n++] = o->runtime_root;
    }
    for (size_t i = 0; i < o->n_runtime_args; i++)
        argv[n++] = o->runtime_args[i];
    argv[n++] = "delete";
    argv[n++] = "--force";
    argv[n++] = o->cid;
    argv[n] = NULL;
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
        _exit(127);
    /* stderr stays: the runtime's complaints land in the monitor's log.  fd 3 without
     * O_CLOEXEC, so that a runtime that is a script can still be read by its interpreter. */
    if (o->runtime_fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(o->runtime_fd, 3) < 0)
        _exit(127);
    closefrom(4);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    syscall(SYS_execveat, 3, "", (char *const *)argv, environ, AT_EMPTY_PATH);
    dprintf(2, "exec %s delete: %s\n", o->runtime, strerror(errno));
    _exit(127);
}

bool conmon_runtime_delete(const struct conmon_opts *o)
{
    if (!o->delete_on_exit || o->exec || o->runtime_fd < 0)
        return false;
    pid_t pid = fork();
    if (pid < 0) {
        log_warn("fork for the runtime's delete: %s", strerror(errno));
        return false;
    }
    if (pid == 0)
        exec_delete(o);
    _cleanup_close_ int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int64_t end = hull_monotonic_ns() + DELETE_TIMEOUT_MS * 1000000LL;
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            log_warn("wait for the runtime's delete: %s", strerror(errno));
            return false;
        }
        int64_t left = end - hull_monotonic_ns();
        if (left <= 0) {
            log_warn("the runtime's delete did not finish within %d ms: killed", DELETE_TIMEOUT_MS);
            kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
            return false;
        }
        struct pollfd p = {pfd, POLLIN, 0};
        if (pfd < 0 || poll(&p, 1, (int)(left / 1000000) + 1) < 0) {
            struct timespec ts = {0, 2000000}; /* no pidfd (old kernel): poll the child */
            nanosleep(&ts, NULL);
        }
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        log_warn("the runtime's delete failed (status %d): hulld deletes at removal", st);
        return false;
    }
    return true;
}
