"""What the container tests share: the hulld fixture with the busybox image and two runtime
handlers (`env`), pods and containers as those tests make them, pods with a user namespace, and
the code of a failing CRI call."""
import functools
import json
import os

import grpc
import pytest

import cri
from conftest import pb
from cri import container_status, remove_all_pods
from registry import busybox_image, registry  # noqa: F401  (fixtures)

HANDLERS = ["hull-oci", "runc"]


@pytest.fixture(params=HANDLERS)
def env(request, hulld_factory, registry, busybox_image, tmp_path):  # noqa: F811
    """A hulld with the busybox image pulled; its pods use the handler of the parameter
    (hull-oci, Hull's own runtime, or runc as a configured second handler)."""
    d = hulld_factory("--insecure-registry", registry.host,
                      "--runtime", "runc=/usr/sbin/runc")
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=busybox_image.ref)))
    d.logs = tmp_path / "logs"
    d.img = busybox_image
    d.handler = request.param
    yield d
    remove_all_pods(d)  # leave nothing running


# the pods here: host network, one PID namespace for the pod (pid= overrides it)
run_pod = functools.partial(cri.new_pod, network=pb.NODE, pid=pb.POD)
create = cri.new_container


status = container_status


def code_of(fn):
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()


def userns_pod(d, name, handler, host_id=200000, uids=None, gids=None, mode=pb.POD,
               pid=pb.CONTAINER):
    # the pod has its own network namespace: a loopback-only CNI network is enough
    with open(os.path.join(d.cni_dir, "10-lo.conflist"), "w") as f:
        json.dump({"cniVersion": "1.0.0", "name": "lo", "plugins": [{"type": "loopback"}]}, f)
    m = [pb.IDMapping(host_id=host_id, container_id=0, length=65536)]
    us = pb.UserNamespace(mode=mode, uids=m if uids is None else uids,
                          gids=m if gids is None else gids)
    cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=name + "-uid", namespace="test"),
        log_directory=str(d.logs / name),
        linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(network=pb.POD, pid=pid,
                                                 ipc=pb.POD, userns_options=us))))
    r = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg, runtime_handler=handler))
    return r.pod_sandbox_id, cfg
