/* The systemd cgroup driver: see cgroup_systemd.h. */
#include "common/cgroup_systemd.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/sdbus_dl.h"

#define SD_DEST  "org.freedesktop.systemd1"
#define SD_PATH  "/org/freedesktop/systemd1"
#define SD_MGR   "org.freedesktop.systemd1.Manager"
#define SD_UNIT  "org.freedesktop.systemd1.Unit"
#define SD_PRIV  "/run/systemd/private"
#define JOB_WAIT (30ull * 1000000ull) /* microseconds */

bool hull_systemd_booted(void)
{
    struct stat st;
    return lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- names -------------------------------------------------------------------------------- */
static bool unit_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '-' || c == '@';
}

static bool unit_name_ok(const char *s, const char *suffix)
{
    size_t n = s ? strlen(s) : 0, sl = strlen(suffix);
    if (n <= sl || n > 255 || strcmp(s + n - sl, suffix) != 0 || s[0] == '.')
        return false;
    for (const char *c = s; *c; c++)
        if (!unit_char_ok(*c) || *c == ':')
            return false;
    return strstr(s, "..") == NULL;
}

bool hull_systemd_slice_valid(const char *s)
{
    if (s && strcmp(s, "-.slice") == 0)
        return true;
    if (!unit_name_ok(s, ".slice") || strchr(s, '@'))
        return false;
    size_t stem = strlen(s) - strlen(".slice");
    /* every dash-separated part non-empty: no leading, trailing or double dash */
    if (s[0] == '-' || s[stem - 1] == '-')
        return false;
    for (size_t i = 0; i + 1 < stem; i++)
        if (s[i] == '-' && s[i + 1] == '-')
            return false;
    return true;
}

int hull_systemd_expand_slice(const char *slice, char **out, hull_error_t *err)
{
    *out = NULL;
    if (!hull_systemd_slice_valid(slice))
        return hull_error_setx(err, EINVAL, "\"%s\" is not a valid systemd slice name",
                               slice ? slice : "");
    if (strcmp(slice, "-.slice") == 0) {
        *out = xstrdup("/");
        return 0;
    }
    size_t stem = strlen(slice) - strlen(".slice");
    size_t cap = 1, n = 0;
    for (size_t i = 0; i <= stem; i++)
        if (i == stem || slice[i] == '-')
            cap += 1 + i + strlen(".slice");
    char *p = xmalloc0(cap + 1);
    for (size_t i = 0; i <= stem; i++) {
        if (i != stem && slice[i] != '-')
            continue;
        /* "/" + the prefix up to this dash + ".slice" */
        p[n++] = '/';
        memcpy(p + n, slice, i);
        n += i;
        memcpy(p + n, ".slice", 6);
        n += 6;
    }
    p[n] = '\0';
    *out = p;
    return 0;
}

bool hull_systemd_path_form(const char *path)
{
    if (path == NULL || path[0] == '\0' || path[0] == '/')
        return false;
    if (strchr(path, ':'))
        return true;
    size_t n = strlen(path);
    return n > 6 && strcmp(path + n - 6, ".slice") == 0;
}

