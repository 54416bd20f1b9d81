"""The infra process of a shared-PID pod (hull-pause, PID 1 of the pod) is confined like a
container: a container of the pod -- even one given CAP_SYS_PTRACE -- cannot reach a host file
through /proc/<pid>/root, /proc/<pid>/cwd or /proc/<pid>/fd of any process it can see; the infra
has no capability, no_new_privs, the RuntimeDefault seccomp filter, its own mount namespace with
a tiny read-only root and no host mount, and it sits in the pod cgroup."""
import functools
import json
import os
import secrets
import time

import grpc
import pytest

import cri
from conftest import binary, pb
from cri import sh
from registry import busybox_entries, make_layer, registry  # noqa: F401  (fixture)

HANDLERS = ["hull-oci", "runc"]
APPLETS = ["readlink", "head", "wc", "grep", "sed", "tr", "cut", "stat"]


@pytest.fixture(scope="module")
def image(registry):  # noqa: F811
    layer = make_layer(busybox_entries(extra_applets=APPLETS))
    return registry.push_image("infra/busybox", "1", [layer],
                               config={"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]})


@pytest.fixture(params=HANDLERS)
def env(request, hulld_factory, registry, image, tmp_path):  # noqa: F811
    d = hulld_factory("--insecure-registry", registry.host, "--runtime", "runc=/usr/sbin/runc")
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=image.ref)))
    d.img = image
    d.handler = request.param
    d.logs = tmp_path / "logs"
    # a file only the host has: no path from inside the pod may lead to it
    d.marker = f"/tmp/hull-host-marker-{secrets.token_hex(8)}"
    d.marker_text = "host-secret-" + secrets.token_hex(8)
    with open(d.marker, "w") as f:
        f.write(d.marker_text + "\n")
    yield d
    cri.remove_all_pods(d)
    os.unlink(d.marker)


run_pod = functools.partial(cri.new_pod, network=pb.NODE, pid=pb.POD)


def start(d, pod, pod_cfg, name, caps_add=()):
    sc = pb.LinuxContainerSecurityContext(
        capabilities=pb.Capability(add_capabilities=list(caps_add)))
    cid = cri.create_container(d, pod, pod_cfg, cri.container_config(
        name, d.img.ref, ["sleep", "1000"], log_path=f"{name}.log",
        linux=pb.LinuxContainerConfig(security_context=sc)))
    cri.start_container(d, cid)
    return cid


def host_only_files(d, cid):
    """Files the host has and the container image does not."""
    cands = [d.marker, "/etc/debian_version", "/etc/os-release", binary("hulld")]
    out = []
    for p in cands:
        if os.path.isfile(p) and sh(d, cid, f"test -e '{p}'")[0] != 0:
            out.append(p)
    assert d.marker in out
    return out


# for every process the container sees, every way into its file system
SCAN = r"""
for d in /proc/[0-9]*; do
  for f in FILES; do
    for via in root cwd; do
      if cat "$d/$via$f" >/dev/null 2>&1; then echo "LEAK $d/$via$f"; fi
    done
    for fd in $d/fd/*; do
      if cat "$fd$f" >/dev/null 2>&1; then echo "LEAK $fd$f"; fi
    done
  done
  for fd in $d/fd/*; do
    t=$(readlink "$fd" 2>/dev/null)
    case "$t" in /tmp/hull-host-marker*) echo "LEAK fd $fd -> $t";; esac
  done
done
echo scanned
"""


def status_fields(text):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def pod_info(d, pod):
    return json.loads(d.runtime.PodSandboxStatus(
        pb.PodSandboxStatusRequest(pod_sandbox_id=pod, verbose=True)).info["info"])


def confined_pod(d):
    """A shared-PID pod with two running root containers: one given CAP_SYS_PTRACE, one with the
    default capabilities."""
    pod, pcfg = run_pod(d, "confined")
    infra = int(pod_info(d, pod)["pid"])
    assert infra > 0
    ptracer = start(d, pod, pcfg, "ptracer", caps_add=["SYS_PTRACE"])
    plain = start(d, pod, pcfg, "plain")
    for cid in (ptracer, plain):
        deadline = time.time() + 20
        while d.runtime.ContainerStatus(pb.ContainerStatusRequest(
                container_id=cid)).status.state != pb.CONTAINER_RUNNING:
            assert time.time() < deadline
            time.sleep(0.05)
    # the ptracer really can look into other processes, and pid 1 is the infra
    code, out, _ = sh(d, ptracer, "grep CapEff /proc/self/status; cat /proc/1/comm")
    assert code == 0 and "hull-pause" in out
    assert int(status_fields(out)["CapEff"], 16) & (1 << 19)
    return pod, infra, ptracer, plain


