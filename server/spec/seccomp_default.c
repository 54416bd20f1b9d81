/* The built-in RuntimeDefault seccomp profile: a const table equivalent to containerd's default
 * profile (contrib/seccomp), written as a runtime-spec linux.seccomp object.
 *
 *   defaultAction SCMP_ACT_ERRNO (EPERM); an allowlist of ordinary syscalls; personality() only
 *   with the well-known personas; clone() without namespace flags unless CAP_SYS_ADMIN; clone3
 *   answering ENOSYS (so libcs fall back to clone, where the flags can be checked) unless
 *   CAP_SYS_ADMIN; further syscalls allowed only when the matching capability is in the
 *   bounding set.  Like containerd 2.x, the io_uring syscalls are not allowed. */
#include "server/spec/spec.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

enum {
    SC_ARCH_ANY = 0,
    SC_ARCH_AMD64 = 1 << 0, /* x86_64 host (x86_64, x86, x32 filters) */
    SC_ARCH_ARM64 = 1 << 1, /* aarch64 host (aarch64, arm filters) */
    SC_ARCH_386 = 1 << 2,
};

#define CAP_NONE (-1)

struct sc_arg {
    unsigned index;
    uint64_t value, value_two;
    const char *op;
};

struct sc_rule {
    const char *const *names;
    unsigned arches;   /* SC_ARCH_*: 0 = every architecture */
    int if_cap;        /* only when this capability is in the bounding set (CAP_NONE: always) */
    int unless_cap;    /* only when this capability is NOT in the bounding set */
    bool errno_action; /* SCMP_ACT_ERRNO with errno_ret, else SCMP_ACT_ALLOW */
    int errno_ret;
    bool has_arg;
    struct sc_arg arg;
};

/* capability numbers (linux/capability.h) used below */
enum {
    K_CAP_DAC_READ_SEARCH = 2,
    K_CAP_SYS_MODULE = 16,
    K_CAP_SYS_RAWIO = 17,
    K_CAP_SYS_CHROOT = 18,
    K_CAP_SYS_PTRACE = 19,
    K_CAP_SYS_PACCT = 20,
    K_CAP_SYS_ADMIN = 21,
    K_CAP_SYS_BOOT = 22,
    K_CAP_SYS_TIME = 25,
    K_CAP_SYS_TTY_CONFIG = 26,
    K_CAP_SYSLOG = 34,
    K_CAP_PERFMON = 38,
    K_CAP_BPF = 39,
};

