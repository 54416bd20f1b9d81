/* Prototypes of every CRI handler; each is defined in the area file that implements it
 * and named in the dispatch table (dispatch.c). */
#ifndef HULL_SERVER_HANDLERS_H
#define HULL_SERVER_HANDLERS_H

#include "server/rpc.h"

int rpc_version(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                hull_error_t *err);
int rpc_run_pod_sandbox(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                        hull_error_t *err);
int rpc_stop_pod_sandbox(struct rpc_call *call, const ProtobufCMessage *req,
                         ProtobufCMessage **resp, hull_error_t *err);
int rpc_remove_pod_sandbox(struct rpc_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **resp, hull_error_t *err);
int rpc_pod_sandbox_status(struct rpc_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **resp, hull_error_t *err);
int rpc_list_pod_sandbox(struct rpc_call *call, const ProtobufCMessage *req,
                         ProtobufCMessage **resp, hull_error_t *err);
int rpc_stream_pod_sandboxes(struct rpc_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **resp, hull_error_t *err);
int rpc_create_container(struct rpc_call *call, const ProtobufCMessage *req,
                         ProtobufCMessage **resp, hull_error_t *err);
int rpc_start_container(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                        hull_error_t *err);
int rpc_stop_container(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                       hull_error_t *err);
int rpc_remove_container(struct rpc_call *call, const ProtobufCMessage *req,
                         ProtobufCMessage **resp, hull_error_t *err);
int rpc_list_containers(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                        hull_error_t *err);
int rpc_stream_containers(struct rpc_call *call, const ProtobufCMessage *req,
                          ProtobufCMessage **resp, hull_error_t *err);
int rpc_container_status(struct rpc_call *call, const ProtobufCMessage *req,
                         ProtobufCMessage **resp, hull_error_t *err);
int rpc_update_container_resources(struct rpc_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage **resp, hull_error_t *err);
int rpc_reopen_container_log(struct rpc_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **resp, hull_error_t *err);
int rpc_exec_sync(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                  hull_error_t *err);
int rpc_exec(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
             hull_error_t *err);
int rpc_attach(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
               hull_error_t *err);
int rpc_port_forward(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                     hull_error_t *err);
int rpc_container_stats(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                        hull_error_t *err);
int rpc_list_container_stats(struct rpc_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **resp, hull_error_t *err);
int rpc_stream_container_stats(struct rpc_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **resp, hull_error_t *err);
int rpc_pod_sandbox_stats(struct rpc_call *call, const ProtobufCMessage *req,
                          ProtobufCMessage **resp, hull_error_t *err);
int rpc_list_pod_sandbox_stats(struct rpc_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **resp, hull_error_t *err);
int rpc_stream_pod_sandbox_stats(struct rpc_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **resp, hull_error_t *err);
int rpc_update_runtime_config(struct rpc_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **resp, hull_error_t *err);
int rpc_status(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
               hull_error_t *err);
int rpc_checkpoint_container(struct rpc_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **resp, hull_error_t *err);
int rpc_get_container_events(struct rpc_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **resp, hull_error_t *err);
int rpc_list_metric_descriptors(struct rpc_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage **resp, hull_error_t *err);
int rpc_list_pod_sandbox_metrics(struct rpc_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **resp, hull_error_t *err);
int rpc_stream_pod_sandbox_metrics(struct rpc_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage **resp, hull_error_t *err);
int rpc_runtime_config(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                       hull_error_t *err);
int rpc_update_pod_sandbox_resources(struct rpc_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage **resp, hull_error_t *err);
int rpc_list_images(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                    hull_error_t *err);
int rpc_stream_images(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                      hull_error_t *err);
int rpc_image_status(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                     hull_error_t *err);
int rpc_pull_image(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                   hull_error_t *err);
int rpc_remove_image(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                     hull_error_t *err);
int rpc_image_fs_info(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                      hull_error_t *err);

#endif
