/* The pod sandbox area: what the container area and other parts of hulld may use.
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
#ifndef HULL_SERVER_SANDBOX_H
#define HULL_SERVER_SANDBOX_H

#include <sys/types.h>

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

/* The CRI PodSandboxStatus of sb, allocated in call memory (rpc_sandbox.c). */
struct rpc_call;
Runtime__V1__PodSandboxStatus *sandbox_status_message(struct rpc_call *call, struct sandbox *sb);

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

#endif
