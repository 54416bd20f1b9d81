/* Internals shared by the files of image/ (not an interface: use image.h). */
#ifndef HULL_IMAGE_INTERNAL_H
#define HULL_IMAGE_INTERNAL_H

#include <pthread.h>

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
};
struct registry_config *registry_config_copy(const struct image_registry_config *c);
void registry_config_free(struct registry_config *c);

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
/* The configured cap on one unpacked layer's file data (0: none). */
uint64_t registry_session_layer_cap(const struct registry_session *s);

/* GET a manifest by tag or digest. *media_type from Content-Type (or NULL). */
int registry_get_manifest(struct registry_session *s, const char *reference, size_t max,
                          char **body, size_t *len, char **media_type, hull_error_t *err);
/* GET a blob into fd, verified against digest and size (size < 0: unknown); EILSEQ on a
 * mismatch.  fd is a file (from offset 0; truncated on retries), or with stream a socket that a
 * consumer reads as the bytes come: each byte is sent once, even across resumed or restarted
 * transfers, and a consumer that stops reading does not stop the verification. */
int registry_get_blob(struct registry_session *s, const char *digest, int64_t size, int fd,
                      bool stream, hull_error_t *err);

#endif
