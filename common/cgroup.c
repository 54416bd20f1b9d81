/* The host's cgroup layout: see cgroup.h. */
#include "common/cgroup.h"

#include <errno.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CGROUP_ROOT "/sys/fs/cgroup"

const char *hull_cgroup_mode_name(int mode)
{
    switch (mode) {
    case HULL_CGROUP_V1:
        return "v1";
    case HULL_CGROUP_HYBRID:
        return "hybrid";
    case HULL_CGROUP_V2:
        return "v2";
    default:
        return "none";
    }
}

bool hull_cgroup_is_controller_option(const char *o)
{
    static const char *const not_ctrl[] = {"rw",
                                           "ro",
                                           "relatime",
                                           "noatime",
                                           "strictatime",
                                           "nosuid",
                                           "nodev",
                                           "noexec",
                                           "clone_children",
                                           "noprefix",
                                           "xattr",
                                           "nsdelegate",
                                           "favordynmods",
                                           "memory_recursiveprot",
                                           "memory_localevents",
                                           "memory_hugetlb_accounting",
                                           "pids_localevents",
                                           NULL};
    if (*o == '\0' || strchr(o, ' ') || strncmp(o, "release_agent=", 14) == 0 ||
        strncmp(o, "cpuset_v2", 9) == 0)
        return false;
    for (const char *const *n = not_ctrl; *n; n++)
        if (strcmp(o, *n) == 0)
            return false;
    return true;
}

void hull_cgroup_layout_clear(struct hull_cgroup_layout *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->hiers[i].mountpoint);
        free(l->hiers[i].root);
        free(l->hiers[i].controllers);
    }
    free(l->hiers);
    memset(l, 0, sizeof(*l));
}

/* The controllers of a v1 mount from its super options, comma separated ("" if none). */
static char *controllers_of(const char *super)
{
    size_t cap = strlen(super) + 1, o = 0;
    char *out = xmalloc0(cap);
    _cleanup_free_ char *dup = xstrdup(super);
    char *save = NULL;
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!hull_cgroup_is_controller_option(t))
            continue;
        size_t n = strlen(t);
        if (o)
            out[o++] = ',';
        memcpy(out + o, t, n);
        o += n;
    }
    out[o] = '\0';
    return out;
}

void hull_cgroup_layout_from_mountinfo(const struct hull_mountinfo *mi, const char *cgroup_root,
                                       struct hull_cgroup_layout *out)
{
    memset(out, 0, sizeof(*out));
    const char *root = cgroup_root ? cgroup_root : DEFAULT_CGROUP_ROOT;
    bool v1 = false, v2 = false, v2_at_root = false;
    for (size_t i = 0; i < mi->n; i++) {
        const struct hull_mountinfo_entry *e = &mi->v[i];
        bool is_v2 = strcmp(e->fstype, "cgroup2") == 0;
        if (!is_v2 && strcmp(e->fstype, "cgroup") != 0)
            continue;
        if (cgroup_root && !hull_path_at_or_below(e->mount_point, cgroup_root))
            continue;
        bool at_root = is_v2 && hull_path_at_or_below(e->mount_point, root) &&
                       hull_path_at_or_below(root, e->mount_point);
        _cleanup_free_ char *ctrls = is_v2 ? xstrdup("") : controllers_of(e->super_options);
        if (!is_v2 && *ctrls == '\0')
            continue;
        /* the same hierarchy mounted twice: keep the first (cgroup2: the one on the root) */
        struct hull_cgroup_hier *h = NULL;
        for (size_t j = 0; j < out->n && h == NULL; j++)
            if (out->hiers[j].v2 == is_v2 && strcmp(out->hiers[j].controllers, ctrls) == 0)
                h = &out->hiers[j];
        if (h && !(at_root && !v2_at_root))
            continue;
        if (h == NULL) {
            out->hiers = xrealloc(out->hiers, (out->n + 1) * sizeof(*out->hiers));
            h = &out->hiers[out->n++];
        } else {
            free(h->mountpoint);
            free(h->root);
            free(h->controllers);
        }
        h->mountpoint = xstrdup(e->mount_point);
        h->root = xstrdup(e->root);
        h->controllers = hull_steal(ctrls);
        h->v2 = is_v2;
        if (is_v2) {
            v2 = true;
            v2_at_root = v2_at_root || at_root;
        } else {
            v1 = true;
        }
    }
    if (v2_at_root || (v2 && !v1))
        out->mode = HULL_CGROUP_V2;
    else if (v1 && v2)
        out->mode = HULL_CGROUP_HYBRID;
    else if (v1)
        out->mode = HULL_CGROUP_V1;
    else
        out->mode = HULL_CGROUP_NONE;
    if (out->mode == HULL_CGROUP_V2) {
        /* only the unified hierarchy matters */
        size_t w = 0;
        for (size_t i = 0; i < out->n; i++) {
            if (out->hiers[i].v2) {
                out->hiers[w++] = out->hiers[i];
            } else {
                free(out->hiers[i].mountpoint);
                free(out->hiers[i].root);
                free(out->hiers[i].controllers);
            }
        }
        out->n = w;
    }
}