static const char *const allow_always[] = {"accept",
                                           "accept4",
                                           "access",
                                           "adjtimex",
                                           "alarm",
                                           "bind",
                                           "brk",
                                           "capget",
                                           "capset",
                                           "chdir",
                                           "chmod",
                                           "chown",
                                           "chown32",
                                           "clock_adjtime",
                                           "clock_adjtime64",
                                           "clock_getres",
                                           "clock_getres_time64",
                                           "clock_gettime",
                                           "clock_gettime64",
                                           "clock_nanosleep",
                                           "clock_nanosleep_time64",
                                           "close",
                                           "close_range",
                                           "connect",
                                           "copy_file_range",
                                           "creat",
                                           "dup",
                                           "dup2",
                                           "dup3",
                                           "epoll_create",
                                           "epoll_create1",
                                           "epoll_ctl",
                                           "epoll_ctl_old",
                                           "epoll_pwait",
                                           "epoll_pwait2",
                                           "epoll_wait",
                                           "epoll_wait_old",
                                           "eventfd",
                                           "eventfd2",
                                           "execve",
                                           "execveat",
                                           "exit",
                                           "exit_group",
                                           "faccessat",
                                           "faccessat2",
                                           "fadvise64",
                                           "fadvise64_64",
                                           "fallocate",
                                           "fanotify_mark",
                                           "fchdir",
                                           "fchmod",
                                           "fchmodat",
                                           "fchmodat2",
                                           "fchown",
                                           "fchown32",
                                           "fchownat",
                                           "fcntl",
                                           "fcntl64",
                                           "fdatasync",
                                           "fgetxattr",
                                           "flistxattr",
                                           "flock",
                                           "fork",
                                           "fremovexattr",
                                           "fsetxattr",
                                           "fstat",
                                           "fstat64",
                                           "fstatat64",
                                           "fstatfs",
                                           "fstatfs64",
                                           "fsync",
                                           "ftruncate",
                                           "ftruncate64",
                                           "futex",
                                           "futex_requeue",
                                           "futex_time64",
                                           "futex_wait",
                                           "futex_waitv",
                                           "futex_wake",
                                           "futimesat",
                                           "getcpu",
                                           "getcwd",
                                           "getdents",
                                           "getdents64",
                                           "getegid",
                                           "getegid32",
                                           "geteuid",
                                           "geteuid32",
                                           "getgid",
                                           "getgid32",
                                           "getgroups",
                                           "getgroups32",
                                           "getitimer",
                                           "getpeername",
                                           "getpgid",
                                           "getpgrp",
                                           "getpid",
                                           "getppid",
                                           "getpriority",
                                           "getrandom",
                                           "getresgid",
                                           "getresgid32",
                                           "getresuid",
                                           "getresuid32",
                                           "getrlimit",
                                           "get_robust_list",
                                           "getrusage",
                                           "getsid",
                                           "getsockname",
                                           "getsockopt",
                                           "get_thread_area",
                                           "gettid",
                                           "gettimeofday",
                                           "getuid",
                                           "getuid32",
                                           "getxattr",
                                           "inotify_add_watch",
                                           "inotify_init",
                                           "inotify_init1",
                                           "inotify_rm_watch",
                                           "io_cancel",
                                           "ioctl",
                                           "io_destroy",
                                           "io_getevents",
                                           "io_pgetevents",
                                           "io_pgetevents_time64",
                                           "ioprio_get",
                                           "ioprio_set",
                                           "io_setup",
                                           "io_submit",
                                           "ipc",
                                           "kill",
                                           "landlock_add_rule",
                                           "landlock_create_ruleset",
                                           "landlock_restrict_self",
                                           "lchown",
                                           "lchown32",
                                           "lgetxattr",
                                           "link",
                                           "linkat",
                                           "listen",
                                           "listxattr",
                                           "llistxattr",
                                           "_llseek",
                                           "lremovexattr",
                                           "lseek",
                                           "lsetxattr",
                                           "lstat",
                                           "lstat64",
                                           "madvise",
                                           "map_shadow_stack",
                                           "membarrier",
                                           "memfd_create",
                                           "memfd_secret",
                                           "mincore",
                                           "mkdir",
                                           "mkdirat",
                                           "mknod",
                                           "mknodat",
                                           "mlock",
                                           "mlock2",
                                           "mlockall",
                                           "mmap",
                                           "mmap2",
                                           "mprotect",
                                           "mq_getsetattr",
                                           "mq_notify",
                                           "mq_open",
                                           "mq_timedreceive",
                                           "mq_timedreceive_time64",
                                           "mq_timedsend",
                                           "mq_timedsend_time64",
                                           "mq_unlink",
                                           "mremap",
                                           "msgctl",
                                           "msgget",
                                           "msgrcv",
                                           "msgsnd",
                                           "msync",
                                           "munlock",
                                           "munlockall",
                                           "munmap",
                                           "nanosleep",
                                           "newfstatat",
                                           "_newselect",
                                           "open",
                                           "openat",
                                           "openat2",
                                           "pause",
                                           "pidfd_open",
                                           "pidfd_send_signal",
                                           "pipe",
                                           "pipe2",
                                           "pkey_alloc",
                                           "pkey_free",
                                           "pkey_mprotect",
                                           "poll",
                                           "ppoll",
                                           "ppoll_time64",
                                           "prctl",
                                           "pread64",
                                           "preadv",
                                           "preadv2",
                                           "prlimit64",
                                           "process_mrelease",
                                           "pselect6",
                                           "pselect6_time64",
                                           "ptrace",
                                           "pwrite64",
                                           "pwritev",
                                           "pwritev2",
                                           "read",
                                           "readahead",
                                           "readlink",
                                           "readlinkat",
                                           "readv",
                                           "recv",
                                           "recvfrom",
                                           "recvmmsg",
                                           "recvmmsg_time64",
                                           "recvmsg",
                                           "remap_file_pages",
                                           "removexattr",
                                           "rename",
                                           "renameat",
                                           "renameat2",
                                           "restart_syscall",
                                           "rmdir",
                                           "rseq",
                                           "rt_sigaction",
                                           "rt_sigpending",
                                           "rt_sigprocmask",
                                           "rt_sigqueueinfo",
                                           "rt_sigreturn",
                                           "rt_sigsuspend",
                                           "rt_sigtimedwait",
                                           "rt_sigtimedwait_time64",
                                           "rt_tgsigqueueinfo",
                                           "sched_getaffinity",
                                           "sched_getattr",
                                           "sched_getparam",
                                           "sched_get_priority_max",
                                           "sched_get_priority_min",
                                           "sched_getscheduler",
                                           "sched_rr_get_interval",
                                           "sched_rr_get_interval_time64",
                                           "sched_setaffinity",
                                           "sched_setattr",
                                           "sched_setparam",
                                           "sched_setscheduler",
                                           "sched_yield",
                                           "seccomp",
                                           "select",
                                           "semctl",
                                           "semget",
                                           "semop",
                                           "semtimedop",
                                           "semtimedop_time64",
                                           "send",
                                           "sendfile",
                                           "sendfile64",
                                           "sendmmsg",
                                           "sendmsg",
                                           "sendto",
                                           "setfsgid",
                                           "setfsgid32",
                                           "setfsuid",
                                           "setfsuid32",
                                           "setgid",
                                           "setgid32",
                                           "setgroups",
                                           "setgroups32",
                                           "setitimer",
                                           "setpgid",
                                           "setpriority",
                                           "setregid",
                                           "setregid32",
                                           "setresgid",
                                           "setresgid32",
                                           "setresuid",
                                           "setresuid32",
                                           "setreuid",
                                           "setreuid32",
                                           "setrlimit",
                                           "set_robust_list",
                                           "setsid",
                                           "setsockopt",
                                           "set_thread_area",
                                           "set_tid_address",
                                           "setuid",
                                           "setuid32",
                                           "setxattr",
                                           "shmat",
                                           "shmctl",
                                           "shmdt",
                                           "shmget",
                                           "shutdown",
                                           "sigaltstack",
                                           "signalfd",
                                           "signalfd4",
                                           "sigprocmask",
                                           "sigreturn",
                                           "socket",
                                           "socketcall",
                                           "socketpair",
                                           "splice",
                                           "stat",
                                           "stat64",
                                           "statfs",
                                           "statfs64",
                                           "statx",
                                           "symlink",
                                           "symlinkat",
                                           "sync",
                                           "sync_file_range",
                                           "syncfs",
                                           "sysinfo",
                                           "tee",
                                           "tgkill",
                                           "time",
                                           "timer_create",
                                           "timer_delete",
                                           "timer_getoverrun",
                                           "timer_gettime",
                                           "timer_gettime64",
                                           "timer_settime",
                                           "timer_settime64",
                                           "timerfd_create",
                                           "timerfd_gettime",
                                           "timerfd_gettime64",
                                           "timerfd_settime",
                                           "timerfd_settime64",
                                           "times",
                                           "tkill",
                                           "truncate",
                                           "truncate64",
                                           "ugetrlimit",
                                           "umask",
                                           "uname",
                                           "unlink",
                                           "unlinkat",
                                           "utime",
                                           "utimensat",
                                           "utimensat_time64",
                                           "utimes",
                                           "vfork",
                                           "vmsplice",
                                           "wait4",
                                           "waitid",
                                           "waitpid",
                                           "write",
                                           "writev",
                                           NULL};

