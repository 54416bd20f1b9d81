/* Shared between the files of the OCI spec generator (ocispec*.c); not an interface for the
 * rest of hulld, which uses ocispec.h.
 *
 *  ocispec.c           the builder (oci_spec_from_cri), capabilities, sysctls, namespaces,
 *                      process, and the small path/JSON helpers below
 *  ocispec_user.c      uid, gid and additional gids (the image's /etc/passwd and /etc/group)
 *  ocispec_mounts.c    mounts, image volumes and their copy-up, id-mapped mounts, masked paths
 *  ocispec_devices.c   devices and the device cgroup rules
 *  ocispec_resources.c linux.resources from CRI resources
 *  ocispec_seccomp.c   the seccomp profile choice and Localhost profile files
 *  seccomp_default.c   the RuntimeDefault profile */
#ifndef HULL_SERVER_OCISPEC_INTERNAL_H
#define HULL_SERVER_OCISPEC_INTERNAL_H

#include "server/ocispec.h"
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

/* ---- helpers (ocispec.c) ----------------------------------------------------------------- */
bool ocispec_has_control_chars(const char *s);
/* Raw number from a parsed yajl tree (keeps uint64 values yajl cannot hold as long long). */
void ocispec_jw_number_raw(struct hull_json_writer *w, yajl_val v);
/* A parsed yajl tree written as is (at most 16 levels deep, deeper values become null). */
void ocispec_jw_copy(struct hull_json_writer *w, yajl_val v, int depth);
void ocispec_jw_strv(struct hull_json_writer *w, const char *key, char *const *v, size_t n);

/* ---- namespaces (ocispec.c) -------------------------------------------------------------- */
struct ns_plan {
    bool host_net, host_ipc, host_pid, host_uts;
    const char *net_path, *ipc_path, *pid_path, *uts_path; /* NULL: new namespace */
    bool new_cgroupns;
    bool userns; /* a user namespace with the pod's mappings */
    struct userns_map uid_map, gid_map;
};

/* ---- user (ocispec_user.c) --------------------------------------------------------------- */
struct gidv {
    uint32_t *v;
    size_t n, cap;
    bool overflow;
};

struct user_result {
    uint32_t uid, gid;
    struct gidv gids; /* the primary gid first; the caller frees gids.v */
};

/* The container's uid, gid and additional gids (see ocispec.h and containerd's WithUser). */
int ocispec_resolve_user(const struct ocispec_input *in,
                         const Runtime__V1__LinuxContainerSecurityContext *sc,
                         struct user_result *res, hull_error_t *err);

/* ---- mounts (ocispec_mounts.c) ----------------------------------------------------------- */
struct mnt;
struct mntv {
    struct mnt *v;
    size_t n, cap;
};

/* All the container's mounts in mount order; *rootfs_prop is set when a CRI mount needs the
 * rootfs to propagate ("rslave"/"rshared"). */
int ocispec_build_mounts(const struct ocispec_input *in, bool privileged, bool readonly_rootfs,
                         const struct ns_plan *ns, struct mntv *out, const char **rootfs_prop,
                         hull_error_t *err);
/* Pod user namespace: the volumes id-mapped, the paths the mapped root needs made
 * traversable. */
int ocispec_userns_prepare(const struct ocispec_input *in, struct mntv *mounts, hull_error_t *err);
void ocispec_jw_mounts(struct hull_json_writer *w, const struct mntv *m);
void ocispec_mntv_clear(struct mntv *m);
/* linux.maskedPaths and linux.readonlyPaths (the CRI's lists, else the defaults). */
void ocispec_jw_masked_paths(struct hull_json_writer *w,
                             const Runtime__V1__LinuxContainerSecurityContext *sc);

/* ---- devices (ocispec_devices.c) --------------------------------------------------------- */
struct dev;
struct devv {
    struct dev *v;
    size_t n, cap;
};

void ocispec_devv_clear(struct devv *d);
/* All device nodes under dir (privileged containers), like containerd's HostDevices(). */
void ocispec_add_host_devices(struct devv *d, const char *dir, int depth);
int ocispec_add_cri_devices(const Runtime__V1__ContainerConfig *c, struct devv *d,
                            hull_error_t *err);
void ocispec_jw_devices(struct hull_json_writer *w, const struct devv *d);
/* linux.resources.devices */
void ocispec_jw_device_rules(struct hull_json_writer *w, bool privileged, const struct devv *d);

/* ---- resources (ocispec_resources.c) ----------------------------------------------------- */
int ocispec_check_resources(const Runtime__V1__LinuxContainerResources *r, hull_error_t *err);
void ocispec_jw_resources_body(struct hull_json_writer *w,
                               const Runtime__V1__LinuxContainerResources *r);
bool ocispec_host_is_cgroup2(void);

/* ---- seccomp (ocispec_seccomp.c) --------------------------------------------------------- */
enum seccomp_kind { SECCOMP_NONE, SECCOMP_DEFAULT, SECCOMP_LOCALHOST };

/* The profile a container gets: none, RuntimeDefault, or a Localhost file (*path). */
int ocispec_seccomp_choice(const struct ocispec_input *in,
                           const Runtime__V1__LinuxContainerSecurityContext *sc, bool privileged,
                           int *kind, char **path, hull_error_t *err);
/* Writes a Localhost profile file as linux.seccomp for this host and bounding set. */
int ocispec_jw_seccomp_file(struct hull_json_writer *w, const char *path, uint64_t bounding,
                            hull_error_t *err);

#endif
