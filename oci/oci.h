/* oci/ — hull-oci, Hull's in-tree OCI runtime (runtime-spec 1.1) with a runc-compatible CLI.
 *
 * ======================== Interface for callers (server, hull-conmon) ========================
 *
 * Invocation (same as runc for everything CRI runtimes use):
 *   hull-oci [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND ...
 *     create --bundle DIR [--pid-file F] [--console-socket S] [--no-pivot] [--preserve-fds N] ID
 *     start ID | state ID | kill ID [SIGNAL] [--all] | delete [--force] ID
 *     exec --process P.json [--detach|-d] [--pid-file F] [--tty|-t] [--console-socket S] ID
 *          (or `exec ID ARG...` for a quick command)
 *     update --resources R.json ID   (R.json is a runtime-spec linux.resources object; "-" = stdin)
 *     pause ID | resume ID | ps [--format json] ID | list [--format json] [-q]
 *     features | --version
 *   The state directory defaults to /run/hull-oci; <root>/<id>/ holds state.json, config.json
 *   (a copy of the bundle's config taken at create) and exec.fifo while the container is
 *   "created" (only a marker: the init waits on an anonymous pipe it holds, whose write end
 *   `start` takes with pidfd_getfd; state.json "execFd" names it).  A created init holds no
 *   host fd and is not dumpable: other containers of a shared-PID pod cannot reach the host
 *   through its /proc/<pid>/fd (runc CVE-2024-21626 class).
 *
 * Exit codes: 0 on success, 1 on any error (one line on stderr naming the container, e.g.
 *   `hull-oci: container "abc" does not exist`; also appended to --log, as JSON
 *   {"level":"error","msg":...,"time":...} with --log-format json).  `exec` without --detach
 *   exits with the process's status (128+N when killed by signal N), 255 when exec itself fails
 *   (runc does the same).
 *
 * create: returns once the container's init is fully set up and waiting for `start`; its
 *   (host) pid is in --pid-file (written atomically) and in `state`.  The init is then a child
 *   of nobody: the caller (conmon) should be a child subreaper (PR_SET_CHILD_SUBREAPER) so it
 *   inherits and can wait(2) on it, exactly as with runc.
 *
 * Console: with process.terminal=true, --console-socket PATH is required; hull-oci connects to
 *   that unix stream socket and sends the pty master as SCM_RIGHTS (one fd, payload = the pty
 *   name), as runc does.  The init gets the slave as its controlling tty and stdio.  Without a
 *   terminal, the init inherits hull-oci's stdio (conmon passes its pipes as 0/1/2).
 *
 * OOM: `hull-oci state ID` adds two fields to the runtime-spec state (any consumer that ignores
 *   unknown fields is unaffected):
 *     "oomKilled": true|false     -- the container's memory cgroup recorded at least one OOM kill
 *     "oomKillCount": N           -- cgroup v1 memory.oom_control `oom_kill`, v2 memory.events
 *                                    `oom_kill`
 *   The cgroup survives the container's exit until `delete`, so the monitor should call
 *   `hull-oci state ID` after the init exits and before anyone deletes it; CRI's reason is then
 *   "OOMKilled" when oomKilled is true.  The fields are absent if the memory controller is not
 *   available.  `state` also reports "cgroupPaths" (controller -> host directory) for stats.
 *
 * delete: a stopped or created container is removed (a created init is killed, as runc does);
 *   running/paused need --force (SIGKILL to every process of the cgroup, thawed first);
 *   `delete --force` of an unknown id succeeds.  exec works in created and running containers
 *   and fails with "cannot exec in a stopped/paused container".
 *
 * Status: created (init alive, exec.fifo present), running, paused (freezer), stopped (init
 *   gone or a zombie, or its pid now belongs to another process: start time is checked).
 *
 * cgroups: cgroupfs driver as runc's.  An absolute cgroupsPath ("/hull/abc") is below each
 *   hierarchy's root; a relative one ("abc", or the container id when empty) is below the
 *   calling process's own cgroup in that hierarchy.  On v1/hybrid hosts every mounted v1
 *   hierarchy (including name=systemd) and the hybrid cgroup2 get a directory; resources go
 *   to the v1 controllers, and to cgroup2 for the controllers no v1 hierarchy holds (a host
 *   where some controllers moved to cgroup2); linux.resources.unified is rejected (it needs
 *   pure v2).  On cgroup2 without a v1 devices hierarchy, device rules are a cgroup device
 *   BPF program (cgroup_devices.c).  `delete`
 *   removes the leaf directories (never their parents).
 *   systemd driver (global --systemd-cgroup, as runc): cgroupsPath is "slice:prefix:name"
 *   (empty: system.slice:hull-oci:ID); create puts the init into the transient scope
 *   "prefix-name.scope" of that slice (slice names expand as systemd's: a-b.slice is
 *   /a.slice/a-b.slice) over D-Bus, with Delegate=yes and the resources as unit properties,
 *   then writes the scope's cgroup files as cgroupfs does; update sets the properties too;
 *   delete stops the scope.  state.json records the unit, so later commands need no flag.
 *
 * exec: with --process, a process object without "capabilities" gets the container's own
 *   capability sets (never hull-oci's); the container's seccomp profile always applies.
 *
 * config.json and exec's process.json are parsed with the typed model (common/ocispec_model.h)
 *   and checked completely at load time: a bad member fails `create` / `exec` with its name.
 *
 * Not supported (warned about or rejected): hooks (ignored with a warning), seccomp
 *   SCMP_ACT_NOTIFY / listenerPath (create fails), idmapped mounts and tmpcopyup (ignored
 *   with a warning), linux.intelRdt and personality (ignored).
 *
 * ======================== Module internals (libhulloci.a) ==================================== */
