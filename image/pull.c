/* Pulls: a reference resolved to a platform manifest (through an index), its config blob and
 * its layers fetched in parallel, each download shared between concurrent pulls of the same
 * blob or layer, then the image record committed. */

#include "common/crashpoint.h"
#include "image/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_MANIFEST  (4 << 20)
#define PULL_PARALLEL 4
#define MAX_LAYERS    500 /* overlayfs OVL_MAX_STACK */

/* ---- callers that may go away ------------------------------------------------------------ */
#define CANCEL_CHECK_NS (100 * 1000000LL)

bool pull_ctx_gone(struct pull_ctx *c)
{
    if (c == NULL || c->cancelled == NULL)
        return false;
    pthread_mutex_lock(&c->lock);
    int64_t now = hull_monotonic_ns();
    if (!c->gone && (c->checked_ns == 0 || now - c->checked_ns >= CANCEL_CHECK_NS)) {
        c->checked_ns = now;
        c->gone = c->cancelled(c->arg);
    }
    bool gone = c->gone;
    pthread_mutex_unlock(&c->lock);
    return gone;
}

static bool pull_ctx_gone_cb(void *arg)
{
    return pull_ctx_gone(arg);
}

/* ---- in-flight work shared between pulls --------------------------------------------------- */
static void inflight_free(struct inflight *f)
{
    pthread_cond_destroy(&f->cond);
    free(f->key);
    free(f->msg);
    free(f->parties);
    free(f->data);
    free(f);
}

static void inflight_drop_party(struct inflight *f, struct pull_ctx *ctx)
{
    for (size_t i = 0; i < f->n_parties; i++)
        if (f->parties[i] == ctx) {
            f->parties[i] = f->parties[--f->n_parties];
            break;
        }
}

/* Returns 1 if the caller must do the work (and later call inflight_finish), 0 if another
 * caller did it successfully, or a negative errno with its error (-ECANCELED: our own caller
 * went away while we waited). Called with s->lock held. */
static int inflight_join(struct image_store *s, const char *key, struct pull_ctx *ctx,
                         struct inflight **mine, char **data, size_t *len, hull_error_t *err)
{
    for (struct inflight *f = s->inflight; f; f = f->next) {
        if (strcmp(f->key, key) != 0)
            continue;
        f->waiters++;
        f->parties = xrealloc(f->parties, (f->n_parties + 1) * sizeof(*f->parties));
        f->parties[f->n_parties++] = ctx;
        bool gave_up = false;
        while (!f->done) {
            if (pull_ctx_gone(ctx)) {
                gave_up = true;
                break;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&f->cond, &s->lock, &ts);
        }
        int st;
        if (gave_up) {
            inflight_drop_party(f, ctx);
            st = hull_error_setx(err, ECANCELED, "pull abandoned by its caller");
        } else {
            st = f->status;
            if (st < 0)
                hull_error_setx(err, -st, "%s", f->msg ? f->msg : "failed");
            else if (data && f->data) {
                *data = xmalloc0(f->len + 1);
                memcpy(*data, f->data, f->len);
                *len = f->len;
            }
        }
        if (--f->waiters == 0 && f->done && !f->linked)
            inflight_free(f);
        return st < 0 ? st : 0;
    }
    struct inflight *f = xmalloc0(sizeof(*f));
    f->key = xstrdup(key);
    pthread_cond_init(&f->cond, NULL);
    f->parties = xmalloc0(sizeof(*f->parties));
    f->parties[f->n_parties++] = ctx;
    f->next = s->inflight;
    s->inflight = f;
    f->linked = true;
    *mine = f;
    return 1;
}

