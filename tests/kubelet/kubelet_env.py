"""A standalone kubelet on a private hulld, for tests/kubelet (no tests here).

`Env` owns one world: a private hulld (own socket, root, state dir, cgroup parent and CNI
bridge config with a unique bridge name and /24), a kubelet with its own root dir, static pod
dir, pod logs dir, cgroup root and loopback ports (read-only HTTP API on 127.0.0.1), and the
helpers the tests use: `apply(pod)` / `delete(name)` for static pod manifests, `pods()`,
`pod(name)`, `summary()`, `crictl(...)`, `wait_for(...)`, and `cri_errors()`, which lists
every CRI error in kubelet's log (each one is a hulld bug unless `ALLOWED` explains why not).

kubelet runs in a private mount namespace whose only difference from the host's is six
/proc/sys files bind-mounted over with the values kubelet insists on (vm.overcommit_memory,
kernel.panic...): kubelet would otherwise rewrite those host-wide sysctls at start-up.  Host
mounts propagate into that namespace (slave), so kubelet sees hulld's mounts; kubelet itself
mounts nothing these tests need (no memory-backed emptyDir, no secrets).
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("HULL_BUILD", os.path.join(REPO, "build"))
TOOLS = os.environ.get("HULL_TOOLS", "/var/cache/hull-tools")
KUBELET = os.environ.get("KUBELET", os.path.join(TOOLS, "bin", "kubelet"))
CRICTL = os.environ.get("CRICTL", os.path.join(TOOLS, "bin", "crictl"))
PLUGINS = "/usr/lib/cni"
CGROUP_ROOT = "/sys/fs/cgroup"

# kubelet's setupKernelTunables: the values it wants, set in its own mount namespace only
KERNEL_TUNABLES = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}

# CRI errors in kubelet's log that are not hulld's fault, each with its reason.  A pattern
# matches one log line (re.search).  `when` names the window it is allowed in: "always", or
# "hulld-down" (only between Env.hulld_down() and the first successful call after hulld came
# back: kubelet's calls then fail with Unavailable because nothing listens on the socket).
ALLOWED = [
    # kubelet's relist lists a container, kubelet itself removes it (dead init containers,
    # old attempts, a deleted pod), then the status call for the listed id finds nothing:
    # kubelet's own race, logged the same way against containerd and CRI-O
    ("always", r"\"ContainerStatus from runtime service failed\".*code = NotFound"),
    # Canceled is only ever the caller's decision (kubelet cancels the context of calls in
    # flight when a probe worker, pod worker or kubelet itself stops)
    ("always", r"code = Canceled desc = context canceled"),
    # hulld is being restarted on purpose (test_restart): the socket is gone for a moment
    ("hulld-down", r"code = Unavailable"),
    ("hulld-down", r"connection refused|transport: Error while dialing|no such file or directory"),
    ("hulld-down", r"code = Canceled|code = DeadlineExceeded|context canceled"),
]

CRI_MARKS = re.compile(
    r"rpc error: code = |remote_runtime\.go|remote_image\.go|\"CRI\b|\"verify |"
    r"getPodContainerStatuses|"
    r"ContainerStatus from runtime service failed|RunPodSandbox from runtime service failed|"
    r"CreateContainer in sandbox from runtime service failed|"
    r"StartContainer from runtime service failed|StopContainer from runtime service failed|"
    r"StopPodSandbox from runtime service failed|RemovePodSandbox from runtime service failed|"
    r"RemoveContainer from runtime service failed|ListContainers with filter from runtime|"
    r"ListPodSandbox with filter from runtime|PullImage from image service failed|"
    r"ImageFsInfo from image service failed|ReopenContainerLog from runtime service failed|"
    r"ExecSync cmd from runtime service failed|ListContainerStats with filter from runtime|"
    r"ListPodSandboxStats with filter from runtime|PodSandboxStatus of sandbox for pod|"
    r"GetContainerEvents|Status from runtime service failed|UpdateContainerResources")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=60, interval=0.25, what=None):
    """Polls pred() until it returns something truthy (returned) or the timeout passes."""
    deadline = time.time() + timeout
    last = None
    while True:
        try:
            last = pred()
        except (OSError, ValueError, KeyError, IndexError, subprocess.SubprocessError) as e:
            last = e
            if time.time() > deadline:
                raise AssertionError(f"timed out waiting for {what or pred}: {e!r}")
        else:
            if last and not isinstance(last, Exception):
                return last
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred} (last: {last!r})")
        time.sleep(interval)


def cgroup_v1_path(pid, controller):
    """The absolute cgroup v1 directory of pid for controller (e.g. 'memory', 'cpu')."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                for name in os.listdir(CGROUP_ROOT):
                    p = os.path.join(CGROUP_ROOT, name)
                    if controller in name.split(",") and not os.path.islink(p):
                        return p + path
    raise KeyError(f"no {controller} cgroup for pid {pid}")


