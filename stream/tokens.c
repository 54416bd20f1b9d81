/* Tokens: the request behind each URL the CRI handlers hand out, single-use and expiring. */
#include "stream/internal.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

void stream_request_free(struct stream_request *r)
{
    if (!r)
        return;
    free(r->id);
    for (size_t i = 0; r->cmd && r->cmd[i]; i++)
        free(r->cmd[i]);
    free(r->cmd);
    free(r->ports);
    free(r);
}

static struct stream_request *request_copy(const struct stream_request *src)
{
    struct stream_request *r = xmalloc0(sizeof(*r));
    *r = *src;
    r->id = xstrdup(src->id ? src->id : "");
    r->cmd = NULL;
    if (src->cmd) {
        size_t n = 0;
        while (src->cmd[n])
            n++;
        r->cmd = xmalloc0(sizeof(char *) * (n + 1));
        for (size_t i = 0; i < n; i++)
            r->cmd[i] = xstrdup(src->cmd[i]);
    }
    r->ports = NULL;
    if (src->n_ports) {
        r->ports = xmalloc0(sizeof(int32_t) * src->n_ports);
        memcpy(r->ports, src->ports, sizeof(int32_t) * src->n_ports);
    }
    return r;
}

int stream_request_validate(const struct stream_request *req, hull_error_t *err)
{
    const char *what = req->kind == STREAM_PORTFORWARD ? "pod sandbox id" : "container id";
    if (req->id == NULL || req->id[0] == '\0')
        return hull_error_setx(err, EINVAL, "%s is required", what);
    if (strlen(req->id) > 256)
        return hull_error_setx(err, EINVAL, "%s is too long", what);
    switch (req->kind) {
    case STREAM_EXEC:
        if (req->cmd == NULL || req->cmd[0] == NULL)
            return hull_error_setx(err, EINVAL, "cmd is required");
        /* fallthrough */
    case STREAM_ATTACH:
        if (req->tty && req->use_stderr)
            return hull_error_setx(err, EINVAL, "tty and stderr cannot both be true");
        if (!req->use_stdin && !req->use_stdout && !req->use_stderr)
            return hull_error_setx(err, EINVAL, "one of stdin, stdout, or stderr must be set");
        break;
    case STREAM_PORTFORWARD:
        for (size_t i = 0; i < req->n_ports; i++)
            if (req->ports[i] <= 0 || req->ports[i] > 65535)
                return hull_error_setx(err, EINVAL, "invalid port %d", req->ports[i]);
        break;
    default:
        return hull_error_setx(err, EINVAL, "unknown stream kind");
    }
    return 0;
}

void stream_tokens_purge_locked(struct stream_server *s, int64_t now)
{
    size_t j = 0;
    for (size_t i = 0; i < s->n_pending; i++) {
        if (s->pending[i].expires_ns <= now) {
            stream_request_free(s->pending[i].req);
            continue;
        }
        s->pending[j++] = s->pending[i];
    }
    s->n_pending = j;
}

static const char *kind_path(enum stream_kind k)
{
    return k == STREAM_EXEC ? "exec" : k == STREAM_ATTACH ? "attach" : "portforward";
}

int stream_server_url(struct stream_server *s, const struct stream_request *req, char **url,
                      hull_error_t *err)
{
    int r = stream_request_validate(req, err);
    if (r < 0)
        return r;
    char id[65];
    hull_id_generate(id);
    id[32] = '\0';
    int64_t now = hull_monotonic_ns();
    pthread_mutex_lock(&s->lock);
    stream_tokens_purge_locked(s, now);
    if (s->n_pending >= STREAM_MAX_PENDING) {
        pthread_mutex_unlock(&s->lock);
        return hull_error_setx(err, ENOSPC, "too many pending streaming requests (%d)",
                               STREAM_MAX_PENDING);
    }
    struct pending_token *p = &s->pending[s->n_pending++];
    memcpy(p->token, id, 33);
    p->expires_ns = now + (int64_t)s->token_ttl_s * 1000000000LL;
    p->req = request_copy(req);
    pthread_mutex_unlock(&s->lock);
    *url = xasprintf("%s://%s:%d/%s/%s", s->tls ? "https" : "http", s->url_host, s->port,
                     kind_path(req->kind), id);
    return 0;
}

/* Removes and returns the request behind token (NULL: unknown, used or expired). */
struct stream_request *stream_token_consume_locked(struct stream_server *s, const char *token,
                                                   enum stream_kind kind)
{
    stream_tokens_purge_locked(s, hull_monotonic_ns());
    for (size_t i = 0; i < s->n_pending; i++) {
        if (strcmp(s->pending[i].token, token) == 0) {
            if (s->pending[i].req->kind != kind)
                return NULL;
            struct stream_request *req = s->pending[i].req;
            s->pending[i] = s->pending[--s->n_pending];
            return req;
        }
    }
    return NULL;
}

int stream_server_authorize(struct stream_server *s, int slot, const char *token,
                            enum stream_kind kind, struct stream_request **out)
{
    *out = NULL;
    pthread_mutex_lock(&s->lock);
    int r = 0;
    if (slot < 0 || slot >= (int)(sizeof(s->conns) / sizeof(s->conns[0])) ||
        s->conns[slot].authed) {
        r = -EINVAL;
    } else if (s->sessions >= STREAM_MAX_SESSIONS) {
        r = -EBUSY;
    } else if ((*out = stream_token_consume_locked(s, token, kind)) == NULL) {
        r = -ENOENT;
    } else {
        s->conns[slot].authed = true;
        s->unauth--;
        s->sessions++;
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}
