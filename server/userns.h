/* Pod user namespaces (userns.c): the CRI mapping rules, the pod's pinned user namespace and
 * id-mapped mounts made by hulld for the pod's containers.
 *
 * A pod with NamespaceOption.userns_options mode POD gets one user namespace with the pod's
 * mappings, created and pinned by hulld (bind mount of /proc/PID/ns/user on a file, like the
 * other pod namespaces).  hulld uses it to id-map what the containers see from the host: the
 * image layers below the container's overlay and the bind-mounted volumes, so that the
 * container's root (host uid hostID) sees the image's root-owned files as its own, and files it
 * writes in a volume land on the host with the container's ids (kubelet's semantics). */
#ifndef HULL_SERVER_USERNS_H
#define HULL_SERVER_USERNS_H

#include "common/common.h"
#include "runtime/v1/api.pb-c.h"

#include <stdbool.h>
#include <stdint.h>

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

#endif
