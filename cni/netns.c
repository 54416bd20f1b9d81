/* Namespace creation and pinning: a short-lived child unshares the namespaces, sets them up
 * (loopback, hostname, sysctls, from inside), and the parent bind-mounts /proc/<child>/ns/<kind>
 * onto the pin files. */

#include "cni/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/magic.h>

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

struct child_status {
    int err; /* positive errno, 0 = ready */
    char msg[512];
};

static void child_fail(int fd, int e, const char *what, const char *arg)
{
    struct child_status st = {.err = e};
    snprintf(st.msg, sizeof(st.msg), "%s%s%s: %s", what, arg ? " " : "", arg ? arg : "",
             strerror(e));
    if (write(fd, &st, sizeof(st)) < 0) {
        /* nothing left to do */
    }
    _exit(1);
}

static int loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "lo");
    int r = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (r == 0 && !(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        r = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    int e = errno;
    close(s);
    errno = e;
    return r;
}

/* Closes every fd but stdio, a and b.  hulld is multithreaded: this child inherited the pipes
 * other threads have open at the moment of fork (O_CLOEXEC does not help, it never execs), and
 * holding their write ends would keep those threads waiting for EOF. */
static void close_all_but(int a, int b)
{
    if (a > b) {
        int t = a;
        a = b;
        b = t;
    }
    if (a > 3)
        syscall(SYS_close_range, 3U, (unsigned)a - 1, 0U);
    if (b > a + 1)
        syscall(SYS_close_range, (unsigned)a + 1, (unsigned)b - 1, 0U);
    syscall(SYS_close_range, (unsigned)b + 1, ~0U, 0U);
}

static void child_main(const struct cni_ns_request *req, char **sysctl_paths, int status_fd,
                       int go_fd)
{
    close_all_but(status_fd, go_fd);
    if (req->user_path) {
        /* the namespaces are created inside (owned by) the pod's user namespace */
        int ufd = open(req->user_path, O_RDONLY | O_CLOEXEC);
        if (ufd < 0 || setns(ufd, CLONE_NEWUSER) < 0)
            child_fail(status_fd, errno, "join the user namespace", req->user_path);
        close(ufd);
    }
    if (unshare(req->flags) < 0)
        child_fail(status_fd, errno, "unshare", NULL);
    if ((req->flags & CLONE_NEWNET) && loopback_up() < 0)
        child_fail(status_fd, errno, "bring up loopback", NULL);
    if ((req->flags & CLONE_NEWUTS) && req->hostname && *req->hostname &&
        sethostname(req->hostname, strlen(req->hostname)) < 0)
        child_fail(status_fd, errno, "sethostname", req->hostname);
    for (size_t i = 0; i < req->n_sysctls; i++) {
        /* one key per open: a value can never name a second key */
        int fd = open(sysctl_paths[i], O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            child_fail(status_fd, errno, "open sysctl", req->sysctls[i].key);
        const char *v = req->sysctls[i].value;
        if (write(fd, v, strlen(v)) < 0)
            child_fail(status_fd, errno, "write sysctl", req->sysctls[i].key);
        close(fd);
    }
    struct child_status ok = {0};
    if (write(status_fd, &ok, sizeof(ok)) != sizeof(ok))
        _exit(1);
    char c;
    while (read(go_fd, &c, 1) < 0 && errno == EINTR)
        ;
    _exit(0);
}

static int pin_one(pid_t pid, const char *kind, const char *path, hull_error_t *err)
{
    _cleanup_free_ char *dup = xstrdup(path);
    int r = hull_mkdir_p(dirname(dup), 0700, err);
    if (r < 0)
        return r;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
    if (fd < 0)
        return hull_error_set(err, errno, "create namespace pin `%s`", path);
    close(fd);
    char src[64];
    snprintf(src, sizeof(src), "/proc/%d/ns/%s", (int)pid, kind);
    if (mount(src, path, NULL, MS_BIND, NULL) < 0) {
        int e = errno;
        unlink(path);
        return hull_error_set(err, e, "bind mount `%s` on `%s`", src, path);
    }
    return 0;
}

static char *sysctl_path(const char *key)
{
    /* dotted names become paths; names with '/' already are ("net/ipv4/conf/eth0.1/…") */
    char *p = xasprintf("/proc/sys/%s", key);
    if (strchr(key, '/') == NULL)
        for (char *c = p + strlen("/proc/sys/"); *c; c++)
            if (*c == '.')
                *c = '/';
    return p;
}

int cni_ns_create(const struct cni_ns_request *req, hull_error_t *err)
{
    struct {
        int flag;
        const char *kind;
        const char *path;
    } kinds[] = {
        {CLONE_NEWNET, "net", req->net_path},
        {CLONE_NEWIPC, "ipc", req->ipc_path},
        {CLONE_NEWUTS, "uts", req->uts_path},
    };
    if (req->flags & ~(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS))
        return hull_error_setx(err, EINVAL, "namespace flags not supported");
    for (size_t k = 0; k < 3; k++)
        if ((req->flags & kinds[k].flag) && (kinds[k].path == NULL || *kinds[k].path == '\0'))
            return hull_error_setx(err, EINVAL, "no pin path for the %s namespace", kinds[k].kind);
    if (req->flags == 0)
        return 0;
    char **paths = xmalloc0((req->n_sysctls + 1) * sizeof(char *));
    for (size_t i = 0; i < req->n_sysctls; i++)
        paths[i] = sysctl_path(req->sysctls[i].key);
    int status_pipe[2], go_pipe[2];
    if (pipe2(status_pipe, O_CLOEXEC) < 0) {
        int e = errno;
        for (size_t i = 0; i < req->n_sysctls; i++)
            free(paths[i]);
        free(paths);
        return hull_error_set(err, e, "pipe");
    }
    if (pipe2(go_pipe, O_CLOEXEC) < 0) {
        int e = errno;
        close(status_pipe[0]);
        close(status_pipe[1]);
        for (size_t i = 0; i < req->n_sysctls; i++)
            free(paths[i]);
        free(paths);
        return hull_error_set(err, e, "pipe");
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(status_pipe[0]);
        close(go_pipe[1]);
        child_main(req, paths, status_pipe[1], go_pipe[0]);
    }
    int fork_errno = errno;
    for (size_t i = 0; i < req->n_sysctls; i++)
        free(paths[i]);
    free(paths);
    close(status_pipe[1]);
    close(go_pipe[0]);
    if (pid < 0) {
        close(status_pipe[0]);
        close(go_pipe[1]);
        return hull_error_set(err, fork_errno, "fork");
    }
    struct child_status st;
    ssize_t n;
    do
        n = read(status_pipe[0], &st, sizeof(st));
    while (n < 0 && errno == EINTR);
    close(status_pipe[0]);
    int ret = 0;
    size_t pinned = 0;
    if (n != sizeof(st)) {
        ret = hull_error_setx(err, EIO, "namespace setup child died");
    } else if (st.err != 0) {
        st.msg[sizeof(st.msg) - 1] = '\0';
        ret = hull_error_setx(err, st.err, "%s", st.msg);
    } else {
        for (; pinned < 3; pinned++) {
            if (!(req->flags & kinds[pinned].flag))
                continue;
            ret = pin_one(pid, kinds[pinned].kind, kinds[pinned].path, err);
            if (ret < 0)
                break;
        }
    }
    close(go_pipe[1]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (ret < 0) {
        for (size_t k = 0; k < pinned && k < 3; k++)
            if (req->flags & kinds[k].flag)
                cni_ns_remove(kinds[k].path, NULL);
    }
    return ret;
}

int cni_ns_remove(const char *path, hull_error_t *err)
{
    if (path == NULL || *path == '\0')
        return 0;
    if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
        return hull_error_set(err, errno, "unmount namespace `%s`", path);
    if (unlink(path) < 0 && errno != ENOENT)
        return hull_error_set(err, errno, "remove namespace pin `%s`", path);
    return 0;
}

bool cni_ns_is_pinned(const char *path)
{
    struct statfs sf;
    if (path == NULL || statfs(path, &sf) < 0)
        return false;
    return sf.f_type == NSFS_MAGIC;
}
