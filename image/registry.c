/* Registry v2 client over libcurl: endpoints (mirrors in order, then the origin), anonymous,
 * Basic and Bearer auth (WWW-Authenticate challenges, tokens cached per scope), retries with
 * backoff on 5xx and network errors, clear errors for 401/403/404. */

#include "image/internal.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_ATTEMPTS    3
#define MAX_ERROR_BODY  4096
#define DEFAULT_TIMEOUT 60L
#define DEFAULT_UNSIZED (1ULL << 30)

/* A value that may go into a request header or URL as is: no control characters (CR/LF would
 * inject headers) and, unless space_ok, no spaces. */
static bool header_value_ok(const char *s, size_t n, bool space_ok)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || (c == ' ' && !space_ok))
            return false;
    }
    return true;
}

/* ---- configuration copies ------------------------------------------------------------------ */
struct registry_config *registry_config_copy(const struct image_registry_config *c)
{
    struct registry_config *r = xmalloc0(sizeof(*r));
    if (c == NULL) {
        r->mirror_hosts = hull_strv_dup_n(NULL, 0);
        r->mirror_urls = hull_strv_dup_n(NULL, 0);
        r->insecure = hull_strv_dup_n(NULL, 0);
        r->ca_hosts = hull_strv_dup_n(NULL, 0);
        r->ca_files = hull_strv_dup_n(NULL, 0);
        r->timeout_s = DEFAULT_TIMEOUT;
        r->low_speed = 1;
        r->max_unsized_blob = DEFAULT_UNSIZED;
        return r;
    }
    r->mirror_hosts = hull_strv_dup_n(c->mirror_hosts, c->n_mirrors);
    r->mirror_urls = hull_strv_dup_n(c->mirror_urls, c->n_mirrors);
    r->n_mirrors = c->n_mirrors;
    r->insecure = hull_strv_dup_n(c->insecure, c->n_insecure);
    r->n_insecure = c->n_insecure;
    r->ca_hosts = hull_strv_dup_n(c->ca_hosts, c->n_ca);
    r->ca_files = hull_strv_dup_n(c->ca_files, c->n_ca);
    r->n_ca = c->n_ca;
    r->timeout_s = c->timeout_s > 0 ? c->timeout_s : DEFAULT_TIMEOUT;
    r->low_speed = c->low_speed > 0 ? c->low_speed : 1;
    r->deadline_s = c->deadline_s > 0 ? c->deadline_s : 0;
    r->max_unsized_blob = c->max_unsized_blob > 0 ? c->max_unsized_blob : DEFAULT_UNSIZED;
    r->max_layer_size = c->max_layer_size;
    r->max_image_size = c->max_image_size;
    r->fs_min_free = c->fs_min_free;
    return r;
}

void registry_config_free(struct registry_config *c)
{
    if (c == NULL)
        return;
    hull_strv_free_n(c->mirror_hosts, c->n_mirrors);
    hull_strv_free_n(c->mirror_urls, c->n_mirrors);
    hull_strv_free_n(c->insecure, c->n_insecure);
    hull_strv_free_n(c->ca_hosts, c->n_ca);
    hull_strv_free_n(c->ca_files, c->n_ca);
    free(c);
}

/* ---- token cache --------------------------------------------------------------------------- */
struct token {
    char *key;
    char *value;
    int64_t expires_ns;
    struct token *next;
};

/* Also what every transfer of the store shares through libcurl: DNS answers and TLS sessions
 * (a resumed TLS session saves most of a handshake per blob). */
struct token_cache {
    pthread_mutex_t lock;
    struct token *head;
    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
};

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *opaque)
{
    (void)h;
    (void)access;
    struct token_cache *t = opaque;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&t->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *opaque)
{
    (void)h;
    struct token_cache *t = opaque;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&t->share_locks[data]);
}

