/* hulld entry point: configuration, signals, the daemon, the gRPC server; what the service
 * manager hears (sd_notify) and what the metrics endpoint counts at scrape time. */
#include "common/cgroup_systemd.h"
#include "server/container/container.h"
#include "server/daemon/daemon.h"
#include "server/pod/pod.h"
#include "server/rpc/rpc.h"
#include "server/stats/stats.h"

#include <grpc/grpc.h>
#include <malloc.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* ---- metrics gauges ----------------------------------------------------------------------- */
static void count_containers(void *opaque, size_t by_state[4])
{
    struct hull_server *srv = opaque;
    struct container_snapshot **l = NULL;
    size_t n = 0;
    if (container_list(srv, NULL, &l, &n, NULL) < 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (l[i]->state >= 0 && l[i]->state < 4)
            by_state[l[i]->state]++;
    container_snapshot_list_free(l, n);
}

static int count_pod(struct sandbox *sb, void *opaque)
{
    size_t *n = opaque;
    n[sandbox_get_state(sb) == SANDBOX_STATE_READY ? 0 : 1]++;
    return 0;
}

static void count_pods(void *opaque, size_t by_state[2])
{
    sandbox_foreach(opaque, count_pod, by_state);
}

/* ---- the gRPC server's hooks: sd_notify and SIGHUP ---------------------------------------- */
struct daemon_ctx {
    struct hull_server *srv;
    int argc;
    char **argv;
};

static void on_ready(void *opaque)
{
    struct daemon_ctx *d = opaque;
    _cleanup_free_ char *st = xasprintf("READY=1\nMAINPID=%d\nSTATUS=serving CRI on %s",
                                        (int)getpid(), d->srv->config->listen);
    notify_send(d->srv->notify_socket, st);
}

static void on_reload(void *opaque)
{
    struct daemon_ctx *d = opaque;
    struct hull_config *fresh = NULL;
    bool exit_now = false;
    int code = 0;
    _cleanup_error_ hull_error_t e = NULL;
    if (config_load(d->argc, d->argv, &fresh, &exit_now, &code, &e) < 0 || fresh == NULL) {
        log_error("SIGHUP: keeping the current configuration: %s", hull_error_msg(&e));
        return;
    }
    notify_send(d->srv->notify_socket, "RELOADING=1");
    server_reload(d->srv, fresh);
    notify_send(d->srv->notify_socket, "READY=1");
}

static void on_stopping(void *opaque)
{
    struct daemon_ctx *d = opaque;
    notify_send(d->srv->notify_socket, "STOPPING=1\nSTATUS=stopping");
}

int main(int argc, char **argv)
{
    struct hull_config *config = NULL;
    bool exit_now = false;
    int code = 0;
    _cleanup_error_ hull_error_t err = NULL;
    if (config_load(argc, argv, &config, &exit_now, &code, &err) < 0) {
        fprintf(stderr, "hulld: %s\n", hull_error_msg(&err));
        return code ? code : 1;
    }
    if (exit_now)
        return code;
    hull_log_set_level(hull_log_level_parse(config->log_level));
    /* the systemd driver only where systemd is PID 1 and answers on its bus */
    if (config_systemd_cgroup(config) && hull_systemd_check(&err) < 0) {
        fprintf(stderr, "hulld: cgroup_manager \"systemd\": %s\n", hull_error_msg(&err));
        config_free(config);
        return 1;
    }
    /* before any thread exists: unsetenv is not thread-safe, and no child may inherit it */
    _cleanup_free_ char *notify_socket = notify_socket_take();

    /* malloc, before any thread exists:
     * - one arena, not glibc's 8 per core: every thread that ever ran a call (the pool grows to
     *   max_workers in bursts) otherwise keeps an arena whose freed memory stays in the process
     *   (two arenas still kept about 1 MiB more after each burst than one);
     * - fixed mmap and trim thresholds.  glibc raises both as soon as a large block (a big
     *   list answer, a file read) is freed — up to twice that block's size for the trim
     *   threshold — and from then on leaves up to that much free memory at the top of each
     *   heap, which no malloc_trim(0) gives back for a non-main arena.  Blocks of 64 KiB and
     *   more get their own mapping, returned to the kernel when freed. */
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);

    /* Signals are taken synchronously by the main thread; block them before any thread
     * (gRPC's included) exists so every thread inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct hull_server srv;
    if (server_init(&srv, config, &err) < 0) {
        log_error("hulld: %s", hull_error_msg(&err));
        server_fini(&srv);
        config_free(config);
        return 1;
    }
    srv.notify_socket = notify_socket;
    const struct metrics_sources sources = {.n_operations = rpc_methods_count,
                                            .operation_name = rpc_method_name,
                                            .opaque = &srv,
                                            .count_containers = count_containers,
                                            .count_pods = count_pods};
    if (metrics_start(&srv, &sources, &err) < 0) {
        log_error("hulld: %s", hull_error_msg(&err));
        server_fini(&srv);
        config_free(config);
        return 1;
    }
    grpc_init();
    struct daemon_ctx ctx = {.srv = &srv, .argc = argc, .argv = argv};
    const struct grpc_hooks hooks = {.methods = rpc_methods,
                                     .n_methods = rpc_methods_count,
                                     .opaque = &ctx,
                                     .ready = on_ready,
                                     .reload = on_reload,
                                     .stopping = on_stopping};
    int r = grpc_serve(&srv, &hooks, &err);
    if (r < 0)
        log_error("hulld: %s", hull_error_msg(&err));
    metrics_stop(&srv);
    server_fini(&srv);
    grpc_shutdown();
    config_free(srv.config);
    return r < 0 ? 1 : 0;
}
