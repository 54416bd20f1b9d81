/* The typed runtime-spec model: parser, serializer, free, equality (ocispec_model.h). */
#include "common/ocispec_model.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const hull_ocispec_hook_names[HULL_OCISPEC_N_HOOK_KINDS] = {
    "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop",
};

static const char *const namespace_types[] = {"pid",   "network", "ipc",    "uts",
                                              "mount", "user",    "cgroup", "time"};
static const char *const propagations[] = {"private", "rprivate", "shared",     "rshared",
                                           "slave",   "rslave",   "unbindable", "runbindable"};
static const char *const clock_names[HULL_OCISPEC_N_CLOCKS] = {"monotonic", "boottime"};

#define N_ELEMS(a)  (sizeof(a) / sizeof((a)[0]))
#define MAX_ENTRIES 65536 /* any array of the spec */
#define MAX_IDMAPS  340   /* the kernel's limit for uid_map / gid_map lines */

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

/* ---- parsing helpers ----------------------------------------------------------------------- */
/* member lookup where null counts as absent */
static yajl_val get(yajl_val obj, const char *key)
{
    yajl_val v = hull_json_get(obj, key);
    return v && YAJL_IS_NULL(v) ? NULL : v;
}

static int need_object(yajl_val v, const char *what, hull_error_t *err)
{
    if (!YAJL_IS_OBJECT(v))
        return hull_error_setx(err, EINVAL, "%s: must be an object", what);
    return 0;
}

static int p_str(yajl_val obj, const char *key, const char *what, char **out, hull_error_t *err)
{
    yajl_val v = get(obj, key);
    if (v == NULL)
        return 0;
    if (!YAJL_IS_STRING(v))
        return hull_error_setx(err, EINVAL, "%s: must be a string", what);
    *out = xstrdup(YAJL_GET_STRING(v));
    return 0;
}

static int p_bool(yajl_val obj, const char *key, const char *what, bool *out, hull_error_t *err)
{
    yajl_val v = get(obj, key);
    if (v == NULL)
        return 0;
    if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
        return hull_error_setx(err, EINVAL, "%s: must be true or false", what);
    *out = YAJL_IS_TRUE(v);
    return 0;
}

static int array_len(yajl_val v, const char *what, size_t *n, hull_error_t *err)
{
    if (!YAJL_IS_ARRAY(v))
        return hull_error_setx(err, EINVAL, "%s: must be an array", what);
    if (v->u.array.len > MAX_ENTRIES)
        return hull_error_setx(err, E2BIG, "%s: too many entries", what);
    *n = v->u.array.len;
    return 0;
}

