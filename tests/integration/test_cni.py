"""CNI plugin protocol through a real hulld and a recording fake plugin: the exact environment,
stdin, prevResult chaining, runtimeConfig capabilities and CNI_ARGS for a flannel-style and a
calico-style conflist; DEL in reverse order with the cached result after a hulld restart and
after the config changed; failures (missing binary, plugin error, invalid conflist) roll the
pod back and leave the host clean."""
import json
import os

import grpc
import pytest

from conftest import pb
from cri import Background, wait_for
from cni_env import (NetEnv, expect_rpc_error, info, kubelet_like, network_ready,
                          nsfs_mounts, remove_pod, run_pod, status, stop_pod)

FLANNEL = {
    "name": "cbr0",
    "cniVersion": "0.3.1",
    "plugins": [
        {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}

CALICO = {
    "name": "k8s-pod-network",
    "cniVersion": "0.4.0",
    "plugins": [
        {"type": "calico", "log_level": "info", "datastore_type": "kubernetes",
         "nodename": "node-1", "mtu": 1440, "ipam": {"type": "calico-ipam"},
         "policy": {"type": "k8s"},
         "kubernetes": {"kubeconfig": "/etc/cni/net.d/calico-kubeconfig"}},
        {"type": "bandwidth", "capabilities": {"bandwidth": True}},
        {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}},
    ],
}


@pytest.fixture
def net(hulld_factory):
    # depends on hulld_factory, so it is torn down first: pods are removed while hulld runs
    env = NetEnv(hulld_factory)
    yield env
    env.cleanup()


def fake_hulld(net, conflist, *types, ip=None):
    net.install_fakes(*types, ip=ip)
    net.write("10-test.conflist", conflist)
    return net.hulld(*net.args(plugins=net.fake_dir))


def expected_args(pod_id, name, namespace="default", uid=None):
    return (f"IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name};"
            f"K8S_POD_INFRA_CONTAINER_ID={pod_id};K8S_POD_UID={uid or 'uid-' + name}")


def check_env(env, command, pod_id, netns, args, plugin_dir):
    assert env == {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": pod_id,
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": args,
        "CNI_PATH": plugin_dir,
    }


def test_flannel_style_env_stdin_chaining(net):
    d = fake_hulld(net, FLANNEL, "flannel", "portmap", ip="10.244.1.7/24")
    cfg = kubelet_like("web", namespace="shop", uid="1234-abcd", port_mappings=[
        pb.PortMapping(protocol=pb.TCP, container_port=80, host_port=8080),
        pb.PortMapping(protocol=pb.UDP, container_port=53, host_port=5353, host_ip="127.0.0.1"),
        pb.PortMapping(protocol=pb.TCP, container_port=9090)])  # no host port: not mapped
    pid = run_pod(d, cfg)
    netns = info(d, pid)["netns"]
    assert status(d, pid).status.network.ip == "10.244.1.7"
    recs = net.records()
    assert [(r[0], r[1]) for r in recs] == [("flannel", "ADD"), ("portmap", "ADD")]
    args = expected_args(pid, "web", "shop", "1234-abcd")
    for typ, cmd, doc, env, pinned in recs:
        check_env(env, "ADD", pid, netns, args, net.fake_dir)
        assert pinned, "CNI_NETNS must be the pinned namespace"
        assert doc["name"] == "cbr0" and doc["cniVersion"] == "0.3.1"
    flannel, portmap = recs[0][2], recs[1][2]
    assert flannel == {"type": "flannel",
                       "delegate": {"hairpinMode": True, "isDefaultGateway": True},
                       "name": "cbr0", "cniVersion": "0.3.1"}
    # portmap gets flannel's result as prevResult and its capability in runtimeConfig
    assert portmap["prevResult"]["by"] == "flannel"
    assert portmap["prevResult"]["ips"][0]["address"] == "10.244.1.7/24"
    assert portmap["runtimeConfig"] == {"portMappings": [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"}]}
    assert "capabilities" in portmap
    net.clear_records()
    stop_pod(d, pid)
    recs = net.records()
    assert [(r[0], r[1]) for r in recs] == [("portmap", "DEL"), ("flannel", "DEL")]
    for typ, cmd, doc, env, pinned in recs:
        check_env(env, "DEL", pid, netns, args, net.fake_dir)
        assert pinned, "DEL runs before the netns is released"
        # DEL gets the cached final result as prevResult
        assert doc["prevResult"]["ips"][0]["address"] == "10.244.1.7/24"
    assert recs[0][2]["runtimeConfig"]["portMappings"][0]["hostPort"] == 8080
    # a second stop runs no plugin
    net.clear_records()
    stop_pod(d, pid)
    assert net.records() == []
    remove_pod(d, pid)
    assert net.records() == []
    assert nsfs_mounts(d.state_dir) == []


def test_calico_style_bandwidth_and_del_after_restart(net):
    d = fake_hulld(net, CALICO, "calico", "bandwidth", "portmap",
                   ip="192.168.77.9/32")
    cfg = kubelet_like("api", namespace="kube-system", annotations={
        "kubernetes.io/ingress-bandwidth": "10M", "kubernetes.io/egress-bandwidth": "1M"},
        port_mappings=[pb.PortMapping(container_port=443, host_port=8443)],
        dns_config=pb.DNSConfig(servers=["10.96.0.10"], searches=["cluster.local"]))
    pid = run_pod(d, cfg)
    netns = info(d, pid)["netns"]
    recs = net.records()
    assert [(r[0], r[1]) for r in recs] == [("calico", "ADD"), ("bandwidth", "ADD"),
                                            ("portmap", "ADD")]
    calico, bw, pm = (r[2] for r in recs)
    assert calico["kubernetes"] == {"kubeconfig": "/etc/cni/net.d/calico-kubeconfig"}
    assert calico["ipam"] == {"type": "calico-ipam"} and calico["mtu"] == 1440
    assert "prevResult" not in calico and "runtimeConfig" not in calico
    assert bw["runtimeConfig"] == {"bandwidth": {
        "ingressRate": 10000000, "ingressBurst": 4294967295,
        "egressRate": 1000000, "egressBurst": 4294967295}}
    assert bw["prevResult"]["by"] == "calico"
    assert pm["prevResult"]["by"] == "calico" and pm["snat"] is True
    assert pm["runtimeConfig"] == {"portMappings": [
        {"hostPort": 8443, "containerPort": 443, "protocol": "tcp"}]}
    for r in recs:
        check_env(r[3], "ADD", pid, netns, expected_args(pid, "api", "kube-system"),
                  net.fake_dir)
    assert status(d, pid).status.network.ip == "192.168.77.9"

    # restart hulld: the pod is still there and DEL uses what ADD used
    net.clear_records()
    d.restart()
    assert status(d, pid).status.network.ip == "192.168.77.9"
    stop_pod(d, pid)
    recs = net.records()
    assert [(r[0], r[1]) for r in recs] == [("portmap", "DEL"), ("bandwidth", "DEL"),
                                            ("calico", "DEL")]
    for r in recs:
        check_env(r[3], "DEL", pid, netns, expected_args(pid, "api", "kube-system"),
                  net.fake_dir)
        assert r[2]["prevResult"]["ips"][0]["address"] == "192.168.77.9/32"
        assert r[2]["cniVersion"] == "0.4.0"
    assert recs[1][2]["runtimeConfig"]["bandwidth"]["ingressRate"] == 10000000
    remove_pod(d, pid)


def test_del_uses_cached_config_after_config_changed(net):
    d = fake_hulld(net, FLANNEL, "flannel", "portmap", "other")
    pid = run_pod(d, kubelet_like("old"))
    # the admin replaces the network config with another one
    os.unlink(os.path.join(net.conf_dir, "10-test.conflist"))
    net.write("20-new.conflist", {"cniVersion": "1.0.0", "name": "newnet",
                                  "plugins": [{"type": "other"}]})
    net.clear_records()
    stop_pod(d, pid)
    assert [(r[0], r[1], r[2]["name"]) for r in net.records()] == [
        ("portmap", "DEL", "cbr0"), ("flannel", "DEL", "cbr0")]
    # new pods use the new config, picked up without restart
    net.clear_records()
    pid2 = run_pod(d, kubelet_like("new"))
    assert [(r[0], r[1], r[2]["name"]) for r in net.records()] == [("other", "ADD", "newnet")]
    remove_pod(d, pid)
    remove_pod(d, pid2)


def test_check_and_update_runtime_config_ip_ranges(net):
    conf = {"cniVersion": "1.0.0", "name": "ranges", "plugins": [
        {"type": "ipr", "capabilities": {"ipRanges": True, "dns": True}}]}
    d = fake_hulld(net, conf, "ipr")
    d.runtime.UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(runtime_config=pb.RuntimeConfig(
        network_config=pb.NetworkConfig(pod_cidr="10.200.3.0/24,fd00:3::/64"))))
    pid = run_pod(d, kubelet_like("r", dns_config=pb.DNSConfig(
        servers=["10.0.0.10"], searches=["a.local"], options=["ndots:2"])))
    doc = net.records()[0][2]
    assert doc["runtimeConfig"] == {
        "ipRanges": [[{"subnet": "10.200.3.0/24"}]],
        "dns": {"servers": ["10.0.0.10"], "searches": ["a.local"], "options": ["ndots:2"]}}
    expect_rpc_error(lambda: d.runtime.UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(
        runtime_config=pb.RuntimeConfig(network_config=pb.NetworkConfig(
            pod_cidr='10.0.0.0/8"}]]')))), grpc.StatusCode.INVALID_ARGUMENT, "pod CIDR")
    remove_pod(d, pid)


def assert_rolled_back(net, d):
    assert len(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items) == 0
    assert nsfs_mounts(d.state_dir) == []
    with open("/proc/self/mounts") as f:
        assert d.state_dir not in f.read()
    sb_dir = os.path.join(d.state_dir, "sandboxes")
    assert not os.path.isdir(sb_dir) or os.listdir(sb_dir) == []
    for c in net.cgroup_dirs():
        assert not [x for x in os.listdir(c) if x.startswith("pod-")], c
    store = os.path.join(d.root, "store", "sandboxes")
    assert not os.path.isdir(store) or [f for f in os.listdir(store) if f.endswith(".json")] == []


def test_plugin_error_rolls_back(net):
    conf = {"cniVersion": "1.0.0", "name": "failing", "plugins": [
        {"type": "good"}, {"type": "failer"}]}
    d = fake_hulld(net, conf, "good", "failer")
    e = expect_rpc_error(lambda: run_pod(d, kubelet_like("f", pid=pb.POD)),
                         grpc.StatusCode.UNKNOWN, "fake failure: asked to fail", "failer")
    assert "code 99" in e.details()
    recs = [(r[0], r[1]) for r in net.records()]
    assert recs == [("good", "ADD"), ("failer", "ADD"), ("failer", "DEL"), ("good", "DEL")]
    assert_rolled_back(net, d)
    # no infra process left
    assert "hull-pause" not in os.popen(f"ps -o comm= --ppid {d.proc.pid}").read()
    # the name is free again
    net.write("10-test.conflist", {"cniVersion": "1.0.0", "name": "ok",
                                   "plugins": [{"type": "good"}]})
    pid = run_pod(d, kubelet_like("f"))
    remove_pod(d, pid)


def test_missing_plugin_binary(net):
    conf = {"cniVersion": "1.0.0", "name": "missing", "plugins": [
        {"type": "good"}, {"type": "not-installed"}]}
    d = fake_hulld(net, conf, "good")
    expect_rpc_error(lambda: run_pod(d, kubelet_like("m")), grpc.StatusCode.UNKNOWN,
                     'failed to find plugin "not-installed"', net.fake_dir)
    assert [(r[0], r[1]) for r in net.records()] == [("good", "ADD"), ("good", "DEL")]
    assert_rolled_back(net, d)


def test_invalid_conflist(net):
    net.install_fakes("good")
    net.write("10-bad.conflist", '{"cniVersion": "1.0.0", "name": "x", "plugins": [')
    d = net.hulld(*net.args(plugins=net.fake_dir))
    ok, reason, message = network_ready(d)
    assert not ok and reason == "NetworkPluginNotReady"
    assert "10-bad.conflist" in message and "invalid JSON" in message
    expect_rpc_error(lambda: run_pod(d, kubelet_like("i")), grpc.StatusCode.FAILED_PRECONDITION,
                     "10-bad.conflist")
    assert_rolled_back(net, d)
    assert net.records() == []
    # a plugin type that tries to leave the plugin dirs is invalid too
    net.write("10-bad.conflist", {"cniVersion": "1.0.0", "name": "x",
                                  "plugins": [{"type": "../../../bin/sh"}]})
    ok, _, message = network_ready(d)
    assert not ok and "type" in message
    # fixing the file is picked up without a restart
    net.write("10-bad.conflist", {"cniVersion": "1.0.0", "name": "x",
                                  "plugins": [{"type": "good"}]})
    assert network_ready(d)[0] is True
    pid = run_pod(d, kubelet_like("i"))
    remove_pod(d, pid)


def test_duplicate_pod_already_exists_runs_no_plugin(net):
    d = fake_hulld(net, FLANNEL, "flannel", "portmap")
    pid = run_pod(d, kubelet_like("same", namespace="n1"))
    net.clear_records()
    expect_rpc_error(lambda: run_pod(d, kubelet_like("same", namespace="n1")),
                     grpc.StatusCode.ALREADY_EXISTS, "same", "n1")
    assert net.records() == []
    assert len(nsfs_mounts(d.state_dir)) == 4  # net, ipc, uts, shm of the first pod only
    remove_pod(d, pid)


def test_pod_names_cannot_inject_cni_args(net):
    d = fake_hulld(net, FLANNEL, "flannel", "portmap")
    expect_rpc_error(lambda: run_pod(d, kubelet_like("x;K8S_POD_NAMESPACE=kube-system")),
                     grpc.StatusCode.INVALID_ARGUMENT, "';' or '='")
    assert net.records() == []
    assert_rolled_back(net, d)


CONTRIB = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "contrib", "cni")


