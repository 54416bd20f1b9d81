/* The dispatch table: every CRI runtime.v1 method, its request/response types and handler.
 * A NULL handler answers UNIMPLEMENTED naming the method. */
#include "server/handlers.h"

#include <string.h>

#define M(svc, name, req, resp, kind, fn)                                                          \
    {                                                                                              \
        "/runtime.v1." svc "/" name, &runtime__v1__##req##__descriptor,                            \
            &runtime__v1__##resp##__descriptor, kind, fn                                           \
    }

const struct rpc_method rpc_methods[] = {
    M("RuntimeService", "Version", version_request, version_response, RPC_UNARY, rpc_version),
    M("RuntimeService", "RunPodSandbox", run_pod_sandbox_request, run_pod_sandbox_response,
      RPC_UNARY, rpc_run_pod_sandbox),
    M("RuntimeService", "StopPodSandbox", stop_pod_sandbox_request, stop_pod_sandbox_response,
      RPC_UNARY, rpc_stop_pod_sandbox),
    M("RuntimeService", "RemovePodSandbox", remove_pod_sandbox_request, remove_pod_sandbox_response,
      RPC_UNARY, rpc_remove_pod_sandbox),
    M("RuntimeService", "PodSandboxStatus", pod_sandbox_status_request, pod_sandbox_status_response,
      RPC_UNARY, rpc_pod_sandbox_status),
    M("RuntimeService", "ListPodSandbox", list_pod_sandbox_request, list_pod_sandbox_response,
      RPC_UNARY, rpc_list_pod_sandbox),
    M("RuntimeService", "StreamPodSandboxes", stream_pod_sandboxes_request,
      stream_pod_sandboxes_response, RPC_SERVER_STREAM, rpc_stream_pod_sandboxes),
    M("RuntimeService", "CreateContainer", create_container_request, create_container_response,
      RPC_UNARY, rpc_create_container),
    M("RuntimeService", "StartContainer", start_container_request, start_container_response,
      RPC_UNARY, rpc_start_container),
    M("RuntimeService", "StopContainer", stop_container_request, stop_container_response, RPC_UNARY,
      rpc_stop_container),
    M("RuntimeService", "RemoveContainer", remove_container_request, remove_container_response,
      RPC_UNARY, rpc_remove_container),
    M("RuntimeService", "ListContainers", list_containers_request, list_containers_response,
      RPC_UNARY, rpc_list_containers),
    M("RuntimeService", "StreamContainers", stream_containers_request, stream_containers_response,
      RPC_SERVER_STREAM, rpc_stream_containers),
    M("RuntimeService", "ContainerStatus", container_status_request, container_status_response,
      RPC_UNARY, rpc_container_status),
    M("RuntimeService", "UpdateContainerResources", update_container_resources_request,
      update_container_resources_response, RPC_UNARY, rpc_update_container_resources),
    M("RuntimeService", "ReopenContainerLog", reopen_container_log_request,
      reopen_container_log_response, RPC_UNARY, rpc_reopen_container_log),
    M("RuntimeService", "ExecSync", exec_sync_request, exec_sync_response, RPC_UNARY,
      rpc_exec_sync),
    M("RuntimeService", "Exec", exec_request, exec_response, RPC_UNARY, rpc_exec),
    M("RuntimeService", "Attach", attach_request, attach_response, RPC_UNARY, rpc_attach),
    M("RuntimeService", "PortForward", port_forward_request, port_forward_response, RPC_UNARY,
      rpc_port_forward),
    M("RuntimeService", "ContainerStats", container_stats_request, container_stats_response,
      RPC_UNARY, rpc_container_stats),
    M("RuntimeService", "ListContainerStats", list_container_stats_request,
      list_container_stats_response, RPC_UNARY, rpc_list_container_stats),
    M("RuntimeService", "StreamContainerStats", stream_container_stats_request,
      stream_container_stats_response, RPC_SERVER_STREAM, rpc_stream_container_stats),
    M("RuntimeService", "PodSandboxStats", pod_sandbox_stats_request, pod_sandbox_stats_response,
      RPC_UNARY, rpc_pod_sandbox_stats),
    M("RuntimeService", "ListPodSandboxStats", list_pod_sandbox_stats_request,
      list_pod_sandbox_stats_response, RPC_UNARY, rpc_list_pod_sandbox_stats),
    M("RuntimeService", "StreamPodSandboxStats", stream_pod_sandbox_stats_request,
      stream_pod_sandbox_stats_response, RPC_SERVER_STREAM, rpc_stream_pod_sandbox_stats),
    M("RuntimeService", "UpdateRuntimeConfig", update_runtime_config_request,
      update_runtime_config_response, RPC_UNARY, rpc_update_runtime_config),
    M("RuntimeService", "Status", status_request, status_response, RPC_UNARY, rpc_status),
    M("RuntimeService", "CheckpointContainer", checkpoint_container_request,
      checkpoint_container_response, RPC_UNARY, NULL),
    M("RuntimeService", "GetContainerEvents", get_events_request, container_event_response,
      RPC_SERVER_STREAM, rpc_get_container_events),
    M("RuntimeService", "ListMetricDescriptors", list_metric_descriptors_request,
      list_metric_descriptors_response, RPC_UNARY, rpc_list_metric_descriptors),
    M("RuntimeService", "ListPodSandboxMetrics", list_pod_sandbox_metrics_request,
      list_pod_sandbox_metrics_response, RPC_UNARY, rpc_list_pod_sandbox_metrics),
    M("RuntimeService", "StreamPodSandboxMetrics", stream_pod_sandbox_metrics_request,
      stream_pod_sandbox_metrics_response, RPC_SERVER_STREAM, rpc_stream_pod_sandbox_metrics),
    M("RuntimeService", "RuntimeConfig", runtime_config_request, runtime_config_response, RPC_UNARY,
      rpc_runtime_config),
    M("RuntimeService", "UpdatePodSandboxResources", update_pod_sandbox_resources_request,
      update_pod_sandbox_resources_response, RPC_UNARY, rpc_update_pod_sandbox_resources),
    M("ImageService", "ListImages", list_images_request, list_images_response, RPC_UNARY,
      rpc_list_images),
    M("ImageService", "StreamImages", stream_images_request, stream_images_response,
      RPC_SERVER_STREAM, rpc_stream_images),
    M("ImageService", "ImageStatus", image_status_request, image_status_response, RPC_UNARY,
      rpc_image_status),
    M("ImageService", "PullImage", pull_image_request, pull_image_response, RPC_UNARY,
      rpc_pull_image),
    M("ImageService", "RemoveImage", remove_image_request, remove_image_response, RPC_UNARY,
      rpc_remove_image),
    M("ImageService", "ImageFsInfo", image_fs_info_request, image_fs_info_response, RPC_UNARY,
      rpc_image_fs_info),
};

const size_t rpc_methods_count = sizeof(rpc_methods) / sizeof(rpc_methods[0]);

const struct rpc_method *rpc_method_find(const char *path)
{
    for (size_t i = 0; i < rpc_methods_count; i++)
        if (strcmp(rpc_methods[i].path, path) == 0)
            return &rpc_methods[i];
    return NULL;
}