static int p_strv(yajl_val obj, const char *key, const char *what, char ***out, hull_error_t *err)
{
    yajl_val arr = get(obj, key);
    size_t n = 0;
    if (arr == NULL)
        return 0;
    if (!YAJL_IS_ARRAY(arr))
        return hull_error_setx(err, EINVAL, "%s: must be an array of strings", what);
    if (array_len(arr, what, &n, err) < 0)
        return -EINVAL;
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

/* an integer in [min, max]; set *has when present */
static int p_int(yajl_val obj, const char *key, const char *what, long long min, long long max,
                 long long *out, bool *has, hull_error_t *err)
{
    yajl_val v = get(obj, key);
    if (v == NULL)
        return 0;
    if (!YAJL_IS_INTEGER(v))
        return hull_error_setx(err, EINVAL, "%s: must be an integer", what);
    long long x = YAJL_GET_INTEGER(v);
    if (x < min || x > max)
        return hull_error_setx(err, ERANGE, "%s: %lld out of range", what, x);
    *out = x;
    if (has)
        *has = true;
    return 0;
}

static int p_u32(yajl_val obj, const char *key, const char *what, uint32_t *out, bool *has,
                 hull_error_t *err)
{
    long long x = 0;
    bool h = false;
    if (p_int(obj, key, what, 0, UINT32_MAX, &x, &h, err) < 0)
        return -EINVAL;
    if (h)
        *out = (uint32_t)x;
    if (has)
        *has = h;
    return 0;
}

static int req_u32(yajl_val obj, const char *key, const char *what, uint32_t *out,
                   hull_error_t *err)
{
    bool has = false;
    if (p_u32(obj, key, what, out, &has, err) < 0)
        return -EINVAL;
    if (!has)
        return hull_error_setx(err, EINVAL, "%s: must be an integer", what);
    return 0;
}

/* unsigned 64-bit, including values above INT64_MAX (RLIM_INFINITY) */
static int p_u64(yajl_val obj, const char *key, const char *what, uint64_t *out, bool *has,
                 hull_error_t *err)
{
    yajl_val v = get(obj, key);
    if (v == NULL)
        return 0;
    if (!YAJL_IS_NUMBER(v))
        return hull_error_setx(err, EINVAL, "%s: must be a number", what);
    if (YAJL_IS_INTEGER(v)) {
        if (YAJL_GET_INTEGER(v) < 0)
            return hull_error_setx(err, ERANGE, "%s: negative", what);
        *out = (uint64_t)YAJL_GET_INTEGER(v);
    } else {
        const char *raw = v->u.number.r;
        char *end = NULL;
        if (raw == NULL || raw[0] == '-')
            return hull_error_setx(err, ERANGE, "%s: invalid", what);
        errno = 0;
        unsigned long long x = strtoull(raw, &end, 10);
        if (errno != 0 || end == raw || *end != '\0')
            return hull_error_setx(err, ERANGE, "%s: `%s` is not a 64-bit unsigned integer", what,
                                   raw);
        *out = x;
    }
    if (has)
        *has = true;
    return 0;
}

/* an object of string values */
static int p_kv(yajl_val obj, const char *key, const char *what, struct hull_ocispec_kv **out,
                size_t *n, hull_error_t *err)
{
    yajl_val m = get(obj, key);
    if (m == NULL)
        return 0;
    if (need_object(m, what, err) < 0)
        return -EINVAL;
    *out = xmalloc0((m->u.object.len + 1) * sizeof(**out));
    for (size_t i = 0; i < m->u.object.len; i++) {
        yajl_val v = m->u.object.values[i];
        if (v == NULL || !YAJL_IS_STRING(v))
            return hull_error_setx(err, EINVAL, "%s `%s`: value must be a string", what,
                                   m->u.object.keys[i]);
        (*out)[*n].key = xstrdup(m->u.object.keys[i]);
        (*out)[*n].value = xstrdup(YAJL_GET_STRING(v));
        (*n)++;
    }
    return 0;
}

/* ---- process ----------------------------------------------------------------------------- */
static int parse_user(yajl_val u, struct hull_ocispec_user *o, hull_error_t *err)
{
    if (u == NULL)
        return 0;
    if (need_object(u, "process.user", err) < 0 ||
        p_u32(u, "uid", "process.user.uid", &o->uid, NULL, err) < 0 ||
        p_u32(u, "gid", "process.user.gid", &o->gid, NULL, err) < 0 ||
        p_u32(u, "umask", "process.user.umask", &o->umask, &o->has_umask, err) < 0 ||
        p_str(u, "username", "process.user.username", &o->username, err) < 0)
        return -EINVAL;
    yajl_val g = get(u, "additionalGids");
    size_t n = 0;
    if (g == NULL)
        return 0;
    if (array_len(g, "process.user.additionalGids", &n, err) < 0)
        return -EINVAL;
    o->additional_gids = xmalloc0((n + 1) * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++) {
        yajl_val x = g->u.array.values[i];
        if (x == NULL || !YAJL_IS_INTEGER(x) || YAJL_GET_INTEGER(x) < 0 ||
            YAJL_GET_INTEGER(x) > (long long)UINT32_MAX)
            return hull_error_setx(err, EINVAL,
                                   "process.user.additionalGids[%zu]: must be a 32-bit unsigned "
                                   "id",
                                   i);
        o->additional_gids[o->n_additional_gids++] = (uint32_t)YAJL_GET_INTEGER(x);
    }
    return 0;
}

int hull_ocispec_process_from_tree(yajl_val node, struct hull_ocispec_process *p, hull_error_t *err)
{
    hull_ocispec_process_clear(p);
    if (node == NULL || !YAJL_IS_OBJECT(node))
        return hull_error_setx(err, EINVAL, "process: must be an object");
    if (p_bool(node, "terminal", "process.terminal", &p->terminal, err) < 0)
        return -EINVAL;
    yajl_val cs = get(node, "consoleSize");
    if (cs) {
        long long h = -1, w = -1;
        if (!YAJL_IS_OBJECT(cs) ||
            p_int(cs, "height", "process.consoleSize.height", 0, 65535, &h, NULL, err) < 0 ||
            p_int(cs, "width", "process.consoleSize.width", 0, 65535, &w, NULL, err) < 0 || h < 0 ||
            w < 0)
            return hull_error_setx(err, EINVAL,
                                   "process.consoleSize: needs height and width from 0 to 65535");
        p->has_console_size = true;
        p->console_height = (uint32_t)h;
        p->console_width = (uint32_t)w;
    }
    if (parse_user(get(node, "user"), &p->user, err) < 0 ||
        p_strv(node, "args", "process.args", &p->args, err) < 0)
        return -EINVAL;
    if (p->args == NULL || p->args[0] == NULL || p->args[0][0] == '\0')
        return hull_error_setx(err, EINVAL, "process.args: must not be empty");
    if (p_strv(node, "env", "process.env", &p->env, err) < 0 ||
        p_str(node, "cwd", "process.cwd", &p->cwd, err) < 0)
        return -EINVAL;
    if (p->cwd && p->cwd[0] != '/')
        return hull_error_setx(err, EINVAL, "process.cwd `%s`: must be an absolute path", p->cwd);
    yajl_val caps = get(node, "capabilities");
    if (caps) {
        if (need_object(caps, "process.capabilities", err) < 0 ||
            p_strv(caps, "bounding", "process.capabilities.bounding", &p->caps.bounding, err) < 0 ||
            p_strv(caps, "effective", "process.capabilities.effective", &p->caps.effective, err) <
                0 ||
            p_strv(caps, "inheritable", "process.capabilities.inheritable", &p->caps.inheritable,
                   err) < 0 ||
            p_strv(caps, "permitted", "process.capabilities.permitted", &p->caps.permitted, err) <
                0 ||
            p_strv(caps, "ambient", "process.capabilities.ambient", &p->caps.ambient, err) < 0)
            return -EINVAL;
        p->has_capabilities = true;
    }
    yajl_val rl = get(node, "rlimits");
    if (rl) {
        size_t n = 0;
        if (array_len(rl, "process.rlimits", &n, err) < 0)
            return -EINVAL;
        p->rlimits = xmalloc0((n + 1) * sizeof(*p->rlimits));
        for (size_t i = 0; i < n; i++) {
            yajl_val r = rl->u.array.values[i];
            struct hull_ocispec_rlimit *o = &p->rlimits[p->n_rlimits++];
            bool has_soft = false, has_hard = false;
            if (r == NULL || need_object(r, "process.rlimits[]", err) < 0 ||
                p_str(r, "type", "process.rlimits.type", &o->type, err) < 0)
                return -EINVAL;
            if (o->type == NULL || strncmp(o->type, "RLIMIT_", 7) != 0)
                return hull_error_setx(err, EINVAL, "process.rlimits: unknown type `%s`",
                                       o->type ? o->type : "");
            if (p_u64(r, "soft", "process.rlimits.soft", &o->soft, &has_soft, err) < 0 ||
                p_u64(r, "hard", "process.rlimits.hard", &o->hard, &has_hard, err) < 0)
                return -EINVAL;
            if (!has_soft || !has_hard)
                return hull_error_setx(err, EINVAL, "process.rlimits `%s`: needs soft and hard",
                                       o->type);
        }
    }
    long long oom = 0;
    if (p_bool(node, "noNewPrivileges", "process.noNewPrivileges", &p->no_new_privileges, err) <
            0 ||
        p_int(node, "oomScoreAdj", "process.oomScoreAdj", -1000, 1000, &oom, &p->has_oom_score_adj,
              err) < 0 ||
        p_str(node, "apparmorProfile", "process.apparmorProfile", &p->apparmor_profile, err) < 0 ||
        p_str(node, "selinuxLabel", "process.selinuxLabel", &p->selinux_label, err) < 0)
        return -EINVAL;
    p->oom_score_adj = (int)oom;
    return 0;
}

/* ---- mounts and hooks ---------------------------------------------------------------------- */
static int parse_mounts(yajl_val arr, struct hull_ocispec *s, hull_error_t *err)
{
    size_t n = 0;
    if (arr == NULL)
        return 0;
    if (array_len(arr, "mounts", &n, err) < 0)
        return -EINVAL;
    s->mounts = xmalloc0((n + 1) * sizeof(*s->mounts));
    for (size_t i = 0; i < n; i++) {
        yajl_val m = arr->u.array.values[i];
        struct hull_ocispec_mount *o = &s->mounts[s->n_mounts++];
        if (m == NULL || !YAJL_IS_OBJECT(m))
            return hull_error_setx(err, EINVAL, "mounts[%zu]: must be an object", i);
        if (p_str(m, "destination", "mounts[].destination", &o->destination, err) < 0)
            return -EINVAL;
        if (o->destination == NULL || o->destination[0] != '/')
            return hull_error_setx(err, EINVAL, "mounts[%zu]: destination must be an absolute path",
                                   i);
        if (p_str(m, "type", "mounts[].type", &o->type, err) < 0 ||
            p_str(m, "source", "mounts[].source", &o->source, err) < 0 ||
            p_strv(m, "options", "mounts[].options", &o->options, err) < 0)
            return -EINVAL;
    }
    return 0;
}

static int parse_hooks(yajl_val hooks, struct hull_ocispec *s, hull_error_t *err)
{
    if (hooks == NULL)
        return 0;
    if (need_object(hooks, "hooks", err) < 0)
        return -EINVAL;
    s->has_hooks = true;
    for (int k = 0; k < HULL_OCISPEC_N_HOOK_KINDS; k++) {
        const char *kind = hull_ocispec_hook_names[k];
        yajl_val arr = get(hooks, kind);
        size_t n = 0;
        if (arr == NULL)
            continue;
        if (array_len(arr, "hooks", &n, err) < 0)
            return hull_error_wrap(err, "hooks.%s", kind);
        s->hooks[k] = xmalloc0((n + 1) * sizeof(**s->hooks));
        for (size_t i = 0; i < n; i++) {
            yajl_val h = arr->u.array.values[i];
            struct hull_ocispec_hook *o = &s->hooks[k][s->n_hooks[k]++];
            long long t = 0;
            if (h == NULL || !YAJL_IS_OBJECT(h))
                return hull_error_setx(err, EINVAL, "hooks.%s[%zu]: must be an object", kind, i);
            if (p_str(h, "path", "hooks[].path", &o->path, err) < 0 ||
                p_strv(h, "args", "hooks[].args", &o->args, err) < 0 ||
                p_strv(h, "env", "hooks[].env", &o->env, err) < 0 ||
                p_int(h, "timeout", "hooks[].timeout", 1, INT64_MAX, &t, &o->has_timeout, err) < 0)
                return hull_error_wrap(err, "hooks.%s", kind);
            o->timeout = t;
            if (o->path == NULL || o->path[0] != '/')
                return hull_error_setx(err, EINVAL, "hooks.%s[%zu]: path must be absolute", kind,
                                       i);
        }
    }
    return 0;
}

/* ---- seccomp ------------------------------------------------------------------------------- */
void hull_ocispec_seccomp_free(struct hull_ocispec_seccomp *s)
{
    if (s == NULL)
        return;
    free(s->default_action);
    hull_strv_free(s->architectures);
    hull_strv_free(s->flags);
    free(s->listener_path);
    free(s->listener_metadata);
    for (size_t i = 0; i < s->n_syscalls; i++) {
        struct hull_ocispec_syscall *c = &s->syscalls[i];
        hull_strv_free(c->names);
        free(c->action);
        for (size_t j = 0; j < c->n_args; j++)
            free(c->args[j].op);
        free(c->args);
    }
    free(s->syscalls);
    free(s);
}

static int parse_syscall(yajl_val c, size_t i, struct hull_ocispec_syscall *o, hull_error_t *err)
{
    if (c == NULL || !YAJL_IS_OBJECT(c))
        return hull_error_setx(err, EINVAL, "linux.seccomp.syscalls[%zu]: must be an object", i);
    if (p_strv(c, "names", "linux.seccomp.syscalls[].names", &o->names, err) < 0 ||
        p_str(c, "action", "linux.seccomp.syscalls[].action", &o->action, err) < 0 ||
        p_u32(c, "errnoRet", "linux.seccomp.syscalls[].errnoRet", &o->errno_ret, &o->has_errno_ret,
              err) < 0)
        return -EINVAL;
    if (o->names == NULL)
        o->names = xmalloc0(sizeof(char *));
    if (o->action == NULL || o->action[0] == '\0')
        return hull_error_setx(err, EINVAL, "linux.seccomp.syscalls[%zu]: no action", i);
    yajl_val args = get(c, "args");
    size_t n = 0;
    if (args == NULL)
        return 0;
    if (array_len(args, "linux.seccomp.syscalls[].args", &n, err) < 0)
        return -EINVAL;
    o->args = xmalloc0((n + 1) * sizeof(*o->args));
    for (size_t j = 0; j < n; j++) {
        yajl_val a = args->u.array.values[j];
        struct hull_ocispec_seccomp_arg *x = &o->args[o->n_args++];
        if (a == NULL || !YAJL_IS_OBJECT(a))
            return hull_error_setx(err, EINVAL,
                                   "linux.seccomp.syscalls[%zu].args[%zu]: must be "
                                   "an object",
                                   i, j);
        if (req_u32(a, "index", "linux.seccomp.syscalls[].args[].index", &x->index, err) < 0 ||
            p_u64(a, "value", "linux.seccomp.syscalls[].args[].value", &x->value, NULL, err) < 0 ||
            p_u64(a, "valueTwo", "linux.seccomp.syscalls[].args[].valueTwo", &x->value_two,
                  &x->has_value_two, err) < 0 ||
            p_str(a, "op", "linux.seccomp.syscalls[].args[].op", &x->op, err) < 0)
            return -EINVAL;
        if (x->op == NULL)
            return hull_error_setx(err, EINVAL, "linux.seccomp.syscalls[%zu].args[%zu]: no op", i,
                                   j);
    }
    return 0;
}

int hull_ocispec_seccomp_from_tree(yajl_val node, struct hull_ocispec_seccomp **out,
                                   hull_error_t *err)
{
    *out = NULL;
    if (node == NULL || !YAJL_IS_OBJECT(node))
        return hull_error_setx(err, EINVAL, "linux.seccomp: must be an object");
    struct hull_ocispec_seccomp *s = xmalloc0(sizeof(*s));
    int r = -EINVAL;
    if (p_str(node, "defaultAction", "linux.seccomp.defaultAction", &s->default_action, err) < 0 ||
        p_u32(node, "defaultErrnoRet", "linux.seccomp.defaultErrnoRet", &s->default_errno_ret,
              &s->has_default_errno_ret, err) < 0 ||
        p_strv(node, "architectures", "linux.seccomp.architectures", &s->architectures, err) < 0 ||
        p_strv(node, "flags", "linux.seccomp.flags", &s->flags, err) < 0 ||
        p_str(node, "listenerPath", "linux.seccomp.listenerPath", &s->listener_path, err) < 0 ||
        p_str(node, "listenerMetadata", "linux.seccomp.listenerMetadata", &s->listener_metadata,
              err) < 0)
        goto fail;
    if (s->default_action == NULL || s->default_action[0] == '\0') {
        hull_error_setx(err, EINVAL, "linux.seccomp: defaultAction missing");
        goto fail;
    }
    yajl_val calls = get(node, "syscalls");
    size_t n = 0;
    if (calls) {
        if (array_len(calls, "linux.seccomp.syscalls", &n, err) < 0)
            goto fail;
        s->syscalls = xmalloc0((n + 1) * sizeof(*s->syscalls));
        for (size_t i = 0; i < n; i++)
            if (parse_syscall(calls->u.array.values[i], i, &s->syscalls[s->n_syscalls++], err) < 0)
                goto fail;
    }
    *out = s;
    return 0;
fail:
    hull_ocispec_seccomp_free(s);
    return r;
}

/* ---- linux --------------------------------------------------------------------------------- */
static int parse_idmaps(yajl_val arr, const char *what, struct hull_ocispec_idmap **out, size_t *n,
                        hull_error_t *err)
{
    size_t len = 0;
    if (arr == NULL)
        return 0;
    if (array_len(arr, what, &len, err) < 0)
        return -EINVAL;
    if (len > MAX_IDMAPS)
        return hull_error_setx(err, E2BIG, "%s: too many entries", what);
    *out = xmalloc0((len + 1) * sizeof(**out));
    for (size_t i = 0; i < len; i++) {
        yajl_val m = arr->u.array.values[i];
        struct hull_ocispec_idmap *o = &(*out)[(*n)++];
        if (m == NULL || need_object(m, what, err) < 0 ||
            req_u32(m, "containerID", what, &o->container_id, err) < 0 ||
            req_u32(m, "hostID", what, &o->host_id, err) < 0 ||
            req_u32(m, "size", what, &o->size, err) < 0)
            return -EINVAL;
    }
    return 0;
}

static int parse_devices(yajl_val arr, struct hull_ocispec_linux *l, hull_error_t *err)
{
    size_t n = 0;
    if (arr == NULL)
        return 0;
    if (array_len(arr, "linux.devices", &n, err) < 0)
        return -EINVAL;
    l->devices = xmalloc0((n + 1) * sizeof(*l->devices));
    for (size_t i = 0; i < n; i++) {
        yajl_val d = arr->u.array.values[i];
        struct hull_ocispec_device *o = &l->devices[l->n_devices++];
        _cleanup_free_ char *type = NULL;
        long long maj = 0, min = 0;
        if (d == NULL || !YAJL_IS_OBJECT(d))
            return hull_error_setx(err, EINVAL, "linux.devices[%zu]: must be an object", i);
        if (p_str(d, "path", "linux.devices[].path", &o->path, err) < 0 ||
            p_str(d, "type", "linux.devices[].type", &type, err) < 0)
            return -EINVAL;
        if (o->path == NULL || o->path[0] != '/')
            return hull_error_setx(err, EINVAL, "linux.devices[%zu]: bad path", i);
        if (type == NULL || strlen(type) != 1 || strchr("cbup", type[0]) == NULL)
            return hull_error_setx(err, EINVAL, "linux.devices `%s`: bad type `%s`", o->path,
                                   type ? type : "");
        o->type = type[0];
        if (p_int(d, "major", "linux.devices[].major", INT64_MIN, INT64_MAX, &maj, NULL, err) < 0 ||
            p_int(d, "minor", "linux.devices[].minor", INT64_MIN, INT64_MAX, &min, NULL, err) < 0 ||
            p_u32(d, "fileMode", "linux.devices[].fileMode", &o->file_mode, &o->has_file_mode,
                  err) < 0 ||
            p_u32(d, "uid", "linux.devices.uid", &o->uid, &o->has_uid, err) < 0 ||
            p_u32(d, "gid", "linux.devices.gid", &o->gid, &o->has_gid, err) < 0)
            return -EINVAL;
        o->major = maj;
        o->minor = min;
    }
    return 0;
}

/* ---- linux.resources ----------------------------------------------------------------------- */
#define RES "linux.resources"

/* A cgroup value (cgroup.h) in [min, max]; a number above INT64_MAX is "max" (INT64_MAX) where
 * max is INT64_MAX.  Absent: *out is left unset. */
static int p_cg(yajl_val obj, const char *key, const char *what, int64_t min, int64_t max,
                int64_t *out, hull_error_t *err)
{
    yajl_val v = get(obj, key);
    if (v == NULL)
        return 0;
    if (!YAJL_IS_NUMBER(v))
        return hull_error_setx(err, EINVAL, "%s: must be an integer", what);
    if (YAJL_IS_INTEGER(v)) {
        long long x = YAJL_GET_INTEGER(v);
        if (x < min || x > max)
            return hull_error_setx(err, ERANGE, "%s: %lld out of range", what, x);
        *out = x;
        return 0;
    }
    uint64_t big = 0;
    if (p_u64(obj, key, what, &big, NULL, err) < 0)
        return -ERANGE;
    if (max != INT64_MAX)
        return hull_error_setx(err, ERANGE, "%s: %s out of range", what, v->u.number.r);
    *out = INT64_MAX;
    return 0;
}

/* the same, required */
static int req_cg(yajl_val obj, const char *key, const char *what, int64_t min, int64_t max,
                  int64_t *out, hull_error_t *err)
{
    int64_t x = HULL_CG_UNSET;
    if (p_cg(obj, key, what, min, max, &x, err) < 0)
        return -EINVAL;
    if (x == HULL_CG_UNSET)
        return hull_error_setx(err, EINVAL, "%s: missing", what);
    *out = x;
    return 0;
}

/* a member object of linux.resources (NULL when absent) */
static int res_object(yajl_val res, const char *key, yajl_val *out, hull_error_t *err)
{
    char what[64];
    *out = get(res, key);
    snprintf(what, sizeof(what), RES ".%s", key);
    return *out ? need_object(*out, what, err) : 0;
}

static int parse_device_rule(yajl_val d, size_t i, struct hull_cgroup_device_rule *o,
                             hull_error_t *err)
{
    char what[64];
    _cleanup_free_ char *type = NULL, *access = NULL;
    snprintf(what, sizeof(what), RES ".devices[%zu]", i);
    *o = (struct hull_cgroup_device_rule){.type = 'a', .major = -1, .minor = -1};
    if (d == NULL || need_object(d, what, err) < 0 ||
        p_bool(d, "allow", RES ".devices[].allow", &o->allow, err) < 0 ||
        p_str(d, "type", RES ".devices[].type", &type, err) < 0 ||
        p_str(d, "access", RES ".devices[].access", &access, err) < 0 ||
        p_cg(d, "major", RES ".devices[].major", -1, INT64_MAX, &o->major, err) < 0 ||
        p_cg(d, "minor", RES ".devices[].minor", -1, INT64_MAX, &o->minor, err) < 0)
        return -EINVAL;
    /* absent or empty: all devices, every access (the spec's defaults) */
    if (type && type[0]) {
        if (strlen(type) != 1 || strchr("abc", type[0]) == NULL)
            return hull_error_setx(err, EINVAL, "%s: invalid type `%s` (a, b or c)", what, type);
        o->type = type[0];
    }
    o->access = hull_cgroup_device_access_bits(access);
    if (o->access == 0)
        return hull_error_setx(err, EINVAL, "%s: invalid access `%s` (r, w, m)", what, access);
    return 0;
}

static int parse_device_rules(yajl_val arr, struct hull_cgroup_resources *r, hull_error_t *err)
{
    size_t n = 0;
    if (arr == NULL)
        return 0;
    if (array_len(arr, RES ".devices", &n, err) < 0)
        return -EINVAL;
    r->devices = xmalloc0((n + 1) * sizeof(*r->devices));
    for (size_t i = 0; i < n; i++)
        if (parse_device_rule(arr->u.array.values[i], i, &r->devices[r->n_devices++], err) < 0)
            return -EINVAL;
    return 0;
}

static int parse_memory(yajl_val res, struct hull_cgroup_resources *r, hull_error_t *err)
{
    yajl_val m = NULL;
    bool oom = false;
    /* -1 is "no limit"; a uint64 above INT64_MAX too */
    if (res_object(res, "memory", &m, err) < 0 || m == NULL)
        return m ? -EINVAL : 0;
    if (p_cg(m, "limit", RES ".memory.limit", -1, INT64_MAX, &r->memory.limit, err) < 0 ||
        p_cg(m, "swap", RES ".memory.swap", -1, INT64_MAX, &r->memory.swap, err) < 0 ||
        p_cg(m, "reservation", RES ".memory.reservation", -1, INT64_MAX, &r->memory.reservation,
             err) < 0 ||
        p_cg(m, "kernel", RES ".memory.kernel", -1, INT64_MAX, &r->memory.kernel, err) < 0 ||
        p_cg(m, "kernelTCP", RES ".memory.kernelTCP", -1, INT64_MAX, &r->memory.kernel_tcp, err) <
            0 ||
        p_cg(m, "swappiness", RES ".memory.swappiness", 0, INT64_MAX, &r->memory.swappiness, err) <
            0 ||
        p_bool(m, "disableOOMKiller", RES ".memory.disableOOMKiller", &oom, err) < 0)
        return -EINVAL;
    r->memory.disable_oom_killer = get(m, "disableOOMKiller") ? oom : -1;
    return 0; /* useHierarchy, checkBeforeUpdate: not supported, ignored */
}

static int p_cpuset(yajl_val obj, const char *key, const char *what, char **out, hull_error_t *err)
{
    if (p_str(obj, key, what, out, err) < 0)
        return -EINVAL;
    if (*out && (*out)[0] == '\0') {
        free(*out);
        *out = NULL;
    }
    return 0;
}

static int parse_cpu(yajl_val res, struct hull_cgroup_resources *r, hull_error_t *err)
{
    yajl_val c = NULL;
    const int64_t any = INT64_MIN + 1; /* INT64_MIN is HULL_CG_UNSET */
    if (res_object(res, "cpu", &c, err) < 0 || c == NULL)
        return c ? -EINVAL : 0;
    if (p_cg(c, "shares", RES ".cpu.shares", 0, INT64_MAX, &r->cpu.shares, err) < 0 ||
        p_cg(c, "quota", RES ".cpu.quota", any, INT64_MAX, &r->cpu.quota, err) < 0 ||
        p_cg(c, "period", RES ".cpu.period", 0, INT64_MAX, &r->cpu.period, err) < 0 ||
        p_cg(c, "realtimeRuntime", RES ".cpu.realtimeRuntime", any, INT64_MAX,
             &r->cpu.realtime_runtime, err) < 0 ||
        p_cg(c, "realtimePeriod", RES ".cpu.realtimePeriod", 0, INT64_MAX, &r->cpu.realtime_period,
             err) < 0 ||
        p_cg(c, "idle", RES ".cpu.idle", any, INT64_MAX, &r->cpu.idle, err) < 0 ||
        p_cpuset(c, "cpus", RES ".cpu.cpus", &r->cpu.cpus, err) < 0 ||
        p_cpuset(c, "mems", RES ".cpu.mems", &r->cpu.mems, err) < 0)
        return -EINVAL;
    return 0; /* burst: not supported, ignored */
}

static const char *const throttle_names[HULL_CG_N_THROTTLE] = {
    [HULL_CG_THROTTLE_READ_BPS] = "throttleReadBpsDevice",
    [HULL_CG_THROTTLE_WRITE_BPS] = "throttleWriteBpsDevice",
    [HULL_CG_THROTTLE_READ_IOPS] = "throttleReadIOPSDevice",
    [HULL_CG_THROTTLE_WRITE_IOPS] = "throttleWriteIOPSDevice",
};

/* blockIO.weightDevice (vkey "weight", optional: an entry without one sets nothing) or a
 * throttle list (vkey "rate", required) */
static int parse_dev_values(yajl_val b, const char *key, const char *vkey, int64_t vmax,
                            struct hull_cgroup_dev_value **out, size_t *n_out, hull_error_t *err)
{
    yajl_val arr = get(b, key);
    char what[96];
    size_t n = 0;
    bool weight = strcmp(vkey, "weight") == 0;
    snprintf(what, sizeof(what), RES ".blockIO.%s", key);
    if (arr == NULL)
        return 0;
    if (array_len(arr, what, &n, err) < 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        yajl_val d = arr->u.array.values[i];
        int64_t maj = 0, min = 0, val = HULL_CG_UNSET, leaf = HULL_CG_UNSET;
        char wmaj[128], wmin[128], wval[128], wleaf[128];
        snprintf(what, sizeof(what), RES ".blockIO.%s[%zu]", key, i);
        snprintf(wmaj, sizeof(wmaj), "%s.major", what);
        snprintf(wmin, sizeof(wmin), "%s.minor", what);
        snprintf(wval, sizeof(wval), "%s.%s", what, vkey);
        snprintf(wleaf, sizeof(wleaf), "%s.leafWeight", what);
        if (d == NULL || need_object(d, what, err) < 0 ||
            req_cg(d, "major", wmaj, 0, INT64_MAX, &maj, err) < 0 ||
            req_cg(d, "minor", wmin, 0, INT64_MAX, &min, err) < 0 ||
            (weight ? p_cg(d, vkey, wval, 0, vmax, &val, err)
                    : req_cg(d, vkey, wval, 0, vmax, &val, err)) < 0 ||
            (weight && p_cg(d, "leafWeight", wleaf, 0, UINT16_MAX, &leaf, err) < 0))
            return -EINVAL;
        if (val != HULL_CG_UNSET) /* leafWeight alone: not supported, nothing set */
            hull_cgroup_resources_add_dev(out, n_out, maj, min, val);
    }
    return 0;
}

static int parse_block_io(yajl_val res, struct hull_cgroup_resources *r, hull_error_t *err)
{
    yajl_val b = NULL;
    if (res_object(res, "blockIO", &b, err) < 0 || b == NULL)
        return b ? -EINVAL : 0;
    if (p_cg(b, "weight", RES ".blockIO.weight", 0, UINT16_MAX, &r->blkio.weight, err) < 0 ||
        p_cg(b, "leafWeight", RES ".blockIO.leafWeight", 0, UINT16_MAX, &r->blkio.leaf_weight,
             err) < 0 ||
        parse_dev_values(b, "weightDevice", "weight", UINT16_MAX, &r->blkio.weight_device,
                         &r->blkio.n_weight_device, err) < 0)
        return -EINVAL;
    for (size_t i = 0; i < HULL_CG_N_THROTTLE; i++)
        if (parse_dev_values(b, throttle_names[i], "rate", INT64_MAX, &r->blkio.throttle[i],
                             &r->blkio.n_throttle[i], err) < 0)
            return -EINVAL;
    return 0;
}

static int parse_hugepage_limits(yajl_val res, struct hull_cgroup_resources *r, hull_error_t *err)
{
    yajl_val arr = get(res, "hugepageLimits");
    size_t n = 0;
    if (arr == NULL)
        return 0;
    if (array_len(arr, RES ".hugepageLimits", &n, err) < 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        yajl_val h = arr->u.array.values[i];
        _cleanup_free_ char *size = NULL;
        int64_t limit = 0;
        char what[64];
        snprintf(what, sizeof(what), RES ".hugepageLimits[%zu]", i);
        if (h == NULL || need_object(h, what, err) < 0 ||
            p_str(h, "pageSize", RES ".hugepageLimits[].pageSize", &size, err) < 0 ||
            req_cg(h, "limit", RES ".hugepageLimits[].limit", 0, INT64_MAX, &limit, err) < 0)
            return -EINVAL;
        if (size == NULL || size[0] == '\0')
            return hull_error_setx(err, EINVAL, "%s.pageSize: missing", what);
        hull_cgroup_resources_add_hugetlb(r, size, limit);
    }
    return 0;
}

static int parse_unified(yajl_val res, struct hull_cgroup_resources *r, hull_error_t *err)
{
    yajl_val u = get(res, "unified");
    if (u == NULL)
        return 0;
    if (need_object(u, RES ".unified", err) < 0)
        return -EINVAL;
    for (size_t i = 0; i < u->u.object.len; i++) {
        yajl_val v = u->u.object.values[i];
        if (v == NULL || !YAJL_IS_STRING(v))
            return hull_error_setx(err, EINVAL, RES ".unified `%s`: value must be a string",
                                   u->u.object.keys[i]);
        hull_cgroup_resources_add_unified(r, u->u.object.keys[i], YAJL_GET_STRING(v));
    }
    return 0;
}

int hull_ocispec_resources_from_tree(yajl_val node, struct hull_cgroup_resources *r,
                                     hull_error_t *err)
{
    yajl_val pids = NULL, net = NULL;
    hull_cgroup_resources_init(r);
    /* rdma and network.priorities: not supported (no such controller in Hull), ignored */
    if (need_object(node, RES, err) < 0 || parse_device_rules(get(node, "devices"), r, err) < 0 ||
        parse_memory(node, r, err) < 0 || parse_cpu(node, r, err) < 0 ||
        res_object(node, "pids", &pids, err) < 0 ||
        (pids && p_cg(pids, "limit", RES ".pids.limit", INT64_MIN + 1, INT64_MAX, &r->pids_limit,
                      err) < 0) ||
        parse_block_io(node, r, err) < 0 || parse_hugepage_limits(node, r, err) < 0 ||
        parse_unified(node, r, err) < 0 || res_object(node, "network", &net, err) < 0 ||
        (net && p_cg(net, "classID", RES ".network.classID", 0, UINT32_MAX, &r->net_cls_classid,
                     err) < 0)) {
        hull_cgroup_resources_clear(r);
        return -EINVAL;
    }
    return 0;
}

int hull_ocispec_resources_parse(const char *text, struct hull_cgroup_resources *r,
                                 hull_error_t *err)
{
    _cleanup_yajl_ yajl_val t = NULL;
    hull_cgroup_resources_init(r);
    if (hull_json_parse(text, RES, &t, err) < 0)
        return -EINVAL;
    return hull_ocispec_resources_from_tree(t, r, err);
}

static int parse_linux(yajl_val lx, struct hull_ocispec_linux *l, hull_error_t *err)
{
    if (need_object(lx, "linux", err) < 0)
        return -EINVAL;
    yajl_val nss = get(lx, "namespaces");
    if (nss) {
        size_t n = 0;
        if (array_len(nss, "linux.namespaces", &n, err) < 0)
            return -EINVAL;
        l->namespaces = xmalloc0((n + 1) * sizeof(*l->namespaces));
        for (size_t i = 0; i < n; i++) {
            yajl_val ns = nss->u.array.values[i];
            struct hull_ocispec_namespace *o = &l->namespaces[l->n_namespaces++];
            if (ns == NULL || need_object(ns, "linux.namespaces[]", err) < 0 ||
                p_str(ns, "type", "linux.namespaces[].type", &o->type, err) < 0 ||
                p_str(ns, "path", "linux.namespaces[].path", &o->path, err) < 0)
                return -EINVAL;
            if (o->type == NULL || !in_list(o->type, namespace_types, N_ELEMS(namespace_types)))
                return hull_error_setx(err, EINVAL, "linux.namespaces: unknown type `%s`",
                                       o->type ? o->type : "");
            for (size_t j = 0; j + 1 < l->n_namespaces; j++)
                if (strcmp(l->namespaces[j].type, o->type) == 0)
                    return hull_error_setx(err, EINVAL, "linux.namespaces: duplicate `%s`",
                                           o->type);
            if (o->path && o->path[0] == '\0') {
                free(o->path);
                o->path = NULL;
            }
        }
    }
    if (parse_idmaps(get(lx, "uidMappings"), "linux.uidMappings", &l->uid_mappings,
                     &l->n_uid_mappings, err) < 0 ||
        parse_idmaps(get(lx, "gidMappings"), "linux.gidMappings", &l->gid_mappings,
                     &l->n_gid_mappings, err) < 0 ||
        parse_devices(get(lx, "devices"), l, err) < 0 ||
        p_kv(lx, "sysctl", "linux.sysctl", &l->sysctl, &l->n_sysctl, err) < 0 ||
        p_strv(lx, "maskedPaths", "linux.maskedPaths", &l->masked_paths, err) < 0 ||
        p_strv(lx, "readonlyPaths", "linux.readonlyPaths", &l->readonly_paths, err) < 0 ||
        p_str(lx, "cgroupsPath", "linux.cgroupsPath", &l->cgroups_path, err) < 0 ||
        p_str(lx, "rootfsPropagation", "linux.rootfsPropagation", &l->rootfs_propagation, err) <
            0 ||
        p_str(lx, "mountLabel", "linux.mountLabel", &l->mount_label, err) < 0)
        return -EINVAL;
    if (l->rootfs_propagation && l->rootfs_propagation[0] == '\0') {
        free(l->rootfs_propagation);
        l->rootfs_propagation = NULL;
    }
    if (l->rootfs_propagation &&
        !in_list(l->rootfs_propagation, propagations, N_ELEMS(propagations)))
        return hull_error_setx(err, EINVAL, "linux.rootfsPropagation: unknown `%s`",
                               l->rootfs_propagation);
    yajl_val res = get(lx, "resources");
    if (res) {
        l->resources = xmalloc0(sizeof(*l->resources));
        if (hull_ocispec_resources_from_tree(res, l->resources, err) < 0)
            return -EINVAL;
    }
    yajl_val sc = get(lx, "seccomp");
    if (sc && hull_ocispec_seccomp_from_tree(sc, &l->seccomp, err) < 0)
        return -EINVAL;
    yajl_val to = get(lx, "timeOffsets");
    if (to) {
        if (need_object(to, "linux.timeOffsets", err) < 0)
            return -EINVAL;
        for (int i = 0; i < HULL_OCISPEC_N_CLOCKS; i++) {
            yajl_val c = get(to, clock_names[i]);
            struct hull_ocispec_time_offset *o = &l->time_offsets[i];
            long long secs = 0;
            if (c == NULL)
                continue;
            if (need_object(c, "linux.timeOffsets.<clock>", err) < 0 ||
                p_int(c, "secs", "linux.timeOffsets.secs", INT64_MIN, INT64_MAX, &secs, NULL, err) <
                    0 ||
                p_u32(c, "nanosecs", "linux.timeOffsets.nanosecs", &o->nanosecs, NULL, err) < 0)
                return -EINVAL;
            o->set = true;
            o->secs = secs;
        }
    }
    yajl_val pers = get(lx, "personality");
    if (pers) {
        if (need_object(pers, "linux.personality", err) < 0 ||
            p_str(pers, "domain", "linux.personality.domain", &l->personality_domain, err) < 0 ||
            p_strv(pers, "flags", "linux.personality.flags", &l->personality_flags, err) < 0)
            return -EINVAL;
        if (l->personality_domain == NULL)
            l->personality_domain = xstrdup("");
    }
    l->has_intel_rdt = get(lx, "intelRdt") != NULL;
    return 0;
}

/* ---- the document -------------------------------------------------------------------------- */
static int spec_from_tree(yajl_val tree, struct hull_ocispec **out, hull_error_t *err)
{
    *out = NULL;
    _cleanup_hull_ocispec_ struct hull_ocispec *s = hull_ocispec_new();
    if (tree == NULL || !YAJL_IS_OBJECT(tree))
        return hull_error_setx(err, EINVAL, "config.json: not a JSON object");
    if (p_str(tree, "ociVersion", "ociVersion", &s->oci_version, err) < 0)
        return -EINVAL;
    if (s->oci_version == NULL)
        return hull_error_setx(err, EINVAL, "config.json: ociVersion missing");
    if (strncmp(s->oci_version, "1.", 2) != 0)
        return hull_error_setx(err, EINVAL, "config.json: unsupported ociVersion `%s`",
                               s->oci_version);
    yajl_val root = get(tree, "root");
    if (root && (need_object(root, "root", err) < 0 ||
                 p_str(root, "path", "root.path", &s->root_path, err) < 0 ||
                 p_bool(root, "readonly", "root.readonly", &s->root_readonly, err) < 0))
        return -EINVAL;
    if (s->root_path == NULL || s->root_path[0] == '\0')
        return hull_error_setx(err, EINVAL, "config.json: root.path missing");
    yajl_val proc = get(tree, "process");
    if (proc) {
        s->process = xmalloc0(sizeof(*s->process));
        if (hull_ocispec_process_from_tree(proc, s->process, err) < 0)
            return -EINVAL;
    }
    yajl_val lx = get(tree, "linux");
    if (p_str(tree, "hostname", "hostname", &s->hostname, err) < 0 ||
        p_str(tree, "domainname", "domainname", &s->domainname, err) < 0 ||
        parse_mounts(get(tree, "mounts"), s, err) < 0 ||
        parse_hooks(get(tree, "hooks"), s, err) < 0 ||
        p_kv(tree, "annotations", "annotations", &s->annotations, &s->n_annotations, err) < 0 ||
        (lx && parse_linux(lx, hull_ocispec_linux(s), err) < 0))
        return -EINVAL;
    *out = hull_steal(s);
    return 0;
}

int hull_ocispec_parse(const char *text, struct hull_ocispec **out, hull_error_t *err)
{
    _cleanup_yajl_ yajl_val tree = NULL;
    *out = NULL;
    int r = hull_json_parse(text ? text : "", "config.json", &tree, err);
    if (r < 0)
        return r;
    return spec_from_tree(tree, out, err);
}

/* ---- serializing --------------------------------------------------------------------------- */
static void jw_uint(struct hull_json_writer *w, uint64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%" PRIu64, v);
    yajl_gen_number(w->gen, buf, (size_t)n);
}

static void jw_value_depth(struct hull_json_writer *w, yajl_val v, int depth)
{
    if (v == NULL || depth > 64) {
        hull_jw_null(w);
    } else if (YAJL_IS_STRING(v)) {
        hull_jw_string(w, YAJL_GET_STRING(v));
    } else if (YAJL_IS_NUMBER(v)) {
        const char *r = v->u.number.r;
        yajl_gen_number(w->gen, r, strlen(r));
    } else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        hull_jw_bool(w, YAJL_IS_TRUE(v));
    } else if (YAJL_IS_ARRAY(v)) {
        hull_jw_begin_array(w);
        for (size_t i = 0; i < v->u.array.len; i++)
            jw_value_depth(w, v->u.array.values[i], depth + 1);
        hull_jw_end_array(w);
    } else if (YAJL_IS_OBJECT(v)) {
        hull_jw_begin_object(w);
        for (size_t i = 0; i < v->u.object.len; i++) {
            hull_jw_key(w, v->u.object.keys[i]);
            jw_value_depth(w, v->u.object.values[i], depth + 1);
        }
        hull_jw_end_object(w);
    } else {
        hull_jw_null(w);
    }
}

