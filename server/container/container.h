/* server/container/: the container area: container records, their lifecycle through
 * hull-conmon and the OCI runtime, exit tracking, crash recovery and the streaming server's
 * backend.  This header is its whole interface.  The CRI handlers live in server/rpc/; the pod
 * area stops and removes a pod's containers through the hooks this area registers
 * (sandbox_set_container_hooks).
 *
 * On disk:
 *   <root>/containers/<id>/upper, work   the writable layer (overlay upper/work)
 *   <root>/containers/<id>/volumes/...    image volumes; termination-log
 *   <state>/containers/<id>/config.json   the OCI bundle; rootfs/ is the overlay mount
 *   <state>/containers/<id>/mon/          hull-conmon's attach and control sockets
 *   <state>/exits/<id>                    exit file written by hull-conmon
 *   <state>/runtime/<handler>/            the OCI runtime's --root
 *   <root>/store/containers/<id>.json     the record (server/store/store.h) */
#ifndef HULL_SERVER_CONTAINER_CONTAINER_H
#define HULL_SERVER_CONTAINER_CONTAINER_H

#include <pthread.h>

#include "common/common.h"
#include "runtime/v1/api.pb-c.h"
#include "server/server.h"

enum container_state {
    CONTAINER_CREATED = RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED,
    CONTAINER_RUNNING = RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING,
    CONTAINER_EXITED = RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED,
    CONTAINER_UNKNOWN = RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN,
};

/* A snapshot of one container, safe to use without locks (container_snapshot_free). */
struct container_snapshot {
    char *id;
    char *pod_id;
    Runtime__V1__ContainerConfig *config; /* unpacked copy of the CRI config */
    char *image_ref;                      /* as requested */
    char *image_id;                       /* sha256:... */
    char *image_digest_ref;               /* repo@sha256 or "" */
    int state;
    int64_t created_ns, started_ns, finished_ns;
    int32_t exit_code;
    char *reason, *message;
    char *log_path;
    char *runtime_handler;
    char *cgroups_path; /* as given to the runtime */
    char *upper_dir;    /* writable layer */
    pid_t pid;
    bool has_user;
    uint32_t uid, gid;
    uint32_t *gids; /* supplementary groups incl. gid */
    size_t n_gids;
    char *resources_pb; /* packed LinuxContainerResources after updates (may be NULL) */
    size_t resources_len;
    int stop_signo; /* effective stop signal: config, else image STOPSIGNAL, else SIGTERM */
};
void container_snapshot_free(struct container_snapshot *s);
HULL_DEFINE_CLEANUP(struct container_snapshot, container_snapshot_free)
#define _cleanup_container_snapshot_ __attribute__((cleanup(container_snapshot_freep)))

/* images: the image store containers mount their rootfs from and hold images in (may be NULL:
 * then CreateContainer fails). */
struct image_store;
int container_service_init(struct hull_server *srv, struct image_store *images, hull_error_t *err);
void container_service_fini(struct hull_server *srv);

/* CRI operations.  Errors carry errno: ENOENT unknown id, EEXIST name taken, EINVAL bad
 * request, EBUSY wrong state. */
/* Whether the runtime handler (configured name, "" = default) supports recursive read-only
 * mounts: its `RUNTIME features` lists the "rro" mount option (containerd's test; hull-oci and
 * runc 1.1+ do).  Asked once per runtime path; false when it cannot be asked. */
bool container_handler_supports_rro(struct hull_server *srv, const char *handler);

/* The pod's stored PodSandboxConfig is authoritative: the request's copy is not used. */
int container_create(struct hull_server *srv, const char *pod_id,
                     const Runtime__V1__ContainerConfig *config, char **id_out, hull_error_t *err);
int container_start(struct hull_server *srv, const char *id, hull_error_t *err);
int container_stop(struct hull_server *srv, const char *id, int64_t timeout_s, hull_error_t *err);
int container_remove(struct hull_server *srv, const char *id, hull_error_t *err);
int container_update_resources(struct hull_server *srv, const char *id,
                               const Runtime__V1__LinuxContainerResources *r, hull_error_t *err);
int container_reopen_log(struct hull_server *srv, const char *id, hull_error_t *err);
/* CheckpointContainer: CRIU dump through the runtime (the container keeps running) into a
 * checkpoint archive at location (CRI-O's layout; server/container/container_checkpoint.c). */
int container_checkpoint(struct hull_server *srv, const char *id, const char *location,
                         int64_t timeout_s, hull_error_t *err);

struct container_exec_result {
    int exit_code;
    bool timed_out;
    char *out, *errout;
    size_t out_len, err_len;
};
int container_exec_sync(struct hull_server *srv, const char *id, char *const *cmd, size_t n_cmd,
                        int64_t timeout_s, struct container_exec_result *res, hull_error_t *err);

/* Lookup by full id or unique prefix. */
int container_get(struct hull_server *srv, const char *id, struct container_snapshot **out,
                  hull_error_t *err);
/* Every container (optionally only those of pod_id), snapshot array freed by the caller. */
int container_list(struct hull_server *srv, const char *pod_id, struct container_snapshot ***out,
                   size_t *n, hull_error_t *err);
void container_snapshot_list_free(struct container_snapshot **l, size_t n);

/* For the sandbox area: stop (timeout 0) / remove every container of a pod. */
int container_stop_pod(struct hull_server *srv, const char *pod_id, hull_error_t *err);
int container_remove_pod(struct hull_server *srv, const char *pod_id, hull_error_t *err);

/* The streaming server (stream/) with hulld's backend (stream_service.c: exec and attach from
 * container_stream.c, port forwarding into the pod's network namespace); srv->stream while it
 * runs. */
int stream_service_init(struct hull_server *srv, hull_error_t *err);
void stream_service_fini(struct hull_server *srv);

#endif
