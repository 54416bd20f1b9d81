/* Container adjustments: merging what each plugin asked for (a field two plugins touch is a
 * conflict, as NRI's field ownership) and applying the result to the OCI spec, and the
 * container description plugins get from the spec. */
#include "nri/internal.h"

#include <errno.h>
#include <string.h>

#define PB(x) Nri__Pkg__Api__V1alpha1__##x

struct kv {
    char *k;
    const char *v; /* NULL: removed */
};

struct keyed {
    char *key;        /* mount destination or device path */
    const void *item; /* the Mount / LinuxDevice, NULL: removed */
};

struct owner {
    char *field;
    char *plugin;
};

struct nri_merge {
    struct owner *own;
    size_t n_own;
    struct kv *ann, *env;
    size_t n_ann, n_env;
    struct keyed *mounts, *devs;
    size_t n_mounts, n_devs;
    const PB(Hook) * *hooks[6];
    size_t n_hooks[6];
    const PB(POSIXRlimit) * *rl;
    size_t n_rl;
    char *const *args;
    size_t n_args;
    bool has_args;
    const PB(LinuxMemory) * mem_limit, *mem_res, *mem_swap;
    const PB(LinuxCPU) * cpu_shares, *cpu_quota, *cpu_period, *cpu_cpus, *cpu_mems;
    bool any;
};

struct nri_merge *nri_merge_new(void)
{
    return xmalloc0(sizeof(struct nri_merge));
}

void nri_merge_free(struct nri_merge *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_own; i++) {
        free(m->own[i].field);
        free(m->own[i].plugin);
    }
    free(m->own);
    for (size_t i = 0; i < m->n_ann; i++)
        free(m->ann[i].k);
    for (size_t i = 0; i < m->n_env; i++)
        free(m->env[i].k);
    for (size_t i = 0; i < m->n_mounts; i++)
        free(m->mounts[i].key);
    for (size_t i = 0; i < m->n_devs; i++)
        free(m->devs[i].key);
    free(m->ann);
    free(m->env);
    free(m->mounts);
    free(m->devs);
    for (int i = 0; i < 6; i++)
        free(m->hooks[i]);
    free(m->rl);
    free(m);
}

bool nri_merge_empty(const struct nri_merge *m)
{
    return !m->any;
}

/* Claims field for plugin: a field another plugin claimed is a conflict. */
static int claim(struct nri_merge *m, const char *plugin, hull_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int claim(struct nri_merge *m, const char *plugin, hull_error_t *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *field = NULL;
    if (vasprintf(&field, fmt, ap) < 0)
        abort();
    va_end(ap);
    for (size_t i = 0; i < m->n_own; i++) {
        if (strcmp(m->own[i].field, field) != 0)
            continue;
        int r = 0;
        if (strcmp(m->own[i].plugin, plugin) != 0)
            r = hull_error_setx(err, EINVAL,
                                "NRI adjustment conflict: plugins %s and %s both change %s",
                                m->own[i].plugin, plugin, field);
        free(field);
        return r;
    }
    m->own = xrealloc(m->own, (m->n_own + 1) * sizeof(*m->own));
    m->own[m->n_own++] = (struct owner){field, xstrdup(plugin)};
    m->any = true;
    return 0;
}

/* "-key" marks a removal */
static const char *unmark(const char *k, bool *del)
{
    *del = k[0] == '-';
    return *del ? k + 1 : k;
}

/* Index of key k in l, -1 when absent. */
static ssize_t kv_find(const struct kv *l, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].k, k) == 0)
            return (ssize_t)i;
    return -1;
}

static ssize_t keyed_find(const struct keyed *l, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].key, k) == 0)
            return (ssize_t)i;
    return -1;
}

static void kv_set(struct kv **l, size_t *n, const char *k, const char *v)
{
    ssize_t i = kv_find(*l, *n, k);
    if (i >= 0) {
        (*l)[i].v = v;
        return;
    }
    *l = xrealloc(*l, (*n + 1) * sizeof(**l));
    (*l)[(*n)++] = (struct kv){xstrdup(k), v};
}