int hull_systemd_parse_path(const char *cgroups_path, const char *default_prefix, const char *id,
                            char **slice, char **unit, hull_error_t *err)
{
    *slice = *unit = NULL;
    _cleanup_free_ char *s = NULL, *prefix = NULL, *name = NULL;
    if (cgroups_path == NULL || cgroups_path[0] == '\0') {
        s = xstrdup("system.slice");
        prefix = xstrdup(default_prefix ? default_prefix : "");
        name = xstrdup(id ? id : "");
    } else {
        const char *c1 = strchr(cgroups_path, ':');
        const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c1 == NULL || c2 == NULL || strchr(c2 + 1, ':'))
            return hull_error_setx(err, EINVAL,
                                   "cgroupsPath \"%s\": the systemd cgroup driver expects "
                                   "\"slice:prefix:name\"",
                                   cgroups_path);
        s = xstrndup(cgroups_path, (size_t)(c1 - cgroups_path));
        prefix = xstrndup(c1 + 1, (size_t)(c2 - c1 - 1));
        name = xstrdup(c2 + 1);
        if (*s == '\0') {
            free(s);
            s = xstrdup("system.slice");
        }
        if (*name == '\0') {
            free(name);
            name = xstrdup(id ? id : "");
        }
    }
    if (!hull_systemd_slice_valid(s))
        return hull_error_setx(err, EINVAL, "cgroupsPath \"%s\": \"%s\" is not a valid slice name",
                               cgroups_path ? cgroups_path : "", s);
    size_t nl = strlen(name);
    _cleanup_free_ char *u = NULL;
    if (nl > 6 && strcmp(name + nl - 6, ".slice") == 0)
        u = xstrdup(name);
    else if (*prefix)
        u = xasprintf("%s-%s.scope", prefix, name);
    else
        u = xasprintf("%s.scope", name);
    size_t ul = strlen(u);
    bool ok = ul > 6 && strcmp(u + ul - 6, ".slice") == 0 ? hull_systemd_slice_valid(u)
                                                          : unit_name_ok(u, ".scope");
    if (!ok || *name == '\0')
        return hull_error_setx(err, EINVAL,
                               "cgroupsPath \"%s\": \"%s\" is not a valid systemd unit name",
                               cgroups_path ? cgroups_path : "", u);
    *slice = hull_steal(s);
    *unit = hull_steal(u);
    return 0;
}

int hull_systemd_cgroup_of(const char *path, char **out, hull_error_t *err)
{
    *out = NULL;
    if (path && !strchr(path, ':'))
        return hull_systemd_expand_slice(path, out, err);
    _cleanup_free_ char *slice = NULL, *unit = NULL, *sp = NULL;
    int r = hull_systemd_parse_path(path, NULL, NULL, &slice, &unit, err);
    if (r < 0 || (r = hull_systemd_expand_slice(slice, &sp, err)) < 0)
        return r;
    *out = strcmp(sp, "/") == 0 ? xasprintf("/%s", unit) : xasprintf("%s/%s", sp, unit);
    return 0;
}

/* ---- properties --------------------------------------------------------------------------- */
static struct hull_systemd_prop *prop_add(struct hull_systemd_props *p, const char *name, int type)
{
    /* a later value for a name replaces the earlier one */
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->v[i].name, name) == 0) {
            free(p->v[i].str);
            free(p->v[i].bytes);
            p->v[i].str = NULL;
            p->v[i].bytes = NULL;
            p->v[i].type = type;
            return &p->v[i];
        }
    }
    p->v = xrealloc(p->v, (p->n + 1) * sizeof(*p->v));
    struct hull_systemd_prop *e = &p->v[p->n++];
    memset(e, 0, sizeof(*e));
    e->name = xstrdup(name);
    e->type = type;
    return e;
}

void hull_systemd_props_u64(struct hull_systemd_props *p, const char *name, uint64_t v)
{
    prop_add(p, name, HULL_SD_U64)->u64 = v;
}

void hull_systemd_props_bool(struct hull_systemd_props *p, const char *name, bool v)
{
    prop_add(p, name, HULL_SD_BOOL)->u64 = v;
}

void hull_systemd_props_str(struct hull_systemd_props *p, const char *name, const char *v)
{
    prop_add(p, name, HULL_SD_STR)->str = xstrdup(v);
}

int hull_systemd_props_cpuset(struct hull_systemd_props *p, const char *name, const char *list,
                              hull_error_t *err)
{
    uint8_t *bits = NULL;
    size_t n = 0;
    for (const char *s = list; s && *s;) {
        char *end;
        errno = 0;
        unsigned long a = strtoul(s, &end, 10), b = a;
        if (end == s || errno)
            goto bad;
        if (*end == '-') {
            const char *s2 = end + 1;
            b = strtoul(s2, &end, 10);
            if (end == s2 || errno || b < a)
                goto bad;
        }
        if (b >= 8192)
            goto bad;
        if (b / 8 + 1 > n) {
            bits = xrealloc(bits, b / 8 + 1);
            memset(bits + n, 0, b / 8 + 1 - n);
            n = b / 8 + 1;
        }
        for (unsigned long i = a; i <= b; i++)
            bits[i / 8] |= (uint8_t)(1u << (i % 8));
        while (*end == ' ' || *end == '\n')
            end++;
        if (*end == ',')
            end++;
        else if (*end != '\0')
            goto bad;
        s = end;
    }
    struct hull_systemd_prop *e = prop_add(p, name, HULL_SD_BYTES);
    e->bytes = bits;
    e->n_bytes = n;
    return 0;
bad:
    free(bits);
    return hull_error_setx(err, EINVAL, "%s: invalid CPU or node list \"%s\"", name, list);
}

