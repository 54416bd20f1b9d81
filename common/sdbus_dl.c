/* libsystemd loaded on first use: see sdbus_dl.h. */
#define HULL_SDBUS_NO_REDIRECT
#include "common/sdbus_dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

/* Filled once, read-only afterwards: the process-wide view of one shared library, like the
 * dynamic linker's own tables (a per-caller copy would dlopen it again for nothing). */
static struct hull_sdbus sdbus_table;
static const struct hull_sdbus *sdbus_ready;
static char sdbus_failure[256];
static pthread_once_t sdbus_once = PTHREAD_ONCE_INIT;

static void sdbus_open(void)
{
    /* never dlclose'd: the table points into it for the rest of the process */
    void *h = dlopen(HULL_SDBUS_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(sdbus_failure, sizeof(sdbus_failure), "%s", dlerror());
        return;
    }
#define HULL_SDBUS_SYM(f)                                                                          \
    if ((*(void **)&sdbus_table.f = dlsym(h, #f)) == NULL) {                                       \
        snprintf(sdbus_failure, sizeof(sdbus_failure), "%s: no %s", HULL_SDBUS_SONAME, #f);        \
        return;                                                                                    \
    }
    HULL_SDBUS_FUNCS(HULL_SDBUS_SYM)
#undef HULL_SDBUS_SYM
    sdbus_ready = &sdbus_table;
}

int hull_sdbus_load(hull_error_t *err)
{
    pthread_once(&sdbus_once, sdbus_open);
    if (sdbus_ready == NULL)
        return hull_error_setx(err, ENOTSUP, "the systemd cgroup driver needs %s: %s",
                               HULL_SDBUS_SONAME, sdbus_failure);
    return 0;
}

const struct hull_sdbus *hull_sdbus(void)
{
    return sdbus_ready;
}
