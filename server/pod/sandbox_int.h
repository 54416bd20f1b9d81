/* Private to the pod area (server/pod/). */
#ifndef HULL_SERVER_POD_SANDBOX_INT_H
#define HULL_SERVER_POD_SANDBOX_INT_H

#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"
#include "runtime/v1/api.pb-c.h"
#include "server/pod/pod.h"
#include "cni/cni.h"

#include <pthread.h>
#include <stdatomic.h>

/* The infra process launcher (sandbox_infra.c).  mnt_dir is any existing directory: the
 * child mounts its tiny root there, in its own mount namespace only. */
struct sandbox_infra;
int sandbox_infra_new(const char *pause_path, const char *mnt_dir, struct sandbox_infra **out,
                      hull_error_t *err);
void sandbox_infra_free(struct sandbox_infra *in);
/* Starts hull-pause as PID 1 of a new PID namespace, joined to the given (pinned) namespaces
 * (NULL: keep hulld's), confined like a container: its own mount namespace with an empty
 * read-only root, no capabilities, no_new_privs, the RuntimeDefault seccomp profile, no
 * descriptor but stdio on /dev/null.  It is hulld's child.  userns (may be NULL): the pod's
 * pinned user namespace, which then owns its pid and mount namespaces. */
int sandbox_spawn_pause(struct sandbox_infra *in, const char *netns, const char *ipcns,
                        const char *utsns, const char *userns, pid_t *pid_out, hull_error_t *err);
/* The syscall numbers its seccomp filter allows (every other one fails with EPERM). */
size_t sandbox_infra_syscalls(const int **out);
/* Its seccomp filter (classic BPF, *len instructions), for tests. */
const void *sandbox_infra_filter(const struct sandbox_infra *in, unsigned short *len);
/* Kills it (SIGKILL) if pid still names the process started at start_time, and reaps it. */
void sandbox_kill_pause(pid_t pid, uint64_t start_time);
/* True when pid is a zombie that started at start_time (our exited infra process). */
bool sandbox_proc_is_zombie(pid_t pid, uint64_t start_time);
/* Whether pid is still the process started at start_time and not a zombie, from one read of
 * its stat (the check every state query of a pod with an infra process makes); reaps it when
 * it is our exited child. */
bool sandbox_proc_alive(pid_t pid, uint64_t start_time);
/* For a child of this process not reaped by anyone yet: 1 running, 0 exited (and reaped now),
 * -1 not (or no longer) our child, so the caller must fall back to sandbox_proc_alive.  One
 * waitid(), no /proc read: until it is reaped its pid can not be reused. */
int sandbox_child_alive(pid_t pid);

/* ---- the pod records (sandbox.c and the operation files) ------------------------------------
 * sandbox.c: the objects, their index and persistence (it calls no other sandbox file);
 * sandbox_network.c: CNI parameters; sandbox_teardown.c; sandbox_run.c; sandbox_stop.c;
 * sandbox_recover.c; sandbox_service.c (init and fini: it calls the others, none calls it).
 *
 * Locks: svc->lock (rwlock) guards the index; sb->lock guards a sandbox's mutable fields.
 * Long operations (CNI plugins, container hooks) run with no lock held: a sandbox being
 * stopped or removed is marked `busy` and others wait on sb->cond. */
#define STORE_KIND "sandboxes" /* the records' kind in the store */

struct sandbox_service {
    pthread_rwlock_t lock; /* the index */
    struct sandbox **items;
    size_t n;
    struct cni_manager *cni;
    char *root, *state_dir, *ns_dir, *pause_path, *default_cgroup_parent;
    bool systemd; /* systemd cgroup driver: pod cgroup parents are slices */
    struct hull_store *store;
    const struct hull_config *config;
    pthread_mutex_t hooks_lock;
    struct sandbox_container_hooks hooks;
    bool have_hooks;
    struct sandbox_infra *infra;
};

struct sandbox {
    atomic_int refs;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct sandbox_service *svc;