const struct hull_systemd_prop *hull_systemd_props_find(const struct hull_systemd_props *p,
                                                        const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->v[i].name, name) == 0)
            return &p->v[i];
    return NULL;
}

void hull_systemd_props_clear(struct hull_systemd_props *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].name);
        free(p->v[i].str);
        free(p->v[i].bytes);
    }
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

/* ---- the bus ------------------------------------------------------------------------------ */
static void bus_unrefp(sd_bus **b)
{
    if (*b)
        sd_bus_flush_close_unref(*b);
}
static void msg_unrefp(sd_bus_message **m)
{
    if (*m)
        sd_bus_message_unref(*m);
}
static void slot_unrefp(sd_bus_slot **s)
{
    if (*s)
        sd_bus_slot_unref(*s);
}
/* an error left unset needs no freeing (nor a loaded libsystemd) */
static void bus_error_freep(sd_bus_error *e)
{
    if (e->name || e->message)
        sd_bus_error_free(e);
}
#define _cleanup_bus_       __attribute__((cleanup(bus_unrefp)))
#define _cleanup_msg_       __attribute__((cleanup(msg_unrefp)))
#define _cleanup_slot_      __attribute__((cleanup(slot_unrefp)))
#define _cleanup_bus_error_ __attribute__((cleanup(bus_error_freep)))

/* systemd's private socket as root (no bus daemon needed, as systemctl does), else the
 * system bus. */
static int bus_open(sd_bus **out, hull_error_t *err)
{
    *out = NULL;
    if (!hull_systemd_booted())
        return hull_error_setx(err, ENOTSUP,
                               "the systemd cgroup driver needs systemd as PID 1 "
                               "(/run/systemd/system does not exist)");
    int r = hull_sdbus_load(err);
    if (r < 0)
        return r;
    if (geteuid() == 0 && access(SD_PRIV, F_OK) == 0) {
        _cleanup_bus_ sd_bus *b = NULL;
        if ((r = sd_bus_new(&b)) >= 0 && (r = sd_bus_set_address(b, "unix:path=" SD_PRIV)) >= 0 &&
            (r = sd_bus_start(b)) >= 0) {
            *out = hull_steal(b);
            return 0;
        }
    }
    r = sd_bus_open_system(out);
    if (r < 0)
        return hull_error_set(err, -r, "connect to systemd over D-Bus");
    return 0;
}

static int bus_fail(hull_error_t *err, int r, const sd_bus_error *e, const char *what,
                    const char *unit)
{
    if (e && sd_bus_error_is_set(e))
        return hull_error_setx(err, r == 0 ? EIO : -r, "systemd %s %s: %s", what, unit,
                               e->message ? e->message : e->name);
    return hull_error_set(err, -r, "systemd %s %s", what, unit);
}

int hull_systemd_check(hull_error_t *err)
{
    _cleanup_bus_ sd_bus *bus = NULL;
    int r = bus_open(&bus, err);
    if (r < 0)
        return r;
    _cleanup_bus_error_ sd_bus_error e = SD_BUS_ERROR_NULL;
    _cleanup_free_ char *version = NULL;
    r = sd_bus_get_property_string(bus, SD_DEST, SD_PATH, SD_MGR, "Version", &e, &version);
    if (r < 0)
        return bus_fail(err, r, &e, "manager", "Version");
    log_debug("systemd %s answers on D-Bus", version);
    return 0;
}

