/* Running container processes: the container init (create) and extra processes (exec).
 *
 * hull-oci (the parent) prepares everything that needs host paths (cgroups, seccomp program,
 * console socket, namespace fds), joins the namespaces given by path (all but mount), and
 * clones the child with the new namespaces.  The child waits for GO (user namespace maps
 * written, cgroups joined), sets itself up, reports READY or ERROR over a SEQPACKET socket, and
 * for create blocks until `start`.
 *
 * Host fds (runc CVE-2024-21626 / CVE-2016-9962 class): the child is visible to the other
 * containers of a shared-PID pod from the moment it is cloned, and a created container waits
 * there until `start`.  So the child is cloned non-dumpable (only CAP_SYS_PTRACE in the host
 * user namespace reaches its /proc/<pid>/fd) and stays so until execve; at its first
 * instruction it closes every fd it does not need (the namespace fds the parent already
 * joined, our own pid namespace, whatever our caller leaked), closes the mount/user namespace
 * fds once joined and the console socket once used, and waits for `start` holding nothing but
 * stdio, the preserved fds and both ends of an anonymous pipe: `start` takes the write end
 * with pidfd_getfd(2) and writes one byte.  The state directory's exec.fifo is only the
 * "created" marker; the init never opens it. */

#include "oci/oci.h"
#include "common/crashpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>

struct child_args {
    const struct oci_spec *spec;
    const struct oci_process *proc;
    const struct oci_run_opts *o;
    const struct hull_cgroup *cg;
    int sync_fd;
    int console_fd;
    int exec_r, exec_w; /* create: the start barrier (anonymous pipe), -1 for exec */
    int mntns_fd;       /* mount namespace to join, -1 if none */
    int userns_fd;      /* user namespace to join (by the child: see below), -1 if none */
    int ns_pidfd;       /* exec: the container init's pidfd, joined for ns_pidfd_flags */
    int ns_pidfd_flags; /* CLONE_NEWUSER, CLONE_NEWNS and/or CLONE_NEWCGROUP, or 0 */
    bool exec_mode;
    bool new_userns, new_cgroupns, new_mntns;
    const void *bpf;
    size_t bpf_len;
    unsigned bpf_flags;
};

static const struct {
    int type;
    const char *name;
} join_order[] = {
    {CLONE_NEWIPC, "ipc"},   {CLONE_NEWUTS, "uts"},       {CLONE_NEWNET, "net"},
    {CLONE_NEWPID, "pid"},   {CLONE_NEWCGROUP, "cgroup"}, {CLONE_NEWTIME, "time"},
    {CLONE_NEWUSER, "user"}, {CLONE_NEWNS, "mnt"},
};
#define N_NS (sizeof(join_order) / sizeof(join_order[0]))

/* Of the namespace types to join, those the parent joins before the clone: all but mount and
 * user (and child_too), which the child joins: a parent that joined a user namespace could no
 * longer be inspected by tools from its own (the sanitizers' leak checker hangs). */
static int parent_joins(int types, int child_too)
{
    return types & ~(CLONE_NEWNS | CLONE_NEWUSER | child_too);
}

/* Joins, in the parent, the namespaces of `types`: through pidfd in one setns(2) when pidfd >= 0
 * (exec), else each from nsfd[] (indexed like join_order, create) in join_order. */
static int join_namespaces(const int *nsfd, int pidfd, int types, hull_error_t *err)
{
    if (pidfd >= 0) {
        if (types && setns(pidfd, types) < 0)
            return hull_error_set(err, errno == ESRCH ? ESRCH : errno,
                                  "join the container's namespaces through its pidfd");
        return 0;
    }
    for (size_t i = 0; i < N_NS; i++) {
        if (nsfd[i] < 0 || !(types & join_order[i].type))
            continue;
        if (setns(nsfd[i], join_order[i].type) < 0)
            return hull_error_set(err, errno, "join %s namespace", join_order[i].name);
    }
    return 0;
}

static void sigset_forwarded(sigset_t *s)
{
    sigemptyset(s);
    sigaddset(s, SIGCHLD);
    sigaddset(s, SIGINT);
    sigaddset(s, SIGTERM);
    sigaddset(s, SIGHUP);
    sigaddset(s, SIGQUIT);
    sigaddset(s, SIGUSR1);
    sigaddset(s, SIGUSR2);
    sigaddset(s, SIGWINCH);
}

