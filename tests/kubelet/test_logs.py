"""Container logs where kubelet expects them (podLogsDir/<ns>_<pod>_<uid>/<container>/<N>.log,
CRI log format) and their rotation: at containerLogMaxSize kubelet renames the file and calls
ReopenContainerLog, after which the runtime writes to a fresh file."""
import os
import re

from kubelet_env import ctr, pod, wait_for

CRI_LINE = re.compile(r"^\S+ (stdout|stderr) (P|F) (.*)$")


def test_logs_in_place_and_rotated(env):
    bb = env.images.busybox
    # ~100 bytes a line, 50 lines a second: 10 KiB every ~2 s
    script = ("echo to-stderr >&2; i=0; while :; do "
              "echo \"line-$i-$(printf '%080d' 0)\"; i=$((i+1)); usleep 20000; done")
    env.apply(pod("logs", [ctr("talker", bb, script)], grace=1))
    p = env.wait_running("logs", ["talker"])
    uid = p["metadata"]["uid"]
    d = os.path.join(env.kubelet.pod_logs, f"default_{env.full_name('logs')}_{uid}", "talker")
    current = os.path.join(d, "0.log")
    wait_for(lambda: os.path.exists(current), what=current)
    cid = env.containers("logs", "talker")[0]["id"]
    assert env.inspect(cid)["status"]["logPath"] == current

    # rotation: 0.log.<timestamp> files appear (the older ones gzipped), at most
    # containerLogMaxFiles (3) files in all
    def rotated():
        names = os.listdir(d)
        return [n for n in names if n.startswith("0.log.")] if len(names) >= 3 else None
    wait_for(rotated, timeout=60, interval=0.5, what="two rotations")
    with open(os.path.join(env.kubelet.log_path), errors="replace") as f:
        assert "Failed to rotate log for container" not in f.read()

    # after the reopen, the runtime writes to the new 0.log: newer lines, well-formed, and
    # the file stays around the size limit instead of growing without bound
    def fresh_lines():
        with open(current, errors="replace") as f:
            lines = f.read().splitlines()
        return lines if len(lines) > 5 else None
    lines = wait_for(fresh_lines, what="lines in the reopened log")
    for line in lines[:-1]:  # the last one may be being written
        m = CRI_LINE.match(line)
        assert m, line
    first_n = int(CRI_LINE.match(lines[0]).group(3).split("-")[1])
    assert first_n > 50, "the current log still starts with the first lines: never reopened"
    assert "to-stderr" not in open(current).read()

    def bounded():
        names = os.listdir(d)
        return len(names) <= 3 and os.path.getsize(current) < 64 * 1024 and names
    wait_for(bounded, timeout=30, what="rotation to keep the files bounded")
    assert any(n.endswith(".gz") for n in os.listdir(d)) or len(os.listdir(d)) == 2

    # crictl reads the current file
    out = env.crictl("logs", "--tail", "3", cid)
    assert out.count("line-") >= 1, out
    env.delete("logs")
