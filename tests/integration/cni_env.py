"""Helpers for the CNI and sandbox integration tests (no tests here).

`NetEnv` gives a test its own network world: a conflist dir, a unique bridge name and /24
subnet, a host-local data dir, a cgroup parent, and a `check_clean()` that looks at the host
(mounts, veths, iptables, IPAM files, cgroups) for anything a pod left behind.  `cleanup()`
removes what the plugins legitimately leave (the bridge) and the test's cgroup parent.
"""
import json
import os
import random
import shlex
import shutil
import subprocess
import tempfile
import time

import grpc

from conftest import pb
from cri import pod_config, remove_pod, run_pod, stop_pod  # noqa: F401  (re-exported)

REAL_PLUGINS = "/usr/lib/cni"
BUSYBOX = "/bin/busybox"
CONTROLLERS_ROOT = "/sys/fs/cgroup"

# The recording fake plugin: one script, installed under every plugin name a test needs.
# It records its stdin, its CNI_* environment and whether CNI_NETNS was a pinned namespace;
# ADD prints prevResult (plus nothing) when given one, else a fresh result with one IP from
# $dir/ip (default 10.123.0.5/24).  "failer" fails ADD with a CNI error JSON.
FAKE_PLUGIN = r"""#!/bin/sh
t=$(basename "$0")
d=$(dirname "$0")/rec
mkdir -p "$d"
n=$(ls "$d" | grep -c '\.in$')
n=$(printf '%03d' "$n")
cat > "$d/$n-$t-$CNI_COMMAND.in"
env | grep '^CNI_' | sort > "$d/$n-$t-$CNI_COMMAND.env"
ls -l /proc/$$/fd > "$d/$n-$t-$CNI_COMMAND.fds"
if [ -n "$CNI_NETNS" ] && grep -q " $CNI_NETNS nsfs" /proc/self/mounts; then
  echo pinned > "$d/$n-$t-$CNI_COMMAND.netns"
fi
if [ "$CNI_COMMAND" = DEL ] && [ -e "$(dirname "$0")/fail-del" ]; then
  echo '{"cniVersion":"1.0.0","code":7,"msg":"cannot delete now"}'
  exit 1
fi
if [ "$t" = failer ] && [ "$CNI_COMMAND" = ADD ]; then
  echo '{"cniVersion":"1.0.0","code":99,"msg":"fake failure","details":"asked to fail"}'
  exit 1
fi
if [ "$CNI_COMMAND" = ADD ]; then
  ip=$(cat "$(dirname "$0")/ip" 2>/dev/null || echo 10.123.0.5/24)
  if grep -q prevResult "$d/$n-$t-$CNI_COMMAND.in"; then
    /usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["prevResult"]))' "$d/$n-$t-$CNI_COMMAND.in"
  else
    echo '{"cniVersion":"'"$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cniVersion"])' "$d/$n-$t-$CNI_COMMAND.in")"'","interfaces":[{"name":"eth0","sandbox":"'"$CNI_NETNS"'"}],"ips":[{"address":"'"$ip"'","interface":0}],"by":"'"$t"'"}'
  fi
fi
exit 0
"""


def rpc_code(excinfo):
    return excinfo.value.code()


def kubelet_like(name, pid=pb.CONTAINER, network=pb.POD, ipc=pb.POD, namespace="default",
                 uid=None, **kw):
    """A pod config as kubelet sends it (namespace "default", uid "uid-<name>", no shared PID
    namespace unless asked)."""
    return pod_config(name, namespace=namespace, uid=uid or f"uid-{name}", network=network,
                      pid=pid, ipc=ipc, **kw)


def status(d, pid, verbose=False):
    return d.runtime.PodSandboxStatus(
        pb.PodSandboxStatusRequest(pod_sandbox_id=pid, verbose=verbose), timeout=10)


def info(d, pid):
    return json.loads(status(d, pid, verbose=True).info["info"])


def network_ready(d):
    conds = d.runtime.Status(pb.StatusRequest(), timeout=10).status.conditions
    c = [c for c in conds if c.type == "NetworkReady"][0]
    return c.status, c.reason, c.message


