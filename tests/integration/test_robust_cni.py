"""Robustness of pod networking (issue #23): host-port rules after a crash, misbehaving CNI
plugins (children left behind, stdout held open, DEL that always fails, a plugin binary gone)
and the gRPC codes of CNI failures.  Real bridge/host-local/portmap plugins where they matter,
small shell plugins for the misbehaviour."""
import os
import random
import shlex
import subprocess
import time

import grpc
import pytest

from conftest import pb
from cni_env import (NetEnv, expect_rpc_error, iptables_lines, kubelet_like, remove_pod,
                          run_pod, stop_pod)

CRASH_ENV = "HULL_TEST_CRASH_AT"


@pytest.fixture
def net(hulld_factory):
    n = NetEnv(hulld_factory)
    yield n
    n.cleanup()


def nat_rules():
    return [line for line in iptables_lines().splitlines() if line.startswith(("-A ", ":"))]


def dn_chains():
    return {line.split()[0][1:] for line in iptables_lines().splitlines()
            if line.startswith(":CNI-DN-")}


def rules_for_port(port):
    return [r for r in nat_rules() if f"--dport {port} " in r + " " or f"--dports {port} " in r + " "]


def drop_rules_of(port, chains_before):
    """Removes what portmap left for this test's host port (a failed run): the jump in
    CNI-HOSTPORT-DNAT and the CNI-DN-* chains the test created.  Nothing else is touched."""
    r = subprocess.run(["iptables", "-t", "nat", "-S", "CNI-HOSTPORT-DNAT"], capture_output=True,
                       text=True)
    for line in r.stdout.splitlines():
        if line.startswith("-A ") and f"--dports {port} " in line + " ":
            subprocess.run(["iptables", "-t", "nat", *shlex.split("-D" + line[2:])],
                           capture_output=True)
    for chain in dn_chains() - chains_before:
        subprocess.run(["iptables", "-t", "nat", "-F", chain], capture_output=True)
        subprocess.run(["iptables", "-t", "nat", "-X", chain], capture_output=True)


# ---- 1. host-port rules after a crash --------------------------------------------------------

def test_crash_before_cni_cache_leaves_no_hostport_rules(net):
    """hulld dies after every plugin of the ADD ran (portmap installed its DNAT rules) but
    before the result was cached: the rollback at restart runs DEL with the pod's port
    mappings, so portmap removes its CNI-HOSTPORT-DNAT jump and CNI-DN-* chain."""
    net.write_bridge()
    port = random.randrange(20000, 30000)
    chains_before = dn_chains()
    os.environ[CRASH_ENV] = "runpod:cni-before-cache"
    try:
        d = net.hulld(*net.args())
    finally:
        del os.environ[CRASH_ENV]
    try:
        crash_then_check(d, port, chains_before)
    finally:
        drop_rules_of(port, chains_before)


def crash_then_check(d, port, chains_before):
    cfg = kubelet_like("hp", port_mappings=[pb.PortMapping(
        protocol=pb.TCP, container_port=80, host_port=port)])
    with pytest.raises(grpc.RpcError):
        run_pod(d, cfg)
    d.proc.wait(30)
    assert d.proc.returncode == -9, d.log()[-3000:]
    d.stop()
    # the plugins did their work before the crash: the rules exist now
    assert rules_for_port(port), "portmap did not install its rules (test setup)"
    assert dn_chains() - chains_before
    d.start()
    # the half-made pod was rolled back at start-up: nothing of its port mapping is left
    assert list(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items) == []
    assert rules_for_port(port) == [], rules_for_port(port)
    assert dn_chains() - chains_before == set()
    # and the port can be published again by a new pod, then released by stop/remove
    pid = run_pod(d, cfg)
    assert rules_for_port(port)
    stop_pod(d, pid)
    remove_pod(d, pid)
    assert rules_for_port(port) == []
    assert dn_chains() - chains_before == set()


# ---- 5. misbehaving plugins --------------------------------------------------------------------

