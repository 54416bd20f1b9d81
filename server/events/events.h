/* server/events/: the event hub behind GetContainerEvents.  The server object owns it
 * (hull_server.events, created by server_init); the pod and container areas publish, the gRPC
 * edge subscribes.  Every subscriber has a bounded queue; one that falls more than
 * EVENTS_QUEUE_MAX events behind is dropped (its stream ends with an error). */
#ifndef HULL_SERVER_EVENTS_H
#define HULL_SERVER_EVENTS_H

#include <stdint.h>

#include "common/common.h"

struct hull_server;
struct event_hub;

struct event_hub *events_hub_new(void);
void events_hub_free(struct event_hub *h);

struct container_event {
    char *container_id;
    char *pod_id;
    int type; /* Runtime__V1__ContainerEventType */
    int64_t created_ns;
};
struct event_sub;
struct event_sub *events_subscribe(struct hull_server *srv);
/* Waits up to timeout_ms for the next event; 1 = got one, 0 = timeout, -EPIPE = the subscriber
 * fell too far behind and was dropped. */
int events_next(struct event_sub *sub, int timeout_ms, struct container_event *ev);
void events_unsubscribe(struct hull_server *srv, struct event_sub *sub);
void container_event_free(struct container_event *ev);
HULL_DEFINE_CLEANUP(struct container_event, container_event_free)
#define _cleanup_container_event_ __attribute__((cleanup(container_event_freep)))
/* Publishes an event to every subscriber. */
void events_publish(struct hull_server *srv, const char *container_id, const char *pod_id,
                    int type);

#endif