    /* immutable after creation */
    char id[65];
    Runtime__V1__PodSandboxConfig *config;
    char *runtime_handler;
    int64_t created_at;
    bool host_net, host_pid, host_ipc, shared_pid;
    char *netns, *ipcns, *utsns, *pidns; /* NULL when not used */
    char *userns;                        /* pinned pod user namespace, NULL when not used */
    char *cgroup_parent;
    char *hostname;
    char *dir, *run_dir;
    char *hostname_path, *resolv_path, *hosts_path, *shm_path;

    /* mutable, under lock */
    enum sandbox_state state;
    bool busy;    /* a stop/remove is running */
    int holds;    /* container operations in progress */
    bool removed; /* out of the index */
    bool cgroup_created;
    bool shm_mounted;
    bool net_attempted; /* CNI ADD may have run: DEL is owed (persisted from the start) */
    bool add_started;   /* in memory: this process started the ADD */
    bool net_done;      /* torn down */
    bool removing;      /* RemovePodSandbox began: a restart finishes it (persisted) */
    int del_failures;   /* CNI DELs that failed in a row (persisted) */
    char *network_name;
    char **ips;
    size_t n_ips;
    pid_t pause_pid;
    uint64_t pause_start;
    bool pause_child; /* pause_pid is this hulld's own, unreaped child (spawned here) */
};

struct run_params {
    struct cni_sysctl *sysctls;
    size_t n_sysctls;
    struct cni_port_mapping *ports;
    size_t n_ports;
    struct cni_bandwidth bw;
    bool have_bw;
    bool userns; /* a pod user namespace with these mappings */
    struct userns_map uid_map, gid_map;
};

struct sandbox_service *sandbox_svc(struct hull_server *srv);
/* The cgroup parent of a pod that names none: <parent>/pod-<id>, or with the systemd driver
 * the slice <stem>-pod<id>.slice (below <stem>.slice). */
char *sandbox_default_cgroup(const struct sandbox_service *svc, const char *id);
struct sandbox *sandbox_new(struct sandbox_service *svc);
bool sandbox_get_hooks(struct sandbox_service *svc, struct sandbox_container_hooks *out);
void sandbox_index_remove(struct sandbox_service *svc, struct sandbox *sb);
/* Saves sb's record (sb->lock held / taken). */
int sandbox_persist_locked(struct sandbox *sb, hull_error_t *err);
int sandbox_persist(struct sandbox *sb, hull_error_t *err);
/* The record after StopPodSandbox, without waiting for the disk (store_save_intent): what it
 * changes (not ready, infra process and network released) only describes things a power loss
 * ends anyway, and after one recovery marks a "ready" record whose namespaces are gone not
 * ready, and the next stop runs the CNI DEL again (DEL is idempotent). */
int sandbox_persist_stopped(struct sandbox *sb, hull_error_t *err);
void sandbox_set_paths(struct sandbox_service *svc, struct sandbox *sb);
/* A sandbox object from its stored record. */
int sandbox_from_record(struct sandbox_service *svc, const char *id, yajl_val doc,
                        struct sandbox **out, hull_error_t *err);

/* sandbox_network.c */
const char *sandbox_annotation(const Runtime__V1__PodSandboxConfig *c, const char *key);
/* "10M", "1Gi", "500k" → bits per second (kubelet's bandwidth annotations); 0 when not valid. */
uint64_t sandbox_parse_quantity(const char *s);
/* The pod's port mappings and bandwidth (the CNI capability arguments) from its config. */
int sandbox_network_params(const Runtime__V1__PodSandboxConfig *c, struct run_params *p,
                           hull_error_t *err);
/* The attachment of the pod to its network (a points into sb, p and cidr). */
void sandbox_fill_attachment(struct sandbox *sb, const struct run_params *p, const char *cidr,
                             struct cni_attachment *a);

/* sandbox_teardown.c.  With `force` (rollback, recovery of half-created pods) errors are logged
 * and ignored. */
int sandbox_release_runtime(struct sandbox *sb, bool force, hull_error_t *err);
int sandbox_release_storage(struct sandbox *sb, bool force, hull_error_t *err);

/* sandbox_recover.c: a store_load callback, and the sweep of what no record names. */
int sandbox_load_one(void *opaque, const char *id, yajl_val doc, hull_error_t *err);
void sandbox_sweep_orphans(struct sandbox_service *svc);

#endif