#ifndef HULL_OCI_H
#define HULL_OCI_H

#include "common/cgroup.h"
#include "common/cgroup_systemd.h"
#include "common/common.h"
#include "common/ocispec_model.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define OCI_DEFAULT_ROOT "/run/hull-oci"
#define OCI_VERSION      "1.1.0"
#define OCI_UNSET        INT64_MIN

/* ---- spec (spec.c) ------------------------------------------------------------------------ */
struct oci_user {
    uint32_t uid, gid;
    bool has_umask;
    uint32_t umask;
    uint32_t *gids; /* additional gids, always including gid (SECURITY.md: uid/gid class) */
    size_t n_gids;
};

struct oci_rlimit {
    int resource;
    uint64_t soft, hard;
};

struct oci_caps {
    bool set; /* process.capabilities present */
    uint64_t bounding, effective, inheritable, permitted, ambient;
};

struct oci_process {
    bool terminal;
    uint16_t console_rows, console_cols; /* process.consoleSize; 0 = not given */
    struct oci_user user;
    char **args; /* NULL-terminated */
    char **env;  /* NULL-terminated */
    char *cwd;
    struct oci_caps caps;
    struct oci_rlimit *rlimits;
    size_t n_rlimits;
    bool no_new_privileges;
    bool has_oom_score_adj;
    int oom_score_adj;
    char *apparmor;
    char *selinux;
};

struct oci_mount {
    char *destination, *type, *source;
    unsigned long flags;       /* MS_* to set */
    unsigned long propagation; /* MS_SHARED/... | MS_REC, 0 if none */
    bool bind, recursive;
    bool rro;   /* "rro": the bind and every submount read-only (mount_setattr) */
    char *data; /* fs-specific options joined with ',' */
};

struct oci_namespace {
    int type;   /* CLONE_NEW* */
    char *path; /* NULL: create a new one */
};

struct oci_idmap {
    uint32_t container_id, host_id, size;
};

struct oci_device {
    char *path;
    char type; /* c, b, u, p */
    int64_t major, minor;
    uint32_t mode;
    bool has_mode;
    uint32_t uid, gid;
    bool has_uid, has_gid;
};

struct oci_sysctl {
    char *key, *value;
};

/* What hull-oci runs: the typed model of config.json (common/ocispec_model.h, parsed and
 * checked completely at load time) and what its values mean here (flags, capability masks,
 * paths resolved against the bundle). */
