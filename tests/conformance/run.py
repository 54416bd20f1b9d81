#!/usr/bin/python3
"""make conformance: the whole critest suite (sigs.k8s.io/cri-tools v1.37.0) against a private
hulld, once per run given as HANDLER:NODES (NODES 1 = serial, >1 = ginkgo -parallel).

    tests/conformance/run.py [--runs hull-oci:1,hull-oci:2,runc:2] [--focus REGEX] [--keep]

Everything is private to the run: a docker-registry on 127.0.0.1 holding the images critest
pulls (built by images.py and served under their real names through hulld's registry_mirrors),
hulld's socket, root, state dir and cgroup parent, a CNI bridge network with its own bridge name,
subnet and IPAM dir, critest's TMPDIR.  Each run gets a fresh hulld root.  Exits non-zero when a
spec fails (or a run cannot start); prints the pass/fail/skip counts and duration of each run.

Specs that cannot pass on any machine without the internet are skipped by name, with the reason
(SKIPS below); critest's own skips (AppArmor/SELinux absent on the host)
are reported with the reason critest gives.
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, HERE)

from registry import Registry  # noqa: E402
import images  # noqa: E402

TOOLS = os.environ.get("HULL_TOOLS", "/var/cache/hull-tools")
BUILD = os.environ.get("HULL_BUILD", os.path.join(REPO, "build"))
CNI_PLUGINS = os.environ.get("CNI_PLUGIN_DIRS", "/usr/lib/cni:/opt/cni/bin")
MIRRORED = ["registry.k8s.io", "k8s.gcr.io", "gcr.io", "docker.io", "quay.io"]
# critest uses these host ports (networking and port-forward specs, the hostnet image)
HOST_PORTS = [12000, 12001, 12002, 12003]

# spec text (a regular expression for ginkgo's --skip) -> why it cannot pass here
SKIPS = {
    r"public image with digest should be pulled and removed":
        "critest pins gcr.io/k8s-staging-cri-tools/test-image-digest@sha256:9700f9a2f5bf2c45f2f6"
        "05a0bd3bce7cf37420ec9d3ed50ac2758413308766bf, the digest of the manifest published "
        "upstream; without the internet no registry can serve a manifest with that digest "
        "(a locally built one has another digest, and hulld verifies digests)",
}


def log(msg):
    print(f"conformance: {msg}", flush=True)


def port_in_use(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


class Env:
    def __init__(self, keep=False):
        self.keep = keep
        self.tag = "%06x" % random.randrange(1 << 24)
        self.base = tempfile.mkdtemp(prefix="hull-conformance-")
        os.chmod(self.base, 0o755)
        self.bridge = "hcf" + self.tag
        self.subnet = "10.%d.%d.0/24" % (random.randrange(160, 250), random.randrange(0, 255))
        self.cni_dir = os.path.join(self.base, "net.d")
        self.ipam_dir = os.path.join(self.base, "ipam")
        self.cgroup_parent = "/hullconf-" + self.tag
        self.registry = None
        self.hulld = None
        os.makedirs(self.cni_dir)
        with open(os.path.join(self.cni_dir, "10-conformance.conflist"), "w") as f:
            json.dump({"cniVersion": "1.0.0", "name": "hull-conformance", "plugins": [
                {"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": True,
                 "hairpinMode": True,
                 "ipam": {"type": "host-local", "dataDir": self.ipam_dir,
                          "routes": [{"dst": "0.0.0.0/0"}],
                          "ranges": [[{"subnet": self.subnet}]]}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
                {"type": "loopback"}]}, f, indent=1)

    def start_registry(self):
        self.registry = Registry()
        t = time.time()
        built = images.build(self.registry, os.path.join(self.base, "image-build"))
        log(f"{len(built)} images built and pushed to {self.registry.host} "
            f"in {time.time() - t:.1f}s")

    def hulld_config(self, run_dir):
        mirror = "http://" + self.registry.host
        return {
            "listen": os.path.join(run_dir, "hull.sock"),
            "root": os.path.join(run_dir, "root"),
            "state_dir": os.path.join(run_dir, "state"),
            "log_level": "info",
            "cgroup_parent": self.cgroup_parent,
            "runtimes": {"runc": shutil.which("runc") or "/usr/sbin/runc"},
            "default_runtime": "hull-oci",
            "registry_mirrors": {r: [mirror] for r in MIRRORED},
            "cni_config_dir": self.cni_dir,
            "cni_plugin_dirs": CNI_PLUGINS.split(":"),
            # critest's NRI specs connect their plugins here (-nri-socket)
            "enable_nri": True,
            "nri_socket": os.path.join(run_dir, "nri.sock"),
        }

    def start_hulld(self, run_dir):
        os.makedirs(run_dir)
        cfg = self.hulld_config(run_dir)
        path = os.path.join(run_dir, "hull.json")
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)
        self.hulld_log = os.path.join(run_dir, "hulld.log")
        logf = open(self.hulld_log, "ab")
        self.hulld = subprocess.Popen([os.path.join(BUILD, "hulld"), "--config", path],
                                      stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        sock = cfg["listen"]
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.hulld.poll() is not None:
                raise RuntimeError(f"hulld exited {self.hulld.returncode}, see {self.hulld_log}")
            if os.path.exists(sock):
                r = subprocess.run([crictl(), "--runtime-endpoint", "unix://" + sock,
                                    "--timeout", "5s", "version"], capture_output=True)
                if r.returncode == 0:
                    return sock
            time.sleep(0.1)
        raise RuntimeError(f"hulld did not come up, see {self.hulld_log}")

    def stop_hulld(self, sock):
        """Removes what a failed spec left (every pod), then stops hulld; returns problems."""
        problems = []
        if self.hulld is None:
            return problems
        if self.hulld.poll() is None:
            ep = ["--runtime-endpoint", "unix://" + sock, "--timeout", "60s"]
            left = subprocess.run([crictl(), *ep, "pods", "-q"], capture_output=True,
                                  text=True).stdout.split()
            if left:
                problems.append(f"{len(left)} pod(s) left by the specs")
                subprocess.run([crictl(), *ep, "rmp", "-f", *left], capture_output=True)
            self.hulld.send_signal(signal.SIGTERM)
            try:
                self.hulld.wait(60)
            except subprocess.TimeoutExpired:
                self.hulld.kill()
                self.hulld.wait()
                problems.append("hulld did not exit on SIGTERM within 60s")
        if self.hulld.returncode not in (0,):
            problems.append(f"hulld exited with {self.hulld.returncode}")
        self.hulld = None
        return problems

    def cleanup(self):
        if self.hulld is not None and self.hulld.poll() is None:
            self.hulld.kill()
            self.hulld.wait()
        if self.registry:
            self.registry.close()
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        for ctrl_root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
            for ctrl in os.listdir(ctrl_root) if os.path.isdir(ctrl_root) else []:
                d = os.path.join(ctrl_root, ctrl, self.cgroup_parent.lstrip("/"))
                if ctrl_root.endswith("unified"):
                    d = os.path.join(ctrl_root, self.cgroup_parent.lstrip("/"))
                if os.path.isdir(d):
                    for sub, _, _ in os.walk(d, topdown=False):
                        try:
                            os.rmdir(sub)
                        except OSError:
                            pass
        # mounts a crashed hulld left below our base (pinned namespaces, overlays, shm)
        with open("/proc/self/mounts") as f:
            points = [line.split()[1] for line in f]
        for p in sorted((p for p in points if p.startswith(self.base + "/")), key=len,
                        reverse=True):
            subprocess.run(["umount", "-l", p], capture_output=True)
        if not self.keep:
            shutil.rmtree(self.base, ignore_errors=True)


def tool(name):
    p = os.path.join(TOOLS, "bin", name)
    if not os.access(p, os.X_OK):
        sys.exit(f"conformance: {p} missing: run tests/tools/build-cri-tools.sh")
    return p


def crictl():
    return tool("crictl")


def parse_junit(path):
    """-> (passed, failed, skipped, [(name, message)] failures, {skip reason: [names]})"""
    root = ET.parse(path).getroot()
    passed = failed = skipped = 0
    failures, skips = [], {}
    for tc in root.iter("testcase"):
        name = tc.get("name", "")
        if name.startswith("[SynchronizedBeforeSuite]") or name.startswith("[BeforeSuite]") \
                or name.startswith("[AfterSuite]") or name.startswith("[SynchronizedAfterSuite]") \
                or name.startswith("[ReportAfterSuite]") or name.startswith("[ReportBeforeSuite]"):
            if tc.find("failure") is not None or tc.find("error") is not None:
                failed += 1
                el = tc.find("failure") if tc.find("failure") is not None else tc.find("error")
                failures.append((name, (el.get("message") or "")[:2000]))
            continue
        fl = tc.find("failure")
        er = tc.find("error")
        sk = tc.find("skipped")
        if fl is not None or er is not None:
            failed += 1
            el = fl if fl is not None else er
            failures.append((name, (el.get("message") or el.text or "")[:2000]))
        elif sk is not None:
            skipped += 1
            reason = (sk.get("message") or "").replace("skipped - ", "", 1).strip()
            if reason in ("", "skipped"):
                reason = ("not selected: critest's own `benchmark` skip, run.py SKIPS or "
                          "--focus")
            skips.setdefault(reason, []).append(name)
        else:
            passed += 1
    return passed, failed, skipped, failures, skips


FLAKE_ATTEMPTS = int(os.environ.get("CONFORMANCE_FLAKE_ATTEMPTS", "2"))


def run_critest(env, handler, nodes, focus, out_dir):
    run_dir = os.path.join(env.base, f"run-{handler}-{nodes}")
    sock = env.start_hulld(run_dir)
    tmp = os.path.join(run_dir, "tmp")
    os.makedirs(tmp)
    junit = os.path.join(out_dir, f"junit-{handler}-{nodes}.xml")
    logpath = os.path.join(out_dir, f"critest-{handler}-{nodes}.log")
    args = [tool("critest"), "-runtime-endpoint", "unix://" + sock,
            "-image-endpoint", "unix://" + sock, "-runtime-handler", handler,
            "-ginkgo.no-color", "-ginkgo.junit-report", junit, "-config", "/dev/null",
            # a spec that fails once is run once more (and reported as flaky in the log): a
            # StopContainer sent a millisecond after StartContainer can reach the container's
            # PID 1 before it has a SIGTERM handler, and the kernel drops it; a real failure
            # fails both attempts
            "-ginkgo.flake-attempts", str(FLAKE_ATTEMPTS),
            # the NRI specs (pkg/validate/nri_linux.go) run their plugins on hulld's socket
            "-nri-socket", os.path.join(run_dir, "nri.sock")]
    if nodes > 1:
        args += ["-parallel", str(nodes)]
    for pattern in SKIPS:
        args += ["-ginkgo.skip", pattern]
    if focus:
        args += ["-ginkgo.focus", focus]
    envv = dict(os.environ, TMPDIR=tmp, PATH=os.path.join(TOOLS, "bin") + ":" +
                os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"))
    log(f"run {handler} {'serial' if nodes == 1 else f'parallel ({nodes} nodes)'}: "
        f"log {logpath}")
    t = time.time()
    with open(logpath, "wb") as lf:
        rc = subprocess.run(args, stdout=lf, stderr=subprocess.STDOUT, env=envv,
                            cwd=tmp).returncode
    dur = time.time() - t
    problems = env.stop_hulld(sock)
    shutil.copy(env.hulld_log, os.path.join(out_dir, f"hulld-{handler}-{nodes}.log"))
    if not os.path.exists(junit):
        return {"handler": handler, "nodes": nodes, "rc": rc, "duration": dur,
                "error": f"critest wrote no report (exit {rc}), see {logpath}",
                "problems": problems}
    p, f, s, failures, skips = parse_junit(junit)
    return {"handler": handler, "nodes": nodes, "rc": rc, "duration": dur, "passed": p,
            "failed": f, "skipped": s, "failures": failures, "skips": skips,
            "problems": problems}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default=os.environ.get("CONFORMANCE_RUNS",
                                                     "hull-oci:1,hull-oci:2,runc:2"))
    ap.add_argument("--focus", default=os.environ.get("CONFORMANCE_FOCUS", ""))
    ap.add_argument("--out", default=os.environ.get("CONFORMANCE_OUT",
                                                    os.path.join(BUILD, "conformance")))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directories")
    a = ap.parse_args()
    runs = []
    for item in a.runs.split(","):
        h, _, n = item.strip().partition(":")
        runs.append((h, int(n or "1")))
    busy = [p for p in HOST_PORTS if port_in_use(p)]
    if busy:
        sys.exit(f"conformance: host ports {busy} are in use; critest needs {HOST_PORTS} free")
    tool("critest"), tool("crictl"), tool("ginkgo")
    os.makedirs(a.out, exist_ok=True)
    env = Env(keep=a.keep)
    results = []
    t0 = time.time()
    try:
        env.start_registry()
        for h, n in runs:
            results.append(run_critest(env, h, n, a.focus, a.out))
    finally:
        env.cleanup()
    ok = True
    print()
    for pattern, why in SKIPS.items():
        print(f"skipped by name: \"{pattern}\": {why}")
    for r in results:
        mode = "serial" if r["nodes"] == 1 else f"parallel {r['nodes']}"
        if "error" in r:
            ok = False
            print(f"== {r['handler']} {mode}: ERROR {r['error']}")
            continue
        print(f"== {r['handler']} {mode}: {r['passed']} passed, {r['failed']} failed, "
              f"{r['skipped']} skipped in {r['duration']:.0f}s (critest exit {r['rc']})")
        for reason, names in sorted(r["skips"].items()):
            print(f"   skipped ({len(names)}): {reason[:300]}")
        for name, msg in r["failures"]:
            print(f"   FAILED: {name}\n      {msg.strip()[:600]}")
        for p in r["problems"]:
            print(f"   PROBLEM: {p}")
        if r["failed"] or r["rc"] != 0 or r["problems"]:
            ok = False
    print(f"conformance: {'PASS' if ok else 'FAIL'} in {time.time() - t0:.0f}s "
          f"(logs and JUnit reports in {a.out})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
