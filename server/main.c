/* hulld entry point: configuration, signals, the daemon, the gRPC server. */
#include "common/cgroup_systemd.h"
#include "server/metrics.h"
#include "server/server.h"

#include <grpc/grpc.h>
#include <malloc.h>
#include <signal.h>
#include <string.h>

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

    /* Two malloc arenas, not glibc's 8 per core: every thread that ever ran a call (the pool
     * grows to max_workers in bursts) otherwise keeps an arena whose freed memory stays in the
     * process.  Before any thread exists. */
    mallopt(M_ARENA_MAX, 2);

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
    if (metrics_start(&srv, &err) < 0) {
        log_error("hulld: %s", hull_error_msg(&err));
        server_fini(&srv);
        config_free(config);
        return 1;
    }
    grpc_init();
    int r = grpc_serve(&srv, argc, argv, &err);
    if (r < 0)
        log_error("hulld: %s", hull_error_msg(&err));
    metrics_stop(&srv);
    server_fini(&srv);
    grpc_shutdown();
    config_free(srv.config);
    return r < 0 ? 1 : 0;
}