static int append_prop(sd_bus_message *m, const struct hull_systemd_prop *p)
{
    int r;
    switch (p->type) {
    case HULL_SD_U64:
        return sd_bus_message_append(m, "(sv)", p->name, "t", p->u64);
    case HULL_SD_BOOL:
        return sd_bus_message_append(m, "(sv)", p->name, "b", (int)(p->u64 != 0));
    case HULL_SD_STR:
        return sd_bus_message_append(m, "(sv)", p->name, "s", p->str);
    case HULL_SD_BYTES:
        if ((r = sd_bus_message_open_container(m, 'r', "sv")) < 0 ||
            (r = sd_bus_message_append(m, "s", p->name)) < 0 ||
            (r = sd_bus_message_open_container(m, 'v', "ay")) < 0 ||
            (r = sd_bus_message_append_array(m, 'y', p->bytes, p->n_bytes)) < 0 ||
            (r = sd_bus_message_close_container(m)) < 0)
            return r;
        return sd_bus_message_close_container(m);
    default:
        return -EINVAL;
    }
}

static int append_props(sd_bus_message *m, const struct hull_systemd_props *props)
{
    for (size_t i = 0; props && i < props->n; i++) {
        int r = append_prop(m, &props->v[i]);
        if (r < 0)
            return r;
    }
    return 0;
}

struct job_wait {
    const char *job;
    bool done;
    char *result;
};

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    struct job_wait *w = userdata;
    uint32_t id;
    const char *path = NULL, *unit = NULL, *result = NULL;
    if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
        return 0;
    if (w->job && path && strcmp(path, w->job) == 0) {
        w->done = true;
        free(w->result);
        w->result = xstrdup(result ? result : "");
    }
    return 0;
}

static uint64_t now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000ull;
}

/* Runs a Manager method that queues a job (args appended by fill), waits for its JobRemoved. */
typedef int (*fill_fn)(sd_bus_message *m, const void *opaque);

static int run_job(sd_bus *bus, const char *method, const char *unit, fill_fn fill,
                   const void *opaque, bool *no_such_unit, hull_error_t *err)
{
    _cleanup_slot_ sd_bus_slot *slot = NULL;
    struct job_wait w = {0};
    int r =
        sd_bus_match_signal(bus, &slot, SD_DEST, SD_PATH, SD_MGR, "JobRemoved", on_job_removed, &w);
    if (r < 0)
        return hull_error_set(err, -r, "systemd: watch for JobRemoved");
    {
        /* systemd emits job signals on the system bus only to subscribers */
        _cleanup_bus_error_ sd_bus_error se = SD_BUS_ERROR_NULL;
        _cleanup_msg_ sd_bus_message *sr = NULL;
        sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MGR, "Subscribe", &se, &sr, NULL);
    }
    _cleanup_msg_ sd_bus_message *m = NULL, *reply = NULL;
    _cleanup_bus_error_ sd_bus_error e = SD_BUS_ERROR_NULL;
    if ((r = sd_bus_message_new_method_call(bus, &m, SD_DEST, SD_PATH, SD_MGR, method)) < 0 ||
        (r = fill(m, opaque)) < 0)
        return hull_error_set(err, -r, "systemd %s %s: build the message", method, unit);
    r = sd_bus_call(bus, m, JOB_WAIT, &e, &reply);
    if (r < 0) {
        if (no_such_unit && (sd_bus_error_has_name(&e, "org.freedesktop.systemd1.NoSuchUnit") ||
                             sd_bus_error_has_name(&e, "org.freedesktop.systemd1.LoadFailed"))) {
            *no_such_unit = true;
            return 0;
        }
        if (sd_bus_error_has_name(&e, "org.freedesktop.systemd1.UnitExists"))
            return hull_error_setx(err, EEXIST, "systemd unit %s exists already", unit);
        return bus_fail(err, r, &e, method, unit);
    }
    const char *job = NULL;
    if ((r = sd_bus_message_read(reply, "o", &job)) < 0)
        return hull_error_set(err, -r, "systemd %s %s: read the reply", method, unit);
    _cleanup_free_ char *job_copy = xstrdup(job);
    w.job = job_copy;
    uint64_t deadline = now_usec() + JOB_WAIT;
    while (!w.done) {
        r = sd_bus_process(bus, NULL);
        if (r < 0) {
            free(w.result);
            return hull_error_set(err, -r, "systemd %s %s: wait for job %s", method, unit, job);
        }
        if (r > 0)
            continue;
        uint64_t now = now_usec();
        if (now >= deadline) {
            free(w.result);
            return hull_error_setx(err, ETIMEDOUT, "systemd %s %s: job %s did not finish", method,
                                   unit, job_copy);
        }
        r = sd_bus_wait(bus, deadline - now);
        if (r < 0) {
            free(w.result);
            return hull_error_set(err, -r, "systemd %s %s: wait for job", method, unit);
        }
    }
    _cleanup_free_ char *result = w.result;
    if (strcmp(result, "done") != 0)
        return hull_error_setx(err, EIO, "systemd %s %s: job %s", method, unit, result);
    return 0;
}

