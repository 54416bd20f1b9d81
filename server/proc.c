/* Child processes: bounded capture, deadlines, no leaked fds. */
#include "server/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <linux/close_range.h>
#include <sys/syscall.h>

void proc_result_free(struct proc_result *r)
{
    free(r->out);
    free(r->errout);
    r->out = r->errout = NULL;
}

static void child_close_fds(int keep_from)
{
    syscall(SYS_close_range, (unsigned)keep_from, ~0U, 0U);
}

static void child_reset_signals(void)
{
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGPIPE, SIG_DFL);
}

struct capture {
    int fd;
    char *buf;
    size_t len;
};

static void capture_read(struct capture *c)
{
    char tmp[4096];
    ssize_t n = read(c->fd, tmp, sizeof(tmp));
    if (n <= 0) {
        if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
            close(c->fd);
            c->fd = -1;
        }
        return;
    }
    size_t room = PROC_OUTPUT_MAX - c->len;
    size_t take = (size_t)n < room ? (size_t)n : room; /* beyond the bound: read and drop */
    if (take) {
        c->buf = xrealloc(c->buf, c->len + take + 1);
        memcpy(c->buf + c->len, tmp, take);
        c->len += take;
        c->buf[c->len] = '\0';
    }
}

int proc_run(char *const argv[], const char *stdin_data, int timeout_ms, struct proc_result *res,
             hull_error_t *err)
{
    memset(res, 0, sizeof(*res));
    int in[2] = {-1, -1}, out[2], errp[2];
    if (pipe2(out, O_CLOEXEC) < 0)
        return hull_error_set(err, errno, "pipe");
    if (pipe2(errp, O_CLOEXEC) < 0) {
        int e = errno;
        close(out[0]);
        close(out[1]);
        return hull_error_set(err, e, "pipe");
    }
    if (stdin_data && pipe2(in, O_CLOEXEC) < 0) {
        int e = errno;
        close(out[0]);
        close(out[1]);
        close(errp[0]);
        close(errp[1]);
        return hull_error_set(err, e, "pipe");
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(out[0]);
        close(out[1]);
        close(errp[0]);
        close(errp[1]);
        if (in[0] >= 0) {
            close(in[0]);
            close(in[1]);
        }
        return hull_error_set(err, e, "fork `%s`", argv[0]);
    }
    if (pid == 0) {
        child_reset_signals();
        int devnull = open("/dev/null", O_RDONLY);
        dup2(in[0] >= 0 ? in[0] : devnull, 0);
        dup2(out[1], 1);
        dup2(errp[1], 2);
        child_close_fds(3);
        execv(argv[0], argv);
        dprintf(2, "exec %s: %s", argv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]);
    close(errp[1]);
    if (in[0] >= 0) {
        close(in[0]);
        size_t left = strlen(stdin_data);
        const char *p = stdin_data;
        while (left > 0) {
            ssize_t w = write(in[1], p, left);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            p += w;
            left -= (size_t)w;
        }
        close(in[1]);
    }
    struct capture cs[2] = {{out[0], NULL, 0}, {errp[0], NULL, 0}};
    int64_t deadline = timeout_ms > 0 ? hull_monotonic_ns() + (int64_t)timeout_ms * 1000000 : 0;
    while (cs[0].fd >= 0 || cs[1].fd >= 0) {
        struct pollfd pfd[2];
        int n = 0;
        for (int i = 0; i < 2; i++)
            if (cs[i].fd >= 0)
                pfd[n++] = (struct pollfd){.fd = cs[i].fd, .events = POLLIN};
        int wait_ms = -1;
        if (deadline) {
            int64_t left = (deadline - hull_monotonic_ns()) / 1000000;
            if (left <= 0) {
                res->timed_out = true;
                break;
            }
            wait_ms = left > INT_MAX ? INT_MAX : (int)left;
        }
        int r = poll(pfd, (nfds_t)n, wait_ms);
        if (r < 0 && errno != EINTR)
            break;
        for (int j = 0; j < n && r > 0; j++) {
            if (!(pfd[j].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            for (int i = 0; i < 2; i++)
                if (cs[i].fd == pfd[j].fd)
                    capture_read(&cs[i]);
        }
    }
    if (res->timed_out)
        kill(pid, SIGKILL);
    for (int i = 0; i < 2; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    res->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    res->out = cs[0].buf ? cs[0].buf : xstrdup("");
    res->errout = cs[1].buf ? cs[1].buf : xstrdup("");
    return 0;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

int proc_run_ok(char *const argv[], int timeout_ms, hull_error_t *err)
{
    struct proc_result res;
    int r = proc_run(argv, NULL, timeout_ms, &res, err);
    if (r < 0)
        return r;
    if (res.timed_out) {
        proc_result_free(&res);
        return hull_error_setx(err, ETIMEDOUT, "`%s %s` timed out", argv[0], argv[1]);
    }
    if (res.status != 0) {
        trim(res.errout);
        trim(res.out);
        const char *why = res.errout[0] ? res.errout : res.out;
        /* the runtime's own line; keep the daemon's message one line long */
        for (char *p = res.errout; *p; p++)
            if (*p == '\n')
                *p = ' ';
        r = hull_error_setx(err, EIO, "%s (exit %d)", why[0] ? why : argv[0], res.status);
        proc_result_free(&res);
        return r;
    }
    proc_result_free(&res);
    return 0;
}

int proc_spawn_with_fd(char *const argv[], int extra_fd, pid_t *pid_out, hull_error_t *err)
{
    pid_t pid = fork();
    if (pid < 0)
        return hull_error_set(err, errno, "fork `%s`", argv[0]);
    if (pid == 0) {
        child_reset_signals();
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        if (extra_fd >= 0) {
            if (extra_fd == 3) {
                int fl = fcntl(3, F_GETFD);
                fcntl(3, F_SETFD, fl & ~FD_CLOEXEC);
            } else {
                dup2(extra_fd, 3);
            }
            child_close_fds(4);
        } else {
            child_close_fds(3);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    *pid_out = pid;
    return 0;
}

char *proc_self_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0)
        return xstrdup("/usr/local/bin");
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = '\0';
    return xstrdup(buf);
}
