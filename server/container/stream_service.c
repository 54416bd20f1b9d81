/* hulld's streaming service: starts the streaming server (stream/) from the configuration with
 * hulld's backend: exec/attach come from the container area, the pod network namespace from
 * the sandbox area. */
#include "server/container/container_internal.h"
#include "server/pod/pod.h"
#include "server/server.h"
#include "stream/stream.h"

#include <errno.h>
#include <string.h>

struct hulld_stream_backend {
    struct hull_server *srv;
    struct stream_backend containers;
};

static int hulld_netns_path(void *data, const char *sandbox_id, char **path, hull_error_t *err)
{
    struct hulld_stream_backend *b = data;
    _cleanup_sandbox_ struct sandbox *sb = NULL;
    int r = sandbox_lookup(b->srv, sandbox_id, &sb, err);
    if (r < 0)
        return r;
    if (sandbox_get_state(sb) != SANDBOX_STATE_READY)
        return hull_error_setx(err, EBUSY, "pod sandbox \"%s\" is not ready", sandbox_id);
    const char *p = sandbox_netns_path(sb);
    /* host network: the daemon's own namespace */
    *path = xstrdup(p ? p : "/proc/self/ns/net");
    return 0;
}

static int hulld_check(void *data, const struct stream_request *req, hull_error_t *err)
{
    struct hulld_stream_backend *b = data;
    if (req->kind == STREAM_PORTFORWARD) {
        _cleanup_free_ char *path = NULL;
        return hulld_netns_path(data, req->id, &path, err);
    }
    if (b->containers.check)
        return b->containers.check(b->containers.data, req, err);
    if (b->containers.exec == NULL)
        return hull_error_setx(err, ENOENT, "container \"%s\" not found", req->id);
    return 0;
}

static int hulld_exec(void *data, const struct stream_request *req,
                      const struct stream_winsize *size, struct stream_process *out,
                      hull_error_t *err)
{
    struct hulld_stream_backend *b = data;
    if (b->containers.exec == NULL)
        return hull_error_setx(err, ENOENT, "container \"%s\" not found", req->id);
    return b->containers.exec(b->containers.data, req, size, out, err);
}

static int hulld_attach(void *data, const struct stream_request *req, struct stream_process *out,
                        hull_error_t *err)
{
    struct hulld_stream_backend *b = data;
    if (b->containers.attach == NULL)
        return hull_error_setx(err, ENOENT, "container \"%s\" not found", req->id);
    return b->containers.attach(b->containers.data, req, out, err);
}

static void hulld_destroy(void *data)
{
    struct hulld_stream_backend *b = data;
    if (b->containers.destroy)
        b->containers.destroy(b->containers.data);
    free(b);
}

int stream_service_init(struct hull_server *srv, hull_error_t *err)
{
    const struct hull_config *c = srv->config;
    struct hulld_stream_backend *hb = xmalloc0(sizeof(*hb));
    hb->srv = srv;
    container_stream_backend(srv, &hb->containers);
    struct stream_backend b = {
        .data = hb,
        .check = hulld_check,
        .exec = hulld_exec,
        .attach = hulld_attach,
        .netns_path = hulld_netns_path,
        .destroy = hulld_destroy,
    };
    struct stream_options o = {
        .address = c->stream_address,
        .port = (int)c->stream_port,
        .idle_timeout_s = (long)c->stream_idle_timeout,
        .tls_cert = c->stream_tls_cert,
        .tls_key = c->stream_tls_key,
    };
    if (c->stream_port < 0 || c->stream_port > 65535) {
        free(hb);
        return hull_error_setx(err, EINVAL, "stream_port: %lld is not a port", c->stream_port);
    }
    int r = stream_server_start(&o, &b, &srv->stream, err);
    if (r < 0)
        free(hb);
    return r;
}

void stream_service_fini(struct hull_server *srv)
{
    stream_server_stop(srv->stream);
    srv->stream = NULL;
}