def test_contrib_conflists_are_accepted(net):
    """contrib/cni/ examples load (NetworkReady) and chain the expected plugins."""
    files = sorted(f for f in os.listdir(CONTRIB) if f.endswith(".conflist"))
    assert len(files) == 3
    d = net.hulld(*net.args())
    for f in files:
        for old in os.listdir(net.conf_dir):
            os.unlink(os.path.join(net.conf_dir, old))
        with open(os.path.join(CONTRIB, f)) as src:
            doc = json.load(src)
        net.write(f, doc)
        ok, _, message = network_ready(d)
        assert ok, f"{f}: {message}"
        assert doc["plugins"][0]["type"] in ("bridge", "flannel", "calico")


SLOW_PLUGIN = r"""#!/bin/sh
d=$(dirname "$0")/rec
mkdir -p "$d"
n=$(ls "$d" | grep -c '\.in$')
n=$(printf '%03d' "$n")
cat > "$d/$n-slow-$CNI_COMMAND.in"
env | grep '^CNI_' | sort > "$d/$n-slow-$CNI_COMMAND.env"
if [ "$CNI_COMMAND" = ADD ]; then
  echo $$ > "$(dirname "$0")/slow.pid"
  sleep 60
fi
exit 0
"""


def test_half_created_pod_cleaned_after_crash(net):
    """hulld killed while a plugin runs ADD: on restart the pod is rolled back (DEL, pins,
    shm, cgroup, record) and never listed."""
    import signal
    net.install_fakes("good")
    with open(os.path.join(net.fake_dir, "slow"), "w") as f:
        f.write(SLOW_PLUGIN)
    os.chmod(os.path.join(net.fake_dir, "slow"), 0o755)
    net.write("10-test.conflist", {"cniVersion": "1.0.0", "name": "slownet",
                                   "plugins": [{"type": "slow"}]})
    d = net.hulld(*net.args(plugins=net.fake_dir))
    call = Background(run_pod, d, kubelet_like("crash", pid=pb.POD))
    pidfile = os.path.join(net.fake_dir, "slow.pid")
    # the plugin wrote its pid file after the pid-file line: read it once it has a pid
    pid = wait_for(lambda: os.path.exists(pidfile) and open(pidfile).read().strip(),
                   what="the slow plugin's pid file")
    assert len(nsfs_mounts(d.state_dir)) >= 4
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    os.kill(int(pid), signal.SIGKILL)
    with pytest.raises(grpc.RpcError) as e:
        call.result(30)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value
    d.proc = None
    d._log.close()
    d.start()
    assert len(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items) == 0
    cmds = [(r[0], r[1]) for r in net.records()]
    assert cmds == [("slow", "ADD"), ("slow", "DEL")]
    assert_rolled_back(net, d)
    # the infra process of the half-created pod is gone too (its cgroup could not be removed
    # otherwise, see assert_rolled_back)


def test_del_failure_fails_stop_until_it_succeeds(net):
    d = fake_hulld(net, FLANNEL, "flannel", "portmap")
    pid = run_pod(d, kubelet_like("stuck"))
    netns = info(d, pid)["netns"]
    flag = os.path.join(net.fake_dir, "fail-del")
    open(flag, "w").close()
    expect_rpc_error(lambda: stop_pod(d, pid), grpc.StatusCode.UNAVAILABLE, "cannot delete now")
    st = status(d, pid).status
    assert st.state == pb.SANDBOX_NOTREADY
    # the netns stays pinned while DEL is owed, and DEL is retried (also after a restart)
    assert os.path.exists(netns)
    d.restart()
    expect_rpc_error(lambda: remove_pod(d, pid), grpc.StatusCode.UNAVAILABLE, "cannot delete now")
    os.unlink(flag)
    net.clear_records()
    remove_pod(d, pid)
    assert [(r[0], r[1]) for r in net.records()] == [("portmap", "DEL"), ("flannel", "DEL")]
    assert not os.path.exists(netns)
    assert_rolled_back(net, d)
