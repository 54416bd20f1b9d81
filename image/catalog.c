/* The image store proper: image records on disk and in memory, verified blobs, lookups by
 * reference, tag or id prefix, removal of images, reload at start and usage.  Pulls are in
 * pull.c, unpacked layers in layers.c, containers' holds on images and their lower dirs in
 * holds.c. */

#include "image/internal.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#define MAX_RECORD (4 << 20)

/* ---- small helpers ------------------------------------------------------------------------- */
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void img_layer_ref_free(struct layer_ref *l)
{
    free(l->digest);
    free(l->diff_id);
    free(l->media_type);
}

void img_rec_free(struct image_rec *r)
{
    if (r == NULL)
        return;
    free(r->id);
    hull_strv_free(r->tags);
    hull_strv_free(r->digests);
    free(r->manifest_digest);
    free(r->index_digest);
    for (size_t i = 0; i < r->n_layers; i++)
        img_layer_ref_free(&r->layers[i]);
    free(r->layers);
    if (r->config)
        yajl_tree_free(r->config);
    free(r);
}

/* Any record with this id, hidden (removed but in use) ones included. */
struct image_rec *img_find_image_any(struct image_store *s, const char *id)
{
    for (struct image_rec *r = s->images; r; r = r->next)
        if (strcmp(r->id, id) == 0)
            return r;
    return NULL;
}

static struct image_rec *find_image(struct image_store *s, const char *id)
{
    struct image_rec *r = img_find_image_any(s, id);
    return r && !r->removed ? r : NULL;
}

/* By exact id ("sha256:<hex>" or "<hex>"), hidden records included: for the users of an image
 * (containers) who must still find what they run on. */
struct image_rec *img_find_by_id_any(struct image_store *s, const char *id)
{
    if (image_digest_valid(id))
        return img_find_image_any(s, id);
    _cleanup_free_ char *full = xasprintf("sha256:%s", id);
    return image_digest_valid(full) ? img_find_image_any(s, full) : NULL;
}

/* Writes data to path via a uniquely named temp file (concurrent writers of the same content
 * are fine). */
int img_write_unique(struct image_store *s, const char *path, const void *data, size_t len,
                     hull_error_t *err)
{
    char name[16];
    img_random_name(name, sizeof(name));
    _cleanup_free_ char *tmp = img_path(s, "tmp/w-%s", name);
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

int img_save_rec(struct image_store *s, const struct image_rec *r, hull_error_t *err)
{
    _cleanup_free_ char *json = image_rec_json(r);
    _cleanup_free_ char *path = img_path(s, "images/%s.json", img_hex(r->id));
    return hull_write_file_atomic(path, json, strlen(json), 0600, err);
}

int img_read_blob(struct image_store *s, const char *digest, size_t max, char **out, size_t *len,
                  hull_error_t *err)
{
    if (!image_digest_valid(digest))
        return hull_error_setx(err, EINVAL, "bad digest \"%s\"", digest);
    _cleanup_free_ char *path = img_path(s, "blobs/sha256/%s", img_hex(digest));
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
    _cleanup_img_rec_ struct image_rec *rec = xmalloc0(sizeof(*rec));
    const char *id = hull_json_get_string(doc, "id", NULL);
    const char *md = hull_json_get_string(doc, "manifest_digest", NULL);
    if (!image_digest_valid(id) || !image_digest_valid(md))
        return hull_error_setx(err, EINVAL, "`%s`: bad image record", path);
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
            if (!image_digest_valid(dg) || !image_digest_valid(di))
                return hull_error_setx(err, EINVAL, "`%s`: bad layer entry", path);
            struct layer_ref *lr = &rec->layers[rec->n_layers++];
            lr->digest = xstrdup(dg);
            lr->diff_id = xstrdup(di);
            lr->size = hull_json_get_int(l, "size", 0);
            lr->media_type = xstrdup(hull_json_get_string(l, "media_type", ""));
        }
    }
    _cleanup_free_ char *cfg = NULL;
    r = img_read_blob(s, rec->id, MAX_CONFIG, &cfg, NULL, err);
    if (r < 0 || hull_json_parse(cfg, "image config", &rec->config, err) < 0)
        return hull_error_wrap(err, "image %s: config", id);
    for (size_t i = 0; i < rec->n_layers; i++)
        if (img_find_layer(s, rec->layers[i].diff_id) == NULL)
            return hull_error_setx(err, ENOENT, "image %s: layer %s missing", id,
                                   rec->layers[i].diff_id);
    *out = hull_steal(rec);
    return 0;
}
static int load_images(struct image_store *s, hull_error_t *err)
{
    _cleanup_free_ char *dir = img_path(s, "images");
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (d == NULL)
        return hull_error_set(err, errno, "open `%s`", dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        _cleanup_free_ char *p = img_path(s, "images/%s", de->d_name);
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
        _cleanup_free_ char *p = img_path(s, "%s", subdirs[i]);
        r = hull_mkdir_p(p, 0700, err);
        if (r < 0)
            goto fail;
    }
    {
        /* interrupted pulls: whatever is in tmp/ was never committed */
        _cleanup_free_ char *tmp = img_path(s, "tmp");
        r = hull_rm_rf(tmp, err);
        if (r < 0)
            goto fail;
        r = hull_mkdir_p(tmp, 0700, err);
        if (r < 0)
            goto fail;
    }
    r = img_layers_load(s, err);
    if (r < 0)
        goto fail;
    r = load_images(s, err);
    if (r < 0)
        goto fail;
    img_clean_links(s);
    img_gc_blobs_locked(s); /* nothing runs yet: no lock needed */
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
        img_rec_free(r);
    }
    for (struct layer_rec *l = s->layers, *n; l; l = n) {
        n = l->next;
        img_layer_rec_free(l);
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
struct image_rec *img_resolve_locked(struct image_store *s, const char *ref)
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

/* An image-supplied path as a clean absolute container path ("/a/../../b" → "/b"); it is never
 * a host path.  "" (no WorkingDir) stays "". */
static char *clean_container_path(const char *p)
{
    if (p == NULL || *p == '\0')
        return xstrdup("");
    return hull_path_clean(p, 0);
}

struct image_info *img_info_of(const struct image_rec *r)
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
    hull_strv_free(i->repo_tags);
    hull_strv_free(i->repo_digests);
    free(i->user);
    free(i->username);
    hull_strv_free(i->entrypoint);
    hull_strv_free(i->cmd);
    hull_strv_free(i->env);
    hull_strv_free(i->volumes);
    free(i->working_dir);
    free(i->stop_signal);
    hull_strv_free(i->labels);
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
    struct image_rec *r = img_resolve_locked(s, ref);
    struct image_info *i = r ? img_info_of(r) : NULL;
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
        struct image_rec *r = img_resolve_locked(s, filter);
        if (r)
            list[cnt++] = img_info_of(r);
    } else {
        for (struct image_rec *r = s->images; r; r = r->next) {
            if (r->removed)
                continue;
            if (cnt == cap) {
                cap *= 2;
                list = xrealloc(list, cap * sizeof(*list));
            }
            list[cnt++] = img_info_of(r);
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
    struct image_rec *r = img_resolve_locked(s, image_id);
    _cleanup_free_ char *id = r ? xstrdup(r->id) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (id == NULL)
        return hull_error_setx(err, ENOENT, "image \"%s\" not found", image_id);
    return img_read_blob(s, id, MAX_CONFIG, out, NULL, err);
}

/* ---- removal ------------------------------------------------------------------------------ */
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
    _cleanup_free_ char *path = img_path(s, "blobs/sha256/%s", img_hex(digest));
    unlink(path);
}

