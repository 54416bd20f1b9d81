/* CRI Exec, Attach and PortForward: validate the request, check the target exists, and hand
 * out a single-use URL on the streaming server (stream.c).  Also the hulld backend of the
 * streaming server: exec/attach come from the container area, the pod network namespace from
 * the sandbox area. */
#include "server/container.h"
#include "server/handlers.h"
#include "server/sandbox.h"
#include "server/server.h"
#include "server/stream.h"

#include <errno.h>
#include <string.h>

struct hulld_stream_backend {
    struct hull_server *srv;
    struct stream_backend containers;
};

static int hulld_netns_path(void *data, const char *sandbox_id, char **path, hull_error_t *err)
{
    struct hulld_stream_backend *b = data;
    struct sandbox *sb = NULL;
    int r = sandbox_lookup(b->srv, sandbox_id, &sb, err);
    if (r < 0)
        return r;
    if (sandbox_get_state(sb) != SANDBOX_STATE_READY) {
        sandbox_unref(sb);
        return hull_error_setx(err, EBUSY, "pod sandbox \"%s\" is not ready", sandbox_id);
    }
    const char *p = sandbox_netns_path(sb);
    /* host network: the daemon's own namespace */
    *path = xstrdup(p ? p : "/proc/self/ns/net");
    sandbox_unref(sb);
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

int stream_init(struct hull_server *srv, hull_error_t *err)
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

void stream_fini(struct hull_server *srv)
{
    stream_server_stop(srv->stream);
    srv->stream = NULL;
}

/* Shared tail of the three handlers: validate, ask the backend, register, answer the URL. */
static int stream_url(struct rpc_call *call, const struct stream_request *sr, char **url,
                      hull_error_t *err)
{
    struct hull_server *srv = rpc_server(call);
    if (srv->stream == NULL)
        return hull_error_setx(err, EAGAIN, "the streaming server is not running");
    int r = stream_request_validate(sr, err);
    if (r < 0)
        return r;
    r = stream_server_check(srv->stream, sr, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *u = NULL;
    r = stream_server_url(srv->stream, sr, &u, err);
    if (r < 0)
        return r;
    *url = rpc_strdup(call, u);
    return 0;
}

int rpc_exec(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
             hull_error_t *err)
{
    const Runtime__V1__ExecRequest *r = (const Runtime__V1__ExecRequest *)req;
    char **cmd = rpc_alloc(call, sizeof(char *) * (r->n_cmd + 1));
    for (size_t i = 0; i < r->n_cmd; i++)
        cmd[i] = r->cmd[i];
    struct stream_request sr = {
        .kind = STREAM_EXEC,
        .id = r->container_id,
        .cmd = r->n_cmd ? cmd : NULL,
        .tty = r->tty,
        .use_stdin = r->stdin,
        .use_stdout = r->stdout,
        .use_stderr = r->stderr,
    };
    Runtime__V1__ExecResponse *out = rpc_new_message(call, &runtime__v1__exec_response__descriptor);
    int ret = stream_url(call, &sr, &out->url, err);
    if (ret < 0)
        return ret;
    *resp = &out->base;
    return 0;
}

int rpc_attach(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
               hull_error_t *err)
{
    const Runtime__V1__AttachRequest *r = (const Runtime__V1__AttachRequest *)req;
    struct stream_request sr = {
        .kind = STREAM_ATTACH,
        .id = r->container_id,
        .tty = r->tty,
        .use_stdin = r->stdin,
        .use_stdout = r->stdout,
        .use_stderr = r->stderr,
    };
    Runtime__V1__AttachResponse *out =
        rpc_new_message(call, &runtime__v1__attach_response__descriptor);
    int ret = stream_url(call, &sr, &out->url, err);
    if (ret < 0)
        return ret;
    *resp = &out->base;
    return 0;
}

int rpc_port_forward(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                     hull_error_t *err)
{
    const Runtime__V1__PortForwardRequest *r = (const Runtime__V1__PortForwardRequest *)req;
    struct stream_request sr = {
        .kind = STREAM_PORTFORWARD,
        .id = r->pod_sandbox_id,
        .ports = r->port,
        .n_ports = r->n_port,
    };
    Runtime__V1__PortForwardResponse *out =
        rpc_new_message(call, &runtime__v1__port_forward_response__descriptor);
    int ret = stream_url(call, &sr, &out->url, err);
    if (ret < 0)
        return ret;
    *resp = &out->base;
    return 0;
}
