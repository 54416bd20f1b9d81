/* ImageService: PullImage, ListImages, StreamImages, ImageStatus, RemoveImage, ImageFsInfo, on
 * the store of image/.  No lock of ours is held here: image/ locks its indexes briefly and never
 * across registry I/O, so a slow pull never blocks other calls. */
#include "image/image.h"
#include "server/rpc/handlers.h"
#include "server/image_service/image_service.h"
#include "server/stats/stats.h"
#include "server/server.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define STREAM_BATCH 100

static struct image_store *store_of(struct rpc_call *call, hull_error_t *err)
{
    struct image_store *s = image_service_store(rpc_server(call)->images);
    if (s == NULL)
        hull_error_setx(err, EAGAIN, "image service is not initialised");
    return s;
}

static const char *spec_image(const Runtime__V1__ImageSpec *spec)
{
    if (spec == NULL || spec->image == NULL)
        return "";
    return spec->image;
}

static char **call_strv(struct rpc_call *call, char **v, size_t *n)
{
    size_t cnt = 0;
    while (v && v[cnt])
        cnt++;
    char **out = rpc_alloc(call, (cnt + 1) * sizeof(char *));
    for (size_t i = 0; i < cnt; i++)
        out[i] = rpc_strdup(call, v[i]);
    *n = cnt;
    return out;
}

static Runtime__V1__Image *image_message(struct rpc_call *call, const struct image_info *i)
{
    Runtime__V1__Image *m = rpc_new_message(call, &runtime__v1__image__descriptor);
    m->id = rpc_strdup(call, i->id);
    m->repo_tags = call_strv(call, i->repo_tags, &m->n_repo_tags);
    m->repo_digests = call_strv(call, i->repo_digests, &m->n_repo_digests);
    m->size = i->size;
    if (i->has_uid) {
        m->uid = rpc_new_message(call, &runtime__v1__int64_value__descriptor);
        m->uid->value = i->uid;
    }
    m->username = rpc_strdup(call, i->username ? i->username : "");
    m->spec = rpc_new_message(call, &runtime__v1__image_spec__descriptor);
    m->spec->image = rpc_strdup(call, i->id);
    m->pinned = i->pinned;
    return m;
}

/* The pull's check for its caller (deadline passed, cancelled, hulld stopping); the image store
 * serialises its calls. */
static bool pull_caller_gone(void *arg)
{
    return rpc_call_cancelled(arg);
}

int rpc_pull_image(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                   hull_error_t *err)
{
    const Runtime__V1__PullImageRequest *q = (const Runtime__V1__PullImageRequest *)req;
    struct image_store *s = store_of(call, err);
    if (s == NULL)
        return -EAGAIN;
    const char *ref = spec_image(q->image);
    if (*ref == '\0')
        return hull_error_setx(err, EINVAL, "PullImage: no image given");
    struct image_auth auth = {0};
    if (q->auth) {
        auth.username = q->auth->username;
        auth.password = q->auth->password;
        auth.auth = q->auth->auth;
        auth.identity_token = q->auth->identity_token;
        auth.registry_token = q->auth->registry_token;
        auth.server_address = q->auth->server_address;
    }
    _cleanup_free_ char *id = NULL;
    /* metrics: bytes count only for an image that was not stored before */
    struct hull_metrics *metrics = rpc_server(call)->metrics;
    int64_t t0 = hull_monotonic_ns();
    _cleanup_image_info_ struct image_info *before = NULL;
    if (metrics)
        image_resolve(s, ref, &before, NULL);
    int r =
        image_pull_cancellable(s, ref, q->auth ? &auth : NULL, pull_caller_gone, call, &id, err);
    if (metrics) {
        uint64_t bytes = 0;
        _cleanup_image_info_ struct image_info *after = NULL;
        if (r == 0 && image_resolve(s, id, &after, NULL) == 0 &&
            (before == NULL || strcmp(before->id, after->id) != 0))
            bytes = after->size;
        metrics_image_pull(metrics, bytes, hull_monotonic_ns() - t0, r == 0);
    }
    if (r < 0)
        return r;
    Runtime__V1__PullImageResponse *m =
        rpc_new_message(call, &runtime__v1__pull_image_response__descriptor);
    m->image_ref = rpc_strdup(call, id);
    *resp = &m->base;
    return 0;
}

static const char *filter_of(const Runtime__V1__ImageFilter *f)
{
    if (f == NULL || f->image == NULL || f->image->image == NULL || *f->image->image == '\0')
        return NULL;
    return f->image->image;
}

/* The Image messages of the images that pass the filter, in call memory. */
static int list_filtered(struct rpc_call *call, const Runtime__V1__ImageFilter *filter,
                         Runtime__V1__Image ***out, size_t *n_out, hull_error_t *err)
{
    struct image_store *s = store_of(call, err);
    if (s == NULL)
        return -EAGAIN;
    struct image_info **list = NULL;
    size_t n = 0;
    int r = image_list(s, filter_of(filter), &list, &n, err);
    if (r < 0)
        return r;
    Runtime__V1__Image **items = rpc_alloc(call, (n + 1) * sizeof(*items));
    for (size_t i = 0; i < n; i++)
        items[i] = image_message(call, list[i]);
    image_info_list_free(list, n);
    *out = items;
    *n_out = n;
    return 0;
}