struct oci_spec {
    struct hull_ocispec *model; /* owned */
    char *bundle;               /* absolute */
    char *rootfs;               /* absolute */
    bool root_readonly;
    struct oci_process process;
    bool has_process;
    char *hostname, *domainname;
    struct oci_mount *mounts;
    size_t n_mounts;
    struct oci_namespace *namespaces;
    size_t n_namespaces;
    struct oci_idmap *uid_mappings, *gid_mappings;
    size_t n_uid_mappings, n_gid_mappings;
    struct oci_device *devices;
    size_t n_devices;
    struct oci_sysctl *sysctls;
    size_t n_sysctls;
    char **masked_paths, **readonly_paths;
    char *cgroups_path;
    unsigned long rootfs_propagation; /* 0 = default (rslave) */
    char *mount_label;
    /* the model's typed linux.resources, or no_resources (all unset) when it has none: every
     * cgroup writer, the device rules and the systemd driver read it */
    const struct hull_cgroup_resources *resources;
    struct hull_cgroup_resources no_resources;
    const struct hull_ocispec_seccomp *seccomp; /* the model's linux.seccomp or NULL */
    int64_t time_offsets[2][2];                 /* [monotonic, boottime][secs, nanosecs] */
    bool has_time_offsets;
};

/* Loads <bundle>/config.json (bounded) and validates it. */
int oci_spec_load(const char *bundle, struct oci_spec **out, hull_error_t *err);
/* Parses a config.json text; bundle is used to resolve a relative root.path and mount sources. */
int oci_spec_parse(const char *text, const char *bundle, struct oci_spec **out, hull_error_t *err);
/* The same from a parsed model, which the spec takes (freed with it, or at once on error). */
int oci_spec_from_model(struct hull_ocispec *model, const char *bundle, struct oci_spec **out,
                        hull_error_t *err);
void oci_spec_free(struct oci_spec *spec);
HULL_DEFINE_CLEANUP(struct oci_spec, oci_spec_free)
#define _cleanup_oci_spec_ __attribute__((cleanup(oci_spec_freep)))
/* A runtime-spec "process" (config.json's or exec --process) as hull-oci applies it. */
int oci_process_from_model(const struct hull_ocispec_process *m, struct oci_process *p,
                           hull_error_t *err);
/* The same from a parsed JSON process object (through the model's parser). */
int oci_process_parse(yajl_val node, struct oci_process *p, hull_error_t *err);
void oci_process_clear(struct oci_process *p);
/* For a struct held by value: the clear function takes its address and leaves it zeroed. */
#define _cleanup_oci_process_ __attribute__((cleanup(oci_process_clear)))
/* Finds a namespace entry by CLONE_NEW* type, NULL if absent. */
const struct oci_namespace *oci_spec_namespace(const struct oci_spec *spec, int type);
/* Mount option table lookup: sets flags/propagation or appends to data; exposed for tests. */
void oci_mount_parse_options(char *const *options, struct oci_mount *m);
/* Capability name ("CAP_SYS_ADMIN") to number, -1 if unknown. */
int oci_cap_from_name(const char *name);

/* ---- paths confined to a root (util.c) ----------------------------------------------------- */
/* Creates every missing component of path below rootfd (dirs; the last is a file if
 * last_is_file) without ever leaving the root, then returns an O_PATH fd to it. */
int oci_mkdir_in_root(int rootfd, const char *path, bool last_is_file, hull_error_t *err);
/* "/proc/self/fd/N" into buf. */
const char *oci_fd_path(int fd, char buf[64]);
/* Closes every fd >= from except the (at most 16) fds in keep[]. */
void oci_close_fds_except(int from, const int *keep, size_t n);
int oci_copy_file_fd(int in, int out);
/* Reads field 22 (starttime) of /proc/<pid>/stat; also whether it's a zombie. */
int oci_proc_starttime(pid_t pid, uint64_t *starttime, bool *zombie);

