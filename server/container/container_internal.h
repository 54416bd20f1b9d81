/* Private to server/container/: container.c (records, index, exit watcher, shared helpers),
 * container_create.c, container_lifecycle.c (start, stop, remove, update), container_exec.c,
 * container_stream.c, container_recover.c, container_checkpoint.c, monitor_cmd.c (the
 * hull-conmon command line), stream_service.c and container_service.c (start-up, init, fini).
 * Calls go one way: container.c calls no other file of the area; container_service.c is called
 * by none. */
#ifndef HULL_SERVER_CONTAINER_CONTAINER_INTERNAL_H
#define HULL_SERVER_CONTAINER_CONTAINER_INTERNAL_H

#include <fcntl.h>
#include <sys/stat.h>

#include "server/container/container.h"
#include "server/container/trash.h"
#include "server/container/proc.h"
#include "server/events/events.h"

struct container {
    struct container *next;  /* index link, under container_service.mu */
    int refs;                /* atomic */
    pthread_mutex_t op_lock; /* serialises lifecycle operations on this container */
    pthread_mutex_t lock;    /* guards the fields below; never held across a child process */
    pthread_cond_t exited_cv;
    /* orders record writes (serialise + save) and keeps a removed record from coming back */
    pthread_mutex_t save_lock;
    bool record_gone;
    bool busy;        /* an operation is starting/stopping it (the watcher leaves it alone) */
    bool hidden;      /* being created, its NRI CreateContainer hook not run yet (under cs->mu) */
    int nri_stop;     /* NRI StopContainer: 0 not delivered, 1 being delivered, 2 delivered */
    bool nri_created; /* NRI plugins were told of its creation (under lock) */

    char id[65];
    int phase; /* enum ctr_phase: how far a create/remove got (persisted before side effects) */
    char *pod_id;
    char *name_key;
    uint8_t *config_pb; /* the CRI ContainerConfig as received */
    size_t config_len;
    Runtime__V1__ContainerConfig *config;
    uint8_t *resources_pb; /* LinuxContainerResources after UpdateContainerResources */
    size_t resources_len;
    char *image_ref, *image_id, *image_digest_ref;
    int state;
    int64_t created_ns, started_ns, finished_ns;
    int32_t exit_code;
    bool runtime_deleted; /* the monitor ran `RUNTIME delete` at the exit (exit file) */
    char *reason, *message;
    char *log_path;
    char *runtime_handler, *runtime_path, *runtime_root;
    char *cgroups_path;
    char *stop_signal;
    pid_t pid, monitor_pid;
    bool restore_pending; /* created from a checkpoint: StartContainer restores it (no monitor) */
    uint64_t pid_start;   /* start time of pid (/proc/PID/stat), 0: unknown */
    /* the process's identity as resolved at create (ContainerStatus.user) */
    bool has_user;
    uint32_t uid, gid;
    uint32_t *gids;
    size_t n_gids;
};

/* A record's phase: CREATING is saved before CreateContainer makes anything and REMOVING
 * before RemoveContainer tears anything down; recovery rolls back the first and finishes the
 * second (container_recover.c). */
enum ctr_phase {
    CTR_PHASE_COMMITTED = 0,
    CTR_PHASE_CREATING,
    CTR_PHASE_REMOVING,
};

/* how long one OCI runtime command (create, start, kill, delete, features...) may take */
#define RUNTIME_TIMEOUT_MS (120 * 1000)

