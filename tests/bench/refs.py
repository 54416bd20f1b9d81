"""Reference runtimes for side-by-side benchmarks: Debian's containerd (CRI plugin, runc,
cgroupfs) on its own temporary root, state and socket; and helpers to start hulld.

Numbers are only ever compared within one run on one machine."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("HULL_BUILD", os.path.join(REPO, "build"))
sys.path.insert(0, os.path.join(BUILD, "gen", "py"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import grpc  # noqa: E402
from runtime.v1 import api_pb2 as pb  # noqa: E402
from runtime.v1 import api_pb2_grpc as pb_grpc  # noqa: E402

CONTAINERD_CONFIG = """version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{base}/containerd.sock"
[ttrpc]
  address = "{base}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  enable_selinux = false
  sandbox_image = "{sandbox_image}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni_dir}"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
    endpoint = [{mirrors}]
"""


def rss_kib(pid):
    """(VmRSS, RssAnon) of a process in KiB."""
    vals = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon"):
                vals[k] = int(v.split()[0])
    return vals.get("VmRSS", 0), vals.get("RssAnon", 0)


def tree_rss_kib(pid):
    """Sum of (VmRSS, RssAnon) over a process and its descendants."""
    pids = [pid]
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children = {}
    for line in out.splitlines():
        p, pp = map(int, line.split())
        children.setdefault(pp, []).append(p)
    i = 0
    while i < len(pids):
        pids.extend(children.get(pids[i], []))
        i += 1
    tot = [0, 0]
    for p in pids:
        try:
            a, b = rss_kib(p)
        except FileNotFoundError:
            continue
        tot[0] += a
        tot[1] += b
    return tuple(tot)


class Daemon:
    def __init__(self, name, proc, socket, base):
        self.name, self.proc, self.socket, self.base = name, proc, socket, base
        self.channel = grpc.insecure_channel("unix://" + socket)
        self.runtime = pb_grpc.RuntimeServiceStub(self.channel)
        self.image = pb_grpc.ImageServiceStub(self.channel)

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}")
            try:
                self.runtime.Version(pb.VersionRequest(), timeout=1)
                return self
            except grpc.RpcError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not come up")

    def stop(self):
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        subprocess.run(["umount", "-R", "-l", self.base], stderr=subprocess.DEVNULL)
        shutil.rmtree(self.base, ignore_errors=True)


def start_hulld(*extra, build=None):
    """hulld of build (default HULL_BUILD) with its own root, state, socket and CNI dir."""
    base = tempfile.mkdtemp(prefix="hullbench-")
    sock = os.path.join(base, "hull.sock")
    cfg = os.path.join(base, "hull.json")
    with open(cfg, "w") as f:
        f.write('{"log_level": "warn"}\n')
    os.makedirs(os.path.join(base, "cni"), exist_ok=True)
    args = [os.path.join(build or BUILD, "hulld"), "--config", cfg, "--listen", sock, "--root",
            os.path.join(base, "root"), "--state-dir", os.path.join(base, "state"),
            "--cni-config-dir", os.path.join(base, "cni"), *extra]
    log = open(os.path.join(base, "hulld.log"), "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    return Daemon("hulld", proc, sock, base).wait_ready()


def have_containerd():
    return shutil.which("containerd") is not None


def start_containerd(mirrors=(), cni_dir=None, sandbox_image="registry.k8s.io/pause:3.6"):
    base = tempfile.mkdtemp(prefix="ctrdbench-")
    cni_dir = cni_dir or os.path.join(base, "cni")
    os.makedirs(cni_dir, exist_ok=True)
    cfg = os.path.join(base, "config.toml")
    with open(cfg, "w") as f:
        f.write(CONTAINERD_CONFIG.format(base=base, cni_dir=cni_dir, sandbox_image=sandbox_image,
                                         mirrors=", ".join(f'"{m}"' for m in mirrors)))
    log = open(os.path.join(base, "containerd.log"), "wb")
    proc = subprocess.Popen(["containerd", "--config", cfg], stdout=log,
                            stderr=subprocess.STDOUT)
    return Daemon("containerd", proc, os.path.join(base, "containerd.sock"), base).wait_ready()


def percentile(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def table(title, header, rows):
    print(f"\n## {title}")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    print(fmt.format(*header))
    print(fmt.format(*["-" * w for w in widths]))
    for r in rows:
        print(fmt.format(*r))
