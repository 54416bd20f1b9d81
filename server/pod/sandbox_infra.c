/* The pod infra process (hull-pause), confined like a container.
 *
 * It is PID 1 of the pod's PID namespace, so every container of a shared-PID pod sees it as
 * /proc/1, and a container with CAP_SYS_PTRACE (or a root container, once the infra has no
 * capabilities left) can walk /proc/1/root, /proc/1/cwd and /proc/1/fd.  So, between clone and
 * exec, the child:
 *   - joins the pod's net/ipc/uts namespaces, and is PID 1 of a new PID namespace;
 *   - gets a mount namespace of its own whose only mount is a tiny tmpfs root (/dev/null in
 *     it), read-only, nodev, nosuid, noexec: a copy of a template namespace built once (the
 *     host's mounts made private, the tmpfs pivoted into, the host root detached), so a spawn
 *     costs the same however many mounts the host has;
 *   - has stdio on that /dev/null and no other descriptor across exec;
 *   - drops every capability (bounding, ambient, inheritable, permitted, effective), locks the
 *     securebits so that exec as uid 0 grants none back, clears supplementary groups, sets
 *     no_new_privs, and loads a seccomp filter allowing only the few syscalls the static
 *     hull-pause makes (all of them in the RuntimeDefault profile; everything else fails with
 *     EPERM, RuntimeDefault's default action; other ABIs likewise).  The full RuntimeDefault
 *     program (~1000 instructions) would cost about 1 ms per pod to attach and a libseccomp
 *     compile in hulld, for a process that needs two dozen syscalls;
 *   - executes hull-pause from a sealed memfd copy, so /proc/1/exe names no host file that a
 *     container could reopen for writing.
 * The template namespace and the memfd are made once per hulld, on the first shared-PID pod. */
#include "server/pod/pod.h"
#include "server/pod/sandbox_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT           47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

#define PAUSE_MAX_SIZE (64L * 1024 * 1024)

#if defined(__x86_64__)
#define INFRA_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define INFRA_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define INFRA_AUDIT_ARCH AUDIT_ARCH_I386
#else
#error "the infra process's seccomp filter does not know this architecture"
#endif

/* What the static hull-pause does, from the exec on: glibc's start-up, then signal handlers,
 * pause, wait4, exit (and puts for --version).  Each is allowed by RuntimeDefault too. */
static const int infra_syscalls[] = {
    __NR_execve,
    __NR_execveat,
    __NR_brk,
    __NR_mprotect,
    __NR_munmap,
    __NR_getrandom,
    __NR_prctl,
    __NR_prlimit64,
    __NR_readlinkat,
    __NR_set_tid_address,
    __NR_set_robust_list,
    __NR_rt_sigaction,
    __NR_rt_sigprocmask,
    __NR_rt_sigreturn,
    __NR_rt_sigsuspend,
    __NR_ppoll,
    __NR_wait4,
    __NR_waitid,
    __NR_exit,
    __NR_exit_group,
    __NR_write,
    __NR_close,
    __NR_getpid,
    __NR_gettid,
    __NR_tgkill,
    __NR_uname,
#ifdef __NR_rseq
    __NR_rseq,
#endif
#ifdef __NR_mmap
    __NR_mmap,
#endif
#ifdef __NR_mmap2
    __NR_mmap2,
#endif
#ifdef __NR_arch_prctl
    __NR_arch_prctl,
#endif
#ifdef __NR_pause
    __NR_pause,
#endif
#ifdef __NR_readlink
    __NR_readlink,
#endif
#ifdef __NR_fstat
    __NR_fstat,
#endif
#ifdef __NR_newfstatat
    __NR_newfstatat,
#endif
#ifdef __NR_fstat64
    __NR_fstat64,
#endif
#ifdef __NR_statx
    __NR_statx,
#endif
};
#define INFRA_FILTER_MAX (8 + 2 * sizeof(infra_syscalls) / sizeof(infra_syscalls[0]))

size_t sandbox_infra_syscalls(const int **out)
{
    *out = infra_syscalls;
    return sizeof(infra_syscalls) / sizeof(infra_syscalls[0]);
}

struct sandbox_infra {
    pthread_mutex_t lock;
    char *pause_path;
    char *mnt_dir; /* an existing directory the tiny root is mounted on, in the template
                      namespace only */
    bool prepared;
    int exe_fd;
    int mnt_fd; /* the template mount namespace */
    struct sock_filter filter[INFRA_FILTER_MAX];
    unsigned short filter_len;
};