def read(path):
    with open(path) as f:
        return f.read().strip()


class Hulld:
    def __init__(self, base, registry_host, tag):
        self.base = base
        self.sock = os.path.join(base, "run", "hull.sock")
        self.root = os.path.join(base, "root")
        self.state = os.path.join(base, "state")
        self.cni_dir = os.path.join(base, "net.d")
        self.log_path = os.path.join(base, "hulld.log")
        self.tag = tag
        self.bridge = "hkb" + tag
        self.subnet_prefix = "10.%d.%d" % (random.randrange(160, 250), random.randrange(0, 255))
        self.cgroup_parent = "/hullkt-hulld-" + tag
        self.registry_host = registry_host
        self.proc = None
        os.makedirs(self.cni_dir, exist_ok=True)
        with open(os.path.join(base, "hull.json"), "w") as f:
            f.write('{"log_level": "debug"}\n')
        conf = {"cniVersion": "1.0.0", "name": "hullkt-" + tag, "plugins": [
            {"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False,
             "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": os.path.join(base, "ipam"),
                      "routes": [{"dst": "0.0.0.0/0"}],
                      "ranges": [[{"subnet": self.subnet_prefix + ".0/24"}]]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "loopback"}]}
        with open(os.path.join(self.cni_dir, "10-hullkt.conflist"), "w") as f:
            json.dump(conf, f, indent=1)

    def start(self):
        self._log = open(self.log_path, "ab")
        args = [os.path.join(BUILD, "hulld"), "--listen", self.sock, "--root", self.root,
                "--state-dir", self.state, "--config", os.path.join(self.base, "hull.json"),
                "--cni-config-dir", self.cni_dir, "--cni-plugin-dirs", PLUGINS,
                "--cgroup-parent", self.cgroup_parent,
                "--insecure-registry", self.registry_host]
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"hulld exited {self.proc.returncode}:\n{self.log()[-3000:]}")
            return os.path.exists(self.sock) and subprocess.run(
                [CRICTL, "-r", "unix://" + self.sock, "version"], capture_output=True,
                timeout=10).returncode == 0
        wait_for(up, timeout=30, what="hulld to answer")
        return self

    def stop(self, timeout=60):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self._log.close()
        return rc

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def sanitizer_report(self):
        marks = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                 "ERROR: UndefinedBehaviorSanitizer")
        return "\n".join(ln for ln in self.log().splitlines() if any(m in ln for m in marks))


