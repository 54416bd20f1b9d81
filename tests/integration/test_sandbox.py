"""Pod sandboxes with the real Debian CNI plugins (bridge, host-local, portmap, loopback) and a
real hulld: addresses, reachability, port mapping, host network, DNS/hostname/hosts/shm
files, sysctls, cgroups, stop/remove semantics, restarts, List filters, and a clean host
afterwards."""
import ipaddress
import os
import random
import socket
import subprocess
import time

import grpc
import pytest

from conftest import pb
from cri import wait_for
from cni_env import (BUSYBOX, NetEnv, expect_rpc_error, info, kubelet_like, network_ready,
                          remove_pod, run_pod, sh, status, stop_pod)


@pytest.fixture
def net(hulld_factory):
    # depends on hulld_factory, so it is torn down first: pods are removed while hulld runs
    env = NetEnv(hulld_factory)
    yield env
    env.cleanup()


@pytest.fixture
def bridge_hulld(net):
    net.write_bridge()
    d = net.hulld(*net.args())
    yield d
    # every pod a test leaves is removed (and must leave nothing behind)
    try:
        for it in d.runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items:
            remove_pod(d, it.id)
    except grpc.RpcError:
        pass


def nsexec(netns, *cmd, check=True, timeout=20):
    return sh("nsenter", f"--net={netns}", *cmd, check=check, timeout=timeout)


def test_two_pods_distinct_ips_reach_each_other(net, bridge_hulld):
    d = bridge_hulld
    a = run_pod(d, kubelet_like("pod-a"))
    b = run_pod(d, kubelet_like("pod-b"))
    ip_a, ip_b = status(d, a).status.network.ip, status(d, b).status.network.ip
    assert ip_a and ip_b and ip_a != ip_b
    assert ip_a.startswith(net.subnet_prefix + ".") and ip_b.startswith(net.subnet_prefix + ".")
    na, nb = info(d, a)["netns"], info(d, b)["netns"]
    # the address is on eth0 inside the pod's namespace, loopback is up
    out = nsexec(na, "ip", "-o", "-4", "addr", "show").stdout
    assert f"eth0    inet {ip_a}/24" in out.replace("\t", " ") or f"inet {ip_a}/24" in out
    assert "lo    inet 127.0.0.1/8" in out.replace("\t", " ") or "127.0.0.1/8" in out
    # they reach each other across the bridge
    nsexec(na, BUSYBOX, "ping", "-c", "1", "-W", "3", ip_b)
    nsexec(nb, BUSYBOX, "ping", "-c", "1", "-W", "3", ip_a)
    # DEL on stop releases the address, the veth and the netns
    assert os.path.exists(os.path.join(net.ipam_dir, "hulltest", ip_a))
    stop_pod(d, a)
    st = status(d, a).status
    assert st.state == pb.SANDBOX_NOTREADY
    assert net.pod_leftovers(d, a, ip_a, veths=1) == []
    assert not os.path.exists(na)
    # the other pod is untouched
    nsexec(nb, BUSYBOX, "ping", "-c", "1", "-W", "3", net.subnet_prefix + ".1")
    remove_pod(d, a)
    remove_pod(d, b)
    assert net.pod_leftovers(d, b, ip_b) == []
    assert len(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items) == 0


def test_host_port_reaches_pod_from_loopback(net, bridge_hulld):
    d = bridge_hulld
    port = 20000 + (int(net.tag, 16) % 20000)
    cfg = kubelet_like("web", port_mappings=[
        pb.PortMapping(protocol=pb.TCP, container_port=8080, host_port=port)])
    pid = run_pod(d, cfg)
    netns = info(d, pid)["netns"]
    server = subprocess.Popen(["nsenter", f"--net={netns}", BUSYBOX, "nc", "-l", "-p", "8080",
                               "-e", "echo", "hello-from-pod"])
    try:
        got = b""
        deadline = time.time() + 10
        while time.time() < deadline and b"hello-from-pod" not in got:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    got = s.recv(100)
            except OSError:
                time.sleep(0.2)
        assert b"hello-from-pod" in got
    finally:
        server.kill()
        server.wait()
    assert f"dport {port}" in sh("iptables-save", "-t", "nat").stdout.replace("--", "")
    stop_pod(d, pid)
    assert f"--dport {port} " not in sh("iptables-save", "-t", "nat").stdout
    assert net.pod_leftovers(d, pid) == []