static const char *const n_personality[] = {"personality", NULL};
static const char *const n_clone[] = {"clone", NULL};
static const char *const n_clone3[] = {"clone3", NULL};
static const char *const n_amd64[] = {"arch_prctl", "modify_ldt", NULL};
static const char *const n_386[] = {"modify_ldt", NULL};
static const char *const n_arm64[] = {"arm_fadvise64_64",
                                      "arm_sync_file_range",
                                      "sync_file_range2",
                                      "breakpoint",
                                      "cacheflush",
                                      "set_tls",
                                      NULL};
static const char *const n_dac_read_search[] = {"open_by_handle_at", NULL};
static const char *const n_sys_admin[] = {"bpf",
                                          "clone",
                                          "clone3",
                                          "fanotify_init",
                                          "fsconfig",
                                          "fsmount",
                                          "fsopen",
                                          "fspick",
                                          "lookup_dcookie",
                                          "mount",
                                          "mount_setattr",
                                          "move_mount",
                                          "name_to_handle_at",
                                          "open_tree",
                                          "perf_event_open",
                                          "quotactl",
                                          "quotactl_fd",
                                          "setdomainname",
                                          "sethostname",
                                          "setns",
                                          "syslog",
                                          "umount",
                                          "umount2",
                                          "unshare",
                                          NULL};
