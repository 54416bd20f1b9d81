"""A static pod with an init container and two app containers: env, command/args, hostPath and
emptyDir volumes, requests/limits (checked in the cgroups kubelet asked for), restart policies
with exit codes, postStart/preStop hooks and terminationGracePeriodSeconds."""
import os
import time

from kubelet_env import SLEEP, cgroup_v1_path, ctr, pod, read, wait_for

MI = 1024 * 1024


def test_init_and_two_apps_env_volumes_resources(env, tmp_path):
    bb = env.images.busybox
    host = tmp_path / "host"
    host.mkdir()
    (host / "in.txt").write_text("from the host\n")
    spec = pod("basic", [
        ctr("app1", bb, "cat /work/init.txt /host/in.txt > /host/out.txt; "
            "echo \"$A1 $SHARED $(id -u)\" >> /host/out.txt; " + SLEEP,
            env=[{"name": "A1", "value": "one"}, {"name": "SHARED", "value": "s1"}],
            volumeMounts=[{"name": "work", "mountPath": "/work"},
                          {"name": "host", "mountPath": "/host"}],
            resources={"requests": {"cpu": "100m", "memory": "32Mi"},
                       "limits": {"cpu": "250m", "memory": "64Mi"}}),
        ctr("app2", bb, None, command=["/bin/sleep"], args=["3600"],
            env=[{"name": "A2", "value": "two words"}],
            volumeMounts=[{"name": "work", "mountPath": "/w2", "readOnly": True}],
            resources={"requests": {"cpu": "50m", "memory": "16Mi"},
                       "limits": {"cpu": "100m", "memory": "32Mi"}}),
    ], grace=1, initContainers=[
        ctr("init", bb, "echo \"init-$GREETING\" > /work/init.txt",
            env=[{"name": "GREETING", "value": "hi"}],
            volumeMounts=[{"name": "work", "mountPath": "/work"}]),
    ], volumes=[{"name": "work", "emptyDir": {}},
                {"name": "host", "hostPath": {"path": str(host), "type": "Directory"}}])
    env.apply(spec)
    p = env.wait_running("basic", ["app1", "app2"])
    assert p["status"]["phase"] == "Running"
    assert p["status"]["qosClass"] == "Burstable"
    init = p["status"]["initContainerStatuses"][0]
    assert init["state"]["terminated"]["exitCode"] == 0, init
    assert init["state"]["terminated"]["reason"] == "Completed", init

    out = wait_for(lambda: (host / "out.txt").exists() and "one" in (host / "out.txt").read_text()
                   and (host / "out.txt").read_text(), what="app1's output")
    assert out == "init-hi\nfrom the host\none s1 0\n"

    # env and command/args reached the process; the emptyDir is shared, read-only in app2
    environ = env.exec("basic", "app2", "cat", "/proc/1/environ").split("\0")
    assert "A2=two words" in environ
    assert env.exec("basic", "app2", "cat", "/proc/1/cmdline").split("\0")[:2] == [
        "/bin/sleep", "3600"]
    assert env.exec("basic", "app2", "cat", "/w2/init.txt") == "init-hi\n"
    r = env.exec("basic", "app2", "/bin/sh", "-c", "touch /w2/x 2>&1; echo rc=$?")
    assert "Read-only file system" in r and "rc=1" in r, r

    # the cgroups: container limits, and the pod cgroup under kubelet's cgroup root
    pid1 = env.container_pid("basic", "app1")
    pid2 = env.container_pid("basic", "app2")
    mem1 = cgroup_v1_path(pid1, "memory")
    cpu1 = cgroup_v1_path(pid1, "cpu")
    cpu2 = cgroup_v1_path(pid2, "cpu")
    uid = p["metadata"]["uid"]
    pod_dir = f"{env.kubelet.cgroup_root}/kubepods/burstable/pod{uid}"
    for path in (mem1, cpu1, cpu2):
        assert pod_dir + "/" in path, (path, pod_dir)
    assert int(read(mem1 + "/memory.limit_in_bytes")) == 64 * MI
    assert int(read(cpu1 + "/cpu.cfs_quota_us")) == 25000
    assert int(read(cpu1 + "/cpu.cfs_period_us")) == 100000
    assert int(read(cpu1 + "/cpu.shares")) == 102  # 100m
    assert int(read(cpu2 + "/cpu.shares")) == 51  # 50m
    assert int(read(cpu2 + "/cpu.cfs_quota_us")) == 10000
    assert int(read(cgroup_v1_path(pid2, "memory") + "/memory.limit_in_bytes")) == 32 * MI
    pod_mem = os.path.dirname(mem1)
    assert pod_mem.endswith(pod_dir)
    assert int(read(pod_mem + "/memory.limit_in_bytes")) == 96 * MI  # sum of the limits
    assert int(read(os.path.dirname(cpu1) + "/cpu.cfs_quota_us")) == 35000
    # what hulld reports back through the CRI matches
    st = env.inspect(env.containers("basic", "app1")[0]["id"])["status"]
    lin = st["resources"]["linux"]
    assert int(lin["memoryLimitInBytes"]) == 64 * MI
    assert int(lin["cpuQuota"]) == 25000 and int(lin["cpuShares"]) == 102

    env.delete("basic")


