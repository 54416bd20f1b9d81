/* Runtime-spec config.json parsing and validation. */

#include "oci/oci.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <strings.h>

#define CONFIG_MAX (4u << 20)

int oci_cap_from_name(const char *name)
{
    /* the runtime spec names capabilities with their CAP_ prefix */
    if (name == NULL || strncasecmp(name, "CAP_", 4) != 0)
        return -1;
    return hull_cap_from_name(name);
}

static uint64_t capset(char *const *names)
{
    uint64_t set = 0;
    for (size_t i = 0; names && names[i]; i++) {
        int c = oci_cap_from_name(names[i]);
        if (c < 0) {
            /* runc ignores capabilities this build does not know, with a warning */
            log_warn("unknown capability `%s` ignored", names[i]);
            continue;
        }
        set |= 1ULL << c;
    }
    return set;
}

static const struct {
    const char *name;
    int value;
} rlimit_names[] = {
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
};

int oci_rlimit_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof(rlimit_names) / sizeof(rlimit_names[0]); i++)
        if (strcmp(name, rlimit_names[i].name) == 0)
            return rlimit_names[i].value;
    return -1;
}

void oci_process_clear(struct oci_process *p)
{
    hull_strv_free(p->args);
    hull_strv_free(p->env);
    free(p->cwd);
    free(p->user.gids);
    free(p->rlimits);
    free(p->apparmor);
    free(p->selinux);
    memset(p, 0, sizeof(*p));
}

static int user_from_model(const struct hull_ocispec_user *m, struct oci_user *u, hull_error_t *err)
{
    memset(u, 0, sizeof(*u));
    u->uid = m->uid;
    u->gid = m->gid;
    u->has_umask = m->has_umask;
    u->umask = m->umask;
    if (m->username)
        log_warn("process.user.username is ignored (only numeric ids are used)");
    size_t n = m->n_additional_gids;
    u->gids = xmalloc0((n + 1) * sizeof(uint32_t));
    /* The primary gid is always a supplementary group too (CVE-2023-25173). */
    u->gids[u->n_gids++] = u->gid;
    for (size_t i = 0; i < n; i++) {
        uint32_t g = m->additional_gids[i];
        bool dup = false;
        for (size_t j = 0; j < u->n_gids; j++)
            dup = dup || u->gids[j] == g;
        if (!dup)
            u->gids[u->n_gids++] = g;
    }
    (void)err;
    return 0;
}

static char **strv_copy(char *const *v)
{
    return v ? hull_strv_dup_n((const char *const *)v, hull_strv_len(v)) : xmalloc0(sizeof(char *));
}

int oci_process_from_model(const struct hull_ocispec_process *m, struct oci_process *p,
                           hull_error_t *err)
{
    memset(p, 0, sizeof(*p));
    p->terminal = m->terminal;
    if (m->has_console_size) {
        p->console_rows = (uint16_t)m->console_height;
        p->console_cols = (uint16_t)m->console_width;
    }
    if (user_from_model(&m->user, &p->user, err) < 0)
        return -EINVAL;
    p->args = strv_copy(m->args);
    p->env = strv_copy(m->env);
    p->cwd = xstrdup(m->cwd ? m->cwd : "/");
    if (m->has_capabilities) {
        p->caps.set = true;
        p->caps.bounding = capset(m->caps.bounding);
        p->caps.effective = capset(m->caps.effective);
        p->caps.inheritable = capset(m->caps.inheritable);
        p->caps.permitted = capset(m->caps.permitted);
        p->caps.ambient = capset(m->caps.ambient);
    }
    p->rlimits = xmalloc0((m->n_rlimits + 1) * sizeof(*p->rlimits));
    for (size_t i = 0; i < m->n_rlimits; i++) {
        int res = oci_rlimit_from_name(m->rlimits[i].type);
        if (res < 0)
            return hull_error_setx(err, EINVAL, "process.rlimits: unknown type `%s`",
                                   m->rlimits[i].type);
        struct oci_rlimit *o = &p->rlimits[p->n_rlimits++];
        o->resource = res;
        o->soft = m->rlimits[i].soft;
        o->hard = m->rlimits[i].hard;
    }
    p->no_new_privileges = m->no_new_privileges;
    p->has_oom_score_adj = m->has_oom_score_adj;
    p->oom_score_adj = m->oom_score_adj;
    if (m->apparmor_profile && *m->apparmor_profile)
        p->apparmor = xstrdup(m->apparmor_profile);
    if (m->selinux_label && *m->selinux_label)
        p->selinux = xstrdup(m->selinux_label);
    return 0;
}