def test_host_network_pod_skips_cni(net, bridge_hulld):
    d = bridge_hulld
    net.install_fakes("never")  # not used: host network runs no plugin
    cfg = kubelet_like("hostnet", network=pb.NODE, pid=pb.POD)
    pid = run_pod(d, cfg)
    st = status(d, pid).status
    assert st.network.ip == ""
    assert st.linux.namespaces.options.network == pb.NODE
    i = info(d, pid)
    assert i["netns"] is None and i["utsns"] is None
    # the infra process sees the host's interfaces
    assert os.readlink(f"/proc/{i['pid']}/ns/net") == os.readlink("/proc/self/ns/net")
    # (links that other pods create or remove meanwhile come and go: compare the ones that
    # were there both before and after the infra's view was taken)
    def links(*nsenter):
        out = sh(*nsenter, "ip", "-o", "link").stdout
        return {line.split(":")[1].strip() for line in out.splitlines()}
    before = links()
    seen = links("nsenter", "-t", str(i["pid"]), "-n")
    steady = before & links()
    assert len(steady) >= 2 and steady <= seen, (steady - seen, seen)
    # hostname and hosts are the host's
    with open(i["hosts"]) as f, open("/etc/hosts") as g:
        assert f.read() == g.read()
    with open(os.path.join(os.path.dirname(i["hosts"]), "hostname")) as f:
        assert f.read().strip() == socket.gethostname()
    stop_pod(d, pid)
    remove_pod(d, pid)
    assert not os.path.exists(os.path.dirname(i["hosts"]))


def test_dns_hostname_hosts_shm_files(net, bridge_hulld):
    d = bridge_hulld
    dns = pb.DNSConfig(servers=["10.96.0.10", "1.1.1.1"],
                       searches=["ns1.svc.cluster.local", "svc.cluster.local"],
                       options=["ndots:5", "timeout:2"])
    pid = run_pod(d, kubelet_like("dnspod", hostname="my-host", dns_config=dns))
    i = info(d, pid)
    podd = os.path.dirname(i["hosts"])
    with open(os.path.join(podd, "resolv.conf")) as f:
        assert f.read() == ("search ns1.svc.cluster.local svc.cluster.local\n"
                            "nameserver 10.96.0.10\nnameserver 1.1.1.1\n"
                            "options ndots:5 timeout:2\n")
    with open(os.path.join(podd, "hostname")) as f:
        assert f.read() == "my-host\n"
    with open(i["hosts"]) as f:
        hosts = f.read()
    ip = status(d, pid).status.network.ip
    assert "127.0.0.1\tlocalhost" in hosts and f"{ip}\tmy-host" in hosts
    # the UTS namespace carries the hostname
    assert sh("nsenter", f"--uts={i['utsns']}", "hostname").stdout.strip() == "my-host"
    # /dev/shm: a size-limited tmpfs
    with open("/proc/self/mounts") as f:
        shm = [line.split() for line in f if line.split()[1] == i["shm"]]
    assert shm and shm[0][2] == "tmpfs" and "size=65536k" in shm[0][3]
    assert "nosuid" in shm[0][3] and "nodev" in shm[0][3]
    # without DNSConfig: the host's resolv.conf
    pid2 = run_pod(d, kubelet_like("nodns"))
    with open(os.path.join(os.path.dirname(info(d, pid2)["hosts"]), "resolv.conf")) as f, \
            open("/etc/resolv.conf") as g:
        assert f.read() == g.read()
    remove_pod(d, pid)
    remove_pod(d, pid2)
    with open("/proc/self/mounts") as f:
        assert i["shm"] not in f.read()