/* A sealed, executable memfd holding a copy of the hull-pause binary. */
static int copy_to_memfd(const char *path, int *out, hull_error_t *err)
{
    _cleanup_close_ int src = open(path, O_RDONLY | O_CLOEXEC);
    if (src < 0)
        return hull_error_set(err, errno, "open infra binary `%s`", path);
    struct stat st;
    if (fstat(src, &st) < 0)
        return hull_error_set(err, errno, "stat `%s`", path);
    if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > PAUSE_MAX_SIZE)
        return hull_error_setx(err, EINVAL, "infra binary `%s` is not a regular file of sane size",
                               path);
    /* MFD_EXEC: kernels with vm.memfd_noexec default memfds to non-executable */
    _cleanup_close_ int mfd =
        memfd_create("hull-pause", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (mfd < 0 && errno == EINVAL)
        mfd = memfd_create("hull-pause", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0 && (errno == EACCES || errno == EPERM)) {
        /* vm.memfd_noexec=2 forbids executable memfds: run the file itself; /proc/1/exe then
         * names it (a container that can reach it could try to reopen it for writing once no
         * infra process runs it) */
        log_warn("infra process: executable memfds are not allowed here; running `%s` directly",
                 path);
        *out = hull_steal_fd(src);
        return 0;
    }
    if (mfd < 0)
        return hull_error_set(err, errno, "memfd_create");
    char buf[65536];
    for (;;) {
        ssize_t n = read(src, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return hull_error_set(err, errno, "read `%s`", path);
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(mfd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return hull_error_set(err, errno, "copy infra binary");
            off += w;
        }
    }
    if (fchmod(mfd, 0555) < 0)
        return hull_error_set(err, errno, "chmod infra binary copy");
    if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
        return hull_error_set(err, errno, "seal infra binary copy");
    *out = hull_steal_fd(mfd);
    return 0;
}

struct child_msg {
    int e;
    char step[32];
};

static __attribute__((noreturn)) void child_fail(int errfd, const char *step, int e)
{
    struct child_msg msg = {.e = e};
    size_t n = strlen(step);
    if (n >= sizeof(msg.step))
        n = sizeof(msg.step) - 1;
    memcpy(msg.step, step, n);
    if (write(errfd, &msg, sizeof(msg)) < 0) {
        /* nothing to do */
    }
    _exit(127);
}

/* Reads a child's report: 0 when it closed the pipe (exec) or reported success. */
static int read_child_msg(int fd, struct child_msg *msg)
{
    ssize_t n;
    do
        n = read(fd, msg, sizeof(*msg));
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(*msg))
        return 0;
    msg->step[sizeof(msg->step) - 1] = '\0';
    return msg->e == 0 ? 0 : -msg->e;
}

/* The template's builder, in a cloned child (no allocation, no locks): a private copy of the
 * host's mounts, a tmpfs pivoted into as the root, the host root detached.  It reports and
 * waits to be killed; its namespace lives on through hulld's descriptor. */
static __attribute__((noreturn)) void template_child(int errfd, const char *mnt_dir)
{
#define TSTEP(name, expr)                                                                          \
    do {                                                                                           \
        if ((expr) < 0)                                                                            \
            child_fail(errfd, name, errno);                                                        \
    } while (0)
    /* nothing done here may reach the host's namespace (the detach must not propagate) */
    TSTEP("make mounts private", mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
    TSTEP("mount root tmpfs", mount("hull-infra", mnt_dir, "tmpfs", MS_NOSUID | MS_NOEXEC,
                                    "mode=0555,size=4k,nr_inodes=8"));
    TSTEP("chdir new root", chdir(mnt_dir));
    TSTEP("mkdir /dev", mkdir("dev", 0555));
    TSTEP("mknod /dev/null", mknod("dev/null", S_IFCHR | 0666, makedev(1, 3)));
    /* modes set without hulld's umask: in a pod user namespace the infra's root is not the
     * owner of these host-root inodes, so only the "other" bits let it reach /dev/null */
    TSTEP("chmod /dev", chmod("dev", 0555));
    TSTEP("chmod /dev/null", chmod("dev/null", 0666));
    TSTEP("pivot_root", syscall(SYS_pivot_root, ".", "."));
    TSTEP("detach old root", umount2(".", MNT_DETACH));
    TSTEP("chdir /", chdir("/"));
    /* nodev comes per infra process, once it has opened /dev/null */
    TSTEP("remount root read-only",
          mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL));
#undef TSTEP
    struct child_msg ok = {.e = 0};
    if (write(errfd, &ok, sizeof(ok)) < 0) {
        /* the parent sees a short read */
    }
    for (;;)
        pause();
}

