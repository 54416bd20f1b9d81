/* Internals shared by the files of image/ (not an interface: use image.h). */
#ifndef HULL_IMAGE_INTERNAL_H
#define HULL_IMAGE_INTERNAL_H

#include <pthread.h>
#include <string.h>

#include "image/image.h"

/* A copy of the registry configuration. */
struct registry_config {
    char **mirror_hosts, **mirror_urls;
    size_t n_mirrors;
    char **insecure;
    size_t n_insecure;
    char **ca_hosts, **ca_files;
    size_t n_ca;
    long timeout_s;
    long low_speed;
    long deadline_s;
    uint64_t max_unsized_blob;
    uint64_t max_layer_size;
    uint64_t max_image_size;
    uint64_t fs_min_free;
};
struct registry_config *registry_config_copy(const struct image_registry_config *c);
void registry_config_free(struct registry_config *c);

/* A way to stop a transfer or an unpack: fn returns true once the work is not wanted. */
struct img_abort {
    bool (*fn)(void *arg);
    void *arg;
};

/* Bearer tokens, shared by every pull of a store, cached per (realm, service, scope, user). */
struct token_cache;
struct token_cache *token_cache_new(void);
void token_cache_free(struct token_cache *t);

/* One pull's view of a registry: endpoints (mirrors, then the origin), credentials, tokens. */
struct registry_session;
int registry_session_new(const struct registry_config *cfg, struct token_cache *tokens,
                         const struct image_ref *ref, const struct image_auth *auth,
                         struct registry_session **out, hull_error_t *err);
void registry_session_free(struct registry_session *s);
/* One parameter of a registry's WWW-Authenticate challenge (`Bearer realm="…",service="…",
 * scope="…"`), key matched case-insensitively at a parameter start; NULL when absent.  The
 * header is the registry's: any bytes. */
char *img_challenge_param(const char *header, const char *key);

/* What a manifest body fetched from a registry says (a hostile registry controls every byte):
 * an image index (pick: the linux/<host arch> manifest's digest) or an image manifest (its
 * config digest and size and its layers, digests checked, at most MAX_LAYERS). */
struct img_manifest {
    bool index;
    char *pick;
    char *config_digest;
    int64_t config_size;
    struct layer_ref *layers;
    size_t n_layers;
};
int img_manifest_parse(const char *body, const char *content_type, struct img_manifest *m,
                       hull_error_t *err);
void img_manifest_clear(struct img_manifest *m);
/* The rootfs.diff_ids of an image config, one per layer (n_layers must match), into layers[]. */
int img_config_diff_ids(const char *config_json, struct layer_ref *layers, size_t n_layers,
                        hull_error_t *err);

/* The configured cap on one unpacked layer's file data (0: none). */
uint64_t registry_session_layer_cap(const struct registry_session *s);
/* The configured per-image cap and free-space floor (0: none). */
uint64_t registry_session_image_cap(const struct registry_session *s);
uint64_t registry_session_min_free(const struct registry_session *s);

/* GET a manifest by tag or digest. *media_type from Content-Type (or NULL). */
int registry_get_manifest(struct registry_session *s, const char *reference, size_t max,
                          char **body, size_t *len, char **media_type, hull_error_t *err);
/* GET a blob into fd, verified against digest and size (size < 0: unknown); EILSEQ on a
 * mismatch.  fd is a file (from offset 0; truncated on retries), or with stream a socket that a
 * consumer reads as the bytes come: each byte is sent once, even across resumed or restarted
 * transfers, and a consumer that stops reading does not stop the verification. */
int registry_get_blob(struct registry_session *s, const char *digest, int64_t size, int fd,
                      bool stream, hull_error_t *err);
/* The same with the cap of a blob without a size (size < 0) given by the caller (0: the
 * configured max_unsized_blob): EFBIG as soon as more bytes arrive. */
