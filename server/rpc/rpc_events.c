/* CRI GetContainerEvents: the stream of the event hub (server/events/), each event with the
 * status of its pod and of the pod's containers. */
#include "server/container/container.h"
#include "server/events/events.h"
#include "server/pod/pod.h"
#include "server/rpc/handlers.h"

#include <errno.h>

static Runtime__V1__PodSandboxStatus *pod_status(struct rpc_call *call, const char *pod_id)
{
    struct sandbox *sb = NULL;
    _cleanup_error_ hull_error_t e = NULL;
    if (pod_id == NULL || pod_id[0] == '\0' ||
        sandbox_lookup(rpc_server(call), pod_id, &sb, &e) < 0)
        return NULL;
    Runtime__V1__PodSandboxStatus *st = sandbox_status_message(call, sb);
    sandbox_unref(sb);
    return st;
}

int rpc_get_container_events(struct rpc_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **resp, hull_error_t *err)
{
    struct hull_server *srv = rpc_server(call);
    struct event_sub *sub = events_subscribe(srv);
    /* the headers tell the client that its subscription is live: no event after this point is
     * missed */
    int r = rpc_stream_begin(call, err);
    while (r == 0 && !rpc_call_cancelled(call)) {
        struct container_event ev;
        int got = events_next(sub, 250, &ev);
        if (got == -EPIPE) {
            r = hull_error_setx(err, ENOSPC, "event subscriber fell too far behind");
            break;
        }
        if (got == 0)
            continue;
        struct rpc_mark mark = rpc_mark(call);
        Runtime__V1__ContainerEventResponse m = RUNTIME__V1__CONTAINER_EVENT_RESPONSE__INIT;
        m.container_id = rpc_strdup(call, ev.container_id);
        m.container_event_type = (Runtime__V1__ContainerEventType)ev.type;
        m.created_at = ev.created_ns;
        m.pod_sandbox_status = pod_status(call, ev.pod_id);
        struct container_snapshot **l = NULL;
        size_t n = 0;
        container_list(srv, ev.pod_id, &l, &n, NULL);
        m.containers_statuses = rpc_alloc(call, (n + 1) * sizeof(void *));
        for (size_t i = 0; i < n; i++)
            m.containers_statuses[m.n_containers_statuses++] = container_status_message(call, l[i]);
        container_snapshot_list_free(l, n);
        container_event_free(&ev);
        r = rpc_stream_send(call, &m.base, err);
        rpc_release_to(call, mark);
        if (r < 0)
            break;
    }
    events_unsubscribe(srv, sub);
    if (r == -ECANCELED) {
        hull_error_free(err);
        r = 0;
    }
    return r;
}
