/* The stats service's state: the host's cgroup layout (opened once; the cgroup library reads
 * the usage) and the previous CPU sample of each container and pod, for nano-cores.  rpc_stats.c
 * translates the messages. */
#include "server/stats/stats.h"
#include "server/server.h"

#include <string.h>

/* Previous samples live in an open-addressing hash table (a linear search per object made the
 * stats calls quadratic).  Samples of objects that are gone are dropped when the table fills:
 * whatever was not sampled for PREV_STALE_NS goes first. */
#define PREV_MIN_SLOTS 256 /* a power of two; the table is at most half full */
#define PREV_STALE_NS  (INT64_C(120) * 1000000000)

struct prev_sample {
    char key[80]; /* "c/<id>" or "p/<id>"; "" = free slot */
    struct stats_cpu_sample cpu;
};

struct stats_service {
    struct hull_cgroup_layout *cg; /* NULL when no cgroup is mounted */
    pthread_mutex_t mu;
    struct prev_sample *prev; /* cap slots */
    size_t n_prev, cap;
};

int stats_service_init(struct hull_server *srv, hull_error_t *err)
{
    struct stats_service *s = xmalloc0(sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    _cleanup_error_ hull_error_t e = NULL;
    s->cg = xmalloc0(sizeof(*s->cg));
    if (hull_cgroup_layout_open(NULL, s->cg, &e) < 0) {
        log_warn("stats: %s; container and pod stats will carry no cgroup usage",
                 hull_error_msg(&e));
        free(s->cg);
        s->cg = NULL;
    } else {
        log_debug("stats: cgroup layout %s", hull_cgroup_mode_name(s->cg->mode));
    }
    srv->stats = s;
    return 0;
}

void stats_service_fini(struct hull_server *srv)
{
    struct stats_service *s = srv->stats;
    if (s == NULL)
        return;
    if (s->cg)
        hull_cgroup_layout_clear(s->cg);
    free(s->cg);
    free(s->prev);
    pthread_mutex_destroy(&s->mu);
    free(s);
    srv->stats = NULL;
}

const struct hull_cgroup_layout *stats_service_cgroups(struct hull_server *srv)
{
    return srv->stats ? srv->stats->cg : NULL;
}

static size_t key_hash(const char *key)
{
    uint64_t h = UINT64_C(1469598103934665603); /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * UINT64_C(1099511628211);
    return (size_t)h;
}

static struct prev_sample *prev_slot(struct prev_sample *t, size_t cap, const char *key)
{
    for (size_t i = key_hash(key) & (cap - 1);; i = (i + 1) & (cap - 1))
        if (t[i].key[0] == '\0' || strcmp(t[i].key, key) == 0)
            return &t[i];
}

/* Rebuilds the table with the samples taken since cutoff, in cap slots. */
static void prev_rebuild(struct stats_service *s, int64_t cutoff, size_t cap)
{
    struct prev_sample *old = s->prev;
    size_t old_cap = s->cap;
    s->prev = xmalloc0(cap * sizeof(*s->prev));
    s->cap = cap;
    s->n_prev = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key[0] && old[i].cpu.monotonic_ns >= cutoff) {
            *prev_slot(s->prev, cap, old[i].key) = old[i];
            s->n_prev++;
        }
    free(old);
}

/* Swaps in the new sample for key and computes nano-cores against the old one. */
bool stats_service_nano_cores(struct hull_server *srv, const char *key, struct stats_cpu_sample cur,
                              uint64_t *out)
{
    struct stats_service *s = srv->stats;
    if (s == NULL || strlen(key) >= sizeof(s->prev[0].key))
        return false;
    bool ok = false;
    pthread_mutex_lock(&s->mu);
    if (s->prev == NULL)
        prev_rebuild(s, 0, PREV_MIN_SLOTS);
    struct prev_sample *slot = prev_slot(s->prev, s->cap, key);
    if (slot->key[0]) {
        ok = stats_cpu_nano_cores(&slot->cpu, &cur, out);
        slot->cpu = cur;
    } else {
        if (s->n_prev + 1 > s->cap / 2) {
            /* drop the samples of objects gone (not sampled for a while); grow if still full,
             * shrink back when most are gone */
            prev_rebuild(s, hull_monotonic_ns() - PREV_STALE_NS, s->cap);
            size_t cap = PREV_MIN_SLOTS;
            while (cap / 4 < s->n_prev + 1)
                cap *= 2;
            if (cap != s->cap)
                prev_rebuild(s, INT64_MIN, cap);
            slot = prev_slot(s->prev, s->cap, key);
        }
        snprintf(slot->key, sizeof(slot->key), "%s", key);
        slot->cpu = cur;
        s->n_prev++;
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}