static void keyed_set(struct keyed **l, size_t *n, const char *k, const void *item)
{
    ssize_t i = keyed_find(*l, *n, k);
    if (i >= 0) {
        (*l)[i].item = item;
        return;
    }
    *l = xrealloc(*l, (*n + 1) * sizeof(**l));
    (*l)[(*n)++] = (struct keyed){xstrdup(k), item};
}

static void hooks_add(struct nri_merge *m, int i, PB(Hook) * *h, size_t n)
{
    if (n == 0)
        return;
    m->hooks[i] = xrealloc(m->hooks[i], (m->n_hooks[i] + n) * sizeof(*m->hooks[i]));
    for (size_t k = 0; k < n; k++)
        m->hooks[i][m->n_hooks[i]++] = h[k];
    m->any = true;
}

static bool utf8_valid(const unsigned char *s)
{
    while (*s) {
        size_t n = *s < 0x80             ? 0
                   : (*s & 0xe0) == 0xc0 ? 1
                   : (*s & 0xf0) == 0xe0 ? 2
                   : (*s & 0xf8) == 0xf0 ? 3
                                         : 4;
        if (n == 4 || (n == 1 && *s < 0xc2))
            return false;
        for (size_t i = 1; i <= n; i++)
            if ((s[i] & 0xc0) != 0x80)
                return false;
        s += n + 1;
    }
    return true;
}

/* Whether every string of m and of the messages it holds is UTF-8 (protobuf-c does not check;
 * the spec is JSON). */
static bool strings_valid(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)m + f->offset;
        size_t n = 1;
        void *const *items = (void *const *)base;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)((const char *)m + f->quantifier_offset);
            items = *(void *const *const *)base;
        }
        for (size_t k = 0; k < n; k++) {
            const void *v = items[k];
            if (v == NULL)
                continue;
            if (f->type == PROTOBUF_C_TYPE_STRING ? !utf8_valid(v) : !strings_valid(v))
                return false;
        }
    }
    return true;
}

