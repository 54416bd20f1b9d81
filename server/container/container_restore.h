/* Restoring a container from a checkpoint archive through the CRI (container_restore.c), the
 * way CRI-O does it: CreateContainer whose image is the path of an archive that
 * CheckpointContainer wrote creates a container from the archive's spec.dump/config.dump merged
 * with the request (new pod, name, labels, resources, bind mounts); its rootfs gets the
 * archive's rootfs-diff.tar and deleted.files; StartContainer then runs hull-conmon with
 * --restore, which runs the runtime's `restore` (CRIU) instead of `create` + `start`. */
#ifndef HULL_SERVER_CONTAINER_RESTORE_H
#define HULL_SERVER_CONTAINER_RESTORE_H

#include "server/container/container_internal.h"

struct ctr_restore;

/* When config's image names a checkpoint archive (an absolute path), unpacks it into a staging
 * directory, checks it and builds the merged config; *out stays NULL for an ordinary image.
 * Errors: EINVAL for an archive that is not one (garbage, missing or malformed spec.dump or
 * config.dump, a bind mount the request does not give), ENOENT for a missing file, EFBIG. */
int ctr_restore_open(struct hull_server *srv, const Runtime__V1__ContainerConfig *config,
                     struct ctr_restore **out, hull_error_t *err);
/* The merged config the container is created from (owned by rs). */
const Runtime__V1__ContainerConfig *ctr_restore_config(const struct ctr_restore *rs);
/* With the container's rootfs mounted at rootfs: applies rootfs-diff.tar and deleted.files,
 * moves the CRIU images into the container's directory and marks c restore-pending. */
int ctr_restore_prepare(struct hull_server *srv, struct ctr_restore *rs, struct container *c,
                        const char *rootfs, hull_error_t *err);
void ctr_restore_free(struct ctr_restore *rs);
HULL_DEFINE_CLEANUP(struct ctr_restore, ctr_restore_free)
#define _cleanup_restore_ __attribute__((cleanup(ctr_restore_freep)))

/* StartContainer of a restore-pending container: hull-conmon --restore (CRIU restore); fills
 * c->pid, c->monitor_pid and c->pid_start and clears c->restore_pending on success. */
int ctr_restore_start(struct hull_server *srv, struct container *c, hull_error_t *err);
/* StopContainer of a restore-pending container (nothing runs): marks it exited. */
void ctr_restore_stop_pending(struct hull_server *srv, struct container *c);

#endif
