/* OCI runtime-spec generation from CRI configs: see ocispec.h.
 *
 * Everything pod- or image-supplied is treated as untrusted input here:
 *  - the image's /etc/passwd and /etc/group are read through the rootfs dirfd with
 *    openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS), never by joining strings, with bounded file
 *    (1 MiB) and line (64 KiB) sizes and at most NGROUPS_MAX additional gids;
 *  - ids are range-checked as unsigned 32-bit (and (uint32_t)-1 refused: setresuid() reads it as
 *    "unchanged"); the primary gid is always in additionalGids;
 *  - image volumes are container paths only: cleaned and confined below "/", and their host
 *    directories are named by a hash under <container_dir>/volumes, never by the path itself;
 *  - sysctls are checked against the namespaced allowlist, values may not carry a second key;
 *  - annotations are passed through as data and never read for any setting. */
#include "server/ocispec.h"
#include "server/userns.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>

#define ETC_FILE_MAX        (1u << 20) /* the image's /etc/passwd or /etc/group */
#define ETC_LINE_MAX        (64u << 10)
#define MAX_ADDITIONAL_GIDS 65536 /* NGROUPS_MAX */
#define SECCOMP_FILE_MAX    (4u << 20)
#define DEFAULT_NOFILE      1048576
#define ID_MAX              4294967294u
#define SYSCTL_VALUE_MAX    4096
#define DEFAULT_PATH_ENV    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#define NS_MODE_POD       RUNTIME__V1__NAMESPACE_MODE__POD
#define NS_MODE_CONTAINER RUNTIME__V1__NAMESPACE_MODE__CONTAINER
#define NS_MODE_NODE      RUNTIME__V1__NAMESPACE_MODE__NODE
#define NS_MODE_TARGET    RUNTIME__V1__NAMESPACE_MODE__TARGET

const char *const ocispec_default_caps[] = {"CAP_CHOWN",
                                            "CAP_DAC_OVERRIDE",
                                            "CAP_FSETID",
                                            "CAP_FOWNER",
                                            "CAP_MKNOD",
                                            "CAP_NET_RAW",
                                            "CAP_SETGID",
                                            "CAP_SETUID",
                                            "CAP_SETFCAP",
                                            "CAP_SETPCAP",
                                            "CAP_NET_BIND_SERVICE",
                                            "CAP_SYS_CHROOT",
                                            "CAP_KILL",
                                            "CAP_AUDIT_WRITE",
                                            NULL};

#define N_CAPS HULL_CAP_COUNT

static const char *const default_masked_paths[] = {"/proc/asound",
                                                   "/proc/acpi",
                                                   "/proc/interrupts",
                                                   "/proc/kcore",
                                                   "/proc/keys",
                                                   "/proc/latency_stats",
                                                   "/proc/timer_list",
                                                   "/proc/timer_stats",
                                                   "/proc/sched_debug",
                                                   "/proc/scsi",
                                                   "/sys/firmware",
                                                   "/sys/devices/virtual/powercap",
                                                   NULL};
static const char *const default_readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL};

/* ---- small helpers ----------------------------------------------------------------------- */
static const char *S(const char *s)
{
    return s ? s : "";
}

static bool empty(const char *s)
{
    return s == NULL || *s == '\0';
}

struct strv {
    char **v;
    size_t n, cap;
};

static void strv_push(struct strv *s, char *owned)
{
    if (s->n + 2 > s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->v = xrealloc(s->v, s->cap * sizeof(char *));
    }
    s->v[s->n++] = owned;
    s->v[s->n] = NULL;
}