static void inflight_unlink(struct image_store *s, struct inflight *f)
{
    for (struct inflight **pp = &s->inflight; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    f->linked = false;
}

/* Ends a lingering entry (see inflight_finish). Called with s->lock held. */
static void inflight_retire(struct image_store *s, struct inflight *f)
{
    inflight_unlink(s, f);
    if (f->waiters == 0)
        inflight_free(f);
}

/* Called with s->lock held.  With linger, a success stays findable (its data handed to pulls
 * that join later) until inflight_retire. */
static void inflight_finish(struct image_store *s, struct inflight *f, int status, bool linger,
                            hull_error_t *err)
{
    if (!linger || status < 0)
        inflight_unlink(s, f);
    f->done = true;
    f->status = status;
    if (status < 0)
        f->msg = xstrdup(hull_error_msg(err));
    if (f->waiters == 0 && !f->linked) {
        inflight_free(f);
        return;
    }
    pthread_cond_broadcast(&f->cond);
}

/* The owner's check while it works: true once every pull that wants the work is gone. */
struct inflight_abort {
    struct image_store *s;
    struct inflight *f;
};

static bool inflight_abandoned(void *arg)
{
    struct inflight_abort *a = arg;
    struct inflight *f = a->f;
    pthread_mutex_lock(&a->s->lock);
    int64_t now = hull_monotonic_ns();
    if (!f->abandoned && (f->checked_ns == 0 || now - f->checked_ns >= CANCEL_CHECK_NS)) {
        f->checked_ns = now;
        bool all = f->n_parties > 0;
        for (size_t i = 0; i < f->n_parties && all; i++)
            all = f->parties[i] && f->parties[i]->cancelled && pull_ctx_gone(f->parties[i]);
        f->abandoned = all;
    }
    bool r = f->abandoned;
    pthread_mutex_unlock(&a->s->lock);
    return r;
}

/* ---- pulling ------------------------------------------------------------------------------- */
static int open_tmpfile(struct image_store *s, hull_error_t *err)
{
    _cleanup_free_ char *tmp = img_path(s, "tmp");
    int fd = open(tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return hull_error_set(err, errno, "create a temp file in `%s`", tmp);
    return fd;
}

/* The bytes of a small blob (the config): from blobs/ when an image holds it already, else
 * downloaded (at most max bytes, also when the descriptor gives no size) and verified, but not
 * stored: commit_image stores it once the whole pull succeeded. */
static int fetch_small_blob(struct image_store *s, struct registry_session *sess,
                            const char *digest, int64_t size, size_t max, struct pull_ctx *ctx,
                            struct inflight **linger, char **out, size_t *len, hull_error_t *err)
{
    _cleanup_free_ char *path = img_path(s, "blobs/sha256/%s", img_hex(digest));
    _cleanup_free_ char *key = xasprintf("blob:%s", digest);
    if (size > (int64_t)max)
        return hull_error_setx(err, EFBIG, "blob %s: %lld bytes is too large (at most %zu)", digest,
                               (long long)size, max);
    for (int round = 0; round < 2; round++) {
        if (access(path, F_OK) == 0)
            return hull_read_file(path, max, out, len, err);
        /* concurrent pulls of one image download it once (handed over in memory) */
        struct inflight *mine = NULL;
        pthread_mutex_lock(&s->lock);
        int j = inflight_join(s, key, ctx, &mine, out, len, err);
        pthread_mutex_unlock(&s->lock);
        if (j == 0 && *out)
            return 0;
        if (j == 0 || (j < 0 && round == 0 && !pull_ctx_gone(ctx))) {
            hull_error_free(err);
            continue;
        }
        if (j < 0)
            return j;
        int r;
        {
            _cleanup_close_ int fd = open_tmpfile(s, err);
            r = fd;
            if (fd >= 0)
                r = registry_get_blob_capped(sess, digest, size, max, fd, false, NULL, err);
            if (r >= 0) {
                _cleanup_free_ char *proc = xasprintf("/proc/self/fd/%d", fd);
                r = hull_read_file(proc, max, out, len, err);
            }
        }
        pthread_mutex_lock(&s->lock);
        if (r >= 0) {
            mine->data = xmalloc0(*len + 1);
            memcpy(mine->data, *out, *len);
            mine->len = *len;
        }
        /* kept for the pulls that start before this one commits (and stores it) */
        inflight_finish(s, mine, r < 0 ? r : 0, true, err);
        if (r >= 0)
            *linger = mine;
        pthread_mutex_unlock(&s->lock);
        return r < 0 ? r : 0;
    }
    return hull_error_setx(err, EAGAIN, "blob %s: no download succeeded", digest);
}

static int ensure_layer(struct image_store *s, struct registry_session *sess,
                        const struct layer_ref *lr, int64_t *budget, struct pull_ctx *ctx,
                        hull_error_t *err)
{
    _cleanup_free_ char *key = xasprintf("layer:%s", lr->diff_id);
    for (int round = 0; round < 2; round++) {
        struct inflight *mine = NULL;
        pthread_mutex_lock(&s->lock);
        if (img_find_layer(s, lr->diff_id)) {
            pthread_mutex_unlock(&s->lock);
            return 0;
        }
        int j = inflight_join(s, key, ctx, &mine, NULL, NULL, err);
        pthread_mutex_unlock(&s->lock);
        if (j == 0)
            return 0;
        if (j < 0 && round == 0 && !pull_ctx_gone(ctx)) {
            hull_error_free(err);
            continue; /* theirs failed (or was abandoned by its callers): try ourselves */
        }
        if (j < 0)
            return j;
        /* the work goes on while any pull that wants it is still wanted by its caller */
        struct inflight_abort ia = {.s = s, .f = mine};
        struct img_abort abort = {.fn = inflight_abandoned, .arg = &ia};
        int r = img_layer_fetch(s, sess, lr, budget, &abort, err);
        pthread_mutex_lock(&s->lock);
        inflight_finish(s, mine, r < 0 ? r : 0, false, err);
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
    size_t next;    /* atomic */
    int64_t budget; /* atomic: bytes the image may still unpack to (max_image_size) */
    bool capped;
    struct pull_ctx *ctx;
    int status; /* first failure */
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
        int r = pull_ctx_gone(j->ctx)
                    ? hull_error_setx(&e, ECANCELED, "pull abandoned by its caller")
                    : ensure_layer(j->s, j->sess, &j->layers[i], j->capped ? &j->budget : NULL,
                                   j->ctx, &e);
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
                         struct layer_ref *layers, size_t n, struct pull_ctx *ctx,
                         hull_error_t *err)
{
    struct layer_job j = {.s = s, .sess = sess, .layers = layers, .n = n, .ctx = ctx};
    uint64_t cap = registry_session_image_cap(sess);
    if (cap > 0) {
        /* layers present already count with their recorded size */
        j.capped = true;
        j.budget = cap > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)cap;
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < n; i++) {
            struct layer_rec *l = img_find_layer(s, layers[i].diff_id);
            if (l)
                j.budget -= (int64_t)l->size;
        }
        pthread_mutex_unlock(&s->lock);
        if (j.budget < 0)
            return hull_error_setx(err, EFBIG, "image expands beyond its cap (max_image_size)");
    }
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
        return hull_error_setx(err, EINVAL, "image index without manifests");
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
    /* the documents as received, stored only when the pull commits */
    char *manifest_body, *index_body;
    size_t manifest_len, index_len;
    char *config_digest;
    int64_t config_size;
    struct layer_ref *layers;
    size_t n_layers;
};

static void pulled_free(struct pulled *p)
{
    free(p->manifest_digest);
    free(p->index_digest);
    free(p->manifest_body);
    free(p->index_body);
    free(p->config_digest);
    for (size_t i = 0; i < p->n_layers; i++)
        img_layer_ref_free(&p->layers[i]);
    free(p->layers);
}

static int store_manifest_blob(struct image_store *s, const char *digest, const char *body,
                               size_t len, hull_error_t *err)
{
    _cleanup_free_ char *path = img_path(s, "blobs/sha256/%s", img_hex(digest));
    if (access(path, F_OK) == 0)
        return 0;
    return img_write_unique(s, path, body, len, err);
}

/* A manifest by tag or digest; one known by digest is read from the store (it was verified when
 * stored), so pulls by digest of present images need no registry. */
static int get_manifest(struct image_store *s, struct registry_session *sess, const char *reference,
                        char **body, size_t *len, char **mt, hull_error_t *err)
{
    if (image_digest_valid(reference)) {
        _cleanup_free_ char *path = img_path(s, "blobs/sha256/%s", img_hex(reference));
        _cleanup_error_ hull_error_t lerr = NULL;
        if (access(path, F_OK) == 0 && hull_read_file(path, MAX_MANIFEST, body, len, &lerr) == 0) {
            *mt = NULL;
            return 0;
        }
    }
    return registry_get_manifest(sess, reference, MAX_MANIFEST, body, len, mt, err);
}

/* Resolves the reference to a platform manifest; fills p. */
void img_manifest_clear(struct img_manifest *m)
{
    free(m->pick);
    free(m->config_digest);
    for (size_t i = 0; i < m->n_layers; i++)
        img_layer_ref_free(&m->layers[i]);
    free(m->layers);
    memset(m, 0, sizeof(*m));
}

int img_manifest_parse(const char *body, const char *content_type, struct img_manifest *m,
                       hull_error_t *err)
{
    memset(m, 0, sizeof(*m));
    _cleanup_yajl_ yajl_val doc = NULL;
    int r = hull_json_parse(body, "manifest", &doc, err);
    if (r < 0)
        return r;
    if (!YAJL_IS_OBJECT(doc))
        return hull_error_setx(err, EINVAL, "manifest: not a JSON object");
    const char *bmt = hull_json_get_string(doc, "mediaType", NULL);
    const char *kind = bmt ? bmt : content_type;
    long long schema = hull_json_get_int(doc, "schemaVersion", 2);
    if (schema == 1 || is_schema1(kind))
        return hull_error_setx(err, EPROTO,
                               "image uses a Docker schema 1 manifest, which is not "
                               "supported (re-push it with a current client)");
    if (is_index(kind) || (kind == NULL && hull_json_get(doc, "manifests") != NULL)) {
        m->index = true;
        return pick_platform(doc, &m->pick, err);
    }
    yajl_val cfg = hull_json_get(doc, "config");
    const char *cd = hull_json_get_string(cfg, "digest", NULL);
    if (!image_digest_valid(cd))
        return hull_error_setx(err, EINVAL, "manifest without a valid config digest");
    yajl_val layers = hull_json_get(doc, "layers");
    if (layers == NULL || !YAJL_IS_ARRAY(layers))
        return hull_error_setx(err, EINVAL, "manifest without layers");
    if (layers->u.array.len > MAX_LAYERS)
        return hull_error_setx(err, EINVAL, "manifest has %zu layers (overlayfs stacks %d)",
                               layers->u.array.len, MAX_LAYERS);
    m->config_digest = xstrdup(cd);
    m->config_size = hull_json_get_int(cfg, "size", -1);
    m->layers = xmalloc0((layers->u.array.len + 1) * sizeof(*m->layers));
    for (size_t i = 0; i < layers->u.array.len; i++) {
        yajl_val l = layers->u.array.values[i];
        const char *ld = hull_json_get_string(l, "digest", NULL);
        if (!image_digest_valid(ld)) {
            img_manifest_clear(m);
            return hull_error_setx(err, EINVAL, "manifest layer %zu: bad digest", i);
        }
        const char *lmt = hull_json_get_string(l, "mediaType", "");
        if (strstr(lmt, "encrypted")) {
            img_manifest_clear(m);
            return hull_error_setx(err, EPROTO, "layer %s: encrypted layers not supported", ld);
        }
        struct layer_ref *lr = &m->layers[m->n_layers++];
        lr->digest = xstrdup(ld);
        lr->size = hull_json_get_int(l, "size", -1);
        lr->media_type = xstrdup(lmt);
    }
    return 0;
}

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
        struct img_manifest m;
        r = img_manifest_parse(body, mt, &m, err);
        if (m.index && depth > 0) {
            /* whether or not the nested index names this platform */
            img_manifest_clear(&m);
            hull_error_free(err);
            return hull_error_setx(err, EINVAL,
                                   "nested image index (an index names "
                                   "another index for this platform)");
        }
        if (r < 0) {
            img_manifest_clear(&m);
            return r;
        }
        if (m.index) {
            _cleanup_free_ char *pick = hull_steal(m.pick);
            img_manifest_clear(&m);
            /* kept, not stored: only a pull that succeeds stores its index */
            p->index_digest = xstrdup(dg);
            p->index_body = hull_steal(body);
            p->index_len = len;
            free(mt);
            mt = NULL;
            r = get_manifest(s, sess, pick, &body, &len, &mt, err);
            if (r < 0)
                return r;
            image_sha256_digest(body, len, dg);
            if (strcmp(dg, pick) != 0)
                return hull_error_setx(
                    err, EILSEQ, "manifest digest mismatch: index names %s, got %s", pick, dg);
            continue;
        }
        p->config_digest = hull_steal(m.config_digest);
        p->config_size = m.config_size;
        p->layers = hull_steal(m.layers);
        p->n_layers = m.n_layers;
        m.n_layers = 0;
        img_manifest_clear(&m);
        p->manifest_digest = xstrdup(dg);
        p->manifest_body = hull_steal(body);
        p->manifest_len = len;
        return 0;
    }
}

