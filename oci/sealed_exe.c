/* Re-exec from a sealed memfd copy of hull-oci (SECURITY.md: runtime binary overwritten from
 * inside, runc CVE-2019-5736).  A container process that reopens /proc/<pid>/exe of a hull-oci
 * process it can see (e.g. during exec) only reaches the immutable memfd, never the file on
 * disk. */

#include "oci/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

bool oci_self_is_sealed(void)
{
    _cleanup_close_ int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    int seals = fcntl(fd, F_GET_SEALS);
    return seals >= 0 && (seals & SEALS) == SEALS;
}

int oci_ensure_sealed_self(int argc, char **argv, hull_error_t *err)
{
    (void)argc;
    if (oci_self_is_sealed())
        return 0;
    _cleanup_close_ int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (self < 0)
        return hull_error_set(err, errno, "open /proc/self/exe");
    _cleanup_close_ int mfd = memfd_create("hull-oci", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0)
        return hull_error_set(err, errno, "memfd_create");
    struct stat st;
    if (fstat(self, &st) < 0)
        return hull_error_set(err, errno, "fstat /proc/self/exe");
    /* sendfile would be faster; copy_file_range does not work into a memfd on every kernel */
    ssize_t left = st.st_size;
    off_t off = 0;
    while (left > 0) {
        ssize_t n = sendfile(mfd, self, &off, (size_t)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        left -= n;
    }
    if (left > 0) {
        if (lseek(self, 0, SEEK_SET) < 0 || ftruncate(mfd, 0) < 0 || lseek(mfd, 0, SEEK_SET) < 0)
            return hull_error_set(err, errno, "copy self");
        int r = oci_copy_file_fd(self, mfd);
        if (r < 0)
            return hull_error_set(err, -r, "copy /proc/self/exe to a memfd");
    }
    if (fcntl(mfd, F_ADD_SEALS, SEALS) < 0)
        return hull_error_set(err, errno, "seal the memfd copy");
    extern char **environ;
    fexecve(mfd, argv, environ);
    return hull_error_set(err, errno, "re-exec from the sealed copy");
}