struct token_cache *token_cache_new(void)
{
    struct token_cache *t = xmalloc0(sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&t->share_locks[i], NULL);
    t->share = curl_share_init();
    if (t->share) {
        curl_share_setopt(t->share, CURLSHOPT_LOCKFUNC, share_lock);
        curl_share_setopt(t->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
        curl_share_setopt(t->share, CURLSHOPT_USERDATA, t);
        curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
        curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    }
    return t;
}

void token_cache_free(struct token_cache *t)
{
    if (t == NULL)
        return;
    for (struct token *k = t->head, *n; k; k = n) {
        n = k->next;
        free(k->key);
        free(k->value);
        free(k);
    }
    if (t->share)
        curl_share_cleanup(t->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&t->share_locks[i]);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static char *token_get(struct token_cache *t, const char *key)
{
    char *r = NULL;
    int64_t now = hull_monotonic_ns();
    pthread_mutex_lock(&t->lock);
    for (struct token *k = t->head; k; k = k->next)
        if (strcmp(k->key, key) == 0 && k->expires_ns > now) {
            r = xstrdup(k->value);
            break;
        }
    pthread_mutex_unlock(&t->lock);
    return r;
}

static void token_put(struct token_cache *t, const char *key, const char *value, long ttl_s)
{
    int64_t exp = hull_monotonic_ns() + (int64_t)(ttl_s > 10 ? ttl_s - 5 : ttl_s) * 1000000000LL;
    pthread_mutex_lock(&t->lock);
    struct token **pp = &t->head;
    size_t n = 0;
    while (*pp) {
        struct token *k = *pp;
        if (strcmp(k->key, key) == 0 || n > 256) {
            *pp = k->next;
            free(k->key);
            free(k->value);
            free(k);
            continue;
        }
        n++;
        pp = &k->next;
    }
    struct token *k = xmalloc0(sizeof(*k));
    k->key = xstrdup(key);
    k->value = xstrdup(value);
    k->expires_ns = exp;
    k->next = t->head;
    t->head = k;
    pthread_mutex_unlock(&t->lock);
}

/* ---- sessions ------------------------------------------------------------------------------ */
struct endpoint {
    char *base; /* "https://host:port" (no trailing slash, no /v2) */
    char *host; /* registry host the endpoint serves (for CA lookup) */
    bool mirror;
    bool creds; /* the pull's credentials may be sent here */
    char *ca_file;
    /* auth learned from the last challenge */
    char *auth_header; /* "Authorization: …" or NULL */
};

struct registry_session {
    const struct registry_config *cfg;
    struct token_cache *tokens;
    char *repo;   /* path in the registry, "library/busybox" */
    char *domain; /* "docker.io" */
    char *basic;  /* base64 user:pass or NULL */
    char *registry_token;
    char *identity_token; /* OAuth2 refresh token */
    char cred_id[72];     /* fingerprint of the credentials, for token cache keys */
    char anon_id[72];     /* the same for no credentials (endpoints not given them) */
    int64_t deadline_ns;  /* monotonic end of the whole pull, 0 = none */
    char *user;           /* for token cache keys */
    struct endpoint *eps;
    size_t n_eps;
    size_t active;          /* endpoint that served the manifest */
    struct img_abort abort; /* fn NULL: none */
    pthread_mutex_t lock;   /* endpoints' auth headers: a pull's layer threads share them */
    long timeout_s;
};

/* The user of a Docker config "auth" value (base64 "user:password"; read leniently, as
 * Docker does). */
static char *base64_decode_user(const char *s)
{
    size_t n = strlen(s);
    char *out = xmalloc0(HULL_BASE64_DECODED_MAX(n) + 1);
    hull_base64_decode(s, n, (uint8_t *)out, true);
    char *colon = strchr(out, ':');
    if (colon)
        *colon = '\0';
    return out;
}

static bool host_is_insecure(const struct registry_config *cfg, const char *host)
{
    for (size_t i = 0; i < cfg->n_insecure; i++) {
        const char *h = cfg->insecure[i];
        if (strncmp(h, "http://", 7) == 0)
            h += 7;
        if (strcmp(h, host) == 0)
            return true;
        /* "HOST" matches HOST on any port */
        size_t hl = strlen(h);
        if (strchr(h, ':') == NULL && strncmp(host, h, hl) == 0 && host[hl] == ':')
            return true;
    }
    return false;
}

/* The host[:port] of a CRI server_address ("https://host:port/v1/" → "host:port"), with
 * Docker Hub's aliases folded to "docker.io". Caller frees. */
static char *server_host(const char *addr)
{
    const char *p = strstr(addr, "://");
    p = p ? p + 3 : addr;
    size_t n = strcspn(p, "/");
    char *h = xstrndup(p, n);
    for (char *c = h; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    if (strcmp(h, "index.docker.io") == 0 || strcmp(h, "registry-1.docker.io") == 0) {
        free(h);
        h = xstrdup("docker.io");
    }
    return h;
}

/* Whether the credentials of auth may go to an endpoint on host (a mirror is never the
 * image's own registry). */
static bool creds_for(const struct image_auth *auth, const char *host, bool mirror,
                      const char *domain)
{
    if (auth == NULL)
        return false;
    _cleanup_free_ char *h = server_host(host);
    if (auth->server_address == NULL || *auth->server_address == '\0') {
        _cleanup_free_ char *own = server_host(domain);
        return !mirror && strcmp(h, own) == 0;
    }
    _cleanup_free_ char *want = server_host(auth->server_address);
    return strcmp(h, want) == 0;
}

static const char *ca_for(const struct registry_config *cfg, const char *host)
{
    for (size_t i = 0; i < cfg->n_ca; i++)
        if (strcmp(cfg->ca_hosts[i], host) == 0)
            return cfg->ca_files[i];
    return NULL;
}

static void add_endpoint(struct registry_session *s, const char *base, const char *host,
                         bool mirror, bool creds)
{
    s->eps = xrealloc(s->eps, (s->n_eps + 1) * sizeof(*s->eps));
    struct endpoint *e = &s->eps[s->n_eps++];
    memset(e, 0, sizeof(*e));
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    if (n >= 3 && strncmp(base + n - 3, "/v2", 3) == 0)
        n -= 3;
    e->base = xstrndup(base, n);
    e->host = xstrdup(host);
    e->mirror = mirror;
    e->creds = creds;
    const char *ca = ca_for(s->cfg, host);
    e->ca_file = ca ? xstrdup(ca) : NULL;
}

int registry_session_new(const struct registry_config *cfg, struct token_cache *tokens,
                         const struct image_ref *ref, const struct image_auth *auth,
                         struct registry_session **out, hull_error_t *err)
{
    if (auth) {
        const char *v[] = {auth->auth, auth->registry_token, auth->identity_token};
        for (size_t i = 0; i < 3; i++)
            if (v[i] && !header_value_ok(v[i], strlen(v[i]), false))
                return hull_error_setx(err, EINVAL,
                                       "auth: credentials hold control characters or spaces");
    }
    struct registry_session *s = xmalloc0(sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->cfg = cfg;
    s->tokens = tokens;
    s->repo = xstrdup(ref->path);
    s->domain = xstrdup(ref->domain);
    s->timeout_s = cfg->timeout_s;
    if (cfg->deadline_s > 0)
        s->deadline_ns = hull_monotonic_ns() + (int64_t)cfg->deadline_s * 1000000000LL;
    image_sha256_digest("\n", 1, s->anon_id);
    if (auth) {
        if (auth->username && *auth->username) {
            _cleanup_free_ char *up =
                xasprintf("%s:%s", auth->username, auth->password ? auth->password : "");
            s->basic = hull_base64_encode(up, strlen(up));
            s->user = xstrdup(auth->username);
        } else if (auth->auth && *auth->auth) {
            s->basic = xstrdup(auth->auth);
            s->user = base64_decode_user(auth->auth);
        }
        if (auth->registry_token && *auth->registry_token)
            s->registry_token = xstrdup(auth->registry_token);
        if (auth->identity_token && *auth->identity_token)
            s->identity_token = xstrdup(auth->identity_token);
    }
    {
        /* tokens are cached per credentials (never shared between different secrets) */
        _cleanup_free_ char *c = xasprintf("%s\n%s", s->basic ? s->basic : "",
                                           s->identity_token ? s->identity_token : "");
        image_sha256_digest(c, strlen(c), s->cred_id);
    }
    for (size_t i = 0; i < cfg->n_mirrors; i++) {
        if (strcmp(cfg->mirror_hosts[i], ref->domain) != 0 && strcmp(cfg->mirror_hosts[i], "*"))
            continue;
        const char *u = cfg->mirror_urls[i];
        bool creds = creds_for(auth, u, true, ref->domain);
        if (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0) {
            add_endpoint(s, u, ref->domain, true, creds);
        } else {
            const char *host = u;
            _cleanup_free_ char *b =
                xasprintf("%s://%s", host_is_insecure(cfg, host) ? "http" : "https", u);
            add_endpoint(s, b, ref->domain, true, creds);
        }
    }
    const char *origin = ref->domain;
    if (strcmp(origin, "docker.io") == 0)
        origin = "registry-1.docker.io";
    _cleanup_free_ char *ob =
        xasprintf("%s://%s", host_is_insecure(cfg, ref->domain) ? "http" : "https", origin);
    bool origin_creds = creds_for(auth, ref->domain, false, ref->domain);
    if (auth && !origin_creds && (s->basic || s->registry_token || s->identity_token))
        log_info("pull %s: credentials are for `%.64s`, not sent to %s", ref->path,
                 auth->server_address ? auth->server_address : "", ref->domain);
    add_endpoint(s, ob, ref->domain, false, origin_creds);
    *out = s;
    return 0;
}

void registry_session_free(struct registry_session *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_eps; i++) {
        free(s->eps[i].base);
        free(s->eps[i].host);
        free(s->eps[i].ca_file);
        free(s->eps[i].auth_header);
    }
    free(s->eps);
    pthread_mutex_destroy(&s->lock);
    free(s->repo);
    free(s->domain);
    free(s->basic);
    free(s->registry_token);
    free(s->identity_token);
    free(s->user);
    free(s);
}

/* ---- one HTTP exchange --------------------------------------------------------------------- */
struct xfer {
    /* sink: memory (max bytes) or fd (hashing, bounded by expected size) */
    char *mem;
    size_t len, cap, max;
    int fd;
    struct image_sha256 hash;
    int64_t expect_size;
    uint64_t unsized_cap; /* fd sink without an expected size: at most this many bytes */
    uint64_t received;
    bool too_big;
    bool over_cap;
    int write_errno;
    const char *post; /* form body: POST instead of GET */
    /* stream mode: fd is a socket read by the unpacker; bytes already delivered are never
     * sent twice (a restarted transfer skips them), and a closed reader is only reported */
    bool stream;
    uint64_t delivered;
    bool sink_closed;
    bool fatal;                    /* a failure retrying cannot fix (TLS verification, protocol) */
    bool bad_header;               /* the server sent a header value with control characters */
    const struct img_abort *abort; /* NULL: the session's */
    bool aborted;
    /* resuming an interrupted blob download with a Range request */
    uint64_t resume_at; /* 0: a full request */
    bool started;       /* the first 2xx body byte of this attempt was seen */
    bool range_bad;     /* a 206 that does not start where we asked */
    long long range_start;
    /* response headers */
    char *content_type;
    char *www_auth;
    char *error_body; /* first bytes of a non-2xx body */
    size_t error_len;
    long status;
};

static void xfer_reset(struct xfer *x)
{
    free(x->mem);
    free(x->content_type);
    free(x->www_auth);
    free(x->error_body);
    int fd = x->fd;
    size_t max = x->max;
    int64_t es = x->expect_size;
    uint64_t ucap = x->unsized_cap;
    bool stream = x->stream, sink_closed = x->sink_closed;
    uint64_t delivered = x->delivered;
    const struct img_abort *abort = x->abort;
    memset(x, 0, sizeof(*x));
    x->abort = abort;
    x->fd = fd;
    x->max = max;
    x->expect_size = es;
    x->unsized_cap = ucap;
    x->stream = stream;
    x->delivered = delivered;
    x->sink_closed = sink_closed;
    image_sha256_init(&x->hash);
}

/* Clears what one attempt learnt, keeping the sink (bytes and hash so far). */
static void xfer_new_attempt(struct xfer *x)
{
    free(x->content_type);
    free(x->www_auth);
    free(x->error_body);
    x->content_type = x->www_auth = x->error_body = NULL;
    x->error_len = 0;
    x->status = 0;
    x->bad_header = false;
    x->too_big = false;
    x->over_cap = false;
    x->write_errno = 0;
    x->started = false;
    x->range_bad = false;
    x->range_start = -1;
}

static size_t header_cb(char *buf, size_t size, size_t n, void *opaque)
{
    struct xfer *x = opaque;
    size_t len = size * n;
    /* a new response (after a redirect) starts with the status line */
    if (len > 5 && strncmp(buf, "HTTP/", 5) == 0) {
        free(x->content_type);
        free(x->www_auth);
        x->content_type = x->www_auth = NULL;
        return len;
    }
    const char *colon = memchr(buf, ':', len);
    if (colon == NULL)
        return len;
    size_t klen = (size_t)(colon - buf);
    const char *v = colon + 1;
    size_t vlen = len - klen - 1;
    while (vlen && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
    bool used = (klen == 12 && strncasecmp(buf, "content-type", 12) == 0) ||
                (klen == 16 && strncasecmp(buf, "www-authenticate", 16) == 0) ||
                (klen == 13 && strncasecmp(buf, "content-range", 13) == 0) ||
                (klen == 8 && strncasecmp(buf, "location", 8) == 0);
    if (used && !header_value_ok(v, vlen, true)) {
        x->bad_header = true;
        return 0; /* aborts the transfer */
    }
    if (klen == 12 && strncasecmp(buf, "content-type", 12) == 0) {
        free(x->content_type);
        x->content_type = xstrndup(v, vlen);
        char *semi = strchr(x->content_type, ';');
        if (semi)
            *semi = '\0';
    } else if (klen == 16 && strncasecmp(buf, "www-authenticate", 16) == 0) {
        free(x->www_auth);
        x->www_auth = xstrndup(v, vlen);
    } else if (klen == 13 && strncasecmp(buf, "content-range", 13) == 0) {
        _cleanup_free_ char *cr = xstrndup(v, vlen);
        long long a = -1;
        if (sscanf(cr, "bytes %lld-", &a) == 1)
            x->range_start = a;
    }
    return len;
}

/* curl does not hand the status to the write callback; we read it with CURLINFO when the first
 * byte arrives. */
struct xfer_ctx {
    CURL *curl;
    struct xfer *x;
};

static size_t body_cb(char *buf, size_t size, size_t n, void *opaque)
{
    struct xfer_ctx *c = opaque;
    struct xfer *x = c->x;
    size_t len = size * n;
    long code = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code < 200 || code >= 300) {
        /* keep the start of an error body for the message */
        if (x->error_len < MAX_ERROR_BODY) {
            size_t take = MAX_ERROR_BODY - x->error_len < len ? MAX_ERROR_BODY - x->error_len : len;
            x->error_body = xrealloc(x->error_body, x->error_len + take + 1);
            memcpy(x->error_body + x->error_len, buf, take);
            x->error_len += take;
            x->error_body[x->error_len] = '\0';
        }
        return len;
    }
    if (!x->started) {
        x->started = true;
        if (x->fd >= 0 && code == 206) {
            if (x->resume_at == 0 || x->range_start != (long long)x->resume_at) {
                x->range_bad = true;
                return 0;
            }
        } else if (x->fd >= 0 && x->received > 0 && x->stream) {
            /* the whole blob again: hash it from the start, deliver only what is new */
            x->received = 0;
            image_sha256_init(&x->hash);
        } else if (x->fd >= 0 && x->received > 0) {
            /* the server sent the whole blob again: start over */
            if (ftruncate(x->fd, 0) < 0 || lseek(x->fd, 0, SEEK_SET) < 0) {
                x->write_errno = errno;
                return 0;
            }
            x->received = 0;
            image_sha256_init(&x->hash);
        }
    }
    uint64_t pos = x->received;
    x->received += len;
    if (x->fd >= 0 && x->expect_size < 0 && x->unsized_cap > 0 && x->received > x->unsized_cap) {
        x->over_cap = true;
        return 0;
    }
    if (x->fd >= 0 && x->stream) {
        if (x->expect_size >= 0 && x->received > (uint64_t)x->expect_size) {
            x->too_big = true;
            return 0;
        }
        image_sha256_update(&x->hash, buf, len);
        if (x->received <= x->delivered || x->sink_closed)
            return len;
        size_t skip = x->delivered > pos ? (size_t)(x->delivered - pos) : 0;
        const char *p = buf + skip;
        size_t left = len - skip;
        while (left > 0) {
            ssize_t w = send(x->fd, p, left, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                /* the unpacker stopped (it reports why); keep hashing so a corrupt blob is
                 * still named as such */
                x->sink_closed = true;
                return len;
            }
            p += w;
            left -= (size_t)w;
        }
        x->delivered = x->received;
        return len;
    }
    if (x->fd >= 0) {
        if (x->expect_size >= 0 && x->received > (uint64_t)x->expect_size) {
            x->too_big = true;
            return 0; /* abort: more bytes than the descriptor says */
        }
        image_sha256_update(&x->hash, buf, len);
        const char *p = buf;
        size_t left = len;
        while (left > 0) {
            ssize_t w = write(x->fd, p, left);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                x->write_errno = errno;
                return 0;
            }
            p += w;
            left -= (size_t)w;
        }
        return len;
    }
    if (x->len + len > x->max) {
        x->too_big = true;
        return 0;
    }
    if (x->len + len + 1 > x->cap) {
        x->cap = (x->len + len + 1) * 2;
        if (x->cap > x->max + 1)
            x->cap = x->max + 1;
        x->mem = xrealloc(x->mem, x->cap);
    }
    memcpy(x->mem + x->len, buf, len);
    x->len += len;
    x->mem[x->len] = '\0';
    return len;
}

static int xferinfo_cb(void *opaque, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    struct xfer *x = opaque;
    if (x->abort && x->abort->fn && x->abort->fn(x->abort->arg)) {
        x->aborted = true;
        return 1; /* CURLE_ABORTED_BY_CALLBACK */
    }
    return 0;
}

void registry_session_set_abort(struct registry_session *s, const struct img_abort *abort)
{
    s->abort = abort ? *abort : (struct img_abort){0};
}

/* Performs one GET; returns 0 when an HTTP answer came (x->status set), or a negative errno for
 * network-level failures (message in err). */
static int http_get(struct registry_session *s, const struct endpoint *ep, const char *url,
                    const char *accept, const char *authz, struct xfer *x, hull_error_t *err)
{
    long left_ms = 0;
    if (s->deadline_ns > 0) {
        int64_t left = s->deadline_ns - hull_monotonic_ns();
        if (left <= 0) {
            x->fatal = true;
            return hull_error_setx(err, ETIMEDOUT, "pull deadline (%ld s) exceeded",
                                   s->cfg->deadline_s);
        }
        left_ms = (long)(left / 1000000) + 1;
    }
    if (x->abort == NULL && s->abort.fn)
        x->abort = &s->abort;
    if (x->abort && x->abort->fn && x->abort->fn(x->abort->arg)) {
        x->fatal = true;
        return hull_error_setx(err, ECANCELED, "GET %s: abandoned (no caller wants it)", url);
    }
    CURL *curl = curl_easy_init();
    if (curl == NULL)
        return hull_error_setx(err, ENOMEM, "curl_easy_init failed");
    struct curl_slist *hdrs = NULL;
    _cleanup_free_ char *acc = accept ? xasprintf("Accept: %s", accept) : NULL;
    if (acc)
        hdrs = curl_slist_append(hdrs, acc);
    if (authz)
        hdrs = curl_slist_append(hdrs, authz);
    _cleanup_free_ char *range =
        x->resume_at > 0 ? xasprintf("Range: bytes=%llu-", (unsigned long long)x->resume_at) : NULL;
    if (range)
        hdrs = curl_slist_append(hdrs, range);
    hdrs = curl_slist_append(hdrs, "Docker-Distribution-API-Version: registry/2.0");
    char errbuf[CURL_ERROR_SIZE] = "";
    struct xfer_ctx ctx = {.curl = curl, .x = x};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "hull/" HULL_VERSION);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    /* proxies: libcurl honours http_proxy, https_proxy, HTTPS_PROXY, ALL_PROXY, no_proxy */
    /* a registry trickling below low_speed for timeout_s is treated as stalled */
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, s->cfg->low_speed);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, s->timeout_s);
    if (left_ms > 0)
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, left_ms);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &ctx);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "identity");
    if (ep && ep->ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, ep->ca_file);
    if (x->post)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, x->post);
    if (s->tokens->share)
        curl_easy_setopt(curl, CURLOPT_SHARE, s->tokens->share);
    if (x->abort) {
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, x);
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    x->status = code;
    if (rc == CURLE_OK)
        return 0;
    if (x->aborted) {
        x->fatal = true;
        return hull_error_setx(err, ECANCELED, "GET %s: abandoned (no caller wants it)", url);
    }
    if (x->bad_header) {
        x->fatal = true;
        return hull_error_setx(err, EBADMSG, "GET %s: a response header holds control characters",
                               url);
    }
    if (x->over_cap)
        return hull_error_setx(err, EFBIG,
                               "GET %s: blob without a size in its descriptor is larger than "
                               "the %llu-byte cap",
                               url, (unsigned long long)x->unsized_cap);
    if (x->too_big)
        return hull_error_setx(err, x->fd >= 0 ? EILSEQ : EMSGSIZE,
                               "GET %s: more data than expected", url);
    if (x->range_bad)
        return hull_error_setx(err, EIO, "GET %s: server answered the wrong range", url);
    if (x->write_errno)
        return hull_error_set(err, x->write_errno, "GET %s: write", url);
    /* the transfer itself failed (TLS, connection cut, nothing or too little received): the
     * registry could not be reached the way it was asked, an UNAVAILABLE for the caller */
    int e = ECONNRESET;
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR ||
        rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE ||
        rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT ||
        rc == CURLE_TOO_MANY_REDIRECTS)
        x->fatal = true;
    if (rc == CURLE_UNSUPPORTED_PROTOCOL) {
        /* e.g. a redirect to file:// (only http and https are followed) */
        e = EPROTONOSUPPORT;
    } else if (rc == CURLE_TOO_MANY_REDIRECTS) {
        e = EAGAIN; /* the registry is misbehaving: UNAVAILABLE, as a 5xx */
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        e = ETIMEDOUT;
        if (s->deadline_ns > 0 && hull_monotonic_ns() >= s->deadline_ns) {
            x->fatal = true;
            return hull_error_setx(err, e, "GET %s: pull deadline (%ld s) exceeded", url,
                                   s->cfg->deadline_s);
        }
    } else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
        e = ECONNREFUSED;
    return hull_error_setx(err, e, "GET %s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

char *img_challenge_param(const char *h, const char *key)
{
    size_t kl = strlen(key);
    const char *p = h;
    while ((p = strcasestr(p, key)) != NULL) {
        if ((p == h || p[-1] == ' ' || p[-1] == ',') && p[kl] == '=') {
            p += kl + 1;
            if (*p == '"') {
                p++;
                const char *e = strchr(p, '"');
                return e ? xstrndup(p, (size_t)(e - p)) : xstrdup(p);
            }
            size_t n = strcspn(p, ", ");
            return xstrndup(p, n);
        }
        p += kl;
    }
    return NULL;
}

static char *url_escape(const char *s)
{
    char *esc = curl_easy_escape(NULL, s, 0);
    char *r = xstrdup(esc ? esc : "");
    curl_free(esc);
    return r;
}

/* Fetches a bearer token for the challenge; returns "Authorization: Bearer …". */
static int fetch_token(struct registry_session *s, const struct endpoint *ep, const char *chal,
                       bool skip_cache, char **authz, hull_error_t *err)
{
    _cleanup_free_ char *realm = img_challenge_param(chal, "realm");
    _cleanup_free_ char *service = img_challenge_param(chal, "service");
    _cleanup_free_ char *scope = img_challenge_param(chal, "scope");
    if (realm == NULL)
        return hull_error_setx(err, EBADMSG, "registry %s: bearer challenge without a realm",
                               ep->base);
    if (strncmp(realm, "https://", 8) && strncmp(realm, "http://", 7))
        return hull_error_setx(err, EPROTONOSUPPORT,
                               "registry %s: bearer realm is not an http(s) URL", ep->base);
    if (!header_value_ok(realm, strlen(realm), false) ||
        (service && !header_value_ok(service, strlen(service), true)) ||
        (scope && !header_value_ok(scope, strlen(scope), true)))
        return hull_error_setx(err, EBADMSG,
                               "registry %s: bearer challenge holds control characters", ep->base);
    /* a registry reached over TLS may not send the token request, which carries the pull's
     * credentials, over plain HTTP, unless that host is an insecure registry itself */
    if (strncmp(ep->base, "https://", 8) == 0 && strncmp(realm, "http://", 7) == 0) {
        _cleanup_free_ char *rh = xstrndup(realm + 7, strcspn(realm + 7, "/?#"));
        if (!host_is_insecure(s->cfg, rh))
            return hull_error_setx(err, EPROTONOSUPPORT,
                                   "registry %s: refusing its token realm %s over plain HTTP "
                                   "(list %s in insecure_registries to allow it)",
                                   ep->base, realm, rh);
    }
    if (scope == NULL)
        scope = xasprintf("repository:%s:pull", s->repo);
    _cleanup_free_ char *key = xasprintf("%s|%s|%s|%s", realm, service ? service : "", scope,
                                         ep->creds ? s->cred_id : s->anon_id);
    const char *user_basic = ep->creds ? s->basic : NULL;
    const char *identity = ep->creds ? s->identity_token : NULL;
    /* after a 401 to a token, that token is stale: ask for a new one */
    _cleanup_free_ char *cached = skip_cache ? NULL : token_get(s->tokens, key);
    if (cached) {
        *authz = xasprintf("Authorization: Bearer %s", cached);
        return 0;
    }
    _cleanup_free_ char *esc_scope = url_escape(scope);
    _cleanup_free_ char *esc_service = service ? url_escape(service) : NULL;
    _cleanup_free_ char *url =
        xasprintf("%s%sscope=%s%s%s", realm, strchr(realm, '?') ? "&" : "?", esc_scope,
                  esc_service ? "&service=" : "", esc_service ? esc_service : "");
    _cleanup_free_ char *basic =
        user_basic ? xasprintf("Authorization: Basic %s", user_basic) : NULL;
    _cleanup_free_ char *form = NULL;
    if (identity) {
        /* OAuth2: trade the refresh token for an access token (POST, form encoded) */
        _cleanup_free_ char *esc_tok = url_escape(identity);
        form = xasprintf("grant_type=refresh_token&refresh_token=%s&client_id=hull&scope=%s%s%s",
                         esc_tok, esc_scope, esc_service ? "&service=" : "",
                         esc_service ? esc_service : "");
        free(url);
        url = xstrdup(realm);
        free(basic);
        basic = NULL;
    }
    struct xfer x = {.fd = -1, .max = 1 << 20, .expect_size = -1};
    int r = 0;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        xfer_reset(&x);
        x.post = form;
        hull_error_free(err);
        r = http_get(s, NULL, url, "application/json", basic, &x, err);
        if (r == 0 && x.status < 500)
            break;
        if (r == 0)
            r = hull_error_setx(err, EIO, "token server %s: HTTP %ld", realm, x.status);
        struct timespec ts = {0, 200000000L * (attempt + 1)};
        nanosleep(&ts, NULL);
    }
    if (r < 0)
        goto out;
    if (x.status == 401 || x.status == 403) {
        r = hull_error_setx(err, EACCES, "token server %s refused credentials for %s (HTTP %ld)",
                            realm, scope, x.status);
        goto out;
    }
    if (x.status != 200) {
        r = hull_error_setx(err, EIO, "token server %s: HTTP %ld", realm, x.status);
        goto out;
    }
    {
        _cleanup_yajl_ yajl_val doc = NULL;
        r = hull_json_parse(x.mem ? x.mem : "", "token response", &doc, err);
        if (r < 0)
            goto out;
        const char *tok = hull_json_get_string(doc, "token", NULL);
        if (tok == NULL || *tok == '\0')
            tok = hull_json_get_string(doc, "access_token", NULL);
        if (tok == NULL || *tok == '\0') {
            r = hull_error_setx(err, EBADMSG, "token server %s: no token in the answer", realm);
            goto out;
        }
        if (!header_value_ok(tok, strlen(tok), false)) {
            /* it goes into the Authorization header: CR/LF would add headers of its own */
            r = hull_error_setx(err, EBADMSG,
                                "token server %s: the token holds control characters or spaces",
                                realm);
            goto out;
        }
        long long ttl = hull_json_get_int(doc, "expires_in", 60);
        if (ttl < 10)
            ttl = 60;
        token_put(s->tokens, key, tok, (long)ttl);
        *authz = xasprintf("Authorization: Bearer %s", tok);
    }
out:
    xfer_reset(&x);
    return r;
}

