/* libsystemd's sd-bus, loaded with dlopen(3) the first time the systemd cgroup driver needs it.
 * hull-oci runs once per container operation: linking libsystemd (and through it libgcrypt,
 * liblzma, libzstd, liblz4) cost every command about 2 ms of dynamic loading, although only
 * the systemd driver uses the bus.  Private to common/cgroup_systemd.c: after this header the
 * sd_bus_* names used there call through the table hull_sdbus_load() filled. */
#ifndef HULL_COMMON_SDBUS_DL_H
#define HULL_COMMON_SDBUS_DL_H

#include <systemd/sd-bus.h>

#include "common/common.h"

#define HULL_SDBUS_SONAME "libsystemd.so.0"

/* every sd-bus function cgroup_systemd.c calls, with the type its header declares */
#define HULL_SDBUS_FUNCS(X)                                                                        \
    X(sd_bus_call)                                                                                 \
    X(sd_bus_call_method)                                                                          \
    X(sd_bus_error_free)                                                                           \
    X(sd_bus_error_has_name)                                                                       \
    X(sd_bus_error_is_set)                                                                         \
    X(sd_bus_flush_close_unref)                                                                    \
    X(sd_bus_get_property_string)                                                                  \
    X(sd_bus_match_signal)                                                                         \
    X(sd_bus_message_append)                                                                       \
    X(sd_bus_message_append_array)                                                                 \
    X(sd_bus_message_close_container)                                                              \
    X(sd_bus_message_new_method_call)                                                              \
    X(sd_bus_message_open_container)                                                               \
    X(sd_bus_message_read)                                                                         \
    X(sd_bus_message_unref)                                                                        \
    X(sd_bus_new)                                                                                  \
    X(sd_bus_open_system)                                                                          \
    X(sd_bus_process)                                                                              \
    X(sd_bus_set_address)                                                                          \
    X(sd_bus_slot_unref)                                                                           \
    X(sd_bus_start)                                                                                \
    X(sd_bus_wait)

struct hull_sdbus {
#define HULL_SDBUS_MEMBER(f) __typeof__(f) *f;
    HULL_SDBUS_FUNCS(HULL_SDBUS_MEMBER)
#undef HULL_SDBUS_MEMBER
};

/* Loads libsystemd once per process (thread-safe); ENOTSUP with dlerror's text when it or one
 * of its functions is missing.  Call before any sd_bus_* below. */
int hull_sdbus_load(hull_error_t *err);
/* The table hull_sdbus_load() filled (NULL before it succeeded). */
const struct hull_sdbus *hull_sdbus(void);

/* the redirection (sdbus_dl.c itself names the real symbols) */
#ifndef HULL_SDBUS_NO_REDIRECT
#define sd_bus_call                    (hull_sdbus()->sd_bus_call)
#define sd_bus_call_method             (hull_sdbus()->sd_bus_call_method)
#define sd_bus_error_free              (hull_sdbus()->sd_bus_error_free)
#define sd_bus_error_has_name          (hull_sdbus()->sd_bus_error_has_name)
#define sd_bus_error_is_set            (hull_sdbus()->sd_bus_error_is_set)
#define sd_bus_flush_close_unref       (hull_sdbus()->sd_bus_flush_close_unref)
#define sd_bus_get_property_string     (hull_sdbus()->sd_bus_get_property_string)
#define sd_bus_match_signal            (hull_sdbus()->sd_bus_match_signal)
#define sd_bus_message_append          (hull_sdbus()->sd_bus_message_append)
#define sd_bus_message_append_array    (hull_sdbus()->sd_bus_message_append_array)
#define sd_bus_message_close_container (hull_sdbus()->sd_bus_message_close_container)
#define sd_bus_message_new_method_call (hull_sdbus()->sd_bus_message_new_method_call)
#define sd_bus_message_open_container  (hull_sdbus()->sd_bus_message_open_container)
#define sd_bus_message_read            (hull_sdbus()->sd_bus_message_read)
#define sd_bus_message_unref           (hull_sdbus()->sd_bus_message_unref)
#define sd_bus_new                     (hull_sdbus()->sd_bus_new)
#define sd_bus_open_system             (hull_sdbus()->sd_bus_open_system)
#define sd_bus_process                 (hull_sdbus()->sd_bus_process)
#define sd_bus_set_address             (hull_sdbus()->sd_bus_set_address)
#define sd_bus_slot_unref              (hull_sdbus()->sd_bus_slot_unref)
#define sd_bus_start                   (hull_sdbus()->sd_bus_start)
#define sd_bus_wait                    (hull_sdbus()->sd_bus_wait)
#endif

#endif
