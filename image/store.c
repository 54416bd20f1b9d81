/* The image store: image records, unpacked layers, verified blobs, pulls (with shared downloads
 * of the same blob or layer), removal with layer reference counting, reload at start. */

#include "common/crashpoint.h"
#include "image/internal.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/statvfs.h>

#define MAX_MANIFEST   (4 << 20)
#define MAX_CONFIG     (8 << 20)
#define MAX_RECORD     (4 << 20)
#define PULL_PARALLEL  4
#define MAX_LAYERS     500 /* overlayfs OVL_MAX_STACK */
#define SHORT_ID_CHARS 10

struct layer_rec {
    char *diff_id; /* sha256:… */
    char *short_id;
    uint64_t size; /* unpacked bytes */
    uint64_t entries;
    int users; /* holds from containers */
    struct layer_rec *next;
};

struct layer_ref {
    char *digest; /* compressed blob */
    char *diff_id;
    int64_t size;
    char *media_type;
};

struct image_rec {
    char *id; /* config digest */
    char **tags;
    size_t n_tags;
    char **digests;
    size_t n_digests;
    char *manifest_digest; /* the platform manifest */
    char *index_digest;    /* the index/list it came from, or NULL */
    struct layer_ref *layers;
    size_t n_layers;
    uint64_t size;
    bool pinned;
    bool removed; /* RemoveImage'd while containers use it: hidden, kept for them */
    int64_t pulled_ns;
    yajl_val config; /* parsed config blob */
    struct image_rec *next;
};

/* Containers' holds on an image's layers (they outlive the image record). */
struct hold {
    char *image_id;
    char **diff_ids;
    size_t n;
    int count;
    struct hold *next;
};

/* A download (or unpack) in progress that later callers wait for instead of repeating it. */
struct inflight {
    char *key;
    bool done;
    int status;
    char *msg;
    int waiters;
    pthread_cond_t cond;
    struct inflight *next;
};

struct old_cfg {
    struct registry_config *cfg;
    struct old_cfg *next;
};

struct image_store {
    char *dir; /* <root>/images */
    pthread_mutex_t lock;
    struct image_rec *images;
    struct layer_rec *layers;
    struct hold *holds;
    struct inflight *inflight;
    struct registry_config *cfg;
    struct old_cfg *old_cfgs; /* kept until close: pulls in flight may still read them */
    struct token_cache *tokens;
};

/* ---- small helpers ------------------------------------------------------------------------- */
void image_strv_free(char **v)
{
    hull_strv_free(v);
}

static const char *hex_of(const char *digest)
{
    return strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest;
}

static void random_name(char *out, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    unsigned char rnd[64];
    if (n > sizeof(rnd))
        n = sizeof(rnd);
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(rnd + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            abort();
        got += (size_t)r;
    }
    for (size_t i = 0; i + 1 < n; i++)
        out[i] = alphabet[rnd[i] & 31];
    out[n - 1] = '\0';
}

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void layer_ref_free(struct layer_ref *l)
{
    free(l->digest);
    free(l->diff_id);
    free(l->media_type);
}

static void image_rec_free(struct image_rec *r)
{
    if (r == NULL)
        return;
    free(r->id);
    image_strv_free(r->tags);
    image_strv_free(r->digests);
    free(r->manifest_digest);
    free(r->index_digest);
    for (size_t i = 0; i < r->n_layers; i++)
        layer_ref_free(&r->layers[i]);
    free(r->layers);
    if (r->config)
        yajl_tree_free(r->config);
    free(r);
}

static void layer_rec_free(struct layer_rec *l)
{
    free(l->diff_id);
    free(l->short_id);
    free(l);
}

/* Any record with this id, hidden (removed but in use) ones included. */
static struct image_rec *find_image_any(struct image_store *s, const char *id)
{
    for (struct image_rec *r = s->images; r; r = r->next)
        if (strcmp(r->id, id) == 0)
            return r;
    return NULL;
}

static struct image_rec *find_image(struct image_store *s, const char *id)
{
    struct image_rec *r = find_image_any(s, id);
    return r && !r->removed ? r : NULL;
}

/* By exact id ("sha256:<hex>" or "<hex>"), hidden records included: for the users of an image
 * (containers) who must still find what they run on. */
static struct image_rec *find_by_id_any(struct image_store *s, const char *id)
{
    if (image_digest_valid(id))
        return find_image_any(s, id);
    _cleanup_free_ char *full = xasprintf("sha256:%s", id);
    return image_digest_valid(full) ? find_image_any(s, full) : NULL;
}

static struct layer_rec *find_layer(struct image_store *s, const char *diff_id)
{
    for (struct layer_rec *l = s->layers; l; l = l->next)
        if (strcmp(l->diff_id, diff_id) == 0)
            return l;
    return NULL;
}

static char *store_path(struct image_store *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static char *store_path(struct image_store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *rel = NULL;
    if (vasprintf(&rel, fmt, ap) < 0)
        abort();
    va_end(ap);
    char *r = hull_path_join(s->dir, rel);
    free(rel);
    return r;
}

/* Writes data to path via a uniquely named temp file (concurrent writers of the same content
 * are fine). */
static int write_file_unique(struct image_store *s, const char *path, const void *data, size_t len,
                             hull_error_t *err)
{
    char name[16];
    random_name(name, sizeof(name));
    _cleanup_free_ char *tmp = store_path(s, "tmp/w-%s", name);
    _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return hull_error_set(err, errno, "create `%s`", tmp);
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            unlink(tmp);
            return hull_error_set(err, e, "write `%s`", tmp);
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) < 0 || rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return hull_error_set(err, e, "commit `%s`", path);
    }
    return 0;
}

/* ---- records on disk ----------------------------------------------------------------------- */
static char *image_rec_json(const struct image_rec *r)
{
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    hull_jw_begin_object(&w);
    hull_jw_kv_string(&w, "id", r->id);
    hull_jw_key(&w, "repo_tags");
    hull_jw_begin_array(&w);
    for (size_t i = 0; i < r->n_tags; i++)
        hull_jw_string(&w, r->tags[i]);
    hull_jw_end_array(&w);
    hull_jw_key(&w, "repo_digests");
    hull_jw_begin_array(&w);
    for (size_t i = 0; i < r->n_digests; i++)
        hull_jw_string(&w, r->digests[i]);
    hull_jw_end_array(&w);
    hull_jw_kv_string(&w, "manifest_digest", r->manifest_digest);
    if (r->index_digest)
        hull_jw_kv_string(&w, "index_digest", r->index_digest);
    hull_jw_key(&w, "layers");
    hull_jw_begin_array(&w);
    for (size_t i = 0; i < r->n_layers; i++) {
        hull_jw_begin_object(&w);
        hull_jw_kv_string(&w, "digest", r->layers[i].digest);
        hull_jw_kv_string(&w, "diff_id", r->layers[i].diff_id);
        hull_jw_kv_int(&w, "size", r->layers[i].size);
        hull_jw_kv_string(&w, "media_type", r->layers[i].media_type);
        hull_jw_end_object(&w);
    }
    hull_jw_end_array(&w);
    hull_jw_kv_int(&w, "size", (long long)r->size);
    hull_jw_kv_bool(&w, "pinned", r->pinned);
    if (r->removed)
        hull_jw_kv_bool(&w, "removed", true);
    hull_jw_kv_int(&w, "pulled", r->pulled_ns);
    hull_jw_end_object(&w);
    char *out = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    return out;
}

static int save_image_rec(struct image_store *s, const struct image_rec *r, hull_error_t *err)
{
    _cleanup_free_ char *json = image_rec_json(r);
    _cleanup_free_ char *path = store_path(s, "images/%s.json", hex_of(r->id));
    return hull_write_file_atomic(path, json, strlen(json), 0600, err);
}

static int read_blob(struct image_store *s, const char *digest, size_t max, char **out, size_t *len,
                     hull_error_t *err)
{
    if (!image_digest_valid(digest))
        return hull_error_setx(err, EINVAL, "bad digest \"%s\"", digest);
    _cleanup_free_ char *path = store_path(s, "blobs/sha256/%s", hex_of(digest));
    return hull_read_file(path, max, out, len, err);
}