int registry_get_blob_capped(struct registry_session *s, const char *digest, int64_t size,
                             uint64_t unsized_cap, int fd, bool stream,
                             const struct img_abort *abort, hull_error_t *err);
/* Every transfer of the session stops (ECANCELED) once abort says so (NULL: none). */
void registry_session_set_abort(struct registry_session *s, const struct img_abort *abort);

/* ---- the store (catalog.c, layers.c, pull.c) ------------------------------------------------- */
#define MAX_CONFIG (8 << 20)

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
/* One PullImage call: whether its caller is still there (checked at most every 100 ms). */
struct pull_ctx {
    bool (*cancelled)(void *arg); /* NULL: never */
    void *arg;
    pthread_mutex_t lock; /* serialises the calls to cancelled */
    int64_t checked_ns;
    bool gone;
};
bool pull_ctx_gone(struct pull_ctx *c);

/* Work shared by the pulls that need it: the owner does it, waiters wait for its outcome.  It
 * is abandoned (ECANCELED) once every pull that wants it was given up by its caller. */
struct inflight {
    char *key;
    bool done;
    int status;
    char *msg;
    int waiters;
    pthread_cond_t cond;
    struct pull_ctx **parties; /* the pulls that want the outcome (owner first) */
    size_t n_parties;
    int64_t checked_ns;
    bool abandoned;
    char *data; /* a result handed to the waiters (a config), or NULL */
    size_t len;
    bool linked; /* in s->inflight: joiners find it (done ones hand over data at once) */
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
    int pulls; /* pulls in progress */
};

/* "sha256:<hex>" → "<hex>". */
static inline const char *img_hex(const char *digest)
{
    return strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest;
}

/* catalog.c */
void img_random_name(char *out, size_t n); /* n-1 random base32 characters and a NUL */
/* <store dir>/<printf fmt>. */
char *img_path(struct image_store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int img_write_unique(struct image_store *s, const char *path, const void *data, size_t len,
                     hull_error_t *err);
void img_layer_ref_free(struct layer_ref *l);
/* The CRI view of an image record: user, entrypoint, cmd, env, working dir, volumes, labels from
 * its config (the registry's JSON: any shape). */
struct image_info *img_info_of(const struct image_rec *r);
void img_rec_free(struct image_rec *r);
HULL_DEFINE_CLEANUP(struct image_rec, img_rec_free)
#define _cleanup_img_rec_ __attribute__((cleanup(img_rec_freep)))
struct image_rec *img_find_image_any(struct image_store *s, const char *id);
struct image_rec *img_find_by_id_any(struct image_store *s, const char *id);
int img_save_rec(struct image_store *s, const struct image_rec *r, hull_error_t *err);
int img_read_blob(struct image_store *s, const char *digest, size_t max, char **out, size_t *len,
                  hull_error_t *err);
/* The visible image a reference, id or unique id prefix names (lock held). */
struct image_rec *img_resolve_locked(struct image_store *s, const char *ref);
/* Deletes an image record and its unreferenced blobs (lock held). */
size_t img_gc_blobs_locked(struct image_store *s);
int img_delete_locked(struct image_store *s, struct image_rec *r, hull_error_t *err);

/* layers.c */
void img_layer_rec_free(struct layer_rec *l);
struct layer_rec *img_find_layer(struct image_store *s, const char *diff_id);
int img_layers_load(struct image_store *s, hull_error_t *err);
void img_clean_links(struct image_store *s);
/* Downloads, verifies and unpacks one layer into layers/<hex>, then indexes it. */
int img_layer_fetch(struct image_store *s, struct registry_session *sess,
                    const struct layer_ref *lr, int64_t *image_budget,
                    const struct img_abort *abort, hull_error_t *err);
struct hold *img_find_hold(struct image_store *s, const char *id);
/* Drops unused layers from the index (lock held); returns the dirs for img_empty_trash. */
char **img_gc_locked(struct image_store *s);
void img_empty_trash(char **trash);

#endif