static const char *error_code_of(struct xfer *x)
{
    if (x->error_body == NULL)
        return NULL;
    if (strstr(x->error_body, "MANIFEST_UNKNOWN"))
        return "manifest unknown";
    if (strstr(x->error_body, "BLOB_UNKNOWN"))
        return "blob unknown";
    if (strstr(x->error_body, "NAME_UNKNOWN"))
        return "repository name not known to registry";
    if (strstr(x->error_body, "DENIED"))
        return "access denied";
    if (strstr(x->error_body, "UNAUTHORIZED"))
        return "authentication required";
    return NULL;
}

/* One request against one endpoint, with auth challenges answered and retries on 5xx/network.
 * Returns 0 on a 2xx answer; ENOENT for 404, EACCES for 401/403, EIO etc. otherwise. */
static int endpoint_get(struct registry_session *s, struct endpoint *ep, const char *path,
                        const char *accept, struct xfer *x, hull_error_t *err)
{
    _cleanup_free_ char *url = xasprintf("%s/v2/%s", ep->base, path);
    int auth_rounds = 0; /* 401s answered: the second one bypasses the token cache */
    bool resumable = false;
    int attempt = 0;
    for (;;) {
        if (x->fd >= 0 && resumable && x->received > 0 && x->expect_size > 0 &&
            x->received < (uint64_t)x->expect_size) {
            /* go on where the broken transfer stopped */
            x->resume_at = x->received;
            xfer_new_attempt(x);
            log_info("resuming %s at byte %llu", url, (unsigned long long)x->resume_at);
        } else {
            xfer_reset(x);
            if (x->fd >= 0 && !x->stream) {
                if (ftruncate(x->fd, 0) < 0 || lseek(x->fd, 0, SEEK_SET) < 0)
                    return hull_error_set(err, errno, "truncate download");
            }
        }
        resumable = false;
        hull_error_free(err);
        pthread_mutex_lock(&s->lock);
        _cleanup_free_ char *authz = ep->auth_header ? xstrdup(ep->auth_header) : NULL;
        pthread_mutex_unlock(&s->lock);
        int r = http_get(s, ep, url, accept, authz, x, err);
        bool retry = false;
        if (r < 0) {
            if (r == -EILSEQ || r == -EMSGSIZE || r == -EFBIG || x->fatal)
                return r;
            retry = true;
            resumable = !x->range_bad && x->write_errno == 0 && x->status >= 200 && x->status < 300;
        } else if (x->status == 401 &&
                   (auth_rounds == 0 ||
                    (auth_rounds == 1 && (s->registry_token == NULL || !ep->creds) &&
                     strncasecmp(x->www_auth ? x->www_auth : "", "bearer", 6) == 0))) {
            auth_rounds++;
            const char *ch = x->www_auth ? x->www_auth : "";
            char *fresh = NULL;
            const char *basic = ep->creds ? s->basic : NULL;
            if (s->registry_token && ep->creds) {
                fresh = xasprintf("Authorization: Bearer %s", s->registry_token);
            } else if (strncasecmp(ch, "bearer", 6) == 0) {
                r = fetch_token(s, ep, ch, auth_rounds > 1, &fresh, err);
                if (r < 0)
                    return hull_error_wrap(err, "authenticate to %s", ep->base);
            } else if (strncasecmp(ch, "basic", 5) == 0 && basic) {
                fresh = xasprintf("Authorization: Basic %s", basic);
            } else {
                return hull_error_setx(err, EACCES, "GET %s: HTTP 401 unauthorized%s", url,
                                       basic              ? ""
                                       : s->basic == NULL ? " (no credentials given)"
                                                          : " (the credentials given are for "
                                                            "another registry)");
            }
            pthread_mutex_lock(&s->lock);
            free(ep->auth_header);
            ep->auth_header = fresh;
            pthread_mutex_unlock(&s->lock);
            continue;
        } else if (x->status == 401) {
            return hull_error_setx(err, EACCES,
                                   "GET %s: HTTP 401 unauthorized: credentials refused", url);
        } else if (x->status == 403) {
            return hull_error_setx(err, EACCES, "GET %s: HTTP 403 forbidden", url);
        } else if (x->status == 404) {
            const char *c = error_code_of(x);
            return hull_error_setx(err, ENOENT, "GET %s: HTTP 404 not found%s%s", url,
                                   c ? ": " : "", c ? c : "");
        } else if (x->status == 429 || x->status >= 500) {
            r = hull_error_setx(err, x->status == 429 ? EAGAIN : EIO, "GET %s: HTTP %ld", url,
                                x->status);
            retry = true;
        } else if (x->status < 200 || x->status >= 300) {
            const char *c = error_code_of(x);
            return hull_error_setx(err, EIO, "GET %s: HTTP %ld%s%s", url, x->status, c ? ": " : "",
                                   c ? c : "");
        } else {
            return 0;
        }
        if (retry) {
            if (++attempt >= MAX_ATTEMPTS)
                return r;
            /* backoff: 250 ms, 1 s */
            struct timespec ts = {attempt >= 2 ? 1 : 0, attempt >= 2 ? 0 : 250000000L};
            nanosleep(&ts, NULL);
            log_debug("retrying %s after: %s", url, hull_error_msg(err));
        }
    }
}