int rpc_list_images(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                    hull_error_t *err)
{
    const Runtime__V1__ListImagesRequest *q = (const Runtime__V1__ListImagesRequest *)req;
    Runtime__V1__ListImagesResponse *m =
        rpc_new_message(call, &runtime__v1__list_images_response__descriptor);
    int r = list_filtered(call, q->filter, &m->images, &m->n_images, err);
    if (r < 0)
        return r;
    *resp = &m->base;
    return 0;
}

int rpc_stream_images(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                      hull_error_t *err)
{
    const Runtime__V1__StreamImagesRequest *q = (const Runtime__V1__StreamImagesRequest *)req;
    Runtime__V1__Image **items = NULL;
    size_t n = 0;
    int r = list_filtered(call, q->filter, &items, &n, err);
    if (r < 0)
        return r;
    return rpc_stream_items(call, &runtime__v1__stream_images_response__descriptor, items, n,
                            STREAM_BATCH, false, err);
}

int rpc_image_status(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                     hull_error_t *err)
{
    const Runtime__V1__ImageStatusRequest *q = (const Runtime__V1__ImageStatusRequest *)req;
    struct image_store *s = store_of(call, err);
    if (s == NULL)
        return -EAGAIN;
    Runtime__V1__ImageStatusResponse *m =
        rpc_new_message(call, &runtime__v1__image_status_response__descriptor);
    *resp = &m->base;
    const char *ref = spec_image(q->image);
    if (*ref == '\0')
        return hull_error_setx(err, EINVAL, "ImageStatus: no image given");
    struct image_info *info = NULL;
    _cleanup_error_ hull_error_t lerr = NULL;
    if (image_resolve(s, ref, &info, &lerr) < 0)
        return 0; /* a missing image is a success with image unset */
    m->image = image_message(call, info);
    if (q->verbose) {
        _cleanup_free_ char *cfg = NULL;
        if (image_config_json(s, info->id, &cfg, &lerr) == 0) {
            Runtime__V1__ImageStatusResponse__InfoEntry *e =
                rpc_new_message(call, &runtime__v1__image_status_response__info_entry__descriptor);
            e->key = "info";
            e->value = rpc_printf(call,
                                  "{\"id\":\"%s\",\"manifestDigest\":\"%s\",\"layers\":%zu,"
                                  "\"imageSpec\":%s}",
                                  info->id, info->manifest_digest, info->n_layers, cfg);
            m->info = rpc_alloc(call, sizeof(*m->info));
            m->info[0] = e;
            m->n_info = 1;
        }
    }
    image_info_free(info);
    return 0;
}

int rpc_remove_image(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                     hull_error_t *err)
{
    const Runtime__V1__RemoveImageRequest *q = (const Runtime__V1__RemoveImageRequest *)req;
    struct image_store *s = store_of(call, err);
    if (s == NULL)
        return -EAGAIN;
    const char *ref = spec_image(q->image);
    if (*ref == '\0')
        return hull_error_setx(err, EINVAL, "RemoveImage: no image given");
    int r = image_remove(s, ref, NULL, err);
    if (r < 0)
        return r;
    *resp = rpc_new_message(call, &runtime__v1__remove_image_response__descriptor);
    return 0;
}

int rpc_image_fs_info(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                      hull_error_t *err)
{
    struct image_store *s = store_of(call, err);
    if (s == NULL)
        return -EAGAIN;
    struct image_fs_usage u;
    int r = image_fs_usage(s, &u, err);
    if (r < 0)
        return r;
    Runtime__V1__FilesystemUsage *fu =
        rpc_fs_usage(call, hull_now_ns(), u.mountpoint, u.used_bytes, u.inodes_used);
    free(u.mountpoint);
    Runtime__V1__ImageFsInfoResponse *m =
        rpc_new_message(call, &runtime__v1__image_fs_info_response__descriptor);
    m->image_filesystems = rpc_alloc(call, sizeof(*m->image_filesystems));
    m->image_filesystems[0] = fu;
    m->n_image_filesystems = 1;

    /* The containers' writable layers are a separate (kubelet: "split") filesystem only when
     * they really live on another device than the image store; otherwise, as containerd does,
     * only the image filesystem is reported and kubelet uses it for both. */
    _cleanup_free_ char *cdir = hull_path_join(rpc_config(call)->root, "containers");
    struct stat ist, cst;
    if (stat(fu->fs_id->mountpoint, &ist) == 0 && stat(cdir, &cst) == 0 &&
        ist.st_dev != cst.st_dev) {
        struct stats_fs_usage cu;
        _cleanup_error_ hull_error_t e = NULL;
        if (stats_dir_usage(cdir, &cu, &e) == 0) {
            Runtime__V1__FilesystemUsage *c =
                rpc_fs_usage(call, cu.timestamp_ns, cdir, cu.used_bytes, cu.inodes_used);
            m->container_filesystems = rpc_alloc(call, sizeof(*m->container_filesystems));
            m->container_filesystems[0] = c;
            m->n_container_filesystems = 1;
        } else {
            log_warn("ImageFsInfo: %s", hull_error_msg(&e));
        }
    }
    *resp = &m->base;
    return 0;
}