static int parse_string_array(yajl_val v, char ***out, size_t *n)
{
    *out = xmalloc0(sizeof(char *));
    *n = 0;
    if (v == NULL || !YAJL_IS_ARRAY(v))
        return 0;
    for (size_t i = 0; i < v->u.array.len; i++)
        if (YAJL_IS_STRING(v->u.array.values[i]))
            hull_strv_push(out, n, YAJL_GET_STRING(v->u.array.values[i]));
    return 0;
}

static int load_image_rec(struct image_store *s, const char *path, struct image_rec **out,
                          hull_error_t *err)
{
    _cleanup_yajl_ yajl_val doc = NULL;
    int r = hull_json_parse_file(path, MAX_RECORD, &doc, err);
    if (r < 0)
        return r;
    struct image_rec *rec = xmalloc0(sizeof(*rec));
    const char *id = hull_json_get_string(doc, "id", NULL);
    const char *md = hull_json_get_string(doc, "manifest_digest", NULL);
    if (!image_digest_valid(id) || !image_digest_valid(md)) {
        image_rec_free(rec);
        return hull_error_setx(err, EINVAL, "`%s`: bad image record", path);
    }
    rec->id = xstrdup(id);
    rec->manifest_digest = xstrdup(md);
    const char *idx = hull_json_get_string(doc, "index_digest", NULL);
    rec->index_digest = image_digest_valid(idx) ? xstrdup(idx) : NULL;
    parse_string_array(hull_json_get(doc, "repo_tags"), &rec->tags, &rec->n_tags);
    parse_string_array(hull_json_get(doc, "repo_digests"), &rec->digests, &rec->n_digests);
    rec->size = (uint64_t)hull_json_get_int(doc, "size", 0);
    rec->pinned = hull_json_get_bool(doc, "pinned", false);
    rec->removed = hull_json_get_bool(doc, "removed", false);
    rec->pulled_ns = hull_json_get_int(doc, "pulled", 0);
    yajl_val layers = hull_json_get(doc, "layers");
    if (layers && YAJL_IS_ARRAY(layers)) {
        rec->layers = xmalloc0((layers->u.array.len + 1) * sizeof(*rec->layers));
        for (size_t i = 0; i < layers->u.array.len; i++) {
            yajl_val l = layers->u.array.values[i];
            const char *dg = hull_json_get_string(l, "digest", NULL);
            const char *di = hull_json_get_string(l, "diff_id", NULL);
            if (!image_digest_valid(dg) || !image_digest_valid(di)) {
                image_rec_free(rec);
                return hull_error_setx(err, EINVAL, "`%s`: bad layer entry", path);
            }
            struct layer_ref *lr = &rec->layers[rec->n_layers++];
            lr->digest = xstrdup(dg);
            lr->diff_id = xstrdup(di);
            lr->size = hull_json_get_int(l, "size", 0);
            lr->media_type = xstrdup(hull_json_get_string(l, "media_type", ""));
        }
    }
    _cleanup_free_ char *cfg = NULL;
    r = read_blob(s, rec->id, MAX_CONFIG, &cfg, NULL, err);
    if (r < 0 || hull_json_parse(cfg, "image config", &rec->config, err) < 0) {
        image_rec_free(rec);
        return hull_error_wrap(err, "image %s: config", id);
    }
    for (size_t i = 0; i < rec->n_layers; i++)
        if (find_layer(s, rec->layers[i].diff_id) == NULL) {
            int rr = hull_error_setx(err, ENOENT, "image %s: layer %s missing", id,
                                     rec->layers[i].diff_id);
            image_rec_free(rec);
            return rr;
        }
    *out = rec;
    return 0;
}

static int ensure_short_link(struct image_store *s, const struct layer_rec *l, hull_error_t *err)
{
    _cleanup_free_ char *link = store_path(s, "l/%s", l->short_id);
    _cleanup_free_ char *target = xasprintf("../layers/%s/diff", hex_of(l->diff_id));
    if (symlink(target, link) < 0 && errno != EEXIST)
        return hull_error_set(err, errno, "symlink `%s`", link);
    return 0;
}

static int load_layers(struct image_store *s, hull_error_t *err)
{
    _cleanup_free_ char *dir = store_path(s, "layers");
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (d == NULL)
        return hull_error_set(err, errno, "open `%s`", dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        _cleanup_free_ char *meta = store_path(s, "layers/%s/layer.json", de->d_name);
        _cleanup_yajl_ yajl_val doc = NULL;
        _cleanup_error_ hull_error_t lerr = NULL;
        const char *diff_id = NULL, *short_id = NULL;
        if (hull_json_parse_file(meta, 1 << 20, &doc, &lerr) == 0) {
            diff_id = hull_json_get_string(doc, "diff_id", NULL);
            short_id = hull_json_get_string(doc, "short", NULL);
        }
        if (!image_digest_valid(diff_id) || strcmp(hex_of(diff_id), de->d_name) != 0 ||
            short_id == NULL || !hull_is_safe_component(short_id)) {
            log_warn("image store: removing incomplete layer %s", de->d_name);
            _cleanup_free_ char *p = store_path(s, "layers/%s", de->d_name);
            _cleanup_error_ hull_error_t e2 = NULL;
            hull_rm_rf(p, &e2);
            continue;
        }
        struct layer_rec *l = xmalloc0(sizeof(*l));
        l->diff_id = xstrdup(diff_id);
        l->short_id = xstrdup(short_id);
        l->size = (uint64_t)hull_json_get_int(doc, "size", 0);
        l->entries = (uint64_t)hull_json_get_int(doc, "entries", 0);
        l->next = s->layers;
        s->layers = l;
        _cleanup_error_ hull_error_t e3 = NULL;
        if (ensure_short_link(s, l, &e3) < 0)
            log_warn("image store: %s", hull_error_msg(&e3));
    }
    return 0;
}

static int load_images(struct image_store *s, hull_error_t *err)
{
    _cleanup_free_ char *dir = store_path(s, "images");
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (d == NULL)
        return hull_error_set(err, errno, "open `%s`", dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        _cleanup_free_ char *p = store_path(s, "images/%s", de->d_name);
        if (de->d_name[0] == '.') {
            if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0)
                unlink(p);
            continue;
        }
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        struct image_rec *rec = NULL;
        _cleanup_error_ hull_error_t lerr = NULL;
        if (load_image_rec(s, p, &rec, &lerr) < 0) {
            log_warn("image store: skipping `%s`: %s", p, hull_error_msg(&lerr));
            continue;
        }
        rec->next = s->images;
        s->images = rec;
    }
    return 0;
}

/* Removes short links whose layer is gone. */
static void clean_links(struct image_store *s)
{
    _cleanup_free_ char *dir = store_path(s, "l");
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 && errno == ENOENT)
            unlinkat(dirfd(d), de->d_name, 0);
    }
}

/* ---- open / close -------------------------------------------------------------------------- */
int image_store_open(const char *root, const struct image_registry_config *cfg,
                     struct image_store **out, hull_error_t *err)
{
    static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
    pthread_once(&curl_once, curl_init_once);
    struct image_store *s = xmalloc0(sizeof(*s));
    s->dir = hull_path_join(root, "images");
    pthread_mutex_init(&s->lock, NULL);
    s->cfg = registry_config_copy(cfg);
    s->tokens = token_cache_new();
    int r = 0;
    static const char *const subdirs[] = {"blobs/sha256", "layers", "l", "images", "tmp"};
    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        _cleanup_free_ char *p = store_path(s, "%s", subdirs[i]);
        r = hull_mkdir_p(p, 0700, err);
        if (r < 0)
            goto fail;
    }
    {
        /* interrupted pulls: whatever is in tmp/ was never committed */
        _cleanup_free_ char *tmp = store_path(s, "tmp");
        r = hull_rm_rf(tmp, err);
        if (r < 0)
            goto fail;
        r = hull_mkdir_p(tmp, 0700, err);
        if (r < 0)
            goto fail;
    }
    r = load_layers(s, err);
    if (r < 0)
        goto fail;
    r = load_images(s, err);
    if (r < 0)
        goto fail;
    clean_links(s);
    *out = s;
    return 0;
