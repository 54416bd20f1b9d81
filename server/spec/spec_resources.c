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
        if (empty(k) || strchr(k, '/') || k[0] == '.' || spec_has_control_chars(k))
            return hull_error_setx(err, EINVAL, "unified: invalid cgroup file name \"%s\"", k);
        if (strchr(v, '\n') || strchr(v, '\r'))
            return hull_error_setx(err, EINVAL, "unified %s: value contains a newline", k);
    }
    return 0;
}

bool spec_host_is_cgroup2(void)
{
    return hull_is_cgroup2_mount("/sys/fs/cgroup");
}

/* Whether the runtime can set hugetlb limits: runc fails the whole container ("cannot set
 * hugetlb limit") when the controller is not mounted, and kubelet sends limits (0) for every
 * page size the node has, so they are left out when there is no hugetlb controller. */
static bool host_has_hugetlb(void)
{
    _cleanup_cgroup_layout_ struct hull_cgroup_layout l;
    if (hull_cgroup_layout_open(NULL, &l, NULL) < 0)
        return false;
    return hull_cgroup_layout_has_controller(&l, "hugetlb");
}

/* Swap accounting (containerd sets swap only when the controller has it; runc cannot set
 * memsw without it). */
static bool host_has_swap_accounting(void)
{
    _cleanup_cgroup_layout_ struct hull_cgroup_layout l;
    if (hull_cgroup_layout_open(NULL, &l, NULL) < 0)
        return false;
    if (l.mode == HULL_CGROUP_V2)
        return true;
    const struct hull_cgroup_hier *h = hull_cgroup_layout_find(&l, "memory");
    _cleanup_free_ char *f =
        h ? hull_path_join(h->mountpoint, "memory.memsw.limit_in_bytes") : NULL;
    return f && access(f, F_OK) == 0;
}

void spec_jw_resources_body(struct hull_json_writer *w,
                            const Runtime__V1__LinuxContainerResources *r)
{
    if (r == NULL)
        return;
    bool swap = r->memory_swap_limit_in_bytes != 0 && host_has_swap_accounting();
    if (r->memory_limit_in_bytes > 0 || swap) {
        hull_jw_key(w, "memory");
        hull_jw_begin_object(w);
        if (r->memory_limit_in_bytes > 0)
            hull_jw_kv_int(w, "limit", r->memory_limit_in_bytes);
        if (swap)
            hull_jw_kv_int(w, "swap", r->memory_swap_limit_in_bytes);
        hull_jw_end_object(w);
    }
    if (r->cpu_shares || r->cpu_quota || r->cpu_period || !empty(r->cpuset_cpus) ||
        !empty(r->cpuset_mems)) {
        hull_jw_key(w, "cpu");
        hull_jw_begin_object(w);
        if (r->cpu_shares)
            hull_jw_kv_int(w, "shares", r->cpu_shares);
        if (r->cpu_quota)
            hull_jw_kv_int(w, "quota", r->cpu_quota);
        if (r->cpu_period)
            hull_jw_kv_int(w, "period", r->cpu_period);
        if (!empty(r->cpuset_cpus))
            hull_jw_kv_string(w, "cpus", r->cpuset_cpus);
        if (!empty(r->cpuset_mems))
            hull_jw_kv_string(w, "mems", r->cpuset_mems);
        hull_jw_end_object(w);
    }
    if (r->n_hugepage_limits && !host_has_hugetlb())
        log_debug("no hugetlb cgroup controller: hugepage limits left out");
    else if (r->n_hugepage_limits) {
        hull_jw_key(w, "hugepageLimits");
        hull_jw_begin_array(w);
        for (size_t i = 0; i < r->n_hugepage_limits; i++) {
            hull_jw_begin_object(w);
            hull_jw_kv_string(w, "pageSize", r->hugepage_limits[i]->page_size);
            char num[32];
            snprintf(num, sizeof(num), "%" PRIu64, r->hugepage_limits[i]->limit);
            hull_jw_key(w, "limit");
            yajl_gen_number(w->gen, num, strlen(num));
            hull_jw_end_object(w);
        }
        hull_jw_end_array(w);
    }
    if (r->n_unified) {
        hull_jw_key(w, "unified");
        hull_jw_begin_object(w);
        for (size_t i = 0; i < r->n_unified; i++)
            hull_jw_kv_string(w, S(r->unified[i]->key), S(r->unified[i]->value));
        hull_jw_end_object(w);
    }
}

int spec_resources_from_cri(const Runtime__V1__LinuxContainerResources *r, char **json_out,
                            hull_error_t *err)
{
    *json_out = NULL;
    int ret = spec_check_resources(r, err);
    if (ret < 0)
        return ret;
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    hull_jw_begin_object(&w);
    spec_jw_resources_body(&w, r);
    hull_jw_end_object(&w);
    *json_out = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    return 0;
}
