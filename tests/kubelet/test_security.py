"""hostNetwork, shareProcessNamespace, hostUsers: false, an image volume, and a container
security context (runAsUser, readOnlyRootFilesystem, dropped capabilities, seccomp
RuntimeDefault, allowPrivilegeEscalation false) as kubelet translates them into the CRI."""
import os

from kubelet_env import SLEEP, ctr, pod

CAP_CHOWN = 0
CAP_NET_RAW = 13
CAP_SYS_ADMIN = 21


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def ns_of(pid, kind):
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def test_host_network_and_shared_pid_namespace(env):
    bb = env.images.busybox
    env.apply(pod("hostnet", [ctr("c", bb, SLEEP)], grace=1, hostNetwork=True))
    env.apply(pod("sharedpid", [ctr("a", bb, SLEEP), ctr("b", bb, "exec sleep 3601")],
                  grace=1, shareProcessNamespace=True))
    env.wait_running("hostnet", ["c"])
    env.wait_running("sharedpid", ["a", "b"])

    pid = env.container_pid("hostnet", "c")
    assert ns_of(pid, "net") == ns_of(os.getpid(), "net")
    with open(f"/proc/{pid}/net/dev") as f, open("/proc/self/net/dev") as g:
        mine = sorted(ln.split(":")[0].strip() for ln in g.read().splitlines()[2:])
        theirs = sorted(ln.split(":")[0].strip() for ln in f.read().splitlines()[2:])
    assert theirs == mine and "lo" in mine, (theirs, mine)

    a = env.container_pid("sharedpid", "a")
    b = env.container_pid("sharedpid", "b")
    assert ns_of(a, "pid") == ns_of(b, "pid") != ns_of(os.getpid(), "pid")
    ps = env.exec("sharedpid", "a", "ps", "-o", "pid,args")
    assert "sleep 3601" in ps, ps
    # pid 1 of the shared namespace is the infra process, not a container
    assert "sleep" not in env.exec("sharedpid", "a", "cat", "/proc/1/cmdline")
    for name in ("hostnet", "sharedpid"):
        env.delete(name, wait=False)
    for name in ("hostnet", "sharedpid"):
        env.delete(name)


def test_user_namespace(env):
    bb = env.images.busybox
    env.apply(pod("userns", [ctr("c", bb, "id -u > /tmp/id; " + SLEEP)], grace=1,
                  hostUsers=False))
    env.wait_running("userns", ["c"])
    pid = env.container_pid("userns", "c")
    assert ns_of(pid, "user") != ns_of(os.getpid(), "user")
    with open(f"/proc/{pid}/uid_map") as f:
        inside, outside, length = f.read().split()[:3]
    assert inside == "0" and int(outside) >= 65536 and int(length) == 65536, (inside, outside)
    assert os.stat(f"/proc/{pid}").st_uid == int(outside)  # root inside, unprivileged outside
    assert env.exec("userns", "c", "cat", "/tmp/id") == "0\n"
    env.delete("userns")


def test_image_volume(env):
    bb = env.images.busybox
    vol = [{"name": "img", "image": {"reference": env.images.data,
                                     "pullPolicy": "IfNotPresent"}}]
    env.apply(pod("imgvol", [ctr("c", bb, SLEEP, volumeMounts=[
        {"name": "img", "mountPath": "/img"},
        {"name": "img", "mountPath": "/deep", "subPath": "data/sub"}])], grace=1, volumes=vol))
    env.wait_running("imgvol", ["c"])
    assert env.exec("imgvol", "c", "cat", "/img/data/hello.txt") == "hello from an image volume\n"
    assert env.exec("imgvol", "c", "cat", "/deep/deep.txt") == "deep\n"
    r = env.exec("imgvol", "c", "/bin/sh", "-c", "touch /img/x 2>&1; echo rc=$?")
    assert "Read-only file system" in r and "rc=1" in r, r
    env.delete("imgvol")


def test_security_context(env):
    bb = env.images.busybox
    env.apply(pod("secctx", [
        ctr("restricted", bb, SLEEP, securityContext={
            "runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True,
            "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}}),
        ctr("rootish", bb, SLEEP, securityContext={
            "capabilities": {"drop": ["NET_RAW", "CHOWN"], "add": ["SYS_ADMIN"]},
            "seccompProfile": {"type": "RuntimeDefault"}}),
    ], grace=1))
    env.wait_running("secctx", ["restricted", "rootish"])

    pid = env.container_pid("secctx", "restricted")
    st = proc_status(pid)
    assert st["Uid"].split()[:2] == ["1000", "1000"] and st["Gid"].split()[0] == "1000", st
    assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0, st
    assert st["Seccomp"] == "2", st
    assert st["NoNewPrivs"] == "1", st
    assert env.exec("secctx", "restricted", "id", "-u") == "1000\n"
    r = env.exec("secctx", "restricted", "/bin/sh", "-c", "touch /rootfs-file 2>&1; echo rc=$?")
    assert "Read-only file system" in r and "rc=1" in r, r

    st = proc_status(env.container_pid("secctx", "rootish"))
    bnd = int(st["CapBnd"], 16)
    assert not bnd & (1 << CAP_NET_RAW) and not bnd & (1 << CAP_CHOWN), st["CapBnd"]
    assert bnd & (1 << CAP_SYS_ADMIN), st["CapBnd"]
    assert st["Seccomp"] == "2" and st["Uid"].split()[0] == "0", st
    r = env.exec("secctx", "rootish", "/bin/sh", "-c", "chown 1:1 /tmp 2>&1; echo rc=$?")
    assert "rc=1" in r, r
    env.delete("secctx")
