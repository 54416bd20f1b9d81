/* server/pod/: the pod sandbox area.  This header is its whole interface: what the container
 * area, the spec builder and the gRPC edge may use.
 *
 * A sandbox is a set of pinned namespaces (net, ipc, uts under <state_dir>/ns/<kind>/<id>; pid
 * plus the hull-pause infra process only for a shared pod PID namespace), a cgroup parent, its
 * hostname / resolv.conf / hosts files (<root>/sandboxes/<id>/), a /dev/shm tmpfs
 * (<state_dir>/sandboxes/<id>/shm) and, unless it uses the host network, a CNI attachment.
 *
 * Lifetime: lookups return a reference; drop it with sandbox_unref().  Everything returned by
 * the accessors below is immutable for the life of the object (valid while you hold a
 * reference).  The state changes; read it with sandbox_get_state().
 *
 * Containers: take a hold (sandbox_hold) while creating/starting a container in a pod; it fails
 * unless the pod is READY, and StopPodSandbox waits for holds to drop before it stops the pod's
 * containers through the hooks the container area registers (sandbox_set_container_hooks). */
#ifndef HULL_SERVER_POD_H
#define HULL_SERVER_POD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"
#include "runtime/v1/api.pb-c.h"
#include "server/server.h"

struct sandbox;

enum sandbox_state {
    SANDBOX_STATE_CREATING = 0, /* RunPodSandbox in progress (never listed) */
    SANDBOX_STATE_READY = 1,
    SANDBOX_STATE_NOTREADY = 2, /* stopped (or its namespaces are gone) */
};

/* server_init / server_fini calls. */
int sandbox_service_init(struct hull_server *srv, hull_error_t *err);
void sandbox_service_fini(struct hull_server *srv);

/* Lookup by full id or unique id prefix.  ENOENT "pod sandbox \"x\" not found". */
int sandbox_lookup(struct hull_server *srv, const char *id, struct sandbox **out,
                   hull_error_t *err);
struct sandbox *sandbox_ref(struct sandbox *sb);
void sandbox_unref(struct sandbox *sb);
HULL_DEFINE_CLEANUP(struct sandbox, sandbox_unref)
#define _cleanup_sandbox_ __attribute__((cleanup(sandbox_unrefp)))
/* Calls cb for every sandbox (not CREATING ones), with a reference held during the call and
 * no lock held. Stops at the first non-zero return, which it returns. */
int sandbox_foreach(struct hull_server *srv, int (*cb)(struct sandbox *sb, void *opaque),
                    void *opaque);

/* Immutable properties. */
const char *sandbox_id(const struct sandbox *sb);
/* The PodSandboxConfig of the RunPodSandbox request (metadata, labels, annotations, dns,
 * port mappings, linux security context, log_directory, ...). */
const Runtime__V1__PodSandboxConfig *sandbox_config(const struct sandbox *sb);
const char *sandbox_runtime_handler(const struct sandbox *sb); /* resolved: never "" */
int64_t sandbox_created_at(const struct sandbox *sb);          /* ns */
/* Namespace paths to join: NULL when the pod uses the host's (host network → net and uts NULL;
 * host IPC → ipc NULL; pid only for a shared pod PID namespace). */
const char *sandbox_netns_path(const struct sandbox *sb);
const char *sandbox_ipcns_path(const struct sandbox *sb);
const char *sandbox_utsns_path(const struct sandbox *sb);
const char *sandbox_pidns_path(const struct sandbox *sb);
/* The pod's pinned user namespace (NULL: none); its mappings are in the pod's config. */
const char *sandbox_userns_path(const struct sandbox *sb);
bool sandbox_host_network(const struct sandbox *sb);
bool sandbox_host_pid(const struct sandbox *sb);
bool sandbox_host_ipc(const struct sandbox *sb);
/* The pod's cgroup, relative to each hierarchy's root ("/kubepods/pod…" or "/hull/pod-<id>"). */
const char *sandbox_cgroup_parent(const struct sandbox *sb);
const char *sandbox_hostname(const struct sandbox *sb);
/* Host files to bind-mount into containers. */
const char *sandbox_hostname_path(const struct sandbox *sb);
const char *sandbox_resolv_conf_path(const struct sandbox *sb);
const char *sandbox_hosts_path(const struct sandbox *sb);
const char *sandbox_shm_path(const struct sandbox *sb); /* "/dev/shm" for host IPC */
/* Persistent per-pod directory (<root>/sandboxes/<id>), e.g. for container metadata. */
const char *sandbox_dir(const struct sandbox *sb);

/* The host uid and gid of the pod's root in its user namespace; false without one. */
bool sandbox_userns_ids(const struct sandbox *sb, uint32_t *uid, uint32_t *gid);

/* Mutable state. */
enum sandbox_state sandbox_get_state(struct sandbox *sb);
/* The state as last checked, without checking the infra process again: for a callback of
 * sandbox_foreach, which has just checked it (a listing otherwise checked every pod twice). */
