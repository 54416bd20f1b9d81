/* image/ — Hull's image store: reference parsing, the registry v2 client (libcurl, Basic and
 * Bearer auth, mirrors, plain-HTTP registries), manifests and indexes, a content store of
 * verified blobs, layer unpack (tar/gzip/zstd, OCI whiteouts → overlayfs, path safety), image
 * records, and the overlay lower-dir assembly containers mount.
 *
 * On disk, under <root>/images:
 *   blobs/sha256/<hex>         verified manifests and configs (content addressed)
 *   layers/<diffid-hex>/diff   an unpacked layer (keyed by its diff id, shared between images)
 *   layers/<diffid-hex>/layer.json, layers/<diffid-hex>/link (short name)
 *   l/<short>                  symlink -> ../layers/<hex>/diff (short lowerdir names)
 *   images/<id-hex>.json       image records (id = config digest), written atomically
 *   tmp/                       downloads and unpacks in progress (cleaned at open)
 *
 * Every function is thread safe; no lock is held during network I/O or unpack. */
#ifndef HULL_IMAGE_H
#define HULL_IMAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"

/* ---- references ---------------------------------------------------------------------------- */
struct image_ref {
    char *domain; /* "docker.io", "registry:5000" */
    char *path;   /* "library/busybox" */
    char *tag;    /* "latest", or NULL when only a digest was given */
    char *digest; /* "sha256:<64 hex>" or NULL */
};

/* Parses and normalises a reference like kubelet/containerd do: "busybox" →
 * docker.io/library/busybox:latest; "host:port/repo:tag", "repo@sha256:…", tag+digest.
 * Errors (EINVAL) name the reference. */
int image_ref_parse(const char *s, struct image_ref *out, hull_error_t *err);
void image_ref_free(struct image_ref *r);
/* image_ref is held by value: the cleanup clears it in place. */
#define _cleanup_image_ref_ __attribute__((cleanup(image_ref_free)))
/* "domain/path" (the repository name). Caller frees. */
char *image_ref_repo(const struct image_ref *r);
/* The full normalised string: "domain/path:tag", "domain/path@digest" or both. Caller frees. */
char *image_ref_string(const struct image_ref *r);
/* True if s is "sha256:<64 lowercase hex>". */
bool image_digest_valid(const char *s);

/* ---- sha256 -------------------------------------------------------------------------------- */
struct image_sha256 {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t n;
};
void image_sha256_init(struct image_sha256 *c);
void image_sha256_update(struct image_sha256 *c, const void *data, size_t len);
/* Writes "sha256:<64 hex>" (72 bytes with NUL) */
void image_sha256_final_digest(struct image_sha256 *c, char out[72]);
void image_sha256_digest(const void *data, size_t len, char out[72]);

/* ---- layer unpack (untrusted input) -------------------------------------------------------- */
struct image_unpack_stats {
    uint64_t bytes;   /* sum of regular file sizes */
    uint64_t entries; /* inodes created */
};
/* Unpacks a tar stream (plain, gzip or zstd, detected) read from fd into the directory dirfd.
 * Nothing is ever written outside dirfd: entries with ".." are refused, absolute names are taken
 * relative to the layer, entries under a symlink and hard links leading out are refused,
 * metadata is never set through a link.  OCI whiteouts become overlayfs whiteouts (0:0 char
 * devices) and opaque dirs (trusted.overlay.opaque=y).  When diff_id is non-NULL the
 * uncompressed stream must hash to it (EILSEQ otherwise).  A missing end-of-archive is
 * tolerated. */
int image_unpack_layer(int fd, int dirfd, const char *diff_id, struct image_unpack_stats *stats,
                       hull_error_t *err);
/* The same with a cap on the file data the layer may expand to (apparent sizes; 0: none):
 * EFBIG, before the file that would cross it is written. */
int image_unpack_layer_capped(int fd, int dirfd, const char *diff_id, uint64_t max_bytes,
                              struct image_unpack_stats *stats, hull_error_t *err);

/* The same with every bound: the layer's cap, a budget shared by the layers of one image
 * (decremented atomically by each file's size plus one entry; EFBIG once it goes negative) and
 * the free space that must stay on the target filesystem (ENOSPC before a file that would eat
 * into it is written). */