void hull_cgroup_layout_parse(const char *mountinfo, const char *cgroup_root,
                              struct hull_cgroup_layout *out)
{
    struct hull_mountinfo mi;
    hull_mountinfo_parse(mountinfo, &mi);
    hull_cgroup_layout_from_mountinfo(&mi, cgroup_root, out);
    hull_mountinfo_clear(&mi);
}

int hull_cgroup_layout_detect(const char *cgroup_root, struct hull_cgroup_layout *out,
                              hull_error_t *err)
{
    memset(out, 0, sizeof(*out));
    struct hull_mountinfo mi;
    int r = hull_mountinfo_read(NULL, &mi, err);
    if (r < 0)
        return r;
    hull_cgroup_layout_from_mountinfo(&mi, cgroup_root, out);
    hull_mountinfo_clear(&mi);
    return 0;
}

static bool is_file_in(const char *dir, const char *name)
{
    _cleanup_free_ char *p = hull_path_join(dir, name);
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static struct hull_cgroup_hier *add_hier(struct hull_cgroup_layout *l, const char *mountpoint,
                                         const char *controllers, bool v2)
{
    l->hiers = xrealloc(l->hiers, (l->n + 1) * sizeof(*l->hiers));
    struct hull_cgroup_hier *h = &l->hiers[l->n++];
    h->mountpoint = xstrdup(mountpoint);
    h->root = xstrdup("/");
    h->controllers = xstrdup(controllers);
    h->v2 = v2;
    return h;
}

/* A fixture tree: see hull_cgroup_layout_load. */
static void layout_from_files(const char *root, struct hull_cgroup_layout *out)
{
    memset(out, 0, sizeof(*out));
    if (is_file_in(root, "cgroup.controllers")) {
        add_hier(out, root, "", true);
        out->mode = HULL_CGROUP_V2;
        return;
    }
    _cleanup_closedir_ DIR *d = opendir(root);
    if (d == NULL)
        return;
    size_t cap = 0;
    _cleanup_free_ struct stat *ids = NULL; /* the directory of each v1 hierarchy */
    _cleanup_free_ bool *linked = NULL;     /* ... when only seen through a symlink so far */
    bool v1 = false, v2 = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        _cleanup_free_ char *p = hull_path_join(root, e->d_name);
        struct stat st, lst;
        if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode) || lstat(p, &lst) < 0)
            continue;
        bool link = S_ISLNK(lst.st_mode);
        if (strcmp(e->d_name, "unified") == 0) {
            if (!v2 && is_file_in(p, "cgroup.controllers")) {
                add_hier(out, p, "", true);
                v2 = true;
            }
            continue;
        }
        struct hull_cgroup_hier *same = NULL;
        size_t k = 0;
        for (size_t i = 0; i < out->n && same == NULL; i++)
            if (!out->hiers[i].v2 && ids[i].st_dev == st.st_dev && ids[i].st_ino == st.st_ino)
                same = &out->hiers[k = i];
        if (same) { /* "cpu" -> "cpu,cpuacct": one hierarchy under two names */
            _cleanup_free_ char *old = same->controllers;
            same->controllers = xasprintf("%s,%s", old, e->d_name);
            if (linked[k] && !link) {
                free(same->mountpoint);
                same->mountpoint = hull_steal(p);
                linked[k] = false;
            }
            continue;
        }
        if (out->n + 1 > cap) {
            cap = (out->n + 1) * 2;
            ids = xrealloc(ids, cap * sizeof(*ids));
            linked = xrealloc(linked, cap * sizeof(*linked));
        }
        ids[out->n] = st;
        linked[out->n] = link;
        add_hier(out, p, e->d_name, false);
        v1 = true;
    }
    out->mode = v1   ? (v2 ? HULL_CGROUP_HYBRID : HULL_CGROUP_V1)
                : v2 ? HULL_CGROUP_V2
                     : HULL_CGROUP_NONE;
}

