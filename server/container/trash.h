/* Deferred deletion of removed containers' directories (trash.c): a directory is renamed into
 * a trash directory on its own filesystem and a background thread deletes it (in batches, once
 * removals paused for a second, at most ten seconds later); the trash is
 * emptied again whenever the service starts. */
#ifndef HULL_SERVER_CONTAINER_TRASH_H
#define HULL_SERVER_CONTAINER_TRASH_H

#include "common/common.h"

#define CTR_TRASH_MAX 4

struct ctr_trash;

/* Creates (0700) and starts emptying the trash directories dirs[0..n). */
int ctr_trash_open(const char *const *dirs, size_t n, struct ctr_trash **out, hull_error_t *err);
/* Stops the thread once it deleted what was put in the trash so far (a crash leaves the rest
 * for the next start). */
void ctr_trash_close(struct ctr_trash *t);
HULL_DEFINE_CLEANUP(struct ctr_trash, ctr_trash_close)

/* Moves path to trash directory k as name (on the same filesystem) for the thread to delete;
 * deletes it here when it cannot be moved.  A missing path is success. */
int ctr_trash_discard(struct ctr_trash *t, size_t k, const char *path, const char *name,
                      hull_error_t *err);

#endif