def test_sysctls_applied_in_pod_namespaces(net, bridge_hulld):
    d = bridge_hulld
    linux = pb.LinuxPodSandboxConfig(sysctls={
        "net.ipv4.ip_unprivileged_port_start": "80",
        "kernel.shm_rmid_forced": "1",
        "net.ipv4.ping_group_range": "0 2147483647",
    })
    pid = run_pod(d, kubelet_like("sysctl", linux=linux))
    i = info(d, pid)
    assert nsexec(i["netns"], "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"
                  ).stdout.strip() == "80"
    assert nsexec(i["netns"], "cat", "/proc/sys/net/ipv4/ping_group_range"
                  ).stdout.split() == ["0", "2147483647"]
    assert sh("nsenter", f"--ipc={i['ipcns']}", "cat", "/proc/sys/kernel/shm_rmid_forced"
              ).stdout.strip() == "1"
    # the host is untouched
    with open("/proc/sys/kernel/shm_rmid_forced") as f:
        assert f.read().strip() == "0"
    remove_pod(d, pid)


@pytest.mark.parametrize("sysctls,network,text", [
    ({"kernel.core_pattern": "|/tmp/x"}, pb.POD, "not allowed"),
    ({"vm.swappiness": "1"}, pb.POD, "not allowed"),
    ({"kernel.shm_rmid_forced": "1+kernel.core_pattern=|/tmp/pwn"}, pb.POD, "must not contain"),
    ({"net.ipv4.ip_forward": "1\nkernel.core_pattern=|/tmp/pwn"}, pb.POD, "control character"),
    ({"net/../kernel/core_pattern": "x"}, pb.POD, "invalid"),
    ({"net.ipv4.ip_forward": "1"}, pb.NODE, "host network"),
    ({"net.ipv4.no_such_sysctl_knob": "1"}, pb.POD, "no_such_sysctl_knob"),
])
def test_sysctl_rejections(net, bridge_hulld, sysctls, network, text):
    """SECURITY.md "pod strings injected into privileged actions": names are allowlisted,
    values can't smuggle a second key (CRI-O CVE-2022-0811), and nothing is left behind."""
    d = bridge_hulld
    with open("/proc/sys/kernel/core_pattern") as f:
        core_before = f.read()
    cfg = kubelet_like("bad-sysctl", network=network,
                       linux=pb.LinuxPodSandboxConfig(sysctls=sysctls))
    expect_rpc_error(lambda: run_pod(d, cfg), grpc.StatusCode.INVALID_ARGUMENT, text)
    with open("/proc/sys/kernel/core_pattern") as f:
        assert f.read() == core_before
    assert len(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items) == 0
    assert [m for m in open("/proc/self/mounts").read().splitlines()
            if d.state_dir in m or d.root in m] == []
    for c in net.cgroup_dirs():
        assert not [x for x in os.listdir(c) if x.startswith("pod-")]


def test_shared_pid_infra_process_and_cgroup(net, bridge_hulld):
    d = bridge_hulld
    pid = run_pod(d, kubelet_like("sharedpid", pid=pb.POD))
    i = info(d, pid)
    infra = i["pid"]
    assert infra > 0
    with open(f"/proc/{infra}/comm") as f:
        assert f.read().strip() == "hull-pause"
    # PID 1 of its own pid namespace, inside the pod's net/ipc/uts namespaces
    with open(f"/proc/{infra}/status") as f:
        nspid = [line for line in f if line.startswith("NSpid:")][0].split()
    assert nspid[-1] == "1"
    for kind, path in (("net", i["netns"]), ("ipc", i["ipcns"]), ("uts", i["utsns"]),
                       ("pid", i["pidns"])):
        assert os.stat(f"/proc/{infra}/ns/{kind}").st_ino == os.stat(path).st_ino
    # the pod cgroup exists under every controller and holds the infra process
    leaf = "/pod-" + pid
    dirs = net.cgroup_dirs(leaf)
    assert len(dirs) >= 4
    for c in dirs:
        with open(os.path.join(c, "cgroup.procs")) as f:
            assert str(infra) in f.read().split()
    assert i["cgroupParent"] == net.cgroup_parent + leaf
    stop_pod(d, pid)
    assert not os.path.exists(f"/proc/{infra}") or open(f"/proc/{infra}/stat").read().split()[2] == "Z"
    remove_pod(d, pid)
    assert net.cgroup_dirs(leaf) == []


