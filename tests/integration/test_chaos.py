"""Chaos: a few threads run whole pod lifecycles (run pod, create + start a container, stop,
remove, stop and remove the pod) while hulld is SIGKILLed at random moments, five rounds in a
row, and restarted each time.  Afterwards everything it lists can be stopped and removed, names
can be used again, and no monitor or runtime process, mount, cgroup (in any hierarchy), pinned
namespace or state file is left."""
import random
import threading
import time
import types

import grpc

import cri
from conftest import pb, pb_grpc
from leaks import remove_cgroup_parent, wait_clean
from registry import busybox_entries, make_layer, registry  # noqa: F401  (fixture)
from cni_env import NetEnv, kubelet_like

ROUNDS = 5
THREADS = 3


def crash_error(e):
    """Is e what a call gets from a hulld killed under it or not yet back: refused, cut off
    (grpc's client reports a cut stream as UNKNOWN "Stream removed"), or the object gone (a
    half-done step rolled back by the restart)?"""
    return e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND) or (
        e.code() == grpc.StatusCode.UNKNOWN and e.details() == "Stream removed")


def lifecycle(d, img, name):
    pcfg = kubelet_like(name)
    pod = cri.run_pod(d, pcfg, timeout=30)
    cid = cri.create_container(d, pod, pcfg, cri.container_config("c", img.ref, ["sleep", "1000"]),
                               timeout=30)
    cri.start_container(d, cid, timeout=30)
    cri.stop_container(d, cid, timeout=30)
    cri.remove_container(d, cid, timeout=30)
    cri.stop_pod(d, pod, timeout=30)
    cri.remove_pod(d, pod, timeout=30)


def test_sigkill_during_parallel_lifecycles(hulld_factory, registry):  # noqa: F811
    img = registry.push_image("chaos/busybox", "1", [make_layer(busybox_entries())],
                              config={"Env": ["PATH=/bin"]})
    net = NetEnv(hulld_factory)
    try:
        net.write_bridge()
        d = net.hulld(*net.args(), "--insecure-registry", registry.host)
        d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=img.ref)), timeout=60)
        seed = random.randrange(1 << 30)
        rng = random.Random(seed)
        stop = threading.Event()
        alive = threading.Event()
        alive.set()
        done = [0] * THREADS
        unexpected = []

        def worker(k):
            # a channel of its own, which reconnects across the restarts (d's is replaced)
            ch = grpc.insecure_channel("unix://" + d.socket)
            c = types.SimpleNamespace(runtime=pb_grpc.RuntimeServiceStub(ch))
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    lifecycle(c, img, f"chaos-{k}-{i}")
                    done[k] += 1
                except grpc.RpcError as e:
                    # hulld is down or restarting: the call is refused or cut off, or a call
                    # that crossed a restart finds its object gone; anything else is a defect.
                    # What the interrupted call left is checked at the end.
                    if not crash_error(e):
                        unexpected.append(f"{e.code()}: {e.details()}")
                        break
                    alive.wait(30)
                except Exception as e:  # noqa: BLE001 - reported below
                    unexpected.append(repr(e))
                    break
            ch.close()

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
        for t in threads:
            t.start()
        try:
            for _ in range(ROUNDS):
                time.sleep(rng.uniform(0.3, 1.5))  # a random moment to crash at, not a wait
                alive.clear()
                d.proc.kill()
                d.proc.wait()
                d.stop()
                d.start()
                alive.set()
            # the workers complete lifecycles on the last restarted hulld
            before = sum(done)
            cri.wait_for(lambda: sum(done) > before or unexpected, timeout=60,
                         what="a lifecycle after the last restart")
        finally:
            stop.set()
            for t in threads:
                t.join(120)
        assert unexpected == [], f"seed {seed}: {unexpected}"
        assert sum(done) > 0, f"seed {seed}: no lifecycle completed"

        # whatever the crashes left listed can be stopped and removed
        for c in d.runtime.ListContainers(pb.ListContainersRequest()).containers:
            d.runtime.StopContainer(pb.StopContainerRequest(container_id=c.id, timeout=0),
                                    timeout=60)
            d.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=c.id), timeout=60)
        for p in d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items:
            d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=p.id), timeout=60)
            d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p.id),
                                       timeout=60)
        # names of interrupted lifecycles are free again
        for k in range(THREADS):
            lifecycle(d, img, f"chaos-{k}-1")
        wait_clean(d, net.cgroup_parent)
        print("recovery actions:", sum(1 for ln in d.log().splitlines()
                                       if "recovery:" in ln or "interrupted by a crash" in ln
                                       or "half-created" in ln))
        # and a clean restart finds nothing to recover
        d.restart()
        assert len(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items) == 0
        assert len(d.runtime.ListContainers(pb.ListContainersRequest()).containers) == 0
        wait_clean(d, net.cgroup_parent)
    finally:
        net.cleanup()
        remove_cgroup_parent(net.cgroup_parent)  # NetEnv.cleanup leaves the v2 one of a hybrid host
