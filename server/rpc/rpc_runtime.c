/* Runtime-wide RPCs: Version, Status, RuntimeConfig. */
#include "server/rpc/handlers.h"
#include "server/server.h"
#include "server/container/container.h"
#include "server/pod/pod.h" /* NetworkReady */

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define CRI_API_VERSION "0.1.0" /* the kubelet runtime API version string kubelet expects */

int rpc_version(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                hull_error_t *err)
{
    Runtime__V1__VersionResponse *r =
        rpc_new_message(call, &runtime__v1__version_response__descriptor);
    r->version = CRI_API_VERSION;
    r->runtime_name = "hull";
    r->runtime_version = HULL_VERSION;
    r->runtime_api_version = "v1";
    *resp = &r->base;
    return 0;
}

static bool runtime_ready(struct rpc_call *call, const char **reason, const char **message)
{
    const struct hull_config *c = rpc_config(call);
    struct stat st;
    if (stat(c->root, &st) < 0 || !S_ISDIR(st.st_mode) || access(c->root, W_OK) < 0) {
        *reason = "RootNotWritable";
        *message = rpc_printf(call, "root %s is not a writable directory", c->root);
        return false;
    }
    if (stat(c->state_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        *reason = "StateDirMissing";
        *message = rpc_printf(call, "state dir %s is missing", c->state_dir);
        return false;
    }
    return true;
}

static Runtime__V1__RuntimeCondition *condition(struct rpc_call *call, const char *type, bool ok,
                                                const char *reason, const char *msg)
{
    Runtime__V1__RuntimeCondition *c =
        rpc_new_message(call, &runtime__v1__runtime_condition__descriptor);
    c->type = (char *)type;
    c->status = ok;
    c->reason = (char *)(ok ? "" : reason);
    c->message = (char *)(ok ? "" : msg);
    return c;
}

int rpc_status(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
               hull_error_t *err)
{
    const Runtime__V1__StatusRequest *in = (const Runtime__V1__StatusRequest *)req;
    struct hull_server *srv = rpc_server(call);
    Runtime__V1__StatusResponse *r =
        rpc_new_message(call, &runtime__v1__status_response__descriptor);
    r->status = rpc_new_message(call, &runtime__v1__runtime_status__descriptor);
    r->status->n_conditions = 2;
    r->status->conditions = rpc_alloc(call, 2 * sizeof(Runtime__V1__RuntimeCondition *));
    const char *reason = "", *message = "";
    bool ok = runtime_ready(call, &reason, &message);
    r->status->conditions[0] = condition(call, "RuntimeReady", ok, reason, message);
    {
        /* NetworkReady from the CNI manager (sandbox area) */
        char *nreason = NULL, *nmessage = NULL;
        ok = sandbox_network_ready(srv, &nreason, &nmessage);
        reason = nreason ? rpc_strdup(call, nreason) : "";
        message = nmessage ? rpc_strdup(call, nmessage) : "";
        free(nreason);
        free(nmessage);
    }
    r->status->conditions[1] = condition(call, "NetworkReady", ok, reason, message);

    /* Runtime handlers: the default (empty name) plus every configured one. */
    const struct hull_config *c = rpc_config(call);
    size_t n = 2 + c->runtimes.len;
    r->runtime_handlers = rpc_alloc(call, n * sizeof(Runtime__V1__RuntimeHandler *));
    const char *names[2] = {"", "hull-oci"};
    for (size_t i = 0; i < n; i++) {
        const char *name = i < 2 ? names[i] : c->runtimes.items[i - 2].key;
        bool dup = false;
        for (size_t j = 0; j < r->n_runtime_handlers; j++)
            if (strcmp(r->runtime_handlers[j]->name, name) == 0)
                dup = true;
        if (dup)
            continue;
        Runtime__V1__RuntimeHandler *h =
            rpc_new_message(call, &runtime__v1__runtime_handler__descriptor);
        h->name = rpc_strdup(call, name);
        h->features = rpc_new_message(call, &runtime__v1__runtime_handler_features__descriptor);
        /* "rro" as the runtime's features say (hull-oci and runc 1.1+).  User namespaces work
         * with both (hulld makes the id-mapped mounts). */
        h->features->recursive_read_only_mounts = container_handler_supports_rro(srv, name);
        h->features->user_namespaces = true;
        r->runtime_handlers[r->n_runtime_handlers++] = h;
    }
    r->features = rpc_new_message(call, &runtime__v1__runtime_features__descriptor);
    r->features->supplemental_groups_policy = true;

    if (in->verbose) {
        pthread_rwlock_rdlock(&srv->config_lock);
        char *json = config_to_json(srv->config, false);
        pthread_rwlock_unlock(&srv->config_lock);
        rpc_defer(call, free, json);
        r->n_info = 2;
        r->info = rpc_alloc(call, 2 * sizeof(*r->info));
        for (int i = 0; i < 2; i++) {
            r->info[i] =
                rpc_new_message(call, &runtime__v1__status_response__info_entry__descriptor);
        }
        r->info[0]->key = "config";
        r->info[0]->value = json;
        r->info[1]->key = "version";
        r->info[1]->value = rpc_printf(call,
                                       "{\"runtimeName\":\"hull\",\"runtimeVersion\":\"%s\","
                                       "\"startedAt\":%lld}",
                                       HULL_VERSION, (long long)srv->started_ns);
    }
    *resp = &r->base;
    return 0;
}

int rpc_runtime_config(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                       hull_error_t *err)
{
    Runtime__V1__RuntimeConfigResponse *r =
        rpc_new_message(call, &runtime__v1__runtime_config_response__descriptor);
    r->linux = rpc_new_message(call, &runtime__v1__linux_runtime_configuration__descriptor);
    r->linux->cgroup_driver = config_systemd_cgroup(rpc_server(call)->config)
                                  ? RUNTIME__V1__CGROUP_DRIVER__SYSTEMD
                                  : RUNTIME__V1__CGROUP_DRIVER__CGROUPFS;
    *resp = &r->base;
    return 0;
}
