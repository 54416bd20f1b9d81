"""Shared CRI helpers for the integration tests: config builders for pods and containers as
kubelet sends them, the common call sequences, and wait_for().

    from cri import pod_config, container_config, run_pod, create_container, wait_for
    cfg = pod_config("web", network=pb.NODE, log_directory=str(tmp_path / "logs"))
    pod = run_pod(d, cfg)
    cid = create_container(d, pod, cfg, container_config("c", d.img.ref, ["sleep", "9"]))
    start_container(d, cid)
    wait_state(d, cid, pb.CONTAINER_RUNNING)

`d` is a conftest.Hulld (its .runtime and .image stubs)."""
import threading
import time

import grpc

from conftest import pb


def wait_for(pred, timeout=10, interval=0.05, what=None):
    """Calls pred() until it returns something truthy (returned) or timeout seconds pass
    (AssertionError naming `what`, or pred, and its last value)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for "
                                 f"{what or getattr(pred, '__name__', 'condition')} "
                                 f"(last value: {v!r})")
        time.sleep(interval)


class Background:
    """fn(*args, **kw) running in a thread; result() waits for it and returns what fn returned
    or raises what it raised (so an exception in the thread reaches the test)."""

    def __init__(self, fn, *args, **kw):
        self._out = None
        self._exc = None

        def run():
            try:
                self._out = fn(*args, **kw)
            except BaseException as e:  # noqa: BLE001 - handed to result()
                self._exc = e

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def result(self, timeout=60):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the background call did not end in {timeout}s"
        if self._exc is not None:
            raise self._exc
        return self._out


# ---- builders ---------------------------------------------------------------------------------


def namespace_options(network=None, pid=None, ipc=None, target_id=None):
    kw = {k: v for k, v in (("network", network), ("pid", pid), ("ipc", ipc),
                            ("target_id", target_id)) if v is not None}
    return pb.NamespaceOption(**kw)


def pod_config(name, namespace="test", uid=None, attempt=0, network=None, pid=None, ipc=None,
               log_directory=None, labels=None, **kw):
    """A PodSandboxConfig: metadata from name (uid defaults to "<name>-uid"), namespace modes
    (pb.POD / pb.NODE / pb.CONTAINER; None keeps the CRI default) in the linux security
    context, and any other PodSandboxConfig field as a keyword."""
    md = pb.PodSandboxMetadata(name=name, namespace=namespace, uid=uid or f"{name}-uid",
                               attempt=attempt)
    linux = kw.pop("linux", None) or pb.LinuxPodSandboxConfig()
    if (network, pid, ipc) != (None, None, None):
        linux.security_context.namespace_options.CopyFrom(
            namespace_options(network=network, pid=pid, ipc=ipc))
    if log_directory is not None:
        kw["log_directory"] = str(log_directory)
    return pb.PodSandboxConfig(metadata=md, linux=linux, labels=labels or {}, **kw)


def container_config(name, image, command=None, attempt=0, log_path=None, labels=None, **kw):
    """A ContainerConfig of image (a reference string) running command; any other
    ContainerConfig field as a keyword."""
    if command is not None:
        kw["command"] = list(command)
    if log_path is not None:
        kw["log_path"] = log_path
    return pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name, attempt=attempt),
                              image=pb.ImageSpec(image=image), labels=labels or {}, **kw)


# ---- calls ------------------------------------------------------------------------------------


def prepare(d, image, logs, handler="", more_images=()):
    """Pulls image (a registry.Image) and more_images into d and sets what test helpers read:
    d.img (image), d.logs (the pods' log directory base) and d.handler."""
    for img in (image, *more_images):
        d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=img.ref)), timeout=120)
    d.img, d.logs, d.handler = image, logs, handler
    return d


def run_pod(d, config, handler="", timeout=60):
    return d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config, runtime_handler=handler),
                                   timeout=timeout).pod_sandbox_id


def new_pod(d, name="pod", handler=None, **kw):
    """RunPodSandbox of pod_config(name, **kw); the log directory defaults to d.logs/name and
    the handler to d.handler (when prepare() set them).  Returns (pod id, config)."""
    if "log_directory" not in kw and getattr(d, "logs", None) is not None:
        kw["log_directory"] = d.logs / name
    if handler is None:
        handler = getattr(d, "handler", "") or ""
    cfg = pod_config(name, **kw)
    return run_pod(d, cfg, handler), cfg


def new_container(d, pod, pod_cfg, name, cmd, attempt=0, log_path=None, **kw):
    """CreateContainer of container_config(name, d.img.ref, cmd, ...) in pod; the log path
    defaults to <name>/<attempt>.log.  Returns the container id."""
    cfg = container_config(name, d.img.ref, cmd, attempt=attempt,
                           log_path=log_path or f"{name}/{attempt}.log", **kw)
    return create_container(d, pod, pod_cfg, cfg)


def stop_pod(d, pod, timeout=60):
    d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=timeout)


def remove_pod(d, pod, timeout=60):
    d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=timeout)


def remove_all_pods(d, timeout=60):
    """Stops and removes every pod (and so every container); errors are ignored (teardown)."""
    try:
        for s in d.runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=timeout).items:
            stop_pod(d, s.id, timeout)
            remove_pod(d, s.id, timeout)
    except grpc.RpcError:
        pass


def create_container(d, pod, pod_config, config, timeout=60):
    return d.runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pod, config=config, sandbox_config=pod_config),
        timeout=timeout).container_id


def start_container(d, cid, timeout=60):
    d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=timeout)


def stop_container(d, cid, grace=0, timeout=60):
    """StopContainer with grace seconds before SIGKILL."""
    d.runtime.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=grace),
                            timeout=timeout)


def remove_container(d, cid, timeout=60):
    d.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=timeout)


def container_status(d, cid):
    return d.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status


def wait_state(d, cid, state, timeout=20):
    """Waits until container cid is in state (pb.CONTAINER_RUNNING, ...); returns its status."""
    last = []

    def reached():
        st = container_status(d, cid)
        last[:] = [st]
        return st if st.state == state else None

    try:
        return wait_for(reached, timeout=timeout, what=f"container {cid} to reach {state}")
    except AssertionError:
        raise AssertionError(f"container {cid} did not reach {state}: {last[0] if last else ''}")


def subscribe_events(d, timeout=60):
    """GetContainerEvents, returned once hulld has the subscription (its response headers
    arrived): every event after this call returns reaches the stream."""
    stream = d.runtime.GetContainerEvents(pb.GetEventsRequest(), timeout=timeout)
    stream.initial_metadata()
    return stream


def sh(d, cid, script, timeout=20):
    """Runs `sh -c script` with ExecSync; returns (exit code, stdout, stderr) as text."""
    r = d.runtime.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", script],
                                              timeout=timeout))
    return r.exit_code, r.stdout.decode(), r.stderr.decode()


def exec_sync(d, cid, *cmd, timeout=20):
    """ExecSync; asserts exit code 0 and returns stdout as text."""
    r = d.runtime.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=list(cmd), timeout=timeout))
    assert r.exit_code == 0, (cmd, r.exit_code, r.stderr)
    return r.stdout.decode()
