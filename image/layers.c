/* Unpacked layers: download-and-unpack of one layer into layers/<hex> with its short link,
 * reload at start and garbage collection of unused layers.  It calls nothing of the image
 * records (store.c); what needs both is in holds.c. */

#include "common/crashpoint.h"
#include "image/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define SHORT_ID_CHARS 10

void img_layer_rec_free(struct layer_rec *l)
{
    free(l->diff_id);
    free(l->short_id);
    free(l);
}
struct layer_rec *img_find_layer(struct image_store *s, const char *diff_id)
{
    for (struct layer_rec *l = s->layers; l; l = l->next)
        if (strcmp(l->diff_id, diff_id) == 0)
            return l;
    return NULL;
}

static int ensure_short_link(struct image_store *s, const struct layer_rec *l, hull_error_t *err)
{
    _cleanup_free_ char *link = img_path(s, "l/%s", l->short_id);
    _cleanup_free_ char *target = xasprintf("../layers/%s/diff", img_hex(l->diff_id));
    if (symlink(target, link) < 0 && errno != EEXIST)
        return hull_error_set(err, errno, "symlink `%s`", link);
    return 0;
}

int img_layers_load(struct image_store *s, hull_error_t *err)
{
    _cleanup_free_ char *dir = img_path(s, "layers");
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (d == NULL)
        return hull_error_set(err, errno, "open `%s`", dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        _cleanup_free_ char *meta = img_path(s, "layers/%s/layer.json", de->d_name);
        _cleanup_yajl_ yajl_val doc = NULL;
        _cleanup_error_ hull_error_t lerr = NULL;
        const char *diff_id = NULL, *short_id = NULL;
        if (hull_json_parse_file(meta, 1 << 20, &doc, &lerr) == 0) {
            diff_id = hull_json_get_string(doc, "diff_id", NULL);
            short_id = hull_json_get_string(doc, "short", NULL);
        }
        if (!image_digest_valid(diff_id) || strcmp(img_hex(diff_id), de->d_name) != 0 ||
            short_id == NULL || !hull_is_safe_component(short_id)) {
            log_warn("image store: removing incomplete layer %s", de->d_name);
            _cleanup_free_ char *p = img_path(s, "layers/%s", de->d_name);
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

/* Removes short links whose layer is gone. */
void img_clean_links(struct image_store *s)
{
    _cleanup_free_ char *dir = img_path(s, "l");
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

/* ---- download and unpack ------------------------------------------------------------------ */
struct unpack_job {
    int fd;
    int dirfd;
    const char *diff_id;
    struct image_unpack_limits lim;
    struct image_unpack_stats stats;
    int status;
    hull_error_t err;
};

static void *unpack_thread(void *opaque)
{
    struct unpack_job *j = opaque;
    j->status =
        image_unpack_layer_limited(j->fd, j->dirfd, j->diff_id, &j->lim, &j->stats, &j->err);
    /* a writer still sending learns the reader is gone */
    shutdown(j->fd, SHUT_RD);
    return NULL;
}

/* Downloads, verifies and unpacks one layer into layers/<hex> (once, whoever asks).  The
 * unpack runs while the download goes on (through a socket pair), into a temp dir that is
 * committed only once the compressed digest and the diff id both matched. */
int img_layer_fetch(struct image_store *s, struct registry_session *sess,
                    const struct layer_ref *lr, int64_t *image_budget,
                    const struct img_abort *abort, hull_error_t *err)
{
    _cleanup_free_ char *linkpath = NULL; /* before any goto fail */
    char name[16];
    img_random_name(name, sizeof(name));
    _cleanup_free_ char *tmpdir = img_path(s, "tmp/layer-%s", name);
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
                                 .lim = {.max_bytes = registry_session_layer_cap(sess),
                                         .image_budget = image_budget,
                                         .min_free = registry_session_min_free(sess),
                                         .abort = abort ? abort->fn : NULL,
                                         .abort_arg = abort ? abort->arg : NULL}};
        pthread_t th;
        if (pthread_create(&th, NULL, unpack_thread, &job) != 0) {
            close(sv[0]);
            close(sv[1]);
            r = hull_error_setx(err, EAGAIN, "cannot start an unpack thread");
            goto fail;
        }
        r = registry_get_blob_capped(sess, lr->digest, lr->size, 0, sv[0], true, abort, err);
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
        _cleanup_free_ char *target = xasprintf("../layers/%s/diff", img_hex(lr->diff_id));
        int tries = 0;
        for (;;) {
            img_random_name(short_id, sizeof(short_id));
            _cleanup_free_ char *link = img_path(s, "l/%s", short_id);
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
        _cleanup_free_ char *final = img_path(s, "layers/%s", img_hex(lr->diff_id));
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
char **img_gc_locked(struct image_store *s)
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
        _cleanup_free_ char *link = img_path(s, "l/%s", l->short_id);
        unlink(link);
        _cleanup_free_ char *dir = img_path(s, "layers/%s", img_hex(l->diff_id));
        char name[16];
        img_random_name(name, sizeof(name));
        _cleanup_free_ char *dest = img_path(s, "tmp/gc-%s", name);
        if (rename(dir, dest) == 0)
            hull_strv_push(&trash, &n, dest);
        else
            hull_strv_push(&trash, &n, dir);
        img_layer_rec_free(l);
    }
    return trash;
}

void img_empty_trash(char **trash)
{
    for (char **p = trash; p && *p; p++) {
        _cleanup_error_ hull_error_t e = NULL;
        if (hull_rm_rf(*p, &e) < 0)
            log_warn("image store: %s", hull_error_msg(&e));
    }
    hull_strv_free(trash);
}

struct hold *img_find_hold(struct image_store *s, const char *id)
{
    for (struct hold *h = s->holds; h; h = h->next)
        if (strcmp(h->image_id, id) == 0)
            return h;
    return NULL;
}