int oci_process_parse(yajl_val node, struct oci_process *p, hull_error_t *err)
{
    struct hull_ocispec_process m = {0};
    int r = hull_ocispec_process_from_tree(node, &m, err);
    if (r == 0)
        r = oci_process_from_model(&m, p, err);
    hull_ocispec_process_clear(&m);
    return r;
}

/* ---- mounts ------------------------------------------------------------------------------ */
static const struct {
    const char *name;
    bool clear;
    unsigned long flag;
} mount_flags[] = {
    {"defaults", false, 0},
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"suid", true, MS_NOSUID},
    {"nosuid", false, MS_NOSUID},
    {"dev", true, MS_NODEV},
    {"nodev", false, MS_NODEV},
    {"exec", true, MS_NOEXEC},
    {"noexec", false, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},
    {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},
    {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},
    {"nomand", true, MS_MANDLOCK},
    {"atime", true, MS_NOATIME},
    {"noatime", false, MS_NOATIME},
    {"diratime", true, MS_NODIRATIME},
    {"nodiratime", false, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME},
    {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME},
    {"nostrictatime", true, MS_STRICTATIME},
};

static const struct {
    const char *name;
    unsigned long flag;
} prop_flags[] = {
    {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
    {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

static unsigned long propagation_from_name(const char *s)
{
    for (size_t i = 0; i < sizeof(prop_flags) / sizeof(prop_flags[0]); i++)
        if (strcmp(s, prop_flags[i].name) == 0)
            return prop_flags[i].flag;
    return 0;
}

void oci_mount_parse_options(char *const *options, struct oci_mount *m)
{
    char *data = NULL;
    for (size_t i = 0; options && options[i]; i++) {
        const char *s = options[i];
        if (strcmp(s, "bind") == 0) {
            m->bind = true;
            continue;
        }
        if (strcmp(s, "rbind") == 0) {
            m->bind = m->recursive = true;
            continue;
        }
        if (strcmp(s, "rro") == 0) {
            m->rro = true;
            m->flags |= MS_RDONLY;
            continue;
        }
        unsigned long p = propagation_from_name(s);
        if (p) {
            m->propagation = p;
            continue;
        }
        bool found = false;
        for (size_t j = 0; j < sizeof(mount_flags) / sizeof(mount_flags[0]); j++) {
            if (strcmp(s, mount_flags[j].name) != 0)
                continue;
            if (mount_flags[j].clear)
                m->flags &= ~mount_flags[j].flag;
            else
                m->flags |= mount_flags[j].flag;
            found = true;
            break;
        }
        if (found)
            continue;
        if (strncmp(s, "tmpcopyup", 9) == 0 || strncmp(s, "idmap", 5) == 0 ||
            strncmp(s, "ridmap", 6) == 0) {
            log_warn("mount option `%s` is not supported and ignored", s);
            continue;
        }
        char *nd = data ? xasprintf("%s,%s", data, s) : xstrdup(s);
        free(data);
        data = nd;
    }
    m->data = data;
}

static void mounts_free(struct oci_mount *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].destination);
        free(m[i].type);
        free(m[i].source);
        free(m[i].data);
    }
    free(m);
}