int nri_merge_add(struct nri_merge *m, const char *plugin, const PB(ContainerAdjustment) * a,
                  hull_error_t *err)
{
    bool del;
    if (!strings_valid(&a->base))
        return hull_error_setx(err, EINVAL,
                               "NRI plugin %s: adjustment with a string that is not UTF-8", plugin);
    for (size_t i = 0; i < a->n_annotations; i++) {
        const char *k = unmark(a->annotations[i]->key, &del);
        if (claim(m, plugin, err, "annotation %s", k) < 0)
            return -EINVAL;
        kv_set(&m->ann, &m->n_ann, k, del ? NULL : a->annotations[i]->value);
    }
    for (size_t i = 0; i < a->n_env; i++) {
        const char *k = unmark(a->env[i]->key, &del);
        if (k[0] == '\0')
            return hull_error_setx(err, EINVAL,
                                   "NRI plugin %s: environment variable without a name", plugin);
        if (claim(m, plugin, err, "environment variable %s", k) < 0)
            return -EINVAL;
        kv_set(&m->env, &m->n_env, k, del ? NULL : a->env[i]->value);
    }
    for (size_t i = 0; i < a->n_mounts; i++) {
        const char *k = unmark(a->mounts[i]->destination, &del);
        if (k[0] != '/')
            return hull_error_setx(
                err, EINVAL, "NRI plugin %s: mount destination \"%s\" is not absolute", plugin, k);
        if (claim(m, plugin, err, "mount %s", k) < 0)
            return -EINVAL;
        keyed_set(&m->mounts, &m->n_mounts, k, del ? NULL : a->mounts[i]);
    }
    if (a->linux) {
        for (size_t i = 0; i < a->linux->n_devices; i++) {
            const char *k = unmark(a->linux->devices[i]->path, &del);
            if (k[0] != '/')
                return hull_error_setx(
                    err, EINVAL, "NRI plugin %s: device path \"%s\" is not absolute", plugin, k);
            if (claim(m, plugin, err, "device %s", k) < 0)
                return -EINVAL;
            keyed_set(&m->devs, &m->n_devs, k, del ? NULL : a->linux->devices[i]);
        }
        const PB(LinuxResources) *res = a->linux->resources;
        if (res && res->memory) {
            const PB(LinuxMemory) *mem = res->memory;
            if (mem->limit && (claim(m, plugin, err, "memory limit") < 0))
                return -EINVAL;
            if (mem->reservation && (claim(m, plugin, err, "memory reservation") < 0))
                return -EINVAL;
            if (mem->swap && (claim(m, plugin, err, "memory swap") < 0))
                return -EINVAL;
            m->mem_limit = mem->limit ? mem : m->mem_limit;
            m->mem_res = mem->reservation ? mem : m->mem_res;
            m->mem_swap = mem->swap ? mem : m->mem_swap;
        }
        if (res && res->cpu) {
            const PB(LinuxCPU) *c = res->cpu;
            if ((c->shares && claim(m, plugin, err, "cpu shares") < 0) ||
                (c->quota && claim(m, plugin, err, "cpu quota") < 0) ||
                (c->period && claim(m, plugin, err, "cpu period") < 0) ||
                (c->cpus && c->cpus[0] && claim(m, plugin, err, "cpuset cpus") < 0) ||
                (c->mems && c->mems[0] && claim(m, plugin, err, "cpuset mems") < 0))
                return -EINVAL;
            m->cpu_shares = c->shares ? c : m->cpu_shares;
            m->cpu_quota = c->quota ? c : m->cpu_quota;
            m->cpu_period = c->period ? c : m->cpu_period;
            m->cpu_cpus = c->cpus && c->cpus[0] ? c : m->cpu_cpus;
            m->cpu_mems = c->mems && c->mems[0] ? c : m->cpu_mems;
        }
    }
    for (size_t i = 0; i < a->n_rlimits; i++) {
        if (claim(m, plugin, err, "rlimit %s", a->rlimits[i]->type) < 0)
            return -EINVAL;
        bool found = false;
        for (size_t k = 0; k < m->n_rl; k++)
            if (strcmp(m->rl[k]->type, a->rlimits[i]->type) == 0) {
                m->rl[k] = a->rlimits[i];
                found = true;
            }
        if (!found) {
            m->rl = xrealloc(m->rl, (m->n_rl + 1) * sizeof(*m->rl));
            m->rl[m->n_rl++] = a->rlimits[i];
        }
    }
    if (a->n_args > 0) {
        /* a leading "" (UpdateArgs) replaces the args without claiming them */
        bool update = a->args[0][0] == '\0';
        if (!update && claim(m, plugin, err, "args") < 0)
            return -EINVAL;
        m->args = a->args + (update ? 1 : 0);
        m->n_args = a->n_args - (update ? 1 : 0);
        m->has_args = true;
        m->any = true;
    }
    if (a->hooks) {
        hooks_add(m, 0, a->hooks->prestart, a->hooks->n_prestart);
        hooks_add(m, 1, a->hooks->create_runtime, a->hooks->n_create_runtime);
        hooks_add(m, 2, a->hooks->create_container, a->hooks->n_create_container);
        hooks_add(m, 3, a->hooks->start_container, a->hooks->n_start_container);
        hooks_add(m, 4, a->hooks->poststart, a->hooks->n_poststart);
        hooks_add(m, 5, a->hooks->poststop, a->hooks->n_poststop);
    }
    if (a->n_cdi_devices > 0)
        return hull_error_setx(err, EINVAL, "NRI plugin %s: CDI devices are not supported", plugin);
    return 0;
}

/* ---- applying: the spec copied with the adjusted parts rewritten ------------------------- */
static void copy(struct hull_json_writer *w, yajl_val v)
{
    if (v == NULL || YAJL_IS_NULL(v)) {
        hull_jw_null(w);
    } else if (YAJL_IS_STRING(v)) {
        hull_jw_string(w, YAJL_GET_STRING(v));
    } else if (YAJL_IS_INTEGER(v)) {
        hull_jw_int(w, YAJL_GET_INTEGER(v));
    } else if (YAJL_IS_NUMBER(v)) {
        const char *r = v->u.number.r;
        yajl_gen_number(w->gen, r, strlen(r));
    } else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        hull_jw_bool(w, YAJL_IS_TRUE(v));
    } else if (YAJL_IS_OBJECT(v)) {
        hull_jw_begin_object(w);
        for (size_t i = 0; i < v->u.object.len; i++) {
            hull_jw_key(w, v->u.object.keys[i]);
            copy(w, v->u.object.values[i]);
        }
        hull_jw_end_object(w);
    } else if (YAJL_IS_ARRAY(v)) {
        hull_jw_begin_array(w);
        for (size_t i = 0; i < v->u.array.len; i++)
            copy(w, v->u.array.values[i]);
        hull_jw_end_array(w);
    }
}