int img_config_diff_ids(const char *config_json, struct layer_ref *layers, size_t n_layers,
                        hull_error_t *err)
{
    _cleanup_yajl_ yajl_val cdoc = NULL;
    int r = hull_json_parse(config_json, "image config", &cdoc, err);
    if (r < 0)
        return r;
    yajl_val ids = hull_json_get(hull_json_get(cdoc, "rootfs"), "diff_ids");
    if (ids == NULL || !YAJL_IS_ARRAY(ids) || ids->u.array.len != n_layers)
        return hull_error_setx(err, EINVAL, "image config lists %zu diff ids for %zu layers",
                               ids && YAJL_IS_ARRAY(ids) ? ids->u.array.len : 0, n_layers);
    for (size_t i = 0; i < n_layers; i++) {
        yajl_val v = ids->u.array.values[i];
        if (!YAJL_IS_STRING(v) || !image_digest_valid(YAJL_GET_STRING(v)))
            return hull_error_setx(err, EINVAL, "image config: bad diff id %zu", i);
        free(layers[i].diff_id);
        layers[i].diff_id = xstrdup(YAJL_GET_STRING(v));
    }
    return 0;
}

/* Commits the image record (under the lock). Returns -EAGAIN if a layer vanished meanwhile. */
static int commit_image(struct image_store *s, const struct image_ref *ref, struct pulled *p,
                        char *config_json, hull_error_t *err)
{
    for (size_t i = 0; i < p->n_layers; i++)
        if (img_find_layer(s, p->layers[i].diff_id) == NULL)
            return -EAGAIN;
    hull_crash_point("pull:before-commit");
    _cleanup_free_ char *repo = image_ref_repo(ref);
    _cleanup_free_ char *tag = ref->tag ? xasprintf("%s:%s", repo, ref->tag) : NULL;
    _cleanup_free_ char *rd =
        xasprintf("%s@%s", repo, p->index_digest ? p->index_digest : p->manifest_digest);
    struct image_rec *rec = img_find_image_any(s, p->config_digest);
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
            img_rec_free(rec);
            return r;
        }
    }
    rec->pulled_ns = hull_now_ns();
    {
        /* the pull succeeded: its documents are stored now (and a concurrent removal may have
         * dropped a blob another pull stored) */
        const char *dg[] = {rec->id, p->manifest_digest, p->index_digest};
        const char *body[] = {config_json, p->manifest_body, p->index_body};
        size_t len[] = {strlen(config_json), p->manifest_len, p->index_len};
        for (size_t i = 0; i < 3; i++) {
            if (dg[i] == NULL || body[i] == NULL)
                continue;
            int r = store_manifest_blob(s, dg[i], body[i], len[i], err);
            if (r < 0) {
                if (fresh)
                    img_rec_free(rec);
                return r;
            }
        }
    }
    /* a tag names one image: move it */
    if (tag) {
        for (struct image_rec *o = s->images; o; o = o->next)
            if (o != rec && hull_strv_remove(o->tags, &o->n_tags, tag)) {
                _cleanup_error_ hull_error_t e2 = NULL;
                if (img_save_rec(s, o, &e2) < 0)
                    log_warn("image store: %s", hull_error_msg(&e2));
            }
        if (!hull_strv_has(rec->tags, rec->n_tags, tag))
            hull_strv_push(&rec->tags, &rec->n_tags, tag);
    }
    if (!hull_strv_has(rec->digests, rec->n_digests, rd))
        hull_strv_push(&rec->digests, &rec->n_digests, rd);
    int r = img_save_rec(s, rec, err);
    if (r < 0) {
        if (fresh)
            img_rec_free(rec);
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
    return image_pull_cancellable(s, refstr, auth, NULL, NULL, image_id, err);
}