int hull_cgroup_layout_load(const char *cgroup_root, const char *mountinfo,
                            struct hull_cgroup_layout *out, hull_error_t *err)
{
    _cleanup_free_ char *root =
        xstrdup(cgroup_root && *cgroup_root ? cgroup_root : DEFAULT_CGROUP_ROOT);
    for (size_t n = strlen(root); n > 1 && root[n - 1] == '/';)
        root[--n] = '\0';
    memset(out, 0, sizeof(*out));
    if (mountinfo)
        hull_cgroup_layout_parse(mountinfo, root, out);
    if (out->n == 0) {
        hull_cgroup_layout_clear(out);
        layout_from_files(root, out);
    }
    if (out->n == 0 || out->mode == HULL_CGROUP_NONE) {
        hull_cgroup_layout_clear(out);
        return hull_error_setx(err, ENOENT, "no cgroup hierarchy found at `%s`", root);
    }
    return 0;
}

int hull_cgroup_layout_open(const char *cgroup_root, struct hull_cgroup_layout *out,
                            hull_error_t *err)
{
    _cleanup_free_ char *mi = NULL;
    _cleanup_error_ hull_error_t ignored = NULL;
    if (hull_read_file("/proc/self/mountinfo", 16u << 20, &mi, NULL, &ignored) < 0)
        mi = NULL; /* the files alone */
    return hull_cgroup_layout_load(cgroup_root, mi, out, err);
}

bool hull_cgroup_layout_has_controller(const struct hull_cgroup_layout *l, const char *controller)
{
    if (l->mode != HULL_CGROUP_V2)
        return hull_cgroup_layout_find(l, controller) != NULL;
    const struct hull_cgroup_hier *h = hull_cgroup_layout_find(l, NULL);
    if (h == NULL)
        return false;
    _cleanup_free_ char *p = hull_path_join(h->mountpoint, "cgroup.controllers");
    _cleanup_free_ char *c = NULL;
    if (hull_read_file(p, 4096, &c, NULL, NULL) < 0)
        return false;
    bool has = false;
    for (char *save = NULL, *t = strtok_r(c, " \n", &save); t && !has;
         t = strtok_r(NULL, " \n", &save))
        has = strcmp(t, controller) == 0;
    return has;
}

const struct hull_cgroup_hier *hull_cgroup_layout_find(const struct hull_cgroup_layout *l,
                                                       const char *controller)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct hull_cgroup_hier *h = &l->hiers[i];
        if (controller == NULL || *controller == '\0'
                ? h->v2
                : !h->v2 && hull_option_list_has(h->controllers, controller))
            return h;
    }
    return NULL;
}

