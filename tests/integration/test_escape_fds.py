"""Container escapes through what a runtime leaves behind, end to end through hulld: host fds
in a created-but-not-started container of a shared-PID pod (runc CVE-2024-21626 /
CVE-2016-9962 class) and in exec'd processes, and bidirectional mount propagation (a mount a
privileged container makes under a Bidirectional volume must reach the host, one made on the
host must reach the container)."""
import json
import os
import subprocess
import threading
import time

import pytest

import cri
from conftest import pb, unmount_below
from cri import sh
from registry import busybox_entries, make_layer, registry  # noqa: F401  (fixture)
from cri import wait_state
from ctr import create, run_pod, status
from oci_helpers import host_objects, shared_dir  # noqa: F401  (shared_dir: fixture)
from registry import all_applets

# One line per fd of every process the container sees (but the listing shell itself):
# "PID FD LINK DEV:INO".  Links need ptrace-mode access: the container has CAP_SYS_PTRACE.
ALL_FDS = ("for p in /proc/[0-9]*; do P=${p#/proc/}; [ $P = $$ ] && continue; "
           "for f in $p/fd/*; do [ -e $f ] || [ -L $f ] || continue; "
           "echo \"$P ${f##*/} $(readlink $f || echo DENIED) "
           "$(stat -L -c %d:%i $f 2>/dev/null)\"; done; done")


@pytest.fixture(scope="module")
def busybox_image(registry):  # noqa: F811
    layer = make_layer(busybox_entries(extra_applets=all_applets()))
    return registry.push_image("esc/busybox", "1", [layer],
                               config={"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]})


def make_env(request, hulld_factory, registry, busybox_image, tmp_path, handler):  # noqa: F811
    d = hulld_factory("--insecure-registry", registry.host,
                      "--runtime", "runc=/usr/sbin/runc")
    cri.prepare(d, busybox_image, tmp_path / "logs", handler)
    request.addfinalizer(lambda: cri.remove_all_pods(d))
    return d


def caps(*add):
    return pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
        capabilities=pb.Capability(add_capabilities=list(add))))


def check_listing(out, d, what):
    """Every fd of every process: no host namespace, no host /proc, /, /run, /sys, /tmp, nothing
    under hulld's root or state dir (exec.fifo, namespace pins); fds above stdio only anonymous
    pipes/sockets."""
    links, devino = host_objects(("/proc", "/", "/run", "/sys", "/tmp"))
    rows = [l.split() for l in out.splitlines() if l.strip()]
    assert rows, what + ": nothing listed"
    bad = []
    for r in rows:
        pid, fd, link = r[0], int(r[1]), r[2] if len(r) > 2 else ""
        di = r[3] if len(r) > 3 else ""
        if (link in links or di in devino or link == "DENIED" or d.state_dir in link
                or d.root in link
                or (fd > 2 and not link.startswith(("pipe:[", "socket:[", "anon_inode:")))):
            bad.append(" ".join(r))
    assert not bad, "%s: host objects in fds:\n%s\nfull listing:\n%s" % (what, "\n".join(bad), out)
    return rows


def pod_pid(d, cid):
    """The pid, in the pod's pid namespace, of container cid's init (from hull-oci state)."""
    root = os.path.join(d.state_dir, "runtime", "hull-oci")
    out = subprocess.run([os.path.join(os.environ.get("HULL_BUILD", "build"), "hull-oci"),
                          "--root", root, "state", cid], capture_output=True, text=True,
                         check=True).stdout
    host_pid = json.loads(out)["pid"]
    with open("/proc/%d/status" % host_pid) as f:
        for line in f:
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    raise AssertionError("no NSpid for %d" % host_pid)


