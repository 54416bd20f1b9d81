/* Crash-recovery helpers shared by the sandbox and container areas (container_recover.c). */
#ifndef HULL_SERVER_RECOVER_H
#define HULL_SERVER_RECOVER_H

#include <stdbool.h>

/* Removes the cgroup rel ("/a/b") and the cgroups below it from every mounted hierarchy (v1
 * controllers, named hierarchies and the v2 one, as /proc/self/mountinfo lists them), deepest
 * first.  With kill_procs, what runs in them is SIGKILLed first; without, busy ones stay. */
void recover_cgroup_remove_all(const char *rel, bool kill_procs);

/* Finishes the pod removals a crash interrupted (sandbox.c); call once containers are loaded. */
struct hull_server;
void sandbox_recover_finish(struct hull_server *srv);

#endif
