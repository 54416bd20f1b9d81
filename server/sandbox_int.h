/* Private to the sandbox area (server/sandbox*.c). */
#ifndef HULL_SERVER_SANDBOX_INT_H
#define HULL_SERVER_SANDBOX_INT_H

#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"
#include "runtime/v1/api.pb-c.h"
#include "server/sandbox.h"

/* The infra process launcher (sandbox_infra.c).  mnt_dir is any existing directory: the
 * child mounts its tiny root there, in its own mount namespace only. */
struct sandbox_infra;
int sandbox_infra_new(const char *pause_path, const char *mnt_dir, struct sandbox_infra **out,
                      hull_error_t *err);
void sandbox_infra_free(struct sandbox_infra *in);
/* Starts hull-pause as PID 1 of a new PID namespace, joined to the given (pinned) namespaces
 * (NULL: keep hulld's), confined like a container: its own mount namespace with an empty
 * read-only root, no capabilities, no_new_privs, the RuntimeDefault seccomp profile, no
 * descriptor but stdio on /dev/null.  It is hulld's child.  userns (may be NULL): the pod's
 * pinned user namespace, which then owns its pid and mount namespaces. */
int sandbox_spawn_pause(struct sandbox_infra *in, const char *netns, const char *ipcns,
                        const char *utsns, const char *userns, pid_t *pid_out, hull_error_t *err);
/* The syscall numbers its seccomp filter allows (every other one fails with EPERM). */
size_t sandbox_infra_syscalls(const int **out);
/* Its seccomp filter (classic BPF, *len instructions), for tests. */
const void *sandbox_infra_filter(const struct sandbox_infra *in, unsigned short *len);
/* Kills it (SIGKILL) if pid still names the process started at start_time, and reaps it. */
void sandbox_kill_pause(pid_t pid, uint64_t start_time);
/* /proc/<pid>/stat starttime, 0 when the process is gone. */
uint64_t sandbox_proc_start_time(pid_t pid);
/* True when pid is a zombie that started at start_time (our exited infra process). */
bool sandbox_proc_is_zombie(pid_t pid, uint64_t start_time);
/* Whether pid is still the process started at start_time and not a zombie, from one read of
 * its stat (the check every state query of a pod with an infra process makes); reaps it when
 * it is our exited child. */
bool sandbox_proc_alive(pid_t pid, uint64_t start_time);
/* For a child of this process not reaped by anyone yet: 1 running, 0 exited (and reaped now),
 * -1 not (or no longer) our child, so the caller must fall back to sandbox_proc_alive.  One
 * waitid(), no /proc read: until it is reaped its pid can not be reused. */
int sandbox_child_alive(pid_t pid);

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