static void strv_clear(struct strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* Lexically cleans p as a path below "/": empty and "." components dropped, ".." never climbs
 * above the root.  Always absolute.  Caller frees. */
static char *clean_path(const char *p)
{
    size_t len = strlen(p);
    char *out = xmalloc0(len + 2);
    size_t o = 0;
    const char *s = p;
    while (*s) {
        while (*s == '/')
            s++;
        if (*s == '\0')
            break;
        const char *e = strchrnul(s, '/');
        size_t n = (size_t)(e - s);
        if (n == 1 && s[0] == '.') {
            /* skip */
        } else if (n == 2 && s[0] == '.' && s[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else {
            out[o++] = '/';
            memcpy(out + o, s, n);
            o += n;
        }
        s = e;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return out;
}

static bool has_dotdot_component(const char *p)
{
    const char *s = p;
    while (*s) {
        const char *e = strchrnul(s, '/');
        if (e - s == 2 && s[0] == '.' && s[1] == '.')
            return true;
        s = *e ? e + 1 : e;
    }
    return false;
}

static int path_depth(const char *clean)
{
    if (strcmp(clean, "/") == 0)
        return 0;
    int d = 0;
    for (const char *s = clean; *s; s++)
        if (*s == '/')
            d++;
    return d;
}

static bool has_control_chars(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* Raw number from a parsed yajl tree (keeps uint64 values yajl cannot hold as long long). */
static void jw_number_raw(struct hull_json_writer *w, yajl_val v)
{
    const char *r = v->u.number.r;
    yajl_gen_number(w->gen, r, strlen(r));
}

static void jw_copy(struct hull_json_writer *w, yajl_val v, int depth)
{
    if (v == NULL || depth > 16) {
        hull_jw_null(w);
        return;
    }
    if (YAJL_IS_STRING(v))
        hull_jw_string(w, YAJL_GET_STRING(v));
    else if (YAJL_IS_NUMBER(v))
        jw_number_raw(w, v);
    else if (YAJL_IS_TRUE(v))
        hull_jw_bool(w, true);
    else if (YAJL_IS_FALSE(v))
        hull_jw_bool(w, false);
    else if (YAJL_IS_ARRAY(v)) {
        hull_jw_begin_array(w);
        for (size_t i = 0; i < v->u.array.len; i++)
            jw_copy(w, v->u.array.values[i], depth + 1);
        hull_jw_end_array(w);
    } else if (YAJL_IS_OBJECT(v)) {
        hull_jw_begin_object(w);
        for (size_t i = 0; i < v->u.object.len; i++) {
            hull_jw_key(w, v->u.object.keys[i]);
            jw_copy(w, v->u.object.values[i], depth + 1);
        }
        hull_jw_end_object(w);
    } else
        hull_jw_null(w);
}

static void jw_strv(struct hull_json_writer *w, const char *key, char *const *v, size_t n)
{
    hull_jw_key(w, key);
    hull_jw_begin_array(w);
    for (size_t i = 0; i < n; i++)
        hull_jw_string(w, v[i]);
    hull_jw_end_array(w);
}

/* ---- ids --------------------------------------------------------------------------------- */
static int id_from_i64(int64_t v, const char *what, uint32_t *out, hull_error_t *err)
{
    if (v < 0 || v > (int64_t)ID_MAX)
        return hull_error_setx(err, EINVAL, "%s %" PRId64 " is out of range (0..%u)", what, v,
                               ID_MAX);
    *out = (uint32_t)v;
    return 0;
}

/* Strict decimal id (1..10 digits, <= ID_MAX). */
static bool id_from_str(const char *s, size_t n, uint32_t *out)
{
    if (n == 0 || n > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > ID_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* ---- the image's /etc/passwd and /etc/group ----------------------------------------------- */
static int open_in_root(int rootfd, const char *path, int flags)
{
    struct open_how how = {
        /* openat2 refuses O_PATH with flags other than O_DIRECTORY/O_NOFOLLOW/O_CLOEXEC */
        .flags = (uint64_t)(flags | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY)),
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    for (int tries = 0;; tries++) {
        int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
        if (fd >= 0 || (errno != EAGAIN && errno != EINTR) || tries >= 32)
            return fd;
    }
}

/* Reads /<rel> of the image (resolved inside the rootfs only).  *out is NULL when it does not
 * exist.  Non-regular files and files over ETC_FILE_MAX are refused. */
static int read_etc_file(int rootfd, const char *rel, char **out, size_t *len, hull_error_t *err)
{
    *out = NULL;
    *len = 0;
    /* look before opening: opening a device node or a fifo of a hostile image can have side
     * effects or block */
    _cleanup_close_ int pfd = open_in_root(rootfd, rel, O_PATH);
    if (pfd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return hull_error_set(err, errno, "open the image's /%s", rel);
    }
    struct stat pst, st;
    if (fstat(pfd, &pst) < 0)
        return hull_error_set(err, errno, "stat the image's /%s", rel);
    if (!S_ISREG(pst.st_mode))
        return hull_error_setx(err, EINVAL, "the image's /%s is not a regular file", rel);
    _cleanup_close_ int fd = open_in_root(rootfd, rel, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return hull_error_set(err, errno, "open the image's /%s", rel);
    if (fstat(fd, &st) < 0)
        return hull_error_set(err, errno, "stat the image's /%s", rel);
    if (st.st_dev != pst.st_dev || st.st_ino != pst.st_ino)
        return hull_error_setx(err, EAGAIN, "the image's /%s changed while being opened", rel);
    if (st.st_size > (off_t)ETC_FILE_MAX)
        return hull_error_setx(err, EFBIG, "the image's /%s is larger than %u bytes", rel,
                               ETC_FILE_MAX);
    size_t cap = (size_t)st.st_size + 1, n = 0;
    if (cap < 4096)
        cap = 4096;
    _cleanup_free_ char *buf = xmalloc0(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap > ETC_FILE_MAX)
                return hull_error_setx(err, EFBIG, "the image's /%s is larger than %u bytes", rel,
                                       ETC_FILE_MAX);
            cap = cap * 2 > ETC_FILE_MAX + 1 ? ETC_FILE_MAX + 1 : cap * 2;
            buf = xrealloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return hull_error_set(err, errno, "read the image's /%s", rel);
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > ETC_FILE_MAX)
        return hull_error_setx(err, EFBIG, "the image's /%s is larger than %u bytes", rel,
                               ETC_FILE_MAX);
    buf[n] = '\0';
    *len = n;
    *out = hull_steal(buf);
    return 0;
}

struct slice {
    const char *p;
    size_t n;
};

static bool slice_eq(struct slice s, const char *x)
{
    size_t n = strlen(x);
    return s.n == n && memcmp(s.p, x, n) == 0;
}

#define ETC_MAX_FIELDS 8
typedef bool (*etc_line_fn)(const struct slice *f, size_t nf, void *ud);

/* Calls fn for each well-formed line (at least min_fields ':'-separated fields); lines over
 * ETC_LINE_MAX, comments and NIS "+"/"-" entries are skipped.  fn returns true to stop. */
static void etc_each(const char *buf, size_t len, size_t min_fields, etc_line_fn fn, void *ud)
{
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t ll = (size_t)(le - p);
        if (ll > 0 && le[-1] == '\r')
            ll--;
        if (ll > 0 && ll <= ETC_LINE_MAX && p[0] != '#' && p[0] != '+' && p[0] != '-') {
            struct slice f[ETC_MAX_FIELDS];
            size_t nf = 0;
            const char *s = p, *lend = p + ll;
            while (nf < ETC_MAX_FIELDS) {
                const char *c = memchr(s, ':', (size_t)(lend - s));
                const char *fe = c ? c : lend;
                f[nf].p = s;
                f[nf].n = (size_t)(fe - s);
                nf++;
                if (c == NULL)
                    break;
                s = c + 1;
            }
            if (nf >= min_fields && fn(f, nf, ud))
                return;
        }
        p = le + 1;
    }
}

struct etc_files {
    int rootfd;
    char *passwd, *group;
    size_t plen, glen;
    bool p_loaded, g_loaded;
};

static void etc_files_clear(struct etc_files *e)
{
    free(e->passwd);
    free(e->group);
    if (e->rootfd >= 0)
        close(e->rootfd);
}

static int etc_load(struct etc_files *e, bool group, hull_error_t *err)
{
    if (group) {
        if (!e->g_loaded) {
            int r = read_etc_file(e->rootfd, "etc/group", &e->group, &e->glen, err);
            if (r < 0)
                return r;
            e->g_loaded = true;
        }
    } else if (!e->p_loaded) {
        int r = read_etc_file(e->rootfd, "etc/passwd", &e->passwd, &e->plen, err);
        if (r < 0)
            return r;
        e->p_loaded = true;
    }
    return 0;
}

struct pw_query {
    const char *name; /* by name if non-NULL, else by uid */
    uint32_t uid;
    bool found;
    char *out_name;
    uint32_t out_uid, out_gid;
};

static bool pw_cb(const struct slice *f, size_t nf, void *ud)
{
    struct pw_query *q = ud;
    uint32_t uid, gid;
    if (!id_from_str(f[2].p, f[2].n, &uid) || !id_from_str(f[3].p, f[3].n, &gid))
        return false;
    if (q->name ? !slice_eq(f[0], q->name) : uid != q->uid)
        return false;
    q->found = true;
    q->out_name = xstrndup(f[0].p, f[0].n);
    q->out_uid = uid;
    q->out_gid = gid;
    return true;
}

struct gr_query {
    const char *name;
    bool found;
    uint32_t gid;
};

static bool gr_name_cb(const struct slice *f, size_t nf, void *ud)
{
    struct gr_query *q = ud;
    uint32_t gid;
    if (!slice_eq(f[0], q->name) || !id_from_str(f[2].p, f[2].n, &gid))
        return false;
    q->found = true;
    q->gid = gid;
    return true;
}

struct gidv {
    uint32_t *v;
    size_t n, cap;
    bool overflow;
};

static void gidv_add(struct gidv *g, uint32_t gid)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->v[i] == gid)
            return;
    if (g->n >= MAX_ADDITIONAL_GIDS) {
        g->overflow = true;
        return;
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 16;
        g->v = xrealloc(g->v, g->cap * sizeof(uint32_t));
    }
    g->v[g->n++] = gid;
}

struct gr_member_query {
    const char *user;
    struct gidv *gids;
};

static bool gr_member_cb(const struct slice *f, size_t nf, void *ud)
{
    struct gr_member_query *q = ud;
    uint32_t gid;
    if (nf < 4 || !id_from_str(f[2].p, f[2].n, &gid))
        return false;
    const char *s = f[3].p, *end = f[3].p + f[3].n;
    while (s < end) {
        const char *c = memchr(s, ',', (size_t)(end - s));
        const char *e = c ? c : end;
        struct slice m = {s, (size_t)(e - s)};
        if (slice_eq(m, q->user)) {
            gidv_add(q->gids, gid);
            break;
        }
        s = e + 1;
    }
    return q->gids->overflow;
}

static int passwd_lookup(struct etc_files *e, struct pw_query *q, hull_error_t *err)
{
    int r = etc_load(e, false, err);
    if (r < 0)
        return r;
    if (e->passwd)
        etc_each(e->passwd, e->plen, 4, pw_cb, q);
    return 0;
}

struct user_result {
    uint32_t uid, gid;
    struct gidv gids;
};

/* The container's uid, gid and additional gids (see ocispec.h and containerd's WithUser). */
static int resolve_user(const struct ocispec_input *in,
                        const Runtime__V1__LinuxContainerSecurityContext *sc,
                        struct user_result *res, hull_error_t *err)
{
    struct etc_files e __attribute__((cleanup(etc_files_clear))) = {.rootfd = -1};
    e.rootfd = open(in->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (e.rootfd < 0)
        return hull_error_set(err, errno, "open rootfs `%s`", in->rootfs);

    uint32_t uid = 0, gid = 0;
    _cleanup_free_ char *username = NULL;
    struct pw_query q = {0};
    int r;
    /* as containerd and CRI-O (and critest expects) */
    if (sc && sc->run_as_group && !sc->run_as_user && empty(sc->run_as_username))
        return hull_error_setx(err, EINVAL,
                               "run_as_group is set without run_as_user or run_as_username");
    if (sc && sc->run_as_user) {
        r = id_from_i64(sc->run_as_user->value, "run_as_user", &uid, err);
        if (r < 0)
            return r;
        q.uid = uid;
        r = passwd_lookup(&e, &q, err);
        if (r < 0)
            return r;
        if (q.found) {
            gid = q.out_gid;
            username = hull_steal(q.out_name);
        }
    } else if (sc && !empty(sc->run_as_username)) {
        q.name = sc->run_as_username;
        r = passwd_lookup(&e, &q, err);
        if (r < 0)
            return r;
        if (!q.found)
            return hull_error_setx(err, ENOENT,
                                   "run_as_username \"%s\" not found in the image's "
                                   "/etc/passwd%s",
                                   sc->run_as_username, e.passwd ? "" : " (the image has none)");
        uid = q.out_uid;
        gid = q.out_gid;
        username = hull_steal(q.out_name);
    } else {
        const char *spec = in->image ? S(in->image->user) : "";
        const char *colon = strchr(spec, ':');
        size_t ulen = colon ? (size_t)(colon - spec) : strlen(spec);
        if (ulen == 0) {
            q.uid = 0;
        } else if (all_digits(spec, ulen)) {
            if (!id_from_str(spec, ulen, &q.uid))
                return hull_error_setx(err, EINVAL, "image USER \"%s\": uid out of range (0..%u)",
                                       spec, ID_MAX);
        } else {
            q.name = username = xstrndup(spec, ulen);
        }
        r = passwd_lookup(&e, &q, err);
        if (r < 0)
            return r;
        if (q.name) {
            if (!q.found)
                return hull_error_setx(err, ENOENT,
                                       "image USER \"%s\": user \"%s\" not found in "
                                       "the image's /etc/passwd%s",
                                       spec, q.name, e.passwd ? "" : " (the image has none)");
            free(username);
            username = hull_steal(q.out_name);
        } else if (q.found) {
            username = hull_steal(q.out_name);
        }
        uid = q.found ? q.out_uid : q.uid;
        gid = q.found ? q.out_gid : 0;
        if (colon && colon[1]) {
            const char *g = colon + 1;
            if (all_digits(g, strlen(g))) {
                if (!id_from_str(g, strlen(g), &gid))
                    return hull_error_setx(
                        err, EINVAL, "image USER \"%s\": gid out of range (0..%u)", spec, ID_MAX);
            } else {
                r = etc_load(&e, true, err);
                if (r < 0)
                    return r;
                struct gr_query gq = {.name = g};
                if (e.group)
                    etc_each(e.group, e.glen, 3, gr_name_cb, &gq);
                if (!gq.found)
                    return hull_error_setx(err, ENOENT,
                                           "image USER \"%s\": group \"%s\" not found "
                                           "in the image's /etc/group%s",
                                           spec, g, e.group ? "" : " (the image has none)");
                gid = gq.gid;
            }
        }
    }
    free(q.out_name);
    q.out_name = NULL;
    if (sc && sc->run_as_group) {
        r = id_from_i64(sc->run_as_group->value, "run_as_group", &gid, err);
        if (r < 0)
            return r;
    }

    res->uid = uid;
    res->gid = gid;
    /* the primary gid is always in the list (CVE-2023-25173) */
    gidv_add(&res->gids, gid);
    bool strict =
        sc && sc->supplemental_groups_policy == RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
    if (!strict && username) {
        r = etc_load(&e, true, err);
        if (r < 0)
            return r;
        struct gr_member_query mq = {.user = username, .gids = &res->gids};
        if (e.group)
            etc_each(e.group, e.glen, 4, gr_member_cb, &mq);
    }
    for (size_t i = 0; sc && i < sc->n_supplemental_groups; i++) {
        uint32_t g = 0;
        r = id_from_i64(sc->supplemental_groups[i], "supplemental group", &g, err);
        if (r < 0)
            return r;
        gidv_add(&res->gids, g);
    }
    if (res->gids.overflow)
        return hull_error_setx(err, EINVAL,
                               "more than %d additional groups for the container's "
                               "user",
                               MAX_ADDITIONAL_GIDS);
    return 0;
}

/* ---- capabilities ------------------------------------------------------------------------ */
int ocispec_cap_from_name(const char *name)
{
    return hull_cap_from_name(name);
}

static uint64_t known_caps_mask(void)
{
    int last = N_CAPS - 1;
    _cleanup_free_ char *buf = NULL;
    if (hull_read_file("/proc/sys/kernel/cap_last_cap", 64, &buf, NULL, NULL) == 0) {
        int v = atoi(buf);
        if (v > 0 && v < last)
            last = v;
    }
    return last >= 63 ? ~0ULL : ((1ULL << (last + 1)) - 1);
}

/* The capabilities this process holds (containerd's "all capabilities" are the current ones:
 * a runtime cannot hand out what it does not have). */
static uint64_t host_caps(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    uint64_t known = known_caps_mask();
    if (syscall(SYS_capget, &h, d) < 0)
        return known;
    uint64_t eff = (uint64_t)d[0].effective | ((uint64_t)d[1].effective << 32);
    return eff & known;
}

static bool caps_list_has_all(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(S(v[i]), "ALL") == 0 || strcasecmp(S(v[i]), "CAP_ALL") == 0)
            return true;
    return false;
}

static int compute_caps(const Runtime__V1__LinuxContainerSecurityContext *sc, bool privileged,
                        uint64_t *bounding, uint64_t *ambient, hull_error_t *err)
{
    uint64_t host = host_caps();
    uint64_t caps = 0, amb = 0;
    for (const char *const *c = ocispec_default_caps; *c; c++)
        caps |= 1ULL << ocispec_cap_from_name(*c);
    const Runtime__V1__Capability *cc = sc ? sc->capabilities : NULL;
    if (privileged)
        caps = host;
    else if (cc) {
        if (caps_list_has_all(cc->add_capabilities, cc->n_add_capabilities))
            caps = host;
        if (caps_list_has_all(cc->drop_capabilities, cc->n_drop_capabilities))
            caps = 0;
        for (size_t i = 0; i < cc->n_add_capabilities; i++) {
            const char *n = S(cc->add_capabilities[i]);
            if (caps_list_has_all(&cc->add_capabilities[i], 1))
                continue;
            int c = ocispec_cap_from_name(n);
            if (c < 0)
                return hull_error_setx(err, EINVAL, "add_capabilities: unknown capability \"%s\"",
                                       n);
            caps |= 1ULL << c;
        }
        for (size_t i = 0; i < cc->n_drop_capabilities; i++) {
            const char *n = S(cc->drop_capabilities[i]);
            if (caps_list_has_all(&cc->drop_capabilities[i], 1))
                continue;
            int c = ocispec_cap_from_name(n);
            if (c < 0)
                return hull_error_setx(err, EINVAL, "drop_capabilities: unknown capability \"%s\"",
                                       n);
            caps &= ~(1ULL << c);
        }
    }
    for (size_t i = 0; cc && i < cc->n_add_ambient_capabilities; i++) {
        const char *n = S(cc->add_ambient_capabilities[i]);
        int c = ocispec_cap_from_name(n);
        if (c < 0)
            return hull_error_setx(err, EINVAL,
                                   "add_ambient_capabilities: unknown capability \"%s\"", n);
        amb |= 1ULL << c;
    }
    *bounding = caps | amb;
    *ambient = amb;
    return 0;
}

static void jw_caps(struct hull_json_writer *w, const char *key, uint64_t set)
{
    hull_jw_key(w, key);
    hull_jw_begin_array(w);
    for (int i = 0; i < N_CAPS; i++)
        if (set & (1ULL << i))
            hull_jw_string(w, hull_cap_name(i));
    hull_jw_end_array(w);
}

/* ---- sysctls ----------------------------------------------------------------------------- */
/* kubelet accepts "a/b/c" for "a.b.c" (and then '.' inside a component is written as '/'). */
static char *sysctl_normalize(const char *key)
{
    char *k = xstrdup(key);
    if (strchr(k, '/')) {
        for (char *p = k; *p; p++) {
            if (*p == '/')
                *p = '.';
            else if (*p == '.')
                *p = '/';
        }
    }
    return k;
}

static int sysctl_check(const char *key, const char *value, bool host_network, bool host_ipc,
                        char **norm_out, hull_error_t *err)
{
    if (empty(key))
        return hull_error_setx(err, EINVAL, "sysctl with an empty name");
    if (strlen(key) > 255)
        return hull_error_setx(err, EINVAL, "sysctl name too long");
    for (const char *p = key; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!(isalnum(c) || c == '_' || c == '.' || c == '-' || c == '/'))
            return hull_error_setx(err, EINVAL, "sysctl \"%s\": invalid character in the name",
                                   key);
    }
    _cleanup_free_ char *k = sysctl_normalize(key);
    if (k[0] == '.' || k[strlen(k) - 1] == '.' || strstr(k, "..") || strstr(k, "//") ||
        has_dotdot_component(k))
        return hull_error_setx(err, EINVAL, "sysctl \"%s\": malformed name", key);
    bool ipc = strncmp(k, "kernel.shm", 10) == 0 || strncmp(k, "kernel.msg", 10) == 0 ||
               strcmp(k, "kernel.sem") == 0 || strncmp(k, "fs.mqueue.", 10) == 0;
    bool net = strncmp(k, "net.", 4) == 0;
    if (!ipc && !net)
        return hull_error_setx(err, EINVAL,
                               "sysctl \"%s\" is not a namespaced sysctl (allowed: kernel.shm*, "
                               "kernel.msg*, kernel.sem, fs.mqueue.*, net.*)",
                               key);
    if (ipc && host_ipc)
        return hull_error_setx(err, EINVAL,
                               "sysctl \"%s\" is not allowed with the host IPC namespace", key);
    if (net && host_network)
        return hull_error_setx(err, EINVAL,
                               "sysctl \"%s\" is not allowed with the host network namespace", key);
    if (value == NULL)
        return hull_error_setx(err, EINVAL, "sysctl \"%s\": no value", key);
    if (strlen(value) > SYSCTL_VALUE_MAX)
        return hull_error_setx(err, EINVAL, "sysctl \"%s\": value too long", key);
    for (const char *p = value; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c < 0x20 && c != '\t') || c == 0x7f || c == '=')
            return hull_error_setx(err, EINVAL,
                                   "sysctl \"%s\": value contains a newline, a control character "
                                   "or '=' (one key per sysctl)",
                                   key);
    }
    if (norm_out)
        *norm_out = hull_steal(k);
    return 0;
}

int ocispec_sysctl_validate(const char *key, const char *value, bool host_network, bool host_ipc,
                            hull_error_t *err)
{
    return sysctl_check(key, value, host_network, host_ipc, NULL, err);
}

/* ---- mounts ------------------------------------------------------------------------------ */
enum mount_kind { MK_DEFAULT, MK_EXTRA, MK_CRI, MK_VOLUME };

struct mnt {
    char *dest, *type, *source;
    struct strv opts;
    int kind;
    int depth;
    size_t seq;
    bool image; /* an image mount (already id-mapped for a pod user namespace if needed) */
};

struct mntv {
    struct mnt *v;
    size_t n, cap;
};

static struct mnt *mnt_add(struct mntv *m, int kind, const char *dest, const char *type,
                           const char *source, ...)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->v = xrealloc(m->v, m->cap * sizeof(struct mnt));
    }
    struct mnt *x = &m->v[m->n];
    memset(x, 0, sizeof(*x));
    x->dest = clean_path(dest);
    x->type = xstrdup(type);
    x->source = xstrdup(source);
    x->kind = kind;
    x->depth = path_depth(x->dest);
    x->seq = m->n++;
    va_list ap;
    va_start(ap, source);
    for (const char *o; (o = va_arg(ap, const char *)) != NULL;)
        strv_push(&x->opts, xstrdup(o));
    va_end(ap);
    return x;
}