static const struct {
    const char *name;
    int flag;
} ns_names[] = {
    {"pid", CLONE_NEWPID},       {"network", CLONE_NEWNET}, {"ipc", CLONE_NEWIPC},
    {"uts", CLONE_NEWUTS},       {"mount", CLONE_NEWNS},    {"user", CLONE_NEWUSER},
    {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
};

const struct oci_namespace *oci_spec_namespace(const struct oci_spec *spec, int type)
{
    for (size_t i = 0; i < spec->n_namespaces; i++)
        if (spec->namespaces[i].type == type)
            return &spec->namespaces[i];
    return NULL;
}

void oci_spec_free(struct oci_spec *s)
{
    if (s == NULL)
        return;
    hull_ocispec_free(s->model);
    free(s->bundle);
    free(s->rootfs);
    oci_process_clear(&s->process);
    free(s->hostname);
    free(s->domainname);
    mounts_free(s->mounts, s->n_mounts);
    for (size_t i = 0; i < s->n_namespaces; i++)
        free(s->namespaces[i].path);
    free(s->namespaces);
    free(s->uid_mappings);
    free(s->gid_mappings);
    for (size_t i = 0; i < s->n_devices; i++)
        free(s->devices[i].path);
    free(s->devices);
    for (size_t i = 0; i < s->n_sysctls; i++) {
        free(s->sysctls[i].key);
        free(s->sysctls[i].value);
    }
    free(s->sysctls);
    hull_strv_free(s->masked_paths);
    hull_strv_free(s->readonly_paths);
    free(s->cgroups_path);
    free(s->mount_label);
    free(s);
}

static struct oci_idmap *idmaps_from_model(const struct hull_ocispec_idmap *m, size_t n)
{
    struct oci_idmap *out = xmalloc0((n + 1) * sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = (struct oci_idmap){m[i].container_id, m[i].host_id, m[i].size};
    return out;
}

static int linux_from_model(struct oci_spec *s, const struct hull_ocispec_linux *l,
                            hull_error_t *err)
{
    if (l == NULL)
        return 0;
    s->namespaces = xmalloc0((l->n_namespaces + 1) * sizeof(*s->namespaces));
    for (size_t i = 0; i < l->n_namespaces; i++) {
        int flag = 0;
        for (size_t j = 0; j < sizeof(ns_names) / sizeof(ns_names[0]); j++)
            if (strcmp(l->namespaces[i].type, ns_names[j].name) == 0)
                flag = ns_names[j].flag;
        s->namespaces[s->n_namespaces].type = flag;
        s->namespaces[s->n_namespaces].path =
            l->namespaces[i].path ? xstrdup(l->namespaces[i].path) : NULL;
        s->n_namespaces++;
    }
    s->uid_mappings = idmaps_from_model(l->uid_mappings, l->n_uid_mappings);
    s->n_uid_mappings = l->n_uid_mappings;
    s->gid_mappings = idmaps_from_model(l->gid_mappings, l->n_gid_mappings);
    s->n_gid_mappings = l->n_gid_mappings;
    const struct oci_namespace *userns = oci_spec_namespace(s, CLONE_NEWUSER);
    if (userns && userns->path == NULL && (s->n_uid_mappings == 0 || s->n_gid_mappings == 0))
        return hull_error_setx(err, EINVAL,
                               "a new user namespace needs linux.uidMappings and gidMappings");
    s->devices = xmalloc0((l->n_devices + 1) * sizeof(*s->devices));
    for (size_t i = 0; i < l->n_devices; i++) {
        const struct hull_ocispec_device *d = &l->devices[i];
        struct oci_device *o = &s->devices[s->n_devices++];
        o->path = xstrdup(d->path);
        o->type = d->type;
        o->major = d->major;
        o->minor = d->minor;
        o->has_mode = d->has_file_mode;
        o->mode = d->file_mode & 07777;
        o->has_uid = d->has_uid;
        o->uid = d->uid;
        o->has_gid = d->has_gid;
        o->gid = d->gid;
    }
    s->sysctls = xmalloc0((l->n_sysctl + 1) * sizeof(*s->sysctls));
    for (size_t i = 0; i < l->n_sysctl; i++) {
        s->sysctls[s->n_sysctls].key = xstrdup(l->sysctl[i].key);
        s->sysctls[s->n_sysctls].value = xstrdup(l->sysctl[i].value);
        s->n_sysctls++;
    }
    if (l->masked_paths)
        s->masked_paths = strv_copy(l->masked_paths);
    if (l->readonly_paths)
        s->readonly_paths = strv_copy(l->readonly_paths);
    s->cgroups_path = l->cgroups_path ? xstrdup(l->cgroups_path) : NULL;
    if (l->rootfs_propagation)
        s->rootfs_propagation = propagation_from_name(l->rootfs_propagation);
    s->mount_label = l->mount_label && *l->mount_label ? xstrdup(l->mount_label) : NULL;
    if (l->resources)
        s->resources = l->resources;
    s->seccomp = l->seccomp;
    for (int i = 0; i < HULL_OCISPEC_N_CLOCKS; i++) {
        if (!l->time_offsets[i].set)
            continue;
        s->has_time_offsets = true;
        s->time_offsets[i][0] = l->time_offsets[i].secs;
        s->time_offsets[i][1] = l->time_offsets[i].nanosecs;
    }
    if (s->has_time_offsets && !oci_spec_namespace(s, CLONE_NEWTIME))
        return hull_error_setx(err, EINVAL, "linux.timeOffsets need a time namespace");
    if (l->has_intel_rdt)
        log_warn("config.json: linux.intelRdt is not supported by hull-oci and is ignored");
    if (l->personality_domain)
        log_warn("config.json: linux.personality is not supported by hull-oci and is ignored");
    return 0;
}

static int mounts_from_model(struct oci_spec *s, const struct hull_ocispec *m, hull_error_t *err)
{
    s->mounts = xmalloc0((m->n_mounts + 1) * sizeof(*s->mounts));
    for (size_t i = 0; i < m->n_mounts; i++) {
        const struct hull_ocispec_mount *mm = &m->mounts[i];
        struct oci_mount *o = &s->mounts[s->n_mounts++];
        const char *dest = mm->destination, *type = mm->type, *src = mm->source;
        o->destination = xstrdup(dest);
        o->type = type && *type ? xstrdup(type) : NULL;
        oci_mount_parse_options(mm->options, o);
        if (o->type && strcmp(o->type, "bind") == 0)
            o->bind = true;
        if (o->type == NULL && !o->bind)
            return hull_error_setx(err, EINVAL, "mounts `%s`: no type and not a bind mount", dest);
        if (src && *src) {
            if (o->bind && src[0] != '/')
                o->source = hull_path_join(s->bundle, src);
            else
                o->source = xstrdup(src);
        } else if (o->bind) {
            return hull_error_setx(err, EINVAL, "mounts `%s`: bind mount without a source", dest);
        } else {
            o->source = xstrdup(o->type);
        }
    }
    return 0;
}

int oci_spec_from_model(struct hull_ocispec *m, const char *bundle, struct oci_spec **out,
                        hull_error_t *err)
{
    *out = NULL;
    _cleanup_oci_spec_ struct oci_spec *s = xmalloc0(sizeof(*s));
    hull_cgroup_resources_init(&s->no_resources);
    s->resources = &s->no_resources;
    s->model = m;
    s->bundle = xstrdup(bundle);
    const char *rp = m->root_path;
    s->rootfs = rp[0] == '/' ? xstrdup(rp) : hull_path_join(bundle, rp);
    s->root_readonly = m->root_readonly;
    if (m->process) {
        if (oci_process_from_model(m->process, &s->process, err) < 0)
            return -EINVAL;
        s->has_process = true;
    }
    s->hostname = m->hostname && *m->hostname ? xstrdup(m->hostname) : NULL;
    s->domainname = m->domainname && *m->domainname ? xstrdup(m->domainname) : NULL;
    if (mounts_from_model(s, m, err) < 0 || linux_from_model(s, m->linux_, err) < 0)
        return -EINVAL;
    bool hooks = false;
    for (int k = 0; k < HULL_OCISPEC_N_HOOK_KINDS; k++)
        hooks = hooks || m->n_hooks[k] > 0;
    if (hooks)
        log_warn("config.json: hooks are not supported by hull-oci and are ignored");
    *out = hull_steal(s);
    return 0;
}

int oci_spec_parse(const char *text, const char *bundle, struct oci_spec **out, hull_error_t *err)
{
    struct hull_ocispec *m = NULL;
    *out = NULL;
    int r = hull_ocispec_parse(text, &m, err);
    if (r < 0)
        return r;
    return oci_spec_from_model(m, bundle, out, err); /* m is the spec's, or freed */
}

int oci_spec_load(const char *bundle, struct oci_spec **out, hull_error_t *err)
{
    _cleanup_free_ char *abs = NULL;
    if (bundle[0] == '/') {
        abs = xstrdup(bundle);
    } else {
        char cwd[4096];
        if (getcwd(cwd, sizeof(cwd)) == NULL)
            return hull_error_set(err, errno, "getcwd");
        abs = hull_path_join(cwd, bundle);
    }
    _cleanup_free_ char *path = hull_path_join(abs, "config.json");
    _cleanup_free_ char *text = NULL;
    int r = hull_read_file(path, CONFIG_MAX, &text, NULL, err);
    if (r < 0)
        return r;
    return oci_spec_parse(text, abs, out, err);
}