class Kubelet:
    def __init__(self, base, hulld, tag, feature_gates=None, extra_config=None, verbosity=2):
        self.base = base
        self.verbosity = verbosity
        self.hulld = hulld
        self.root_dir = os.path.join(base, "root")
        self.manifests = os.path.join(base, "manifests")
        self.pod_logs = os.path.join(base, "pod-logs")
        self.config_path = os.path.join(base, "kubelet.yaml")
        self.log_path = os.path.join(base, "kubelet.log")
        self.node_name = "hullkt-" + tag
        self.cgroup_root = "/hullkt-" + tag
        self.port = free_port()
        self.ro_port = free_port()
        self.healthz_port = free_port()
        self.proc = None
        self.starts = 0
        for d in (self.root_dir, self.manifests, self.pod_logs):
            os.makedirs(d, exist_ok=True)
        self.tunables = os.path.join(base, "sysctl")
        os.makedirs(self.tunables, exist_ok=True)
        for k, v in KERNEL_TUNABLES.items():
            with open(os.path.join(self.tunables, k.replace("/", ".")), "w") as f:
                f.write(v + "\n")
        cfg = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "staticPodPath": self.manifests,
            "fileCheckFrequency": "2s",
            "syncFrequency": "5s",
            "podLogsDir": self.pod_logs,
            "volumePluginDir": os.path.join(base, "volume-plugins"),
            "address": "127.0.0.1",
            "port": self.port,
            "readOnlyPort": self.ro_port,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": self.healthz_port,
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False},
                               "x509": {}},
            "authorization": {"mode": "AlwaysAllow"},
            "containerRuntimeEndpoint": "unix://" + hulld.sock,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.cgroup_root,
            "cgroupsPerQOS": True,
            "failSwapOn": False,
            "failCgroupV1": False,
            "makeIPTablesUtilChains": False,
            "resolvConf": "/etc/resolv.conf",
            "containerLogMaxSize": "10Ki",
            "containerLogMaxFiles": 3,
            "containerLogMonitorInterval": "3s",
            "crashLoopBackOff": {"maxContainerRestartPeriod": "2s"},
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
            "serializeImagePulls": False,
            "featureGates": dict(feature_gates or {}),
        }
        cfg.update(extra_config or {})
        with open(self.config_path, "w") as f:
            json.dump(cfg, f, indent=1)  # JSON is YAML

    def args(self):
        return [KUBELET, "--config", self.config_path, "--root-dir", self.root_dir,
                "--hostname-override", self.node_name, "--v", str(self.verbosity)]

    def make_cgroup_root(self):
        """kubelet refuses a cgroupRoot that does not exist: make it in every hierarchy."""
        for ctrl in sorted(os.listdir(CGROUP_ROOT)):
            p = os.path.join(CGROUP_ROOT, ctrl)
            if os.path.islink(p) or not os.path.isdir(p):
                continue
            os.makedirs(p + self.cgroup_root, exist_ok=True)
            if "cpuset" in ctrl.split(","):
                for f in ("cpuset.cpus", "cpuset.mems"):
                    mine = os.path.join(p + self.cgroup_root, f)
                    if not read(mine):
                        with open(mine, "w") as out:
                            out.write(read(os.path.join(p, f)))

    def start(self):
        self.starts += 1
        self.make_cgroup_root()
        self._log = open(self.log_path, "ab")
        binds = " ".join(
            f"mount --bind {os.path.join(self.tunables, k.replace('/', '.'))} /proc/sys/{k} &&"
            for k in KERNEL_TUNABLES)
        script = f"{binds} exec \"$@\""
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "slave", "--", "sh", "-c", script,
             "kubelet"] + self.args(), stdout=self._log, stderr=subprocess.STDOUT)

        def healthy():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"kubelet exited {self.proc.returncode}:\n{self.log()[-5000:]}")
            try:
                return self.get_text("/healthz") == "ok"
            except OSError:
                return False
        wait_for(healthy, timeout=90, what="kubelet /healthz")
        return self

    def stop(self, timeout=30):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self._log.close()
        return rc

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # ---- HTTP API
    def get_text(self, path, port=None, timeout=10):
        url = f"http://127.0.0.1:{port or self.ro_port}{path}"
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode()

    def get_json(self, path):
        return json.loads(self.get_text(path))