static const char *const n_sys_boot[] = {"reboot", NULL};
static const char *const n_sys_chroot[] = {"chroot", NULL};
static const char *const n_sys_module[] = {"delete_module", "init_module", "finit_module", NULL};
static const char *const n_sys_pacct[] = {"acct", NULL};
static const char *const n_sys_ptrace[] = {
    "kcmp",   "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
    "ptrace", NULL};
static const char *const n_sys_rawio[] = {"iopl", "ioperm", NULL};
static const char *const n_sys_time[] = {"settimeofday", "stime", "clock_settime",
                                         "clock_settime64", NULL};
static const char *const n_sys_tty_config[] = {"vhangup", NULL};
static const char *const n_syslog[] = {"syslog", NULL};
static const char *const n_bpf[] = {"bpf", NULL};
static const char *const n_perfmon[] = {"perf_event_open", NULL};

#define NS_FLAGS                                                                                   \
    ((uint64_t)(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |         \
                CLONE_NEWNET | CLONE_NEWCGROUP))

#define ALLOW(n)                                                                                   \
    {                                                                                              \
        .names = (n), .if_cap = CAP_NONE, .unless_cap = CAP_NONE                                   \
    }
#define ALLOW_ARCH(n, a)                                                                           \
    {                                                                                              \
        .names = (n), .arches = (a), .if_cap = CAP_NONE, .unless_cap = CAP_NONE                    \
    }
#define ALLOW_IF_CAP(n, c)                                                                         \
    {                                                                                              \
        .names = (n), .if_cap = (c), .unless_cap = CAP_NONE                                        \
    }
#define PERSONALITY(v)                                                                             \
    {                                                                                              \
        .names = n_personality, .if_cap = CAP_NONE, .unless_cap = CAP_NONE, .has_arg = true,       \
        .arg = {                                                                                   \
            0,                                                                                     \
            (v),                                                                                   \
            0,                                                                                     \
            "SCMP_CMP_EQ"                                                                          \
        }                                                                                          \
    }

static const struct sc_rule rules[] = {
    ALLOW(allow_always),
    PERSONALITY(0x0),
    PERSONALITY(0x0008),
    PERSONALITY(0x20000),
    PERSONALITY(0x20008),
    PERSONALITY(0xffffffff),
    ALLOW_ARCH(n_amd64, SC_ARCH_AMD64),
    ALLOW_ARCH(n_386, SC_ARCH_386),
    ALLOW_ARCH(n_arm64, SC_ARCH_ARM64),
    ALLOW_IF_CAP(n_dac_read_search, K_CAP_DAC_READ_SEARCH),
    ALLOW_IF_CAP(n_sys_admin, K_CAP_SYS_ADMIN),
    ALLOW_IF_CAP(n_sys_boot, K_CAP_SYS_BOOT),
    ALLOW_IF_CAP(n_sys_chroot, K_CAP_SYS_CHROOT),
    ALLOW_IF_CAP(n_sys_module, K_CAP_SYS_MODULE),
    ALLOW_IF_CAP(n_sys_pacct, K_CAP_SYS_PACCT),
    ALLOW_IF_CAP(n_sys_ptrace, K_CAP_SYS_PTRACE),
    ALLOW_IF_CAP(n_sys_rawio, K_CAP_SYS_RAWIO),
    ALLOW_IF_CAP(n_sys_time, K_CAP_SYS_TIME),
    ALLOW_IF_CAP(n_sys_tty_config, K_CAP_SYS_TTY_CONFIG),
    ALLOW_IF_CAP(n_syslog, K_CAP_SYSLOG),
    ALLOW_IF_CAP(n_bpf, K_CAP_BPF),
    ALLOW_IF_CAP(n_perfmon, K_CAP_PERFMON),
    /* without CAP_SYS_ADMIN: clone() only without namespace flags (first argument) */
    {.names = n_clone,
     .if_cap = CAP_NONE,
     .unless_cap = K_CAP_SYS_ADMIN,
     .has_arg = true,
     .arg = {0, NS_FLAGS, 0, "SCMP_CMP_MASKED_EQ"}},
    /* clone3's flags live in memory seccomp cannot read: ENOSYS makes libcs fall back to
     * clone() (moby#42681) */
    {.names = n_clone3,
     .if_cap = CAP_NONE,
     .unless_cap = K_CAP_SYS_ADMIN,
     .errno_action = true,
     .errno_ret = ENOSYS},
};