void hull_jw_value(struct hull_json_writer *w, yajl_val v)
{
    jw_value_depth(w, v, 0);
}

static void kv_strv(struct hull_json_writer *w, const char *key, char *const *v)
{
    if (v == NULL)
        return;
    hull_jw_key(w, key);
    hull_jw_begin_array(w);
    for (; *v; v++)
        hull_jw_string(w, *v);
    hull_jw_end_array(w);
}

static void kv_str(struct hull_json_writer *w, const char *key, const char *s)
{
    if (s)
        hull_jw_kv_string(w, key, s);
}

static void kv_map(struct hull_json_writer *w, const char *key, const struct hull_ocispec_kv *kv,
                   size_t n)
{
    if (kv == NULL)
        return;
    hull_jw_key(w, key);
    hull_jw_begin_object(w);
    for (size_t i = 0; i < n; i++)
        hull_jw_kv_string(w, kv[i].key, kv[i].value);
    hull_jw_end_object(w);
}

static void write_process(struct hull_json_writer *w, const struct hull_ocispec_process *p)
{
    hull_jw_begin_object(w);
    hull_jw_kv_bool(w, "terminal", p->terminal);
    if (p->has_console_size) {
        hull_jw_key(w, "consoleSize");
        hull_jw_begin_object(w);
        hull_jw_kv_int(w, "height", p->console_height);
        hull_jw_kv_int(w, "width", p->console_width);
        hull_jw_end_object(w);
    }
    const struct hull_ocispec_user *u = &p->user;
    hull_jw_key(w, "user");
    hull_jw_begin_object(w);
    hull_jw_kv_int(w, "uid", u->uid);
    hull_jw_kv_int(w, "gid", u->gid);
    if (u->has_umask)
        hull_jw_kv_int(w, "umask", u->umask);
    if (u->additional_gids) {
        hull_jw_key(w, "additionalGids");
        hull_jw_begin_array(w);
        for (size_t i = 0; i < u->n_additional_gids; i++)
            hull_jw_int(w, u->additional_gids[i]);
        hull_jw_end_array(w);
    }
    kv_str(w, "username", u->username);
    hull_jw_end_object(w);
    kv_strv(w, "args", p->args);
    kv_strv(w, "env", p->env);
    kv_str(w, "cwd", p->cwd);
    if (p->has_capabilities) {
        hull_jw_key(w, "capabilities");
        hull_jw_begin_object(w);
        kv_strv(w, "bounding", p->caps.bounding);
        kv_strv(w, "effective", p->caps.effective);
        kv_strv(w, "permitted", p->caps.permitted);
        kv_strv(w, "inheritable", p->caps.inheritable);
        kv_strv(w, "ambient", p->caps.ambient);
        hull_jw_end_object(w);
    }
    if (p->rlimits) {
        hull_jw_key(w, "rlimits");
        hull_jw_begin_array(w);
        for (size_t i = 0; i < p->n_rlimits; i++) {
            hull_jw_begin_object(w);
            hull_jw_kv_string(w, "type", p->rlimits[i].type);
            hull_jw_key(w, "hard");
            jw_uint(w, p->rlimits[i].hard);
            hull_jw_key(w, "soft");
            jw_uint(w, p->rlimits[i].soft);
            hull_jw_end_object(w);
        }
        hull_jw_end_array(w);
    }
    hull_jw_kv_bool(w, "noNewPrivileges", p->no_new_privileges);
    if (p->has_oom_score_adj)
        hull_jw_kv_int(w, "oomScoreAdj", p->oom_score_adj);
    kv_str(w, "apparmorProfile", p->apparmor_profile);
    kv_str(w, "selinuxLabel", p->selinux_label);
    hull_jw_end_object(w);
}