class Env:
    """hulld + kubelet + helpers.  `registry` is tests/integration's Registry."""

    def __init__(self, registry, images, feature_gates=None, extra_config=None, verbosity=2):
        self.tag = "%06x" % random.randrange(1 << 24)
        self.base = tempfile.mkdtemp(prefix="hullkt-")
        # like /var/lib: the ids of a hostUsers: false pod must get through to its files
        os.chmod(self.base, 0o711)
        self.registry = registry
        self.images = images
        self.hulld = Hulld(os.path.join(self.base, "hulld"), registry.host, self.tag)
        self.kubelet = Kubelet(os.path.join(self.base, "kubelet"), self.hulld, self.tag,
                               feature_gates, extra_config, verbosity)
        self.windows = []  # (start offset, end offset or None) of hulld-down windows
        self.checked = 0  # kubelet log offset already checked by check_log()
        self.applied = set()

    def start(self):
        self.hulld.start()
        self.kubelet.start()
        return self

    # ---- static pods
    def manifest_path(self, name):
        return os.path.join(self.kubelet.manifests, name + ".json")

    def apply(self, pod):
        name = pod["metadata"]["name"]
        pod.setdefault("apiVersion", "v1")
        pod.setdefault("kind", "Pod")
        pod["metadata"].setdefault("namespace", "default")
        path = self.manifest_path(name)
        tmp = os.path.join(self.kubelet.base, "." + name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(pod, f, indent=1)
        os.rename(tmp, path)
        self.applied.add(name)
        return self.full_name(name)

    def delete(self, name, wait=True, removed=False, timeout=90):
        """Removes the manifest.  wait: until kubelet dropped the pod and stopped its sandbox
        (kubelet removes stopped sandboxes and containers of deleted pods in its container
        GC, once a minute); removed: until the runtime has nothing of it left either."""
        try:
            os.unlink(self.manifest_path(name))
        except FileNotFoundError:
            pass
        self.applied.discard(name)
        if wait or removed:
            wait_for(lambda: self.pod(name) is None and not self.sandboxes(name, "ready"),
                     timeout=timeout, what=f"pod {name} to stop")
        if removed:
            wait_for(lambda: not self.sandboxes(name) and not self.containers(name),
                     timeout=timeout, what=f"pod {name} to be removed")

    def full_name(self, name):
        return f"{name}-{self.kubelet.node_name}"

    def pods(self):
        return self.kubelet.get_json("/pods").get("items") or []

    def pod(self, name):
        full = self.full_name(name)
        for p in self.pods():
            if p["metadata"]["name"] == full:
                return p
        return None

    def status(self, name, container):
        p = self.pod(name)
        if not p:
            return None
        st = p.get("status", {})
        for s in st.get("containerStatuses", []) + st.get("initContainerStatuses", []):
            if s["name"] == container:
                return s
        return None

    def wait_running(self, name, containers, timeout=120, ready=True):
        def ok():
            p = self.pod(name)
            if not p:
                return None
            st = p.get("status", {})
            cs = {s["name"]: s for s in st.get("containerStatuses", [])}
            for c in containers:
                s = cs.get(c)
                if not s or "running" not in s.get("state", {}):
                    return None
                if ready and not s.get("ready"):
                    return None
            return p
        return wait_for(ok, timeout=timeout, what=f"pod {name} running {containers}")

    def summary(self):
        return self.kubelet.get_json("/stats/summary")

    # ---- CRI side
    def crictl(self, *args, check=True, timeout=60):
        r = subprocess.run([CRICTL, "-r", "unix://" + self.hulld.sock, "-i",
                            "unix://" + self.hulld.sock, "-t", "30s", *args],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"crictl {' '.join(args)}: {r.returncode}\n{r.stderr}")
        return r.stdout

    def crictl_json(self, *args):
        return json.loads(self.crictl(args[0], "-o", "json", *args[1:]))

    def sandboxes(self, name, state=None):
        args = ["pods", "--name", "^" + re.escape(self.full_name(name)) + "$"]
        if state:
            args += ["--state", state]
        return self.crictl_json(*args).get("items", [])

    def containers(self, name, container=None, all_states=True):
        args = ["ps", "--label", f"io.kubernetes.pod.name={self.full_name(name)}"]
        if container:
            args += ["--name", "^" + re.escape(container) + "$"]
        if all_states:
            args.append("-a")
        return self.crictl_json(*args).get("containers", [])

    def inspect(self, cid):
        return self.crictl_json("inspect", cid)

    def container_pid(self, name, container):
        running = [c for c in self.containers(name, container)
                   if c["state"] == "CONTAINER_RUNNING"]
        assert running, f"{container} of {name} is not running"
        return self.inspect(running[0]["id"])["info"]["pid"]

    def exec(self, name, container, *cmd, check=True):
        running = [c for c in self.containers(name, container)
                   if c["state"] == "CONTAINER_RUNNING"]
        assert running, f"{container} of {name} is not running"
        return self.crictl("exec", running[0]["id"], *cmd, check=check)

    # ---- hulld restarts
    def restart_hulld(self):
        start = len(self.kubelet.log().encode())
        rc = self.hulld.stop()
        assert rc == 0, f"hulld exited {rc}:\n{self.hulld.log()[-3000:]}"
        self.windows.append([start, None])
        self.hulld.start()
        # kubelet's next relist after hulld answers again closes the window
        mark = self.kubelet_log_size()
        wait_for(lambda: self.kubelet_log_size() > mark, timeout=30, what="kubelet to log")
        time.sleep(6)  # one runtime-up check (5 s period) and one relist after hulld is back
        self.windows[-1][1] = self.kubelet_log_size()

    def kubelet_log_size(self):
        try:
            return os.path.getsize(self.kubelet.log_path)
        except FileNotFoundError:
            return 0

    # ---- CRI errors in kubelet's log
    def cri_errors(self, since=0):
        """CRI error lines kubelet logged after byte offset `since` that no ALLOWED entry
        excuses.  Returns (offset at end, [lines])."""
        with open(self.kubelet.log_path, "rb") as f:
            f.seek(since)
            data = f.read()
        out = []
        pos = since
        for raw in data.splitlines(keepends=True):
            line = raw.decode(errors="replace").rstrip("\n")
            at = pos
            pos += len(raw)
            if not line[:1] in ("E", "W") or not CRI_MARKS.search(line):
                continue
            in_window = any(s <= at and (e is None or at < e) for s, e in self.windows)
            if any((when == "always" or (when == "hulld-down" and in_window))
                   and re.search(pat, line) for when, pat in ALLOWED):
                continue
            out.append(line)
        return pos, out

    def check_log(self):
        pos, errors = self.cri_errors(self.checked)
        self.checked = pos
        return errors

    # ---- teardown
    def close(self):
        problems = []
        for name in list(self.applied):
            try:
                os.unlink(self.manifest_path(name))
            except FileNotFoundError:
                pass
        if self.kubelet.proc and self.hulld.proc:
            try:
                wait_for(lambda: not self.crictl_json("pods", "--state", "ready").get("items"),
                         timeout=90, what="kubelet to stop every pod")
            except AssertionError as e:
                problems.append(str(e))
        self.kubelet.stop()
        late = self.check_log()
        if late:
            problems.append("CRI errors in kubelet's log:\n" + "\n".join(late[:40]))
        if self.hulld.proc:
            for p in self.crictl_json("pods").get("items", []):
                self.crictl("stopp", p["id"], check=False)
                self.crictl("rmp", "-f", p["id"], check=False)
        rc = self.hulld.stop()
        if rc not in (0, None):
            problems.append(f"hulld exited {rc}")
        report = self.hulld.sanitizer_report()
        if report:
            problems.append("sanitizer findings in hulld:\n" + report)
        subprocess.run(["ip", "link", "del", self.hulld.bridge], capture_output=True)
        self._unmount_below(self.base)
        for prefix in (self.kubelet.cgroup_root, self.hulld.cgroup_parent):
            self._remove_cgroups(prefix)
        if os.environ.get("HULL_KEEP_KUBELET_ENV"):
            print("kept", self.base)
        else:
            shutil.rmtree(self.base, ignore_errors=True)
        return problems

    @staticmethod
    def _unmount_below(base):
        prefix = os.path.realpath(base)
        with open("/proc/self/mounts") as f:
            points = [line.split()[1].replace("\\040", " ") for line in f]
        below = [p for p in points if p == prefix or p.startswith(prefix + "/")]
        for p in sorted(set(below), key=len, reverse=True):
            subprocess.run(["umount", "-l", p], stderr=subprocess.DEVNULL)

    @staticmethod
    def _remove_cgroups(prefix):
        for ctrl in sorted(os.listdir(CGROUP_ROOT)):
            p = os.path.join(CGROUP_ROOT, ctrl)
            if os.path.islink(p) or not os.path.isdir(p):
                continue
            top = p + prefix
            if not os.path.isdir(top):
                continue
            for sub, _, _ in os.walk(top, topdown=False):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass


# ---- pod spec helpers
# PID 1 of a container ignores SIGTERM unless it handles it: this one exits at once on TERM
SLEEP = "trap 'exit 0' TERM; sleep 3600 & wait"


def ctr(name, image, script=None, **kw):
    """A container running `script` with /bin/sh -c (or the image's command when None)."""
    c = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent"}
    if script is not None:
        c["command"] = ["/bin/sh", "-c"]
        c["args"] = [script]
    c.update(kw)
    return c


def pod(name, containers, grace=2, **spec):
    s = {"containers": containers, "terminationGracePeriodSeconds": grace}
    s.update(spec)
    return {"metadata": {"name": name}, "spec": s}
