/* Process credentials: rlimits, capabilities (all five sets), user and groups. */

#include "oci/oci.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

static int last_cap(void)
{
    static const char path[] = "/proc/sys/kernel/cap_last_cap";
    char buf[16] = {0};
    FILE *f = fopen(path, "re");
    int v = 40;
    if (f) {
        if (fgets(buf, sizeof(buf), f))
            v = atoi(buf);
        fclose(f);
    }
    return v > 0 && v < 64 ? v : 40;
}

int oci_apply_rlimits(const struct oci_process *p, hull_error_t *err)
{
    for (size_t i = 0; i < p->n_rlimits; i++) {
        struct rlimit rl = {.rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard};
        if (setrlimit(p->rlimits[i].resource, &rl) < 0)
            return hull_error_set(err, errno, "setrlimit %d", p->rlimits[i].resource);
    }
    return 0;
}

int oci_drop_bounding(const struct oci_process *p, hull_error_t *err)
{
    if (!p->caps.set)
        return 0;
    int last = last_cap();
    for (int c = 0; c <= last; c++) {
        if (p->caps.bounding & (1ULL << c))
            continue;
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
            return hull_error_set(err, errno, "drop capability %d from the bounding set", c);
    }
    return 0;
}

int oci_set_user(const struct oci_process *p, hull_error_t *err)
{
    const struct oci_user *u = &p->user;
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        return hull_error_set(err, errno, "PR_SET_KEEPCAPS");
    gid_t groups[u->n_gids ? u->n_gids : 1];
    for (size_t i = 0; i < u->n_gids; i++)
        groups[i] = (gid_t)u->gids[i];
    if (setgroups(u->n_gids, groups) < 0) {
        /* setgroups is denied in a user namespace with setgroups=deny */
        if (errno != EPERM || u->n_gids > 1)
            return hull_error_set(err, errno, "setgroups");
    }
    if (setresgid(u->gid, u->gid, u->gid) < 0)
        return hull_error_set(err, errno, "setgid %u", u->gid);
    if (setresuid(u->uid, u->uid, u->uid) < 0)
        return hull_error_set(err, errno, "setuid %u", u->uid);
    return 0;
}

int oci_apply_caps(const struct oci_process *p, hull_error_t *err)
{
    if (!p->caps.set) {
        /* no capabilities object: the process gets none (runtime-spec) unless root keeps
         * its own; runc keeps the default for uid 0.  Only clear ambient. */
        return 0;
    }
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    for (int i = 0; i < 2; i++) {
        data[i].effective = (uint32_t)(p->caps.effective >> (32 * i));
        data[i].permitted = (uint32_t)(p->caps.permitted >> (32 * i));
        data[i].inheritable = (uint32_t)(p->caps.inheritable >> (32 * i));
    }
    if (syscall(SYS_capset, &hdr, data) < 0)
        return hull_error_set(err, errno, "capset");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return hull_error_set(err, errno, "clear ambient capabilities");
    int last = last_cap();
    for (int c = 0; c <= last; c++) {
        if (!(p->caps.ambient & (1ULL << c)))
            continue;
        /* the kernel refuses (EPERM) unless the capability is permitted and inheritable:
         * like runc, that is not fatal; nothing is logged because the container's stderr is
         * all we have here */
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0 && errno != EPERM)
            return hull_error_set(err, errno, "raise ambient capability %d", c);
    }
    return 0;
}
