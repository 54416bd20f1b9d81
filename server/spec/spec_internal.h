/* Shared between the files of the OCI spec generator (server/spec/spec*.c); not an interface for
 * the rest of hulld, which uses spec.h.
 *
 *  spec.c            the builder (spec_from_cri: spec_validate, spec_plan, spec_build_model,
 *                    then the model's serializer), capabilities, sysctls, namespaces,
 *                    process, and the small path helpers below
 *  spec_user.c       uid, gid and additional gids (the image's /etc/passwd and /etc/group)
 *  spec_mounts.c     mounts, image volumes and their copy-up, id-mapped mounts, masked paths
 *  spec_devices.c    devices and the device cgroup rules
 *  spec_resources.c  linux.resources from CRI resources
 *  spec_seccomp.c    the seccomp profile choice and Localhost profile files
 *  seccomp_default.c the RuntimeDefault profile
 *  image_mount.c     image volumes (CRI Mount.image) */
#ifndef HULL_SERVER_SPEC_SPEC_INTERNAL_H
#define HULL_SERVER_SPEC_SPEC_INTERNAL_H

#include "server/spec/spec.h"
#include "server/pod/pod.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline const char *S(const char *s)
{
    return s ? s : "";
}

static inline bool empty(const char *s)
{
    return s == NULL || *s == '\0';
}

/* ---- helpers (spec_util.c; paths are cleaned by common's hull_path_clean) ------------- */
bool spec_has_control_chars(const char *s);

/* ---- namespaces (spec.c) -------------------------------------------------------------- */
struct ns_plan {
    bool host_net, host_ipc, host_pid, host_uts;
    const char *net_path, *ipc_path, *pid_path, *uts_path; /* NULL: new namespace */
    bool new_cgroupns;
    bool userns; /* a user namespace with the pod's mappings */
    struct userns_map uid_map, gid_map;
};

/* ---- user (spec_user.c) --------------------------------------------------------------- */
struct gidv {
    uint32_t *v;
    size_t n, cap;
    bool overflow;
};

struct user_result {
    uint32_t uid, gid;
    struct gidv gids; /* the primary gid first; the caller frees gids.v */
};

/* The container's uid, gid and additional gids (see spec.h and containerd's WithUser). */
int spec_resolve_user(const struct spec_input *in,
                      const Runtime__V1__LinuxContainerSecurityContext *sc, struct user_result *res,
                      hull_error_t *err);

/* ---- mounts (spec_mounts.c) ----------------------------------------------------------- */
struct mnt;
struct mntv {
    struct mnt *v;
    size_t n, cap;
};

/* All the container's mounts in mount order; *rootfs_prop is set when a CRI mount needs the
 * rootfs to propagate ("rslave"/"rshared"). */
int spec_build_mounts(const struct spec_input *in, bool privileged, bool readonly_rootfs,
                      const struct ns_plan *ns, struct mntv *out, const char **rootfs_prop,
                      hull_error_t *err);
/* Pod user namespace: the volumes id-mapped, the paths the mapped root needs made
 * traversable. */
int spec_userns_prepare(const struct spec_input *in, struct mntv *mounts, hull_error_t *err);
void spec_model_mounts(struct hull_ocispec *m, const struct mntv *v);
void spec_mntv_clear(struct mntv *m);
/* linux.maskedPaths and linux.readonlyPaths (the CRI's lists, else the defaults). */
void spec_model_masked_paths(struct hull_ocispec_linux *l,
                             const Runtime__V1__LinuxContainerSecurityContext *sc);

/* ---- devices (spec_devices.c) --------------------------------------------------------- */
struct dev;
struct devv {
    struct dev *v;
    size_t n, cap;
};

void spec_devv_clear(struct devv *d);
/* All device nodes under dir (privileged containers), like containerd's HostDevices(). */
void spec_add_host_devices(struct devv *d, const char *dir, int depth);
int spec_add_cri_devices(const Runtime__V1__ContainerConfig *c, struct devv *d, hull_error_t *err);
void spec_model_devices(struct hull_ocispec_linux *l, const struct devv *d);
/* Appends linux.resources.devices to r. */
void spec_device_rules(struct hull_cgroup_resources *r, bool privileged, const struct devv *d);

/* ---- resources (spec_resources.c) ----------------------------------------------------- */
int spec_check_resources(const Runtime__V1__LinuxContainerResources *r, hull_error_t *err);

/* ---- seccomp (spec_seccomp.c) --------------------------------------------------------- */
enum seccomp_kind { SECCOMP_NONE, SECCOMP_DEFAULT, SECCOMP_LOCALHOST };

/* The profile a container gets: none, RuntimeDefault, or a Localhost file (*path). */
int spec_seccomp_choice(const struct spec_input *in,
                        const Runtime__V1__LinuxContainerSecurityContext *sc, bool privileged,
                        int *kind, char **path, hull_error_t *err);
/* Writes a Localhost profile file as linux.seccomp for this host and bounding set. */
int spec_jw_seccomp_file(struct hull_json_writer *w, const char *path, uint64_t bounding,
                         hull_error_t *err);

#endif
