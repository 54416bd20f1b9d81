/* StopPodSandbox and RemovePodSandbox: both idempotent; a pod being stopped or removed is
 * marked busy and other operations on it wait. */
#include "server/events/events.h"
#include "server/hooks.h"
#include "server/pod/sandbox_int.h"
#include "common/crashpoint.h"

#include <errno.h>

/* Marks sb busy (waiting for another stop/remove); false when it was removed meanwhile. */
static bool begin_op(struct sandbox *sb)
{
    pthread_mutex_lock(&sb->lock);
    while (sb->busy && !sb->removed)
        pthread_cond_wait(&sb->cond, &sb->lock);
    if (sb->removed) {
        pthread_mutex_unlock(&sb->lock);
        return false;
    }
    sb->busy = true;
    pthread_mutex_unlock(&sb->lock);
    return true;
}

static void end_op(struct sandbox *sb)
{
    pthread_mutex_lock(&sb->lock);
    sb->busy = false;
    pthread_cond_broadcast(&sb->cond);
    pthread_mutex_unlock(&sb->lock);
}

static int stop_locked_op(struct sandbox *sb, bool save, hull_error_t *err)
{
    /* no new container operations; wait for running ones */
    pthread_mutex_lock(&sb->lock);
    sb->state = SANDBOX_STATE_NOTREADY;
    while (sb->holds > 0)
        pthread_cond_wait(&sb->cond, &sb->lock);
    pthread_mutex_unlock(&sb->lock);

    struct sandbox_container_hooks h;
    if (sandbox_get_hooks(sb->svc, &h) && h.stop_all) {
        int r = h.stop_all(h.opaque, sb, err);
        if (r < 0)
            return hull_error_wrap(err, "stop containers of pod sandbox \"%s\"", sb->id);
    }
    hull_crash_point("stoppod:after-containers");
    int r = sandbox_release_runtime(sb, false, err);
    _cleanup_error_ hull_error_t perr = NULL;
    if ((save || r < 0) && sandbox_persist_stopped(sb, &perr) < 0)
        log_warn("sandbox %s: %s", sb->id, hull_error_msg(&perr));
    return r;
}

int sandbox_stop(struct hull_server *srv, const char *id, hull_error_t *err)
{
    _cleanup_sandbox_ struct sandbox *sb = NULL;
    _cleanup_error_ hull_error_t lerr = NULL;
    int r = sandbox_lookup(srv, id, &sb, &lerr);
    if (r == -ENOENT) {
        /* already gone: stop is idempotent */
        log_debug("StopPodSandbox: %s", hull_error_msg(&lerr));
        return 0;
    }
    if (r < 0) {
        hull_error_setx(err, hull_error_status(&lerr), "%s", hull_error_msg(&lerr));
        return r;
    }
    if (sandbox_get_state(sb) == SANDBOX_STATE_CREATING)
        return hull_error_setx(err, EBUSY, "pod sandbox \"%s\" is still being created", sb->id);
    if (!begin_op(sb))
        return 0;
    bool was_ready = sandbox_get_state(sb) == SANDBOX_STATE_READY;
    r = stop_locked_op(sb, true, err);
    if (r == 0 && was_ready)
        hooks_stop_pod(srv, sb);
    end_op(sb);
    if (was_ready)
        events_publish(srv, sb->id, sb->id,
                       RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
    if (r == 0)
        log_info("sandbox %s: stopped", sb->id);
    return r;
}

int sandbox_remove(struct hull_server *srv, const char *id, hull_error_t *err)
{
    _cleanup_sandbox_ struct sandbox *sb = NULL;
    _cleanup_error_ hull_error_t lerr = NULL;
    int r = sandbox_lookup(srv, id, &sb, &lerr);
    if (r == -ENOENT)
        return 0; /* idempotent */
    if (r < 0) {
        hull_error_setx(err, hull_error_status(&lerr), "%s", hull_error_msg(&lerr));
        return r;
    }
    if (sandbox_get_state(sb) == SANDBOX_STATE_CREATING)
        return hull_error_setx(err, EBUSY, "pod sandbox \"%s\" is still being created", sb->id);
    if (!begin_op(sb))
        return 0;
    /* from here on the removal is owed: a restart finishes it */
    bool was_ready = sandbox_get_state(sb) == SANDBOX_STATE_READY;
    pthread_mutex_lock(&sb->lock);
    bool was_removing = sb->removing;
    sb->removing = true;
    r = was_removing ? 0 : sandbox_persist_locked(sb, err);
    pthread_mutex_unlock(&sb->lock);
    if (r < 0) {
        end_op(sb);
        return hull_error_wrap(err, "remove pod sandbox \"%s\"", sb->id);
    }
    hull_crash_point("removepod:after-intent");
    r = stop_locked_op(sb, false, err);
    if (r == 0 && was_ready)
        hooks_stop_pod(srv, sb);
    if (was_ready)
        events_publish(srv, sb->id, sb->id,
                       RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
    hull_crash_point("removepod:after-stop");
    if (r == 0) {
        struct sandbox_container_hooks h;
        if (sandbox_get_hooks(sb->svc, &h) && h.remove_all) {
            r = h.remove_all(h.opaque, sb, err);
            if (r < 0)
                hull_error_wrap(err, "remove containers of pod sandbox \"%s\"", sb->id);
        }
    }
    hull_crash_point("removepod:after-containers");
    if (r == 0)
        r = sandbox_release_storage(sb, false, err);
    if (r == 0) {
        hooks_remove_pod(srv, sb);
        sandbox_index_remove(sb->svc, sb);
    }
    end_op(sb);
    if (r == 0) {
        log_info("sandbox %s: removed", sb->id);
        events_publish(srv, sb->id, sb->id,
                       RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT);
    }
    return r;
}