fail:
    hull_error_wrap(err, "open image store `%s`", s->dir);
    image_store_close(s);
    return r;
}

void image_store_close(struct image_store *s)
{
    if (s == NULL)
        return;
    for (struct image_rec *r = s->images, *n; r; r = n) {
        n = r->next;
        image_rec_free(r);
    }
    for (struct layer_rec *l = s->layers, *n; l; l = n) {
        n = l->next;
        layer_rec_free(l);
    }
    for (struct hold *h = s->holds, *n; h; h = n) {
        n = h->next;
        free(h->image_id);
        for (size_t i = 0; i < h->n; i++)
            free(h->diff_ids[i]);
        free(h->diff_ids);
        free(h);
    }
    for (struct old_cfg *o = s->old_cfgs, *n; o; o = n) {
        n = o->next;
        registry_config_free(o->cfg);
        free(o);
    }
    registry_config_free(s->cfg);
    token_cache_free(s->tokens);
    pthread_mutex_destroy(&s->lock);
    free(s->dir);
    free(s);
}

void image_store_set_registry_config(struct image_store *s, const struct image_registry_config *c)
{
    struct registry_config *fresh = registry_config_copy(c);
    struct old_cfg *o = xmalloc0(sizeof(*o));
    pthread_mutex_lock(&s->lock);
    o->cfg = s->cfg;
    o->next = s->old_cfgs;
    s->old_cfgs = o;
    s->cfg = fresh;
    pthread_mutex_unlock(&s->lock);
}

const char *image_store_dir(const struct image_store *s)
{
    return s->dir;
}

/* ---- in-flight work shared between pulls --------------------------------------------------- */
/* Returns 1 if the caller must do the work (and later call inflight_finish), 0 if another
 * caller did it successfully, or a negative errno with its error. Called with s->lock held. */
static int inflight_join(struct image_store *s, const char *key, struct inflight **mine,
                         hull_error_t *err)
{
    for (struct inflight *f = s->inflight; f; f = f->next) {
        if (strcmp(f->key, key) != 0)
            continue;
        f->waiters++;
        while (!f->done)
            pthread_cond_wait(&f->cond, &s->lock);
        int st = f->status;
        if (st < 0)
            hull_error_setx(err, -st, "%s", f->msg ? f->msg : "failed");
        if (--f->waiters == 0) {
            pthread_cond_destroy(&f->cond);
            free(f->key);
            free(f->msg);
            free(f);
        }
        return st < 0 ? st : 0;
    }
    struct inflight *f = xmalloc0(sizeof(*f));
    f->key = xstrdup(key);
    pthread_cond_init(&f->cond, NULL);
    f->next = s->inflight;
    s->inflight = f;
    *mine = f;
    return 1;
}

