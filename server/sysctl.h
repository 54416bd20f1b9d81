/* The one check of CRI sysctls (LinuxPodSandboxConfig.sysctls), for RunPodSandbox and for the
 * OCI spec of each container of the pod.  SECURITY.md: a pod's strings must not reach a
 * privileged write they were not meant for (CRI-O CVE-2022-0811). */
#ifndef HULL_SERVER_SYSCTL_H
#define HULL_SERVER_SYSCTL_H

#include "common/common.h"

#define CRI_SYSCTL_NAME_MAX  255
#define CRI_SYSCTL_VALUE_MAX 4096

/* Names: [A-Za-z0-9_.-/], dotted ("net.ipv4.ip_forward") or slashed ("net/ipv4/conf/eth0.100/
 * forwarding"), no empty, "." or ".." component; only namespaced sysctls (kernel.shm*,
 * kernel.msg*, kernel.sem, fs.mqueue.*, net.*), net.* not with the host network and the IPC
 * ones not with the host IPC namespace.  Values: at most CRI_SYSCTL_VALUE_MAX bytes, no control
 * character but tab (DEL included), no '=' and no '+' (the shapes that smuggle a second key).
 * EINVAL with a message naming the sysctl. */
int cri_sysctl_validate(const char *key, const char *value, bool host_network, bool host_ipc,
                        hull_error_t *err);

/* The dotted form the OCI spec takes: a slashed name (first separator '/') has '/' and '.'
 * swapped, as kubelet does ("net/ipv4/conf/eth0.100/forwarding" →
 * "net.ipv4.conf.eth0/100.forwarding"); a dotted name is unchanged.  Caller frees. */
char *cri_sysctl_normalize(const char *key);

#endif