/* Opens an object and copies obj's members except those named in skip (NULL-terminated). */
static void open_except(struct hull_json_writer *w, yajl_val obj, const char *const *skip)
{
    hull_jw_begin_object(w);
    if (obj == NULL || !YAJL_IS_OBJECT(obj))
        return;
    for (size_t i = 0; i < obj->u.object.len; i++) {
        bool s = false;
        for (size_t k = 0; skip[k]; k++)
            s = s || strcmp(obj->u.object.keys[i], skip[k]) == 0;
        if (s)
            continue;
        hull_jw_key(w, obj->u.object.keys[i]);
        copy(w, obj->u.object.values[i]);
    }
}

static yajl_val get(yajl_val obj, const char *k)
{
    return obj && YAJL_IS_OBJECT(obj) ? hull_json_get(obj, k) : NULL;
}

static size_t arr_len(yajl_val a)
{
    return a && YAJL_IS_ARRAY(a) ? a->u.array.len : 0;
}

static void w_strv(struct hull_json_writer *w, char *const *v, size_t n)
{
    hull_jw_begin_array(w);
    for (size_t i = 0; i < n; i++)
        hull_jw_string(w, v[i]);
    hull_jw_end_array(w);
}

static void w_env(struct hull_json_writer *w, yajl_val env, const struct nri_merge *m)
{
    hull_jw_begin_array(w);
    bool *done = xmalloc0((m->n_env + 1) * sizeof(bool));
    for (size_t i = 0; i < arr_len(env); i++) {
        const char *e = YAJL_GET_STRING(env->u.array.values[i]);
        if (e == NULL)
            continue;
        const char *eq = strchr(e, '=');
        size_t kl = eq ? (size_t)(eq - e) : strlen(e);
        bool handled = false;
        for (size_t k = 0; k < m->n_env && !handled; k++) {
            if (strlen(m->env[k].k) != kl || strncmp(m->env[k].k, e, kl) != 0)
                continue;
            handled = true;
            if (m->env[k].v && !done[k]) {
                _cleanup_free_ char *s = xasprintf("%s=%s", m->env[k].k, m->env[k].v);
                hull_jw_string(w, s);
            }
            done[k] = true;
        }
        if (!handled)
            hull_jw_string(w, e);
    }
    for (size_t k = 0; k < m->n_env; k++)
        if (!done[k] && m->env[k].v) {
            _cleanup_free_ char *s = xasprintf("%s=%s", m->env[k].k, m->env[k].v);
            hull_jw_string(w, s);
        }
    free(done);
    hull_jw_end_array(w);
}

static void w_rlimits(struct hull_json_writer *w, yajl_val rl, const struct nri_merge *m)
{
    hull_jw_begin_array(w);
    for (size_t i = 0; i < arr_len(rl); i++) {
        const char *t = hull_json_get_string(rl->u.array.values[i], "type", "");
        bool replaced = false;
        for (size_t k = 0; k < m->n_rl; k++)
            replaced = replaced || strcmp(m->rl[k]->type, t) == 0;
        if (!replaced)
            copy(w, rl->u.array.values[i]);
    }
    for (size_t k = 0; k < m->n_rl; k++) {
        hull_jw_begin_object(w);
        hull_jw_kv_string(w, "type", m->rl[k]->type);
        hull_jw_key(w, "hard");
        yajl_gen_integer(w->gen, (long long)m->rl[k]->hard);
        hull_jw_key(w, "soft");
        yajl_gen_integer(w->gen, (long long)m->rl[k]->soft);
        hull_jw_end_object(w);
    }
    hull_jw_end_array(w);
}