/* Tries the endpoints from `start` on; the first 2xx wins. The last error is reported, but a
 * mirror's error never hides the origin's. */
static int session_get(struct registry_session *s, size_t start, const char *path,
                       const char *accept, struct xfer *x, size_t *used, hull_error_t *err)
{
    int r = -EIO;
    for (size_t k = 0; k < s->n_eps; k++) {
        size_t i = (start + k) % s->n_eps;
        hull_error_free(err);
        r = endpoint_get(s, &s->eps[i], path, accept, x, err);
        if (r == 0) {
            if (used)
                *used = i;
            return 0;
        }
        if (r == -EILSEQ || r == -EFBIG || r == -ECANCELED)
            return r;
        if (s->deadline_ns > 0 && hull_monotonic_ns() >= s->deadline_ns)
            return r;
        if (s->n_eps > 1 && k + 1 < s->n_eps)
            log_info("registry endpoint %s failed, trying the next: %s", s->eps[i].base,
                     hull_error_msg(err));
    }
    return r;
}

#define MANIFEST_ACCEPT                                                                            \
    "application/vnd.oci.image.index.v1+json, "                                                    \
    "application/vnd.docker.distribution.manifest.list.v2+json, "                                  \
    "application/vnd.oci.image.manifest.v1+json, "                                                 \
    "application/vnd.docker.distribution.manifest.v2+json;q=0.9, "                                 \
    "application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.1"