def test_restart_policies_and_exit_codes(env):
    bb = env.images.busybox
    env.apply(pod("rp-always", [ctr("c", bb, "sleep 0.2; exit 3")], restartPolicy="Always"))
    env.apply(pod("rp-onfailure", [ctr("ok", bb, "exit 0"), ctr("bad", bb, "sleep 0.2; exit 4")],
                  restartPolicy="OnFailure"))
    env.apply(pod("rp-never", [ctr("ok", bb, "exit 0"), ctr("bad", bb, "exit 5")],
                  restartPolicy="Never"))

    def restarted(name, c, n):
        s = env.status(name, c)
        return s if s and s.get("restartCount", 0) >= n else None
    s = wait_for(lambda: restarted("rp-always", "c", 2), timeout=120, what="Always to restart")
    assert s["lastState"]["terminated"]["exitCode"] == 3, s
    s = wait_for(lambda: restarted("rp-onfailure", "bad", 2), timeout=120,
                 what="OnFailure to restart the failing container")
    assert s["lastState"]["terminated"]["exitCode"] == 4, s
    ok = env.status("rp-onfailure", "ok")
    assert ok["restartCount"] == 0 and ok["state"]["terminated"]["exitCode"] == 0, ok

    def never_done():
        p = env.pod("rp-never")
        return p if p and p["status"].get("phase") == "Failed" else None
    p = wait_for(never_done, timeout=60, what="the Never pod to fail")
    cs = {c["name"]: c for c in p["status"]["containerStatuses"]}
    assert cs["bad"]["state"]["terminated"]["exitCode"] == 5, cs
    assert cs["ok"]["state"]["terminated"]["exitCode"] == 0, cs
    assert cs["ok"]["state"]["terminated"]["reason"] == "Completed", cs
    assert cs["bad"]["state"]["terminated"]["reason"] == "Error", cs
    assert cs["bad"]["restartCount"] == 0 and cs["ok"]["restartCount"] == 0
    # the runtime agrees: one exited container each, with its exit code
    for name, code in (("ok", 0), ("bad", 5)):
        ctrs = env.containers("rp-never", name)
        assert len(ctrs) == 1 and ctrs[0]["state"] == "CONTAINER_EXITED", ctrs
        assert env.inspect(ctrs[0]["id"])["status"]["exitCode"] == code
    for name in ("rp-always", "rp-onfailure", "rp-never"):
        env.delete(name, wait=False)
    for name in ("rp-always", "rp-onfailure", "rp-never"):
        env.delete(name)


def test_hooks_and_termination_grace(env, tmp_path):
    bb = env.images.busybox
    host = tmp_path / "hooks"
    host.mkdir()
    vol = [{"name": "host", "hostPath": {"path": str(host), "type": "Directory"}}]
    mnt = [{"name": "host", "mountPath": "/host"}]
    env.apply(pod("hooks", [
        ctr("c", bb, SLEEP, volumeMounts=mnt, lifecycle={
            "postStart": {"exec": {"command": ["/bin/sh", "-c", "echo started > /host/post"]}},
            "preStop": {"exec": {"command": ["/bin/sh", "-c", "echo stopping > /host/pre"]}}}),
    ], grace=30, volumes=vol))
    # a container that ignores SIGTERM: killed when its grace period ends
    env.apply(pod("grace", [ctr("stubborn", bb, "trap '' TERM; while :; do sleep 1; done")],
                  grace=4))
    env.wait_running("hooks", ["c"])
    env.wait_running("grace", ["stubborn"])
    assert (host / "post").read_text() == "started\n"
    assert not (host / "pre").exists()

    t0 = time.monotonic()
    env.delete("hooks")
    assert (host / "pre").read_text() == "stopping\n"
    assert time.monotonic() - t0 < 25, "a container that exits on SIGTERM took its whole grace"

    cid = env.containers("grace", "stubborn")[0]["id"]
    t0 = time.monotonic()
    os.unlink(env.manifest_path("grace"))
    env.applied.discard("grace")

    def exited():
        c = [c for c in env.containers("grace", "stubborn") if c["id"] == cid]
        return not c or c[0]["state"] == "CONTAINER_EXITED"
    wait_for(exited, timeout=60, interval=0.1, what="the stubborn container to be killed")
    took = time.monotonic() - t0
    assert took >= 3.5, f"killed after {took:.1f}s, before its 4s grace period"
    assert took < 30, f"killed only after {took:.1f}s"
    env.delete("grace")