/* Deletes every file of blobs/ no image record references (lock held): what failed or
 * interrupted pulls of older versions left, and strays.  Pulls store their blobs only when
 * they commit, under the lock, so nothing in flight is lost.  Returns how many went. */
size_t img_gc_blobs_locked(struct image_store *s)
{
    _cleanup_free_ char *dir = img_path(s, "blobs/sha256");
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        _cleanup_free_ char *digest = xasprintf("sha256:%s", de->d_name);
        if (image_digest_valid(digest) && blob_referenced(s, digest))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0 ||
            (errno == EISDIR && unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) == 0))
            n++;
        else
            log_warn("image store: cannot remove unreferenced blob %s: %s", de->d_name,
                     strerror(errno));
    }
    if (n > 0)
        log_info("image store: removed %zu unreferenced blob(s)", n);
    return n;
}

/* Deletes an image record and its blobs (lock held). */
int img_delete_locked(struct image_store *s, struct image_rec *r, hull_error_t *err)
{
    _cleanup_free_ char *path = img_path(s, "images/%s.json", img_hex(r->id));
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
    img_rec_free(r);
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
    struct image_rec *r = img_resolve_locked(s, ref);
    if (r == NULL) {
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    int ret;
    char **trash = NULL;
    if (img_find_hold(s, r->id)) {
        /* containers run on it: hide it (no tags, not listed), keep it for them until the last
         * one lets go, across restarts too */
        for (size_t i = 0; i < r->n_tags; i++)
            free(r->tags[i]);
        for (size_t i = 0; i < r->n_digests; i++)
            free(r->digests[i]);
        r->n_tags = r->n_digests = 0;
        r->tags[0] = r->digests[0] = NULL;
        r->removed = true;
        ret = img_save_rec(s, r, err);
        if (ret == 0)
            log_info("removed image %s (kept hidden while containers use it)", r->id);
    } else {
        log_info("removed image %s", r->id);
        ret = img_delete_locked(s, r, err);
        if (ret == 0) {
            trash = img_gc_locked(s);
            img_gc_blobs_locked(s);
        }
    }
    pthread_mutex_unlock(&s->lock);
    img_empty_trash(trash);
    if (ret == 0 && removed)
        *removed = true;
    return ret;
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
    _cleanup_free_ char *blobs = img_path(s, "blobs/sha256");
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
