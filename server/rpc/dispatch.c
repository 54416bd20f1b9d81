/* The dispatch table: every CRI runtime.v1 method of server/methods.def, its request/response
 * types and handler.  A NULL handler answers UNIMPLEMENTED naming the method. */
#include "server/rpc/handlers.h"

#include <string.h>

#define ENTRY(svc, name, req, resp, kind, fn)                                                      \
    {"/runtime.v1." #svc "/" #name, &runtime__v1__##req##__descriptor,                             \
     &runtime__v1__##resp##__descriptor, kind, fn},
#define METHOD(svc, name, req, resp, kind, fn)           ENTRY(svc, name, req, resp, kind, fn)
#define METHOD_UNIMPLEMENTED(svc, name, req, resp, kind) ENTRY(svc, name, req, resp, kind, NULL)

const struct rpc_method rpc_methods[] = {
#include "server/rpc/methods.def"
};

#undef METHOD
#undef METHOD_UNIMPLEMENTED
#undef ENTRY

const size_t rpc_methods_count = sizeof(rpc_methods) / sizeof(rpc_methods[0]);

const char *rpc_method_name(size_t i)
{
    const char *p = strrchr(rpc_methods[i].path, '/');
    return p ? p + 1 : rpc_methods[i].path;
}
