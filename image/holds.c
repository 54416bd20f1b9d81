/* Containers' holds (reference counts) on an image and its layers, the collection of removed
 * images and unused layers they allow, and the overlay lower dirs of an image: the image
 * records (store.c) and the layers (layers.c) together. */

#include "image/internal.h"

#include <errno.h>
#include <string.h>

void image_gc(struct image_store *s)
{
    pthread_mutex_lock(&s->lock);
    for (struct image_rec *r = s->images, *n; r; r = n) {
        n = r->next;
        if (r->removed && img_find_hold(s, r->id) == NULL) {
            _cleanup_error_ hull_error_t e = NULL;
            if (img_delete_locked(s, r, &e) < 0)
                log_warn("image store: %s", hull_error_msg(&e));
        }
    }
    char **trash = img_gc_locked(s);
    img_gc_blobs_locked(s);
    pthread_mutex_unlock(&s->lock);
    img_empty_trash(trash);
}

int image_acquire(struct image_store *s, const char *image_id, hull_error_t *err)
{
    pthread_mutex_lock(&s->lock);
    struct image_rec *r = img_find_by_id_any(s, image_id);
    if (r == NULL)
        r = img_resolve_locked(s, image_id);
    struct hold *h = img_find_hold(s, r ? r->id : image_id);
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
            struct layer_rec *l = img_find_layer(s, r->layers[i].diff_id);
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
            struct layer_rec *l = img_find_layer(s, h->diff_ids[i]);
            if (l && l->users > 0)
                l->users--;
            free(h->diff_ids[i]);
        }
        free(h->diff_ids);
        struct image_rec *r = img_find_image_any(s, h->image_id);
        if (r && r->removed) {
            _cleanup_error_ hull_error_t e = NULL;
            if (img_delete_locked(s, r, &e) < 0)
                log_warn("image store: %s", hull_error_msg(&e));
        }
        free(h->image_id);
        free(h);
        trash = img_gc_locked(s);
        break;
    }
    pthread_mutex_unlock(&s->lock);
    img_empty_trash(trash);
}

/* ---- overlay lowers ------------------------------------------------------------------------ */
int image_lowerdirs(struct image_store *s, const char *image_id, char ***short_names,
                    char ***abs_paths, hull_error_t *err)
{
    pthread_mutex_lock(&s->lock);
    struct image_rec *r = img_find_by_id_any(s, image_id);
    if (r == NULL)
        r = img_resolve_locked(s, image_id);
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
        struct layer_rec *l = img_find_layer(s, ids[n - 1 - i]);
        if (l == NULL) {
            ret = hull_error_setx(err, ENOENT, "image \"%s\": layer %s missing", image_id,
                                  ids[n - 1 - i]);
            break;
        }
        sn[i] = xasprintf("l/%s", l->short_id);
        ap[i] = img_path(s, "layers/%s/diff", img_hex(l->diff_id));
    }
    pthread_mutex_unlock(&s->lock);
    free(ids);
    if (ret < 0) {
        hull_strv_free(sn);
        hull_strv_free(ap);
        return ret;
    }
    if (short_names)
        *short_names = sn;
    else
        hull_strv_free(sn);
    if (abs_paths)
        *abs_paths = ap;
    else
        hull_strv_free(ap);
    return 0;
}