int image_pull_cancellable(struct image_store *s, const char *refstr, const struct image_auth *auth,
                           bool (*cancelled)(void *arg), void *arg, char **image_id,
                           hull_error_t *err)
{
    struct image_ref ref;
    int r = image_ref_parse(refstr, &ref, err);
    if (r < 0)
        return r;
    struct pull_ctx ctx = {.cancelled = cancelled, .arg = arg};
    pthread_mutex_init(&ctx.lock, NULL);
    _cleanup_free_ char *name = image_ref_string(&ref);
    pthread_mutex_lock(&s->lock);
    const struct registry_config *cfg = s->cfg;
    pthread_mutex_unlock(&s->lock);
    struct registry_session *sess = NULL;
    struct pulled p = {0};
    struct inflight *config_inflight = NULL; /* our config download, shared until we end */
    _cleanup_free_ char *config_json = NULL;
    int64_t t0 = hull_monotonic_ns();
    pthread_mutex_lock(&s->lock);
    s->pulls++;
    pthread_mutex_unlock(&s->lock);
    r = registry_session_new(cfg, s->tokens, &ref, auth, &sess, err);
    if (r < 0)
        goto out;
    if (cancelled) {
        struct img_abort own = {.fn = pull_ctx_gone_cb, .arg = &ctx};
        registry_session_set_abort(sess, &own);
    }
    r = fetch_manifest(s, sess, &ref, &p, err);
    if (r < 0)
        goto out;
    size_t cfg_len = 0;
    r = fetch_small_blob(s, sess, p.config_digest, p.config_size, MAX_CONFIG, &ctx,
                         &config_inflight, &config_json, &cfg_len, err);
    if (r < 0) {
        hull_error_wrap(err, "config %s", p.config_digest);
        goto out;
    }
    r = img_config_diff_ids(config_json, p.layers, p.n_layers, err);
    if (r < 0)
        goto out;
    for (int attempt = 0;; attempt++) {
        r = ensure_layers(s, sess, p.layers, p.n_layers, &ctx, err);
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
out : {
    /* the layers a failed pull committed are nobody's: the last pull running drops them (a
     * pull still running may be about to use them) */
    char **trash = NULL;
    pthread_mutex_lock(&s->lock);
    if (config_inflight)
        inflight_retire(s, config_inflight);
    if (--s->pulls == 0 && r < 0)
        trash = img_gc_locked(s);
    pthread_mutex_unlock(&s->lock);
    img_empty_trash(trash);
}
    if (r < 0)
        hull_error_wrap(err, "pull %s", name);
    pulled_free(&p);
    registry_session_free(sess);
    image_ref_free(&ref);
    pthread_mutex_destroy(&ctx.lock);
    return r;
}