/* ---- sync channel between hull-oci and the container process (util.c) ---------------------- */
enum oci_sync_type {
    OCI_SYNC_ERROR = 1, /* child -> parent: msg follows, child exits */
    OCI_SYNC_GO,        /* parent -> child: cgroups joined, maps written */
    OCI_SYNC_READY,     /* child -> parent: set up, about to wait for start / exec */
    OCI_SYNC_WARN,      /* child -> parent: a warning to log */
    OCI_SYNC_MAPS,      /* parent -> child: user namespace maps written (create) */
    OCI_SYNC_CGROUP,    /* parent -> child: the systemd scope exists (create, systemd driver;
                           the rootfs binds its cgroup) */
};
struct oci_sync_msg {
    int type;
    int status;
    char msg[1024];
};
int oci_sync_send(int fd, int type, int status, const char *msg);
int oci_sync_recv(int fd, struct oci_sync_msg *m);

/* ---- sealed self copy (sealed_exe.c) ------------------------------------------------------- */
/* Re-executes hull-oci from a sealed memfd copy of itself unless already running from one
 * (SECURITY.md: runtime binary overwritten from inside).  Returns only on error or when
 * already sealed. */
int oci_ensure_sealed_self(int argc, char **argv, hull_error_t *err);
bool oci_self_is_sealed(void);

/* ---- cgroups: the cgroup library (common/cgroup.h, common/cgroup_systemd.h) ----------------
 * cgroup.c: the device rules, which the library leaves to hull-oci (they need the spec's
 * devices). */
/* hull_cgroup_apply(res), then the device rules (res->devices; with spec, the standard
 * devices and spec's linux.devices too): the v1 devices hierarchy, or on cgroup2 a BPF
 * program.  An update (spec NULL) writes device rules only when res has some. */
int oci_cgroup_apply(struct hull_cgroup *cg, const struct hull_cgroup_resources *res,
                     const struct oci_spec *spec, bool update, hull_error_t *err);
/* v2 device access (cgroup_devices.c): compiles the rules (res->devices, then the standard
 * devices, then spec's linux.devices when spec is not NULL) to a cgroup device BPF program,
 * attaches it to dir and detaches the programs it replaces. */
int oci_cgroup_v2_devices(const char *dir, const struct hull_cgroup_resources *res,
                          const struct oci_spec *spec, hull_error_t *err);
/* Stops the systemd scope (systemd driver), then removes the directories. */
int oci_cgroup_destroy(struct hull_cgroup *cg, hull_error_t *err);

/* ---- seccomp (seccomp.c) ------------------------------------------------------------------- */
/* Builds the libseccomp filter from linux.seccomp into a BPF program in memory (so the child
 * only has to load it). */
int oci_seccomp_compile(const struct hull_ocispec_seccomp *seccomp, void **bpf, size_t *len,
                        unsigned *flags, hull_error_t *err);
int oci_seccomp_load(const void *bpf, size_t len, unsigned flags, hull_error_t *err);

/* ---- process credentials (caps.c) ---------------------------------------------------------- */
int oci_apply_rlimits(const struct oci_process *p, hull_error_t *err);
int oci_drop_bounding(const struct oci_process *p, hull_error_t *err);
int oci_set_user(const struct oci_process *p, hull_error_t *err);
int oci_apply_caps(const struct oci_process *p, hull_error_t *err);
int oci_rlimit_from_name(const char *name);

/* ---- rootfs (mount.c) --------------------------------------------------------------------- */
struct oci_mount_ctx {
    const struct oci_spec *spec;
    bool no_pivot;
    bool userns; /* new user namespace: bind devices instead of mknod */
    bool cgroupns;
    const struct hull_cgroup *cgroup;
};
int oci_rootfs_setup(struct oci_mount_ctx *ctx, hull_error_t *err);
/* After pivot: masked and read-only paths, readonly root. */
int oci_rootfs_finalize(struct oci_mount_ctx *ctx, hull_error_t *err);
int oci_sysctl_validate(const struct oci_spec *spec, const char *key, const char *value,
                        hull_error_t *err);
/* mount_attr.c: makes the mount at dest (resolved in the root) and all its submounts read-only
 * (MOUNT_ATTR_RDONLY, AT_RECURSIVE); ENOTSUP without mount_setattr. */
int oci_mount_set_rro(int rootfd, const char *dest, hull_error_t *err);