static void mnt_free_one(struct mnt *x)
{
    free(x->dest);
    free(x->type);
    free(x->source);
    strv_clear(&x->opts);
}

static void mntv_clear(struct mntv *m)
{
    for (size_t i = 0; i < m->n; i++)
        mnt_free_one(&m->v[i]);
    free(m->v);
    memset(m, 0, sizeof(*m));
}

static bool mntv_has_dest(const struct mntv *m, int kind, const char *dest)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].kind == kind && strcmp(m->v[i].dest, dest) == 0)
            return true;
    return false;
}

static int mnt_cmp(const void *a, const void *b)
{
    const struct mnt *x = a, *y = b;
    if (x->depth != y->depth)
        return x->depth < y->depth ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static char *mountinfo_unescape(const char *s)
{
    char *o = xmalloc0(strlen(s) + 1), *d = o;
    while (*s) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *d++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
            s += 4;
        } else
            *d++ = *s++;
    }
    return o;
}

/* Propagation of the mount holding path: the last (topmost) mountinfo entry whose mount point is
 * the longest prefix of path. */
static int mount_propagation_of(const char *path, bool *shared, bool *slave, char **mpoint,
                                hull_error_t *err)
{
    *shared = *slave = false;
    *mpoint = NULL;
    _cleanup_free_ char *real = realpath(path, NULL); /* inspection only, never mounted */
    if (real == NULL)
        return hull_error_set(err, errno, "resolve `%s`", path);
    _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
    if (f == NULL)
        return hull_error_set(err, errno, "open /proc/self/mountinfo");
    _cleanup_free_ char *line = NULL;
    size_t cap = 0, best = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        char *save = NULL, *tok;
        char *fields[6] = {0};
        int i = 0;
        for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
            fields[i++] = tok;
            if (i == 6)
                break;
        }
        if (i < 6)
            continue;
        _cleanup_free_ char *mp = mountinfo_unescape(fields[4]);
        size_t ml = strlen(mp);
        bool prefix = strcmp(mp, "/") == 0 ||
                      (strncmp(real, mp, ml) == 0 && (real[ml] == '\0' || real[ml] == '/'));
        if (!prefix || ml < best)
            continue;
        best = ml;
        bool sh = false, sl = false;
        for (tok = strtok_r(NULL, " \n", &save); tok && strcmp(tok, "-") != 0;
             tok = strtok_r(NULL, " \n", &save)) {
            if (strncmp(tok, "shared:", 7) == 0)
                sh = true;
            else if (strncmp(tok, "master:", 7) == 0)
                sl = true;
        }
        *shared = sh;
        *slave = sl;
        free(*mpoint);
        *mpoint = hull_steal(mp);
    }
    if (*mpoint == NULL)
        *mpoint = xstrdup("/");
    return 0;
}

/* CRI mount i is an image volume: the image's root mounted by hulld, or a path inside it
 * (image_sub_path: relative, no "..", symlinks resolved inside the image), read-only. */
static int add_image_mount(const struct ocispec_input *in, size_t i, struct mntv *mounts,
                           hull_error_t *err)
{
    const Runtime__V1__Mount *m = in->config->mounts[i];
    const char *cp = S(m->container_path), *sub = S(m->image_sub_path);
    const char *root = in->image_mount_roots ? in->image_mount_roots[i] : NULL;
    if (cp[0] != '/')
        return hull_error_setx(err, EINVAL, "mount container_path \"%s\" must be absolute", cp);
    if (!empty(m->host_path))
        return hull_error_setx(err, EINVAL, "mount %s: image mounts take no host_path", cp);
    if (empty(root))
        return hull_error_setx(err, EINVAL, "mount %s: image \"%s\" is not mounted", cp,
                               S(m->image->image));
    _cleanup_free_ char *src = NULL;
    if (!empty(sub)) {
        if (sub[0] == '/')
            return hull_error_setx(err, EINVAL, "mount %s: image_sub_path \"%s\" must be relative",
                                   cp, sub);
        _cleanup_free_ char *dup = xstrdup(sub);
        char *save = NULL;
        for (char *c = strtok_r(dup, "/", &save); c; c = strtok_r(NULL, "/", &save))
            if (strcmp(c, "..") == 0)
                return hull_error_setx(
                    err, EINVAL, "mount %s: image_sub_path \"%s\" may not contain \"..\"", cp, sub);
        _cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rfd < 0)
            return hull_error_set(err, errno, "mount %s: open the image root", cp);
        struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                               .resolve =
                                   RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
        _cleanup_close_ int fd = (int)syscall(SYS_openat2, rfd, sub, &how, sizeof(how));
        if (fd < 0) {
            if (errno == ENOENT || errno == ENOTDIR)
                return hull_error_setx(err, ENOENT,
                                       "mount %s: image_sub_path \"%s\" does not exist in "
                                       "image \"%s\"",
                                       cp, sub, S(m->image->image));
            return hull_error_set(err, errno, "mount %s: image_sub_path \"%s\"", cp, sub);
        }
        /* both as the kernel names them (the configured root may contain symlinks) */
        char link[64], buf[PATH_MAX], rbuf[PATH_MAX];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, buf, sizeof(buf) - 1);
        snprintf(link, sizeof(link), "/proc/self/fd/%d", rfd);
        ssize_t rn = n < 0 ? -1 : readlink(link, rbuf, sizeof(rbuf) - 1);
        if (n < 0 || rn < 0)
            return hull_error_set(err, errno, "mount %s: image_sub_path \"%s\"", cp, sub);
        buf[n] = '\0';
        rbuf[rn] = '\0';
        size_t rl = (size_t)rn;
        if (strncmp(buf, rbuf, rl) != 0 || (buf[rl] != '/' && buf[rl] != '\0'))
            return hull_error_setx(err, EINVAL, "mount %s: image_sub_path \"%s\" leaves the image",
                                   cp, sub);
        src = xstrdup(buf);
    } else {
        src = xstrdup(root);
    }
    mnt_add(mounts, MK_CRI, cp, "bind", src, "rbind", "rprivate", "ro", NULL)->image = true;
    return 0;
}

static int add_cri_mounts(const struct ocispec_input *in, struct mntv *mounts,
                          const char **rootfs_prop, hull_error_t *err)
{
    const Runtime__V1__ContainerConfig *c = in->config;
    for (size_t i = 0; i < c->n_mounts; i++) {
        const Runtime__V1__Mount *m = c->mounts[i];
        const char *cp = S(m->container_path), *hp = S(m->host_path);
        if (m->image && !empty(m->image->image)) {
            int r = add_image_mount(in, i, mounts, err);
            if (r < 0)
                return r;
            continue;
        }
        if (cp[0] != '/')
            return hull_error_setx(err, EINVAL, "mount container_path \"%s\" must be absolute", cp);
        if (hp[0] != '/')
            return hull_error_setx(err, EINVAL, "mount %s: host_path \"%s\" must be absolute", cp,
                                   hp);
        if (m->n_uidmappings || m->n_gidmappings)
            return hull_error_setx(err, ENOTSUP, "mount %s: id-mapped mounts are not supported",
                                   cp);
        _cleanup_free_ char *src = clean_path(hp);
        _cleanup_free_ char *dst = clean_path(cp);
        if (strcmp(dst, "/") == 0)
            return hull_error_setx(err, EINVAL,
                                   "mount container_path \"%s\": cannot mount over "
                                   "the container's root",
                                   cp);
        struct stat st;
        if (lstat(src, &st) < 0) {
            if (errno != ENOENT)
                return hull_error_set(err, errno, "mount %s: host path `%s`", cp, src);
            /* kubelet semantics: a missing host path is created as a directory */
            int r = hull_mkdir_p(src, 0755, err);
            if (r < 0)
                return hull_error_wrap(err, "mount %s: create host path", cp);
        }
        const char *prop;
        switch (m->propagation) {
        case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE:
            prop = "rprivate";
            break;
        case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER:
            prop = "rslave";
            break;
        case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL:
            prop = "rshared";
            break;
        default:
            return hull_error_setx(err, EINVAL, "mount %s: unknown propagation %d", cp,
                                   (int)m->propagation);
        }
        if (strcmp(prop, "rprivate") != 0) {
            bool sh, sl;
            _cleanup_free_ char *mp = NULL;
            int r = mount_propagation_of(src, &sh, &sl, &mp, err);
            if (r < 0)
                return hull_error_wrap(err, "mount %s", cp);
            if (strcmp(prop, "rshared") == 0 && !sh)
                return hull_error_setx(err, EINVAL,
                                       "mount %s: host path `%s` is mounted on `%s` "
                                       "but it is not a shared mount (needed for bidirectional "
                                       "propagation)",
                                       cp, src, mp);
            if (strcmp(prop, "rslave") == 0 && !sh && !sl)
                return hull_error_setx(err, EINVAL,
                                       "mount %s: host path `%s` is mounted on `%s` "
                                       "but it is not a shared or slave mount (needed for "
                                       "host-to-container propagation)",
                                       cp, src, mp);
            if (strcmp(prop, "rshared") == 0)
                *rootfs_prop = "rshared";
            else if (*rootfs_prop == NULL)
                *rootfs_prop = "rslave";
        }
        const char *mode = m->readonly ? "ro" : "rw";
        if (m->recursive_read_only) {
            if (!m->readonly || strcmp(prop, "rprivate") != 0)
                return hull_error_setx(err, EINVAL,
                                       "mount %s: recursive_read_only needs readonly "
                                       "and private propagation",
                                       cp);
            if (!in->runtime_supports_rro)
                return hull_error_setx(err, EINVAL,
                                       "mount %s: recursive read-only mounts are not "
                                       "supported by the runtime handler",
                                       cp);
            mode = "rro";
        }
        /* selinux_relabel is ignored: no SELinux support */
        mnt_add(mounts, MK_CRI, cp, "bind", src, "rbind", prop, mode, NULL);
    }
    return 0;
}

static int create_termination_log(const char *dir, char **out, hull_error_t *err)
{
    _cleanup_free_ char *p = hull_path_join(dir, "termination-log");
    _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0666);
    if (fd < 0)
        return hull_error_set(err, errno, "create `%s`", p);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return hull_error_setx(err, EINVAL, "`%s` is not a regular file", p);
    if (fchmod(fd, 0666) < 0)
        return hull_error_set(err, errno, "chmod `%s`", p);
    *out = hull_steal(p);
    return 0;
}

/* ---- image volume copy-up ---------------------------------------------------------------- */
#define COPYUP_MAX_DEPTH 64

/* The copy-up's byte budget: file data (not holes) left to copy; unlimited when !limited. */
struct copy_budget {
    bool limited;
    uint64_t total, left;
};