static void w_process(struct hull_json_writer *w, yajl_val proc, const struct nri_merge *m)
{
    static const char *const skip[] = {"args", "env", "rlimits", NULL};
    open_except(w, proc, skip);
    hull_jw_key(w, "args");
    if (m->has_args)
        w_strv(w, m->args, m->n_args);
    else
        copy(w, get(proc, "args"));
    hull_jw_key(w, "env");
    w_env(w, get(proc, "env"), m);
    if (m->n_rl || get(proc, "rlimits")) {
        hull_jw_key(w, "rlimits");
        w_rlimits(w, get(proc, "rlimits"), m);
    }
    hull_jw_end_object(w);
}

static void w_annotations(struct hull_json_writer *w, yajl_val ann, const struct nri_merge *m)
{
    hull_jw_begin_object(w);
    for (size_t i = 0; ann && YAJL_IS_OBJECT(ann) && i < ann->u.object.len; i++) {
        if (kv_find(m->ann, m->n_ann, ann->u.object.keys[i]) >= 0)
            continue; /* the plugins' value (or removal) below */
        hull_jw_key(w, ann->u.object.keys[i]);
        copy(w, ann->u.object.values[i]);
    }
    for (size_t k = 0; k < m->n_ann; k++)
        if (m->ann[k].v)
            hull_jw_kv_string(w, m->ann[k].k, m->ann[k].v);
    hull_jw_end_object(w);
}

static void w_mounts(struct hull_json_writer *w, yajl_val mounts, const struct nri_merge *m)
{
    hull_jw_begin_array(w);
    for (size_t i = 0; i < arr_len(mounts); i++) {
        const char *d = hull_json_get_string(mounts->u.array.values[i], "destination", "");
        if (keyed_find(m->mounts, m->n_mounts, d) < 0)
            copy(w, mounts->u.array.values[i]);
    }
    for (size_t k = 0; k < m->n_mounts; k++) {
        const PB(Mount) *mt = m->mounts[k].item;
        if (mt == NULL)
            continue;
        hull_jw_begin_object(w);
        hull_jw_kv_string(w, "destination", mt->destination);
        hull_jw_kv_string(w, "type", mt->type && mt->type[0] ? mt->type : "bind");
        hull_jw_kv_string(w, "source", mt->source);
        hull_jw_key(w, "options");
        w_strv(w, mt->options, mt->n_options);
        hull_jw_end_object(w);
    }
    hull_jw_end_array(w);
}

static const char *const hook_names[6] = {"prestart",       "createRuntime", "createContainer",
                                          "startContainer", "poststart",     "poststop"};

static void w_hooks(struct hull_json_writer *w, yajl_val hooks, const struct nri_merge *m)
{
    hull_jw_begin_object(w);
    for (int i = 0; i < 6; i++) {
        yajl_val have = get(hooks, hook_names[i]);
        if (arr_len(have) == 0 && m->n_hooks[i] == 0)
            continue;
        hull_jw_key(w, hook_names[i]);
        hull_jw_begin_array(w);
        for (size_t k = 0; k < arr_len(have); k++)
            copy(w, have->u.array.values[k]);
        for (size_t k = 0; k < m->n_hooks[i]; k++) {
            const PB(Hook) *h = m->hooks[i][k];
            hull_jw_begin_object(w);
            hull_jw_kv_string(w, "path", h->path);
            if (h->n_args) {
                hull_jw_key(w, "args");
                w_strv(w, h->args, h->n_args);
            }
            if (h->n_env) {
                hull_jw_key(w, "env");
                w_strv(w, h->env, h->n_env);
            }
            if (h->timeout)
                hull_jw_kv_int(w, "timeout", h->timeout->value);
            hull_jw_end_object(w);
        }
        hull_jw_end_array(w);
    }
    hull_jw_end_object(w);
}

static const char *dev_type(const PB(LinuxDevice) * d)
{
    return d->type && d->type[0] ? d->type : "c";
}

