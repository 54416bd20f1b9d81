/* The cgroup library's lowest layer: the file helpers every writer shares
 * (cgroup_internal.h), the typed resources' constructors and conversions, and path safety
 * (cgroup.h).  Calls nothing else of the library. */
#include "common/cgroup_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- file helpers (cgroup_internal.h) ------------------------------------------------------ */
int cg_write(const char *dir, const char *file, const char *value, hull_error_t *err)
{
    _cleanup_free_ char *p = hull_path_join(dir, file);
    /* O_TRUNC as runc: no effect on cgroupfs, keeps fixture trees exact */
    _cleanup_close_ int fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return hull_error_set(err, errno, "open `%s`", p);
    size_t len = strlen(value);
    ssize_t w = write(fd, value, len);
    if (w != (ssize_t)len)
        return hull_error_set(err, w < 0 ? errno : EIO, "write `%s` to `%s`", value, p);
    return 0;
}

int cg_write_u64(const char *dir, const char *file, uint64_t v, hull_error_t *err)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return cg_write(dir, file, buf, err);
}

int cg_write_i64(const char *dir, const char *file, int64_t v, hull_error_t *err)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return cg_write(dir, file, buf, err);
}

int cg_write_max(const char *dir, const char *file, int64_t v, hull_error_t *err)
{
    if (v < 0 || v == INT64_MAX)
        return cg_write(dir, file, "max", err);
    return cg_write_i64(dir, file, v, err);
}

char *cg_read(const char *dir, const char *file)
{
    _cleanup_free_ char *p = hull_path_join(dir, file);
    char *out = NULL;
    _cleanup_error_ hull_error_t e = NULL;
    if (hull_read_file(p, 1u << 20, &out, NULL, &e) < 0)
        return NULL;
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    return out;
}

bool cg_exists(const char *dir, const char *file)
{
    _cleanup_free_ char *p = hull_path_join(dir, file);
    return access(p, F_OK) == 0;
}

/* ---- resources ----------------------------------------------------------------------------- */
void hull_cgroup_resources_init(struct hull_cgroup_resources *r)
{
    memset(r, 0, sizeof(*r));
    r->memory.limit = r->memory.swap = r->memory.reservation = HULL_CG_UNSET;
    r->memory.kernel = r->memory.kernel_tcp = r->memory.swappiness = HULL_CG_UNSET;
    r->memory.disable_oom_killer = -1;
    r->cpu.shares = r->cpu.quota = r->cpu.period = HULL_CG_UNSET;
    r->cpu.realtime_runtime = r->cpu.realtime_period = r->cpu.idle = HULL_CG_UNSET;
    r->pids_limit = HULL_CG_UNSET;
    r->blkio.weight = r->blkio.leaf_weight = HULL_CG_UNSET;
    r->net_cls_classid = HULL_CG_UNSET;
}

void hull_cgroup_resources_clear(struct hull_cgroup_resources *r)
{
    free(r->devices);
    free(r->cpu.cpus);
    free(r->cpu.mems);
    free(r->blkio.weight_device);
    for (size_t i = 0; i < HULL_CG_N_THROTTLE; i++)
        free(r->blkio.throttle[i]);
    for (size_t i = 0; i < r->n_hugetlb; i++)
        free(r->hugetlb[i].page_size);
    free(r->hugetlb);
    for (size_t i = 0; i < r->n_unified; i++) {
        free(r->unified[i].key);
        free(r->unified[i].value);
    }
    free(r->unified);
    hull_cgroup_resources_init(r);
}

void hull_cgroup_resources_add_dev(struct hull_cgroup_dev_value **v, size_t *n, int64_t major,
                                   int64_t minor, int64_t value)
{
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = (struct hull_cgroup_dev_value){major, minor, value};
}

void hull_cgroup_resources_add_hugetlb(struct hull_cgroup_resources *r, const char *page_size,
                                       int64_t limit)
{
    r->hugetlb = xrealloc(r->hugetlb, (r->n_hugetlb + 1) * sizeof(*r->hugetlb));
    r->hugetlb[r->n_hugetlb++] =
        (struct hull_cgroup_hugetlb){page_size ? xstrdup(page_size) : NULL, limit};
}

void hull_cgroup_resources_add_unified(struct hull_cgroup_resources *r, const char *key,
                                       const char *value)
{
    r->unified = xrealloc(r->unified, (r->n_unified + 1) * sizeof(*r->unified));
    r->unified[r->n_unified++] =
        (struct hull_cgroup_unified){xstrdup(key ? key : ""), value ? xstrdup(value) : NULL};
}

void hull_cgroup_resources_add_device(struct hull_cgroup_resources *r,
                                      struct hull_cgroup_device_rule rule)
{
    r->devices = xrealloc(r->devices, (r->n_devices + 1) * sizeof(*r->devices));
    r->devices[r->n_devices++] = rule;
}

const char *hull_cgroup_device_access_string(unsigned access, char buf[4])
{
    char *p = buf;
    if (access & HULL_CG_DEV_READ)
        *p++ = 'r';
    if (access & HULL_CG_DEV_WRITE)
        *p++ = 'w';
    if (access & HULL_CG_DEV_MKNOD)
        *p++ = 'm';
    *p = '\0';
    return buf;
}

unsigned hull_cgroup_device_access_bits(const char *access)
{
    unsigned bits = 0;
    if (access == NULL || access[0] == '\0')
        return HULL_CG_DEV_RWM;
    for (const char *a = access; *a; a++) {
        if (*a == 'r')
            bits |= HULL_CG_DEV_READ;
        else if (*a == 'w')
            bits |= HULL_CG_DEV_WRITE;
        else if (*a == 'm')
            bits |= HULL_CG_DEV_MKNOD;
        else
            return 0;
    }
    return bits;
}

uint64_t hull_cgroup_shares_to_weight(uint64_t shares)
{
    if (shares == 0)
        return 0;
    if (shares < 2)
        shares = 2;
    if (shares > 262144)
        shares = 262144;
    return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t hull_cgroup_blkio_to_io_weight(uint64_t weight)
{
    if (weight == 0)
        return 0;
    if (weight < 10)
        weight = 10;
    if (weight > 1000)
        weight = 1000;
    return 1 + (weight - 10) * 9999 / 990;
}

uint64_t hull_cgroup_quota_per_sec(int64_t quota, int64_t period)
{
    if (quota < 0 || quota == INT64_MAX)
        return UINT64_MAX;
    uint64_t per = period != HULL_CG_UNSET && period > 0 ? (uint64_t)period : 100000;
    uint64_t per_sec = (uint64_t)quota * 1000000ull / per;
    /* systemd keeps the quota in 10 ms steps: round up as runc does */
    if (per_sec % 10000)
        per_sec = (per_sec / 10000 + 1) * 10000;
    return per_sec;
}

/* ---- paths --------------------------------------------------------------------------------- */
bool hull_cgroup_path_safe(const char *path)
{
    if (path == NULL)
        return true;
    if (strlen(path) > 4096)
        return false;
    for (const char *c = path; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\')
            return false;
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        size_t len = strcspn(p, "/");
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += len;
    }
    return true;
}