static int copy_range(int in, int out, off_t from, off_t to, struct copy_budget *b)
{
    char buf[65536];
    while (from < to) {
        size_t want = (size_t)(to - from) < sizeof(buf) ? (size_t)(to - from) : sizeof(buf);
        if (b->limited) {
            if (b->left == 0)
                return -EFBIG;
            if (want > b->left)
                want = (size_t)b->left;
        }
        ssize_t n = pread(in, buf, want, from);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0; /* the file shrank: the final ftruncate fixes the size */
        for (ssize_t off = 0; off < n;) {
            ssize_t w = pwrite(out, buf + off, (size_t)(n - off), from + off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return -errno;
            off += w;
        }
        from += n;
        if (b->limited)
            b->left -= (uint64_t)n;
    }
    return 0;
}

/* Copies a regular file keeping its holes: only the data extents (SEEK_DATA/SEEK_HOLE) are
 * read and written, the rest stays unallocated; the apparent size is kept. */
static int copy_file_fd(int in, int out, off_t size, struct copy_budget *b)
{
    off_t pos = 0;
    while (pos < size) {
        off_t data = lseek(in, pos, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            break; /* only a hole up to the end */
        off_t hole = data < 0 ? size : lseek(in, data, SEEK_HOLE);
        if (data < 0)
            data = pos; /* no SEEK_DATA here: copy everything */
        if (hole < 0 || hole > size)
            hole = size;
        int r = copy_range(in, out, data, hole, b);
        if (r < 0)
            return r;
        pos = hole > data ? hole : size;
    }
    if (ftruncate(out, size) < 0)
        return -errno;
    return 0;
}

/* Copies the tree below sfd into dfd relative to the two dirfds only: every entry is opened
 * with O_NOFOLLOW, symlinks are copied as links (never followed), devices, fifos and sockets
 * are skipped; owners and modes are kept. */
static int copy_tree(int sfd, int dfd, const char *what, int depth, struct copy_budget *b,
                     hull_error_t *err)
{
    if (depth > COPYUP_MAX_DEPTH)
        return hull_error_setx(err, ELOOP, "copy %s: directory tree deeper than %d", what,
                               COPYUP_MAX_DEPTH);
    int dup = fcntl(sfd, F_DUPFD_CLOEXEC, 3);
    if (dup < 0)
        return hull_error_set(err, errno, "copy %s", what);
    _cleanup_closedir_ DIR *d = fdopendir(dup);
    if (d == NULL) {
        close(dup);
        return hull_error_set(err, errno, "copy %s", what);
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(sfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return hull_error_set(err, errno, "copy %s/%s", what, n);
        if (S_ISDIR(st.st_mode)) {
            if (mkdirat(dfd, n, 0700) < 0 && errno != EEXIST)
                return hull_error_set(err, errno, "copy %s/%s", what, n);
            _cleanup_close_ int s2 =
                openat(sfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            _cleanup_close_ int d2 =
                openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (s2 < 0 || d2 < 0)
                return hull_error_set(err, errno, "copy %s/%s", what, n);
            _cleanup_free_ char *sub = xasprintf("%s/%s", what, n);
            int r = copy_tree(s2, d2, sub, depth + 1, b, err);
            if (r < 0)
                return r;
            if (fchown(d2, st.st_uid, st.st_gid) < 0 || fchmod(d2, st.st_mode & 07777) < 0)
                return hull_error_set(err, errno, "copy %s/%s: set owner and mode", what, n);
        } else if (S_ISREG(st.st_mode)) {
            _cleanup_close_ int in = openat(sfd, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
            _cleanup_close_ int out =
                openat(dfd, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (in < 0 || out < 0)
                return hull_error_set(err, errno, "copy %s/%s", what, n);
            int r = copy_file_fd(in, out, st.st_size, b);
            if (r == -EFBIG)
                return hull_error_setx(err, EFBIG,
                                       "copy %s/%s: the image's volume data exceeds the %llu-byte "
                                       "copy budget (max_volume_copy_size)",
                                       what, n, (unsigned long long)b->total);
            if (r < 0)
                return hull_error_set(err, -r, "copy %s/%s", what, n);
            if (fchown(out, st.st_uid, st.st_gid) < 0 || fchmod(out, st.st_mode & 07777) < 0)
                return hull_error_set(err, errno, "copy %s/%s: set owner and mode", what, n);
        } else if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t l = readlinkat(sfd, n, target, sizeof(target) - 1);
            if (l < 0)
                return hull_error_set(err, errno, "copy %s/%s", what, n);
            target[l] = '\0';
            if (symlinkat(target, dfd, n) < 0)
                return hull_error_set(err, errno, "copy %s/%s", what, n);
            if (fchownat(dfd, n, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                return hull_error_set(err, errno, "copy %s/%s: set owner", what, n);
        }
    }
    return 0;
}

/* containerd's image volume semantics: a fresh volume starts with what the image has at that
 * path.  The path is opened inside the rootfs only (RESOLVE_IN_ROOT): an image whose volume path
 * is, or goes through, a symlink to a host path copies from inside the rootfs, never the host
 * (CVE-2022-23648). */
static int volume_copy_up(const char *rootfs, const char *dest, const char *voldir,
                          struct copy_budget *b, hull_error_t *err)
{
    _cleanup_close_ int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return hull_error_set(err, errno, "open rootfs `%s`", rootfs);
    _cleanup_close_ int sfd = open_in_root(rootfd, dest, O_RDONLY | O_DIRECTORY);
    if (sfd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0; /* nothing in the image there */
        return hull_error_set(err, errno, "open %s in the image", dest);
    }
    _cleanup_close_ int dfd = open(voldir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return hull_error_set(err, errno, "open `%s`", voldir);
    int r = copy_tree(sfd, dfd, dest, 0, b, err);
    if (r < 0)
        return r;
    struct stat st;
    if (fstat(sfd, &st) == 0 &&
        (fchown(dfd, st.st_uid, st.st_gid) < 0 || fchmod(dfd, st.st_mode & 07777) < 0))
        return hull_error_set(err, errno, "set owner and mode of `%s`", voldir);
    return 0;
}

struct ns_plan {
    bool host_net, host_ipc, host_pid, host_uts;
    const char *net_path, *ipc_path, *pid_path, *uts_path; /* NULL: new namespace */
    bool new_cgroupns;
    bool userns; /* a user namespace with the pod's mappings */
    struct userns_map uid_map, gid_map;
};

static bool is_runtime_path(const char *clean)
{
    static const char *const roots[] = {"/proc", "/sys", "/dev", NULL};
    for (const char *const *r = roots; *r; r++) {
        size_t n = strlen(*r);
        if (strncmp(clean, *r, n) == 0 && (clean[n] == '\0' || clean[n] == '/'))
            return true;
    }
    return false;
}

static int build_mounts(const struct ocispec_input *in, bool privileged, bool readonly_rootfs,
                        const struct ns_plan *ns, struct mntv *out, const char **rootfs_prop,
                        hull_error_t *err)
{
    const struct ocispec_sandbox *sb = in->sandbox;
    struct mntv defaults = {0}, rest = {0};
    int r = 0;
    const char *sysmode = privileged ? "rw" : "ro";
    mnt_add(&defaults, MK_DEFAULT, "/proc", "proc", "proc", "nosuid", "noexec", "nodev", NULL);
    mnt_add(&defaults, MK_DEFAULT, "/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755",
            "size=65536k", NULL);
    mnt_add(&defaults, MK_DEFAULT, "/dev/pts", "devpts", "devpts", "nosuid", "noexec",
            "newinstance", "ptmxmode=0666", "mode=0620", "gid=5", NULL);
    mnt_add(&defaults, MK_DEFAULT, "/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev",
            "mode=1777", "size=65536k", NULL);
    mnt_add(&defaults, MK_DEFAULT, "/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev",
            NULL);
    mnt_add(&defaults, MK_DEFAULT, "/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", sysmode,
            NULL);
    mnt_add(&defaults, MK_DEFAULT, "/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec",
            "nodev", "relatime", sysmode, NULL);

    /* CRI mounts first (they override the pod's files of the same destination) */
    r = add_cri_mounts(in, &rest, rootfs_prop, err);
    if (r < 0)
        goto out;

    const char *fmode = readonly_rootfs ? "ro" : "rw";
    struct {
        const char *dest, *src;
    } files[] = {
        {"/etc/hostname", sb->hostname_path},
        {"/etc/hosts", sb->hosts_path},
        {"/etc/resolv.conf", sb->resolv_path},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        if (!empty(files[i].src) && !mntv_has_dest(&rest, MK_CRI, files[i].dest))
            mnt_add(&rest, MK_EXTRA, files[i].dest, "bind", files[i].src, "rbind", "rprivate",
                    fmode, NULL);
    const char *shm = ns->host_ipc ? "/dev/shm" : sb->shm_path;
    if (!empty(shm) && !mntv_has_dest(&rest, MK_CRI, "/dev/shm"))
        mnt_add(&rest, MK_EXTRA, "/dev/shm", "bind", shm, "rbind", "rprivate", "rw", NULL);
    if (!mntv_has_dest(&rest, MK_CRI, "/dev/termination-log") && !empty(in->container_dir)) {
        _cleanup_free_ char *tl = NULL;
        r = create_termination_log(in->container_dir, &tl, err);
        if (r < 0)
            goto out;
        mnt_add(&rest, MK_EXTRA, "/dev/termination-log", "bind", tl, "rbind", "rprivate", "rw",
                NULL);
    }

    /* image volumes: container paths only, cleaned and confined; the host side is a fresh
     * directory named by a hash of the cleaned path */
    struct copy_budget budget = {.limited = in->volume_copy_budget > 0,
                                 .total = in->volume_copy_budget,
                                 .left = in->volume_copy_budget};
    for (char **v = in->image ? in->image->volumes : NULL; v && *v; v++) {
        _cleanup_free_ char *dest = clean_path(*v);
        if (strcmp(dest, "/") == 0 || mntv_has_dest(&rest, MK_CRI, dest) ||
            mntv_has_dest(&rest, MK_VOLUME, dest))
            continue;
        if (is_runtime_path(dest)) {
            /* an image may not shadow /proc, /sys or /dev (and with them the masked paths) */
            log_warn("container %s: image volume %s ignored", in->container_id, dest);
            continue;
        }
        if (empty(in->container_dir)) {
            r = hull_error_setx(err, EINVAL, "image volume %s: no container directory", dest);
            goto out;
        }
        char digest[72];
        image_sha256_digest(dest, strlen(dest), digest);
        _cleanup_free_ char *src =
            xasprintf("%s/volumes/%.32s", in->container_dir, digest + strlen("sha256:"));
        struct stat vst;
        bool fresh = lstat(src, &vst) < 0 && errno == ENOENT;
        r = hull_mkdir_p(src, 0755, err);
        if (r == 0 && fresh) {
            r = volume_copy_up(in->rootfs, dest, src, &budget, err);
            if (r < 0) {
                /* a half copied volume would be taken as done by a retry */
                _cleanup_error_ hull_error_t e2 = NULL;
                hull_rm_rf(src, &e2);
            }
        }
        if (r < 0) {
            hull_error_wrap(err, "image volume %s", dest);
            goto out;
        }
        mnt_add(&rest, MK_VOLUME, dest, "bind", src, "rbind", "rprivate", "rw", NULL);
    }

    /* defaults minus those a pod or CRI mount replaces (and all of /dev/... under a new /dev) */
    bool new_dev = false;
    for (size_t i = 0; i < rest.n; i++)
        if (strcmp(rest.v[i].dest, "/dev") == 0)
            new_dev = true;
    for (size_t i = 0; i < defaults.n; i++) {
        struct mnt *d = &defaults.v[i];
        bool drop = new_dev && strncmp(d->dest, "/dev/", 5) == 0;
        for (size_t j = 0; j < rest.n && !drop; j++)
            if (strcmp(rest.v[j].dest, d->dest) == 0)
                drop = true;
        if (drop)
            continue;
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 32;
            out->v = xrealloc(out->v, out->cap * sizeof(struct mnt));
        }
        out->v[out->n++] = *d;
        memset(d, 0, sizeof(*d));
    }
    /* the others sorted so parents mount before children (stable) */
    qsort(rest.v, rest.n, sizeof(struct mnt), mnt_cmp);
    for (size_t i = 0; i < rest.n; i++) {
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 32;
            out->v = xrealloc(out->v, out->cap * sizeof(struct mnt));
        }
        out->v[out->n++] = rest.v[i];
        memset(&rest.v[i], 0, sizeof(rest.v[i]));
    }
out:
    mntv_clear(&defaults);
    mntv_clear(&rest);
    return r;
}

/* ---- pod user namespace ------------------------------------------------------------------ */
/* Adds o+x to the directories from one of hulld's own directories down to path's parent. */
static int allow_traverse(const struct ocispec_input *in, const char *path, hull_error_t *err)
{
    if (empty(path))
        return 0;
    _cleanup_free_ char *p = xstrdup(path);
    for (char *slash = strrchr(p, '/'); slash && slash != p; slash = strrchr(p, '/')) {
        *slash = '\0';
        bool own = false;
        for (int i = 0; i < 2; i++) {
            const char *top = in->own_dirs[i];
            size_t n = top ? strlen(top) : 0;
            if (n && strncmp(p, top, n) == 0 && (p[n] == '\0' || p[n] == '/'))
                own = true;
        }
        if (!own)
            break;
        struct stat st;
        if (lstat(p, &st) < 0)
            return hull_error_set(err, errno, "stat `%s`", p);
        if (S_ISDIR(st.st_mode) && (st.st_mode & 0001) == 0 &&
            chmod(p, (st.st_mode & 07777) | 0111) < 0)
            return hull_error_set(err, errno, "chmod `%s`", p);
    }
    return 0;
}

/* The container's volumes id-mapped through the pod's user namespace (containerd and CRI-O
 * give the runtime "idmap" mounts; hulld makes them itself so that runc 1.1 works too), and
 * the paths the mapped root must reach made traversable. */
static int userns_prepare(const struct ocispec_input *in, struct mntv *mounts, hull_error_t *err)
{
    const struct ocispec_sandbox *sb = in->sandbox;
    const char *reach[] = {in->rootfs,      in->container_dir, sb->hostname_path,
                           sb->resolv_path, sb->hosts_path,    sb->shm_path};
    for (size_t i = 0; i < sizeof(reach) / sizeof(reach[0]); i++) {
        _cleanup_free_ char *probe = empty(reach[i]) ? NULL : hull_path_join(reach[i], "x");
        int r = allow_traverse(in, probe, err);
        if (r < 0)
            return r;
    }
    size_t n = 0;
    for (size_t i = 0; i < mounts->n; i++) {
        struct mnt *m = &mounts->v[i];
        if ((m->kind != MK_CRI && m->kind != MK_VOLUME) || m->image || strcmp(m->type, "bind") != 0)
            continue;
        if (empty(in->container_dir))
            return hull_error_setx(err, EINVAL, "id-mapped mount %s: no container directory",
                                   m->dest);
        struct stat st;
        if (stat(m->source, &st) < 0)
            return hull_error_set(err, errno, "mount %s: `%s`", m->dest, m->source);
        _cleanup_free_ char *dir = hull_path_join(in->container_dir, "idmap");
        int r = hull_mkdir_p(dir, 0711, err);
        if (r < 0)
            return r;
        _cleanup_free_ char *target = xasprintf("%s/%zu", dir, n++);
        if (S_ISDIR(st.st_mode)) {
            if (mkdir(target, 0700) < 0 && errno != EEXIST)
                return hull_error_set(err, errno, "mkdir `%s`", target);
        } else {
            int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
            if (fd < 0)
                return hull_error_set(err, errno, "create `%s`", target);
            close(fd);
        }
        r = userns_idmap_mount(sb->userns_path, m->source, target, true, err);
        if (r < 0)
            return hull_error_wrap(err, "mount %s", m->dest);
        free(m->source);
        m->source = hull_steal(target);
    }
    return 0;
}

int ocispec_release_mounts(const char *container_dir, hull_error_t *err)
{
    if (empty(container_dir))
        return 0;
    return userns_unmount_below(container_dir, err);
}

static void jw_mounts(struct hull_json_writer *w, const struct mntv *m)
{
    hull_jw_key(w, "mounts");
    hull_jw_begin_array(w);
    for (size_t i = 0; i < m->n; i++) {
        const struct mnt *x = &m->v[i];
        hull_jw_begin_object(w);
        hull_jw_kv_string(w, "destination", x->dest);
        hull_jw_kv_string(w, "type", x->type);
        hull_jw_kv_string(w, "source", x->source);
        jw_strv(w, "options", x->opts.v, x->opts.n);
        hull_jw_end_object(w);
    }
    hull_jw_end_array(w);
}

/* ---- devices ----------------------------------------------------------------------------- */
struct dev {
    char *path;
    char type;
    unsigned major, minor;
    uint32_t mode, uid, gid;
    char access[4];
};

struct devv {
    struct dev *v;
    size_t n, cap;
};

static void devv_clear(struct devv *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i].path);
    free(d->v);
    memset(d, 0, sizeof(*d));
}

static void devv_add(struct devv *d, const char *path, const struct stat *st, const char *access)
{
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(d->v[i].path, path) == 0) { /* a later entry replaces an earlier one */
            free(d->v[i].path);
            memmove(&d->v[i], &d->v[i + 1], (d->n - i - 1) * sizeof(struct dev));
            d->n--;
            break;
        }
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 32;
        d->v = xrealloc(d->v, d->cap * sizeof(struct dev));
    }
    struct dev *x = &d->v[d->n++];
    memset(x, 0, sizeof(*x));
    x->path = xstrdup(path);
    x->type = S_ISBLK(st->st_mode) ? 'b' : 'c';
    x->major = major(st->st_rdev);
    x->minor = minor(st->st_rdev);
    x->mode = st->st_mode & 07777;
    x->uid = st->st_uid;
    x->gid = st->st_gid;
    snprintf(x->access, sizeof(x->access), "%s", access);
}

static bool host_dev_skip(const char *name)
{
    static const char *const skip[] = {"pts",  "shm",         "fd",    "mqueue",
                                       ".lxc", ".lxd-mounts", ".udev", NULL};
    for (const char *const *s = skip; *s; s++)
        if (strcmp(name, *s) == 0)
            return true;
    return false;
}

/* All device nodes under dir (privileged containers), like containerd's HostDevices(). */
static void add_host_devices(struct devv *d, const char *dir, int depth)
{
    if (depth > 8)
        return;
    _cleanup_closedir_ DIR *dp = opendir(dir);
    if (dp == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        _cleanup_free_ char *p = hull_path_join(dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (!host_dev_skip(de->d_name))
                add_host_devices(d, p, depth + 1);
            continue;
        }
        if (strcmp(p, "/dev/console") == 0)
            continue;
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
            devv_add(d, p, &st, "rwm");
    }
}

static int add_cri_devices(const Runtime__V1__ContainerConfig *c, struct devv *d, hull_error_t *err)
{
    for (size_t i = 0; i < c->n_devices; i++) {
        const Runtime__V1__Device *dv = c->devices[i];
        const char *hp = S(dv->host_path), *cp = S(dv->container_path);
        const char *perm = empty(dv->permissions) ? "rwm" : dv->permissions;
        if (hp[0] != '/')
            return hull_error_setx(err, EINVAL, "device host_path \"%s\" must be absolute", hp);
        if (empty(cp))
            cp = hp;
        if (cp[0] != '/')
            return hull_error_setx(err, EINVAL, "device container_path \"%s\" must be absolute",
                                   cp);
        if (strlen(perm) > 3 || strspn(perm, "rwm") != strlen(perm))
            return hull_error_setx(err, EINVAL,
                                   "device %s: invalid permissions \"%s\" (a subset "
                                   "of \"rwm\")",
                                   hp, perm);
        _cleanup_free_ char *dest = clean_path(cp);
        struct stat st;
        if (stat(hp, &st) < 0)
            return hull_error_set(err, errno, "device `%s`", hp);
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
            devv_add(d, dest, &st, perm);
            continue;
        }
        if (!S_ISDIR(st.st_mode))
            return hull_error_setx(err, EINVAL, "device `%s` is not a device node", hp);
        /* a directory: every device node directly in it */
        _cleanup_closedir_ DIR *dp = opendir(hp);
        if (dp == NULL)
            return hull_error_set(err, errno, "device directory `%s`", hp);
        struct dirent *de;
        while ((de = readdir(dp)) != NULL) {
            _cleanup_free_ char *p = hull_path_join(hp, de->d_name);
            struct stat est;
            if (de->d_name[0] == '.' || lstat(p, &est) < 0 ||
                !(S_ISCHR(est.st_mode) || S_ISBLK(est.st_mode)))
                continue;
            _cleanup_free_ char *dd = hull_path_join(dest, de->d_name);
            devv_add(d, dd, &est, perm);
        }
    }
    return 0;
}

static void jw_devices(struct hull_json_writer *w, const struct devv *d)
{
    hull_jw_key(w, "devices");
    hull_jw_begin_array(w);
    for (size_t i = 0; i < d->n; i++) {
        const struct dev *x = &d->v[i];
        char t[2] = {x->type, 0};
        hull_jw_begin_object(w);
        hull_jw_kv_string(w, "path", x->path);
        hull_jw_kv_string(w, "type", t);
        hull_jw_kv_int(w, "major", x->major);
        hull_jw_kv_int(w, "minor", x->minor);
        hull_jw_kv_int(w, "fileMode", x->mode);
        hull_jw_kv_int(w, "uid", x->uid);
        hull_jw_kv_int(w, "gid", x->gid);
        hull_jw_end_object(w);
    }
    hull_jw_end_array(w);
}

static void jw_dev_rule(struct hull_json_writer *w, bool allow, const char *type, long long maj,
                        long long min, const char *access)
{
    hull_jw_begin_object(w);
    hull_jw_kv_bool(w, "allow", allow);
    if (type)
        hull_jw_kv_string(w, "type", type);
    if (maj >= 0)
        hull_jw_kv_int(w, "major", maj);
    if (min >= 0)
        hull_jw_kv_int(w, "minor", min);
    hull_jw_kv_string(w, "access", access);
    hull_jw_end_object(w);
}

/* linux.resources.devices: everything for privileged containers, else deny-all, the devices
 * every container gets (as runc's defaults) and the CRI devices. */
static void jw_device_rules(struct hull_json_writer *w, bool privileged, const struct devv *d)
{
    hull_jw_key(w, "devices");
    hull_jw_begin_array(w);
    if (privileged) {
        jw_dev_rule(w, true, NULL, -1, -1, "rwm");
    } else {
        jw_dev_rule(w, false, NULL, -1, -1, "rwm");
        jw_dev_rule(w, true, "c", -1, -1, "m");
        jw_dev_rule(w, true, "b", -1, -1, "m");
        static const struct {
            int maj, min;
        } std[] = {{1, 3}, {1, 8}, {1, 7},    {5, 0}, {1, 5},
                   {1, 9}, {5, 1}, {136, -1}, {5, 2}, {10, 200}};
        for (size_t i = 0; i < sizeof(std) / sizeof(std[0]); i++)
            jw_dev_rule(w, true, "c", std[i].maj, std[i].min, "rwm");
        for (size_t i = 0; i < d->n; i++) {
            char t[2] = {d->v[i].type, 0};
            jw_dev_rule(w, true, t, d->v[i].major, d->v[i].minor, d->v[i].access);
        }
    }
    hull_jw_end_array(w);
}

/* ---- resources --------------------------------------------------------------------------- */
static bool valid_cpuset(const char *s)
{
    if (strlen(s) > 4096)
        return false;
    for (; *s; s++)
        if (!(isdigit((unsigned char)*s) || *s == ',' || *s == '-'))
            return false;
    return true;
}

static bool valid_page_size(const char *s)
{
    size_t d = strspn(s, "0123456789");
    if (d == 0 || d > 12)
        return false;
    const char *u = s + d;
    return strcmp(u, "KB") == 0 || strcmp(u, "MB") == 0 || strcmp(u, "GB") == 0 ||
           strcmp(u, "TB") == 0 || strcmp(u, "PB") == 0;
}

static int check_resources(const Runtime__V1__LinuxContainerResources *r, hull_error_t *err)
{
    if (r == NULL)
        return 0;
    if (r->cpu_shares < 0 || r->cpu_period < 0)
        return hull_error_setx(err, EINVAL, "cpu_shares and cpu_period must not be negative");
    if (r->cpu_quota < -1)
        return hull_error_setx(err, EINVAL, "cpu_quota %" PRId64 " is invalid", r->cpu_quota);
    if (r->memory_limit_in_bytes < 0 || r->memory_swap_limit_in_bytes < -1)
        return hull_error_setx(err, EINVAL, "memory limits must not be negative");
    if (r->oom_score_adj < -1000 || r->oom_score_adj > 1000)
        return hull_error_setx(err, EINVAL, "oom_score_adj %" PRId64 " out of range (-1000..1000)",
                               r->oom_score_adj);
    if (!valid_cpuset(S(r->cpuset_cpus)) || !valid_cpuset(S(r->cpuset_mems)))
        return hull_error_setx(err, EINVAL, "invalid cpuset \"%s\" / \"%s\"", S(r->cpuset_cpus),
                               S(r->cpuset_mems));
    for (size_t i = 0; i < r->n_hugepage_limits; i++)
        if (!valid_page_size(S(r->hugepage_limits[i]->page_size)))
            return hull_error_setx(err, EINVAL, "hugepage limit: invalid page size \"%s\"",
                                   S(r->hugepage_limits[i]->page_size));
    for (size_t i = 0; i < r->n_unified; i++) {
        const char *k = S(r->unified[i]->key), *v = S(r->unified[i]->value);
        if (empty(k) || strchr(k, '/') || k[0] == '.' || has_control_chars(k))
            return hull_error_setx(err, EINVAL, "unified: invalid cgroup file name \"%s\"", k);
        if (strchr(v, '\n') || strchr(v, '\r'))
            return hull_error_setx(err, EINVAL, "unified %s: value contains a newline", k);
    }
    return 0;
}

static bool host_is_cgroup2(void);

/* Whether the runtime can set hugetlb limits: runc fails the whole container ("cannot set
 * hugetlb limit") when the controller is not mounted, and kubelet sends limits (0) for every
 * page size the node has, so they are left out when there is no hugetlb controller. */
static bool host_has_hugetlb(void)
{
    if (host_is_cgroup2()) {
        _cleanup_free_ char *c = NULL;
        if (hull_read_file("/sys/fs/cgroup/cgroup.controllers", 4096, &c, NULL, NULL) < 0)
            return false;
        for (char *save = NULL, *t = strtok_r(c, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
            if (strcmp(t, "hugetlb") == 0)
                return true;
        return false;
    }
    struct statfs sf;
    return statfs("/sys/fs/cgroup/hugetlb", &sf) == 0 && sf.f_type == CGROUP_SUPER_MAGIC;
}

/* Swap accounting (containerd sets swap only when the controller has it; runc cannot set
 * memsw without it). */
static bool host_has_swap_accounting(void)
{
    return host_is_cgroup2() ||
           access("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", F_OK) == 0;
}

static void jw_resources_body(struct hull_json_writer *w,
                              const Runtime__V1__LinuxContainerResources *r)
{
    if (r == NULL)
        return;
    bool swap = r->memory_swap_limit_in_bytes != 0 && host_has_swap_accounting();
    if (r->memory_limit_in_bytes > 0 || swap) {
        hull_jw_key(w, "memory");
        hull_jw_begin_object(w);
        if (r->memory_limit_in_bytes > 0)
            hull_jw_kv_int(w, "limit", r->memory_limit_in_bytes);
        if (swap)
            hull_jw_kv_int(w, "swap", r->memory_swap_limit_in_bytes);
        hull_jw_end_object(w);
    }
    if (r->cpu_shares || r->cpu_quota || r->cpu_period || !empty(r->cpuset_cpus) ||
        !empty(r->cpuset_mems)) {
        hull_jw_key(w, "cpu");
        hull_jw_begin_object(w);
        if (r->cpu_shares)
            hull_jw_kv_int(w, "shares", r->cpu_shares);
        if (r->cpu_quota)
            hull_jw_kv_int(w, "quota", r->cpu_quota);
        if (r->cpu_period)
            hull_jw_kv_int(w, "period", r->cpu_period);
        if (!empty(r->cpuset_cpus))
            hull_jw_kv_string(w, "cpus", r->cpuset_cpus);
        if (!empty(r->cpuset_mems))
            hull_jw_kv_string(w, "mems", r->cpuset_mems);
        hull_jw_end_object(w);
    }
    if (r->n_hugepage_limits && !host_has_hugetlb())
        log_debug("no hugetlb cgroup controller: hugepage limits left out");
    else if (r->n_hugepage_limits) {
        hull_jw_key(w, "hugepageLimits");
        hull_jw_begin_array(w);
        for (size_t i = 0; i < r->n_hugepage_limits; i++) {
            hull_jw_begin_object(w);
            hull_jw_kv_string(w, "pageSize", r->hugepage_limits[i]->page_size);
            char num[32];
            snprintf(num, sizeof(num), "%" PRIu64, r->hugepage_limits[i]->limit);
            hull_jw_key(w, "limit");
            yajl_gen_number(w->gen, num, strlen(num));
            hull_jw_end_object(w);
        }
        hull_jw_end_array(w);
    }
    if (r->n_unified) {
        hull_jw_key(w, "unified");
        hull_jw_begin_object(w);
        for (size_t i = 0; i < r->n_unified; i++)
            hull_jw_kv_string(w, S(r->unified[i]->key), S(r->unified[i]->value));
        hull_jw_end_object(w);
    }
}

int oci_resources_from_cri(const Runtime__V1__LinuxContainerResources *r, char **json_out,
                           hull_error_t *err)
{
    *json_out = NULL;
    int ret = check_resources(r, err);
    if (ret < 0)
        return ret;
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    hull_jw_begin_object(&w);
    jw_resources_body(&w, r);
    hull_jw_end_object(&w);
    *json_out = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    return 0;
}

/* The deprecated CRI string fields, still honoured. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static const char *sc_seccomp_profile_path(const Runtime__V1__LinuxContainerSecurityContext *sc)
{
    return S(sc->seccomp_profile_path);
}
static const char *sc_apparmor_profile(const Runtime__V1__LinuxContainerSecurityContext *sc)
{
    return S(sc->apparmor_profile);
}
#pragma GCC diagnostic pop

/* ---- seccomp ----------------------------------------------------------------------------- */
enum seccomp_kind { SECCOMP_NONE, SECCOMP_DEFAULT, SECCOMP_LOCALHOST };

static int localhost_profile_path(const struct ocispec_input *in, const char *ref, char **out,
                                  hull_error_t *err)
{
    if (empty(ref))
        return hull_error_setx(err, EINVAL, "seccomp Localhost profile without a localhost_ref");
    if (ref[0] == '/') {
        *out = clean_path(ref);
        return 0;
    }
    if (has_dotdot_component(ref))
        return hull_error_setx(err, EINVAL, "seccomp profile \"%s\": `..` not allowed", ref);
    if (empty(in->seccomp_profile_root))
        return hull_error_setx(err, EINVAL,
                               "seccomp profile \"%s\" is relative and no seccomp "
                               "profile root is configured",
                               ref);
    *out = hull_path_join(in->seccomp_profile_root, ref);
    return 0;
}

static int seccomp_choice(const struct ocispec_input *in,
                          const Runtime__V1__LinuxContainerSecurityContext *sc, bool privileged,
                          int *kind, char **path, hull_error_t *err)
{
    *kind = SECCOMP_NONE;
    *path = NULL;
    if (privileged || sc == NULL)
        return 0;
    if (sc->seccomp) {
        switch (sc->seccomp->profile_type) {
        case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault:
            *kind = SECCOMP_DEFAULT;
            return 0;
        case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined:
            return 0;
        case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost:
            *kind = SECCOMP_LOCALHOST;
            return localhost_profile_path(in, sc->seccomp->localhost_ref, path, err);
        default:
            return hull_error_setx(err, EINVAL, "unknown seccomp profile type %d",
                                   (int)sc->seccomp->profile_type);
        }
    }
    const char *p = sc_seccomp_profile_path(sc);
    if (*p == '\0' || strcmp(p, "unconfined") == 0)
        return 0;
    if (strcmp(p, "runtime/default") == 0 || strcmp(p, "docker/default") == 0) {
        *kind = SECCOMP_DEFAULT;
        return 0;
    }
    if (strncmp(p, "localhost/", 10) == 0) {
        *kind = SECCOMP_LOCALHOST;
        return localhost_profile_path(in, p + 10, path, err);
    }
    return hull_error_setx(err, EINVAL,
                           "seccomp_profile_path \"%s\" is not one of "
                           "runtime/default, docker/default, unconfined, localhost/PATH",
                           p);
}

static const char *host_scmp_arch(void)
{
#if defined(__x86_64__)
    return "SCMP_ARCH_X86_64";
#elif defined(__aarch64__)
    return "SCMP_ARCH_AARCH64";
#elif defined(__i386__)
    return "SCMP_ARCH_X86";
#else
    return "";
#endif
}

static bool json_strarr_has(yajl_val arr, const char *s)
{
    if (arr == NULL || !YAJL_IS_ARRAY(arr))
        return false;
    for (size_t i = 0; i < arr->u.array.len; i++) {
        const char *x =
            YAJL_IS_STRING(arr->u.array.values[i]) ? YAJL_GET_STRING(arr->u.array.values[i]) : NULL;
        if (x && strcmp(x, s) == 0)
            return true;
    }
    return false;
}

static bool json_caps_all_in(yajl_val arr, uint64_t bounding)
{
    for (size_t i = 0; arr && YAJL_IS_ARRAY(arr) && i < arr->u.array.len; i++) {
        yajl_val v = arr->u.array.values[i];
        int c = YAJL_IS_STRING(v) ? ocispec_cap_from_name(YAJL_GET_STRING(v)) : -1;
        if (c < 0 || !(bounding & (1ULL << c)))
            return false;
    }
    return true;
}

static bool json_caps_any_in(yajl_val arr, uint64_t bounding)
{
    for (size_t i = 0; arr && YAJL_IS_ARRAY(arr) && i < arr->u.array.len; i++) {
        yajl_val v = arr->u.array.values[i];
        int c = YAJL_IS_STRING(v) ? ocispec_cap_from_name(YAJL_GET_STRING(v)) : -1;
        if (c >= 0 && (bounding & (1ULL << c)))
            return true;
    }
    return false;
}

/* A Localhost profile: runtime-spec format as is; Docker/containerd format ("archMap",
 * "name", "includes"/"excludes") converted for this host and bounding set. */
static int jw_seccomp_file(struct hull_json_writer *w, const char *path, uint64_t bounding,
                           hull_error_t *err)
{
    _cleanup_yajl_ yajl_val t = NULL;
    int r = hull_json_parse_file(path, SECCOMP_FILE_MAX, &t, err);
    if (r < 0)
        return hull_error_wrap(err, "seccomp Localhost profile");
    if (!YAJL_IS_OBJECT(t))
        return hull_error_setx(err, EINVAL, "seccomp profile `%s`: not a JSON object", path);
    const char *def = hull_json_get_string(t, "defaultAction", NULL);
    if (empty(def))
        return hull_error_setx(err, EINVAL, "seccomp profile `%s`: no defaultAction", path);
    hull_jw_begin_object(w);
    hull_jw_kv_string(w, "defaultAction", def);
    yajl_val v = hull_json_get(t, "defaultErrnoRet");
    if (v && YAJL_IS_INTEGER(v)) {
        hull_jw_key(w, "defaultErrnoRet");
        jw_number_raw(w, v);
    }
    hull_jw_key(w, "architectures");
    hull_jw_begin_array(w);
    if ((v = hull_json_get(t, "architectures")) && YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i < v->u.array.len; i++)
            if (YAJL_IS_STRING(v->u.array.values[i]))
                hull_jw_string(w, YAJL_GET_STRING(v->u.array.values[i]));
    } else if ((v = hull_json_get(t, "archMap")) && YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i < v->u.array.len; i++) {
            yajl_val a = v->u.array.values[i];
            if (strcmp(hull_json_get_string(a, "architecture", ""), host_scmp_arch()) != 0)
                continue;
            hull_jw_string(w, host_scmp_arch());
            yajl_val subs = hull_json_get(a, "subArchitectures");
            for (size_t j = 0; subs && YAJL_IS_ARRAY(subs) && j < subs->u.array.len; j++)
                if (YAJL_IS_STRING(subs->u.array.values[j]))
                    hull_jw_string(w, YAJL_GET_STRING(subs->u.array.values[j]));
        }
    }
    hull_jw_end_array(w);
    if ((v = hull_json_get(t, "flags")) && YAJL_IS_ARRAY(v)) {
        hull_jw_key(w, "flags");
        jw_copy(w, v, 0);
    }
    const char *lp = hull_json_get_string(t, "listenerPath", NULL);
    if (lp)
        hull_jw_kv_string(w, "listenerPath", lp);
    const char *lm = hull_json_get_string(t, "listenerMetadata", NULL);
    if (lm)
        hull_jw_kv_string(w, "listenerMetadata", lm);
    hull_jw_key(w, "syscalls");
    hull_jw_begin_array(w);
    yajl_val calls = hull_json_get(t, "syscalls");
    for (size_t i = 0; calls && YAJL_IS_ARRAY(calls) && i < calls->u.array.len; i++) {
        yajl_val c = calls->u.array.values[i];
        if (!YAJL_IS_OBJECT(c))
            return hull_error_setx(err, EINVAL,
                                   "seccomp profile `%s`: syscalls[%zu] is not an "
                                   "object",
                                   path, i);
        const char *action = hull_json_get_string(c, "action", NULL);
        if (empty(action))
            return hull_error_setx(err, EINVAL,
                                   "seccomp profile `%s`: syscalls[%zu] has no "
                                   "action",
                                   path, i);
        yajl_val inc = hull_json_get(c, "includes"), exc = hull_json_get(c, "excludes");
        if (inc) {
            yajl_val arches = hull_json_get(inc, "arches");
            if (arches && YAJL_IS_ARRAY(arches) && arches->u.array.len &&
                !json_strarr_has(arches, hull_goarch()))
                continue;
            if (!json_caps_all_in(hull_json_get(inc, "caps"), bounding))
                continue;
        }
        if (exc) {
            if (json_strarr_has(hull_json_get(exc, "arches"), hull_goarch()) ||
                json_caps_any_in(hull_json_get(exc, "caps"), bounding))
                continue;
        }
        hull_jw_begin_object(w);
        hull_jw_key(w, "names");
        hull_jw_begin_array(w);
        yajl_val names = hull_json_get(c, "names");
        for (size_t j = 0; names && YAJL_IS_ARRAY(names) && j < names->u.array.len; j++)
            if (YAJL_IS_STRING(names->u.array.values[j]))
                hull_jw_string(w, YAJL_GET_STRING(names->u.array.values[j]));
        const char *name = hull_json_get_string(c, "name", NULL);
        if (name)
            hull_jw_string(w, name);
        hull_jw_end_array(w);
        hull_jw_kv_string(w, "action", action);
        if ((v = hull_json_get(c, "errnoRet")) && YAJL_IS_INTEGER(v)) {
            hull_jw_key(w, "errnoRet");
            jw_number_raw(w, v);
        }
        if ((v = hull_json_get(c, "args")) && YAJL_IS_ARRAY(v)) {
            hull_jw_key(w, "args");
            jw_copy(w, v, 0);
        }
        hull_jw_end_object(w);
    }
    hull_jw_end_array(w);
    hull_jw_end_object(w);
    return 0;
}

/* ---- namespaces -------------------------------------------------------------------------- */
static bool host_is_cgroup2(void)
{
    struct statfs s;
    return statfs("/sys/fs/cgroup", &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC;
}

static int plan_namespaces(const struct ocispec_input *in,
                           const Runtime__V1__LinuxContainerSecurityContext *sc, struct ns_plan *ns,
                           hull_error_t *err)
{
    const struct ocispec_sandbox *sb = in->sandbox;
    const Runtime__V1__NamespaceOption *o = sc ? sc->namespace_options : NULL;
    if (o == NULL && sb->config && sb->config->linux && sb->config->linux->security_context)
        o = sb->config->linux->security_context->namespace_options;
    int net = o ? (int)o->network : (sb->host_network ? NS_MODE_NODE : NS_MODE_POD);
    int pid = o ? (int)o->pid : (sb->host_pid ? NS_MODE_NODE : NS_MODE_CONTAINER);
    int ipc = o ? (int)o->ipc : (sb->host_ipc ? NS_MODE_NODE : NS_MODE_POD);
    memset(ns, 0, sizeof(*ns));

    {
        const Runtime__V1__NamespaceOption *po =
            sb->config && sb->config->linux && sb->config->linux->security_context
                ? sb->config->linux->security_context->namespace_options
                : NULL;
        bool want = false;
        struct userns_map u, g;
        int r = userns_from_cri(o, &want, &u, &g, err);
        if (r < 0)
            return r;
        r = userns_from_cri(po, &ns->userns, &ns->uid_map, &ns->gid_map, err);
        if (r < 0)
            return r;
        if (want &&
            (!ns->userns || u.host_id != ns->uid_map.host_id || g.host_id != ns->gid_map.host_id))
            return hull_error_setx(err, EINVAL,
                                   "the container's user namespace must be the pod's (same "
                                   "mappings)");
        if (ns->userns && empty(sb->userns_path))
            return hull_error_setx(err, EINVAL, "the pod has no user namespace");
        if (ns->userns && sc && sc->privileged)
            return hull_error_setx(err, EINVAL,
                                   "a privileged container cannot run in a pod user namespace");
    }

    switch (net) {
    case NS_MODE_NODE:
        ns->host_net = true;
        break;
    case NS_MODE_POD:
        if (sb->host_network)
            ns->host_net = true;
        else
            ns->net_path = empty(sb->netns_path) ? NULL : sb->netns_path;
        break;
    case NS_MODE_CONTAINER:
        break;
    default:
        return hull_error_setx(err, EINVAL, "network namespace mode %d is not supported", net);
    }
    switch (ipc) {
    case NS_MODE_NODE:
        ns->host_ipc = true;
        break;
    case NS_MODE_POD:
        if (sb->host_ipc)
            ns->host_ipc = true;
        else
            ns->ipc_path = empty(sb->ipcns_path) ? NULL : sb->ipcns_path;
        break;
    case NS_MODE_CONTAINER:
        break;
    default:
        return hull_error_setx(err, EINVAL, "ipc namespace mode %d is not supported", ipc);
    }
    switch (pid) {
    case NS_MODE_NODE:
        ns->host_pid = true;
        break;
    case NS_MODE_POD:
        if (sb->host_pid)
            ns->host_pid = true;
        else if (!empty(sb->pidns_path))
            ns->pid_path = sb->pidns_path;
        else
            return hull_error_setx(err, EINVAL,
                                   "pid namespace mode POD but pod \"%s\" has no "
                                   "shared PID namespace",
                                   S(sb->id));
        break;
    case NS_MODE_CONTAINER:
        break;
    case NS_MODE_TARGET:
        if (empty(in->target_pidns_path))
            return hull_error_setx(err, EINVAL,
                                   "pid namespace mode TARGET (target_id \"%s\"): "
                                   "the target container's PID namespace is unknown",
                                   o ? S(o->target_id) : "");
        ns->pid_path = in->target_pidns_path;
        break;
    default:
        return hull_error_setx(err, EINVAL, "pid namespace mode %d is not supported", pid);
    }
    /* UTS: the pod's; host-network pods use the host's (as kubelet expects) */
    if (!empty(sb->utsns_path))
        ns->uts_path = sb->utsns_path;
    else if (ns->host_net)
        ns->host_uts = true;
    ns->new_cgroupns = host_is_cgroup2();
    return 0;
}

static void jw_ns(struct hull_json_writer *w, const char *type, const char *path)
{
    hull_jw_begin_object(w);
    hull_jw_kv_string(w, "type", type);
    if (path)
        hull_jw_kv_string(w, "path", path);
    hull_jw_end_object(w);
}

/* ---- process ----------------------------------------------------------------------------- */
static int build_args(const struct ocispec_input *in, struct strv *args, hull_error_t *err)
{
    const Runtime__V1__ContainerConfig *c = in->config;
    char **cmd = c->command, **arg = c->args;
    size_t ncmd = c->n_command, narg = c->n_args;
    if (ncmd == 0) {
        /* no command: the image's entrypoint, then the CRI args or else the image's cmd */
        char **ep = in->image ? in->image->entrypoint : NULL;
        for (size_t i = 0; ep && ep[i]; i++)
            strv_push(args, xstrdup(ep[i]));
        if (narg == 0) {
            char **ic = in->image ? in->image->cmd : NULL;
            for (size_t i = 0; ic && ic[i]; i++)
                strv_push(args, xstrdup(ic[i]));
        }
    } else {
        /* a command replaces the entrypoint and drops the image's cmd */
        for (size_t i = 0; i < ncmd; i++)
            strv_push(args, xstrdup(S(cmd[i])));
    }
    for (size_t i = 0; i < narg; i++)
        strv_push(args, xstrdup(S(arg[i])));
    if (args->n == 0)
        return hull_error_setx(err, EINVAL,
                               "no command specified: neither the container config "
                               "nor the image has an entrypoint, cmd, command or args");
    return 0;
}

static void env_set(struct strv *env, const char *kv, size_t keylen)
{
    for (size_t i = 0; i < env->n; i++) {
        if (strncmp(env->v[i], kv, keylen) == 0 && env->v[i][keylen] == '=') {
            free(env->v[i]);
            env->v[i] = xstrdup(kv);
            return;
        }
    }
    strv_push(env, xstrdup(kv));
}

static int build_env(const struct ocispec_input *in, struct strv *env, hull_error_t *err)
{
    const struct ocispec_sandbox *sb = in->sandbox;
    const char *hn = !empty(sb->hostname)                           ? sb->hostname
                     : (sb->config && !empty(sb->config->hostname)) ? sb->config->hostname
                                                                    : NULL;
    char buf[256];
    if (hn == NULL && gethostname(buf, sizeof(buf)) == 0) {
        buf[sizeof(buf) - 1] = '\0';
        hn = buf;
    }
    if (hn) {
        _cleanup_free_ char *kv = xasprintf("HOSTNAME=%s", hn);
        env_set(env, kv, 8);
    }
    for (char **e = in->image ? in->image->env : NULL; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL || eq == *e)
            continue;
        env_set(env, *e, (size_t)(eq - *e));
    }
    for (size_t i = 0; i < in->config->n_envs; i++) {
        const char *k = S(in->config->envs[i]->key), *v = S(in->config->envs[i]->value);
        if (empty(k) || strchr(k, '='))
            return hull_error_setx(err, EINVAL, "environment variable name \"%s\" is invalid", k);
        _cleanup_free_ char *kv = xasprintf("%s=%s", k, v);
        env_set(env, kv, strlen(k));
    }
    bool has_path = false;
    for (size_t i = 0; i < env->n; i++)
        if (strncmp(env->v[i], "PATH=", 5) == 0)
            has_path = true;
    if (!has_path)
        strv_push(env, xstrdup(DEFAULT_PATH_ENV));
    return 0;
}

static long long current_oom_score_adj(void)
{
    _cleanup_free_ char *buf = NULL;
    if (hull_read_file("/proc/self/oom_score_adj", 64, &buf, NULL, NULL) < 0)
        return 0;
    return atoll(buf);
}

static uint64_t nofile_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
        rl.rlim_max < DEFAULT_NOFILE && !(host_caps() & (1ULL << CAP_SYS_RESOURCE)))
        return rl.rlim_max; /* raising the hard limit needs CAP_SYS_RESOURCE */
    return DEFAULT_NOFILE;
}