static void w_devices(struct hull_json_writer *w, yajl_val devs, const struct nri_merge *m)
{
    hull_jw_begin_array(w);
    for (size_t i = 0; i < arr_len(devs); i++) {
        const char *p = hull_json_get_string(devs->u.array.values[i], "path", "");
        if (keyed_find(m->devs, m->n_devs, p) < 0)
            copy(w, devs->u.array.values[i]);
    }
    for (size_t k = 0; k < m->n_devs; k++) {
        const PB(LinuxDevice) *d = m->devs[k].item;
        if (d == NULL)
            continue;
        hull_jw_begin_object(w);
        hull_jw_kv_string(w, "path", d->path);
        hull_jw_kv_string(w, "type", dev_type(d));
        hull_jw_kv_int(w, "major", d->major);
        hull_jw_kv_int(w, "minor", d->minor);
        if (d->file_mode)
            hull_jw_kv_int(w, "fileMode", d->file_mode->value);
        if (d->uid)
            hull_jw_kv_int(w, "uid", d->uid->value);
        if (d->gid)
            hull_jw_kv_int(w, "gid", d->gid->value);
        hull_jw_end_object(w);
    }
    hull_jw_end_array(w);
}

static void w_memory(struct hull_json_writer *w, yajl_val mem, const struct nri_merge *m)
{
    static const char *const skip[] = {"limit", "reservation", "swap", NULL};
    static const char *const none[] = {NULL};
    open_except(w, mem, m->mem_limit || m->mem_res || m->mem_swap ? skip : none);
    if (m->mem_limit || m->mem_res || m->mem_swap) {
        yajl_val l = get(mem, "limit"), r = get(mem, "reservation"), s = get(mem, "swap");
        if (m->mem_limit)
            hull_jw_kv_int(w, "limit", m->mem_limit->limit->value);
        else if (l)
            hull_jw_key(w, "limit"), copy(w, l);
        if (m->mem_res)
            hull_jw_kv_int(w, "reservation", m->mem_res->reservation->value);
        else if (r)
            hull_jw_key(w, "reservation"), copy(w, r);
        if (m->mem_swap)
            hull_jw_kv_int(w, "swap", m->mem_swap->swap->value);
        else if (s)
            hull_jw_key(w, "swap"), copy(w, s);
    }
    hull_jw_end_object(w);
}

static void w_cpu(struct hull_json_writer *w, yajl_val cpu, const struct nri_merge *m)
{
    const char *skip[6] = {NULL};
    size_t n = 0;
    if (m->cpu_shares)
        skip[n++] = "shares";
    if (m->cpu_quota)
        skip[n++] = "quota";
    if (m->cpu_period)
        skip[n++] = "period";
    if (m->cpu_cpus)
        skip[n++] = "cpus";
    if (m->cpu_mems)
        skip[n++] = "mems";
    open_except(w, cpu, skip);
    if (m->cpu_shares) {
        hull_jw_key(w, "shares");
        yajl_gen_integer(w->gen, (long long)m->cpu_shares->shares->value);
    }
    if (m->cpu_quota)
        hull_jw_kv_int(w, "quota", m->cpu_quota->quota->value);
    if (m->cpu_period) {
        hull_jw_key(w, "period");
        yajl_gen_integer(w->gen, (long long)m->cpu_period->period->value);
    }
    if (m->cpu_cpus)
        hull_jw_kv_string(w, "cpus", m->cpu_cpus->cpus);
    if (m->cpu_mems)
        hull_jw_kv_string(w, "mems", m->cpu_mems->mems);
    hull_jw_end_object(w);
}