static void write_seccomp(struct hull_json_writer *w, const struct hull_ocispec_seccomp *s)
{
    hull_jw_begin_object(w);
    hull_jw_kv_string(w, "defaultAction", s->default_action);
    if (s->has_default_errno_ret)
        hull_jw_kv_int(w, "defaultErrnoRet", s->default_errno_ret);
    kv_strv(w, "architectures", s->architectures);
    kv_strv(w, "flags", s->flags);
    kv_str(w, "listenerPath", s->listener_path);
    kv_str(w, "listenerMetadata", s->listener_metadata);
    if (s->syscalls) {
        hull_jw_key(w, "syscalls");
        hull_jw_begin_array(w);
        for (size_t i = 0; i < s->n_syscalls; i++) {
            const struct hull_ocispec_syscall *c = &s->syscalls[i];
            hull_jw_begin_object(w);
            kv_strv(w, "names", c->names);
            hull_jw_kv_string(w, "action", c->action);
            if (c->has_errno_ret)
                hull_jw_kv_int(w, "errnoRet", c->errno_ret);
            if (c->args) {
                hull_jw_key(w, "args");
                hull_jw_begin_array(w);
                for (size_t j = 0; j < c->n_args; j++) {
                    const struct hull_ocispec_seccomp_arg *a = &c->args[j];
                    hull_jw_begin_object(w);
                    hull_jw_kv_int(w, "index", a->index);
                    hull_jw_key(w, "value");
                    jw_uint(w, a->value);
                    if (a->has_value_two) {
                        hull_jw_key(w, "valueTwo");
                        jw_uint(w, a->value_two);
                    }
                    hull_jw_kv_string(w, "op", a->op);
                    hull_jw_end_object(w);
                }
                hull_jw_end_array(w);
            }
            hull_jw_end_object(w);
        }
        hull_jw_end_array(w);
    }
    hull_jw_end_object(w);
}

