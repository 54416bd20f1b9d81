/* Runtime-spec config.json parsing and validation. */

#include "oci/oci.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <strings.h>

#define CONFIG_MAX (4u << 20)

static int json_strv(yajl_val arr, const char *what, char ***out, hull_error_t *err)
{
    *out = NULL;
    if (arr == NULL || YAJL_IS_NULL(arr))
        return 0;
    if (!YAJL_IS_ARRAY(arr))
        return hull_error_setx(err, EINVAL, "%s: must be an array of strings", what);
    size_t n = arr->u.array.len;
    char **v = xmalloc0((n + 1) * sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        yajl_val s = arr->u.array.values[i];
        if (!YAJL_IS_STRING(s)) {
            hull_strv_free(v);
            return hull_error_setx(err, EINVAL, "%s[%zu]: must be a string", what, i);
        }
        v[i] = xstrdup(YAJL_GET_STRING(s));
    }
    *out = v;
    return 0;
}

int oci_json_u32(yajl_val v, const char *what, uint32_t *out, hull_error_t *err)
{
    if (v == NULL || !YAJL_IS_INTEGER(v))
        return hull_error_setx(err, EINVAL, "%s: must be an integer", what);
    long long x = YAJL_GET_INTEGER(v);
    if (x < 0 || x > (long long)UINT32_MAX)
        return hull_error_setx(err, ERANGE, "%s: %lld out of range for a 32-bit unsigned id", what,
                               x);
    *out = (uint32_t)x;
    return 0;
}

static int json_u64(yajl_val v, const char *what, uint64_t *out, hull_error_t *err)
{
    if (v == NULL || !YAJL_IS_NUMBER(v))
        return hull_error_setx(err, EINVAL, "%s: must be a number", what);
    if (YAJL_IS_INTEGER(v)) {
        if (YAJL_GET_INTEGER(v) < 0)
            return hull_error_setx(err, ERANGE, "%s: negative", what);
        *out = (uint64_t)YAJL_GET_INTEGER(v);
        return 0;
    }
    /* integers above INT64_MAX (e.g. RLIM_INFINITY as 18446744073709551615) */
    const char *raw = v->u.number.r;
    if (raw == NULL || raw[0] == '-')
        return hull_error_setx(err, ERANGE, "%s: invalid", what);
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(raw, &end, 10);
    if (errno != 0 || end == raw || *end != '\0')
        return hull_error_setx(err, ERANGE, "%s: `%s` is not a 64-bit unsigned integer", what, raw);
    *out = x;
    return 0;
}

int oci_cap_from_name(const char *name)
{
    /* the runtime spec names capabilities with their CAP_ prefix */
    if (name == NULL || strncasecmp(name, "CAP_", 4) != 0)
        return -1;
    return hull_cap_from_name(name);
}

