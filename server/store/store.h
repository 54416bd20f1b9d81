/* The state store: one JSON file per object, <root>/<kind>/<id>.json, written atomically
 * (temp file, fsync, rename, fsync dir).  On load, left-over temp files of a crashed write are
 * removed (the previous version stays), and torn or corrupt files are reported and moved to
 * <root>/<kind>/.corrupt/ — never fatal. */
#ifndef HULL_SERVER_STORE_H
#define HULL_SERVER_STORE_H

#include "common/common.h"

struct hull_store;

int store_open(const char *root, struct hull_store **out, hull_error_t *err);
void store_close(struct hull_store *s);
HULL_DEFINE_CLEANUP(struct hull_store, store_close)
#define _cleanup_store_ __attribute__((cleanup(store_closep)))

/* kind and id must be safe path components (hull_is_safe_component). */
int store_save(struct hull_store *s, const char *kind, const char *id, const char *json, size_t len,
               hull_error_t *err);
/* The same without waiting for the disk (no fsync): for intent records ("creating",
 * "removing") that only a hulld crash must find.  A power loss takes every side effect they
 * guard that lives in volatile places (mounts, processes, cgroups, /run) with it, and the
 * start-up sweep removes the persistent leftovers no record owns; the final record that
 * follows is durable. */
int store_save_intent(struct hull_store *s, const char *kind, const char *id, const char *json,
                      size_t len, hull_error_t *err);
/* Removing a missing object is success.  Not waited on the disk either (see store.c). */
int store_remove(struct hull_store *s, const char *kind, const char *id, hull_error_t *err);
/* Reads one object; ENOENT when absent. */
int store_get(struct hull_store *s, const char *kind, const char *id, yajl_val *out,
              hull_error_t *err);

/* Calls cb for every valid object of kind, in id order.  A callback error is reported (with the
 * object's id) and loading goes on; the count of objects set aside is returned in *corrupt. */
typedef int (*store_load_cb)(void *opaque, const char *id, yajl_val doc, hull_error_t *err);
int store_load(struct hull_store *s, const char *kind, store_load_cb cb, void *opaque,
               size_t *loaded, size_t *corrupt, hull_error_t *err);

#endif