/* Called with s->lock held. */
static void inflight_finish(struct image_store *s, struct inflight *f, int status,
                            hull_error_t *err)
{
    for (struct inflight **pp = &s->inflight; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    f->done = true;
    f->status = status;
    if (status < 0)
        f->msg = xstrdup(hull_error_msg(err));
    if (f->waiters == 0) {
        pthread_cond_destroy(&f->cond);
        free(f->key);
        free(f->msg);
        free(f);
        return;
    }
    pthread_cond_broadcast(&f->cond);
}

/* ---- pulling ------------------------------------------------------------------------------- */
static int open_tmpfile(struct image_store *s, hull_error_t *err)
{
    _cleanup_free_ char *tmp = store_path(s, "tmp");
    int fd = open(tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return hull_error_set(err, errno, "create a temp file in `%s`", tmp);
    return fd;
}

/* Makes sure the blob is in blobs/ (downloading and verifying it once) and returns its bytes. */
static int ensure_blob(struct image_store *s, struct registry_session *sess, const char *digest,
                       int64_t size, size_t max, char **out, size_t *len, hull_error_t *err)
{
    _cleanup_free_ char *path = store_path(s, "blobs/sha256/%s", hex_of(digest));
    _cleanup_free_ char *key = xasprintf("blob:%s", digest);
    if (size > (int64_t)max)
        return hull_error_setx(err, EFBIG, "blob %s: %lld bytes is too large", digest,
                               (long long)size);
    for (int round = 0; round < 2; round++) {
        if (access(path, F_OK) == 0)
            return hull_read_file(path, max, out, len, err);
        struct inflight *mine = NULL;
        pthread_mutex_lock(&s->lock);
        int j = inflight_join(s, key, &mine, err);
        pthread_mutex_unlock(&s->lock);
        if (j == 0)
            continue; /* someone else stored it */
        if (j < 0 && round == 0) {
            hull_error_free(err);
            continue; /* theirs failed: try ourselves */
        }
        if (j < 0)
            return j;
        int r;
        {
            _cleanup_close_ int fd = open_tmpfile(s, err);
            r = fd;
            if (fd >= 0)
                r = registry_get_blob(sess, digest, size, fd, false, err);
            if (r >= 0) {
                _cleanup_free_ char *proc = xasprintf("/proc/self/fd/%d", fd);
                if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0 &&
                    errno != EEXIST)
                    r = hull_error_set(err, errno, "commit blob `%s`", path);
            }
        }
        pthread_mutex_lock(&s->lock);
        inflight_finish(s, mine, r < 0 ? r : 0, err);
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
            return r;
        return hull_read_file(path, max, out, len, err);
    }
    return hull_read_file(path, max, out, len, err);
}

struct unpack_job {
    int fd;
    int dirfd;
    const char *diff_id;
    uint64_t max_bytes;
    struct image_unpack_stats stats;
    int status;
    hull_error_t err;
};

static void *unpack_thread(void *opaque)
{
    struct unpack_job *j = opaque;
    j->status =
        image_unpack_layer_capped(j->fd, j->dirfd, j->diff_id, j->max_bytes, &j->stats, &j->err);
    /* a writer still sending learns the reader is gone */
    shutdown(j->fd, SHUT_RD);
    return NULL;
}

/* Downloads, verifies and unpacks one layer into layers/<hex> (once, whoever asks).  The
 * unpack runs while the download goes on (through a socket pair), into a temp dir that is
 * committed only once the compressed digest and the diff id both matched. */
static int fetch_layer(struct image_store *s, struct registry_session *sess,
                       const struct layer_ref *lr, hull_error_t *err)
{
    _cleanup_free_ char *linkpath = NULL; /* before any goto fail */
    char name[16];
    random_name(name, sizeof(name));
    _cleanup_free_ char *tmpdir = store_path(s, "tmp/layer-%s", name);
    _cleanup_free_ char *diffdir = hull_path_join(tmpdir, "diff");
    if (mkdir(tmpdir, 0700) < 0 || mkdir(diffdir, 0755) < 0) {
        int e = errno;
        rmdir(tmpdir);
        return hull_error_set(err, e, "mkdir `%s`", diffdir);
    }
    int r;
    struct image_unpack_stats st = {0};
    {
        _cleanup_close_ int dfd = open(diffdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int sv[2] = {-1, -1};
        if (dfd < 0) {
            r = hull_error_set(err, errno, "open `%s`", diffdir);
            goto fail;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
            r = hull_error_set(err, errno, "socketpair");
            goto fail;
        }
        int buf = 1 << 20;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
        setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
        struct unpack_job job = {.fd = sv[1],
                                 .dirfd = dfd,
                                 .diff_id = lr->diff_id,
                                 .max_bytes = registry_session_layer_cap(sess)};
        pthread_t th;
        if (pthread_create(&th, NULL, unpack_thread, &job) != 0) {
            close(sv[0]);
            close(sv[1]);
            r = hull_error_setx(err, EAGAIN, "cannot start an unpack thread");
            goto fail;
        }
        r = registry_get_blob(sess, lr->digest, lr->size, sv[0], true, err);
        shutdown(sv[0], SHUT_WR); /* end of stream for the unpacker */
        pthread_join(th, NULL);
        close(sv[0]);
        close(sv[1]);
        st = job.stats;
        if (r >= 0 && job.status < 0) {
            r = job.status;
            hull_error_setx(err, hull_error_status(&job.err), "unpack layer %s: %s", lr->digest,
                            hull_error_msg(&job.err));
        }
        hull_error_free(&job.err);
    }
    if (r < 0)
        goto fail;
    /* the short link is made first, under a fresh random name (never reusing another's) */
    char short_id[SHORT_ID_CHARS + 1];
    {
        _cleanup_free_ char *target = xasprintf("../layers/%s/diff", hex_of(lr->diff_id));
        int tries = 0;
        for (;;) {
            random_name(short_id, sizeof(short_id));
            _cleanup_free_ char *link = store_path(s, "l/%s", short_id);
            if (symlink(target, link) == 0) {
                linkpath = hull_steal(link);
                break;
            }
            if (errno != EEXIST || ++tries > 16) {
                r = hull_error_set(err, errno, "symlink `%s`", link);
                goto fail;
            }
        }
    }
    {
        struct hull_json_writer w;
        hull_jw_init(&w, false);
        hull_jw_begin_object(&w);
        hull_jw_kv_string(&w, "diff_id", lr->diff_id);
        hull_jw_kv_string(&w, "digest", lr->digest);
        hull_jw_kv_string(&w, "short", short_id);
        hull_jw_kv_int(&w, "size", (long long)st.bytes);
        hull_jw_kv_int(&w, "entries", (long long)st.entries);
        hull_jw_end_object(&w);
        size_t len;
        _cleanup_free_ char *json = hull_jw_finish(&w, &len);
        hull_jw_free(&w);
        _cleanup_free_ char *meta = hull_path_join(tmpdir, "layer.json");
        r = hull_write_file_atomic(meta, json, len, 0600, err);
        if (r < 0)
            goto fail;
    }
    hull_crash_point("pull:layer-unpacked");
    {
        _cleanup_free_ char *final = store_path(s, "layers/%s", hex_of(lr->diff_id));
        if (rename(tmpdir, final) < 0) {
            r = hull_error_set(err, errno, "commit layer `%s`", final);
            goto fail;
        }
    }
    struct layer_rec *l = xmalloc0(sizeof(*l));
    l->diff_id = xstrdup(lr->diff_id);
    l->short_id = xstrdup(short_id);
    l->size = st.bytes;
    l->entries = st.entries;
    pthread_mutex_lock(&s->lock);
    l->next = s->layers;
    s->layers = l;
    pthread_mutex_unlock(&s->lock);
    hull_crash_point("pull:layer-committed");
    return 0;
fail : {
    _cleanup_error_ hull_error_t e2 = NULL;
    hull_rm_rf(tmpdir, &e2);
    if (linkpath)
        unlink(linkpath);
}
    return r;
}

static int ensure_layer(struct image_store *s, struct registry_session *sess,
                        const struct layer_ref *lr, hull_error_t *err)
{
    _cleanup_free_ char *key = xasprintf("layer:%s", lr->diff_id);
    for (int round = 0; round < 2; round++) {
        struct inflight *mine = NULL;
        pthread_mutex_lock(&s->lock);
        if (find_layer(s, lr->diff_id)) {
            pthread_mutex_unlock(&s->lock);
            return 0;
        }
        int j = inflight_join(s, key, &mine, err);
        pthread_mutex_unlock(&s->lock);
        if (j == 0)
            return 0;
        if (j < 0 && round == 0) {
            hull_error_free(err);
            continue;
        }
        if (j < 0)
            return j;
        int r = fetch_layer(s, sess, lr, err);
        pthread_mutex_lock(&s->lock);
        inflight_finish(s, mine, r < 0 ? r : 0, err);
        pthread_mutex_unlock(&s->lock);
        return r;
    }
    return 0;
}

struct layer_job {
    struct image_store *s;
    struct registry_session *sess;
    struct layer_ref *layers;
    size_t n;
    size_t next; /* atomic */
    int status;  /* first failure */
    hull_error_t err;
    pthread_mutex_t lock;
};

static void *layer_worker(void *opaque)
{
    struct layer_job *j = opaque;
    for (;;) {
        size_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_SEQ_CST);
        if (i >= j->n)
            break;
        pthread_mutex_lock(&j->lock);
        bool failed = j->status < 0;
        pthread_mutex_unlock(&j->lock);
        if (failed)
            break;
        hull_error_t e = NULL;
        int r = ensure_layer(j->s, j->sess, &j->layers[i], &e);
        if (r < 0) {
            pthread_mutex_lock(&j->lock);
            if (j->status == 0) {
                j->status = r;
                j->err = e;
                e = NULL;
            }
            pthread_mutex_unlock(&j->lock);
            hull_error_free(&e);
        }
    }
    return NULL;
}

static int ensure_layers(struct image_store *s, struct registry_session *sess,
                         struct layer_ref *layers, size_t n, hull_error_t *err)
{
    struct layer_job j = {.s = s, .sess = sess, .layers = layers, .n = n};
    pthread_mutex_init(&j.lock, NULL);
    size_t nthreads = n < PULL_PARALLEL ? n : PULL_PARALLEL;
    pthread_t th[PULL_PARALLEL];
    size_t started = 0;
    for (size_t i = 1; i < nthreads; i++) {
        if (pthread_create(&th[started], NULL, layer_worker, &j) != 0)
            break;
        started++;
    }
    layer_worker(&j);
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&j.lock);
    if (j.status < 0) {
        hull_error_setx(err, -j.status, "%s", hull_error_msg(&j.err));
        hull_error_free(&j.err);
        return j.status;
    }
    return 0;
}

static bool is_index(const char *mt)
{
    return mt && (strcmp(mt, "application/vnd.oci.image.index.v1+json") == 0 ||
                  strcmp(mt, "application/vnd.docker.distribution.manifest.list.v2+json") == 0);
}

static bool is_schema1(const char *mt)
{
    return mt && (strcmp(mt, "application/vnd.docker.distribution.manifest.v1+json") == 0 ||
                  strcmp(mt, "application/vnd.docker.distribution.manifest.v1+prettyjws") == 0);
}

/* Picks the linux/<host arch> manifest of an index. */
static int pick_platform(yajl_val idx, char **digest, hull_error_t *err)
{
    yajl_val ms = hull_json_get(idx, "manifests");
    if (ms == NULL || !YAJL_IS_ARRAY(ms))
        return hull_error_setx(err, EPROTO, "image index without manifests");
    const char *arch = hull_goarch();
    const char *best = NULL;
    int best_score = -1;
    for (size_t i = 0; i < ms->u.array.len; i++) {
        yajl_val m = ms->u.array.values[i];
        const char *d = hull_json_get_string(m, "digest", NULL);
        yajl_val p = hull_json_get(m, "platform");
        const char *os = hull_json_get_string(p, "os", "");
        const char *a = hull_json_get_string(p, "architecture", "");
        const char *v = hull_json_get_string(p, "variant", "");
        if (!image_digest_valid(d) || strcmp(os, "linux") != 0 || strcmp(a, arch) != 0)
            continue;
        int score = (*v == '\0' || strcmp(v, "v1") == 0) ? 2 : 1;
        if (score > best_score) {
            best = d;
            best_score = score;
        }
    }
    if (best == NULL)
        return hull_error_setx(err, ENOENT, "no manifest for linux/%s in the image index", arch);
    *digest = xstrdup(best);
    return 0;
}

struct pulled {
    char *manifest_digest;
    char *index_digest;
    char *config_digest;
    int64_t config_size;
    struct layer_ref *layers;
    size_t n_layers;
};