struct start_args {
    const char *unit, *slice, *description;
    const pid_t *pids;
    size_t n_pids;
    const struct hull_systemd_props *props;
};

static int fill_start(sd_bus_message *m, const void *opaque)
{
    const struct start_args *a = opaque;
    int r;
    size_t ul = strlen(a->unit);
    bool scope = ul > 6 && strcmp(a->unit + ul - 6, ".scope") == 0;
    if ((r = sd_bus_message_append(m, "ss", a->unit, "fail")) < 0 ||
        (r = sd_bus_message_open_container(m, 'a', "(sv)")) < 0)
        return r;
    if (a->description &&
        (r = sd_bus_message_append(m, "(sv)", "Description", "s", a->description)) < 0)
        return r;
    if (a->slice && (r = sd_bus_message_append(m, "(sv)", "Slice", "s", a->slice)) < 0)
        return r;
    if (scope) {
        if ((r = sd_bus_message_append(m, "(sv)", "Delegate", "b", 1)) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "CollectMode", "s", "inactive-or-failed")) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "DefaultDependencies", "b", 0)) < 0 ||
            /* an OOM kill inside is the kernel's business (reported as OOMKilled), not a
             * reason for systemd to stop the whole scope (OOMPolicy=stop by default) */
            (r = sd_bus_message_append(m, "(sv)", "OOMPolicy", "s", "continue")) < 0)
            return r;
    }
    if (a->n_pids > 0) {
        _cleanup_free_ uint32_t *v = xmalloc0(a->n_pids * sizeof(uint32_t));
        for (size_t i = 0; i < a->n_pids; i++)
            v[i] = (uint32_t)a->pids[i];
        if ((r = sd_bus_message_open_container(m, 'r', "sv")) < 0 ||
            (r = sd_bus_message_append(m, "s", "PIDs")) < 0 ||
            (r = sd_bus_message_open_container(m, 'v', "au")) < 0 ||
            (r = sd_bus_message_append_array(m, 'u', v, a->n_pids * sizeof(uint32_t))) < 0 ||
            (r = sd_bus_message_close_container(m)) < 0 ||
            (r = sd_bus_message_close_container(m)) < 0)
            return r;
    }
    if ((r = append_props(m, a->props)) < 0 || (r = sd_bus_message_close_container(m)) < 0)
        return r;
    return sd_bus_message_append(m, "a(sa(sv))", 0);
}

int hull_systemd_start_unit(const char *unit, const char *slice, const char *description,
                            const pid_t *pids, size_t n_pids,
                            const struct hull_systemd_props *props, hull_error_t *err)
{
    _cleanup_bus_ sd_bus *bus = NULL;
    int r = bus_open(&bus, err);
    if (r < 0)
        return r;
    struct start_args a = {unit, slice, description, pids, n_pids, props};
    return run_job(bus, "StartTransientUnit", unit, fill_start, &a, NULL, err);
}

static int fill_stop(sd_bus_message *m, const void *opaque)
{
    return sd_bus_message_append(m, "ss", (const char *)opaque, "replace");
}

int hull_systemd_stop_unit(const char *unit, hull_error_t *err)
{
    _cleanup_bus_ sd_bus *bus = NULL;
    int r = bus_open(&bus, err);
    if (r < 0)
        return r;
    bool gone = false;
    return run_job(bus, "StopUnit", unit, fill_stop, unit, &gone, err);
}

