/* Child processes: bounded capture, deadlines, no leaked fds. */
#include "server/container/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <spawn.h>
#include <sys/wait.h>
#include <linux/close_range.h>
#include <sys/syscall.h>

void proc_result_free(struct proc_result *r)
{
    free(r->out);
    free(r->errout);
    r->out = r->errout = NULL;
}

/* Children start with stdio as given, fds from 3 (or from 4 with an extra fd as 3) closed, no
 * signal blocked and every signal at its default.  posix_spawn clones without copying hulld's
 * address space (CLONE_VM | CLONE_VFORK): a fork() copied the page tables of a multi-threaded
 * daemon with tens of MiB mapped and left every page it wrote afterwards to a copy-on-write
 * fault, on every runtime, monitor and helper start. */
struct spawn_opts {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
};

static void spawn_opts_init(struct spawn_opts *o)
{
    posix_spawn_file_actions_init(&o->fa);
    posix_spawnattr_init(&o->attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&o->attr, &none);
    posix_spawnattr_setsigdefault(&o->attr, &all);
    posix_spawnattr_setflags(&o->attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

static int spawn_opts_run(struct spawn_opts *o, char *const argv[], pid_t *pid)
{
    extern char **environ;
    int r = posix_spawn(pid, argv[0], &o->fa, &o->attr, argv, environ);
    posix_spawn_file_actions_destroy(&o->fa);
    posix_spawnattr_destroy(&o->attr);
    return r;
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
    struct spawn_opts so;
    spawn_opts_init(&so);
    if (in[0] >= 0)
        posix_spawn_file_actions_adddup2(&so.fa, in[0], 0);
    else
        posix_spawn_file_actions_addopen(&so.fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&so.fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&so.fa, errp[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&so.fa, 3);
    pid_t pid = -1;
    int se = spawn_opts_run(&so, argv, &pid);
    if (se != 0) {
        close(out[0]);
        close(out[1]);
        close(errp[0]);
        close(errp[1]);
        if (in[0] >= 0) {
            close(in[0]);
            close(in[1]);
        }
        return hull_error_set(err, se, "spawn `%s`", argv[0]);
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
    struct spawn_opts so;
    spawn_opts_init(&so);
    posix_spawn_file_actions_addopen(&so.fa, 0, "/dev/null", O_RDWR, 0);
    posix_spawn_file_actions_adddup2(&so.fa, 0, 1);
    posix_spawn_file_actions_adddup2(&so.fa, 0, 2);
    if (extra_fd >= 0) /* to 3 (the same fd: its close-on-exec flag is cleared) */
        posix_spawn_file_actions_adddup2(&so.fa, extra_fd, 3);
    posix_spawn_file_actions_addclosefrom_np(&so.fa, extra_fd >= 0 ? 4 : 3);
    int se = spawn_opts_run(&so, argv, pid_out);
    if (se != 0)
        return hull_error_set(err, se, "spawn `%s`", argv[0]);
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