static void write_idmaps(struct hull_json_writer *w, const char *key,
                         const struct hull_ocispec_idmap *m, size_t n)
{
    if (m == NULL)
        return;
    hull_jw_key(w, key);
    hull_jw_begin_array(w);
    for (size_t i = 0; i < n; i++) {
        hull_jw_begin_object(w);
        hull_jw_kv_int(w, "containerID", m[i].container_id);
        hull_jw_kv_int(w, "hostID", m[i].host_id);
        hull_jw_kv_int(w, "size", m[i].size);
        hull_jw_end_object(w);
    }
    hull_jw_end_array(w);
}

/* ---- linux.resources ----------------------------------------------------------------------- */
static void kv_cg(struct hull_json_writer *w, const char *key, int64_t v)
{
    if (v != HULL_CG_UNSET)
        hull_jw_kv_int(w, key, v);
}

static void write_device_rules(struct hull_json_writer *w, const struct hull_cgroup_resources *r)
{
    if (r->devices == NULL)
        return;
    hull_jw_key(w, "devices");
    hull_jw_begin_array(w);
    for (size_t i = 0; i < r->n_devices; i++) {
        const struct hull_cgroup_device_rule *d = &r->devices[i];
        char type[2] = {d->type, '\0'}, access[4];
        hull_jw_begin_object(w);
        hull_jw_kv_bool(w, "allow", d->allow);
        if (d->type != 'a') /* absent: all (as runc spec writes its deny-all rule) */
            hull_jw_kv_string(w, "type", type);
        if (d->major >= 0)
            hull_jw_kv_int(w, "major", d->major);
        if (d->minor >= 0)
            hull_jw_kv_int(w, "minor", d->minor);
        hull_jw_kv_string(w, "access", hull_cgroup_device_access_string(d->access, access));
        hull_jw_end_object(w);
    }
    hull_jw_end_array(w);
}