/* ---- the spec ---------------------------------------------------------------------------- */
static const char *const reserved_annotations[] = {
    "io.kubernetes.cri.container-type", "io.kubernetes.cri.sandbox-id",
    "io.kubernetes.cri.sandbox-name",   "io.kubernetes.cri.sandbox-namespace",
    "io.kubernetes.cri.sandbox-uid",    "io.kubernetes.cri.container-name",
    "io.kubernetes.cri.image-name",     NULL};

static bool is_reserved_annotation(const char *k)
{
    for (const char *const *r = reserved_annotations; *r; r++)
        if (strcmp(k, *r) == 0)
            return true;
    return false;
}

static int cgroups_path(const struct ocispec_input *in, char **out, hull_error_t *err)
{
    const struct ocispec_sandbox *sb = in->sandbox;
    const char *parent = sb->cgroup_parent;
    if (empty(parent) && sb->config && sb->config->linux)
        parent = sb->config->linux->cgroup_parent;
    parent = S(parent);
    if (has_dotdot_component(parent) || has_control_chars(parent))
        return hull_error_setx(err, EINVAL, "cgroup parent \"%s\" is invalid", parent);
    _cleanup_free_ char *p = clean_path(parent);
    *out = strcmp(p, "/") == 0 ? xasprintf("/hull-%s", in->container_id)
                               : xasprintf("%s/hull-%s", p, in->container_id);
    return 0;
}

