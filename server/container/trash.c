/* Deferred removal of a removed container's directories: RemoveContainer renames them into a
 * trash directory beside them (one rename each, on the same filesystem) and a background thread
 * deletes them there, as containerd's garbage collector removes snapshots after the container
 * is gone.  A hulld that stops or crashes first leaves them in the trash, which is emptied when
 * the service starts again; nothing else ever goes in it. */
#include "server/container/trash.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#define TRASH_QUIET_MS 1000
#define TRASH_BATCH_MS 10000

struct ctr_trash {
    char *dirs[CTR_TRASH_MAX];
    size_t n_dirs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool pending;    /* something was put in a trash dir since the thread last looked */
    int64_t last_ns; /* when (monotonic) */
    bool stopping;
    bool running;
    pthread_t thread;
};

/* Removes every entry of dir. */
static void empty_dir(const char *dir)
{
    size_t n;
    char **names = hull_dir_names(dir, &n);
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *path = hull_path_join(dir, names[i]);
        _cleanup_error_ hull_error_t err = NULL;
        if (hull_rm_rf(path, &err) < 0)
            log_warn("container trash: %s", hull_error_msg(&err));
        free(names[i]);
    }
    free(names);
}

static void *trash_main(void *arg)
{
    struct ctr_trash *t = arg;
    /* garbage: it yields to the calls in flight */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (!t->pending && !t->stopping)
            pthread_cond_wait(&t->cv, &t->mu);
        if (!t->pending)
            break; /* stopping, and the last removal's directories are gone */
        /* batched: once removals paused for TRASH_QUIET_MS (at most TRASH_BATCH_MS after the
         * first), so a run of removals and creations is not slowed by the deletions between
         * its calls (they wait on the same filesystem journal) */
        int64_t first = hull_monotonic_ns();
        while (!t->stopping) {
            int64_t now = hull_monotonic_ns();
            int64_t until = t->last_ns + TRASH_QUIET_MS * 1000000LL;
            if (until > first + TRASH_BATCH_MS * 1000000LL)
                until = first + TRASH_BATCH_MS * 1000000LL;
            if (now >= until)
                break;
            struct timespec ts = {until / 1000000000LL, until % 1000000000LL};
            pthread_cond_timedwait(&t->cv, &t->mu, &ts);
        }
        t->pending = false;
        pthread_mutex_unlock(&t->mu);
        for (size_t i = 0; i < t->n_dirs; i++)
            empty_dir(t->dirs[i]);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int ctr_trash_open(const char *const *dirs, size_t n, struct ctr_trash **out, hull_error_t *err)
{
    if (n > CTR_TRASH_MAX)
        return hull_error_setx(err, EINVAL, "container trash: too many directories");
    __attribute__((cleanup(ctr_trash_closep))) struct ctr_trash *t = xmalloc0(sizeof(*t));
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &attr);
    pthread_condattr_destroy(&attr);
    for (size_t i = 0; i < n; i++) {
        t->dirs[t->n_dirs++] = xstrdup(dirs[i]);
        int r = hull_mkdir_p(dirs[i], 0700, err);
        if (r == 0 && chmod(dirs[i], 0700) < 0)
            r = hull_error_set(err, errno, "chmod `%s`", dirs[i]);
        if (r < 0)
            return hull_error_wrap(err, "container trash");
    }
    /* what a stopped or crashed hulld left: emptied by the thread */
    t->pending = true;
    if (pthread_create(&t->thread, NULL, trash_main, t) != 0)
        return hull_error_setx(err, EAGAIN, "cannot start the container trash thread");
    t->running = true;
    *out = hull_steal(t);
    return 0;
}

void ctr_trash_close(struct ctr_trash *t)
{
    if (t == NULL)
        return;
    if (t->running) {
        pthread_mutex_lock(&t->mu);
        t->stopping = true;
        pthread_cond_signal(&t->cv);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->thread, NULL);
    }
    for (size_t i = 0; i < t->n_dirs; i++)
        free(t->dirs[i]);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

int ctr_trash_discard(struct ctr_trash *t, size_t k, const char *path, const char *name,
                      hull_error_t *err)
{
    if (t != NULL && k < t->n_dirs) {
        _cleanup_free_ char *to = hull_path_join(t->dirs[k], name);
        if (rename(path, to) == 0) {
            pthread_mutex_lock(&t->mu);
            t->pending = true;
            t->last_ns = hull_monotonic_ns();
            pthread_cond_signal(&t->cv);
            pthread_mutex_unlock(&t->mu);
            return 0;
        }
        if (errno == ENOENT)
            return 0;
        /* another filesystem (EXDEV), a name still in the trash (a crashed removal of the
         * same id: ENOTEMPTY / EEXIST): remove it here */
    }
    return hull_rm_rf(path, err);
}