enum sandbox_state sandbox_state_checked(struct sandbox *sb);

/* A hold keeps the pod READY while a container operation runs: fails with FAILED_PRECONDITION
 * (EBUSY) "pod sandbox \"x\" is not ready" otherwise.  Stop waits for holds to be released. */
int sandbox_hold(struct sandbox *sb, hull_error_t *err);
void sandbox_release(struct sandbox *sb);

/* Hooks the container area registers; until then pods have no containers. */
struct sandbox_container_hooks {
    void *opaque;
    /* Stops every container of the pod (kill; the pod is going away).  Idempotent. */
    int (*stop_all)(void *opaque, struct sandbox *sb, hull_error_t *err);
    /* Removes every container of the pod.  Idempotent. */
    int (*remove_all)(void *opaque, struct sandbox *sb, hull_error_t *err);
};
void sandbox_set_container_hooks(struct hull_server *srv, const struct sandbox_container_hooks *h);

/* Status: NetworkReady condition (false with reason + message when no valid CNI config).
 * reason/message are malloc'd (caller frees) when false. */
bool sandbox_network_ready(struct hull_server *srv, char **reason, char **message);

/* ---- helpers exposed for unit tests ------------------------------------------------------ */

/* resolv.conf text for a DNSConfig (NULL: NULL, meaning copy the host's). */
char *sandbox_resolv_conf_text(const Runtime__V1__DNSConfig *dns);

/* cgroupfs: creates `parent` (validated: absolute, no "..") under every v1 controller
 * hierarchy below cgroot (default /sys/fs/cgroup) or, on v2, once, enabling the available
 * controllers down the path.  version: 0 detect, 1, 2.  *created tells whether the leaf was new. */
int sandbox_cgroup_create(const char *cgroot, int version, const char *parent, bool *created,
                          hull_error_t *err);
/* Whether the leaf exists in any hierarchy. */
bool sandbox_cgroup_exists(const char *cgroot, int version, const char *parent);
/* rmdir of the leaf in every hierarchy (missing is success). */
int sandbox_cgroup_remove(const char *cgroot, int version, const char *parent, hull_error_t *err);
/* Removes only the infra process's leaf (`pause`, cgroup v2) from a pod cgroup hull did not
 * create (kubelet's kubepods/<qos>/pod<uid>, which kubelet removes itself). */
void sandbox_cgroup_remove_infra(const char *cgroot, int version, const char *parent);
/* Moves pid into the cgroup (v2: into <parent>/pause, a leaf). */
int sandbox_cgroup_add_pid(const char *cgroot, int version, const char *parent, pid_t pid,
                           hull_error_t *err);
bool sandbox_cgroup_path_ok(const char *parent);
/* systemd driver: the pod's cgroup parent is a slice ("kubepods-burstable-pod<uid>.slice").
 * sandbox_slice_create starts it as a transient slice with the pod resources as properties
 * when systemd does not have it active yet (*created true; kubelet's own pod slices are left
 * alone); sandbox_slice_remove stops it; sandbox_slice_add_pid puts pid (the infra process)
 * in the transient scope unit ("hull-<pod id>.scope") of that slice. */
int sandbox_slice_create(const char *slice, const Runtime__V1__LinuxContainerResources *res,
                         bool *created, hull_error_t *err);
bool sandbox_slice_exists(const char *slice);
int sandbox_slice_remove(const char *slice, hull_error_t *err);
int sandbox_slice_add_pid(const char *slice, const char *unit, pid_t pid, hull_error_t *err);
/* Pod-level limits (memory, cpu shares/quota/period) on the v1 pod cgroup; no-op on v2. */
int sandbox_cgroup_apply_resources(const char *parent,
                                   const Runtime__V1__LinuxContainerResources *res,
                                   hull_error_t *err);

/* ---- operations (sandbox_run.c, sandbox_stop.c, sandbox.c) --------------------------------- */
struct hull_server;
struct sandbox;
struct cni_manager;

int sandbox_run(struct hull_server *srv, const Runtime__V1__RunPodSandboxRequest *req,
                char **id_out, hull_error_t *err);
/* Both idempotent: an unknown id is success. */
int sandbox_stop(struct hull_server *srv, const char *id, hull_error_t *err);
int sandbox_remove(struct hull_server *srv, const char *id, hull_error_t *err);
struct cni_manager *sandbox_cni(struct hull_server *srv);

/* A consistent copy of the mutable state. */
struct sandbox_snapshot {
    enum sandbox_state state;
    char **ips;
    size_t n_ips;
    pid_t pause_pid;
    bool net_done;
    char *network_name;
};
void sandbox_snapshot_get(struct sandbox *sb, struct sandbox_snapshot *s);
void sandbox_snapshot_free(struct sandbox_snapshot *s);