static int parse_capset(yajl_val caps, const char *key, uint64_t *out, hull_error_t *err)
{
    *out = 0;
    yajl_val arr = hull_json_get(caps, key);
    if (arr == NULL || YAJL_IS_NULL(arr))
        return 0;
    if (!YAJL_IS_ARRAY(arr))
        return hull_error_setx(err, EINVAL, "process.capabilities.%s: must be an array", key);
    for (size_t i = 0; i < arr->u.array.len; i++) {
        yajl_val s = arr->u.array.values[i];
        if (!YAJL_IS_STRING(s))
            return hull_error_setx(err, EINVAL, "process.capabilities.%s[%zu]: not a string", key,
                                   i);
        int c = oci_cap_from_name(YAJL_GET_STRING(s));
        if (c < 0) {
            /* runc ignores capabilities this build does not know, with a warning */
            log_warn("unknown capability `%s` ignored", YAJL_GET_STRING(s));
            continue;
        }
        *out |= 1ULL << c;
    }
    return 0;
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

static int parse_user(yajl_val user, struct oci_user *u, hull_error_t *err)
{
    memset(u, 0, sizeof(*u));
    if (user == NULL)
        return 0;
    if (!YAJL_IS_OBJECT(user))
        return hull_error_setx(err, EINVAL, "process.user: must be an object");
    yajl_val v;
    if ((v = hull_json_get(user, "uid")) && oci_json_u32(v, "process.user.uid", &u->uid, err) < 0)
        return -EINVAL;
    if ((v = hull_json_get(user, "gid")) && oci_json_u32(v, "process.user.gid", &u->gid, err) < 0)
        return -EINVAL;
    if ((v = hull_json_get(user, "umask")) && !YAJL_IS_NULL(v)) {
        if (oci_json_u32(v, "process.user.umask", &u->umask, err) < 0)
            return -EINVAL;
        u->has_umask = true;
    }
    if (hull_json_get_string(user, "username", NULL))
        log_warn("process.user.username is ignored (only numeric ids are used)");
    yajl_val gids = hull_json_get(user, "additionalGids");
    size_t n = (gids && YAJL_IS_ARRAY(gids)) ? gids->u.array.len : 0;
    if (gids && !YAJL_IS_NULL(gids) && !YAJL_IS_ARRAY(gids))
        return hull_error_setx(err, EINVAL, "process.user.additionalGids: must be an array");
    if (n > 65536)
        return hull_error_setx(err, E2BIG, "process.user.additionalGids: too many groups");
    u->gids = xmalloc0((n + 1) * sizeof(uint32_t));
    /* The primary gid is always a supplementary group too (CVE-2023-25173). */
    u->gids[u->n_gids++] = u->gid;
    for (size_t i = 0; i < n; i++) {
        uint32_t g;
        if (oci_json_u32(gids->u.array.values[i], "process.user.additionalGids[]", &g, err) < 0)
            return -EINVAL;
        bool dup = false;
        for (size_t j = 0; j < u->n_gids; j++)
            dup = dup || u->gids[j] == g;
        if (!dup)
            u->gids[u->n_gids++] = g;
    }
    return 0;
}

int oci_process_parse(yajl_val node, struct oci_process *p, hull_error_t *err)
{
    memset(p, 0, sizeof(*p));
    if (node == NULL || !YAJL_IS_OBJECT(node))
        return hull_error_setx(err, EINVAL, "process: must be an object");
    p->terminal = hull_json_get_bool(node, "terminal", false);
    yajl_val cs = hull_json_get(node, "consoleSize");
    if (cs) {
        long long h = hull_json_get_int(cs, "height", -1), w = hull_json_get_int(cs, "width", -1);
        if (!YAJL_IS_OBJECT(cs) || h < 0 || w < 0 || h > 65535 || w > 65535)
            return hull_error_setx(err, EINVAL,
                                   "process.consoleSize: needs height and width from 0 to 65535");
        p->console_rows = (uint16_t)h;
        p->console_cols = (uint16_t)w;
    }
    if (parse_user(hull_json_get(node, "user"), &p->user, err) < 0)
        return -EINVAL;
    if (json_strv(hull_json_get(node, "args"), "process.args", &p->args, err) < 0)
        return -EINVAL;
    if (p->args == NULL || p->args[0] == NULL || p->args[0][0] == '\0')
        return hull_error_setx(err, EINVAL, "process.args: must not be empty");
    if (json_strv(hull_json_get(node, "env"), "process.env", &p->env, err) < 0)
        return -EINVAL;
    if (p->env == NULL)
        p->env = xmalloc0(sizeof(char *));
    const char *cwd = hull_json_get_string(node, "cwd", "/");
    if (cwd[0] != '/')
        return hull_error_setx(err, EINVAL, "process.cwd `%s`: must be an absolute path", cwd);
    p->cwd = xstrdup(cwd);
    yajl_val caps = hull_json_get(node, "capabilities");
    if (caps && YAJL_IS_OBJECT(caps)) {
        p->caps.set = true;
        if (parse_capset(caps, "bounding", &p->caps.bounding, err) < 0 ||
            parse_capset(caps, "effective", &p->caps.effective, err) < 0 ||
            parse_capset(caps, "inheritable", &p->caps.inheritable, err) < 0 ||
            parse_capset(caps, "permitted", &p->caps.permitted, err) < 0 ||
            parse_capset(caps, "ambient", &p->caps.ambient, err) < 0)
            return -EINVAL;
    }
    yajl_val rl = hull_json_get(node, "rlimits");
    if (rl && YAJL_IS_ARRAY(rl)) {
        p->rlimits = xmalloc0((rl->u.array.len + 1) * sizeof(*p->rlimits));
        for (size_t i = 0; i < rl->u.array.len; i++) {
            yajl_val r = rl->u.array.values[i];
            const char *type = hull_json_get_string(r, "type", "");
            int res = oci_rlimit_from_name(type);
            if (res < 0)
                return hull_error_setx(err, EINVAL, "process.rlimits: unknown type `%s`", type);
            struct oci_rlimit *o = &p->rlimits[p->n_rlimits++];
            o->resource = res;
            if (json_u64(hull_json_get(r, "soft"), "process.rlimits.soft", &o->soft, err) < 0 ||
                json_u64(hull_json_get(r, "hard"), "process.rlimits.hard", &o->hard, err) < 0)
                return -EINVAL;
        }
    }
    p->no_new_privileges = hull_json_get_bool(node, "noNewPrivileges", false);
    yajl_val oom = hull_json_get(node, "oomScoreAdj");
    if (oom && YAJL_IS_INTEGER(oom)) {
        long long v = YAJL_GET_INTEGER(oom);
        if (v < -1000 || v > 1000)
            return hull_error_setx(err, ERANGE, "process.oomScoreAdj: %lld out of range", v);
        p->has_oom_score_adj = true;
        p->oom_score_adj = (int)v;
    }
    const char *aa = hull_json_get_string(node, "apparmorProfile", NULL);
    if (aa && *aa)
        p->apparmor = xstrdup(aa);
    const char *se = hull_json_get_string(node, "selinuxLabel", NULL);
    if (se && *se)
        p->selinux = xstrdup(se);
    return 0;
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

void oci_mount_parse_options(yajl_val options, struct oci_mount *m)
{
    size_t n = (options && YAJL_IS_ARRAY(options)) ? options->u.array.len : 0;
    char *data = NULL;
    for (size_t i = 0; i < n; i++) {
        yajl_val o = options->u.array.values[i];
        if (!YAJL_IS_STRING(o))
            continue;
        const char *s = YAJL_GET_STRING(o);
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
    if (s->tree)
        yajl_tree_free(s->tree);
    hull_cgroup_resources_clear(&s->cg_resources);
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

static int parse_idmaps(yajl_val arr, const char *what, struct oci_idmap **out, size_t *n,
                        hull_error_t *err)
{
    *out = NULL;
    *n = 0;
    if (arr == NULL || !YAJL_IS_ARRAY(arr))
        return 0;
    if (arr->u.array.len > 340)
        return hull_error_setx(err, E2BIG, "%s: too many entries", what);
    *out = xmalloc0((arr->u.array.len + 1) * sizeof(**out));
    for (size_t i = 0; i < arr->u.array.len; i++) {
        yajl_val m = arr->u.array.values[i];
        struct oci_idmap *o = &(*out)[(*n)++];
        if (oci_json_u32(hull_json_get(m, "containerID"), what, &o->container_id, err) < 0 ||
            oci_json_u32(hull_json_get(m, "hostID"), what, &o->host_id, err) < 0 ||
            oci_json_u32(hull_json_get(m, "size"), what, &o->size, err) < 0)
            return -EINVAL;
    }
    return 0;
}

static int parse_linux(struct oci_spec *s, yajl_val linux_, hull_error_t *err)
{
    if (linux_ == NULL)
        return 0;
    if (!YAJL_IS_OBJECT(linux_))
        return hull_error_setx(err, EINVAL, "linux: must be an object");
    yajl_val nss = hull_json_get(linux_, "namespaces");
    if (nss && YAJL_IS_ARRAY(nss)) {
        s->namespaces = xmalloc0((nss->u.array.len + 1) * sizeof(*s->namespaces));
        for (size_t i = 0; i < nss->u.array.len; i++) {
            yajl_val ns = nss->u.array.values[i];
            const char *type = hull_json_get_string(ns, "type", "");
            int flag = 0;
            for (size_t j = 0; j < sizeof(ns_names) / sizeof(ns_names[0]); j++)
                if (strcmp(type, ns_names[j].name) == 0)
                    flag = ns_names[j].flag;
            if (flag == 0)
                return hull_error_setx(err, EINVAL, "linux.namespaces: unknown type `%s`", type);
            if (oci_spec_namespace(s, flag))
                return hull_error_setx(err, EINVAL, "linux.namespaces: duplicate `%s`", type);
            const char *path = hull_json_get_string(ns, "path", NULL);
            s->namespaces[s->n_namespaces].type = flag;
            s->namespaces[s->n_namespaces].path = path && *path ? xstrdup(path) : NULL;
            s->n_namespaces++;
        }
    }
    if (parse_idmaps(hull_json_get(linux_, "uidMappings"), "linux.uidMappings", &s->uid_mappings,
                     &s->n_uid_mappings, err) < 0 ||
        parse_idmaps(hull_json_get(linux_, "gidMappings"), "linux.gidMappings", &s->gid_mappings,
                     &s->n_gid_mappings, err) < 0)
        return -EINVAL;
    const struct oci_namespace *userns = oci_spec_namespace(s, CLONE_NEWUSER);
    if (userns && userns->path == NULL && (s->n_uid_mappings == 0 || s->n_gid_mappings == 0))
        return hull_error_setx(err, EINVAL,
                               "a new user namespace needs linux.uidMappings and gidMappings");
    yajl_val devs = hull_json_get(linux_, "devices");
    if (devs && YAJL_IS_ARRAY(devs)) {
        s->devices = xmalloc0((devs->u.array.len + 1) * sizeof(*s->devices));
        for (size_t i = 0; i < devs->u.array.len; i++) {
            yajl_val d = devs->u.array.values[i];
            struct oci_device *o = &s->devices[s->n_devices++];
            const char *path = hull_json_get_string(d, "path", NULL);
            const char *type = hull_json_get_string(d, "type", "");
            if (path == NULL || path[0] != '/')
                return hull_error_setx(err, EINVAL, "linux.devices[%zu]: bad path", i);
            o->path = xstrdup(path);
            if (strlen(type) != 1 || strchr("cbup", type[0]) == NULL)
                return hull_error_setx(err, EINVAL, "linux.devices `%s`: bad type `%s`", path,
                                       type);
            o->type = type[0];
            o->major = hull_json_get_int(d, "major", 0);
            o->minor = hull_json_get_int(d, "minor", 0);
            yajl_val v;
            if ((v = hull_json_get(d, "fileMode")) && YAJL_IS_INTEGER(v)) {
                o->has_mode = true;
                o->mode = (uint32_t)YAJL_GET_INTEGER(v) & 07777;
            }
            if ((v = hull_json_get(d, "uid")) && !YAJL_IS_NULL(v)) {
                if (oci_json_u32(v, "linux.devices.uid", &o->uid, err) < 0)
                    return -EINVAL;
                o->has_uid = true;
            }
            if ((v = hull_json_get(d, "gid")) && !YAJL_IS_NULL(v)) {
                if (oci_json_u32(v, "linux.devices.gid", &o->gid, err) < 0)
                    return -EINVAL;
                o->has_gid = true;
            }
        }
    }
    yajl_val sysctl = hull_json_get(linux_, "sysctl");
    if (sysctl && YAJL_IS_OBJECT(sysctl)) {
        size_t n = sysctl->u.object.len;
        s->sysctls = xmalloc0((n + 1) * sizeof(*s->sysctls));
        for (size_t i = 0; i < n; i++) {
            yajl_val v = sysctl->u.object.values[i];
            if (!YAJL_IS_STRING(v))
                return hull_error_setx(err, EINVAL, "linux.sysctl `%s`: value must be a string",
                                       sysctl->u.object.keys[i]);
            s->sysctls[s->n_sysctls].key = xstrdup(sysctl->u.object.keys[i]);
            s->sysctls[s->n_sysctls].value = xstrdup(YAJL_GET_STRING(v));
            s->n_sysctls++;
        }
    }
    if (json_strv(hull_json_get(linux_, "maskedPaths"), "linux.maskedPaths", &s->masked_paths,
                  err) < 0 ||
        json_strv(hull_json_get(linux_, "readonlyPaths"), "linux.readonlyPaths", &s->readonly_paths,
                  err) < 0)
        return -EINVAL;
    const char *cg = hull_json_get_string(linux_, "cgroupsPath", NULL);
    s->cgroups_path = cg ? xstrdup(cg) : NULL;
    const char *prop = hull_json_get_string(linux_, "rootfsPropagation", NULL);
    if (prop && *prop) {
        s->rootfs_propagation = propagation_from_name(prop);
        if (s->rootfs_propagation == 0)
            return hull_error_setx(err, EINVAL, "linux.rootfsPropagation: unknown `%s`", prop);
    }
    const char *label = hull_json_get_string(linux_, "mountLabel", NULL);
    s->mount_label = label && *label ? xstrdup(label) : NULL;
    yajl_val r = hull_json_get(linux_, "resources");
    s->resources = r && YAJL_IS_OBJECT(r) ? r : NULL;
    /* parsed once: every cgroup writer and the systemd driver read the typed form */
    hull_cgroup_resources_clear(&s->cg_resources);
    hull_cgroup_resources_from_json(s->resources, &s->cg_resources);
    yajl_val sc = hull_json_get(linux_, "seccomp");
    s->seccomp = sc && YAJL_IS_OBJECT(sc) ? sc : NULL;
    yajl_val to = hull_json_get(linux_, "timeOffsets");
    if (to && YAJL_IS_OBJECT(to)) {
        const char *clocks[2] = {"monotonic", "boottime"};
        for (int i = 0; i < 2; i++) {
            yajl_val c = hull_json_get(to, clocks[i]);
            if (c == NULL)
                continue;
            s->has_time_offsets = true;
            s->time_offsets[i][0] = hull_json_get_int(c, "secs", 0);
            s->time_offsets[i][1] = hull_json_get_int(c, "nanosecs", 0);
        }
    }
    if (s->has_time_offsets && !oci_spec_namespace(s, CLONE_NEWTIME))
        return hull_error_setx(err, EINVAL, "linux.timeOffsets need a time namespace");
    return 0;
}

static int parse_mounts(struct oci_spec *s, yajl_val mounts, hull_error_t *err)
{
    if (mounts == NULL || YAJL_IS_NULL(mounts))
        return 0;
    if (!YAJL_IS_ARRAY(mounts))
        return hull_error_setx(err, EINVAL, "mounts: must be an array");
    s->mounts = xmalloc0((mounts->u.array.len + 1) * sizeof(*s->mounts));
    for (size_t i = 0; i < mounts->u.array.len; i++) {
        yajl_val m = mounts->u.array.values[i];
        struct oci_mount *o = &s->mounts[s->n_mounts++];
        const char *dest = hull_json_get_string(m, "destination", NULL);
        if (dest == NULL || dest[0] != '/')
            return hull_error_setx(err, EINVAL, "mounts[%zu]: destination must be an absolute path",
                                   i);
        o->destination = xstrdup(dest);
        const char *type = hull_json_get_string(m, "type", NULL);
        const char *src = hull_json_get_string(m, "source", NULL);
        o->type = type && *type ? xstrdup(type) : NULL;
        oci_mount_parse_options(hull_json_get(m, "options"), o);
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

int oci_spec_parse(const char *text, const char *bundle, struct oci_spec **out, hull_error_t *err)
{
    struct oci_spec *s = xmalloc0(sizeof(*s));
    hull_cgroup_resources_init(&s->cg_resources);
    int r = hull_json_parse(text, "config.json", &s->tree, err);
    if (r < 0)
        goto fail;
    r = -EINVAL;
    if (!YAJL_IS_OBJECT(s->tree)) {
        hull_error_setx(err, EINVAL, "config.json: not a JSON object");
        goto fail;
    }
    s->bundle = xstrdup(bundle);
    const char *ver = hull_json_get_string(s->tree, "ociVersion", NULL);
    if (ver == NULL) {
        hull_error_setx(err, EINVAL, "config.json: ociVersion missing");
        goto fail;
    }
    if (strncmp(ver, "1.", 2) != 0) {
        hull_error_setx(err, EINVAL, "config.json: unsupported ociVersion `%s`", ver);
        goto fail;
    }
    yajl_val root = hull_json_get(s->tree, "root");
    const char *rp = hull_json_get_string(root, "path", NULL);
    if (rp == NULL || *rp == '\0') {
        hull_error_setx(err, EINVAL, "config.json: root.path missing");
        goto fail;
    }
    s->rootfs = rp[0] == '/' ? xstrdup(rp) : hull_path_join(bundle, rp);
    s->root_readonly = hull_json_get_bool(root, "readonly", false);
    yajl_val proc = hull_json_get(s->tree, "process");
    if (proc && !YAJL_IS_NULL(proc)) {
        if (oci_process_parse(proc, &s->process, err) < 0)
            goto fail;
        s->has_process = true;
    }
    const char *h = hull_json_get_string(s->tree, "hostname", NULL);
    s->hostname = h && *h ? xstrdup(h) : NULL;
    const char *d = hull_json_get_string(s->tree, "domainname", NULL);
    s->domainname = d && *d ? xstrdup(d) : NULL;
    if (parse_mounts(s, hull_json_get(s->tree, "mounts"), err) < 0)
        goto fail;
    if (parse_linux(s, hull_json_get(s->tree, "linux"), err) < 0)
        goto fail;
    static const char *const unsupported[] = {"hooks", NULL};
    for (size_t i = 0; unsupported[i]; i++) {
        yajl_val hk = hull_json_get(s->tree, unsupported[i]);
        if (hk && YAJL_IS_OBJECT(hk) && hk->u.object.len > 0)
            log_warn("config.json: %s are not supported by hull-oci and are ignored",
                     unsupported[i]);
    }
    yajl_val lx = hull_json_get(s->tree, "linux");
    static const char *const unsupported_linux[] = {"intelRdt", "personality", NULL};
    for (size_t i = 0; unsupported_linux[i]; i++)
        if (hull_json_get(lx, unsupported_linux[i]))
            log_warn("config.json: linux.%s is not supported by hull-oci and is ignored",
                     unsupported_linux[i]);
    yajl_val ann = hull_json_get(s->tree, "annotations");
    s->annotations = ann && YAJL_IS_OBJECT(ann) ? ann : NULL;
    *out = s;
    return 0;
fail:
    oci_spec_free(s);
    return r == 0 ? -EINVAL : r;
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