static int make_template(struct sandbox_infra *in, hull_error_t *err)
{
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) < 0)
        return hull_error_set(err, errno, "pipe");
    long pid = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, 0);
    if (pid == 0)
        template_child(errpipe[1], in->mnt_dir);
    int clone_errno = errno;
    close(errpipe[1]);
    if (pid < 0) {
        close(errpipe[0]);
        return hull_error_set(err, clone_errno, "clone");
    }
    struct child_msg msg = {.e = EIO, .step = "no report"};
    int r = read_child_msg(errpipe[0], &msg);
    close(errpipe[0]);
    if (r == 0 && msg.e == 0) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%ld/ns/mnt", pid);
        in->mnt_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (in->mnt_fd < 0)
            r = hull_error_set(err, errno, "open `%s`", path);
    } else {
        r = hull_error_set(err, msg.e ? msg.e : EIO, "infra root: %s", msg.step);
    }
    kill((pid_t)pid, SIGKILL);
    while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR)
        ;
    return r;
}

static int prepare_locked(struct sandbox_infra *in, hull_error_t *err)
{
    if (in->prepared)
        return 0;
    int64_t t0 = hull_monotonic_ns();
    if (in->mnt_fd < 0) {
        int r = make_template(in, err);
        if (r < 0)
            return hull_error_wrap(err, "infra process mount namespace");
    }
    int r = copy_to_memfd(in->pause_path, &in->exe_fd, err);
    if (r < 0)
        return r;
    in->prepared = true;
    log_debug("infra process: mount namespace and binary copy ready in %.3f ms",
              (hull_monotonic_ns() - t0) / 1e6);
    return 0;
}

/* arch check, then one compare per allowed syscall; everything else EPERM */
static void build_filter(struct sandbox_infra *in)
{
    struct sock_filter *f = in->filter;
    unsigned n = 0;
    const unsigned deny = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
    f[n++] =
        (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, INFRA_AUDIT_ARCH, 1, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, deny);
    f[n++] =
        (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (size_t i = 0; i < sizeof(infra_syscalls) / sizeof(infra_syscalls[0]); i++) {
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                              (unsigned)infra_syscalls[i], 0, 1);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    }
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, deny);
    in->filter_len = (unsigned short)n;
}

int sandbox_infra_new(const char *pause_path, const char *mnt_dir, struct sandbox_infra **out,
                      hull_error_t *err)
{
    if (pause_path == NULL || *pause_path == '\0' || mnt_dir == NULL || *mnt_dir == '\0')
        return hull_error_setx(err, EINVAL, "infra process: no binary or state directory");
    struct sandbox_infra *in = xmalloc0(sizeof(*in));
    pthread_mutex_init(&in->lock, NULL);
    in->pause_path = xstrdup(pause_path);
    in->mnt_dir = xstrdup(mnt_dir);
    in->exe_fd = -1;
    in->mnt_fd = -1;
    build_filter(in);
    *out = in;
    return 0;
}

const void *sandbox_infra_filter(const struct sandbox_infra *in, unsigned short *len)
{
    *len = in->filter_len;
    return in->filter;
}

void sandbox_infra_free(struct sandbox_infra *in)
{
    if (in == NULL)
        return;
    if (in->exe_fd >= 0)
        close(in->exe_fd);
    if (in->mnt_fd >= 0)
        close(in->mnt_fd);
    free(in->pause_path);
    free(in->mnt_dir);
    pthread_mutex_destroy(&in->lock);
    free(in);
}

static int open_ns(const char *path, hull_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hull_error_set(err, errno, "open namespace `%s`", path);
    return fd;
}

struct child_args {
    int netfd, ipcfd, utsfd, mntfd, errfd, exe_fd;
    const struct sock_filter *filter;
    unsigned short filter_len;
};

/* Runs in the cloned child: no allocation, no locks, raw syscalls where glibc would act on
 * every thread (setgroups). */