static void w_resources(struct hull_json_writer *w, yajl_val res, const struct nri_merge *m)
{
    bool mem = m->mem_limit || m->mem_res || m->mem_swap;
    bool cpu = m->cpu_shares || m->cpu_quota || m->cpu_period || m->cpu_cpus || m->cpu_mems;
    static const char *const skip[] = {"devices", "memory", "cpu", NULL};
    open_except(w, res, skip);
    yajl_val devs = get(res, "devices");
    if (devs || m->n_devs) {
        hull_jw_key(w, "devices");
        hull_jw_begin_array(w);
        for (size_t i = 0; i < arr_len(devs); i++)
            copy(w, devs->u.array.values[i]);
        for (size_t k = 0; k < m->n_devs; k++) {
            const PB(LinuxDevice) *d = m->devs[k].item;
            if (d == NULL)
                continue;
            hull_jw_begin_object(w);
            hull_jw_kv_bool(w, "allow", true);
            hull_jw_kv_string(w, "type", dev_type(d));
            hull_jw_kv_int(w, "major", d->major);
            hull_jw_kv_int(w, "minor", d->minor);
            hull_jw_kv_string(w, "access", "rwm");
            hull_jw_end_object(w);
        }
        hull_jw_end_array(w);
    }
    if (get(res, "memory") || mem) {
        hull_jw_key(w, "memory");
        w_memory(w, get(res, "memory"), m);
    }
    if (get(res, "cpu") || cpu) {
        hull_jw_key(w, "cpu");
        w_cpu(w, get(res, "cpu"), m);
    }
    hull_jw_end_object(w);
}

static void w_linux(struct hull_json_writer *w, yajl_val lx, const struct nri_merge *m)
{
    static const char *const skip[] = {"devices", "resources", NULL};
    open_except(w, lx, skip);
    if (get(lx, "devices") || m->n_devs) {
        hull_jw_key(w, "devices");
        w_devices(w, get(lx, "devices"), m);
    }
    hull_jw_key(w, "resources");
    w_resources(w, get(lx, "resources"), m);
    hull_jw_end_object(w);
}

int nri_merge_apply(const struct nri_merge *m, const char *spec_json, char **out, hull_error_t *err)
{
    _cleanup_yajl_ yajl_val root = NULL;
    int r = hull_json_parse(spec_json, "OCI spec", &root, err);
    if (r < 0)
        return r;
    if (!YAJL_IS_OBJECT(root))
        return hull_error_setx(err, EINVAL, "OCI spec is not an object");
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    static const char *const skip[] = {"annotations", "process", "mounts", "hooks", "linux", NULL};
    open_except(&w, root, skip);
    hull_jw_key(&w, "annotations");
    w_annotations(&w, get(root, "annotations"), m);
    hull_jw_key(&w, "process");
    w_process(&w, get(root, "process"), m);
    hull_jw_key(&w, "mounts");
    w_mounts(&w, get(root, "mounts"), m);
    bool hooks = get(root, "hooks") != NULL;
    for (int i = 0; i < 6; i++)
        hooks = hooks || m->n_hooks[i] > 0;
    if (hooks) {
        hull_jw_key(&w, "hooks");
        w_hooks(&w, get(root, "hooks"), m);
    }
    hull_jw_key(&w, "linux");
    w_linux(&w, get(root, "linux"), m);
    hull_jw_end_object(&w);
    *out = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    return 0;
}

/* ---- the container as plugins see it ----------------------------------------------------- */
static char **strv_of(struct nri_arena *a, yajl_val arr, size_t *n)
{
    *n = arr_len(arr);
    char **v = nri_alloc(a, (*n + 1) * sizeof(*v));
    for (size_t i = 0; i < *n; i++)
        v[i] = nri_strdup(a, YAJL_GET_STRING(arr->u.array.values[i]));
    return v;
}

static PB(OptionalInt64) * opt_i64(struct nri_arena *a, yajl_val v)
{
    if (v == NULL || !YAJL_IS_INTEGER(v))
        return NULL;
    PB(OptionalInt64) *o = nri_alloc(a, sizeof(*o));
    nri__pkg__api__v1alpha1__optional_int64__init(o);
    o->value = YAJL_GET_INTEGER(v);
    return o;
}

static PB(OptionalUInt64) * opt_u64(struct nri_arena *a, yajl_val v)
{
    if (v == NULL || !YAJL_IS_INTEGER(v))
        return NULL;
    PB(OptionalUInt64) *o = nri_alloc(a, sizeof(*o));
    nri__pkg__api__v1alpha1__optional_uint64__init(o);
    o->value = (uint64_t)YAJL_GET_INTEGER(v);
    return o;
}