static void write_memory(struct hull_json_writer *w, const struct hull_cgroup_resources *r)
{
    const int64_t U = HULL_CG_UNSET;
    if (r->memory.limit == U && r->memory.swap == U && r->memory.reservation == U &&
        r->memory.kernel == U && r->memory.kernel_tcp == U && r->memory.swappiness == U &&
        r->memory.disable_oom_killer < 0)
        return;
    hull_jw_key(w, "memory");
    hull_jw_begin_object(w);
    kv_cg(w, "limit", r->memory.limit);
    kv_cg(w, "swap", r->memory.swap);
    kv_cg(w, "reservation", r->memory.reservation);
    kv_cg(w, "kernel", r->memory.kernel);
    kv_cg(w, "kernelTCP", r->memory.kernel_tcp);
    kv_cg(w, "swappiness", r->memory.swappiness);
    if (r->memory.disable_oom_killer >= 0)
        hull_jw_kv_bool(w, "disableOOMKiller", r->memory.disable_oom_killer == 1);
    hull_jw_end_object(w);
}

static void write_cpu(struct hull_json_writer *w, const struct hull_cgroup_resources *r)
{
    const int64_t U = HULL_CG_UNSET;
    if (r->cpu.shares == U && r->cpu.quota == U && r->cpu.period == U &&
        r->cpu.realtime_runtime == U && r->cpu.realtime_period == U && r->cpu.idle == U &&
        r->cpu.cpus == NULL && r->cpu.mems == NULL)
        return;
    hull_jw_key(w, "cpu");
    hull_jw_begin_object(w);
    kv_cg(w, "shares", r->cpu.shares);
    kv_cg(w, "quota", r->cpu.quota);
    kv_cg(w, "period", r->cpu.period);
    kv_cg(w, "realtimeRuntime", r->cpu.realtime_runtime);
    kv_cg(w, "realtimePeriod", r->cpu.realtime_period);
    kv_cg(w, "idle", r->cpu.idle);
    kv_str(w, "cpus", r->cpu.cpus);
    kv_str(w, "mems", r->cpu.mems);
    hull_jw_end_object(w);
}