static __attribute__((noreturn)) void child_main(const struct child_args *a)
{
#define STEP(name, expr)                                                                           \
    do {                                                                                           \
        if ((expr) < 0)                                                                            \
            child_fail(a->errfd, name, errno);                                                     \
    } while (0)
    if (a->netfd >= 0)
        STEP("setns net", setns(a->netfd, CLONE_NEWNET));
    if (a->ipcfd >= 0)
        STEP("setns ipc", setns(a->ipcfd, CLONE_NEWIPC));
    if (a->utsfd >= 0)
        STEP("setns uts", setns(a->utsfd, CLONE_NEWUTS));
    setsid();

    /* a copy of the template: only the tiny read-only root (in a pod user namespace the helper
     * joined the template before the user namespace, which then owns the copy) */
    if (a->mntfd >= 0)
        STEP("join infra mount namespace", setns(a->mntfd, CLONE_NEWNS));
    STEP("unshare mount namespace", unshare(CLONE_NEWNS));
    int nul = open("/dev/null", O_RDWR);
    if (nul < 0)
        child_fail(a->errfd, "open /dev/null", errno);
    STEP("stdio", dup2(nul, 0));
    STEP("stdio", dup2(nul, 1));
    STEP("stdio", dup2(nul, 2));
    if (nul > 2)
        close(nul);
    STEP("remount root read-only",
         mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
               NULL));
    syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);

    /* credentials: uid/gid 0 stay, with no capability in any set and no way to regain one */
    STEP("securebits", prctl(PR_SET_SECUREBITS,
                             SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                                 SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                                 SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
                             0, 0, 0));
    for (int cap = 0; cap < 64; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            child_fail(a->errfd, "drop bounding set", errno);
    STEP("clear ambient", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
    STEP("setgroups", syscall(SYS_setgroups, 0, NULL));
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    STEP("capset", syscall(SYS_capset, &hdr, data));
    STEP("no_new_privs", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    struct sock_fprog prog = {.len = a->filter_len, .filter = (struct sock_filter *)a->filter};
    STEP("seccomp", syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
    char *argv[] = {(char *)"hull-pause", NULL};
    char *envp[] = {NULL};
    syscall(SYS_execveat, a->exe_fd, "", argv, envp, AT_EMPTY_PATH);
    child_fail(a->errfd, "exec", errno);
#undef STEP
}

/* In a pod user namespace the infra process is cloned by a helper that joined the template
 * mount namespace (which needs the host's privileges) and then the user namespace; the child,
 * cloned with CLONE_PARENT, is still hulld's child, and its pid and mount namespaces belong to
 * the pod's user namespace so the pod's containers can mount /proc for it. */
static void userns_child_main(void *arg)
{
    struct child_args *a = arg;
    a->mntfd = -1; /* the helper joined it */
    child_main(a);
}

static long clone_in_userns(int usfd, struct child_args *a)
{
    pid_t pid = hull_clone_in_userns(usfd, a->mntfd, CLONE_NEWPID, 0, userns_child_main, a);
    if (pid < 0) {
        errno = -pid;
        return -1;
    }
    return pid;
}

int sandbox_spawn_pause(struct sandbox_infra *in, const char *netns, const char *ipcns,
                        const char *utsns, const char *userns, pid_t *pid_out, hull_error_t *err)
{
    int64_t t0 = hull_monotonic_ns();
    pthread_mutex_lock(&in->lock);
    int r = prepare_locked(in, err);
    pthread_mutex_unlock(&in->lock);
    if (r < 0)
        return r;
    /* prepared state is never changed again: no lock needed from here */
    _cleanup_close_ int netfd = -1, ipcfd = -1, utsfd = -1, usfd = -1;
    if (userns && (usfd = open_ns(userns, err)) < 0)
        return usfd;
    if (netns && (netfd = open_ns(netns, err)) < 0)
        return netfd;
    if (ipcns && (ipcfd = open_ns(ipcns, err)) < 0)
        return ipcfd;
    if (utsns && (utsfd = open_ns(utsns, err)) < 0)
        return utsfd;
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) < 0)
        return hull_error_set(err, errno, "pipe");
    struct child_args a = {
        .netfd = netfd,
        .ipcfd = ipcfd,
        .utsfd = utsfd,
        .errfd = errpipe[1],
        .exe_fd = in->exe_fd,
        .mntfd = in->mnt_fd,
        .filter = in->filter,
        .filter_len = in->filter_len,
    };
    /* like fork(), with the child as PID 1 of a new PID namespace; it stays our child so we
     * reap it on stop */
    long pid = usfd >= 0 ? clone_in_userns(usfd, &a)
                         : syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, 0);
    if (pid == 0)
        child_main(&a);
    int clone_errno = errno;
    close(errpipe[1]);
    if (pid < 0) {
        close(errpipe[0]);
        return hull_error_set(err, clone_errno, "clone infra process");
    }
    struct child_msg msg;
    r = read_child_msg(errpipe[0], &msg);
    close(errpipe[0]);
    if (r < 0) {
        while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return hull_error_set(err, -r, "start infra process `%s`: %s", in->pause_path, msg.step);
    }
    *pid_out = (pid_t)pid;
    log_debug("infra process %ld started in %.3f ms", pid, (hull_monotonic_ns() - t0) / 1e6);
    return 0;
}