int nri_ctr_from_spec(struct nri_arena *a, nri_ctr_t *c, const char *spec_json, hull_error_t *err)
{
    _cleanup_yajl_ yajl_val root = NULL;
    int r = hull_json_parse(spec_json, "OCI spec", &root, err);
    if (r < 0)
        return r;
    yajl_val proc = get(root, "process");
    c->args = strv_of(a, get(proc, "args"), &c->n_args);
    c->env = strv_of(a, get(proc, "env"), &c->n_env);
    yajl_val ann = get(root, "annotations");
    for (size_t i = 0; ann && YAJL_IS_OBJECT(ann) && i < ann->u.object.len; i++)
        if (YAJL_IS_STRING(ann->u.object.values[i]))
            nri_map_add(a, &c->n_annotations, (void ***)&c->annotations, ann->u.object.keys[i],
                        YAJL_GET_STRING(ann->u.object.values[i]));
    yajl_val mounts = get(root, "mounts");
    c->n_mounts = arr_len(mounts);
    c->mounts = nri_alloc(a, (c->n_mounts + 1) * sizeof(*c->mounts));
    for (size_t i = 0; i < c->n_mounts; i++) {
        yajl_val mv = mounts->u.array.values[i];
        PB(Mount) *mt = nri_alloc(a, sizeof(*mt));
        nri__pkg__api__v1alpha1__mount__init(mt);
        mt->destination = nri_strdup(a, hull_json_get_string(mv, "destination", ""));
        mt->type = nri_strdup(a, hull_json_get_string(mv, "type", ""));
        mt->source = nri_strdup(a, hull_json_get_string(mv, "source", ""));
        mt->options = strv_of(a, get(mv, "options"), &mt->n_options);
        c->mounts[i] = mt;
    }
    yajl_val rl = get(proc, "rlimits");
    c->n_rlimits = arr_len(rl);
    c->rlimits = nri_alloc(a, (c->n_rlimits + 1) * sizeof(*c->rlimits));
    for (size_t i = 0; i < c->n_rlimits; i++) {
        PB(POSIXRlimit) *l = nri_alloc(a, sizeof(*l));
        nri__pkg__api__v1alpha1__posixrlimit__init(l);
        l->type = nri_strdup(a, hull_json_get_string(rl->u.array.values[i], "type", ""));
        l->hard = (uint64_t)hull_json_get_int(rl->u.array.values[i], "hard", 0);
        l->soft = (uint64_t)hull_json_get_int(rl->u.array.values[i], "soft", 0);
        c->rlimits[i] = l;
    }
    yajl_val lx = get(root, "linux");
    PB(LinuxContainer) *l = nri_alloc(a, sizeof(*l));
    nri__pkg__api__v1alpha1__linux_container__init(l);
    l->cgroups_path = nri_strdup(a, hull_json_get_string(lx, "cgroupsPath", ""));
    yajl_val res = get(lx, "resources");
    PB(LinuxResources) *lr = nri_alloc(a, sizeof(*lr));
    nri__pkg__api__v1alpha1__linux_resources__init(lr);
    yajl_val mem = get(res, "memory"), cpu = get(res, "cpu");
    if (mem) {
        lr->memory = nri_alloc(a, sizeof(*lr->memory));
        nri__pkg__api__v1alpha1__linux_memory__init(lr->memory);
        lr->memory->limit = opt_i64(a, get(mem, "limit"));
        lr->memory->reservation = opt_i64(a, get(mem, "reservation"));
        lr->memory->swap = opt_i64(a, get(mem, "swap"));
    }
    if (cpu) {
        lr->cpu = nri_alloc(a, sizeof(*lr->cpu));
        nri__pkg__api__v1alpha1__linux_cpu__init(lr->cpu);
        lr->cpu->shares = opt_u64(a, get(cpu, "shares"));
        lr->cpu->quota = opt_i64(a, get(cpu, "quota"));
        lr->cpu->period = opt_u64(a, get(cpu, "period"));
        lr->cpu->cpus = nri_strdup(a, hull_json_get_string(cpu, "cpus", ""));
        lr->cpu->mems = nri_strdup(a, hull_json_get_string(cpu, "mems", ""));
    }
    l->resources = lr;
    c->linux = l;
    return 0;
}