def write_plugin(net, name, body):
    """A small shell plugin `name` in the test's plugin dir."""
    os.makedirs(net.fake_dir, exist_ok=True)
    path = os.path.join(net.fake_dir, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


def single_plugin_conf(net, typ, version="1.0.0"):
    net.write("10-robust.conflist", {"cniVersion": version, "name": "robust",
                                     "plugins": [{"type": typ}]})


RESULT = ('{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"%s"}],'
          '"ips":[{"address":"10.123.0.9/24","interface":0}]}')


def pids_with_marker(marker):
    """Processes whose command line holds marker (the test's own sleepers)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    out.append(int(pid))
        except OSError:
            pass
    return out


def wait_until(cond, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_background_child_holding_stdout_does_not_delay_run_pod(net):
    """A plugin that prints a valid result and exits 0 but leaves a child holding its stdout:
    hulld stops reading when the plugin exits (it used to wait for the pipe to close, i.e.
    for the child, and fail after the plugin timeout)."""
    marker = "robust-holder-" + net.tag
    write_plugin(net, "holder", f"""
if [ "$CNI_COMMAND" = ADD ]; then
  sh -c 'sleep 1000; : {marker}' &
  printf '{RESULT}' "$CNI_NETNS"
fi
exit 0
""")
    single_plugin_conf(net, "holder")
    d = net.hulld(*net.args(plugins=net.fake_dir), "--cni-plugin-timeout", "30")
    try:
        t0 = time.time()
        pid = run_pod(d, kubelet_like("holder"))
        took = time.time() - t0
        assert took < 10, f"RunPodSandbox took {took:.1f} s"
        st = d.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pid),
                                        timeout=10).status
        assert st.network.ip == "10.123.0.9"
        stop_pod(d, pid)
        remove_pod(d, pid)
    finally:
        for p in pids_with_marker(marker):
            try:
                os.kill(p, 9)
            except OSError:
                pass


def test_plugin_timeout_kills_its_process_group(net):
    """A plugin that hangs (with a child of its own) is killed at the timeout together with
    everything in its process group."""
    marker = "robust-hang-" + net.tag
    write_plugin(net, "hanger", f"""
if [ "$CNI_COMMAND" = ADD ]; then
  sh -c 'sleep 1000; : {marker}' >/dev/null 2>&1 </dev/null &
  echo $! > "$(dirname "$0")/child.pid"
  sleep 1000
fi
exit 0
""")
    single_plugin_conf(net, "hanger")
    d = net.hulld(*net.args(plugins=net.fake_dir), "--cni-plugin-timeout", "2")
    try:
        with pytest.raises(grpc.RpcError) as ei:
            run_pod(d, kubelet_like("hang"))
        assert ei.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, ei.value.details()
        assert "timed out" in ei.value.details()
        # the plugin's child went with it (it ran in the plugin's process group)
        assert wait_until(lambda: pids_with_marker(marker) == [], 10), pids_with_marker(marker)
    finally:
        for p in pids_with_marker(marker):
            try:
                os.kill(p, 9)
            except OSError:
                pass


DEL_FAILS = """
if [ "$CNI_COMMAND" = ADD ]; then
  printf '%s' "$CNI_NETNS"
  exit 0
fi
if [ "$CNI_COMMAND" = DEL ]; then
  echo '{"cniVersion":"1.0.0","code":11,"msg":"try again later"}'
  exit 1
fi
exit 0
""" % RESULT


def test_del_that_always_fails_lets_the_pod_go_after_max_failures(net):
    """StopPodSandbox answers UNAVAILABLE while DEL fails (kubelet retries); after
    cni_del_max_failures attempts in a row the teardown is given up and the pod removed."""
    write_plugin(net, "delfail", DEL_FAILS)
    single_plugin_conf(net, "delfail")
    d = net.hulld(*net.args(plugins=net.fake_dir), "--cni-del-max-failures", "3")
    pid = run_pod(d, kubelet_like("delfail"))
    for attempt in (1, 2):
        e = expect_rpc_error(lambda: stop_pod(d, pid), grpc.StatusCode.UNAVAILABLE,
                             "try again later", f"attempt {attempt} of 3")
        assert e is not None
    # the count survives a restart (kubelet may retry across one)
    d.restart()
    remove_pod(d, pid)  # the third failure: given up, logged, removed
    assert list(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items) == []
    assert "giving up on the network teardown" in d.log()


def test_del_with_plugin_binary_gone_lets_the_pod_go(net):
    """The plugin binary was removed after ADD: DEL cannot run; the pod is still removable
    after cni_del_max_failures attempts (and never before)."""
    write_plugin(net, "vanish", DEL_FAILS.replace("exit 1", "exit 0"))
    single_plugin_conf(net, "vanish")
    d = net.hulld(*net.args(plugins=net.fake_dir), "--cni-del-max-failures", "2")
    pid = run_pod(d, kubelet_like("vanish"))
    os.unlink(os.path.join(net.fake_dir, "vanish"))
    expect_rpc_error(lambda: remove_pod(d, pid), grpc.StatusCode.UNAVAILABLE,
                     'failed to find plugin "vanish"', "attempt 1 of 2")
    assert len(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items) == 1
    remove_pod(d, pid)
    assert list(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items) == []


def test_del_failures_never_give_up_when_disabled(net):
    write_plugin(net, "delfail", DEL_FAILS)
    single_plugin_conf(net, "delfail")
    d = net.hulld(*net.args(plugins=net.fake_dir), "--cni-del-max-failures", "0")
    pid = run_pod(d, kubelet_like("delfail0"))
    for _ in range(4):
        expect_rpc_error(lambda: remove_pod(d, pid), grpc.StatusCode.UNAVAILABLE, "try again")
    # the operator fixes the plugin: the next retry succeeds
    write_plugin(net, "delfail", DEL_FAILS.replace("exit 1", "exit 0"))
    remove_pod(d, pid)


# ---- 7. status codes of CNI failures ------------------------------------------------------------

def test_malformed_cni_output_is_failed_precondition(net):
    write_plugin(net, "garbage", """
if [ "$CNI_COMMAND" = ADD ]; then
  echo 'this is not json'
fi
exit 0
""")
    single_plugin_conf(net, "garbage")
    d = net.hulld(*net.args(plugins=net.fake_dir))
    expect_rpc_error(lambda: run_pod(d, kubelet_like("garbage")),
                     grpc.StatusCode.FAILED_PRECONDITION, "invalid JSON")
    assert list(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items) == []


def test_cni_del_failure_is_unavailable(net):
    write_plugin(net, "delfail", DEL_FAILS)
    single_plugin_conf(net, "delfail")
    d = net.hulld(*net.args(plugins=net.fake_dir), "--cni-del-max-failures", "0")
    pid = run_pod(d, kubelet_like("delcode"))
    expect_rpc_error(lambda: stop_pod(d, pid), grpc.StatusCode.UNAVAILABLE, "try again later")
    write_plugin(net, "delfail", DEL_FAILS.replace("exit 1", "exit 0"))
    remove_pod(d, pid)
