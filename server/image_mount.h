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
 * the container's mounts (ocispec_release_mounts). */
#ifndef HULL_SERVER_IMAGE_MOUNT_H
#define HULL_SERVER_IMAGE_MOUNT_H

#include "common/common.h"
#include "image/image.h"
#include "runtime/v1/api.pb-c.h"

/* *roots_out: n_mounts entries, the mounted image root for image mounts and NULL for the others
 * (NULL-terminated array freed with image_mounts_free; *roots_out is NULL when the config has
 * no image mount).  An image mount must be read-only (EINVAL otherwise: KEP-4639 volumes are
 * read-only, kubelet always asks so); the image id each one resolved to is stored in its
 * ImageSpec.image_ref (ContainerStatus reports it).  On error, what was mounted and acquired stays
 * recorded: the caller's rollback (ocispec_release_mounts + image_mounts_release) undoes it. */
int image_mounts_prepare(struct image_store *is, Runtime__V1__ContainerConfig *cfg,
                         const char *container_dir, const char *userns_path, char ***roots_out,
                         hull_error_t *err);
void image_mounts_free(char **roots, size_t n);
/* Acquires the recorded images again (after a hulld restart). */
void image_mounts_acquire(struct image_store *is, const char *container_dir);
/* Releases the recorded images and forgets them. */
void image_mounts_release(struct image_store *is, const char *container_dir);

#endif