def test_no_host_file_through_proc(env):
    """No /proc/<pid>/{root,cwd,fd} of any visible process leads to a host-only file."""
    d = env
    _, _, ptracer, plain = confined_pod(d)
    files = host_only_files(d, ptracer)
    for cid in (ptracer, plain):
        code, out, err = sh(d, cid, SCAN.replace("FILES", " ".join(f"'{f}'" for f in files)))
        assert code == 0 and "scanned" in out, err
        assert "LEAK" not in out, out
        assert d.marker_text not in out


def test_infra_credentials_root_and_fds(env):
    """The infra, as a container of its pod sees it: no capability, no_new_privs, a seccomp
    filter, one read-only tmpfs mount, stdio on /dev/null and nothing else open, run from a
    memfd."""
    d = env
    _, _, ptracer, plain = confined_pod(d)
    for cid in (ptracer, plain):
        code, out, _ = sh(d, cid, "cat /proc/1/status")
        st = status_fields(out)
        for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(st[k], 16) == 0, (k, st[k])
        assert st["NoNewPrivs"] == "1"
        assert st["Seccomp"] == "2"

    code, mountinfo, _ = sh(d, ptracer, "cat /proc/1/mountinfo")
    assert code == 0
    mounts = [line.split() for line in mountinfo.splitlines() if line.strip()]
    assert len(mounts) == 1, mountinfo
    m = mounts[0]
    sep = m.index("-")
    assert m[4] == "/" and m[sep + 1] == "tmpfs", mountinfo
    for opt in ("ro", "nosuid", "nodev", "noexec"):
        assert opt in m[5].split(","), mountinfo

    code, out, _ = sh(d, ptracer, "ls -a /proc/1/root/ /proc/1/cwd/; "
                                   "for f in /proc/1/fd/*; do echo \"$f $(readlink $f)\"; done; "
                                   "readlink /proc/1/exe")
    assert code == 0
    lines = out.splitlines()
    fds = [line for line in lines if line.startswith("/proc/1/fd/")]
    assert sorted(line.split()[0] for line in fds) == ["/proc/1/fd/0", "/proc/1/fd/1",
                                                       "/proc/1/fd/2"], out
    assert all(line.split()[1] == "/dev/null" for line in fds), out
    exe = lines[-1]
    assert exe.startswith("/memfd:"), out  # no host file to reopen for writing
    names = {x for x in lines if x and not x.startswith("/")} - {".", ".."}
    assert names <= {"dev"}, out

    # the plain root container cannot even look inside it (it is not dumpable)
    code, out, _ = sh(d, plain, "ls /proc/1/root/ || echo denied")
    assert "denied" in out, out


def test_infra_host_side_and_still_working(env):
    """From the host: its own mount namespace with nothing of the host, the pod cgroup in every
    hierarchy; it still reaps orphans, and stop still kills it."""
    d = env
    pod, infra, _, plain = confined_pod(d)
    assert os.readlink(f"/proc/{infra}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    assert os.readlink(f"/proc/{infra}/ns/mnt") != os.readlink(f"/proc/{d.proc.pid}/ns/mnt")
    assert set(os.listdir(f"/proc/{infra}/root")) <= {"dev"}
    assert not os.path.exists(f"/proc/{infra}/root{d.marker}")
    cgparent = pod_info(d, pod)["cgroupParent"]
    with open(f"/proc/{infra}/cgroup") as f:
        lines = [line.strip().split(":", 2) for line in f if line.strip()]
    v1 = [(c, p) for _, c, p in lines if c]
    if v1:
        assert all(p == cgparent for c, p in v1), lines
    else:
        assert lines[0][2].startswith(cgparent), lines

    # an orphan is reparented to it and reaped (a zombie nobody reaps would stay in /proc)
    code, out, _ = sh(d, plain, "sh -c 'sleep 0.3 & echo $!'")
    orphan = out.strip()
    assert code == 0 and orphan.isdigit()
    deadline = time.time() + 10
    while time.time() < deadline:
        code, out, _ = sh(d, plain, f"cat /proc/{orphan}/stat 2>/dev/null || echo gone")
        if out.strip() == "gone":
            break
        time.sleep(0.1)
    assert out.strip() == "gone", out

    d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    assert not os.path.exists(f"/proc/{infra}") or \
        open(f"/proc/{infra}/stat").read().split()[2] == "Z"
    st = d.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod)).status
    assert st.state == pb.SANDBOX_NOTREADY


def test_missing_infra_binary_fails_cleanly(hulld_factory, tmp_path):
    """An infra binary that cannot be run: RunPodSandbox of a shared-PID pod fails with an error
    naming it and leaves no pod behind; pods without an infra process are unaffected."""
    missing = str(tmp_path / "no-such-pause")
    d = hulld_factory("--pause", missing)
    d.logs = tmp_path / "logs"
    d.handler = ""
    with pytest.raises(grpc.RpcError) as e:
        run_pod(d, "nopause")
    assert missing in e.value.details(), e.value.details()
    assert list(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items) == []
    cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="own", uid="own-uid", namespace="test"),
        linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER))))
    pod = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id
    d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