static void pulled_free(struct pulled *p)
{
    free(p->manifest_digest);
    free(p->index_digest);
    free(p->config_digest);
    for (size_t i = 0; i < p->n_layers; i++)
        layer_ref_free(&p->layers[i]);
    free(p->layers);
}

static int store_manifest_blob(struct image_store *s, const char *digest, const char *body,
                               size_t len, hull_error_t *err)
{
    _cleanup_free_ char *path = store_path(s, "blobs/sha256/%s", hex_of(digest));
    if (access(path, F_OK) == 0)
        return 0;
    return write_file_unique(s, path, body, len, err);
}

/* A manifest by tag or digest; one known by digest is read from the store (it was verified when
 * stored), so pulls by digest of present images need no registry. */
static int get_manifest(struct image_store *s, struct registry_session *sess, const char *reference,
                        char **body, size_t *len, char **mt, hull_error_t *err)
{
    if (image_digest_valid(reference)) {
        _cleanup_free_ char *path = store_path(s, "blobs/sha256/%s", hex_of(reference));
        _cleanup_error_ hull_error_t lerr = NULL;
        if (access(path, F_OK) == 0 && hull_read_file(path, MAX_MANIFEST, body, len, &lerr) == 0) {
            *mt = NULL;
            return 0;
        }
    }
    return registry_get_manifest(sess, reference, MAX_MANIFEST, body, len, mt, err);
}

/* Resolves the reference to a platform manifest; fills p. */
static int fetch_manifest(struct image_store *s, struct registry_session *sess,
                          const struct image_ref *ref, struct pulled *p, hull_error_t *err)
{
    const char *reference = ref->digest ? ref->digest : ref->tag;
    _cleanup_free_ char *body = NULL, *mt = NULL;
    size_t len = 0;
    int r = get_manifest(s, sess, reference, &body, &len, &mt, err);
    if (r < 0)
        return r;
    for (int depth = 0;; depth++) {
        char dg[72];
        image_sha256_digest(body, len, dg);
        if (depth == 0 && ref->digest && strcmp(dg, ref->digest) != 0)
            return hull_error_setx(err, EILSEQ, "manifest digest mismatch: asked %s, got %s",
                                   ref->digest, dg);
        _cleanup_yajl_ yajl_val doc = NULL;
        r = hull_json_parse(body, "manifest", &doc, err);
        if (r < 0)
            return r;
        const char *bmt = hull_json_get_string(doc, "mediaType", NULL);
        const char *kind = bmt ? bmt : mt;
        long long schema = hull_json_get_int(doc, "schemaVersion", 2);
        if (schema == 1 || is_schema1(kind))
            return hull_error_setx(err, EPROTO,
                                   "image uses a Docker schema 1 manifest, which is not "
                                   "supported (re-push it with a current client)");
        if (is_index(kind) || (kind == NULL && hull_json_get(doc, "manifests") != NULL)) {
            if (depth > 0)
                return hull_error_setx(err, EPROTO, "nested image index");
            r = store_manifest_blob(s, dg, body, len, err);
            if (r < 0)
                return r;
            p->index_digest = xstrdup(dg);
            _cleanup_free_ char *pick = NULL;
            r = pick_platform(doc, &pick, err);
            if (r < 0)
                return r;
            free(body);
            free(mt);
            body = mt = NULL;
            r = get_manifest(s, sess, pick, &body, &len, &mt, err);
            if (r < 0)
                return r;
            image_sha256_digest(body, len, dg);
            if (strcmp(dg, pick) != 0)
                return hull_error_setx(
                    err, EILSEQ, "manifest digest mismatch: index names %s, got %s", pick, dg);
            continue;
        }
        yajl_val cfg = hull_json_get(doc, "config");
        const char *cd = hull_json_get_string(cfg, "digest", NULL);
        if (!image_digest_valid(cd))
            return hull_error_setx(err, EPROTO, "manifest without a valid config digest");
        p->config_digest = xstrdup(cd);
        p->config_size = hull_json_get_int(cfg, "size", -1);
        yajl_val layers = hull_json_get(doc, "layers");
        if (layers == NULL || !YAJL_IS_ARRAY(layers))
            return hull_error_setx(err, EPROTO, "manifest without layers");
        if (layers->u.array.len > MAX_LAYERS)
            return hull_error_setx(err, EPROTO, "manifest has %zu layers (overlayfs stacks %d)",
                                   layers->u.array.len, MAX_LAYERS);
        p->layers = xmalloc0((layers->u.array.len + 1) * sizeof(*p->layers));
        for (size_t i = 0; i < layers->u.array.len; i++) {
            yajl_val l = layers->u.array.values[i];
            const char *ld = hull_json_get_string(l, "digest", NULL);
            if (!image_digest_valid(ld))
                return hull_error_setx(err, EPROTO, "manifest layer %zu: bad digest", i);
            const char *lmt = hull_json_get_string(l, "mediaType", "");
            if (strstr(lmt, "encrypted"))
                return hull_error_setx(err, EPROTO, "layer %s: encrypted layers not supported", ld);
            struct layer_ref *lr = &p->layers[p->n_layers++];
            lr->digest = xstrdup(ld);
            lr->size = hull_json_get_int(l, "size", -1);
            lr->media_type = xstrdup(lmt);
        }
        p->manifest_digest = xstrdup(dg);
        return store_manifest_blob(s, dg, body, len, err);
    }
}

/* Commits the image record (under the lock). Returns -EAGAIN if a layer vanished meanwhile. */
static int commit_image(struct image_store *s, const struct image_ref *ref, struct pulled *p,
                        char *config_json, hull_error_t *err)
{
    for (size_t i = 0; i < p->n_layers; i++)
        if (find_layer(s, p->layers[i].diff_id) == NULL)
            return -EAGAIN;
    hull_crash_point("pull:before-commit");
    _cleanup_free_ char *repo = image_ref_repo(ref);
    _cleanup_free_ char *tag = ref->tag ? xasprintf("%s:%s", repo, ref->tag) : NULL;
    _cleanup_free_ char *rd =
        xasprintf("%s@%s", repo, p->index_digest ? p->index_digest : p->manifest_digest);
    struct image_rec *rec = find_image_any(s, p->config_digest);
    bool fresh = rec == NULL;
    if (rec)
        rec->removed = false; /* pulled again */
    if (fresh) {
        rec = xmalloc0(sizeof(*rec));
        rec->id = xstrdup(p->config_digest);
        rec->tags = xmalloc0(sizeof(char *));
        rec->digests = xmalloc0(sizeof(char *));
        rec->manifest_digest = xstrdup(p->manifest_digest);
        rec->index_digest = p->index_digest ? xstrdup(p->index_digest) : NULL;
        rec->layers = xmalloc0((p->n_layers + 1) * sizeof(*rec->layers));
        rec->size = p->config_size > 0 ? (uint64_t)p->config_size : strlen(config_json);
        for (size_t i = 0; i < p->n_layers; i++) {
            struct layer_ref *d = &rec->layers[i];
            d->digest = xstrdup(p->layers[i].digest);
            d->diff_id = xstrdup(p->layers[i].diff_id);
            d->size = p->layers[i].size;
            d->media_type = xstrdup(p->layers[i].media_type);
            rec->size += p->layers[i].size > 0 ? (uint64_t)p->layers[i].size : 0;
        }
        rec->n_layers = p->n_layers;
        int r = hull_json_parse(config_json, "image config", &rec->config, err);
        if (r < 0) {
            image_rec_free(rec);
            return r;
        }
    }
    rec->pulled_ns = hull_now_ns();
    {
        /* a concurrent removal may have dropped the config blob since we read it */
        _cleanup_free_ char *cpath = store_path(s, "blobs/sha256/%s", hex_of(rec->id));
        if (access(cpath, F_OK) < 0) {
            int r = write_file_unique(s, cpath, config_json, strlen(config_json), err);
            if (r < 0) {
                if (fresh)
                    image_rec_free(rec);
                return r;
            }
        }
    }
    /* a tag names one image: move it */
    if (tag) {
        for (struct image_rec *o = s->images; o; o = o->next)
            if (o != rec && hull_strv_remove(o->tags, &o->n_tags, tag)) {
                _cleanup_error_ hull_error_t e2 = NULL;
                if (save_image_rec(s, o, &e2) < 0)
                    log_warn("image store: %s", hull_error_msg(&e2));
            }
        if (!hull_strv_has(rec->tags, rec->n_tags, tag))
            hull_strv_push(&rec->tags, &rec->n_tags, tag);
    }
    if (!hull_strv_has(rec->digests, rec->n_digests, rd))
        hull_strv_push(&rec->digests, &rec->n_digests, rd);
    int r = save_image_rec(s, rec, err);
    if (r < 0) {
        if (fresh)
            image_rec_free(rec);
        return r;
    }
    if (fresh) {
        rec->next = s->images;
        s->images = rec;
    }
    return 0;
}