struct container_service {
    pthread_mutex_t mu; /* the index */
    struct container *list;
    struct image_store *images; /* not owned (image_service.c) */
    char *root_dir;             /* <root>/containers */
    char *state_root;           /* <state>/containers */
    char *exit_dir;             /* <state>/exits */
    char *socket_root;          /* <state>/s: monitor socket dirs (short: sun_path is 108 bytes) */
    char *conmon_path;
    char *hull_oci_path;
    /* a sealed copy of hull-oci that monitors execute (ctr_runtime_exec_path) */
    pthread_mutex_t oci_mu;
    int oci_memfd;
    char *oci_exec_path;
    struct stat oci_src; /* the file it was copied from */
    /* runtime path -> it lists "rro" in `RUNTIME features` (asked once per path) */
    pthread_mutex_t feat_mu;
    struct hull_kv_rro {
        char *path;
        bool rro;
    } * feat;
    size_t n_feat;
    int inotify_fd;
    int wake_pipe[2];
    pthread_t watcher;
    bool watcher_running;
    /* removed containers' directories, deleted in the background: <root>/trash (CTR_TRASH_ROOT)
     * and <state>/trash (CTR_TRASH_STATE) */
    struct ctr_trash *trash;
};
enum { CTR_TRASH_ROOT, CTR_TRASH_STATE };

struct container_service *ctr_service(struct hull_server *srv);
struct container *ctr_new(void);
void ctr_put(struct container *c);
HULL_DEFINE_CLEANUP(struct container, ctr_put)
#define _cleanup_container_ __attribute__((cleanup(ctr_putp)))
struct container *ctr_find(struct hull_server *srv, const char *id, hull_error_t *err);
/* Like ctr_find, but only a running container (EBUSY "… is not running" otherwise). */
struct container *ctr_find_running(struct hull_server *srv, const char *id, hull_error_t *err);
int ctr_insert(struct hull_server *srv, struct container *c, hull_error_t *err);
void ctr_unlink(struct hull_server *srv, struct container *c);
char *ctr_name_key(const char *pod_id, const Runtime__V1__ContainerConfig *config);
int ctr_save(struct hull_server *srv, struct container *c, hull_error_t *err);
/* The same without waiting for the disk (store_save_intent), for the created -> running step
 * only: no container process survives a power loss, so after one the record is read back as
 * created or running alike and recovery finds the monitor gone and marks the container exited;
 * a hulld crash keeps the write (page cache), and a start the record missed is found by
 * ctr_reconcile_started.  The exit (its code) and every other committed change stay durable. */
int ctr_save_running(struct hull_server *srv, struct container *c, hull_error_t *err);
/* Removes the record; later ctr_save calls (a late exit) are ignored. */
int ctr_remove_record(struct hull_server *srv, struct container *c, hull_error_t *err);
/* True once its record was removed (a removal done, a create rolled back): operations that
 * waited for its op_lock have nothing left to act on. */
bool ctr_gone(struct container *c);
bool ctr_collect_exit(struct hull_server *srv, struct container *c);
/* Whether the monitor process pid still runs (and is a monitor). */
bool ctr_monitor_alive(pid_t pid);
/* Marks a container whose monitor vanished without an exit status exited (and counts it). */
void ctr_mark_lost(struct hull_server *srv, struct container *c);
/* The exit watcher thread (arg: the server): exit files, and a periodic check of monitors. */
void *ctr_exit_watcher(void *arg);
/* Takes / drops the image layer reference of a container. */
void ctr_image_acquire(struct hull_server *srv, struct container *c);
void ctr_image_release(struct hull_server *srv, struct container *c);
/* <state>/containers/<id> (the bundle) and <root>/containers/<id> (upper and work dirs). */
char *ctr_state_dir(struct hull_server *srv, const char *id);
char *ctr_root_dir(struct hull_server *srv, const char *id);
/* runtime --root R args...  (the container's runtime, with a timeout). */
int ctr_runtime_run(struct container *c, const char *const *args, hull_error_t *err);
/* What a monitor executes for runtime_path (allocated): for hull-oci, a sealed in-memory copy
 * that hulld keeps open (/proc/<hulld>/fd/N), made again when the file on disk changes.
 * hull-oci, started from a sealed copy, skips copying itself into a fresh memfd and executing
 * that (SECURITY.md: runtime binary overwritten from inside) on every create and exec.  Any
 * other runtime, or when the copy cannot be made: runtime_path itself. */
char *ctr_runtime_exec_path(struct hull_server *srv, const char *runtime_path);
/* The process.json of an exec: the container's process with args (and terminal) replaced;
 * rows x cols (non-zero, tty only) become its consoleSize. */
