"""Racing clients (issue #23 item 2): kubelet retries CreateContainer on the same name while
others list and remove; a RemoveContainer must never wait for a container that is still being
created (it used to kill a container that did not exist yet and wait 30 s for it to exit)."""
import threading
import time

import grpc

import cri
from conftest import pb
from registry import busybox_entries, make_layer, registry  # noqa: F401  (fixture)


def test_remove_does_not_starve_while_creates_retry_the_name(hulld_factory, registry, tmp_path):
    img = registry.push_image("race/busybox", "1", [make_layer(busybox_entries())],
                              config={"Env": ["PATH=/bin"]})
    d = hulld_factory("--insecure-registry", registry.host)
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=img.ref)), timeout=60)
    pcfg = cri.pod_config("race", network=pb.NODE, log_directory=str(tmp_path / "logs"))
    pod = cri.run_pod(d, pcfg)
    ccfg = cri.container_config("x", img.ref, ["sleep", "100"], log_path="x.log")
    stop = time.monotonic() + 12
    errors, removes, creates = [], [], []

    def creator():
        while time.monotonic() < stop:
            try:
                d.runtime.CreateContainer(pb.CreateContainerRequest(
                    pod_sandbox_id=pod, config=ccfg, sandbox_config=pcfg), timeout=30)
                creates.append(1)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.ALREADY_EXISTS:
                    errors.append(f"create: {e.code()}: {e.details()}")

    def remover():
        while time.monotonic() < stop:
            try:
                for c in d.runtime.ListContainers(pb.ListContainersRequest(),
                                                  timeout=30).containers:
                    t0 = time.monotonic()
                    d.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=c.id),
                                              timeout=30)
                    removes.append(time.monotonic() - t0)
            except grpc.RpcError as e:
                errors.append(f"list/remove: {e.code()}: {e.details()}")

    threads = [threading.Thread(target=creator) for _ in range(3)]
    threads += [threading.Thread(target=remover) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not any(t.is_alive() for t in threads)
    assert errors == [], errors[:5]
    assert creates and removes
    assert max(removes) < 10, f"slowest RemoveContainer took {max(removes):.1f} s"
    for c in d.runtime.ListContainers(pb.ListContainersRequest(), timeout=10).containers:
        cri.remove_container(d, c.id)
    cri.stop_pod(d, pod)
    cri.remove_pod(d, pod)