static char *lookup_executable(const char *arg0, char *const *env)
{
    if (strchr(arg0, '/'))
        return access(arg0, X_OK) == 0 ? xstrdup(arg0) : NULL;
    const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (char *const *e = env; e && *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0)
            path = *e + 5;
    _cleanup_free_ char *dup = xstrdup(path);
    char *save = NULL;
    for (char *d = strtok_r(dup, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        _cleanup_free_ char *full = hull_path_join(*d ? d : ".", arg0);
        struct stat st;
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
            return hull_steal(full);
    }
    return NULL;
}

static int write_sysctls(const struct oci_spec *spec, hull_error_t *err)
{
    for (size_t i = 0; i < spec->n_sysctls; i++) {
        const struct oci_sysctl *s = &spec->sysctls[i];
        _cleanup_free_ char *rel = xstrdup(s->key);
        for (char *c = rel; *c; c++)
            if (*c == '.')
                *c = '/';
        _cleanup_free_ char *path = xasprintf("/proc/sys/%s", rel);
        /* one key per open(): a value can never reach another file (CVE-2022-0811) */
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            return hull_error_set(err, errno, "sysctl `%s`", s->key);
        size_t len = strlen(s->value);
        if (write(fd, s->value, len) != (ssize_t)len)
            return hull_error_set(err, errno, "sysctl `%s` = `%s`", s->key, s->value);
    }
    return 0;
}

/* Runs in the child; returns only on error. */
/* stdio on the host's /dev/null (what a monitor gives for no stdin) is replaced by the
 * container's own /dev/null, as runc does: a file of a mount outside the container's mount
 * namespace keeps CRIU from dumping the container. */
static int reopen_dev_null(hull_error_t *err)
{
    _cleanup_close_ int nul = -1;
    for (int fd = 0; fd < 3; fd++) {
        struct stat sb;
        if (fstat(fd, &sb) < 0 || !S_ISCHR(sb.st_mode) || sb.st_rdev != makedev(1, 3))
            continue;
        if (nul < 0) {
            nul = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOFOLLOW);
            struct stat nb;
            if (nul < 0 || fstat(nul, &nb) < 0)
                return hull_error_set(err, errno, "open the container's /dev/null");
            if (!S_ISCHR(nb.st_mode) || nb.st_rdev != makedev(1, 3))
                return hull_error_setx(err, EPERM,
                                       "/dev/null in the container is not the "
                                       "null device");
        }
        if (dup2(nul, fd) < 0)
            return hull_error_set(err, errno, "reopen /dev/null on fd %d", fd);
    }
    return 0;
}

/* The messages the child waits for before its setup.  create: the parent moves us into the
 * cgroups while we set up the rootfs (the first cgroup v1 migration waits for an RCU grace
 * period); only user namespace maps are needed before we start.  exec: everything is waited
 * for up front. */
static int child_wait_parent(const struct child_args *a, hull_error_t *err)
{
    struct oci_sync_msg m;
    int first_msg = a->exec_mode ? OCI_SYNC_GO : a->new_userns ? OCI_SYNC_MAPS : 0;
    if (first_msg && (oci_sync_recv(a->sync_fd, &m) < 0 || m.type != first_msg))
        return hull_error_setx(err, EPIPE, "parent went away");
    /* systemd driver: the scope (whose cgroup the rootfs may bind) is made for our pid */
    if (!a->exec_mode && a->cg && a->cg->systemd_unit &&
        (oci_sync_recv(a->sync_fd, &m) < 0 || m.type != OCI_SYNC_CGROUP))
        return hull_error_setx(err, EPIPE, "parent went away");
    return 0;
}

