/* The stats service's state: the cgroup reader of stats.c (opened once) and the previous CPU
 * sample of each container and pod, for nano-cores.  rpc_stats.c translates the messages. */
#include "server/stats_service.h"
#include "server/server.h"

#include <string.h>

#define PREV_MAX 4096

struct prev_sample {
    char key[80]; /* "c/<id>" or "p/<id>" */
    struct stats_cpu_sample cpu;
};

struct stats_service {
    struct stats_cgroups *cg; /* NULL when no cgroup is mounted */
    pthread_mutex_t mu;
    struct prev_sample *prev;
    size_t n_prev;
};

int stats_service_init(struct hull_server *srv, hull_error_t *err)
{
    struct stats_service *s = xmalloc0(sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    _cleanup_error_ hull_error_t e = NULL;
    if (stats_open(NULL, &s->cg, &e) < 0)
        log_warn("stats: %s; container and pod stats will carry no cgroup usage",
                 hull_error_msg(&e));
    else
        log_debug("stats: cgroup layout %s", stats_mode_name(stats_mode(s->cg)));
    srv->stats = s;
    return 0;
}

void stats_service_fini(struct hull_server *srv)
{
    struct stats_service *s = srv->stats;
    if (s == NULL)
        return;
    stats_close(s->cg);
    free(s->prev);
    pthread_mutex_destroy(&s->mu);
    free(s);
    srv->stats = NULL;
}

struct stats_cgroups *stats_service_cgroups(struct hull_server *srv)
{
    return srv->stats ? srv->stats->cg : NULL;
}

/* Swaps in the new sample for key and computes nano-cores against the old one. */
bool stats_service_nano_cores(struct hull_server *srv, const char *key, struct stats_cpu_sample cur,
                              uint64_t *out)
{
    struct stats_service *s = srv->stats;
    if (s == NULL)
        return false;
    bool ok = false;
    pthread_mutex_lock(&s->mu);
    struct prev_sample *slot = NULL;
    for (size_t i = 0; i < s->n_prev; i++)
        if (strcmp(s->prev[i].key, key) == 0)
            slot = &s->prev[i];
    if (slot) {
        ok = stats_cpu_nano_cores(&slot->cpu, &cur, out);
        slot->cpu = cur;
    } else {
        if (s->n_prev == PREV_MAX) {
            memmove(s->prev, s->prev + 1, (PREV_MAX - 1) * sizeof(*s->prev));
            s->n_prev--;
        }
        s->prev = xrealloc(s->prev, (s->n_prev + 1) * sizeof(*s->prev));
        slot = &s->prev[s->n_prev++];
        snprintf(slot->key, sizeof(slot->key), "%s", key);
        slot->cpu = cur;
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}