/* ---- terminal (terminal.c) ----------------------------------------------------------------- */
int oci_console_connect(const char *path, hull_error_t *err);
/* In the container: new pty, master sent over sock, slave made the controlling tty and stdio. */
/* Creates the pty, applies rows x cols when non-zero (process.consoleSize) before the master
 * leaves, sends the master to sock and makes the slave the controlling tty and stdio. */
int oci_console_setup(int sock, uint16_t rows, uint16_t cols, hull_error_t *err);

/* ---- state (state.c) ---------------------------------------------------------------------- */
enum oci_status { OCI_CREATING = 0, OCI_CREATED, OCI_RUNNING, OCI_PAUSED, OCI_STOPPED };

struct oci_state {
    char *id;
    char *dir; /* <root>/<id> */
    pid_t pid;
    uint64_t starttime;
    char *bundle, *rootfs, *created;
    int cgroup_mode;
    struct hull_cgroup cgroup;
    char *config_json; /* the copy taken at create */
    int exec_fd;       /* created: the init's start pipe (write end), 0 if unknown */
};
const char *oci_status_name(int status);
int oci_state_load(const char *root, const char *id, struct oci_state *st, hull_error_t *err);
int oci_state_save(const struct oci_state *st, hull_error_t *err);
void oci_state_clear(struct oci_state *st);
#define _cleanup_oci_state_ __attribute__((cleanup(oci_state_clear))) /* by value */
int oci_state_status(struct oci_state *st);
/* The runtime-spec state document (plus Hull's extras) as JSON. */
char *oci_state_to_json(struct oci_state *st, int status, bool pretty);
bool oci_id_valid(const char *id);

/* ---- running containers (linux.c) --------------------------------------------------------- */
struct oci_run_opts {
    const char *root, *id;
    const char *pid_file;
    const char *console_socket;
    bool no_pivot;
    bool detach;      /* exec */
    int preserve_fds; /* extra fds after stdio passed to the process */
    const char *fifo; /* create: exec.fifo path (the "created" marker) */
    const char *state_dir;
    int exec_fd; /* create, out: the init's fd number of the start pipe's write end */
};
/* create: sets the container up and returns with the init blocked on the fifo. */
int oci_container_create(struct oci_spec *spec, struct hull_cgroup *cg, struct oci_run_opts *o,
                         pid_t *pid, hull_error_t *err);
/* exec: runs process p in the namespaces and cgroups of st's init.  Returns the exit status
 * (detach: 0) in *exit_status. */
int oci_container_exec(struct oci_state *st, struct oci_spec *spec, struct oci_process *p,
                       struct oci_run_opts *o, int *exit_status, hull_error_t *err);

/* ---- CLI (commands.c) --------------------------------------------------------------------- */
struct oci_global {
    const char *root;
    const char *log_path;
    bool log_json;
    bool debug;
    bool systemd_cgroup; /* --systemd-cgroup: create puts the container in a systemd scope */
    const char *criu;    /* --criu: the criu binary (default: criu on PATH) */
};

/* ---- checkpoint (checkpoint.c) ----------------------------------------------------------- */
struct oci_checkpoint_opts {
    const char *image_path, *work_path, *parent_path, *manage_cgroups_mode, *criu;
    bool leave_running, tcp_established, ext_unix_sk, shell_job, file_locks, pre_dump, auto_dedup;
};
/* Dumps the container's process tree with criu into o->image_path (runc's layout: the CRIU
 * images plus descriptors.json); the log is <work_path>/dump.log. */
int oci_checkpoint(const struct oci_global *g, struct oci_state *st,
                   const struct oci_checkpoint_opts *o, hull_error_t *err);
/* Restores a dump made by oci_checkpoint into spec's rootfs, with criu running in cg (which
 * must exist): the restored tree starts detached; its root pid in *pid. */
int oci_restore(const struct oci_global *g, const struct oci_spec *spec,
                const struct hull_cgroup *cg, const struct oci_checkpoint_opts *o, pid_t *pid,
                hull_error_t *err);
int oci_main(int argc, char **argv);
void oci_report_error(const struct oci_global *g, const char *msg);
char *oci_features_json(void);

#endif
