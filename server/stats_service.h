/* The stats service of hulld (stats_service.c): state the CRI stats handlers share. */
#ifndef HULL_SERVER_STATS_SERVICE_H
#define HULL_SERVER_STATS_SERVICE_H

#include "server/stats.h"

struct hull_server;

int stats_service_init(struct hull_server *srv, hull_error_t *err);
void stats_service_fini(struct hull_server *srv);
/* The cgroup reader, NULL when no cgroup hierarchy is mounted. */
struct stats_cgroups *stats_service_cgroups(struct hull_server *srv);
/* Swaps in the new sample for key ("c/<id>", "p/<id>") and computes nano-cores against the
 * previous one; false when there is none (or it cannot be compared). */
bool stats_service_nano_cores(struct hull_server *srv, const char *key, struct stats_cpu_sample cur,
                              uint64_t *out);

#endif
