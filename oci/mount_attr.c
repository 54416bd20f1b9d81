/* Mount attributes set with mount_setattr(2): recursive read-only bind mounts (the "rro" mount
 * option of runc 1.1+ and crun).  A plain read-only bind remount only affects the top mount;
 * submounts of the source (a tmpfs below a host directory) stay writable.  MOUNT_ATTR_RDONLY
 * with AT_RECURSIVE reaches every mount of the tree. */

#include "oci/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>

int oci_mount_set_rro(int rootfd, const char *dest, hull_error_t *err)
{
    _cleanup_close_ int fd = hull_open_in_root(rootfd, dest, O_PATH, 0);
    if (fd < 0)
        return hull_error_set(err, errno, "reopen `%s`", dest);
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
    if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
        if (errno == ENOSYS)
            return hull_error_setx(err, ENOTSUP,
                                   "mount `%s`: recursive read-only (rro) needs mount_setattr "
                                   "(Linux 5.12 or later)",
                                   dest);
        return hull_error_set(err, errno, "make `%s` recursively read-only", dest);
    }
    return 0;
}