int registry_get_manifest(struct registry_session *s, const char *reference, size_t max,
                          char **body, size_t *len, char **media_type, hull_error_t *err)
{
    _cleanup_free_ char *path = xasprintf("%s/manifests/%s", s->repo, reference);
    struct xfer x = {.fd = -1, .max = max, .expect_size = -1};
    int r = session_get(s, s->active, path, MANIFEST_ACCEPT, &x, &s->active, err);
    if (r < 0) {
        xfer_reset(&x);
        return r;
    }
    *body = x.mem ? hull_steal(x.mem) : xstrdup("");
    *len = x.len;
    *media_type = x.content_type ? hull_steal(x.content_type) : NULL;
    xfer_reset(&x);
    return 0;
}

int registry_get_blob(struct registry_session *s, const char *digest, int64_t size, int fd,
                      bool stream, hull_error_t *err)
{
    return registry_get_blob_capped(s, digest, size, 0, fd, stream, NULL, err);
}

int registry_get_blob_capped(struct registry_session *s, const char *digest, int64_t size,
                             uint64_t unsized_cap, int fd, bool stream,
                             const struct img_abort *abort, hull_error_t *err)
{
    _cleanup_free_ char *path = xasprintf("%s/blobs/%s", s->repo, digest);
    struct xfer x = {.fd = fd,
                     .expect_size = size,
                     .unsized_cap = unsized_cap ? unsized_cap : s->cfg->max_unsized_blob,
                     .stream = stream,
                     .abort = abort};
    int r = -EIO;
    /* a digest mismatch is retried once (a flaky proxy), then fails the pull; a stream was
     * consumed already and cannot be retried */
    for (int attempt = 0; attempt < (stream ? 1 : 2); attempt++) {
        hull_error_free(err);
        r = session_get(s, s->active, path, NULL, &x, NULL, err);
        if (r == 0) {
            char got[72];
            image_sha256_final_digest(&x.hash, got);
            if (size >= 0 && x.received != (uint64_t)size)
                r = hull_error_setx(err, EILSEQ, "blob %s: size mismatch: expected %lld, got %llu",
                                    digest, (long long)size, (unsigned long long)x.received);
            else if (strcmp(got, digest) != 0)
                r = hull_error_setx(err, EILSEQ, "blob %s: digest mismatch: content hashes to %s",
                                    digest, got);
            else
                break;
        }
        if (r != -EILSEQ)
            break;
    }
    xfer_reset(&x);
    return r;
}

uint64_t registry_session_layer_cap(const struct registry_session *s)
{
    return s->cfg->max_layer_size;
}

uint64_t registry_session_image_cap(const struct registry_session *s)
{
    return s->cfg->max_image_size;
}

uint64_t registry_session_min_free(const struct registry_session *s)
{
    return s->cfg->fs_min_free;
}
