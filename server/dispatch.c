/* The dispatch table: every CRI runtime.v1 method of server/methods.def, its request/response
 * types and handler.  A NULL handler answers UNIMPLEMENTED naming the method. */
#include "server/handlers.h"

#include <stdio.h>
#include <string.h>

#define ENTRY(svc, name, req, resp, kind, fn)                                                      \
    {"/runtime.v1." #svc "/" #name, &runtime__v1__##req##__descriptor,                             \
     &runtime__v1__##resp##__descriptor, kind, fn},
#define METHOD(svc, name, req, resp, kind, fn)           ENTRY(svc, name, req, resp, kind, fn)
#define METHOD_UNIMPLEMENTED(svc, name, req, resp, kind) ENTRY(svc, name, req, resp, kind, NULL)

const struct rpc_method rpc_methods[] = {
#include "server/methods.def"
};

#undef METHOD
#undef METHOD_UNIMPLEMENTED
#undef ENTRY

const size_t rpc_methods_count = sizeof(rpc_methods) / sizeof(rpc_methods[0]);

const struct rpc_method *rpc_method_find(const char *path)
{
    for (size_t i = 0; i < rpc_methods_count; i++)
        if (strcmp(rpc_methods[i].path, path) == 0)
            return &rpc_methods[i];
    return NULL;
}

enum rpc_code rpc_dispatch(struct rpc_call *c, const char *path, const uint8_t *data, size_t len,
                           ProtobufCMessage **resp, char **msg)
{
    *resp = NULL;
    *msg = NULL;
    const struct rpc_method *m = rpc_method_find(path);
    if (m == NULL || m->handler == NULL) {
        *msg = xasprintf("method %s is not implemented", path);
        return RPC_UNIMPLEMENTED;
    }
    _cleanup_error_ hull_error_t serr = NULL;
    if (rpc_check_strings(m->request, data, len, &serr) < 0) {
        *msg = xasprintf("%s: %s", path, hull_error_msg(&serr));
        return RPC_INVALID_ARGUMENT;
    }
    ProtobufCMessage *req = protobuf_c_message_unpack(m->request, NULL, len, data);
    if (req == NULL) {
        *msg = xasprintf("%s: request is not a valid %s message", path, m->request->name);
        return RPC_INVALID_ARGUMENT;
    }
    enum rpc_code code = RPC_OK;
    _cleanup_error_ hull_error_t err = NULL;
    int r = m->handler(c, req, resp, &err);
    if (r < 0) {
        code = rpc_status_from_errno(err ? hull_error_status(&err) : -r);
        *msg = xstrdup(err ? hull_error_msg(&err) : strerror(-r));
        *resp = NULL;
    } else if (m->kind == RPC_UNARY && *resp == NULL) {
        code = RPC_INTERNAL;
        *msg = xasprintf("%s: handler produced no response", path);
    }
    protobuf_c_message_free_unpacked(req, NULL);
    return code;
}
