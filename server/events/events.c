/* The container event hub: every subscriber (a GetContainerEvents stream) has a bounded queue;
 * a subscriber that falls more than EVENTS_QUEUE_MAX events behind is dropped (its stream ends
 * with an error) instead of making hulld's memory grow. */
#include "server/events/events.h"
#include "server/server.h"

#include <pthread.h>

#include <errno.h>
#include <string.h>
#include <time.h>

#define EVENTS_QUEUE_MAX 4096

struct event_node {
    struct event_node *next;
    struct container_event ev;
};

struct event_sub {
    struct event_sub *next;
    struct event_node *head, *tail;
    size_t len;
    bool overflow;
    pthread_cond_t cv;
    pthread_mutex_t *mu; /* the hub's lock, which guards this queue */
};

/* The hub lives in the server object (hull_server.events). */
struct event_hub {
    pthread_mutex_t mu;
    struct event_sub *subs;
};

struct event_hub *events_hub_new(void)
{
    struct event_hub *h = xmalloc0(sizeof(*h));
    pthread_mutex_init(&h->mu, NULL);
    return h;
}

static void sub_drain(struct event_sub *s)
{
    for (struct event_node *n = s->head, *nx; n; n = nx) {
        nx = n->next;
        container_event_free(&n->ev);
        free(n);
    }
    s->head = s->tail = NULL;
    s->len = 0;
}

void events_hub_free(struct event_hub *h)
{
    if (h == NULL)
        return;
    for (struct event_sub *s = h->subs, *nx; s; s = nx) {
        nx = s->next;
        sub_drain(s);
        pthread_cond_destroy(&s->cv);
        free(s);
    }
    pthread_mutex_destroy(&h->mu);
    free(h);
}

void container_event_free(struct container_event *ev)
{
    free(ev->container_id);
    free(ev->pod_id);
    ev->container_id = ev->pod_id = NULL;
}

struct event_sub *events_subscribe(struct hull_server *srv)
{
    struct event_hub *h = srv->events;
    struct event_sub *s = xmalloc0(sizeof(*s));
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &attr);
    pthread_condattr_destroy(&attr);
    s->mu = &h->mu;
    pthread_mutex_lock(&h->mu);
    s->next = h->subs;
    h->subs = s;
    pthread_mutex_unlock(&h->mu);
    return s;
}

void events_unsubscribe(struct hull_server *srv, struct event_sub *sub)
{
    struct event_hub *h = srv->events;
    pthread_mutex_lock(&h->mu);
    for (struct event_sub **p = &h->subs; *p; p = &(*p)->next) {
        if (*p == sub) {
            *p = sub->next;
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
    sub_drain(sub);
    pthread_cond_destroy(&sub->cv);
    free(sub);
}

int events_next(struct event_sub *sub, int timeout_ms, struct container_event *ev)
{
    pthread_mutex_t *mu = sub->mu;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(mu);
    while (sub->head == NULL && !sub->overflow)
        if (pthread_cond_timedwait(&sub->cv, mu, &ts) == ETIMEDOUT)
            break;
    int r = 0;
    if (sub->overflow) {
        r = -EPIPE;
    } else if (sub->head) {
        struct event_node *n = sub->head;
        sub->head = n->next;
        if (sub->head == NULL)
            sub->tail = NULL;
        sub->len--;
        *ev = n->ev;
        free(n);
        r = 1;
    }
    pthread_mutex_unlock(mu);
    return r;
}

void events_publish(struct hull_server *srv, const char *container_id, const char *pod_id, int type)
{
    struct event_hub *h = srv->events;
    int64_t now = hull_now_ns();
    pthread_mutex_lock(&h->mu);
    for (struct event_sub *s = h->subs; s; s = s->next) {
        if (s->overflow)
            continue;
        if (s->len >= EVENTS_QUEUE_MAX) {
            s->overflow = true;
            sub_drain(s);
            pthread_cond_signal(&s->cv);
            continue;
        }
        struct event_node *n = xmalloc0(sizeof(*n));
        n->ev.container_id = xstrdup(container_id);
        n->ev.pod_id = xstrdup(pod_id ? pod_id : "");
        n->ev.type = type;
        n->ev.created_ns = now;
        if (s->tail)
            s->tail->next = n;
        else
            s->head = n;
        s->tail = n;
        s->len++;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&h->mu);
}