char *hull_proc_cgroup_lookup(const char *proc_cgroup, const char *controller)
{
    bool v2 = controller == NULL || *controller == '\0';
    for (const char *s = proc_cgroup ? proc_cgroup : ""; *s;) {
        const char *nl = strchrnul(s, '\n');
        const char *c1 = memchr(s, ':', (size_t)(nl - s));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(nl - c1 - 1)) : NULL;
        if (c2) {
            _cleanup_free_ char *ctrls = xstrndup(c1 + 1, (size_t)(c2 - c1 - 1));
            if (v2 ? *ctrls == '\0' : hull_option_list_has(ctrls, controller))
                return xstrndup(c2 + 1, (size_t)(nl - c2 - 1));
        }
        s = *nl ? nl + 1 : nl;
    }
    return NULL;
}

bool hull_is_cgroup2_mount(const char *path)
{
    struct statfs s;
    return statfs(path, &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC;
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

int hull_cgroup_read_procs(const char *procs, pid_t **out, size_t *n_out, hull_error_t *err)
{
    *out = NULL;
    *n_out = 0;
    _cleanup_free_ char *text = NULL;
    int r = hull_read_file(procs, 16u << 20, &text, NULL, err);
    if (r < 0)
        return r;
    size_t n = 0, cap = 16;
    pid_t *v = xmalloc0(cap * sizeof(pid_t));
    for (char *p = text; *p;) {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        if (pid > 0 && pid != getpid()) {
            if (n == cap) {
                cap *= 2;
                v = xrealloc(v, cap * sizeof(pid_t));
            }
            v[n++] = (pid_t)pid;
        }
        p = end;
        while (*p == '\n')
            p++;
    }
    *out = v;
    *n_out = n;
    return 0;
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

int hull_cgroup_signal_procs(const char *procs, int sig, hull_error_t *err)
{
    _cleanup_free_ pid_t *pids = NULL, *now = NULL;
    size_t n = 0, m = 0;
    int r = hull_cgroup_read_procs(procs, &pids, &n, err);
    if (r < 0)
        return r;
    _cleanup_free_ int *fds = xmalloc0((n ? n : 1) * sizeof(int));
    for (size_t i = 0; i < n; i++) {
        fds[i] = (int)syscall(SYS_pidfd_open, pids[i], 0);
        if (fds[i] < 0)
            fds[i] = -errno; /* ESRCH: gone already; ENOSYS: no pidfds, plain kill */
    }
    _cleanup_error_ hull_error_t re = NULL;
    r = n > 0 ? hull_cgroup_read_procs(procs, &now, &m, &re) : 0;
    if (r == 0 && m > 1)
        qsort(now, m, sizeof(pid_t), cmp_pid);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        bool listed = r == 0 && bsearch(&pids[i], now, m, sizeof(pid_t), cmp_pid) != NULL;
        int kr = 0;
        if (listed && fds[i] >= 0)
            kr = (int)syscall(SYS_pidfd_send_signal, fds[i], sig, NULL, 0);
        else if (listed && fds[i] == -ENOSYS)
            kr = kill(pids[i], sig);
        if (kr < 0 && errno != ESRCH && failed++ == 0)
            hull_error_set(err, errno, "kill %d", (int)pids[i]);
        if (fds[i] >= 0)
            close(fds[i]);
    }
    if (r < 0) /* the second read failed: nothing proves a pid is still the one listed */
        return hull_error_setx(err, -r, "%s", hull_error_msg(&re));
    return failed;
}

char **hull_cgroup_mount_points(size_t *n_out)
{
    char **out = xmalloc0(sizeof(char *));
    size_t n = 0;
    struct hull_mountinfo mi;
    _cleanup_error_ hull_error_t err = NULL;
    if (hull_mountinfo_read(NULL, &mi, &err) < 0) {
        *n_out = 0;
        return out;
    }
    for (size_t i = 0; i < mi.n; i++) {
        if (strcmp(mi.v[i].fstype, "cgroup") != 0 && strcmp(mi.v[i].fstype, "cgroup2") != 0)
            continue;
        out = xrealloc(out, (n + 2) * sizeof(char *));
        out[n++] = xstrdup(mi.v[i].mount_point);
        out[n] = NULL;
    }
    hull_mountinfo_clear(&mi);
    *n_out = n;
    return out;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int remove_tree(const char *dir, int depth, unsigned flags, hull_error_t *err)
{
    if (depth > 16)
        return hull_error_setx(err, ELOOP, "remove cgroup `%s`: too deep", dir);
    int ret = 0;
    {
        _cleanup_closedir_ DIR *d = opendir(dir);
        if (d == NULL)
            return errno == ENOENT ? 0 : hull_error_set(err, errno, "remove cgroup `%s`", dir);
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_type != DT_DIR || de->d_name[0] == '.')
                continue;
            _cleanup_free_ char *sub = hull_path_join(dir, de->d_name);
            _cleanup_error_ hull_error_t se = NULL;
            int r = remove_tree(sub, depth + 1, flags, &se);
            if (r < 0 && ret == 0)
                ret = hull_error_setx(err, -r, "%s", hull_error_msg(&se));
        }
    }
    _cleanup_free_ char *procs = hull_path_join(dir, "cgroup.procs");
    bool kill_procs = flags & HULL_CGROUP_RM_KILL;
    if (kill_procs) {
        /* frozen (paused) tasks do not die: thaw them first */
        _cleanup_free_ char *v1 = hull_path_join(dir, "freezer.state");
        _cleanup_free_ char *v2 = hull_path_join(dir, "cgroup.freeze");
        _cleanup_error_ hull_error_t e1 = NULL, e2 = NULL;
        if (access(v1, F_OK) == 0)
            hull_write_string(v1, "THAWED", &e1);
        if (access(v2, F_OK) == 0)
            hull_write_string(v2, "0", &e2);
    }
    int attempts = kill_procs ? 100 : (flags & HULL_CGROUP_RM_WAIT) ? 200 : 1;
    for (int attempt = 0; attempt < attempts; attempt++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return ret;
        if (errno != EBUSY)
            break;
        if (kill_procs) {
            /* the one kill sequence: pidfd-pinned, re-checked */
            _cleanup_error_ hull_error_t ke = NULL;
            if (hull_cgroup_signal_procs(procs, SIGKILL, &ke) < 0 && access(procs, F_OK) < 0)
                break;
            sleep_ms(20);
        } else if (attempt + 1 < attempts) {
            sleep_ms(attempt < 20 ? 1 : 10);
        }
    }
    int e = errno;
    if (ret == 0)
        ret = hull_error_set(err, e, "remove cgroup `%s`", dir);
    return ret;
}

int hull_cgroup_remove_tree(const char *dir, unsigned flags, hull_error_t *err)
{
    return remove_tree(dir, 0, flags, err);
}

bool hull_cgroup_kv_get(const char *text, const char *key, uint64_t *v)
{
    size_t kl = strlen(key);
    for (const char *l = text; l && *l;) {
        if (strncmp(l, key, kl) == 0 && l[kl] == ' ') {
            const char *n = l + kl + 1;
            while (*n == ' ' || *n == '\t')
                n++;
            if (*n < '0' || *n > '9')
                return false;
            errno = 0;
            char *end = NULL;
            unsigned long long x = strtoull(n, &end, 10);
            if (errno != 0 || (*end != '\0' && *end != '\n' && *end != ' '))
                return false;
            *v = x;
            return true;
        }
        l = strchr(l, '\n');
        if (l)
            l++;
    }
    return false;
}

long long hull_cgroup_oom_kills(const char *dir, bool v2)
{
    _cleanup_free_ char *p = hull_path_join(dir, v2 ? "memory.events" : "memory.oom_control");
    _cleanup_free_ char *text = NULL;
    uint64_t v = 0;
    if (hull_read_file(p, 8192, &text, NULL, NULL) < 0 || !hull_cgroup_kv_get(text, "oom_kill", &v))
        return -1;
    return v > (uint64_t)LLONG_MAX ? LLONG_MAX : (long long)v;
}
