/* Paths confined to a root directory fd: see hull_open_in_root() in common.h. */
#include "common/common.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>

#define IN_ROOT_TRIES 32

int hull_open_in_root_resolve(int rootfd, const char *path, int flags, mode_t mode,
                              uint64_t extra_resolve)
{
    struct open_how how = {
        /* openat2 refuses O_PATH with flags other than O_DIRECTORY/O_NOFOLLOW/O_CLOEXEC */
        .flags = (uint64_t)(flags | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY)),
        .mode = (flags & O_CREAT) ? mode : 0,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | extra_resolve,
    };
    while (*path == '/')
        path++;
    if (*path == '\0')
        path = ".";
    for (int tries = 0;; tries++) {
        long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
        if (fd >= 0 || (errno != EAGAIN && errno != EINTR) || tries >= IN_ROOT_TRIES)
            return (int)fd;
    }
}

int hull_open_in_root(int rootfd, const char *path, int flags, mode_t mode)
{
    return hull_open_in_root_resolve(rootfd, path, flags, mode, 0);
}
