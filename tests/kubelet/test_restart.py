"""Removing a manifest stops and removes everything (sandbox, containers, cgroups, mounts,
network); restarting kubelet, and separately hulld, keeps the pods running untouched."""
import os
import subprocess

from kubelet_env import SLEEP, cgroup_v1_path, ctr, pod, wait_for


def snapshot(env, name):
    """{container name: (container id, pid)}, the sandbox id, and restart counts."""
    sb = env.sandboxes(name, state="ready")
    assert len(sb) == 1, sb
    ctrs = {}
    for c in env.containers(name, all_states=False):
        ctrs[c["metadata"]["name"]] = (c["id"], env.inspect(c["id"])["info"]["pid"])
    counts = {s["name"]: s["restartCount"] for s in env.pod(name)["status"]["containerStatuses"]}
    return sb[0]["id"], ctrs, counts


def test_manifest_removal_cleans_everything(env):
    bb = env.images.busybox
    env.apply(pod("gone", [ctr("a", bb, SLEEP), ctr("b", bb, SLEEP)], grace=1))
    env.wait_running("gone", ["a", "b"])
    sid, ctrs, _ = snapshot(env, "gone")
    pids = [pid for _, pid in ctrs.values()]
    cgroups = [cgroup_v1_path(pid, "memory") for pid in pids]
    pod_cgroup = os.path.dirname(cgroups[0])
    ip = env.crictl_json("inspectp", sid)["status"]["network"]["ip"]
    assert ip.startswith(env.hulld.subnet_prefix + "."), ip

    env.delete("gone", removed=True, timeout=150)
    assert env.pod("gone") is None
    assert not env.crictl_json("pods", "--id", sid).get("items")
    assert not env.containers("gone")
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}"), f"process {pid} survived"
    wait_for(lambda: not os.path.exists(pod_cgroup), timeout=30,
             what=f"kubelet to remove the pod cgroup {pod_cgroup}")
    for cg in cgroups:
        assert not os.path.exists(cg), cg
    with open("/proc/self/mounts") as f:
        mounts = f.read()
    assert sid not in mounts
    for cid, _ in ctrs.values():
        assert cid not in mounts
    assert not os.path.exists(os.path.join(env.hulld.base, "ipam", "hullkt-" + env.tag, ip))
    links = subprocess.run(["ip", "-o", "link", "show", "master", env.hulld.bridge],
                           capture_output=True, text=True).stdout
    assert "veth" not in links, links


def test_kubelet_restart_keeps_pods(env):
    bb = env.images.busybox
    env.apply(pod("survivor", [ctr("a", bb, SLEEP), ctr("b", bb, SLEEP)], grace=1))
    env.wait_running("survivor", ["a", "b"])
    before = snapshot(env, "survivor")

    env.kubelet.stop()
    assert snapshot_runtime(env, "survivor") == (before[0], before[1])
    env.kubelet.start()
    p = env.wait_running("survivor", ["a", "b"])
    after = snapshot(env, "survivor")
    assert after == before, (before, after)
    assert all(s["restartCount"] == 0 for s in p["status"]["containerStatuses"])
    env.delete("survivor")


def snapshot_runtime(env, name):
    sb = env.sandboxes(name, state="ready")
    ctrs = {}
    for c in env.containers(name, all_states=False):
        ctrs[c["metadata"]["name"]] = (c["id"], env.inspect(c["id"])["info"]["pid"])
    return (sb[0]["id"] if sb else None), ctrs


def test_hulld_restart_keeps_pods(env):
    bb = env.images.busybox
    env.apply(pod("steady", [ctr("a", bb, SLEEP), ctr("b", bb, SLEEP)], grace=1))
    env.wait_running("steady", ["a", "b"])
    before = snapshot(env, "steady")
    env.restart_hulld()
    p = env.wait_running("steady", ["a", "b"])
    assert snapshot(env, "steady") == before
    assert all(s["restartCount"] == 0 for s in p["status"]["containerStatuses"])
    # and kubelet drives the restarted hulld: a new pod starts, the old one goes away
    env.apply(pod("after-restart", [ctr("c", bb, SLEEP)], grace=1))
    env.wait_running("after-restart", ["c"])
    env.delete("steady", wait=False)
    env.delete("after-restart")
    env.delete("steady")