struct image_unpack_limits {
    uint64_t max_bytes;       /* this layer's file data (0: none) */
    int64_t *image_budget;    /* NULL: none */
    uint64_t min_free;        /* 0: no check */
    bool (*abort)(void *arg); /* polled between blocks: true stops the unpack (ECANCELED) */
    void *abort_arg;
};
int image_unpack_layer_limited(int fd, int dirfd, const char *diff_id,
                               const struct image_unpack_limits *lim,
                               struct image_unpack_stats *stats, hull_error_t *err);

/* ---- the store ----------------------------------------------------------------------------- */
struct image_store;

struct image_registry_config {
    /* registry host -> mirror URL, in order (tried before the origin); http:// = plain HTTP */
    const char *const *mirror_hosts;
    const char *const *mirror_urls;
    size_t n_mirrors;
    const char *const *insecure; /* HOST[:PORT] served over plain HTTP */
    size_t n_insecure;
    const char *const *ca_hosts; /* registry host -> CA bundle file */
    const char *const *ca_files;
    size_t n_ca;
    long timeout_s;            /* seconds a transfer may stay below low_speed; 0 = default (60) */
    long low_speed;            /* bytes/s under which a transfer counts as stalled (0: 1 byte/s) */
    long deadline_s;           /* seconds one pull may take in total, retries included (0: none) */
    uint64_t max_unsized_blob; /* download cap of a blob without a size (0: default 1 GiB) */
    uint64_t max_layer_size;   /* bytes of file data in one unpacked layer (0: unlimited) */
    uint64_t max_image_size;   /* bytes of file data all layers of one image unpack to (0: none) */
    uint64_t fs_min_free;      /* bytes an unpack leaves free on the image filesystem (0: none) */
};

/* Opens (creating) the store under <root>/images and reloads its images and layers. */
int image_store_open(const char *root, const struct image_registry_config *cfg,
                     struct image_store **out, hull_error_t *err);
void image_store_close(struct image_store *s);
HULL_DEFINE_CLEANUP(struct image_store, image_store_close)
#define _cleanup_image_store_ __attribute__((cleanup(image_store_closep)))
/* Replaces the registry configuration (SIGHUP); strings are copied. */
void image_store_set_registry_config(struct image_store *s, const struct image_registry_config *c);
const char *image_store_dir(const struct image_store *s); /* <root>/images */

struct image_auth {
    const char *username;
    const char *password;
    const char *auth;           /* base64 "user:password" */
    const char *identity_token; /* OAuth2 refresh token */
    const char *registry_token; /* bearer token to use as is */
    /* the registry these credentials are for (CRI server_address: "host[:port]", optionally
     * with a scheme and path).  Credentials are sent only to an endpoint on that host; when
     * empty, only to the image's own registry (never to its mirrors). */
    const char *server_address;
};

/* A snapshot of one image (caller frees with image_info_free). */
struct image_info {
    char *id;            /* "sha256:<hex>" (config digest) */
    char **repo_tags;    /* NULL-terminated */
    char **repo_digests; /* NULL-terminated */
    uint64_t size;       /* config + compressed layers */
    /* from the config */
    char *user; /* Config.User as is ("" if none) */
    bool has_uid;
    int64_t uid;                     /* numeric user part, when User starts with a number */
    char *username;                  /* non-numeric user part */
    char **entrypoint, **cmd, **env; /* NULL-terminated, may be NULL */
    char **volumes;                  /* container paths, cleaned, absolute */
    char *working_dir;               /* cleaned absolute container path or "" */
    char *stop_signal;               /* "" if none */
    char **labels;                   /* "key=value", NULL-terminated */
    size_t n_layers;
    bool pinned;
    char *manifest_digest;
    int64_t pulled_ns;
};
void image_info_free(struct image_info *i);
HULL_DEFINE_CLEANUP(struct image_info, image_info_free)
#define _cleanup_image_info_ __attribute__((cleanup(image_info_freep)))
void image_info_list_free(struct image_info **list, size_t n);

/* Pulls ref (any form image_ref_parse takes).  *image_id gets the config digest.  Interrupted or
 * failed pulls leave nothing behind: manifests, index and config are stored when the image is
 * committed, and the layers a failed pull unpacked are collected.  Errors: EINVAL bad ref or
 * malformed image (nested index, bad manifest or config), ENOENT missing image, EACCES auth
 * refused, EILSEQ digest mismatch, EBADMSG a malformed or hostile answer (control characters
 * in a token or header), EPROTONOSUPPORT a file:// realm or redirect, EAGAIN redirect loop or
 * 429, EFBIG/ENOSPC size caps and the free-space floor, ECANCELED caller gone, ETIMEDOUT,
 * ECONNREFUSED/EIO network. */
