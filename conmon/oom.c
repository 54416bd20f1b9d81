/* OOM-kill detection for the monitored process's cgroup.
 *
 * cgroup v1: an eventfd registered on memory.oom_control through cgroup.event_control fires on
 * every OOM in the cgroup (and when the cgroup is removed); cgroup v2: inotify on
 * memory.events.  Either way the truth is the "oom_kill N" counter (kernel >= 4.13), compared
 * with its value when the watch started; the event only tells when to look. */
#define HULL_CONMON_INTERNAL
#include "conmon/conmon.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>

long long oom_parse_kill_count(const char *text)
{
    const char *p = text;
    while (p && *p) {
        if (strncmp(p, "oom_kill ", 9) == 0)
            return strtoll(p + 9, NULL, 10);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

static long long read_kill_count(const char *path)
{
    _cleanup_error_ hull_error_t err = NULL;
    _cleanup_free_ char *text = NULL;
    if (path == NULL || hull_read_file(path, 8192, &text, NULL, &err) < 0)
        return -1;
    return oom_parse_kill_count(text);
}

/* Mount point of the cgroup hierarchy holding the memory controller (v1) or of cgroup2. */
static char *cgroup_mount(bool v2)
{
    _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
    if (f == NULL)
        return NULL;
    _cleanup_free_ char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        char *sep = strstr(line, " - ");
        if (sep == NULL)
            continue;
        char fstype[32], super[512];
        if (sscanf(sep + 3, "%31s %*s %511s", fstype, super) != 2)
            continue;
        if (v2 ? strcmp(fstype, "cgroup2") != 0 : strcmp(fstype, "cgroup") != 0)
            continue;
        if (!v2) {
            bool mem = false;
            for (char *save = NULL, *o = strtok_r(super, ",", &save); o;
                 o = strtok_r(NULL, ",", &save))
                mem = mem || strcmp(o, "memory") == 0;
            if (!mem)
                continue;
        }
        char mnt[4096];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
            continue;
        return xstrdup(mnt);
    }
    return NULL;
}

char *oom_cgroup_dir(pid_t pid, bool *v2)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    _cleanup_fclose_ FILE *f = fopen(path, "re");
    if (f == NULL)
        return NULL;
    _cleanup_free_ char *line = NULL, *v1path = NULL, *v2path = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            line[n - 1] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL)
            continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1, *cg = c2 + 1;
        if (strcmp(line, "0") == 0 && ctrls[0] == '\0') {
            free(v2path);
            v2path = xstrdup(cg);
            continue;
        }
        _cleanup_free_ char *dup = xstrdup(ctrls);
        for (char *save = NULL, *o = strtok_r(dup, ",", &save); o; o = strtok_r(NULL, ",", &save))
            if (strcmp(o, "memory") == 0) {
                free(v1path);
                v1path = xstrdup(cg);
            }
    }
    *v2 = v1path == NULL;
    const char *rel = v1path ? v1path : v2path;
    /* the root cgroup means "not in a container cgroup" (or a zombie, whose cgroup reads as
     * the root): watching it would report every OOM on the host */
    if (rel == NULL || strcmp(rel, "/") == 0 || rel[0] == '\0')
        return NULL;
    _cleanup_free_ char *mnt = cgroup_mount(*v2);
    if (mnt == NULL)
        return NULL;
    return hull_path_join(mnt, rel);
}

void oom_watch_init(struct oom_watch *w, pid_t pid)
{
    bool v2 = false;
    _cleanup_free_ char *dir = oom_cgroup_dir(pid, &v2);
    if (dir == NULL) {
        memset(w, 0, sizeof(*w));
        w->fd = w->ctl_fd = -1;
        w->base_kills = -1;
        log_warn("oom: no memory cgroup found for pid %d", (int)pid);
        return;
    }
    oom_watch_init_dir(w, dir, v2);
}

void oom_watch_init_dir(struct oom_watch *w, const char *dir, bool v2)
{
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    w->ctl_fd = -1;
    w->base_kills = -1;
    if (v2) {
        w->counter_path = hull_path_join(dir, "memory.events");
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

void oom_watch_event(struct oom_watch *w)
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
    /* No counter: trust the event unless it only says the cgroup went away. */
    if (w->counter_path && access(w->counter_path, F_OK) == 0)
        w->fired = true;
}

bool oom_watch_killed(struct oom_watch *w)
{
    if (w->fired)
        return true;
    if (w->base_kills < 0)
        return false;
    return read_kill_count(w->counter_path) > w->base_kills;
}

void oom_watch_free(struct oom_watch *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->ctl_fd >= 0)
        close(w->ctl_fd);
    free(w->counter_path);
    w->fd = w->ctl_fd = -1;
    w->counter_path = NULL;
}