def test_explicit_cgroup_parent(net, bridge_hulld):
    d = bridge_hulld
    parent = net.cgroup_parent + "/kubepods/podabc"
    pid = run_pod(d, kubelet_like("cg", linux=pb.LinuxPodSandboxConfig(cgroup_parent=parent)))
    assert info(d, pid)["cgroupParent"] == parent
    assert len(net.cgroup_dirs("/kubepods/podabc")) >= 4
    remove_pod(d, pid)
    assert net.cgroup_dirs("/kubepods/podabc") == []
    expect_rpc_error(lambda: run_pod(d, kubelet_like(
        "cg2", linux=pb.LinuxPodSandboxConfig(cgroup_parent="/kubepods/../../etc"))),
        grpc.StatusCode.INVALID_ARGUMENT, "cgroup_parent")


def test_stop_remove_idempotent_and_status(net, bridge_hulld):
    d = bridge_hulld
    pid = run_pod(d, kubelet_like("idem"))
    stop_pod(d, pid)
    stop_pod(d, pid)
    assert status(d, pid).status.state == pb.SANDBOX_NOTREADY
    assert status(d, pid).status.network.ip == ""
    remove_pod(d, pid)
    remove_pod(d, pid)
    stop_pod(d, pid)
    expect_rpc_error(lambda: status(d, pid), grpc.StatusCode.NOT_FOUND, pid)
    # remove without a stop first stops too
    pid2 = run_pod(d, kubelet_like("idem2"))
    ip2 = status(d, pid2).status.network.ip
    remove_pod(d, pid2)
    assert net.pod_leftovers(d, pid2, ip2) == []


def test_duplicate_name_already_exists(net, bridge_hulld):
    d = bridge_hulld
    pid = run_pod(d, kubelet_like("dup"))
    e = expect_rpc_error(lambda: run_pod(d, kubelet_like("dup")),
                         grpc.StatusCode.ALREADY_EXISTS, "dup", "default")
    assert pid[:12] in e.details()
    assert len(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items) == 1
    # another attempt or namespace is fine
    other = run_pod(d, kubelet_like("dup", attempt=1))
    remove_pod(d, other)
    remove_pod(d, pid)
    assert net.pod_leftovers(d, pid) == []


def test_list_filters(net, bridge_hulld):
    d = bridge_hulld
    a = run_pod(d, kubelet_like("la", labels={"app": "x", "tier": "web"}))
    b = run_pod(d, kubelet_like("lb", labels={"app": "x", "tier": "db"}))
    c = run_pod(d, kubelet_like("lc", labels={"app": "y"}, annotations={"k": "v"}))
    stop_pod(d, c)

    def ids(flt=None):
        req = pb.ListPodSandboxRequest(filter=flt) if flt else pb.ListPodSandboxRequest()
        return sorted(it.id for it in d.runtime.ListPodSandbox(req).items)

    assert ids() == sorted([a, b, c])
    assert ids(pb.PodSandboxFilter(id=a)) == [a]
    assert ids(pb.PodSandboxFilter(id=a[:10])) == [a]
    assert ids(pb.PodSandboxFilter(label_selector={"app": "x"})) == sorted([a, b])
    assert ids(pb.PodSandboxFilter(label_selector={"app": "x", "tier": "db"})) == [b]
    assert ids(pb.PodSandboxFilter(label_selector={"app": "z"})) == []
    ready = pb.PodSandboxFilter(state=pb.PodSandboxStateValue(state=pb.SANDBOX_READY))
    notready = pb.PodSandboxFilter(state=pb.PodSandboxStateValue(state=pb.SANDBOX_NOTREADY))
    assert ids(ready) == sorted([a, b])
    assert ids(notready) == [c]
    items = {it.id: it for it in d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items}
    assert items[c].annotations["k"] == "v" and items[c].metadata.name == "lc"
    assert items[a].runtime_handler == "hull-oci"
    # Status by unique prefix
    assert status(d, b[:8]).status.id == b
    # StreamPodSandboxes returns the same set
    got = []
    for resp in d.runtime.StreamPodSandboxes(pb.StreamPodSandboxesRequest(filter=ready)):
        got += [p.id for p in resp.pod_sandboxes]
    assert sorted(got) == sorted([a, b])