static unsigned arch_mask(const char *arch)
{
    if (arch == NULL)
        arch = hull_goarch();
    if (strcmp(arch, "amd64") == 0 || strcmp(arch, "x86_64") == 0)
        return SC_ARCH_AMD64;
    if (strcmp(arch, "arm64") == 0 || strcmp(arch, "aarch64") == 0)
        return SC_ARCH_ARM64;
    if (strcmp(arch, "386") == 0)
        return SC_ARCH_386;
    return 0;
}

static bool has_cap(uint64_t set, int cap)
{
    return cap >= 0 && cap < 64 && (set & (1ULL << cap)) != 0;
}

void spec_seccomp_default_write(struct hull_json_writer *w, uint64_t bounding, const char *arch)
{
    unsigned am = arch_mask(arch);
    hull_jw_begin_object(w);
    hull_jw_kv_string(w, "defaultAction", "SCMP_ACT_ERRNO");
    hull_jw_kv_int(w, "defaultErrnoRet", EPERM);
    hull_jw_key(w, "architectures");
    hull_jw_begin_array(w);
    if (am == SC_ARCH_AMD64) {
        hull_jw_string(w, "SCMP_ARCH_X86_64");
        hull_jw_string(w, "SCMP_ARCH_X86");
        hull_jw_string(w, "SCMP_ARCH_X32");
    } else if (am == SC_ARCH_ARM64) {
        hull_jw_string(w, "SCMP_ARCH_AARCH64");
        hull_jw_string(w, "SCMP_ARCH_ARM");
    } else if (am == SC_ARCH_386) {
        hull_jw_string(w, "SCMP_ARCH_X86");
    }
    hull_jw_end_array(w);
    hull_jw_key(w, "syscalls");
    hull_jw_begin_array(w);
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        const struct sc_rule *r = &rules[i];
        if (r->arches != SC_ARCH_ANY && (r->arches & am) == 0)
            continue;
        if (r->if_cap != CAP_NONE && !has_cap(bounding, r->if_cap))
            continue;
        if (r->unless_cap != CAP_NONE && has_cap(bounding, r->unless_cap))
            continue;
        hull_jw_begin_object(w);
        hull_jw_key(w, "names");
        hull_jw_begin_array(w);
        for (const char *const *n = r->names; *n; n++)
            hull_jw_string(w, *n);
        hull_jw_end_array(w);
        hull_jw_kv_string(w, "action", r->errno_action ? "SCMP_ACT_ERRNO" : "SCMP_ACT_ALLOW");
        if (r->errno_action)
            hull_jw_kv_int(w, "errnoRet", r->errno_ret);
        if (r->has_arg) {
            hull_jw_key(w, "args");
            hull_jw_begin_array(w);
            hull_jw_begin_object(w);
            hull_jw_kv_int(w, "index", r->arg.index);
            hull_jw_kv_int(w, "value", (long long)r->arg.value);
            hull_jw_kv_int(w, "valueTwo", (long long)r->arg.value_two);
            hull_jw_kv_string(w, "op", r->arg.op);
            hull_jw_end_object(w);
            hull_jw_end_array(w);
        }
        hull_jw_end_object(w);
    }
    hull_jw_end_array(w);
    hull_jw_end_object(w);
}