static void write_dev_values(struct hull_json_writer *w, const char *key, const char *vkey,
                             const struct hull_cgroup_dev_value *v, size_t n)
{
    if (n == 0)
        return;
    hull_jw_key(w, key);
    hull_jw_begin_array(w);
    for (size_t i = 0; i < n; i++) {
        hull_jw_begin_object(w);
        hull_jw_kv_int(w, "major", v[i].major);
        hull_jw_kv_int(w, "minor", v[i].minor);
        hull_jw_kv_int(w, vkey, v[i].value);
        hull_jw_end_object(w);
    }
    hull_jw_end_array(w);
}

static void write_block_io(struct hull_json_writer *w, const struct hull_cgroup_resources *r)
{
    size_t n_thr = 0;
    for (size_t i = 0; i < HULL_CG_N_THROTTLE; i++)
        n_thr += r->blkio.n_throttle[i];
    if (r->blkio.weight == HULL_CG_UNSET && r->blkio.leaf_weight == HULL_CG_UNSET &&
        r->blkio.n_weight_device == 0 && n_thr == 0)
        return;
    hull_jw_key(w, "blockIO");
    hull_jw_begin_object(w);
    kv_cg(w, "weight", r->blkio.weight);
    kv_cg(w, "leafWeight", r->blkio.leaf_weight);
    write_dev_values(w, "weightDevice", "weight", r->blkio.weight_device, r->blkio.n_weight_device);
    for (size_t i = 0; i < HULL_CG_N_THROTTLE; i++)
        write_dev_values(w, throttle_names[i], "rate", r->blkio.throttle[i],
                         r->blkio.n_throttle[i]);
    hull_jw_end_object(w);
}

static void write_resources(struct hull_json_writer *w, const struct hull_cgroup_resources *r)
{
    hull_jw_begin_object(w);
    write_device_rules(w, r);
    write_memory(w, r);
    write_cpu(w, r);
    if (r->pids_limit != HULL_CG_UNSET) {
        hull_jw_key(w, "pids");
        hull_jw_begin_object(w);
        hull_jw_kv_int(w, "limit", r->pids_limit);
        hull_jw_end_object(w);
    }
    write_block_io(w, r);
    if (r->n_hugetlb) {
        hull_jw_key(w, "hugepageLimits");
        hull_jw_begin_array(w);
        for (size_t i = 0; i < r->n_hugetlb; i++) {
            hull_jw_begin_object(w);
            kv_str(w, "pageSize", r->hugetlb[i].page_size);
            kv_cg(w, "limit", r->hugetlb[i].limit);
            hull_jw_end_object(w);
        }
        hull_jw_end_array(w);
    }
    if (r->n_unified) {
        hull_jw_key(w, "unified");
        hull_jw_begin_object(w);
        for (size_t i = 0; i < r->n_unified; i++) {
            hull_jw_key(w, r->unified[i].key);
            hull_jw_string(w, r->unified[i].value);
        }
        hull_jw_end_object(w);
    }
    if (r->net_cls_classid != HULL_CG_UNSET) {
        hull_jw_key(w, "network");
        hull_jw_begin_object(w);
        hull_jw_kv_int(w, "classID", r->net_cls_classid);
        hull_jw_end_object(w);
    }
    hull_jw_end_object(w);
}

char *hull_ocispec_resources_to_json(const struct hull_cgroup_resources *r)
{
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    write_resources(&w, r);
    char *s = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    return s;
}

