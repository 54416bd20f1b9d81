/* Tearing a pod down: its processes, network and namespaces (sandbox_release_runtime), then its
 * files, cgroup and record (sandbox_release_storage).  For StopPodSandbox, RemovePodSandbox, the
 * rollback of a failed RunPodSandbox and recovery. */
#include "server/pod/sandbox_int.h"
#include "common/cgroup_systemd.h"

#include <errno.h>
#include <string.h>
#include <sys/mount.h>

/* Stops the pod's processes and releases its network and namespaces.  With `force` (rollback,
 * recovery of half-created pods) errors are logged and ignored. */
int sandbox_release_runtime(struct sandbox *sb, bool force, hull_error_t *err)
{
    struct sandbox_service *svc = sb->svc;
    pthread_mutex_lock(&sb->lock);
    pid_t pid = sb->pause_pid;
    uint64_t start = sb->pause_start;
    bool need_del = !sb->host_net && sb->net_attempted && !sb->net_done;
    _cleanup_free_ char *netname = sb->network_name ? xstrdup(sb->network_name) : NULL;
    pthread_mutex_unlock(&sb->lock);

    if (pid > 0) {
        sandbox_kill_pause(pid, start);
        pthread_mutex_lock(&sb->lock);
        sb->pause_pid = 0;
        sb->pause_start = 0;
        sb->pause_child = false;
        pthread_mutex_unlock(&sb->lock);
    }
    if (need_del) {
        /* the config was validated when the pod was created (and recorded) */
        struct run_params p = {0};
        _cleanup_error_ hull_error_t perr = NULL;
        if (sandbox_network_params(sb->config, &p, &perr) < 0)
            log_warn("sandbox %s: %s", sb->id, hull_error_msg(&perr));
        _cleanup_free_ char *cidr = cni_manager_pod_cidr(svc->cni);
        struct cni_attachment a;
        sandbox_fill_attachment(sb, &p, cidr, &a);
        struct cni_network *net = NULL;
        _cleanup_error_ hull_error_t nerr = NULL;
        if (cni_manager_network(svc->cni, &net, &nerr) < 0)
            net = NULL; /* DEL then relies on the cache */
        _cleanup_error_ hull_error_t derr = NULL;
        int r = cni_del(cni_manager_exec(svc->cni), net, netname, &a, &derr);
        cni_network_unref(net);
        free(p.ports);
        if (r < 0 && !force) {
            /* kubelet retries StopPodSandbox/RemovePodSandbox (UNAVAILABLE); after
             * cni_del_max_failures failures in a row the pod is let go, as containerd and
             * CRI-O let go of pods whose teardown cannot succeed (docs: README, CNI) */
            long long max = svc->config ? svc->config->cni_del_max_failures : 0;
            pthread_mutex_lock(&sb->lock);
            int failures = ++sb->del_failures;
            pthread_mutex_unlock(&sb->lock);
            if (max <= 0 || failures < max) {
                _cleanup_free_ char *of = max > 0 ? xasprintf(" of %lld", max) : xstrdup("");
                return hull_error_setx(err, EAGAIN,
                                       "tear down network of pod sandbox \"%s\" (attempt %d%s): %s",
                                       sb->id, failures, of, hull_error_msg(&derr));
            }
            log_error("sandbox %s: giving up on the network teardown after %d failed attempts "
                      "(cni_del_max_failures); its CNI cache entry stays in %s/cni: %s",
                      sb->id, failures, svc->root, hull_error_msg(&derr));
        } else if (r < 0) {
            log_warn("sandbox %s: network teardown: %s", sb->id, hull_error_msg(&derr));
        }
        pthread_mutex_lock(&sb->lock);
        sb->net_done = true;
        pthread_mutex_unlock(&sb->lock);
    }
    const char *pins[] = {sb->pidns, sb->netns, sb->ipcns, sb->utsns, sb->userns};
    for (size_t i = 0; i < 5; i++) {
        _cleanup_error_ hull_error_t e = NULL;
        if (pins[i] && cni_ns_remove(pins[i], &e) < 0) {
            if (!force) {
                hull_error_setx(err, hull_error_status(&e), "%s", hull_error_msg(&e));
                return -hull_error_status(&e);
            }
            log_warn("sandbox %s: %s", sb->id, hull_error_msg(&e));
        }
    }
    if (!sb->host_ipc) {
        if (umount2(sb->shm_path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) {
            if (!force)
                return hull_error_set(err, errno, "unmount `%s`", sb->shm_path);
            log_warn("sandbox %s: unmount shm: %s", sb->id, strerror(errno));
        }
        pthread_mutex_lock(&sb->lock);
        sb->shm_mounted = false;
        pthread_mutex_unlock(&sb->lock);
    }
    return 0;
}

/* Removes the pod's files, cgroup and record (after release_runtime). */
int sandbox_release_storage(struct sandbox *sb, bool force, hull_error_t *err)
{
    struct sandbox_service *svc = sb->svc;
    if (sb->cgroup_created) {
        _cleanup_error_ hull_error_t e = NULL;
        int r = hull_systemd_path_form(sb->cgroup_parent)
                    ? sandbox_slice_remove(sb->cgroup_parent, &e)
                    : sandbox_cgroup_remove(NULL, 0, sb->cgroup_parent, &e);
        if (r < 0)
            log_warn("sandbox %s: %s", sb->id, hull_error_msg(&e));
        /* and from the hierarchies the runtime used too (the v2 one of a hybrid host), with
         * what is left below it; a rollback also kills what still runs there */
        sandbox_cgroup_remove_all(sb->cgroup_parent, force);
    } else if (sb->cgroup_parent && *sb->cgroup_parent) {
        /* kubelet's pod cgroup stays (kubelet removes it), the infra leaf hull made goes */
        sandbox_cgroup_remove_infra(NULL, 0, sb->cgroup_parent);
    }
    const char *dirs[] = {sb->run_dir, sb->dir};
    for (size_t i = 0; i < 2; i++) {
        _cleanup_error_ hull_error_t e = NULL;
        if (hull_rm_rf(dirs[i], &e) < 0) {
            if (!force) {
                hull_error_setx(err, hull_error_status(&e), "%s", hull_error_msg(&e));
                return hull_error_wrap(err, "remove pod sandbox \"%s\"", sb->id);
            }
            log_warn("sandbox %s: %s", sb->id, hull_error_msg(&e));
        }
    }
    _cleanup_error_ hull_error_t e = NULL;
    if (store_remove(svc->store, STORE_KIND, sb->id, &e) < 0) {
        if (!force) {
            hull_error_setx(err, hull_error_status(&e), "%s", hull_error_msg(&e));
            return -hull_error_status(&e);
        }
        log_warn("sandbox %s: %s", sb->id, hull_error_msg(&e));
    }
    return 0;
}
