/* Operator interfaces: the Prometheus metrics endpoint and service-manager notification.
 *
 * Metrics (off unless metrics_address is set): a small HTTP/1.1 server thread answering
 * GET /metrics with the Prometheus text format, 404 otherwise.  Names follow CRI-O's with a
 * hull_ prefix: hull_operations_total{operation}, hull_operations_errors_total{operation,error},
 * hull_operations_latency_seconds{operation} (histogram), hull_image_pulls_*,
 * hull_containers{state}, hull_pod_sandboxes{state}, hull_containers_monitor_lost_total.
 * Counters are atomics updated at the gRPC edge; the gauges are computed at scrape time.
 *
 * Notification: sd_notify(3)'s protocol without libsystemd (a datagram to $NOTIFY_SOCKET, a
 * path or an abstract '@' name). */
#ifndef HULL_SERVER_METRICS_H
#define HULL_SERVER_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "server/server.h"

struct hull_metrics;

/* Creates the counters; starts the HTTP listener when config->metrics_address is non-empty
 * ("host:port", "[v6]:port", ":port" or "port", the last two on 127.0.0.1).  EINVAL bad address,
 * EADDRINUSE etc. from bind. */
int metrics_start(struct hull_server *srv, hull_error_t *err);
/* Stops the listener thread and frees everything (NULL-safe). */
void metrics_stop(struct hull_server *srv);

/* One finished RPC: method index in rpc_methods, gRPC code, duration. */
void metrics_rpc_done(struct hull_metrics *m, size_t method, int code, int64_t duration_ns);
/* One finished PullImage: bytes newly stored (0 when nothing new), success. */
void metrics_image_pull(struct hull_metrics *m, uint64_t bytes, int64_t duration_ns, bool ok);
/* A container whose monitor vanished without an exit status. */
void metrics_monitor_lost(struct hull_metrics *m);

/* The metrics text (for the endpoint and tests); caller frees. */
char *metrics_render(struct hull_server *srv, size_t *len);

/* Parses "host:port", "[v6]:port", ":port" or "port" (the last two: 127.0.0.1); port 0..65535
 * (0: any free port, logged).  The host stays as given (numeric addresses only at bind). */
int metrics_parse_address(const char *addr, char **host, int *port, hull_error_t *err);

/* sd_notify: keeps $NOTIFY_SOCKET and removes it from the environment so children (monitors,
 * OCI runtimes) never see it.  Call once, before any thread starts. */
char *notify_socket_take(void);
/* Sends state ("READY=1\nMAINPID=…") to the socket; no-op when socket is NULL/empty. */
int notify_send(const char *socket, const char *state);

#endif
