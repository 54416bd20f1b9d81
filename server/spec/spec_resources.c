/* CRI LinuxContainerResources checked and written as OCI linux.resources. */
#include "server/spec/spec_internal.h"
#include "common/cgroup.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

/* ---- resources --------------------------------------------------------------------------- */
static bool valid_cpuset(const char *s)
{
    if (strlen(s) > 4096)
        return false;
    for (; *s; s++)
        if (!(isdigit((unsigned char)*s) || *s == ',' || *s == '-'))
            return false;
    return true;
}

static bool valid_page_size(const char *s)
{
    size_t d = strspn(s, "0123456789");
    if (d == 0 || d > 12)
        return false;
    const char *u = s + d;
    return strcmp(u, "KB") == 0 || strcmp(u, "MB") == 0 || strcmp(u, "GB") == 0 ||
           strcmp(u, "TB") == 0 || strcmp(u, "PB") == 0;
}

int spec_check_resources(const Runtime__V1__LinuxContainerResources *r, hull_error_t *err)
{
    if (r == NULL)
        return 0;
    if (r->cpu_shares < 0 || r->cpu_period < 0)
        return hull_error_setx(err, EINVAL, "cpu_shares and cpu_period must not be negative");
    if (r->cpu_quota < -1)
        return hull_error_setx(err, EINVAL, "cpu_quota %" PRId64 " is invalid", r->cpu_quota);
    if (r->memory_limit_in_bytes < 0 || r->memory_swap_limit_in_bytes < -1)
        return hull_error_setx(err, EINVAL, "memory limits must not be negative");
    if (r->oom_score_adj < -1000 || r->oom_score_adj > 1000)
        return hull_error_setx(err, EINVAL, "oom_score_adj %" PRId64 " out of range (-1000..1000)",
                               r->oom_score_adj);
    if (!valid_cpuset(S(r->cpuset_cpus)) || !valid_cpuset(S(r->cpuset_mems)))
        return hull_error_setx(err, EINVAL, "invalid cpuset \"%s\" / \"%s\"", S(r->cpuset_cpus),
                               S(r->cpuset_mems));
    for (size_t i = 0; i < r->n_hugepage_limits; i++)
        if (!valid_page_size(S(r->hugepage_limits[i]->page_size)))
            return hull_error_setx(err, EINVAL, "hugepage limit: invalid page size \"%s\"",
                                   S(r->hugepage_limits[i]->page_size));
    for (size_t i = 0; i < r->n_unified; i++) {
        const char *k = S(r->unified[i]->key), *v = S(r->unified[i]->value);
        if (empty(k) || !hull_cgroup_unified_key_ok(k) || spec_has_control_chars(k))
            return hull_error_setx(err, EINVAL, "unified: invalid cgroup file name \"%s\"", k);
        if (strchr(v, '\n') || strchr(v, '\r'))
            return hull_error_setx(err, EINVAL, "unified %s: value contains a newline", k);
    }
    return 0;
}

void spec_cgroup_resources(const Runtime__V1__LinuxContainerResources *r,
                           struct hull_cgroup_resources *out)
{
    hull_cgroup_resources_init(out);
    if (r == NULL)
        return;
    if (r->memory_limit_in_bytes > 0)
        out->memory.limit = r->memory_limit_in_bytes;
    /* swap only where the host accounts it (containerd does the same; runc cannot set memsw
     * without it) */
    if (r->memory_swap_limit_in_bytes != 0 && hull_cgroup_host_has_swap_accounting())
        out->memory.swap = r->memory_swap_limit_in_bytes;
    if (r->cpu_shares)
        out->cpu.shares = r->cpu_shares;
    if (r->cpu_quota)
        out->cpu.quota = r->cpu_quota;
    if (r->cpu_period)
        out->cpu.period = r->cpu_period;
    if (!empty(r->cpuset_cpus))
        out->cpu.cpus = xstrdup(r->cpuset_cpus);
    if (!empty(r->cpuset_mems))
        out->cpu.mems = xstrdup(r->cpuset_mems);
    /* runc fails the whole container ("cannot set hugetlb limit") when the controller is not
     * mounted, and kubelet sends limits (0) for every page size the node has, so they are left
     * out when there is no hugetlb controller */
    if (r->n_hugepage_limits && !hull_cgroup_host_has_controller("hugetlb"))
        log_debug("no hugetlb cgroup controller: hugepage limits left out");
    else
        for (size_t i = 0; i < r->n_hugepage_limits; i++) {
            uint64_t l = r->hugepage_limits[i]->limit;
            hull_cgroup_resources_add_hugetlb(out, r->hugepage_limits[i]->page_size,
                                              l > INT64_MAX ? INT64_MAX : (int64_t)l);
        }
    for (size_t i = 0; i < r->n_unified; i++)
        hull_cgroup_resources_add_unified(out, S(r->unified[i]->key), S(r->unified[i]->value));
}

int spec_resources_from_cri(const Runtime__V1__LinuxContainerResources *r, char **json_out,
                            hull_error_t *err)
{
    *json_out = NULL;
    int ret = spec_check_resources(r, err);
    if (ret < 0)
        return ret;
    _cleanup_cgroup_resources_ struct hull_cgroup_resources res;
    spec_cgroup_resources(r, &res);
    *json_out = hull_ocispec_resources_to_json(&res);
    return 0;
}