int hull_systemd_set_unit_properties(const char *unit, const struct hull_systemd_props *props,
                                     hull_error_t *err)
{
    _cleanup_bus_ sd_bus *bus = NULL;
    int r = bus_open(&bus, err);
    if (r < 0)
        return r;
    _cleanup_msg_ sd_bus_message *m = NULL, *reply = NULL;
    _cleanup_bus_error_ sd_bus_error e = SD_BUS_ERROR_NULL;
    if ((r = sd_bus_message_new_method_call(bus, &m, SD_DEST, SD_PATH, SD_MGR,
                                            "SetUnitProperties")) < 0 ||
        (r = sd_bus_message_append(m, "sb", unit, 1)) < 0 ||
        (r = sd_bus_message_open_container(m, 'a', "(sv)")) < 0 ||
        (r = append_props(m, props)) < 0 || (r = sd_bus_message_close_container(m)) < 0)
        return hull_error_set(err, -r, "systemd SetUnitProperties %s: build the message", unit);
    r = sd_bus_call(bus, m, JOB_WAIT, &e, &reply);
    if (r < 0)
        return bus_fail(err, r, &e, "SetUnitProperties", unit);
    return 0;
}

int hull_systemd_unit_active(const char *unit, hull_error_t *err)
{
    _cleanup_bus_ sd_bus *bus = NULL;
    int r = bus_open(&bus, err);
    if (r < 0)
        return r;
    _cleanup_msg_ sd_bus_message *reply = NULL;
    _cleanup_bus_error_ sd_bus_error e = SD_BUS_ERROR_NULL;
    r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MGR, "GetUnit", &e, &reply, "s", unit);
    if (r < 0) {
        if (sd_bus_error_has_name(&e, "org.freedesktop.systemd1.NoSuchUnit"))
            return 0;
        return bus_fail(err, r, &e, "GetUnit", unit);
    }
    const char *path = NULL;
    if ((r = sd_bus_message_read(reply, "o", &path)) < 0)
        return hull_error_set(err, -r, "systemd GetUnit %s: read the reply", unit);
    _cleanup_free_ char *state = NULL;
    sd_bus_error_free(&e);
    r = sd_bus_get_property_string(bus, SD_DEST, path, SD_UNIT, "ActiveState", &e, &state);
    if (r < 0)
        return bus_fail(err, r, &e, "ActiveState of", unit);
    return strcmp(state, "inactive") != 0 && strcmp(state, "failed") != 0;
}

/* ---- the container driver ------------------------------------------------------------------ */
int hull_cgroup_systemd_resolve(const struct hull_cgroup_layout *l, const char *cgroups_path,
                                const char *id, struct hull_cgroup *out, hull_error_t *err)
{
    memset(out, 0, sizeof(*out));
    _cleanup_free_ char *slice = NULL, *unit = NULL, *sp = NULL;
    int r = hull_systemd_parse_path(cgroups_path, "hull-oci", id, &slice, &unit, err);
    if (r < 0 || (r = hull_systemd_expand_slice(slice, &sp, err)) < 0)
        return r;
    _cleanup_free_ char *rel =
        strcmp(sp, "/") == 0 ? xasprintf("/%s", unit) : xasprintf("%s/%s", sp, unit);
    /* the unit's cgroup, below the root of every hierarchy (absolute, as systemd sees it) */
    if ((r = hull_cgroup_resolve(l, "", rel, id, out, err)) < 0)
        return r;
    out->systemd_unit = hull_steal(unit);
    out->systemd_slice = hull_steal(slice);
    return 0;
}

/* A limit as systemd wants it: UINT64_MAX ("infinity") for -1 / INT64_MAX. */
static uint64_t sd_limit(int64_t v)
{
    return v < 0 || v == INT64_MAX ? UINT64_MAX : (uint64_t)v;
}