int oci_spec_from_cri(const struct ocispec_input *in, char **json_out, hull_error_t *err)
{
    *json_out = NULL;
    if (in == NULL || in->config == NULL || in->sandbox == NULL || empty(in->rootfs) ||
        !hull_is_safe_component(S(in->container_id)))
        return hull_error_setx(err, EINVAL,
                               "oci spec: missing container id, config, sandbox or "
                               "rootfs");
    const Runtime__V1__ContainerConfig *c = in->config;
    const struct ocispec_sandbox *sb = in->sandbox;
    const Runtime__V1__LinuxContainerSecurityContext *sc =
        c->linux ? c->linux->security_context : NULL;
    const Runtime__V1__LinuxContainerResources *res = c->linux ? c->linux->resources : NULL;
    bool privileged = sc && sc->privileged;
    bool readonly_rootfs = sc && sc->readonly_rootfs;
    int r;

    if (c->n_cdi_devices > 0)
        return hull_error_setx(err, ENOTSUP, "CDI devices are not supported (\"%s\")",
                               S(c->cdi_devices[0]->name));
    if (privileged && sb->config && sb->config->linux && sb->config->linux->security_context &&
        !sb->config->linux->security_context->privileged)
        return hull_error_setx(err, EINVAL,
                               "privileged container in a pod that is not "
                               "privileged");

    struct strv args = {0}, env = {0};
    struct user_result user = {0};
    struct mntv mounts = {0};
    struct devv devices = {0};
    struct hull_json_writer w = {0};
    _cleanup_free_ char *cwd = NULL, *seccomp_path = NULL, *cgpath = NULL;
    const char *rootfs_prop = NULL;
    uint64_t bounding = 0, ambient = 0;
    int seccomp_kind = SECCOMP_NONE;
    struct ns_plan ns;

    r = build_args(in, &args, err);
    if (r < 0)
        goto out;
    r = build_env(in, &env, err);
    if (r < 0)
        goto out;
    const char *wd = !empty(c->working_dir)                          ? c->working_dir
                     : (in->image && !empty(in->image->working_dir)) ? in->image->working_dir
                                                                     : "/";
    if (wd[0] != '/') {
        r = hull_error_setx(err, EINVAL, "working_dir \"%s\" must be absolute", wd);
        goto out;
    }
    cwd = clean_path(wd);
    r = resolve_user(in, sc, &user, err);
    if (r < 0)
        goto out;
    r = compute_caps(sc, privileged, &bounding, &ambient, err);
    if (r < 0)
        goto out;
    r = plan_namespaces(in, sc, &ns, err);
    if (r < 0)
        goto out;
    r = check_resources(res, err);
    if (r < 0)
        goto out;
    r = cgroups_path(in, &cgpath, err);
    if (r < 0)
        goto out;
    r = seccomp_choice(in, sc, privileged, &seccomp_kind, &seccomp_path, err);
    if (r < 0)
        goto out;

    /* AppArmor */
    const char *apparmor = NULL;
    if (sc && !privileged) {
        const char *ref = NULL;
        if (sc->apparmor &&
            sc->apparmor->profile_type == RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost)
            ref = S(sc->apparmor->localhost_ref);
        else if (!sc->apparmor && strncmp(sc_apparmor_profile(sc), "localhost/", 10) == 0)
            ref = sc_apparmor_profile(sc) + 10;
        if (ref) {
            if (strncmp(ref, "localhost/", 10) == 0)
                ref += 10;
            if (empty(ref) || has_control_chars(ref)) {
                r = hull_error_setx(err, EINVAL, "invalid AppArmor profile name \"%s\"", ref);
                goto out;
            }
            if (!in->host_has_apparmor) {
                r = hull_error_setx(err, ENOTSUP,
                                    "AppArmor profile \"%s\" requested but "
                                    "AppArmor is not enabled on this host",
                                    ref);
                goto out;
            }
            apparmor = ref;
        }
    }

    /* sysctls of the pod */
    const Runtime__V1__LinuxPodSandboxConfig *plc = sb->config ? sb->config->linux : NULL;
    struct strv sysctl_keys = {0};
    for (size_t i = 0; plc && i < plc->n_sysctls; i++) {
        char *k = NULL;
        r = sysctl_check(plc->sysctls[i]->key, plc->sysctls[i]->value, ns.host_net, ns.host_ipc, &k,
                         err);
        if (r < 0) {
            strv_clear(&sysctl_keys);
            goto out;
        }
        strv_push(&sysctl_keys, k);
    }

    r = build_mounts(in, privileged, readonly_rootfs, &ns, &mounts, &rootfs_prop, err);
    if (r == 0 && ns.userns)
        r = userns_prepare(in, &mounts, err);
    if (r < 0) {
        strv_clear(&sysctl_keys);
        goto out;
    }
    if (privileged)
        add_host_devices(&devices, "/dev", 0);
    r = add_cri_devices(c, &devices, err);
    if (r < 0) {
        strv_clear(&sysctl_keys);
        goto out;
    }

    /* ---- write ---- */
    hull_jw_init(&w, false);
    hull_jw_begin_object(&w);
    hull_jw_kv_string(&w, "ociVersion", "1.1.0");

    hull_jw_key(&w, "process");
    hull_jw_begin_object(&w);
    hull_jw_kv_bool(&w, "terminal", c->tty);
    hull_jw_key(&w, "user");
    hull_jw_begin_object(&w);
    hull_jw_kv_int(&w, "uid", user.uid);
    hull_jw_kv_int(&w, "gid", user.gid);
    hull_jw_key(&w, "additionalGids");
    hull_jw_begin_array(&w);
    for (size_t i = 0; i < user.gids.n; i++)
        hull_jw_int(&w, user.gids.v[i]);
    hull_jw_end_array(&w);
    hull_jw_end_object(&w);
    jw_strv(&w, "args", args.v, args.n);
    jw_strv(&w, "env", env.v, env.n);
    hull_jw_kv_string(&w, "cwd", cwd);
    hull_jw_key(&w, "capabilities");
    hull_jw_begin_object(&w);
    jw_caps(&w, "bounding", bounding);
    jw_caps(&w, "effective", bounding);
    jw_caps(&w, "permitted", bounding);
    jw_caps(&w, "inheritable", ambient);
    jw_caps(&w, "ambient", ambient);
    hull_jw_end_object(&w);
    hull_jw_key(&w, "rlimits");
    hull_jw_begin_array(&w);
    hull_jw_begin_object(&w);
    hull_jw_kv_string(&w, "type", "RLIMIT_NOFILE");
    hull_jw_kv_int(&w, "hard", (long long)nofile_limit());
    hull_jw_kv_int(&w, "soft", (long long)nofile_limit());
    hull_jw_end_object(&w);
    hull_jw_end_array(&w);
    hull_jw_kv_bool(&w, "noNewPrivileges", sc && sc->no_new_privs);
    if (res) {
        long long adj = res->oom_score_adj;
        if (in->restrict_oom_score_adj || !(host_caps() & (1ULL << CAP_SYS_RESOURCE))) {
            long long cur = current_oom_score_adj();
            if (adj < cur)
                adj = cur;
        }
        hull_jw_kv_int(&w, "oomScoreAdj", adj);
    }
    if (apparmor)
        hull_jw_kv_string(&w, "apparmorProfile", apparmor);
    hull_jw_end_object(&w); /* process */

    hull_jw_key(&w, "root");
    hull_jw_begin_object(&w);
    hull_jw_kv_string(&w, "path", in->rootfs);
    hull_jw_kv_bool(&w, "readonly", readonly_rootfs);
    hull_jw_end_object(&w);

    if (!ns.host_uts && ns.uts_path == NULL) {
        const char *hn = !empty(sb->hostname)                           ? sb->hostname
                         : (sb->config && !empty(sb->config->hostname)) ? sb->config->hostname
                                                                        : NULL;
        if (hn)
            hull_jw_kv_string(&w, "hostname", hn);
    }

    jw_mounts(&w, &mounts);

    hull_jw_key(&w, "annotations");
    hull_jw_begin_object(&w);
    for (size_t i = 0; i < c->n_annotations; i++) {
        const char *k = S(c->annotations[i]->key);
        if (!is_reserved_annotation(k))
            hull_jw_kv_string(&w, k, S(c->annotations[i]->value));
    }
    hull_jw_kv_string(&w, "io.kubernetes.cri.container-type", "container");
    hull_jw_kv_string(&w, "io.kubernetes.cri.sandbox-id", S(sb->id));
    if (sb->config && sb->config->metadata) {
        hull_jw_kv_string(&w, "io.kubernetes.cri.sandbox-name", S(sb->config->metadata->name));
        hull_jw_kv_string(&w, "io.kubernetes.cri.sandbox-namespace",
                          S(sb->config->metadata->namespace_));
        hull_jw_kv_string(&w, "io.kubernetes.cri.sandbox-uid", S(sb->config->metadata->uid));
    }
    hull_jw_kv_string(&w, "io.kubernetes.cri.container-name",
                      c->metadata ? S(c->metadata->name) : "");
    if (c->image)
        hull_jw_kv_string(&w, "io.kubernetes.cri.image-name",
                          !empty(c->image->user_specified_image) ? c->image->user_specified_image
                                                                 : S(c->image->image));
    hull_jw_end_object(&w);

    hull_jw_key(&w, "linux");
    hull_jw_begin_object(&w);
    if (sysctl_keys.n) {
        hull_jw_key(&w, "sysctl");
        hull_jw_begin_object(&w);
        for (size_t i = 0; i < sysctl_keys.n; i++)
            hull_jw_kv_string(&w, sysctl_keys.v[i], S(plc->sysctls[i]->value));
        hull_jw_end_object(&w);
    }
    strv_clear(&sysctl_keys);
    hull_jw_key(&w, "resources");
    hull_jw_begin_object(&w);
    jw_device_rules(&w, privileged, &devices);
    jw_resources_body(&w, res);
    hull_jw_end_object(&w);
    hull_jw_kv_string(&w, "cgroupsPath", cgpath);
    hull_jw_key(&w, "namespaces");
    hull_jw_begin_array(&w);
    if (!ns.host_pid)
        jw_ns(&w, "pid", ns.pid_path);
    if (!ns.host_net)
        jw_ns(&w, "network", ns.net_path);
    if (!ns.host_ipc)
        jw_ns(&w, "ipc", ns.ipc_path);
    if (!ns.host_uts)
        jw_ns(&w, "uts", ns.uts_path);
    jw_ns(&w, "mount", NULL);
    if (ns.new_cgroupns)
        jw_ns(&w, "cgroup", NULL);
    if (ns.userns)
        jw_ns(&w, "user", sb->userns_path); /* the pod's, with its mappings below */
    hull_jw_end_array(&w);
    if (ns.userns) {
        const struct userns_map *maps[2] = {&ns.uid_map, &ns.gid_map};
        const char *keys[2] = {"uidMappings", "gidMappings"};
        for (int i = 0; i < 2; i++) {
            hull_jw_key(&w, keys[i]);
            hull_jw_begin_array(&w);
            hull_jw_begin_object(&w);
            hull_jw_kv_int(&w, "containerID", maps[i]->container_id);
            hull_jw_kv_int(&w, "hostID", maps[i]->host_id);
            hull_jw_kv_int(&w, "size", maps[i]->size);
            hull_jw_end_object(&w);
            hull_jw_end_array(&w);
        }
    }
    jw_devices(&w, &devices);
    if (!privileged) {
        bool own_masked = sc && sc->n_masked_paths > 0;
        bool own_ro = sc && sc->n_readonly_paths > 0;
        hull_jw_key(&w, "maskedPaths");
        hull_jw_begin_array(&w);
        if (own_masked) {
            for (size_t i = 0; i < sc->n_masked_paths; i++)
                hull_jw_string(&w, S(sc->masked_paths[i]));
        } else {
            for (const char *const *p = default_masked_paths; *p; p++)
                hull_jw_string(&w, *p);
        }
        hull_jw_end_array(&w);
        hull_jw_key(&w, "readonlyPaths");
        hull_jw_begin_array(&w);
        if (own_ro) {
            for (size_t i = 0; i < sc->n_readonly_paths; i++)
                hull_jw_string(&w, S(sc->readonly_paths[i]));
        } else {
            for (const char *const *p = default_readonly_paths; *p; p++)
                hull_jw_string(&w, *p);
        }
        hull_jw_end_array(&w);
    }
    if (rootfs_prop)
        hull_jw_kv_string(&w, "rootfsPropagation", rootfs_prop);
    if (seccomp_kind == SECCOMP_DEFAULT) {
        hull_jw_key(&w, "seccomp");
        ocispec_seccomp_default_write(&w, bounding, NULL);
    } else if (seccomp_kind == SECCOMP_LOCALHOST) {
        hull_jw_key(&w, "seccomp");
        r = jw_seccomp_file(&w, seccomp_path, bounding, err);
        if (r < 0)
            goto out;
    }
    hull_jw_end_object(&w); /* linux */
    hull_jw_end_object(&w);
    *json_out = hull_jw_finish(&w, NULL);
    if (in->user_out) {
        in->user_out->uid = user.uid;
        in->user_out->gid = user.gid;
        in->user_out->additional_gids = hull_steal(user.gids.v);
        in->user_out->n_additional_gids = user.gids.n;
    }
    r = 0;
out:
    if (w.gen)
        hull_jw_free(&w);
    strv_clear(&args);
    strv_clear(&env);
    free(user.gids.v);
    mntv_clear(&mounts);
    devv_clear(&devices);
    return r;
}

