/* The base of the stats readers (numbers, "key value" files, OOM counters) and the OOM watch:
 * see cgroup.h. */
#include "common/cgroup_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- numbers ------------------------------------------------------------------------------ */
bool cg_parse_u64(const char *s, uint64_t *v, bool *unlimited)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (unlimited)
        *unlimited = false;
    if (strncmp(s, "max", 3) == 0 && (s[3] == '\0' || s[3] == '\n' || s[3] == ' ')) {
        if (unlimited == NULL)
            return false;
        *unlimited = true;
        *v = UINT64_MAX;
        return true;
    }
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno != 0 || (*end != '\0' && *end != '\n' && *end != ' '))
        return false;
    *v = x;
    return true;
}

bool hull_cgroup_kv_get(const char *text, const char *key, uint64_t *v)
{
    size_t kl = strlen(key);
    for (const char *l = text; l && *l;) {
        if (strncmp(l, key, kl) == 0 && l[kl] == ' ')
            return cg_parse_u64(l + kl + 1, v, NULL);
        l = strchr(l, '\n');
        if (l)
            l++;
    }
    return false;
}

/* ---- OOM counters --------------------------------------------------------------------------- */
long long hull_cgroup_oom_parse(const char *text)
{
    uint64_t v = 0;
    if (text == NULL || !hull_cgroup_kv_get(text, "oom_kill", &v))
        return -1;
    return v > (uint64_t)LLONG_MAX ? LLONG_MAX : (long long)v;
}

static long long read_kill_count(const char *path)
{
    _cleanup_error_ hull_error_t err = NULL;
    _cleanup_free_ char *text = NULL;
    if (path == NULL || hull_read_file(path, 8192, &text, NULL, &err) < 0)
        return -1;
    return hull_cgroup_oom_parse(text);
}

long long hull_cgroup_oom_kills(const char *dir, bool v2)
{
    _cleanup_free_ char *p = hull_path_join(dir, v2 ? "memory.events" : "memory.oom_control");
    return read_kill_count(p);
}

/* ---- OOM watch ------------------------------------------------------------------------------ */
char *hull_cgroup_memory_dir_of(pid_t pid, bool *v2)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    _cleanup_error_ hull_error_t err = NULL;
    _cleanup_free_ char *text = NULL;
    if (hull_read_file(path, 1u << 20, &text, NULL, &err) < 0)
        return NULL;
    /* the memory controller's v1 hierarchy, else cgroup2 */
    _cleanup_free_ char *rel = hull_proc_cgroup_lookup(text, "memory");
    *v2 = rel == NULL;
    if (rel == NULL)
        rel = hull_proc_cgroup_lookup(text, NULL);
    /* the root cgroup means "not in a container cgroup" (or a zombie, whose cgroup reads as
     * the root): watching it would report every OOM on the host */
    if (rel == NULL || strcmp(rel, "/") == 0 || rel[0] == '\0')
        return NULL;
    struct hull_cgroup_layout l;
    if (hull_cgroup_layout_detect(NULL, &l, &err) < 0)
        return NULL;
    const struct hull_cgroup_hier *h = hull_cgroup_layout_find(&l, *v2 ? NULL : "memory");
    char *dir = h ? hull_path_join(h->mountpoint, rel) : NULL;
    hull_cgroup_layout_clear(&l);
    return dir;
}

void hull_cgroup_oom_watch_init(struct hull_cgroup_oom_watch *w, pid_t pid)
{
    bool v2 = false;
    _cleanup_free_ char *dir = hull_cgroup_memory_dir_of(pid, &v2);
    if (dir == NULL) {
        memset(w, 0, sizeof(*w));
        w->fd = w->ctl_fd = -1;
        w->base_kills = -1;
        log_warn("oom: no memory cgroup found for pid %d", (int)pid);
        return;
    }
    hull_cgroup_oom_watch_init_dir(w, dir, v2);
}

void hull_cgroup_oom_watch_init_dir(struct hull_cgroup_oom_watch *w, const char *dir, bool v2)
{
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    w->ctl_fd = -1;
    w->base_kills = -1;
    w->parent_base_kills = -1;
    if (v2) {
        w->counter_path = hull_path_join(dir, "memory.events");
        _cleanup_free_ char *parent = xstrdup(dir);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = '\0';
            w->parent_path = hull_path_join(parent, "memory.events");
            w->parent_base_kills = read_kill_count(w->parent_path);
        }
        w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (w->fd >= 0 && inotify_add_watch(w->fd, w->counter_path, IN_MODIFY) < 0) {
            log_warn("oom: inotify on `%s`: %s", w->counter_path, strerror(errno));
            close(w->fd);
            w->fd = -1;
        }
    } else {
        w->counter_path = hull_path_join(dir, "memory.oom_control");
        _cleanup_free_ char *evctl = hull_path_join(dir, "cgroup.event_control");
        w->ctl_fd = open(w->counter_path, O_RDONLY | O_CLOEXEC);
        w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        char reg[64];
        snprintf(reg, sizeof(reg), "%d %d", w->fd, w->ctl_fd);
        _cleanup_error_ hull_error_t err = NULL;
        if (w->ctl_fd < 0 || w->fd < 0 || hull_write_string(evctl, reg, &err) < 0) {
            log_warn("oom: cannot register on `%s`: %s", dir,
                     err ? hull_error_msg(&err) : strerror(errno));
            if (w->fd >= 0)
                close(w->fd);
            w->fd = -1;
        }
    }
    w->base_kills = read_kill_count(w->counter_path);
    log_debug("oom: watching `%s` (oom_kill %lld)", w->counter_path, w->base_kills);
}

/* The cgroup is gone: did its parent count a kill since the watch began? */
static bool parent_killed(struct hull_cgroup_oom_watch *w)
{
    if (w->parent_path == NULL || w->parent_base_kills < 0)
        return false;
    return read_kill_count(w->parent_path) > w->parent_base_kills;
}

void hull_cgroup_oom_watch_event(struct hull_cgroup_oom_watch *w)
{
    char buf[4096];
    while (read(w->fd, buf, sizeof(buf)) > 0)
        ;
    long long now = read_kill_count(w->counter_path);
    if (now >= 0 && w->base_kills >= 0) {
        if (now > w->base_kills)
            w->fired = true;
        return;
    }
    if (now < 0 && parent_killed(w)) {
        w->fired = true;
        return;
    }
    /* No counter: trust the event unless it only says the cgroup went away. */
    if (w->counter_path && access(w->counter_path, F_OK) == 0)
        w->fired = true;
}

bool hull_cgroup_oom_watch_killed(struct hull_cgroup_oom_watch *w)
{
    if (w->fired)
        return true;
    if (w->base_kills < 0)
        return false;
    long long now = read_kill_count(w->counter_path);
    return now < 0 ? parent_killed(w) : now > w->base_kills;
}

void hull_cgroup_oom_watch_free(struct hull_cgroup_oom_watch *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->ctl_fd >= 0)
        close(w->ctl_fd);
    free(w->counter_path);
    free(w->parent_path);
    w->fd = w->ctl_fd = -1;
    w->counter_path = w->parent_path = NULL;
}
