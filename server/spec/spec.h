/* OCI runtime-spec generation from CRI configs (spec.c): what hulld hands hull-oci (or runc)
 * as <bundle>/config.json for a container, and as the resources JSON of `update --resources`.
 *
 * Defaults follow what kubelet expects from CRI-O and containerd: the default capability set,
 * masked and read-only paths, the RuntimeDefault seccomp profile, /dev/shm, /etc/hosts,
 * /etc/resolv.conf and /etc/hostname of the pod, /dev/termination-log. */
#ifndef HULL_SERVER_SPEC_SPEC_H
#define HULL_SERVER_SPEC_SPEC_H

#include "common/cgroup.h"
#include "common/common.h"
#include "common/ocispec_model.h"
#include "image/image.h"
#include "runtime/v1/api.pb-c.h"

/* What the spec needs to know of the container's pod. */
struct spec_sandbox {
    const char *id;
    const Runtime__V1__PodSandboxConfig *config; /* the pod's CRI config */
    /* namespaces to join (paths of pinned namespaces, or /proc/PID/ns/X).  host_* say the pod
     * uses the host's namespace; otherwise NULL means a fresh namespace for the container
     * (except pid mode POD, which needs pidns_path).  UTS: utsns_path, else the host's for
     * host-network pods, else a fresh one with `hostname` set. */
    const char *netns_path;
    const char *ipcns_path;
    const char *utsns_path;
    const char *pidns_path; /* pod-shared PID namespace (infra process), else NULL */
    /* the pod's pinned user namespace (its mappings are config's userns_options), else NULL */
    const char *userns_path;
    bool host_network, host_ipc, host_pid;
    /* files of the pod bind-mounted into each container ("" or NULL = none) */
    const char *hostname_path;
    const char *resolv_path;
    const char *hosts_path;
    const char *shm_path;      /* the pod's /dev/shm mount; NULL: a private tmpfs */
    const char *cgroup_parent; /* e.g. "/kubepods/burstable/pod123" */
    const char *hostname;
};

/* The user the container's process runs as, for ContainerStatus.user. */
struct spec_user {
    uint32_t uid, gid;
    uint32_t *additional_gids; /* always includes gid; the caller frees it */
    size_t n_additional_gids;
};

struct spec_input {
    const char *container_id;
    const Runtime__V1__ContainerConfig *config;
    const struct spec_sandbox *sandbox;
    const struct image_info *image;   /* entrypoint, cmd, env, workdir, user, volumes */
    const char *rootfs;               /* the container's mounted root (overlay) on the host */
    const char *container_dir;        /* per-container persistent dir: termination log, volumes */
    const char *seccomp_profile_root; /* base for Localhost profiles given as relative paths */
    bool host_has_apparmor;
    /* pid namespace of the target container (/proc/PID/ns/pid) for NamespaceOption pid TARGET;
     * TARGET without it is refused */
    const char *target_pidns_path;
    /* the runtime handler understands the "rro" mount option (recursive read-only); when false,
     * CRI mounts asking for recursive_read_only are refused with EINVAL */
    bool runtime_supports_rro;
    /* clamp process.oomScoreAdj to hulld's own value (containerd's restrict_oom_score_adj).
     * Applied anyway when hulld lacks CAP_SYS_RESOURCE, since lowering it would fail. */
    bool restrict_oom_score_adj;
    /* bytes of file data (holes excluded) copied into the image volumes in total; 0 = no
     * limit.  Crossing it fails with EFBIG and leaves no volume directory behind */
    uint64_t volume_copy_budget;
    /* parallel to config->mounts: the host directory where the image of an image mount
     * (Mount.image) is mounted read-only (spec.h), NULL for other mounts; the whole
     * array may be NULL when there is none.  An image mount without its root is refused. */
    char *const *image_mount_roots;
    /* optional: filled with the resolved user on success */
    struct spec_user *user_out;
};

/* Builds config.json text.  In a pod with a user namespace the container gets a user namespace
 * with the pod's mappings, and its bind-mounted volumes (CRI mounts and image volumes) are
 * id-mapped through the pod's namespace by hulld on <container_dir>/idmap/N (ENOTSUP when a
 * filesystem cannot be id-mapped); spec_release_mounts unmounts them.   Errors (EINVAL, ENOENT
 * for a missing user / profile or image_sub_path, ENOTSUP for CDI devices, a volume that cannot be
 * id-mapped, AppArmor without AppArmor, EFBIG for an oversized image /etc/passwd or /etc/group)
 * name the offending field, e.g. "run_as_username \"nobody2\" not found in the image's
 * /etc/passwd".
 *
 * Side effects on the host (all idempotent; the caller removes container_dir on failure):
 * missing CRI mount host paths are created as directories (kubelet semantics),
 * <container_dir>/termination-log (0666) unless a CRI mount provides /dev/termination-log, and
 * <container_dir>/volumes/<hash> per image volume, filled on creation with what the image has
 * at that path (read inside the rootfs only).  in->rootfs must be mounted.
 *
 * Unset security-context fields follow containerd: no seccomp field and no
 * seccomp_profile_path = unconfined; empty masked/readonly path lists = the defaults. */