def test_created_container_in_shared_pid_pod_holds_no_host_fds(request, hulld_factory, registry,
                                                                busybox_image, tmp_path):  # noqa: F811
    d = make_env(request, hulld_factory, registry, busybox_image, tmp_path, "hull-oci")
    pod, pcfg = run_pod(d, "escfd", pid=pb.POD)
    plain = create(d, pod, pcfg, "plain", ["sleep", "1000"])
    tracer = create(d, pod, pcfg, "tracer", ["sleep", "1000"], linux=caps("SYS_PTRACE"))
    for c in (plain, tracer):
        d.runtime.StartContainer(pb.StartContainerRequest(container_id=c))
        wait_state(d, c, pb.CONTAINER_RUNNING)
    waiting = create(d, pod, pcfg, "waiting", ["sh", "-c", "echo started; sleep 1000"])
    assert status(d, waiting).state == pb.CONTAINER_CREATED
    wpid = str(pod_pid(d, waiting))
    code, out, err = sh(d, tracer, ALL_FDS)
    assert code == 0, err
    rows = check_listing(out, d, "created container")
    assert wpid in {r[0] for r in rows}, out
    # without CAP_SYS_PTRACE the waiting init is not dumpable: none of its fd links can be
    # read, while those of the same container's own process (dumpable after execve) can
    code, out, err = sh(d, plain, ALL_FDS)
    assert code == 0, err
    mine = pod_pid(d, plain)
    rows = [r.split() for r in out.splitlines() if r.strip()]
    assert [r for r in rows if r[0] == str(mine) and r[2] != "DENIED"], out
    waiting_rows = [r for r in rows if r[0] == wpid]
    assert waiting_rows and all(r[2] == "DENIED" for r in waiting_rows), out
    # an exec'd process: same checks while an ExecSync `sleep` runs in the plain container
    t = threading.Thread(target=lambda: sh(d, plain, "exec sleep 3", timeout=20))
    t.start()
    try:
        deadline = time.time() + 10
        while "sleep 3" not in sh(d, tracer, "ps -o args")[1]:
            assert time.time() < deadline, "the exec'd sleep never showed up"
            time.sleep(0.1)
        code, out, err = sh(d, tracer, ALL_FDS)
        check_listing(out, d, "with an exec'd process")
    finally:
        t.join()
    d.runtime.StartContainer(pb.StartContainerRequest(container_id=waiting))
    wait_state(d, waiting, pb.CONTAINER_RUNNING)


@pytest.mark.parametrize("handler", ["hull-oci", "runc"])
def test_bidirectional_propagation(request, hulld_factory, registry, busybox_image,  # noqa: F811
                                   tmp_path, shared_dir, handler):
    d = make_env(request, hulld_factory, registry, busybox_image, tmp_path, handler)
    request.addfinalizer(lambda: unmount_below(shared_dir))
    pod, pcfg = run_pod(d, "bidi")
    cid = create(d, pod, pcfg, "bidi", ["sleep", "1000"], linux=caps("SYS_ADMIN"),
                 mounts=[pb.Mount(container_path="/mnt/bidi", host_path=shared_dir,
                                  propagation=pb.PROPAGATION_BIDIRECTIONAL)])
    d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
    wait_state(d, cid, pb.CONTAINER_RUNNING)
    # host -> container
    fromhost = os.path.join(shared_dir, "fromhost")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "hostside", fromhost], check=True)
    with open(os.path.join(fromhost, "marker"), "w") as f:
        f.write("hostdata\n")
    assert sh(d, cid, "cat /mnt/bidi/fromhost/marker")[1] == "hostdata\n"
    # container -> host
    code, out, err = sh(d, cid, "mount -t tmpfs -o size=1m ctr /mnt/bidi/fromctr && "
                                "echo ctrdata > /mnt/bidi/fromctr/f")
    assert code == 0, err
    fromctr = os.path.join(shared_dir, "fromctr")
    assert os.path.ismount(fromctr), "the container's mount did not reach the host"
    with open(os.path.join(fromctr, "f")) as f:
        assert f.read() == "ctrdata\n"