static void write_linux(struct hull_json_writer *w, const struct hull_ocispec_linux *l)
{
    hull_jw_begin_object(w);
    kv_map(w, "sysctl", l->sysctl, l->n_sysctl);
    if (l->resources) {
        hull_jw_key(w, "resources");
        write_resources(w, l->resources);
    }
    kv_str(w, "cgroupsPath", l->cgroups_path);
    if (l->namespaces) {
        hull_jw_key(w, "namespaces");
        hull_jw_begin_array(w);
        for (size_t i = 0; i < l->n_namespaces; i++) {
            hull_jw_begin_object(w);
            hull_jw_kv_string(w, "type", l->namespaces[i].type);
            kv_str(w, "path", l->namespaces[i].path);
            hull_jw_end_object(w);
        }
        hull_jw_end_array(w);
    }
    write_idmaps(w, "uidMappings", l->uid_mappings, l->n_uid_mappings);
    write_idmaps(w, "gidMappings", l->gid_mappings, l->n_gid_mappings);
    if (l->devices) {
        hull_jw_key(w, "devices");
        hull_jw_begin_array(w);
        for (size_t i = 0; i < l->n_devices; i++) {
            const struct hull_ocispec_device *d = &l->devices[i];
            char t[2] = {d->type, 0};
            hull_jw_begin_object(w);
            hull_jw_kv_string(w, "path", d->path);
            hull_jw_kv_string(w, "type", t);
            hull_jw_kv_int(w, "major", d->major);
            hull_jw_kv_int(w, "minor", d->minor);
            if (d->has_file_mode)
                hull_jw_kv_int(w, "fileMode", d->file_mode);
            if (d->has_uid)
                hull_jw_kv_int(w, "uid", d->uid);
            if (d->has_gid)
                hull_jw_kv_int(w, "gid", d->gid);
            hull_jw_end_object(w);
        }
        hull_jw_end_array(w);
    }
    kv_strv(w, "maskedPaths", l->masked_paths);
    kv_strv(w, "readonlyPaths", l->readonly_paths);
    kv_str(w, "rootfsPropagation", l->rootfs_propagation);
    kv_str(w, "mountLabel", l->mount_label);
    if (l->seccomp) {
        hull_jw_key(w, "seccomp");
        write_seccomp(w, l->seccomp);
    }
    bool any_offset = false;
    for (int i = 0; i < HULL_OCISPEC_N_CLOCKS; i++)
        any_offset = any_offset || l->time_offsets[i].set;
    if (any_offset) {
        hull_jw_key(w, "timeOffsets");
        hull_jw_begin_object(w);
        for (int i = 0; i < HULL_OCISPEC_N_CLOCKS; i++) {
            if (!l->time_offsets[i].set)
                continue;
            hull_jw_key(w, clock_names[i]);
            hull_jw_begin_object(w);
            hull_jw_kv_int(w, "secs", l->time_offsets[i].secs);
            hull_jw_kv_int(w, "nanosecs", l->time_offsets[i].nanosecs);
            hull_jw_end_object(w);
        }
        hull_jw_end_object(w);
    }
    if (l->personality_domain) {
        hull_jw_key(w, "personality");
        hull_jw_begin_object(w);
        hull_jw_kv_string(w, "domain", l->personality_domain);
        kv_strv(w, "flags", l->personality_flags);
        hull_jw_end_object(w);
    }
    hull_jw_end_object(w);
}

static void write_document(struct hull_json_writer *w, const struct hull_ocispec *s)
{
    hull_jw_begin_object(w);
    hull_jw_kv_string(w, "ociVersion", s->oci_version ? s->oci_version : "1.1.0");
    if (s->process) {
        hull_jw_key(w, "process");
        write_process(w, s->process);
    }
    hull_jw_key(w, "root");
    hull_jw_begin_object(w);
    hull_jw_kv_string(w, "path", s->root_path);
    hull_jw_kv_bool(w, "readonly", s->root_readonly);
    hull_jw_end_object(w);
    kv_str(w, "hostname", s->hostname);
    kv_str(w, "domainname", s->domainname);
    if (s->mounts) {
        hull_jw_key(w, "mounts");
        hull_jw_begin_array(w);
        for (size_t i = 0; i < s->n_mounts; i++) {
            const struct hull_ocispec_mount *m = &s->mounts[i];
            hull_jw_begin_object(w);
            hull_jw_kv_string(w, "destination", m->destination);
            kv_str(w, "type", m->type);
            kv_str(w, "source", m->source);
            kv_strv(w, "options", m->options);
            hull_jw_end_object(w);
        }
        hull_jw_end_array(w);
    }
    if (s->has_hooks) {
        hull_jw_key(w, "hooks");
        hull_jw_begin_object(w);
        for (int k = 0; k < HULL_OCISPEC_N_HOOK_KINDS; k++) {
            if (s->hooks[k] == NULL)
                continue;
            hull_jw_key(w, hull_ocispec_hook_names[k]);
            hull_jw_begin_array(w);
            for (size_t i = 0; i < s->n_hooks[k]; i++) {
                const struct hull_ocispec_hook *h = &s->hooks[k][i];
                hull_jw_begin_object(w);
                hull_jw_kv_string(w, "path", h->path);
                kv_strv(w, "args", h->args);
                kv_strv(w, "env", h->env);
                if (h->has_timeout)
                    hull_jw_kv_int(w, "timeout", h->timeout);
                hull_jw_end_object(w);
            }
            hull_jw_end_array(w);
        }
        hull_jw_end_object(w);
    }
    kv_map(w, "annotations", s->annotations, s->n_annotations);
    if (s->linux_) {
        hull_jw_key(w, "linux");
        write_linux(w, s->linux_);
    }
    hull_jw_end_object(w);
}

char *hull_ocispec_to_json(const struct hull_ocispec *s, bool pretty)
{
    struct hull_json_writer w;
    hull_jw_init(&w, pretty);
    write_document(&w, s);
    char *out = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    return out;
}

char *hull_ocispec_process_to_json(const struct hull_ocispec_process *p)
{
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    write_process(&w, p);
    char *out = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    return out;
}

/* ---- building, copying and freeing ------------------------------------------------------------
 */
struct hull_ocispec *hull_ocispec_new(void)
{
    return xmalloc0(sizeof(struct hull_ocispec));
}

struct hull_ocispec_linux *hull_ocispec_linux(struct hull_ocispec *s)
{
    if (s->linux_ == NULL)
        s->linux_ = xmalloc0(sizeof(*s->linux_));
    return s->linux_;
}

void hull_ocispec_process_clear(struct hull_ocispec_process *p)
{
    free(p->user.additional_gids);
    free(p->user.username);
    hull_strv_free(p->args);
    hull_strv_free(p->env);
    free(p->cwd);
    hull_strv_free(p->caps.bounding);
    hull_strv_free(p->caps.effective);
    hull_strv_free(p->caps.inheritable);
    hull_strv_free(p->caps.permitted);
    hull_strv_free(p->caps.ambient);
    for (size_t i = 0; i < p->n_rlimits; i++)
        free(p->rlimits[i].type);
    free(p->rlimits);
    free(p->apparmor_profile);
    free(p->selinux_label);
    memset(p, 0, sizeof(*p));
}

static void kv_free(struct hull_ocispec_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

static void linux_free(struct hull_ocispec_linux *l)
{
    if (l == NULL)
        return;
    kv_free(l->sysctl, l->n_sysctl);
    if (l->resources) {
        hull_cgroup_resources_clear(l->resources);
        free(l->resources);
    }
    free(l->cgroups_path);
    for (size_t i = 0; i < l->n_namespaces; i++) {
        free(l->namespaces[i].type);
        free(l->namespaces[i].path);
    }
    free(l->namespaces);
    free(l->uid_mappings);
    free(l->gid_mappings);
    for (size_t i = 0; i < l->n_devices; i++)
        free(l->devices[i].path);
    free(l->devices);
    hull_strv_free(l->masked_paths);
    hull_strv_free(l->readonly_paths);
    free(l->rootfs_propagation);
    free(l->mount_label);
    hull_ocispec_seccomp_free(l->seccomp);
    free(l->personality_domain);
    hull_strv_free(l->personality_flags);
    free(l);
}

void hull_ocispec_free(struct hull_ocispec *s)
{
    if (s == NULL)
        return;
    free(s->oci_version);
    if (s->process) {
        hull_ocispec_process_clear(s->process);
        free(s->process);
    }
    free(s->root_path);
    free(s->hostname);
    free(s->domainname);
    for (size_t i = 0; i < s->n_mounts; i++) {
        free(s->mounts[i].destination);
        free(s->mounts[i].type);
        free(s->mounts[i].source);
        hull_strv_free(s->mounts[i].options);
    }
    free(s->mounts);
    for (int k = 0; k < HULL_OCISPEC_N_HOOK_KINDS; k++) {
        for (size_t i = 0; i < s->n_hooks[k]; i++) {
            free(s->hooks[k][i].path);
            hull_strv_free(s->hooks[k][i].args);
            hull_strv_free(s->hooks[k][i].env);
        }
        free(s->hooks[k]);
    }
    kv_free(s->annotations, s->n_annotations);
    linux_free(s->linux_);
    free(s);
}