int spec_from_cri(const struct spec_input *in, char **json_out, hull_error_t *err);
/* The same as the typed model (common/ocispec_model.h) before it is serialized: spec_from_cri
 * is spec_model_from_cri + hull_ocispec_to_json.  The steps: validate the input, plan every
 * decision (with the host side effects above), build the model. */
int spec_model_from_cri(const struct spec_input *in, struct hull_ocispec **out, hull_error_t *err);

/* Unmounts what spec_from_cri mounted below container_dir (id-mapped volumes); call it
 * before removing container_dir. */
int spec_release_mounts(const char *container_dir, hull_error_t *err);

/* The runtime-spec LinuxResources JSON for `RUNTIME update --resources FILE ID`. */
int spec_resources_from_cri(const Runtime__V1__LinuxContainerResources *r, char **json_out,
                            hull_error_t *err);
/* CRI resources as the cgroup library's typed resources (NULL: none): what the spec's
 * linux.resources and the update JSON are written from.  Swap only where the host accounts
 * it, hugepage limits only where there is a hugetlb controller. */
void spec_cgroup_resources(const Runtime__V1__LinuxContainerResources *r,
                           struct hull_cgroup_resources *out);

/* The process.json for `RUNTIME exec --process` (Exec, ExecSync): the container's process from
 * its generated config.json (user, groups, env, cwd, capabilities, rlimits, noNewPrivileges,
 * apparmor) with args replaced by cmd[0..n) and terminal set to tty. */
int spec_exec_process(const char *spec_json, char *const *cmd, size_t n, bool tty, unsigned rows,
                      unsigned cols, char **json_out, hull_error_t *err);

/* The default capability set kubelet expects (CAP_ names), NULL-terminated. */
extern const char *const spec_default_caps[];

/* The container's CRI log file: <pod log_directory>/<container log_path> (cleaned).  log_path
 * may not climb out of the directory (".." components refused, EINVAL); the directory must be
 * absolute.  *out is NULL when the container has no log_path. */
int spec_log_path(const Runtime__V1__PodSandboxConfig *pod,
                  const Runtime__V1__ContainerConfig *config, char **out, hull_error_t *err);

/* The built-in RuntimeDefault seccomp profile (seccomp_default.c, equivalent to containerd's) as
 * a runtime-spec linux.seccomp object: bounding is the container's bounding capability set as a
 * bitmask (1 << CAP_X); arch "amd64" or "arm64" (NULL = this build's). */
void spec_seccomp_default_write(struct hull_json_writer *w, uint64_t bounding, const char *arch);

/* ---- image volumes (image_mount.c) ----------------------------------------------------- */
/* Image volumes (image_mount.c): CRI Mount.image, an OCI image's content mounted read-only in a
 * container (KEP-4639), as containerd and CRI-O do.
 *
 * For each CRI mount with image set, the image (already pulled: ENOENT otherwise) is mounted as
 * a read-only overlay of its layers on <container_dir>/image-mounts/<index>, and acquired (a
 * RemoveImage while it is mounted hides it but keeps its layers until the container is gone).
 * In a pod with a user namespace (userns_path, else NULL) the layers are id-mapped through it,
 * so that root-owned files of the image are owned by the pod's root.
 * The acquired ids are listed in <container_dir>/image-mounts.list so a restarted hulld can
 * acquire them again and removal can release them.  The overlays are unmounted with the rest of
 * the container's mounts (spec_release_mounts). */
/* *roots_out: n_mounts entries, the mounted image root for image mounts and NULL for the others
 * (NULL-terminated array freed with spec_image_mounts_free; *roots_out is NULL when the config has
 * no image mount).  An image mount must be read-only (EINVAL otherwise: KEP-4639 volumes are
 * read-only, kubelet always asks so); the image id each one resolved to is stored in its
 * ImageSpec.image_ref (ContainerStatus reports it).  On error, what was mounted and acquired stays
 * recorded: the caller's rollback (spec_release_mounts + spec_image_mounts_release) undoes it. */
int spec_image_mounts_prepare(struct image_store *is, Runtime__V1__ContainerConfig *cfg,
                              const char *container_dir, const char *userns_path, char ***roots_out,
                              hull_error_t *err);
void spec_image_mounts_free(char **roots, size_t n);
/* Acquires the recorded images again (after a hulld restart). */
void spec_image_mounts_acquire(struct image_store *is, const char *container_dir);
/* Releases the recorded images and forgets them. */
void spec_image_mounts_release(struct image_store *is, const char *container_dir);

#endif