def sh(*args, check=True, timeout=30, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True,
                          timeout=timeout, **kw)


def nsfs_mounts(prefix):
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(prefix)]


def iptables_lines():
    out = ""
    for table in ("nat", "filter"):
        r = sh("iptables-save", "-t", table, check=False)
        out += r.stdout
    return out


class NetEnv:
    def __init__(self, factory=None):
        self.factory = factory
        self.daemons = []
        self.base = tempfile.mkdtemp(prefix="hullnet-")
        self.tag = "%06x" % random.randrange(1 << 24)
        self.bridge = "hbr" + self.tag  # <= 15 chars
        self.subnet_prefix = "10.%d.%d" % (random.randrange(160, 250), random.randrange(0, 255))
        self.subnet = self.subnet_prefix + ".0/24"
        self.conf_dir = os.path.join(self.base, "net.d")
        self.ipam_dir = os.path.join(self.base, "ipam")
        self.fake_dir = os.path.join(self.base, "fakebin")
        self.cgroup_parent = "/hulltest-" + self.tag
        os.makedirs(self.conf_dir)
        self._iptables_before = iptables_lines()

    # ---- configs
    def bridge_plugins(self, masq=True):
        return [
            {"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": masq,
             "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": self.ipam_dir,
                      "routes": [{"dst": "0.0.0.0/0"}],
                      "ranges": [[{"subnet": self.subnet}]]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "loopback"},
        ]

    def write(self, fname, doc):
        path = os.path.join(self.conf_dir, fname)
        tmp = path + ".tmp~"
        with open(tmp, "w") as f:
            f.write(doc if isinstance(doc, str) else json.dumps(doc, indent=1))
        os.rename(tmp, path)
        return path

    def write_bridge(self, name="hulltest", fname="10-hulltest.conflist", version="1.0.0"):
        return self.write(fname, {"cniVersion": version, "name": name,
                                  "plugins": self.bridge_plugins()})

    def install_fakes(self, *names, ip=None):
        os.makedirs(self.fake_dir, exist_ok=True)
        for n in names:
            p = os.path.join(self.fake_dir, n)
            with open(p, "w") as f:
                f.write(FAKE_PLUGIN)
            os.chmod(p, 0o755)
        if ip:
            with open(os.path.join(self.fake_dir, "ip"), "w") as f:
                f.write(ip)

    def records(self):
        """[(type, command, stdin doc, env dict, netns pinned)] in call order."""
        d = os.path.join(self.fake_dir, "rec")
        if not os.path.isdir(d):
            return []
        out = []
        for fn in sorted(os.listdir(d)):
            if not fn.endswith(".in"):
                continue
            stem = fn[:-3]
            _, typ, cmd = stem.split("-", 2)
            with open(os.path.join(d, fn)) as f:
                doc = json.load(f)
            env = {}
            with open(os.path.join(d, stem + ".env")) as f:
                for line in f:
                    k, _, v = line.rstrip("\n").partition("=")
                    env[k] = v
            pinned = os.path.exists(os.path.join(d, stem + ".netns"))
            fds = {}
            if os.path.exists(os.path.join(d, stem + ".fds")):
                with open(os.path.join(d, stem + ".fds")) as f:
                    for line in f.read().splitlines():
                        if " -> " in line:
                            left, target = line.split(" -> ", 1)
                            fds[left.split()[-1]] = target
            else:
                fds = {"0": "pipe:", "1": "pipe:", "2": "pipe:"}
            # stdio are hulld's pipes (dash redirects fd 1 to the record file and keeps the
            # original stdout at fd >= 10); the shell holds its script open; nothing else of
            # hulld's may reach a plugin
            extra = {k: v for k, v in fds.items() if k not in ("0", "1", "2")
                     and not v.startswith(self.fake_dir)}
            saved = [k for k, v in extra.items() if int(k) >= 10 and v.startswith("pipe:")]
            for k in saved[:1]:
                del extra[k]
            assert fds.get("0", "").startswith("pipe:") and fds.get("2", "").startswith("pipe:")
            assert extra == {}, f"fds leaked into {typ}: {extra}"
            out.append((typ, cmd, doc, env, pinned))
        return out

    def clear_records(self):
        shutil.rmtree(os.path.join(self.fake_dir, "rec"), ignore_errors=True)

    # ---- hulld
    def hulld(self, *extra_args):
        """Starts a hulld through conftest's factory and tracks it for cleanup."""
        d = self.factory(*extra_args)
        self.daemons.append(d)
        return d

    def remove_all_pods(self):
        """Removes every pod of the tracked daemons that still run (a failed test's), then
        unmounts whatever a pod of theirs still has mounted."""
        for d in self.daemons:
            if d.proc is None or d.proc.poll() is not None:
                continue
            try:
                for it in d.runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items:
                    try:
                        remove_pod(d, it.id)
                    except grpc.RpcError:
                        pass
            except grpc.RpcError:
                pass
        for d in self.daemons:
            for m in sorted(nsfs_mounts(d.state_dir), reverse=True):
                sh("umount", "-l", m, check=False)

    def args(self, plugins=REAL_PLUGINS):
        return ("--cni-config-dir", self.conf_dir, "--cni-plugin-dirs", plugins,
                "--cgroup-parent", self.cgroup_parent)

    # ---- host checks
    def pod_leftovers(self, d, pod_id, ip=None, veths=0):
        """What a stopped/removed pod left on the host (empty list when clean)."""
        problems = []
        mounts = nsfs_mounts(d.state_dir) + nsfs_mounts(d.root)
        mine = [m for m in mounts if pod_id in m]
        if mine:
            problems.append(f"mounts: {mine}")
        if pod_id in iptables_lines():
            problems.append("iptables rules mention the pod")
        if ip and os.path.exists(os.path.join(self.ipam_dir, "hulltest", ip)):
            problems.append(f"IPAM still holds {ip}")
        r = sh("ip", "-o", "link", "show", "master", self.bridge, check=False)
        if r.returncode == 0 and r.stdout.count("veth") > veths:
            problems.append(f"veths on the bridge: {r.stdout.strip()}")
        return problems

    def cgroup_dirs(self, leaf=""):
        out = []
        for ctrl in sorted(os.listdir(CONTROLLERS_ROOT)):
            p = os.path.join(CONTROLLERS_ROOT, ctrl)
            if ctrl == "unified" or os.path.islink(p):
                continue
            q = p + self.cgroup_parent + leaf
            if os.path.isdir(q):
                out.append(q)
        return out

    def cleanup(self):
        self.remove_all_pods()
        sh("ip", "link", "del", self.bridge, check=False)
        # a failed test may leave an infra process in its pod cgroup: it is ours, kill it
        for d in self.cgroup_dirs():
            for sub, _, files in os.walk(d):
                if "cgroup.procs" in files:
                    with open(os.path.join(sub, "cgroup.procs")) as f:
                        for pid in f.read().split():
                            try:
                                os.kill(int(pid), 9)
                                time.sleep(0.2)
                            except OSError:
                                pass
        for d in self.cgroup_dirs():
            for sub, _, _ in os.walk(d, topdown=False):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass
        # portmap's shared top-level chains, when this test created them
        if "CNI-HOSTPORT-DNAT" not in self._iptables_before:
            remove_portmap_chains()
        shutil.rmtree(self.base, ignore_errors=True)


def remove_portmap_chains():
    r = sh("iptables", "-t", "nat", "-S", check=False)
    for line in r.stdout.splitlines():
        if line.startswith("-A ") and "CNI-HOSTPORT" in line and not line.startswith("-A CNI-"):
            sh("iptables", "-t", "nat", *shlex.split("-D" + line[2:]), check=False)
    for chain in ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"):
        sh("iptables", "-t", "nat", "-F", chain, check=False)
        sh("iptables", "-t", "nat", "-X", chain, check=False)


def expect_rpc_error(fn, code, *texts):
    try:
        fn()
    except grpc.RpcError as e:
        assert e.code() == code, f"{e.code()}: {e.details()}"
        for t in texts:
            assert t in e.details(), e.details()
        return e
    raise AssertionError(f"expected {code}")