int ocispec_log_path(const Runtime__V1__PodSandboxConfig *pod,
                     const Runtime__V1__ContainerConfig *config, char **out, hull_error_t *err)
{
    *out = NULL;
    const char *dir = pod ? S(pod->log_directory) : "";
    const char *lp = config ? S(config->log_path) : "";
    if (*lp == '\0')
        return 0;
    if (has_dotdot_component(lp) || has_control_chars(lp))
        return hull_error_setx(err, EINVAL, "log_path \"%s\" is invalid", lp);
    if (*dir == '\0') {
        if (lp[0] != '/')
            return hull_error_setx(err, EINVAL,
                                   "log_path \"%s\" is relative and the pod has "
                                   "no log_directory",
                                   lp);
        *out = clean_path(lp);
        return 0;
    }
    if (dir[0] != '/' || has_dotdot_component(dir) || has_control_chars(dir))
        return hull_error_setx(err, EINVAL, "log_directory \"%s\" is invalid", dir);
    _cleanup_free_ char *joined = hull_path_join(dir, lp);
    *out = clean_path(joined);
    return 0;
}

int ocispec_exec_process(const char *spec_json, char *const *cmd, size_t n, bool tty, unsigned rows,
                         unsigned cols, char **json_out, hull_error_t *err)
{
    *json_out = NULL;
    if (n == 0)
        return hull_error_setx(err, EINVAL, "exec: no command");
    _cleanup_yajl_ yajl_val t = NULL;
    int r = hull_json_parse(spec_json ? spec_json : "", "container spec", &t, err);
    if (r < 0)
        return r;
    yajl_val p = hull_json_get(t, "process");
    if (p == NULL || !YAJL_IS_OBJECT(p))
        return hull_error_setx(err, EINVAL, "container spec has no process");
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    hull_jw_begin_object(&w);
    for (size_t i = 0; i < p->u.object.len; i++) {
        const char *k = p->u.object.keys[i];
        if (strcmp(k, "args") == 0 || strcmp(k, "terminal") == 0 || strcmp(k, "consoleSize") == 0)
            continue;
        hull_jw_key(&w, k);
        jw_copy(&w, p->u.object.values[i], 0);
    }
    hull_jw_kv_bool(&w, "terminal", tty);
    if (tty && rows && cols) {
        hull_jw_key(&w, "consoleSize");
        hull_jw_begin_object(&w);
        hull_jw_kv_int(&w, "height", rows);
        hull_jw_kv_int(&w, "width", cols);
        hull_jw_end_object(&w);
    }
    jw_strv(&w, "args", cmd, n);
    hull_jw_end_object(&w);
    *json_out = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    return 0;
}