def test_stop_after_restart_and_config_removed(net, bridge_hulld):
    d = bridge_hulld
    a = run_pod(d, kubelet_like("r1"))
    b = run_pod(d, kubelet_like("r2", pid=pb.POD))
    ip_a, ip_b = status(d, a).status.network.ip, status(d, b).status.network.ip
    d.restart()
    # state survives the restart
    st = status(d, a).status
    assert st.state == pb.SANDBOX_READY and st.network.ip == ip_a
    assert status(d, b).status.state == pb.SANDBOX_READY
    stop_pod(d, a)
    assert net.pod_leftovers(d, a, ip_a, veths=1) == []
    # the config file disappears: DEL still works from the cache
    for f in os.listdir(net.conf_dir):
        os.unlink(os.path.join(net.conf_dir, f))
    assert network_ready(d)[0] is False
    d.restart()
    stop_pod(d, b)
    assert net.pod_leftovers(d, b, ip_b) == []
    remove_pod(d, a)
    remove_pod(d, b)


def test_network_ready_follows_config_dir(net):
    d = net.hulld(*net.args())
    ok, reason, message = network_ready(d)
    assert not ok and reason == "NetworkPluginNotReady" and net.conf_dir in message
    expect_rpc_error(lambda: run_pod(d, kubelet_like("early")),
                     grpc.StatusCode.FAILED_PRECONDITION, "network not ready")
    assert nsfs_free(d)
    net.write_bridge()
    assert network_ready(d)[0] is True  # no restart needed
    pid = run_pod(d, kubelet_like("late"))
    remove_pod(d, pid)


def nsfs_free(d):
    with open("/proc/self/mounts") as f:
        return not any(d.state_dir in line for line in f)


def test_write_default_config(net):
    d = net.hulld(*net.args(), "--cni-write-default-config", "--cni-default-subnet",
                      net.subnet)
    files = os.listdir(net.conf_dir)
    assert files == ["10-hull-bridge.conflist"]
    with open(os.path.join(net.conf_dir, files[0])) as f:
        text = f.read()
    assert '"hull0"' in text and net.subnet in text and '"portmap"' in text
    assert network_ready(d)[0] is True


def test_runtime_handler_selection(net, bridge_hulld):
    d = bridge_hulld
    pid = run_pod(d, kubelet_like("rh"), handler="hull-oci")
    assert status(d, pid).status.runtime_handler == "hull-oci"
    expect_rpc_error(lambda: run_pod(d, kubelet_like("rh2"), handler="nope"),
                     grpc.StatusCode.INVALID_ARGUMENT, "nope")
    remove_pod(d, pid)


def test_host_ipc_and_pid(net, bridge_hulld):
    d = bridge_hulld
    pid = run_pod(d, kubelet_like("hostipc", ipc=pb.NODE, pid=pb.NODE))
    i = info(d, pid)
    assert i["ipcns"] is None and i["pidns"] is None and i["pid"] == 0
    assert i["shm"] == "/dev/shm"
    opts = status(d, pid).status.linux.namespaces.options
    assert opts.ipc == pb.NODE and opts.pid == pb.NODE and opts.network == pb.POD
    expect_rpc_error(lambda: run_pod(d, kubelet_like(
        "hostipc2", ipc=pb.NODE, linux=pb.LinuxPodSandboxConfig(
            sysctls={"kernel.shm_rmid_forced": "1"}))),
        grpc.StatusCode.INVALID_ARGUMENT, "host IPC")
    remove_pod(d, pid)


