/* The pod infra process (hull-pause), confined like a container.
 *
 * It is PID 1 of the pod's PID namespace, so every container of a shared-PID pod sees it as
 * /proc/1, and a container with CAP_SYS_PTRACE (or a root container, once the infra has no
 * capabilities left) can walk /proc/1/root, /proc/1/cwd and /proc/1/fd.  So, between clone and
 * exec, the child:
 *   - joins the pod's net/ipc/uts namespaces, and is PID 1 of a new PID namespace;
 *   - gets a mount namespace of its own (CLONE_NEWNS), made private, whose root is a tiny
 *     tmpfs (only /dev/null in it) pivoted into, the host root detached, then remounted
 *     read-only, nodev, nosuid, noexec;
 *   - has stdio on that /dev/null and no other descriptor across exec;
 *   - drops every capability (bounding, ambient, inheritable, permitted, effective), locks the
 *     securebits so that exec as uid 0 grants none back, clears supplementary groups, sets
 *     no_new_privs, and loads the RuntimeDefault seccomp profile (as built for an empty
 *     bounding set);
 *   - executes hull-pause from a sealed memfd copy, so /proc/1/exe names no host file that a
 *     container could reopen for writing.
 * The seccomp program and the memfd are built once per hulld, on the first shared-PID pod. */
#include "server/sandbox.h"
#include "server/sandbox_int.h"
#include "server/ocispec.h"
#include "oci/oci.h"

#include <errno.h>
#include <fcntl.h>
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

