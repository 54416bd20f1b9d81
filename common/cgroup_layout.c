/* The host's cgroup layout (v1, hybrid, unified) and a process's cgroup: see cgroup.h. */
#include "common/cgroup_internal.h"

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