def test_concurrent_pods_no_fd_leak(net, bridge_hulld):
    """8 pods created and removed from 4 threads at once: distinct IPs, all clean, and the
    daemon holds as many fds and threads afterwards as before."""
    import concurrent.futures
    d = bridge_hulld
    # first-use allocations (plugins dirs, cache dir, the infra process's seccomp program and
    # binary copy)
    run_pod(d, kubelet_like("warm", pid=pb.POD))
    remove_pod(d, d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items[0].id)
    fds_before = len(os.listdir(f"/proc/{d.proc.pid}/fd"))

    def one(i):
        pid = run_pod(d, kubelet_like(f"c{i}", pid=pb.POD if i % 2 else pb.CONTAINER))
        return pid, status(d, pid).status.network.ip

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        pods = list(ex.map(one, range(8)))
    ips = [ip for _, ip in pods]
    assert len(set(ips)) == 8 and all(ips)
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda p: remove_pod(d, p[0]), pods))
    for pid, ip in pods:
        assert net.pod_leftovers(d, pid, ip) == []
    # (a plugin's pipes are closed a moment after its pod call answered)
    wait_for(lambda: len(os.listdir(f"/proc/{d.proc.pid}/fd")) <= fds_before, timeout=10,
             what="hulld's fd count back to where it was")


def test_dual_stack_pod_ips(net):
    """host-local with a v4 and a v6 range: PodSandboxStatus reports the v4 address as ip and
    the v6 one in additional_ips; both are on eth0 in the pod."""
    v6 = "fd%02x:%s::/64" % (random.randrange(256), net.tag[:4])
    plugins = net.bridge_plugins(masq=False)
    plugins[0]["ipam"]["ranges"] = [[{"subnet": net.subnet}], [{"subnet": v6}]]
    plugins[0]["ipam"]["routes"] = [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]
    net.write("10-dual.conflist", {"cniVersion": "1.0.0", "name": "hulltest",
                                   "plugins": plugins})
    d = net.hulld(*net.args())
    pid = run_pod(d, kubelet_like("dual"))
    st = status(d, pid).status
    assert st.network.ip.startswith(net.subnet_prefix + ".")
    assert len(st.network.additional_ips) == 1
    ip6 = st.network.additional_ips[0].ip
    # compare as addresses: the text form drops leading zeros of a group ("08e9" -> "8e9")
    assert ipaddress.ip_address(ip6) in ipaddress.ip_network(v6)
    out = nsexec(info(d, pid)["netns"], "ip", "-o", "addr", "show", "dev", "eth0").stdout
    assert st.network.ip in out and ip6 in out
    with open(info(d, pid)["hosts"]) as f:
        hosts = f.read()
    assert f"{st.network.ip}\tdual" in hosts and f"{ip6}\tdual" in hosts
    remove_pod(d, pid)
    assert net.pod_leftovers(d, pid) == []


@pytest.mark.parametrize("kw,text", [
    ({"dns_config": pb.DNSConfig(servers=["1.1.1.1\nnameserver 6.6.6.6"])}, "DNS"),
    ({"dns_config": pb.DNSConfig(searches=["a.local options ndots:0"])}, "DNS"),
    ({"hostname": "evil\nhost"}, "hostname"),
    ({"hostname": "x" * 65}, "hostname"),
    ({"port_mappings": [pb.PortMapping(container_port=80, host_port=8080,
                                       host_ip="1.2.3.4; rm -rf /")]}, "host_ip"),
    ({"port_mappings": [pb.PortMapping(container_port=70000, host_port=8080)]}, "port mapping"),
    ({"linux": pb.LinuxPodSandboxConfig(cgroup_parent="relative/path")}, "cgroup_parent"),
])
def test_pod_strings_validated(net, bridge_hulld, kw, text):
    """Pod-supplied strings never reach files or privileged actions unchecked (SECURITY.md:
    pod strings injected into privileged actions)."""
    d = bridge_hulld
    expect_rpc_error(lambda: run_pod(d, kubelet_like("strings", **kw)),
                     grpc.StatusCode.INVALID_ARGUMENT, text)
    assert len(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items) == 0
    with open("/proc/self/mounts") as f:
        assert d.state_dir not in f.read()