struct sandbox_infra {
    pthread_mutex_t lock;
    char *pause_path;
    char *mnt_dir; /* an existing directory the new root is mounted on (in the child's own
                      mount namespace only) */
    bool prepared;
    int exe_fd;
    void *bpf;
    size_t bpf_len;
    unsigned bpf_flags;
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

/* The RuntimeDefault profile for a process without capabilities, compiled to BPF. */
static int compile_seccomp(struct sandbox_infra *in, hull_error_t *err)
{
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    ocispec_seccomp_default_write(&w, 0, NULL);
    _cleanup_free_ char *json = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    _cleanup_yajl_ yajl_val doc = NULL;
    int r = hull_json_parse(json, "seccomp profile", &doc, err);
    if (r < 0)
        return r;
    r = oci_seccomp_compile(doc, &in->bpf, &in->bpf_len, &in->bpf_flags, err);
    if (r < 0)
        return r;
    if (in->bpf == NULL || in->bpf_len == 0 || in->bpf_len % sizeof(struct sock_filter) != 0 ||
        in->bpf_len / sizeof(struct sock_filter) > BPF_MAXINSNS)
        return hull_error_setx(err, EINVAL, "seccomp: bad program for the infra process");
    return 0;
}

static int prepare_locked(struct sandbox_infra *in, hull_error_t *err)
{
    if (in->prepared)
        return 0;
    int64_t t0 = hull_monotonic_ns();
    if (in->bpf == NULL) {
        int r = compile_seccomp(in, err);
        if (r < 0) {
            free(in->bpf);
            in->bpf = NULL;
            return hull_error_wrap(err, "infra process seccomp profile");
        }
    }
    int r = copy_to_memfd(in->pause_path, &in->exe_fd, err);
    if (r < 0)
        return r;
    in->prepared = true;
    log_debug("infra process: seccomp program (%zu insns) and binary copy ready in %.3f ms",
              in->bpf_len / sizeof(struct sock_filter), (hull_monotonic_ns() - t0) / 1e6);
    return 0;
}

int sandbox_infra_new(const char *pause_path, const char *mnt_dir, struct sandbox_infra **out,
                      hull_error_t *err)
{
    if (pause_path == NULL || mnt_dir == NULL || mnt_dir[0] != '/')
        return hull_error_setx(err, EINVAL, "infra process: bad paths");
    struct sandbox_infra *in = xmalloc0(sizeof(*in));
    pthread_mutex_init(&in->lock, NULL);
    in->pause_path = xstrdup(pause_path);
    in->mnt_dir = xstrdup(mnt_dir);
    in->exe_fd = -1;
    *out = in;
    return 0;
}

void sandbox_infra_free(struct sandbox_infra *in)
{
    if (in == NULL)
        return;
    if (in->exe_fd >= 0)
        close(in->exe_fd);
    free(in->bpf);
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

struct child_msg {
    int e;
    char step[24];
};

struct child_args {
    int netfd, ipcfd, utsfd, errfd, exe_fd;
    const char *mnt_dir;
    const void *bpf;
    size_t bpf_len;
    unsigned bpf_flags;
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

    /* nothing done in this mount namespace may reach the host's (and the detach of the old
     * root below must not propagate) */
    STEP("make mounts private", mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
    int hostnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    STEP("mount root tmpfs", mount("hull-infra", a->mnt_dir, "tmpfs", MS_NOSUID | MS_NOEXEC,
                                   "mode=0555,size=4k,nr_inodes=8"));
    STEP("chdir new root", chdir(a->mnt_dir));
    bool have_null =
        mkdir("dev", 0555) == 0 && mknod("dev/null", S_IFCHR | 0666, makedev(1, 3)) == 0;
    STEP("pivot_root", syscall(SYS_pivot_root, ".", "."));
    STEP("detach old root", umount2(".", MNT_DETACH));
    STEP("chdir /", chdir("/"));
    int nul = have_null ? open("/dev/null", O_RDWR) : -1;
    if (nul < 0)
        nul = hostnull;
    if (nul < 0)
        child_fail(a->errfd, "open /dev/null", errno);
    STEP("stdio", dup2(nul, 0));
    STEP("stdio", dup2(nul, 1));
    STEP("stdio", dup2(nul, 2));
    if (nul > 2)
        close(nul);
    if (hostnull > 2 && hostnull != nul)
        close(hostnull);
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
    struct sock_fprog prog = {
        .len = (unsigned short)(a->bpf_len / sizeof(struct sock_filter)),
        .filter = (struct sock_filter *)a->bpf,
    };
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, a->bpf_flags, &prog) < 0) {
        if (errno != EINVAL || a->bpf_flags == 0 ||
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
            child_fail(a->errfd, "seccomp", errno);
    }
    char *argv[] = {(char *)"hull-pause", NULL};
    char *envp[] = {NULL};
    syscall(SYS_execveat, a->exe_fd, "", argv, envp, AT_EMPTY_PATH);
    child_fail(a->errfd, "exec", errno);
#undef STEP
}

int sandbox_spawn_pause(struct sandbox_infra *in, const char *netns, const char *ipcns,
                        const char *utsns, pid_t *pid_out, hull_error_t *err)
{
    pthread_mutex_lock(&in->lock);
    int r = prepare_locked(in, err);
    pthread_mutex_unlock(&in->lock);
    if (r < 0)
        return r;
    /* prepared state is never changed again: no lock needed from here */
    _cleanup_close_ int netfd = -1, ipcfd = -1, utsfd = -1;
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
        .mnt_dir = in->mnt_dir,
        .bpf = in->bpf,
        .bpf_len = in->bpf_len,
        .bpf_flags = in->bpf_flags,
    };
    /* like fork(), with the child as PID 1 of a new PID namespace, in a mount namespace of its
     * own; it stays our child so we reap it on stop */
    long pid = syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, 0);
    if (pid == 0)
        child_main(&a);
    int clone_errno = errno;
    close(errpipe[1]);
    if (pid < 0) {
        close(errpipe[0]);
        return hull_error_set(err, clone_errno, "clone infra process");
    }
    struct child_msg msg;
    ssize_t n;
    do
        n = read(errpipe[0], &msg, sizeof(msg));
    while (n < 0 && errno == EINTR);
    close(errpipe[0]);
    if (n == (ssize_t)sizeof(msg)) {
        while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR)
            ;
        msg.step[sizeof(msg.step) - 1] = '\0';
        return hull_error_set(err, msg.e, "start infra process `%s`: %s", in->pause_path, msg.step);
    }
    *pid_out = (pid_t)pid;
    return 0;
}