/* /proc/<pid>/stat starttime, 0 when the process is gone. */
uint64_t sandbox_proc_start_time(pid_t pid);

/* ---- crash recovery ------------------------------------------------------------------------ */
/* Finishes the pod removals a crash interrupted; call once containers are loaded. */
void sandbox_recover_finish(struct hull_server *srv);
/* Removes the cgroup rel ("/a/b") and the cgroups below it from every mounted hierarchy (v1
 * controllers, named hierarchies and the v2 one, as /proc/self/mountinfo lists them), deepest
 * first; a systemd cgroupsPath or slice has its unit stopped first.  With kill_procs, what runs
 * in them is SIGKILLed first; without, busy ones stay. */
void sandbox_cgroup_remove_all(const char *rel, bool kill_procs);

/* ---- user namespaces (pod/userns.c) --------------------------------------------------------- */
/* Pod user namespaces (userns.c): the CRI mapping rules, the pod's pinned user namespace and
 * id-mapped mounts made by hulld for the pod's containers.
 *
 * A pod with NamespaceOption.userns_options mode POD gets one user namespace with the pod's
 * mappings, created and pinned by hulld (bind mount of /proc/PID/ns/user on a file, like the
 * other pod namespaces).  hulld uses it to id-map what the containers see from the host: the
 * image layers below the container's overlay and the bind-mounted volumes, so that the
 * container's root (host uid hostID) sees the image's root-owned files as its own, and files it
 * writes in a volume land on the host with the container's ids (kubelet's semantics). */

struct userns_map {
    uint32_t container_id, host_id, size;
};

/* kubelet's rules for mode POD: exactly one uid and one gid mapping, container id 0, size
 * 65536, the host range not including host root (0) and not wrapping.  *enabled is false for
 * a missing option or mode NODE.  EINVAL naming the rule for anything else (mode CONTAINER or
 * TARGET, POD without mappings, NODE with mappings). */
int userns_from_cri(const Runtime__V1__NamespaceOption *ns, bool *enabled, struct userns_map *uid,
                    struct userns_map *gid, hull_error_t *err);

/* Creates a user namespace with the mappings and pins it on path (created, must not exist). */
int userns_pin(const char *path, const struct userns_map *uid, const struct userns_map *gid,
               hull_error_t *err);

/* A detached clone of the mount tree at path (recursive: with its submounts), id-mapped through
 * the user namespace userns_fd.  Returns the O_PATH-like mount fd (the caller closes it; the
 * clone disappears with the last reference), or negative errno. */
int userns_idmapped_tree(int userns_fd, const char *path, bool recursive, hull_error_t *err);

/* userns_idmapped_tree attached on target (an existing directory or file). */
int userns_idmap_mount(const char *userns_path, const char *src, const char *target, bool recursive,
                       hull_error_t *err);

/* The pod's runtime reaches the pod's files as the pod's mapped root, so hulld's root and
 * state directories and every directory above them must be searchable by others (o+x, as
 * /var/lib and /run are; hulld creates root and state 0711).  hulld never widens them itself:
 * EBUSY (FAILED_PRECONDITION) naming the first directory that is not. */
int userns_check_reachable(const char *root, const char *state_dir, hull_error_t *err);

/* Lazily unmounts every mount at or below dir (deepest first). */
int userns_unmount_below(const char *dir, hull_error_t *err);

/* ---- sysctls (pod/sysctl.c) ---------------------------------------------------------------- */
/* The one check of CRI sysctls (LinuxPodSandboxConfig.sysctls), for RunPodSandbox and for the
 * OCI spec of each container of the pod.  SECURITY.md: a pod's strings must not reach a
 * privileged write they were not meant for (CRI-O CVE-2022-0811). */

#define CRI_SYSCTL_NAME_MAX  255
#define CRI_SYSCTL_VALUE_MAX 4096

/* Names: [A-Za-z0-9_.-/], dotted ("net.ipv4.ip_forward") or slashed ("net/ipv4/conf/eth0.100/
 * forwarding"), no empty, "." or ".." component; only namespaced sysctls (kernel.shm*,
 * kernel.msg*, kernel.sem, fs.mqueue.*, net.*), net.* not with the host network and the IPC
 * ones not with the host IPC namespace.  Values: at most CRI_SYSCTL_VALUE_MAX bytes, no control
 * character but tab (DEL included), no '=' and no '+' (the shapes that smuggle a second key).
 * EINVAL with a message naming the sysctl. */
int cri_sysctl_validate(const char *key, const char *value, bool host_network, bool host_ipc,
                        hull_error_t *err);

/* The dotted form the OCI spec takes: a slashed name (first separator '/') has '/' and '.'
 * swapped, as kubelet does ("net/ipv4/conf/eth0.100/forwarding" →
 * "net.ipv4.conf.eth0/100.forwarding"); a dotted name is unchanged.  Caller frees. */
char *cri_sysctl_normalize(const char *key);

#endif
