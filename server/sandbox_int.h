/* Private to the sandbox area (server/sandbox*.c). */
#ifndef HULL_SERVER_SANDBOX_INT_H
#define HULL_SERVER_SANDBOX_INT_H

#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"
#include "runtime/v1/api.pb-c.h"
#include "server/sandbox.h"

/* Starts hull-pause as PID 1 of a new PID namespace, joined to the given (pinned) namespaces
 * (NULL: keep hulld's).  It is hulld's child. */
/* userns (may be NULL): the pod's pinned user namespace, which then owns the pid namespace */
int sandbox_spawn_pause(const char *pause_path, const char *netns, const char *ipcns,
                        const char *utsns, const char *userns, pid_t *pid_out, hull_error_t *err);
/* Kills it (SIGKILL) if pid still names the process started at start_time, and reaps it. */
void sandbox_kill_pause(pid_t pid, uint64_t start_time);
/* /proc/<pid>/stat starttime, 0 when the process is gone. */
uint64_t sandbox_proc_start_time(pid_t pid);
/* True when pid is a zombie that started at start_time (our exited infra process). */
bool sandbox_proc_is_zombie(pid_t pid, uint64_t start_time);

struct hull_server;
struct sandbox;
struct cni_manager;

/* The operations behind the RPC handlers (sandbox.c). */
int sandbox_run(struct hull_server *srv, const Runtime__V1__RunPodSandboxRequest *req,
                char **id_out, hull_error_t *err);
/* Both idempotent: an unknown id is success. */
int sandbox_stop(struct hull_server *srv, const char *id, hull_error_t *err);
int sandbox_remove(struct hull_server *srv, const char *id, hull_error_t *err);
struct cni_manager *sandbox_cni(struct hull_server *srv);

/* A consistent copy of the mutable state. */
struct sandbox_snapshot {
    enum sandbox_state state;
    char **ips;
    size_t n_ips;
    pid_t pause_pid;
    bool net_done;
    char *network_name;
};
void sandbox_snapshot_get(struct sandbox *sb, struct sandbox_snapshot *s);
void sandbox_snapshot_free(struct sandbox_snapshot *s);

#endif
