/* CRI Exec, Attach and PortForward: validate the request, check the target exists, and hand
 * out a single-use URL on the streaming server (stream/stream.h, started by stream_service.c). */
#include "server/rpc/handlers.h"
#include "server/server.h"
#include "stream/stream.h"

#include <errno.h>
#include <string.h>

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