int ctr_exec_process_json(const char *bundle, char *const *cmd, size_t n_cmd, bool tty,
                          unsigned rows, unsigned cols, char **out, hull_error_t *err);
/* A hull-conmon command line under construction (monitor_cmd.c). */
struct monitor_args {
    const char *argv[48];
    size_t n;
    char *owned[16];
    size_t n_owned;
};
void margs_add(struct monitor_args *a, const char *s);
const char *margs_own(struct monitor_args *a, char *s); /* freed by margs_free */
void margs_free(struct monitor_args *a);
/* monitor_args is held by value: the cleanup frees the strings it owns. */
#define _cleanup_margs_ __attribute__((cleanup(margs_free)))
/* The options every monitor gets: binary, id, bundle, runtime, sockets, exit dir, sync fd 3. */
void margs_monitor(struct monitor_args *a, struct hull_server *srv, struct container *c,
                   const char *bundle, const char *socket_dir, const char *exit_dir);
/* systemd driver (cgroups_path in systemd form): moves the container's monitor into its own
 * transient scope hull-conmon-<id>.scope in system.slice (as CRI-O's conmon_cgroup), so it is
 * accounted apart from hulld and outlives a hulld restart in a unit of its own; a failure is
 * logged, the monitor keeps running where it is. */
void ctr_monitor_scope(const char *cgroups_path, const char *id, pid_t monitor_pid);
/* systemd driver: an exec's monitor (ExecSync, streaming exec) in a transient scope of its
 * own, hull-conmon-<id>-exec-<exec id>.scope in system.slice, out of hulld's cgroup (CRI-O
 * leaves its exec conmon in its own cgroup by default).  Returns the unit (for
 * ctr_exec_monitor_scope_stop; also when systemd refused it, which is logged and leaves the
 * monitor where it is), or NULL with the cgroupfs driver.  systemd collects the scope once
 * it is empty. */
char *ctr_exec_monitor_scope(const char *cgroups_path, const char *id, const char *exec_id,
                             pid_t monitor_pid);
/* Stops the exec monitor's scope at once (whatever is left in it is killed; a scope systemd
 * collected already is no error) and frees unit; NULL is a no-op. */
void ctr_exec_monitor_scope_stop(char *unit);
/* Starts hull-conmon with a's argv and reads its first sync message: the container pid or the
 * runtime's error.  sync_fd_out (optional) keeps the read end open for a second message. */
int ctr_monitor_start(struct monitor_args *a, pid_t *pid, pid_t *monitor_pid, int *sync_fd_out,
                      hull_error_t *err);
/* Reads one '\n'-terminated line from fd within timeout_ms. */
int ctr_monitor_read_line(int fd, int timeout_ms, char **out, hull_error_t *err);

/* The monitor's socket dir of a container (exec_id NULL) or of one exec session. */
char *ctr_socket_dir(struct hull_server *srv, const char *id, const char *exec_id);
/* Lets the sandbox area stop and remove a pod's containers. */
void ctr_register_hooks(struct hull_server *srv);
/* Signal name or number (image STOPSIGNAL, CRI enum name) → number; SIGTERM when unknown. */
int ctr_signal_number(const char *name);

/* Fills the exec/attach half of the streaming server's backend (container_stream.c). */
struct stream_backend;
void container_stream_backend(struct hull_server *srv, struct stream_backend *out);

/* Crash recovery (container_recover.c).  ctr_teardown kills the monitor and runtime processes
 * of id, deletes its runtime state (when the runtime is known), its cgroup (when known), rootfs
 * mount, directories and exit file, and (remove_record) its record. */
void ctr_teardown(struct hull_server *srv, const char *id, const char *runtime_path,
                  const char *runtime_root, const char *cgroups_path, bool remove_record);
/* A CREATED container the runtime reports started (hulld died during StartContainer). */
void ctr_reconcile_started(struct hull_server *srv, struct container *c);
/* Tears down monitors, runtime state, mounts, directories and cgroups with no record. */
void ctr_sweep_orphans(struct hull_server *srv);

#endif
