/* Cloning a process into a user namespace without joining it ourselves. */
#include "common.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs in the helper: never returns. */
static __attribute__((noreturn)) void helper_main(int rfd, int wfd, int userns_fd, int pre_mntns_fd,
                                                  unsigned long clone_flags, unsigned flags,
                                                  void (*child)(void *), void *arg)
{
    close(rfd);
    int res[2] = {-1, 0};
    /* raw syscalls: glibc's set*id would wait for the threads of the caller this copy lacks */
    if ((pre_mntns_fd >= 0 && setns(pre_mntns_fd, CLONE_NEWNS) < 0) ||
        setns(userns_fd, CLONE_NEWUSER) < 0) {
        res[1] = errno;
    } else if ((syscall(SYS_setresgid, 0, 0, 0) < 0 || syscall(SYS_setresuid, 0, 0, 0) < 0) &&
               !(flags & HULL_CLONE_ID0_OPTIONAL)) {
        res[1] = errno;
    } else {
        res[0] = (int)syscall(SYS_clone, clone_flags | CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, 0);
        if (res[0] == 0) {
            close(wfd);
            child(arg);
            _exit(127);
        }
        res[1] = res[0] < 0 ? errno : 0;
    }
    if (write(wfd, res, sizeof(res)) != sizeof(res))
        _exit(1);
    _exit(0);
}

pid_t hull_clone_in_userns(int userns_fd, int pre_mntns_fd, unsigned long clone_flags,
                           unsigned flags, void (*child)(void *), void *arg)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    int was = -1;
    if (flags & HULL_CLONE_NONDUMPABLE) {
        /* the flag lives in the mm the helper copies: non-dumpable from its first instruction,
         * and so is the child it clones */
        was = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
            int e = errno;
            close(p[0]);
            close(p[1]);
            return -e;
        }
    }
    pid_t helper = (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, 0);
    if (helper == 0)
        helper_main(p[0], p[1], userns_fd, pre_mntns_fd, clone_flags, flags, child, arg);
    int e = errno;
    if (was >= 0)
        prctl(PR_SET_DUMPABLE, was == 0 ? 0 : 1, 0, 0, 0);
    close(p[1]);
    if (helper < 0) {
        close(p[0]);
        return -e;
    }
    int res[2] = {-1, EIO};
    ssize_t n;
    while ((n = read(p[0], res, sizeof(res))) < 0 && errno == EINTR)
        ;
    close(p[0]);
    while (waitpid(helper, NULL, 0) < 0 && errno == EINTR)
        ;
    if (n != sizeof(res) || res[0] <= 0)
        return -(res[1] > 0 ? res[1] : EIO);
    return res[0];
}