/* A unified value that is a number or "max" (UINT64_MAX); false for anything else. */
static bool unified_u64(const char *s, uint64_t *v)
{
    if (strcmp(s, "max") == 0 || strcmp(s, "max\n") == 0) {
        *v = UINT64_MAX;
        return true;
    }
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || (*end != '\0' && strcmp(end, "\n") != 0))
        return false;
    *v = x;
    return true;
}

/* linux.resources.unified keys that have a unit property (as runc and crun map them); the
 * file is written directly afterwards either way, so a value systemd cannot take as a
 * property (not a plain number) is only left out here. */
static int unified_props(const struct hull_cgroup_resources *res, struct hull_systemd_props *p,
                         hull_error_t *err)
{
    static const struct {
        const char *key, *prop;
    } u64_keys[] = {
        {"memory.max", "MemoryMax"},          {"memory.high", "MemoryHigh"},
        {"memory.low", "MemoryLow"},          {"memory.min", "MemoryMin"},
        {"memory.swap.max", "MemorySwapMax"}, {"pids.max", "TasksMax"},
        {"cpu.weight", "CPUWeight"},
    };
    for (size_t i = 0; i < res->n_unified; i++) {
        const char *k = res->unified[i].key, *v = res->unified[i].value;
        uint64_t n;
        if (k == NULL || v == NULL)
            continue;
        for (size_t j = 0; j < sizeof(u64_keys) / sizeof(u64_keys[0]); j++)
            if (strcmp(k, u64_keys[j].key) == 0 && unified_u64(v, &n))
                hull_systemd_props_u64(p, u64_keys[j].prop, n);
        if (strcmp(k, "io.weight") == 0) {
            /* "N" or "default N" */
            const char *w = strncmp(v, "default ", 8) == 0 ? v + 8 : v;
            if (unified_u64(w, &n) && n != UINT64_MAX)
                hull_systemd_props_u64(p, "IOWeight", n);
        } else if (strcmp(k, "cpu.max") == 0) {
            /* "QUOTA|max [PERIOD]" */
            char q[32] = "", per[32] = "";
            uint64_t quota, period = 100000;
            int got = sscanf(v, "%31s %31s", q, per);
            if (got >= 1 && unified_u64(q, &quota) &&
                (got < 2 || (unified_u64(per, &period) && period > 0 && period != UINT64_MAX))) {
                if (got == 2)
                    hull_systemd_props_u64(p, "CPUQuotaPeriodUSec", period);
                hull_systemd_props_u64(p, "CPUQuotaPerSecUSec",
                                       quota == UINT64_MAX ? UINT64_MAX
                                                           : hull_cgroup_quota_per_sec(
                                                                 (int64_t)quota, (int64_t)period));
            }
        } else if (strcmp(k, "cpuset.cpus") == 0 || strcmp(k, "cpuset.mems") == 0) {
            int r = hull_systemd_props_cpuset(
                p, strcmp(k, "cpuset.cpus") == 0 ? "AllowedCPUs" : "AllowedMemoryNodes", v, err);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

/* Unit properties per host mode.  Pure v2: MemoryMax, MemorySwapMax, MemoryLow, CPUWeight,
 * CPUQuotaPeriodUSec, CPUQuotaPerSecUSec, AllowedCPUs, AllowedMemoryNodes, TasksMax,
 * IOWeight, and the unified keys that have a property (unified_props).  v1 and hybrid (the
 * legacy names systemd applies to the v1 controllers, as runc's v1 driver): MemoryLimit,
 * CPUShares, CPUQuotaPeriodUSec, CPUQuotaPerSecUSec, BlockIOWeight, TasksMax (systemd applies
 * AllowedCPUs and swap only on cgroup2).  No property exists for hugetlb, io/blkio throttles
 * and weight devices, memory.swappiness, kernel memory, cpu.idle and realtime, net_cls: those
 * are written to the scope's files after StartTransientUnit (systemd does not touch them). */
int hull_cgroup_systemd_props(const struct hull_cgroup_resources *res, int mode,
                              struct hull_systemd_props *p, hull_error_t *err)
{
    bool v2 = mode == HULL_CGROUP_V2;
    int64_t limit = res->memory.limit, swap = res->memory.swap, low = res->memory.reservation;
    if (limit != HULL_CG_UNSET)
        hull_systemd_props_u64(p, v2 ? "MemoryMax" : "MemoryLimit", sd_limit(limit));
    if (v2) {
        /* runtime-spec swap is memory+swap; systemd's MemorySwapMax is swap alone */
        if (swap != HULL_CG_UNSET) {
            if (swap < 0 || swap == INT64_MAX)
                hull_systemd_props_u64(p, "MemorySwapMax", UINT64_MAX);
            else if (limit > 0 && swap >= limit)
                hull_systemd_props_u64(p, "MemorySwapMax", (uint64_t)(swap - limit));
        }
        if (low != HULL_CG_UNSET)
            hull_systemd_props_u64(p, "MemoryLow", sd_limit(low));
    }
    int64_t shares = res->cpu.shares, quota = res->cpu.quota, period = res->cpu.period;
    if (shares != HULL_CG_UNSET && shares > 0) {
        if (v2)
            hull_systemd_props_u64(p, "CPUWeight", hull_cgroup_shares_to_weight((uint64_t)shares));
        else
            hull_systemd_props_u64(p, "CPUShares", (uint64_t)shares);
    }
    if (period != HULL_CG_UNSET && period > 0)
        hull_systemd_props_u64(p, "CPUQuotaPeriodUSec", (uint64_t)period);
    if (quota != HULL_CG_UNSET && quota != 0)
        hull_systemd_props_u64(p, "CPUQuotaPerSecUSec", hull_cgroup_quota_per_sec(quota, period));
    int r;
    if (v2 && res->cpu.cpus && *res->cpu.cpus &&
        (r = hull_systemd_props_cpuset(p, "AllowedCPUs", res->cpu.cpus, err)) < 0)
        return r;
    if (v2 && res->cpu.mems && *res->cpu.mems &&
        (r = hull_systemd_props_cpuset(p, "AllowedMemoryNodes", res->cpu.mems, err)) < 0)
        return r;
    if (res->pids_limit != HULL_CG_UNSET)
        hull_systemd_props_u64(p, "TasksMax",
                               res->pids_limit <= 0 ? UINT64_MAX : sd_limit(res->pids_limit));
    int64_t w = res->blkio.weight;
    if (w != HULL_CG_UNSET && w > 0) {
        if (v2)
            hull_systemd_props_u64(p, "IOWeight", hull_cgroup_blkio_to_io_weight((uint64_t)w));
        else
            hull_systemd_props_u64(p, "BlockIOWeight", (uint64_t)w);
    }
    if (v2 && (r = unified_props(res, p, err)) < 0)
        return r;
    return 0;
}

int hull_cgroup_systemd_start(struct hull_cgroup *cg, pid_t pid,
                              const struct hull_cgroup_resources *res, const char *description,
                              hull_error_t *err)
{
    _cleanup_systemd_props_ struct hull_systemd_props props = {0};
    int r = hull_cgroup_systemd_props(res, cg->mode, &props, err);
    if (r < 0)
        return r;
    r = hull_systemd_start_unit(cg->systemd_unit, cg->systemd_slice, description, &pid, 1, &props,
                                err);
    if (r < 0)
        return hull_error_wrap(err, "systemd cgroup");
    return 0;
}

int hull_cgroup_systemd_update(struct hull_cgroup *cg, const struct hull_cgroup_resources *res,
                               hull_error_t *err)
{
    if (cg->systemd_unit == NULL)
        return 0;
    _cleanup_systemd_props_ struct hull_systemd_props props = {0};
    int r = hull_cgroup_systemd_props(res, cg->mode, &props, err);
    if (r < 0 || props.n == 0)
        return r;
    return hull_systemd_set_unit_properties(cg->systemd_unit, &props, err);
}

void hull_cgroup_systemd_stop(struct hull_cgroup *cg)
{
    if (cg->systemd_unit == NULL)
        return;
    /* systemd removes the scope's cgroup with the unit */
    _cleanup_error_ hull_error_t e = NULL;
    if (hull_systemd_stop_unit(cg->systemd_unit, &e) < 0)
        log_warn("stop %s: %s", cg->systemd_unit, hull_error_msg(&e));
}