int image_pull(struct image_store *s, const char *refstr, const struct image_auth *auth,
               char **image_id, hull_error_t *err)
{
    struct image_ref ref;
    int r = image_ref_parse(refstr, &ref, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *name = image_ref_string(&ref);
    pthread_mutex_lock(&s->lock);
    const struct registry_config *cfg = s->cfg;
    pthread_mutex_unlock(&s->lock);
    struct registry_session *sess = NULL;
    struct pulled p = {0};
    _cleanup_free_ char *config_json = NULL;
    int64_t t0 = hull_monotonic_ns();
    r = registry_session_new(cfg, s->tokens, &ref, auth, &sess, err);
    if (r < 0)
        goto out;
    r = fetch_manifest(s, sess, &ref, &p, err);
    if (r < 0)
        goto out;
    size_t cfg_len = 0;
    r = ensure_blob(s, sess, p.config_digest, p.config_size, MAX_CONFIG, &config_json, &cfg_len,
                    err);
    if (r < 0) {
        hull_error_wrap(err, "config %s", p.config_digest);
        goto out;
    }
    {
        _cleanup_yajl_ yajl_val cdoc = NULL;
        r = hull_json_parse(config_json, "image config", &cdoc, err);
        if (r < 0)
            goto out;
        yajl_val ids = hull_json_get(hull_json_get(cdoc, "rootfs"), "diff_ids");
        if (ids == NULL || !YAJL_IS_ARRAY(ids) || ids->u.array.len != p.n_layers) {
            r = hull_error_setx(err, EPROTO, "image config lists %zu diff ids for %zu layers",
                                ids && YAJL_IS_ARRAY(ids) ? ids->u.array.len : 0, p.n_layers);
            goto out;
        }
        for (size_t i = 0; i < p.n_layers; i++) {
            yajl_val v = ids->u.array.values[i];
            if (!YAJL_IS_STRING(v) || !image_digest_valid(YAJL_GET_STRING(v))) {
                r = hull_error_setx(err, EPROTO, "image config: bad diff id %zu", i);
                goto out;
            }
            p.layers[i].diff_id = xstrdup(YAJL_GET_STRING(v));
        }
    }
    for (int attempt = 0;; attempt++) {
        r = ensure_layers(s, sess, p.layers, p.n_layers, err);
        if (r < 0)
            goto out;
        pthread_mutex_lock(&s->lock);
        r = commit_image(s, &ref, &p, config_json, err);
        pthread_mutex_unlock(&s->lock);
        if (r != -EAGAIN || attempt >= 3)
            break;
    }
    if (r == -EAGAIN)
        r = hull_error_setx(err, EAGAIN, "layers removed while pulling");
    if (r < 0)
        goto out;
    *image_id = xstrdup(p.config_digest);
    log_info("pulled %s (%s, %zu layers) in %lld ms", name, p.config_digest, p.n_layers,
             (long long)((hull_monotonic_ns() - t0) / 1000000));
out:
    if (r < 0)
        hull_error_wrap(err, "pull %s", name);
    pulled_free(&p);
    registry_session_free(sess);
    image_ref_free(&ref);
    return r;
}

/* ---- queries ------------------------------------------------------------------------------- */
static bool is_hex(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

/* Called with the lock held. */
static struct image_rec *resolve_locked(struct image_store *s, const char *ref)
{
    if (ref == NULL || *ref == '\0')
        return NULL;
    if (image_digest_valid(ref))
        return find_image(s, ref);
    if (is_hex(ref, 64, 64)) {
        _cleanup_free_ char *id = xasprintf("sha256:%s", ref);
        return find_image(s, id);
    }
    struct image_ref pr;
    _cleanup_error_ hull_error_t perr = NULL;
    if (image_ref_parse(ref, &pr, &perr) == 0) {
        _cleanup_free_ char *repo = image_ref_repo(&pr);
        struct image_rec *hit = NULL;
        if (pr.digest) {
            _cleanup_free_ char *rd = xasprintf("%s@%s", repo, pr.digest);
            for (struct image_rec *r = s->images; r && !hit; r = r->next)
                if (hull_strv_has(r->digests, r->n_digests, rd))
                    hit = r;
            /* repo@<manifest digest> of a platform manifest pulled through an index */
            for (struct image_rec *r = s->images; r && !hit; r = r->next)
                if (!r->removed && strcmp(r->manifest_digest, pr.digest) == 0)
                    for (size_t i = 0; i < r->n_digests && !hit; i++)
                        if (strncmp(r->digests[i], repo, strlen(repo)) == 0 &&
                            r->digests[i][strlen(repo)] == '@')
                            hit = r;
        } else {
            _cleanup_free_ char *tag = xasprintf("%s:%s", repo, pr.tag);
            for (struct image_rec *r = s->images; r && !hit; r = r->next)
                if (hull_strv_has(r->tags, r->n_tags, tag))
                    hit = r;
        }
        image_ref_free(&pr);
        if (hit)
            return hit;
    }
    const char *hex = strncmp(ref, "sha256:", 7) == 0 ? ref + 7 : ref;
    if (is_hex(hex, 12, 63)) {
        struct image_rec *hit = NULL;
        size_t n = strlen(hex);
        for (struct image_rec *r = s->images; r; r = r->next)
            if (!r->removed && strncmp(r->id + 7, hex, n) == 0) {
                if (hit)
                    return NULL; /* ambiguous */
                hit = r;
            }
        return hit;
    }
    return NULL;
}

static char **json_strv(yajl_val v)
{
    if (v == NULL || !YAJL_IS_ARRAY(v))
        return NULL;
    char **r = NULL;
    size_t n = 0;
    r = xmalloc0(sizeof(char *));
    for (size_t i = 0; i < v->u.array.len; i++)
        if (YAJL_IS_STRING(v->u.array.values[i]))
            hull_strv_push(&r, &n, YAJL_GET_STRING(v->u.array.values[i]));
    return r;
}

/* Cleans an image-supplied path into an absolute container path ("/a/../../b" → "/b"); it is
 * never a host path. */
static char *clean_container_path(const char *p)
{
    if (p == NULL || *p == '\0')
        return xstrdup("");
    size_t n = strlen(p);
    char *out = xmalloc0(n + 2);
    size_t o = 0;
    const char *c = p;
    while (*c) {
        while (*c == '/')
            c++;
        if (!*c)
            break;
        const char *e = strchr(c, '/');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        if (len == 1 && c[0] == '.') {
        } else if (len == 2 && c[0] == '.' && c[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else {
            out[o++] = '/';
            memcpy(out + o, c, len);
            o += len;
        }
        c += len;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return out;
}

static struct image_info *info_of(const struct image_rec *r)
{
    struct image_info *i = xmalloc0(sizeof(*i));
    i->id = xstrdup(r->id);
    i->repo_tags = hull_strv_dup_n((const char *const *)r->tags, r->n_tags);
    i->repo_digests = hull_strv_dup_n((const char *const *)r->digests, r->n_digests);
    i->size = r->size;
    i->n_layers = r->n_layers;
    i->pinned = r->pinned;
    i->manifest_digest = xstrdup(r->manifest_digest);
    i->pulled_ns = r->pulled_ns;
    yajl_val c = hull_json_get(r->config, "config");
    const char *user = hull_json_get_string(c, "User", "");
    i->user = xstrdup(user);
    _cleanup_free_ char *upart = xstrdup(user);
    char *colon = strchr(upart, ':');
    if (colon)
        *colon = '\0';
    if (*upart && isdigit((unsigned char)upart[0])) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(upart, &end, 10);
        if (errno == 0 && end && *end == '\0' && v < UINT32_MAX) {
            i->has_uid = true;
            i->uid = (int64_t)v;
        } else {
            i->username = xstrdup(upart);
        }
    } else if (*upart) {
        i->username = xstrdup(upart);
    }
    if (i->username == NULL)
        i->username = xstrdup("");
    i->entrypoint = json_strv(hull_json_get(c, "Entrypoint"));
    i->cmd = json_strv(hull_json_get(c, "Cmd"));
    i->env = json_strv(hull_json_get(c, "Env"));
    i->working_dir = clean_container_path(hull_json_get_string(c, "WorkingDir", ""));
    i->stop_signal = xstrdup(hull_json_get_string(c, "StopSignal", ""));
    yajl_val vols = hull_json_get(c, "Volumes");
    size_t nv = 0;
    i->volumes = xmalloc0(sizeof(char *));
    if (vols && YAJL_IS_OBJECT(vols))
        for (size_t k = 0; k < vols->u.object.len; k++) {
            _cleanup_free_ char *cp = clean_container_path(vols->u.object.keys[k]);
            hull_strv_push(&i->volumes, &nv, cp);
        }
    yajl_val labels = hull_json_get(c, "Labels");
    size_t nl = 0;
    i->labels = xmalloc0(sizeof(char *));
    if (labels && YAJL_IS_OBJECT(labels))
        for (size_t k = 0; k < labels->u.object.len; k++) {
            yajl_val v = labels->u.object.values[k];
            _cleanup_free_ char *kv = xasprintf("%s=%s", labels->u.object.keys[k],
                                                YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : "");
            hull_strv_push(&i->labels, &nl, kv);
        }
    return i;
}

void image_info_free(struct image_info *i)
{
    if (i == NULL)
        return;
    free(i->id);
    image_strv_free(i->repo_tags);
    image_strv_free(i->repo_digests);
    free(i->user);
    free(i->username);
    image_strv_free(i->entrypoint);
    image_strv_free(i->cmd);
    image_strv_free(i->env);
    image_strv_free(i->volumes);
    free(i->working_dir);
    free(i->stop_signal);
    image_strv_free(i->labels);
    free(i->manifest_digest);
    free(i);
}

void image_info_list_free(struct image_info **list, size_t n)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        image_info_free(list[i]);
    free(list);
}

int image_resolve(struct image_store *s, const char *ref, struct image_info **out,
                  hull_error_t *err)
{
    pthread_mutex_lock(&s->lock);
    struct image_rec *r = resolve_locked(s, ref);
    struct image_info *i = r ? info_of(r) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (i == NULL)
        return hull_error_setx(err, ENOENT, "image \"%s\" not found", ref ? ref : "");
    *out = i;
    return 0;
}

static int cmp_info(const void *a, const void *b)
{
    const struct image_info *x = *(struct image_info *const *)a;
    const struct image_info *y = *(struct image_info *const *)b;
    return strcmp(x->id, y->id);
}

int image_list(struct image_store *s, const char *filter, struct image_info ***out, size_t *n,
               hull_error_t *err)
{
    size_t cnt = 0, cap = 8;
    struct image_info **list = xmalloc0(cap * sizeof(*list));
    pthread_mutex_lock(&s->lock);
    if (filter && *filter) {
        struct image_rec *r = resolve_locked(s, filter);
        if (r)
            list[cnt++] = info_of(r);
    } else {
        for (struct image_rec *r = s->images; r; r = r->next) {
            if (r->removed)
                continue;
            if (cnt == cap) {
                cap *= 2;
                list = xrealloc(list, cap * sizeof(*list));
            }
            list[cnt++] = info_of(r);
        }
    }
    pthread_mutex_unlock(&s->lock);
    qsort(list, cnt, sizeof(*list), cmp_info);
    (void)err;
    *out = list;
    *n = cnt;
    return 0;
}

int image_config_json(struct image_store *s, const char *image_id, char **out, hull_error_t *err)
{
    pthread_mutex_lock(&s->lock);
    struct image_rec *r = resolve_locked(s, image_id);
    _cleanup_free_ char *id = r ? xstrdup(r->id) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (id == NULL)
        return hull_error_setx(err, ENOENT, "image \"%s\" not found", image_id);
    return read_blob(s, id, MAX_CONFIG, out, NULL, err);
}

int image_set_pinned(struct image_store *s, const char *image_id, bool pinned, hull_error_t *err)
{
    pthread_mutex_lock(&s->lock);
    struct image_rec *r = resolve_locked(s, image_id);
    int ret;
    if (r == NULL) {
        ret = hull_error_setx(err, ENOENT, "image \"%s\" not found", image_id);
    } else {
        r->pinned = pinned;
        ret = save_image_rec(s, r, err);
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

/* ---- removal and layer references ---------------------------------------------------------- */
static bool layer_in_use(struct image_store *s, const struct layer_rec *l)
{
    if (l->users > 0)
        return true;
    for (struct image_rec *r = s->images; r; r = r->next)
        for (size_t i = 0; i < r->n_layers; i++)
            if (strcmp(r->layers[i].diff_id, l->diff_id) == 0)
                return true;
    return false;
}

/* Unlinks unused layers from the index and moves their dirs into tmp/ (with the lock held);
 * returns the paths to delete once the lock is dropped. */
static char **collect_garbage_locked(struct image_store *s)
{
    char **trash = xmalloc0(sizeof(char *));
    size_t n = 0;
    for (struct layer_rec **pp = &s->layers; *pp;) {
        struct layer_rec *l = *pp;
        if (layer_in_use(s, l)) {
            pp = &l->next;
            continue;
        }
        *pp = l->next;
        _cleanup_free_ char *link = store_path(s, "l/%s", l->short_id);
        unlink(link);
        _cleanup_free_ char *dir = store_path(s, "layers/%s", hex_of(l->diff_id));
        char name[16];
        random_name(name, sizeof(name));
        _cleanup_free_ char *dest = store_path(s, "tmp/gc-%s", name);
        if (rename(dir, dest) == 0)
            hull_strv_push(&trash, &n, dest);
        else
            hull_strv_push(&trash, &n, dir);
        layer_rec_free(l);
    }
    return trash;
}

static void empty_trash(char **trash)
{
    for (char **p = trash; p && *p; p++) {
        _cleanup_error_ hull_error_t e = NULL;
        if (hull_rm_rf(*p, &e) < 0)
            log_warn("image store: %s", hull_error_msg(&e));
    }
    image_strv_free(trash);
}

static bool blob_referenced(struct image_store *s, const char *digest)
{
    for (struct image_rec *r = s->images; r; r = r->next)
        if (strcmp(r->id, digest) == 0 || strcmp(r->manifest_digest, digest) == 0 ||
            (r->index_digest && strcmp(r->index_digest, digest) == 0))
            return true;
    return false;
}

static void remove_blob_if_unused(struct image_store *s, const char *digest)
{
    if (digest == NULL || blob_referenced(s, digest))
        return;
    _cleanup_free_ char *path = store_path(s, "blobs/sha256/%s", hex_of(digest));
    unlink(path);
}

static struct hold *find_hold(struct image_store *s, const char *id)
{
    for (struct hold *h = s->holds; h; h = h->next)
        if (strcmp(h->image_id, id) == 0)
            return h;
    return NULL;
}

/* Deletes an image record and its blobs (lock held). */
static int delete_image_locked(struct image_store *s, struct image_rec *r, hull_error_t *err)
{
    _cleanup_free_ char *path = store_path(s, "images/%s.json", hex_of(r->id));
    if (unlink(path) < 0 && errno != ENOENT)
        return hull_error_set(err, errno, "remove image record `%s`", path);
    for (struct image_rec **pp = &s->images; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    _cleanup_free_ char *id = xstrdup(r->id);
    _cleanup_free_ char *md = xstrdup(r->manifest_digest);
    _cleanup_free_ char *idx = r->index_digest ? xstrdup(r->index_digest) : NULL;
    image_rec_free(r);
    remove_blob_if_unused(s, id);
    remove_blob_if_unused(s, md);
    remove_blob_if_unused(s, idx);
    return 0;
}

int image_remove(struct image_store *s, const char *ref, bool *removed, hull_error_t *err)
{
    if (removed)
        *removed = false;
    pthread_mutex_lock(&s->lock);
    struct image_rec *r = resolve_locked(s, ref);
    if (r == NULL) {
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    int ret;
    char **trash = NULL;
    if (find_hold(s, r->id)) {
        /* containers run on it: hide it (no tags, not listed), keep it for them until the last
         * one lets go, across restarts too */
        for (size_t i = 0; i < r->n_tags; i++)
            free(r->tags[i]);
        for (size_t i = 0; i < r->n_digests; i++)
            free(r->digests[i]);
        r->n_tags = r->n_digests = 0;
        r->tags[0] = r->digests[0] = NULL;
        r->removed = true;
        ret = save_image_rec(s, r, err);
        if (ret == 0)
            log_info("removed image %s (kept hidden while containers use it)", r->id);
    } else {
        log_info("removed image %s", r->id);
        ret = delete_image_locked(s, r, err);
        if (ret == 0)
            trash = collect_garbage_locked(s);
    }
    pthread_mutex_unlock(&s->lock);
    empty_trash(trash);
    if (ret == 0 && removed)
        *removed = true;
    return ret;
}

void image_gc(struct image_store *s)
{
    pthread_mutex_lock(&s->lock);
    for (struct image_rec *r = s->images, *n; r; r = n) {
        n = r->next;
        if (r->removed && find_hold(s, r->id) == NULL) {
            _cleanup_error_ hull_error_t e = NULL;
            if (delete_image_locked(s, r, &e) < 0)
                log_warn("image store: %s", hull_error_msg(&e));
        }
    }
    char **trash = collect_garbage_locked(s);
    pthread_mutex_unlock(&s->lock);
    empty_trash(trash);
}

int image_acquire(struct image_store *s, const char *image_id, hull_error_t *err)
{
    pthread_mutex_lock(&s->lock);
    struct image_rec *r = find_by_id_any(s, image_id);
    if (r == NULL)
        r = resolve_locked(s, image_id);
    struct hold *h = find_hold(s, r ? r->id : image_id);
    if (h == NULL && r == NULL) {
        pthread_mutex_unlock(&s->lock);
        return hull_error_setx(err, ENOENT, "image \"%s\" not found", image_id);
    }
    if (h == NULL) {
        h = xmalloc0(sizeof(*h));
        h->image_id = xstrdup(r->id);
        h->diff_ids = xmalloc0((r->n_layers + 1) * sizeof(char *));
        for (size_t i = 0; i < r->n_layers; i++) {
            h->diff_ids[i] = xstrdup(r->layers[i].diff_id);
            struct layer_rec *l = find_layer(s, r->layers[i].diff_id);
            if (l)
                l->users++;
        }
        h->n = r->n_layers;
        h->next = s->holds;
        s->holds = h;
    }
    h->count++;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void image_release(struct image_store *s, const char *image_id)
{
    char **trash = NULL;
    pthread_mutex_lock(&s->lock);
    for (struct hold **pp = &s->holds; *pp; pp = &(*pp)->next) {
        struct hold *h = *pp;
        if (strcmp(h->image_id, image_id) != 0 &&
            !(strncmp(image_id, "sha256:", 7) != 0 && strcmp(h->image_id + 7, image_id) == 0))
            continue;
        if (--h->count > 0)
            break;
        *pp = h->next;
        for (size_t i = 0; i < h->n; i++) {
            struct layer_rec *l = find_layer(s, h->diff_ids[i]);
            if (l && l->users > 0)
                l->users--;
            free(h->diff_ids[i]);
        }
        free(h->diff_ids);
        struct image_rec *r = find_image_any(s, h->image_id);
        if (r && r->removed) {
            _cleanup_error_ hull_error_t e = NULL;
            if (delete_image_locked(s, r, &e) < 0)
                log_warn("image store: %s", hull_error_msg(&e));
        }
        free(h->image_id);
        free(h);
        trash = collect_garbage_locked(s);
        break;
    }
    pthread_mutex_unlock(&s->lock);
    empty_trash(trash);
}

/* ---- overlay lowers ------------------------------------------------------------------------ */
int image_lowerdirs(struct image_store *s, const char *image_id, char ***short_names,
                    char ***abs_paths, hull_error_t *err)
{
    pthread_mutex_lock(&s->lock);
    struct image_rec *r = find_by_id_any(s, image_id);
    if (r == NULL)
        r = resolve_locked(s, image_id);
    char **ids = NULL;
    size_t n = 0;
    if (r) {
        ids = xmalloc0((r->n_layers + 1) * sizeof(char *));
        for (size_t i = 0; i < r->n_layers; i++)
            ids[i] = r->layers[i].diff_id;
        n = r->n_layers;
    } else {
        for (struct hold *h = s->holds; h; h = h->next)
            if (strcmp(h->image_id, image_id) == 0) {
                ids = xmalloc0((h->n + 1) * sizeof(char *));
                for (size_t i = 0; i < h->n; i++)
                    ids[i] = h->diff_ids[i];
                n = h->n;
            }
    }
    if (ids == NULL) {
        pthread_mutex_unlock(&s->lock);
        return hull_error_setx(err, ENOENT, "image \"%s\" not found", image_id);
    }
    char **sn = xmalloc0((n + 1) * sizeof(char *));
    char **ap = xmalloc0((n + 1) * sizeof(char *));
    int ret = 0;
    for (size_t i = 0; i < n; i++) {
        /* topmost layer first */
        struct layer_rec *l = find_layer(s, ids[n - 1 - i]);
        if (l == NULL) {
            ret = hull_error_setx(err, ENOENT, "image \"%s\": layer %s missing", image_id,
                                  ids[n - 1 - i]);
            break;
        }
        sn[i] = xasprintf("l/%s", l->short_id);
        ap[i] = store_path(s, "layers/%s/diff", hex_of(l->diff_id));
    }
    pthread_mutex_unlock(&s->lock);
    free(ids);
    if (ret < 0) {
        image_strv_free(sn);
        image_strv_free(ap);
        return ret;
    }
    if (short_names)
        *short_names = sn;
    else
        image_strv_free(sn);
    if (abs_paths)
        *abs_paths = ap;
    else
        image_strv_free(ap);
    return 0;
}

/* ---- usage --------------------------------------------------------------------------------- */
int image_fs_usage(struct image_store *s, struct image_fs_usage *out, hull_error_t *err)
{
    memset(out, 0, sizeof(*out));
    uint64_t bytes = 0, inodes = 0;
    pthread_mutex_lock(&s->lock);
    for (struct layer_rec *l = s->layers; l; l = l->next) {
        bytes += l->size;
        inodes += l->entries + 3;
    }
    for (struct image_rec *r = s->images; r; r = r->next)
        inodes++;
    pthread_mutex_unlock(&s->lock);
    _cleanup_free_ char *blobs = store_path(s, "blobs/sha256");
    _cleanup_closedir_ DIR *d = opendir(blobs);
    if (d == NULL)
        return hull_error_set(err, errno, "open `%s`", blobs);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        bytes += (uint64_t)st.st_blocks * 512;
        inodes++;
    }
    out->mountpoint = xstrdup(s->dir);
    out->used_bytes = bytes;
    out->inodes_used = inodes;
    return 0;
}
