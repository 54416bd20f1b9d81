"""Test helpers that build OCI bundles on a busybox-static rootfs.

Shared by the hull-oci, hull-conmon and server tests.  Everything is real: the rootfs is a
directory with Debian's statically linked busybox and one hard link per applet (as in many
images), and config.json is a runtime-spec v1.1 document any runc-compatible runtime runs.
"""
import copy
import json
import os
import shutil
import subprocess

BUSYBOX = "/bin/busybox"  # from busybox-static
_APPLETS = None


def _applets():
    global _APPLETS
    if _APPLETS is None:
        out = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True, text=True)
        _APPLETS = [a for a in out.stdout.split() if a and "/" not in a]
    return _APPLETS


def make_rootfs(path):
    """Creates a minimal busybox rootfs at path and returns path."""
    for d in ("bin", "dev", "proc", "sys", "tmp", "etc", "root", "var", "run"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    os.chmod(os.path.join(path, "tmp"), 0o1777)
    bb = os.path.join(path, "bin", "busybox")
    if not os.path.exists(bb):
        shutil.copy2(BUSYBOX, bb)
    for a in _applets():
        p = os.path.join(path, "bin", a)
        if a != "busybox" and not os.path.lexists(p):
            os.link(bb, p)
    with open(os.path.join(path, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
                "app:x:1000:1000:app:/tmp:/bin/sh\n")
    with open(os.path.join(path, "etc", "group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\napp:x:1000:\nextra:x:2000:app\n")
    return path


DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]

BASE_SPEC = {
    "ociVersion": "1.1.0",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["/bin/sh", "-c", "true"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {k: list(DEFAULT_CAPS) for k in
                         ("bounding", "effective", "permitted")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": False},
    "hostname": "hull-test",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                        "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                          "/proc/sysrq-trigger"],
    },
}


def make_spec(args, **overrides):
    """Returns a spec dict running args; overrides are merged at the top level, and the keys
    `process`/`linux` are merged one level deeper."""
    spec = copy.deepcopy(BASE_SPEC)
    spec["process"]["args"] = list(args)
    for k, v in overrides.items():
        if k in ("process", "linux") and isinstance(v, dict):
            spec[k].update(v)
        else:
            spec[k] = v
    return spec


def make_bundle(path, args=("/bin/sh", "-c", "true"), rootfs=None, **overrides):
    """Creates bundle dir path with config.json and (unless rootfs is given, which is then
    used as the absolute root.path) a fresh busybox rootfs."""
    os.makedirs(path, exist_ok=True)
    spec = make_spec(args, **overrides)
    if rootfs is None:
        make_rootfs(os.path.join(path, "rootfs"))
    else:
        spec["root"]["path"] = os.path.abspath(rootfs)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(spec, f, indent=1)
    return path


def write_spec(bundle, spec):
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f, indent=1)


def read_spec(bundle):
    with open(os.path.join(bundle, "config.json")) as f:
        return json.load(f)
