/* The container's user: uid, gid and additional gids from the CRI security context, the image's
 * USER and the image's /etc/passwd and /etc/group (read inside the rootfs only, bounded). */
#include "server/spec/spec_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#define ETC_FILE_MAX        (1u << 20) /* the image's /etc/passwd or /etc/group */
#define ETC_LINE_MAX        (64u << 10)
#define MAX_ADDITIONAL_GIDS 65536 /* NGROUPS_MAX */
#define ID_MAX              4294967294u

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
/* Reads /<rel> of the image (resolved inside the rootfs only).  *out is NULL when it does not
 * exist.  Non-regular files and files over ETC_FILE_MAX are refused. */
static int read_etc_file(int rootfd, const char *rel, char **out, size_t *len, hull_error_t *err)
{
    *out = NULL;
    *len = 0;
    /* look before opening: opening a device node or a fifo of a hostile image can have side
     * effects or block */
    _cleanup_close_ int pfd = hull_open_in_root(rootfd, rel, O_PATH, 0);
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
    _cleanup_close_ int fd = hull_open_in_root(rootfd, rel, O_RDONLY | O_NONBLOCK, 0);
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

/* Who the container runs as, before the additional gids. */
struct who {
    uint32_t uid, gid;
    char *username; /* the passwd entry's name; NULL when there is none */
};

/* user step: run_as_user, with its passwd entry's gid and name when the image has one */
static int user_from_uid(struct etc_files *e, int64_t value, struct who *w, hull_error_t *err)
{
    struct pw_query q = {0};
    int r = id_from_i64(value, "run_as_user", &w->uid, err);
    if (r < 0)
        return r;
    q.uid = w->uid;
    if ((r = passwd_lookup(e, &q, err)) < 0)
        return r;
    if (q.found) {
        w->gid = q.out_gid;
        w->username = hull_steal(q.out_name);
    }
    free(q.out_name);
    return 0;
}

/* user step: run_as_username, which the image's /etc/passwd must hold */
static int user_from_name(struct etc_files *e, const char *name, struct who *w, hull_error_t *err)
{
    struct pw_query q = {.name = name};
    int r = passwd_lookup(e, &q, err);
    if (r < 0)
        return r;
    if (!q.found)
        return hull_error_setx(err, ENOENT,
                               "run_as_username \"%s\" not found in the image's "
                               "/etc/passwd%s",
                               name, e->passwd ? "" : " (the image has none)");
    w->uid = q.out_uid;
    w->gid = q.out_gid;
    w->username = hull_steal(q.out_name);
    return 0;
}

/* user step: the group of the image's USER ("...:GROUP"), a gid or a name in /etc/group */
static int image_group(struct etc_files *e, const char *spec, const char *g, uint32_t *gid,
                       hull_error_t *err)
{
    if (all_digits(g, strlen(g))) {
        if (!id_from_str(g, strlen(g), gid))
            return hull_error_setx(err, EINVAL, "image USER \"%s\": gid out of range (0..%u)", spec,
                                   ID_MAX);
        return 0;
    }
    int r = etc_load(e, true, err);
    if (r < 0)
        return r;
    struct gr_query gq = {.name = g};
    if (e->group)
        etc_each(e->group, e->glen, 3, gr_name_cb, &gq);
    if (!gq.found)
        return hull_error_setx(err, ENOENT,
                               "image USER \"%s\": group \"%s\" not found "
                               "in the image's /etc/group%s",
                               spec, g, e->group ? "" : " (the image has none)");
    *gid = gq.gid;
    return 0;
}

/* user step: the image's USER ("", "UID", "NAME", each with an optional ":GROUP") */
static int user_from_image(struct etc_files *e, const char *spec, struct who *w, hull_error_t *err)
{
    const char *colon = strchr(spec, ':');
    size_t ulen = colon ? (size_t)(colon - spec) : strlen(spec);
    _cleanup_free_ char *name = NULL;
    struct pw_query q = {0};
    if (ulen == 0) {
        q.uid = 0;
    } else if (all_digits(spec, ulen)) {
        if (!id_from_str(spec, ulen, &q.uid))
            return hull_error_setx(err, EINVAL, "image USER \"%s\": uid out of range (0..%u)", spec,
                                   ID_MAX);
    } else {
        q.name = name = xstrndup(spec, ulen);
    }
    int r = passwd_lookup(e, &q, err);
    if (r < 0)
        return r;
    if (q.name && !q.found)
        return hull_error_setx(err, ENOENT,
                               "image USER \"%s\": user \"%s\" not found in "
                               "the image's /etc/passwd%s",
                               spec, q.name, e->passwd ? "" : " (the image has none)");
    if (q.found)
        w->username = hull_steal(q.out_name);
    w->uid = q.found ? q.out_uid : q.uid;
    w->gid = q.found ? q.out_gid : 0;
    if (colon && colon[1])
        return image_group(e, spec, colon + 1, &w->gid, err);
    return 0;
}

/* user step: the additional gids: the primary gid always first (CVE-2023-25173), the user's
 * groups in the image's /etc/group (unless the policy is Strict), the supplemental groups */
static int user_groups(struct etc_files *e, const Runtime__V1__LinuxContainerSecurityContext *sc,
                       const char *username, struct user_result *res, hull_error_t *err)
{
    int r;
    gidv_add(&res->gids, res->gid);
    bool strict =
        sc && sc->supplemental_groups_policy == RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
    if (!strict && username) {
        r = etc_load(e, true, err);
        if (r < 0)
            return r;
        struct gr_member_query mq = {.user = username, .gids = &res->gids};
        if (e->group)
            etc_each(e->group, e->glen, 4, gr_member_cb, &mq);
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

/* The container's uid, gid and additional gids (see spec.h and containerd's WithUser). */
int spec_resolve_user(const struct spec_input *in,
                      const Runtime__V1__LinuxContainerSecurityContext *sc, struct user_result *res,
                      hull_error_t *err)
{
    struct etc_files e __attribute__((cleanup(etc_files_clear))) = {.rootfd = -1};
    e.rootfd = open(in->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (e.rootfd < 0)
        return hull_error_set(err, errno, "open rootfs `%s`", in->rootfs);
    /* as containerd and CRI-O (and critest expects) */
    if (sc && sc->run_as_group && !sc->run_as_user && empty(sc->run_as_username))
        return hull_error_setx(err, EINVAL,
                               "run_as_group is set without run_as_user or run_as_username");
    struct who w = {0};
    int r;
    if (sc && sc->run_as_user)
        r = user_from_uid(&e, sc->run_as_user->value, &w, err);
    else if (sc && !empty(sc->run_as_username))
        r = user_from_name(&e, sc->run_as_username, &w, err);
    else
        r = user_from_image(&e, in->image ? S(in->image->user) : "", &w, err);
    _cleanup_free_ char *username = w.username;
    if (r < 0)
        return r;
    if (sc && sc->run_as_group &&
        (r = id_from_i64(sc->run_as_group->value, "run_as_group", &w.gid, err)) < 0)
        return r;
    res->uid = w.uid;
    res->gid = w.gid;
    return user_groups(&e, sc, username, res, err);
}