/* The namespaces the child joins itself (user, mount; exec: cgroup too), see parent_joins. */
static int child_join_namespaces(struct child_args *a, hull_error_t *err)
{
    if (a->new_userns) {
        if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
            log_debug("uid/gid 0 is not mapped in the new user namespace");
    }
    if (a->ns_pidfd >= 0 && a->ns_pidfd_flags) {
        /* user, mount and cgroup namespaces of the very process the parent checked, in one
         * step (the parent has moved us into the container's cgroup already) */
        if (setns(a->ns_pidfd, a->ns_pidfd_flags) < 0)
            return hull_error_set(err, errno, "join the container's user/mount/cgroup namespaces");
        if ((a->ns_pidfd_flags & CLONE_NEWUSER) &&
            (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
            log_debug("uid/gid 0 is not mapped in the joined user namespace");
    }
    if (a->ns_pidfd >= 0) {
        close(a->ns_pidfd);
        a->ns_pidfd = -1;
    }
    if (a->userns_fd >= 0) {
        if (setns(a->userns_fd, CLONE_NEWUSER) < 0)
            return hull_error_set(err, errno, "join the user namespace");
        if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
            log_debug("uid/gid 0 is not mapped in the joined user namespace");
        close(a->userns_fd);
        a->userns_fd = -1;
    }
    if (a->mntns_fd >= 0) {
        if (setns(a->mntns_fd, CLONE_NEWNS) < 0)
            return hull_error_set(err, errno, "join the mount namespace");
        close(a->mntns_fd);
        a->mntns_fd = -1;
    }
    return 0;
}

/* create: the rootfs (in a new mount namespace), host and domain name, sysctls. */
static int child_prepare_root(const struct child_args *a, hull_error_t *err)
{
    const struct oci_spec *spec = a->spec;
    if (!a->new_mntns) {
        if (spec->hostname && sethostname(spec->hostname, strlen(spec->hostname)) < 0)
            return hull_error_set(err, errno, "sethostname");
        return 0;
    }
    struct oci_mount_ctx mc = {
        .spec = spec,
        .no_pivot = a->o->no_pivot,
        .userns = a->new_userns || oci_spec_namespace(spec, CLONE_NEWUSER) != NULL,
        .cgroupns = a->new_cgroupns,
        .cgroup = a->cg,
    };
    int r = oci_rootfs_setup(&mc, err);
    if (r < 0)
        return hull_error_wrap(err, "rootfs");
    if (spec->hostname && sethostname(spec->hostname, strlen(spec->hostname)) < 0)
        return hull_error_set(err, errno, "sethostname");
    if (spec->domainname && setdomainname(spec->domainname, strlen(spec->domainname)) < 0)
        return hull_error_set(err, errno, "setdomainname");
    if ((r = write_sysctls(spec, err)) < 0)
        return r;
    if ((r = oci_rootfs_finalize(&mc, err)) < 0)
        return hull_error_wrap(err, "rootfs");
    return reopen_dev_null(err);
}

/* cwd: resolved inside the root, never through a magic link such as /proc/self/fd/N
 * (CVE-2024-21626) */
static int child_chdir(const struct child_args *a, hull_error_t *err)
{
    const struct oci_process *p = a->proc;
    _cleanup_close_ int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return hull_error_set(err, errno, "open /");
    _cleanup_close_ int cwd = -1;
    if (a->exec_mode)
        cwd = hull_open_in_root(rootfd, p->cwd, O_PATH | O_DIRECTORY, 0);
    else
        cwd = oci_mkdir_in_root(rootfd, p->cwd, false, err);
    if (cwd < 0 && err && *err)
        return hull_error_wrap(err, "cwd `%s` does not resolve inside the container", p->cwd);
    if (cwd < 0)
        return hull_error_set(err, errno, "cwd `%s` does not resolve inside the container", p->cwd);
    if (fchdir(cwd) < 0)
        return hull_error_set(err, errno, "chdir `%s`", p->cwd);
    return 0;
}

/* create: READY to the parent, then wait for `start` (only stdio, the preserved fds and the
 * barrier pipe are open); exits when the parent is gone. */
static void child_wait_start(struct child_args *a)
{
    prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
    if (oci_sync_send(a->sync_fd, OCI_SYNC_READY, 0, NULL) < 0)
        _exit(1);
    close(a->sync_fd);
    a->sync_fd = -1;
    char c;
    ssize_t n;
    do {
        n = read(a->exec_r, &c, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
        /* the parent is gone: the container's stderr is the only place left */
        dprintf(STDERR_FILENO, "hull-oci init: wait for start: %s\n",
                n < 0 ? strerror(errno) : "end of file");
        _exit(1);
    }
    close(a->exec_r);
    close(a->exec_w);
    a->exec_r = a->exec_w = -1;
}

/* The bounding set, the seccomp filter when it must go in first, the user, the umask, the
 * capabilities and no_new_privs. */
static int child_drop_privileges(const struct child_args *a, hull_error_t *err)
{
    const struct oci_process *p = a->proc;
    int r;
    if ((r = oci_drop_bounding(p, err)) < 0)
        return r;
    if (a->bpf && !p->no_new_privileges) {
        /* without no_new_privs the filter must go in while we still have CAP_SYS_ADMIN */
        if ((r = oci_seccomp_load(a->bpf, a->bpf_len, a->bpf_flags, err)) < 0)
            return r;
    }
    if ((r = oci_set_user(p, err)) < 0)
        return r;
    umask(p->user.has_umask ? p->user.umask : 022);
    if ((r = oci_apply_caps(p, err)) < 0)
        return r;
    if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return hull_error_set(err, errno, "no_new_privs");
    return 0;
}

static int child_setup(struct child_args *a, hull_error_t *err)
{
    const struct oci_process *p = a->proc;
    struct oci_sync_msg m;
    int r;
    if ((r = child_wait_parent(a, err)) < 0 || (r = child_join_namespaces(a, err)) < 0)
        return r;
    if (!a->exec_mode && (r = child_prepare_root(a, err)) < 0)
        return r;
    if (!a->exec_mode && (oci_sync_recv(a->sync_fd, &m) < 0 || m.type != OCI_SYNC_GO))
        return hull_error_setx(err, EPIPE, "parent went away");
    /* the cgroup namespace is rooted at the cgroup we are in now */
    if (a->new_cgroupns && unshare(CLONE_NEWCGROUP) < 0)
        return hull_error_set(err, errno, "unshare the cgroup namespace");
    if (p->terminal) {
        if ((r = oci_console_setup(a->console_fd, p->console_rows, p->console_cols, err)) < 0)
            return hull_error_wrap(err, "console");
        close(a->console_fd);
        a->console_fd = -1;
    } else if (!a->exec_mode) {
        setsid();
    }
    if ((r = oci_apply_rlimits(p, err)) < 0 || (r = child_chdir(a, err)) < 0)
        return r;
    if ((r = child_drop_privileges(a, err)) < 0)
        return r;
    _cleanup_free_ char *exe = lookup_executable(p->args[0], p->env);
    if (exe == NULL)
        return hull_error_setx(err, ENOENT, "exec: \"%s\": executable file not found in $PATH",
                               p->args[0]);
    if (!a->exec_mode)
        child_wait_start(a);
    /* stdio and preserved fds stay; everything else is closed now, except (exec) the sync
     * socket whose close-on-exec tells the parent that execve succeeded */
    int first = 3 + (a->o->preserve_fds > 0 ? a->o->preserve_fds : 0);
    int keep[1] = {a->sync_fd};
    oci_close_fds_except(first, keep, a->sync_fd >= 0 ? 1 : 0);
    if (a->bpf && p->no_new_privileges) {
        if ((r = oci_seccomp_load(a->bpf, a->bpf_len, a->bpf_flags, err)) < 0) {
            if (!a->exec_mode)
                dprintf(STDERR_FILENO, "hull-oci init: %s\n", hull_error_msg(err));
            return r;
        }
    }
    prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
    sigset_t all;
    sigemptyset(&all);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigprocmask(SIG_SETMASK, &all, NULL);
    execve(exe, p->args, p->env);
    return hull_error_set(err, errno, "exec `%s`", exe);
}

/* Moves *fd out of the preserved range [3, first): those numbers belong to the caller. */
static void move_above(int *fd, int first)
{
    if (*fd < 3 || *fd >= first)
        return;
    int n = fcntl(*fd, F_DUPFD_CLOEXEC, first);
    if (n < 0)
        return;
    close(*fd);
    *fd = n;
}

/* First thing in the child: keep only what it needs.  Everything else (the namespace fds the
 * parent joined already, its own pid namespace, fds leaked by our caller) is a host object a
 * sibling container could reach through /proc/<pid>/fd. */
static void child_close_fds(struct child_args *a)
{
    int first = 3 + (a->o->preserve_fds > 0 ? a->o->preserve_fds : 0);
    int *fds[] = {&a->sync_fd, &a->console_fd, &a->mntns_fd, &a->userns_fd,
                  &a->exec_r,  &a->exec_w,     &a->ns_pidfd};
    int keep[7];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        move_above(fds[i], first);
        if (*fds[i] >= 0)
            keep[n++] = *fds[i];
    }
    oci_close_fds_except(first, keep, n);
}

static __attribute__((noreturn)) void child_main(struct child_args *a)
{
    _cleanup_error_ hull_error_t err = NULL;
    child_close_fds(a);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    child_setup(a, &err);
    /* only reached on failure */
    oci_sync_send(a->sync_fd, OCI_SYNC_ERROR, hull_error_status(&err), hull_error_msg(&err));
    if (!a->exec_mode || a->o->detach) {
        /* nobody may be listening any more (after READY): say it on stderr too */
    }
    _exit(a->exec_mode ? 255 : 1);
}

/* res is our child's pid as seen from a pid namespace we joined (the pod's): find it among our
 * children (listed with host pids) by its NSpid. */
static pid_t host_pid_of_child(pid_t inner, hull_error_t *err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
    _cleanup_fclose_ FILE *f = fopen(path, "re");
    if (f == NULL)
        return hull_error_set(err, errno, "read %s", path);
    int c;
    while (fscanf(f, "%d", &c) == 1) {
        snprintf(path, sizeof(path), "/proc/%d/status", c);
        _cleanup_fclose_ FILE *st = fopen(path, "re");
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        while (st && getline(&line, &cap, st) > 0) {
            if (strncmp(line, "NSpid:", 6) != 0)
                continue;
            char *save = NULL;
            for (char *t = strtok_r(line + 6, " \t\n", &save); t;
                 t = strtok_r(NULL, " \t\n", &save))
                if (atoi(t) == inner)
                    return c;
        }
    }
    return hull_error_setx(err, ESRCH, "the container's init (pid %d in its namespace) is gone",
                           (int)inner);
}

/* The init for a user namespace given by path: a short-lived helper joins it and clones the init
 * with CLONE_PARENT (so it is still our child), so that the namespaces the clone creates (mount,
 * pid, ...) are owned by the joined user namespace, as runc's nsexec does.  hull-oci itself never
 * joins it.  The helper is non-dumpable from its first instruction: so is the init it clones. */
static void userns_child_main(void *arg)
{
    struct child_args *a = arg;
    a->userns_fd = -1;
    child_main(a);
}

static pid_t clone_in_userns(struct child_args *a, int flags, hull_error_t *err)
{
    pid_t pid = hull_clone_in_userns(a->userns_fd, -1, (unsigned long)flags,
                                     HULL_CLONE_NONDUMPABLE | HULL_CLONE_ID0_OPTIONAL,
                                     userns_child_main, a);
    if (pid < 0)
        return hull_error_set(err, -pid, "clone in the user namespace");
    return host_pid_of_child(pid, err);
}

static int write_idmap(pid_t pid, const char *file, const struct oci_idmap *m, size_t n,
                       hull_error_t *err)
{
    _cleanup_free_ char *text = xstrdup("");
    for (size_t i = 0; i < n; i++) {
        char *t = xasprintf("%s%u %u %u\n", text, m[i].container_id, m[i].host_id, m[i].size);
        free(text);
        text = t;
    }
    _cleanup_free_ char *path = xasprintf("/proc/%d/%s", (int)pid, file);
    return hull_write_string(path, text, err);
}

static void kill_and_reap(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* Waits for READY (create) or for exec (EOF on the CLOEXEC socket). */
static int wait_child(int sync_fd, pid_t pid, bool expect_ready, const char *what,
                      hull_error_t *err)
{
    struct oci_sync_msg m;
    int r = oci_sync_recv(sync_fd, &m);
    if (r == 0 && m.type == OCI_SYNC_READY && expect_ready)
        return 0;
    if (r == 0 && m.type == OCI_SYNC_ERROR)
        return hull_error_setx(err, m.status > 0 ? m.status : EIO, "%s", m.msg);
    if (r == -EPIPE && !expect_ready)
        return 0; /* the socket is O_CLOEXEC: EOF without ERROR means execve succeeded */
    (void)pid;
    return hull_error_setx(err, EIO, "%s: the container process exited during setup", what);
}

static int open_ns_path(const char *path, int type, hull_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hull_error_set(err, errno, "open namespace `%s`", path);
    (void)type;
    return fd;
}

static int write_time_offsets(const struct oci_spec *spec, hull_error_t *err)
{
    if (!spec->has_time_offsets)
        return 0;
    _cleanup_free_ char *text =
        xasprintf("monotonic %lld %lld\nboottime %lld %lld\n", (long long)spec->time_offsets[0][0],
                  (long long)spec->time_offsets[0][1], (long long)spec->time_offsets[1][0],
                  (long long)spec->time_offsets[1][1]);
    /* each line must be written separately */
    _cleanup_close_ int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return hull_error_set(err, errno, "open timens_offsets");
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (write(fd, l, strlen(l)) < 0)
            return hull_error_set(err, errno, "write timens_offsets `%s`", l);
    return 0;
}

static void warn_lsm(const struct oci_process *p)
{
    if (p->apparmor && access("/sys/kernel/security/apparmor", F_OK) != 0)
        log_warn("apparmor profile `%s` ignored: AppArmor is not enabled on this host",
                 p->apparmor);
    if (p->selinux && access("/sys/fs/selinux/enforce", F_OK) != 0)
        log_warn("SELinux label `%s` ignored: SELinux is not enabled on this host", p->selinux);
}

static void oom_score(pid_t pid, const struct oci_process *p)
{
    if (!p->has_oom_score_adj)
        return;
    char path[64], val[16];
    snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", (int)pid);
    snprintf(val, sizeof(val), "%d", p->oom_score_adj);
    _cleanup_error_ hull_error_t e = NULL;
    if (hull_write_string(path, val, &e) < 0)
        log_warn("oomScoreAdj %d not applied (lowering needs CAP_SYS_RESOURCE): %s",
                 p->oom_score_adj, hull_error_msg(&e));
}

/* Joining a pid namespace only affects our children: go back to our own (always allowed,
 * it is our active one) so later helpers (e.g. the sanitizers' tracer) are not cloned into
 * the container. */
static void restore_pidns(int fd)
{
    if (fd >= 0 && setns(fd, CLONE_NEWPID) < 0)
        log_debug("restore pid namespace: %s", strerror(errno));
}

static void free_bpf(void **p)
{
    free(*p);
}

/* The child starts non-dumpable (the flag lives in the mm it copies): from its first
 * instruction on, only CAP_SYS_PTRACE over the host user namespace opens its /proc/<pid>/fd,
 * and execve gives the container process its normal dumpability back. */
static pid_t clone_nondumpable(unsigned long flags)
{
    int was = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        return -1;
    pid_t pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, 0);
    if (pid != 0) {
        int e = errno;
        prctl(PR_SET_DUMPABLE, was == 0 ? 0 : 1, 0, 0, 0);
        errno = e;
    }
    return pid;
}

/* What create refuses before it makes anything. */
static int check_create(const struct oci_spec *spec, const struct oci_run_opts *o,
                        hull_error_t *err)
{
    if (!spec->has_process)
        return hull_error_setx(err, EINVAL, "config.json: process missing");
    if (oci_spec_namespace(spec, CLONE_NEWNS) == NULL)
        return hull_error_setx(err, EINVAL, "a mount namespace is required");
    if ((spec->hostname || spec->domainname) && oci_spec_namespace(spec, CLONE_NEWUTS) == NULL)
        return hull_error_setx(err, EINVAL,
                               "unable to set hostname without a private UTS namespace");
    if (spec->process.terminal && o->console_socket == NULL)
        return hull_error_setx(err, EINVAL, "cannot allocate a tty without --console-socket");
    for (size_t i = 0; i < spec->n_sysctls; i++) {
        int r = oci_sysctl_validate(spec, spec->sysctls[i].key, spec->sysctls[i].value, err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* The start barrier, above the preserved fds (whose numbers belong to our caller). */
static int open_start_pipe(const struct oci_run_opts *o, int *exec_r, int *exec_w,
                           hull_error_t *err)
{
    int first = 3 + (o->preserve_fds > 0 ? o->preserve_fds : 0);
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return hull_error_set(err, errno, "pipe");
    *exec_r = fcntl(pfd[0], F_DUPFD_CLOEXEC, first);
    *exec_w = fcntl(pfd[1], F_DUPFD_CLOEXEC, first);
    close(pfd[0]);
    close(pfd[1]);
    if (*exec_r < 0 || *exec_w < 0)
        return hull_error_set(err, errno, "dup the start pipe");
    return 0;
}

/* The spec's namespaces for create: those given by path open in nsfd[] (indexed like
 * join_order), the new ones the clone makes in flags, and those made apart from the clone. */
struct create_ns {
    int nsfd[N_NS];
    int flags;
    bool new_userns, new_cgroupns, new_timens;
};

static void create_ns_close(struct create_ns *ns)
{
    for (size_t i = 0; i < N_NS; i++)
        if (ns->nsfd[i] >= 0)
            close(ns->nsfd[i]);
}

/* Opens every namespace given by path before any is joined (user last, mount in the child). */
static int open_namespaces(const struct oci_spec *spec, struct create_ns *ns, hull_error_t *err)
{
    for (size_t i = 0; i < N_NS; i++) {
        const struct oci_namespace *n = oci_spec_namespace(spec, join_order[i].type);
        if (n == NULL)
            continue;
        if (n->path) {
            ns->nsfd[i] = open_ns_path(n->path, n->type, err);
            if (ns->nsfd[i] < 0)
                return ns->nsfd[i];
        } else if (n->type == CLONE_NEWCGROUP) {
            ns->new_cgroupns = true;
        } else if (n->type == CLONE_NEWTIME) {
            ns->new_timens = true;
        } else {
            ns->flags |= n->type;
            if (n->type == CLONE_NEWUSER)
                ns->new_userns = true;
        }
    }
    return 0;
}

/* Joins the namespaces the parent joins, then makes the time namespace (its offsets are
 * written before any process is in it). */
static int enter_namespaces(const struct oci_spec *spec, const struct create_ns *ns,
                            hull_error_t *err)
{
    int r = join_namespaces(ns->nsfd, -1, parent_joins(~0, 0), err);
    if (r < 0 || !ns->new_timens)
        return r;
    if (unshare(CLONE_NEWTIME) < 0)
        return hull_error_set(err, errno, "unshare the time namespace");
    return write_time_offsets(spec, err);
}

/* Clones the init (through a helper in a user namespace given by path); the child closes
 * parent_fd, the parent's end of the sync socket. */
static pid_t clone_init(struct child_args *a, int flags, int parent_fd, hull_error_t *err)
{
    if (a->userns_fd >= 0 && !a->new_userns)
        return clone_in_userns(a, flags, err);
    pid_t pid = clone_nondumpable((unsigned long)flags | SIGCHLD);
    if (pid < 0)
        return hull_error_set(err, errno, "clone");
    if (pid == 0) {
        close(parent_fd);
        child_main(a);
    }
    return pid;
}

/* Tells the child a setup step is done; if it is gone, its error (or that it exited). */
static int send_step(int sync_fd, pid_t pid, int type, hull_error_t *err)
{
    if (oci_sync_send(sync_fd, type, 0, NULL) == 0)
        return 0;
    int r = wait_child(sync_fd, pid, true, "create", err);
    if (r == 0)
        r = hull_error_setx(err, EIO, "the container process exited during setup");
    return r < 0 ? r : -EIO;
}

/* The parent's part once the init exists: its id maps, the systemd scope, its cgroup, then GO
 * and the child's READY (or its error). */
static int setup_init(struct oci_spec *spec, struct hull_cgroup *cg, struct oci_run_opts *o,
                      pid_t pid, int sync_fd, bool new_userns, hull_error_t *err)
{
    int r;
    if (new_userns) {
        if ((r = write_idmap(pid, "uid_map", spec->uid_mappings, spec->n_uid_mappings, err)) < 0 ||
            (r = write_idmap(pid, "gid_map", spec->gid_mappings, spec->n_gid_mappings, err)) < 0 ||
            (r = send_step(sync_fd, pid, OCI_SYNC_MAPS, err)) < 0)
            return r;
    }
    if (cg->systemd_unit) {
        _cleanup_free_ char *desc = xasprintf("hull-oci container %s", o->id);
        if ((r = hull_cgroup_systemd_start(cg, pid, spec->resources, desc, err)) < 0 ||
            (r = hull_cgroup_create(cg, err)) < 0 ||
            (r = oci_cgroup_apply(cg, spec->resources, spec, false, err)) < 0 ||
            (r = send_step(sync_fd, pid, OCI_SYNC_CGROUP, err)) < 0)
            return r;
    }
    if ((r = hull_cgroup_enter(cg, pid, err)) < 0)
        return r;
    oom_score(pid, &spec->process);
    /* if the child already failed, the send may fail: its ERROR message is still queued */
    oci_sync_send(sync_fd, OCI_SYNC_GO, 0, NULL);
    return wait_child(sync_fd, pid, true, "create", err);
}

int oci_container_create(struct oci_spec *spec, struct hull_cgroup *cg, struct oci_run_opts *o,
                         pid_t *pid_out, hull_error_t *err)
{
    const struct oci_process *p = &spec->process;
    int r = check_create(spec, o, err);
    if (r < 0)
        return r;
    warn_lsm(p);
    __attribute__((cleanup(free_bpf))) void *bpf = NULL;
    size_t bpf_len = 0;
    unsigned bpf_flags = 0;
    if ((r = oci_seccomp_compile(spec->seccomp, &bpf, &bpf_len, &bpf_flags, err)) < 0)
        return r;
    _cleanup_close_ int console = -1;
    if (p->terminal && (console = oci_console_connect(o->console_socket, err)) < 0)
        return console;
    if (mkfifo(o->fifo, 0622) < 0)
        return hull_error_set(err, errno, "mkfifo `%s`", o->fifo);
    /* not subject to our umask: a user-namespaced or non-root init must be able to open it */
    if (chmod(o->fifo, 0622) < 0)
        return hull_error_set(err, errno, "chmod `%s`", o->fifo);
    _cleanup_close_ int self_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
    _cleanup_close_ int exec_r = -1, exec_w = -1;
    if ((r = open_start_pipe(o, &exec_r, &exec_w, err)) < 0)
        return r;
    struct create_ns ns = {0};
    for (size_t i = 0; i < N_NS; i++)
        ns.nsfd[i] = -1;
    pid_t pid = -1;
    int sv[2] = {-1, -1};
    if ((r = open_namespaces(spec, &ns, err)) < 0)
        goto out;
    /* systemd driver: the scope is made for the init's pid once it exists (setup_init) */
    if (cg->systemd_unit == NULL &&
        ((r = hull_cgroup_create(cg, err)) < 0 ||
         (r = oci_cgroup_apply(cg, spec->resources, spec, false, err)) < 0))
        goto out;
    if ((r = enter_namespaces(spec, &ns, err)) < 0)
        goto out;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        r = hull_error_set(err, errno, "socketpair");
        goto out;
    }
    struct child_args a = {
        .spec = spec,
        .proc = p,
        .o = o,
        .cg = cg,
        .sync_fd = sv[1],
        .console_fd = console,
        .exec_r = exec_r,
        .exec_w = exec_w,
        .mntns_fd = ns.nsfd[N_NS - 1],
        .userns_fd = ns.nsfd[N_NS - 2],
        .ns_pidfd = -1,
        .exec_mode = false,
        .new_userns = ns.new_userns,
        .new_cgroupns = ns.new_cgroupns,
        .new_mntns = oci_spec_namespace(spec, CLONE_NEWNS)->path == NULL,
        .bpf = bpf,
        .bpf_len = bpf_len,
        .bpf_flags = bpf_flags,
    };
    if ((pid = clone_init(&a, ns.flags, sv[0], err)) < 0) {
        r = pid;
        pid = -1;
        goto out;
    }
    restore_pidns(self_pidns);
    close(sv[1]);
    sv[1] = -1;
    if ((r = setup_init(spec, cg, o, pid, sv[0], ns.new_userns, err)) < 0)
        goto out;
    *pid_out = pid;
    o->exec_fd = exec_w;
    pid = -1;
out:
    kill_and_reap(pid);
    create_ns_close(&ns);
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    return r;
}

/* exec step: the container's init held by a pidfd, from before its start time is compared:
 * a process that got the pid after the init exited can never be joined (its namespaces are
 * joined through this pidfd, setns(2) on a pidfd, Linux 5.8).  The pidfd, or -errno. */
static int exec_pin_init(const struct oci_state *st, hull_error_t *err)
{
    int pidfd = (int)syscall(SYS_pidfd_open, st->pid, 0);
    if (pidfd < 0)
        return hull_error_set(err, errno == ESRCH ? ESRCH : errno, "pidfd_open %d", (int)st->pid);
    uint64_t start = 0;
    bool zombie = false;
    if (oci_proc_starttime(st->pid, &start, &zombie) < 0 || zombie || start != st->starttime) {
        close(pidfd);
        return hull_error_setx(err, ESRCH, "the container's init process exited");
    }
    return pidfd;
}

/* exec step: the CLONE_NEW* types of the init's namespaces, leaving out those we share with it
 * (the /proc/PID/ns files are only read for that). */
static int exec_namespace_types(pid_t init)
{
    int types = 0;
    for (size_t i = 0; i < N_NS; i++) {
        char path[64], self[64];
        snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)init, join_order[i].name);
        snprintf(self, sizeof(self), "/proc/self/ns/%s", join_order[i].name);
        struct stat a, b;
        if (stat(path, &a) < 0)
            continue; /* kernel without it */
        if (stat(self, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
            continue;
        types |= join_order[i].type;
    }
    return types;
}

/* exec step (parent): the child into the container's cgroup, its oom_score_adj, then told to
 * go and waited for until it runs the process; the pid file. */
static int exec_setup_child(struct oci_state *st, const struct oci_process *p,
                            const struct oci_run_opts *o, pid_t pid, int sync_fd, hull_error_t *err)
{
    int r;
    if ((r = hull_cgroup_enter(&st->cgroup, pid, err)) < 0)
        return r;
    oom_score(pid, p);
    if (oci_sync_send(sync_fd, OCI_SYNC_GO, 0, NULL) < 0)
        return hull_error_setx(err, EIO, "exec: the process exited during setup");
    if ((r = wait_child(sync_fd, pid, false, "exec", err)) < 0)
        return r;
    if (o->pid_file == NULL)
        return 0;
    char buf[32];
    snprintf(buf, sizeof(buf), "%d", (int)pid);
    return hull_write_file_atomic_flags(o->pid_file, buf, strlen(buf), 0644,
                                        HULL_ATOMIC_NOSYNC | HULL_ATOMIC_PROCESS_TMP, err);
}

/* exec step (not detached): forwards the signals of fwd to the process until it exits; its
 * exit status (128 + signal when killed). */
static int exec_wait(pid_t pid, const sigset_t *fwd)
{
    for (;;) {
        int status;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        siginfo_t si;
        int sig = sigwaitinfo(fwd, &si);
        if (sig > 0 && sig != SIGCHLD)
            kill(pid, sig);
    }
}

int oci_container_exec(struct oci_state *st, struct oci_spec *spec, struct oci_process *p,
                       struct oci_run_opts *o, int *exit_status, hull_error_t *err)
{
    *exit_status = 255;
    if (p->terminal && o->console_socket == NULL)
        return hull_error_setx(err, EINVAL, "cannot allocate a tty without --console-socket");
    warn_lsm(p);
    __attribute__((cleanup(free_bpf))) void *bpf = NULL;
    size_t bpf_len = 0;
    unsigned bpf_flags = 0;
    int r = oci_seccomp_compile(spec ? spec->seccomp : NULL, &bpf, &bpf_len, &bpf_flags, err);
    if (r < 0)
        return r;
    _cleanup_close_ int console = -1;
    if (p->terminal && (console = oci_console_connect(o->console_socket, err)) < 0)
        return console;
    _cleanup_close_ int self_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
    _cleanup_close_ int pidfd = exec_pin_init(st, err);
    if (pidfd < 0)
        return pidfd;
    hull_stop_point("exec:after-check");
    int types = exec_namespace_types(st->pid);
    /* the cgroup namespace is joined by the child too: the parent moves the child into the
     * container's cgroup first (with nsdelegate, a migration from outside a namespace's root by
     * a process inside it fails with ENOENT) */
    int parent_flags = parent_joins(types, CLONE_NEWCGROUP);
    int child_flags = types & ~parent_flags;
    pid_t pid = -1;
    int sv[2] = {-1, -1};
    sigset_t fwd, old;
    sigset_forwarded(&fwd);
    sigprocmask(SIG_BLOCK, &fwd, &old);
    if ((r = join_namespaces(NULL, pidfd, parent_flags, err)) < 0)
        goto out;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        r = hull_error_set(err, errno, "socketpair");
        goto out;
    }
    struct child_args a = {
        .spec = spec,
        .proc = p,
        .o = o,
        .cg = &st->cgroup,
        .sync_fd = sv[1],
        .console_fd = console,
        .exec_r = -1,
        .exec_w = -1,
        .mntns_fd = -1,
        .userns_fd = -1,
        .ns_pidfd = pidfd,
        .ns_pidfd_flags = child_flags,
        .exec_mode = true,
        .bpf = bpf,
        .bpf_len = bpf_len,
        .bpf_flags = bpf_flags,
    };
    pid = clone_nondumpable(SIGCHLD);
    if (pid < 0) {
        r = hull_error_set(err, errno, "clone");
        goto out;
    }
    if (pid == 0) {
        close(sv[0]);
        sigprocmask(SIG_SETMASK, &old, NULL);
        child_main(&a);
    }
    restore_pidns(self_pidns);
    close(sv[1]);
    sv[1] = -1;
    if ((r = exec_setup_child(st, p, o, pid, sv[0], err)) < 0)
        goto out;
    *exit_status = o->detach ? 0 : exec_wait(pid, &fwd);
    pid = -1;
out:
    kill_and_reap(pid);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    return r;
}