def test_update_pod_sandbox_resources(net, bridge_hulld):
    d = bridge_hulld
    pid = run_pod(d, kubelet_like("res"))
    mem = os.path.join("/sys/fs/cgroup/memory" + net.cgroup_parent, "pod-" + pid,
                       "memory.limit_in_bytes")
    with open(mem) as f:
        before = f.read()
    # informational (kubelet resized the pod cgroup itself): the cgroup is left alone
    d.runtime.UpdatePodSandboxResources(pb.UpdatePodSandboxResourcesRequest(
        pod_sandbox_id=pid, resources=pb.LinuxContainerResources(
            memory_limit_in_bytes=256 * 1024 * 1024, cpu_shares=512)))
    with open(mem) as f:
        assert f.read() == before
    expect_rpc_error(lambda: d.runtime.UpdatePodSandboxResources(
        pb.UpdatePodSandboxResourcesRequest(pod_sandbox_id="f" * 64)),
        grpc.StatusCode.NOT_FOUND, "not found")
    remove_pod(d, pid)


@pytest.mark.parametrize("version", ["0.3.1", "0.4.0"])
def test_real_plugins_older_cni_versions(net, version):
    net.write_bridge(version=version)
    d = net.hulld(*net.args())
    pid = run_pod(d, kubelet_like("v" + version.replace(".", "")))
    ip = status(d, pid).status.network.ip
    assert ip.startswith(net.subnet_prefix + ".")
    nsexec(info(d, pid)["netns"], BUSYBOX, "ping", "-c", "1", "-W", "3", net.subnet_prefix + ".1")
    stop_pod(d, pid)
    assert net.pod_leftovers(d, pid, ip) == []
    remove_pod(d, pid)


def process_gone(pid):
    """pid has exited (it is gone, or a zombie nobody reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_pod_not_ready_after_restart_when_infra_died(net, bridge_hulld):
    d = bridge_hulld
    pid = run_pod(d, kubelet_like("dies", pid=pb.POD))
    ip = status(d, pid).status.network.ip
    infra = info(d, pid)["pid"]
    os.kill(infra, 9)
    wait_for(lambda: process_gone(infra), what="the infra process's death")
    d.restart()
    assert status(d, pid).status.state == pb.SANDBOX_NOTREADY
    stop_pod(d, pid)
    remove_pod(d, pid)
    assert net.pod_leftovers(d, pid, ip) == []
    assert net.cgroup_dirs("/pod-" + pid) == []


def test_pod_not_ready_when_infra_dies(net, bridge_hulld):
    d = bridge_hulld
    pid = run_pod(d, kubelet_like("dies2", pid=pb.POD))
    os.kill(info(d, pid)["pid"], 9)
    wait_for(lambda: status(d, pid).status.state == pb.SANDBOX_NOTREADY,
             what="the pod to turn NOTREADY")
    notready = pb.PodSandboxFilter(state=pb.PodSandboxStateValue(state=pb.SANDBOX_NOTREADY))
    assert [p.id for p in d.runtime.ListPodSandbox(
        pb.ListPodSandboxRequest(filter=notready)).items] == [pid]
    remove_pod(d, pid)
    assert net.cgroup_dirs("/pod-" + pid) == []


def test_pod_resources_at_run(net, bridge_hulld):
    d = bridge_hulld
    linux = pb.LinuxPodSandboxConfig(resources=pb.LinuxContainerResources(
        memory_limit_in_bytes=128 * 1024 * 1024, cpu_quota=50000, cpu_period=100000))
    pid = run_pod(d, kubelet_like("res-run", linux=linux))
    base = net.cgroup_parent + "/pod-" + pid
    with open("/sys/fs/cgroup/memory" + base + "/memory.limit_in_bytes") as f:
        assert int(f.read()) == 128 * 1024 * 1024
    with open("/sys/fs/cgroup/cpu" + base + "/cpu.cfs_quota_us") as f:
        assert int(f.read()) == 50000
    remove_pod(d, pid)