int image_pull(struct image_store *s, const char *ref, const struct image_auth *auth,
               char **image_id, hull_error_t *err);
/* The same for a caller that may go away: cancelled(arg) (called from several threads, never
 * at once, at most every 100 ms) returning true stops the pull's downloads and unpacks
 * (ECANCELED), except work another pull still waits for. */
int image_pull_cancellable(struct image_store *s, const char *ref, const struct image_auth *auth,
                           bool (*cancelled)(void *arg), void *arg, char **image_id,
                           hull_error_t *err);

/* Finds an image by id ("sha256:<hex>", "<hex>", or an unambiguous hex prefix >= 12 chars), tag
 * or digest reference (normalised).  ENOENT if none. */
int image_resolve(struct image_store *s, const char *ref, struct image_info **out,
                  hull_error_t *err);
/* All images (sorted by id), optionally only those matching ref (like image_resolve). */
int image_list(struct image_store *s, const char *filter, struct image_info ***out, size_t *n,
               hull_error_t *err);
/* The image config JSON as stored (verbose ImageStatus). Caller frees. */
int image_config_json(struct image_store *s, const char *image_id, char **out, hull_error_t *err);
/* Removes the image ref resolves to, with all its tags.  A missing image is success (0, and
 * *removed false if removed non-NULL).  Layers are deleted once no image and no user holds
 * them. */
int image_remove(struct image_store *s, const char *ref, bool *removed, hull_error_t *err);
int image_set_pinned(struct image_store *s, const char *image_id, bool pinned, hull_error_t *err);

struct image_fs_usage {
    char *mountpoint; /* <root>/images */
    uint64_t used_bytes;
    uint64_t inodes_used;
};
int image_fs_usage(struct image_store *s, struct image_fs_usage *out, hull_error_t *err);

/* ---- for containers ------------------------------------------------------------------------ */
/* Marks image_id in use (one reference per call).  RemoveImage of an image in use hides it
 * (untagged, not listed, not found by name) but keeps its record and layers, across restarts
 * too, until the last image_release(); image_lowerdirs() and image_acquire() still find it by
 * its id.  After a restart, call image_acquire() again for each container, then image_gc()
 * once: it deletes hidden images nobody re-acquired and unused layers. */
int image_acquire(struct image_store *s, const char *image_id, hull_error_t *err);
void image_release(struct image_store *s, const char *image_id);
void image_gc(struct image_store *s);

/* The overlay lower directories of image_id, topmost first (as overlayfs lowerdir wants), as
 * short relative names "l/<short>" to be resolved from image_store_dir(), and as absolute paths.
 * NULL-terminated lists; free with hull_strv_free. */
int image_lowerdirs(struct image_store *s, const char *image_id, char ***short_names,
                    char ***abs_paths, hull_error_t *err);
/* Mounts an overlay of image_id's layers at target, with upperdir/workdir (both NULL: a
 * read-only mount).  The lowerdir option uses the short names, resolved relative to the store
 * (in a short-lived child that chdirs), so images with hundreds of layers fit in one mount.
 * extra_opts (may be NULL) is appended, e.g. "volatile". */
int image_overlay_mount(struct image_store *s, const char *image_id, const char *upperdir,
                        const char *workdir, const char *target, const char *extra_opts,
                        hull_error_t *err);
/* The same for a pod user namespace (upperdir/workdir NULL: read-only): each layer is an
 * id-mapped clone (through userns_fd, see
 * mount_setattr(2) MOUNT_ATTR_IDMAP) held only while the overlay is mounted, so the mapped root
 * owns what root owns in the image; files written land in upperdir with the host ids.  The
 * clones are detached mounts: nothing but the overlay is left to unmount. */
int image_overlay_mount_idmapped(struct image_store *s, const char *image_id, const char *upperdir,
                                 const char *workdir, const char *target, int userns_fd,
                                 hull_error_t *err);

/* hull_strv_free under its old name (image/overlay.c still calls it). */

#endif
