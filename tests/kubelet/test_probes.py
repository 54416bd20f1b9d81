"""Liveness, readiness and startup probes of every kind (exec through ExecSync, httpGet and
tcpSocket from kubelet to the pod IP on hulld's CNI bridge)."""
from kubelet_env import SLEEP, ctr, pod, wait_for

WEB = ("mkdir -p /www && echo ok > /www/ready && echo ok > /www/healthz && "
       "exec httpd -f -p 8080 -h /www")


def test_probes(env):
    bb = env.images.busybox
    fast = {"periodSeconds": 1, "timeoutSeconds": 10}  # ASan hulld on a loaded machine
    env.apply(pod("probes", [
        # serves /ready and /healthz; ready through httpGet, alive through httpGet
        ctr("web", bb, WEB,
            readinessProbe={"httpGet": {"path": "/ready", "port": 8080}, **fast},
            livenessProbe={"httpGet": {"path": "/healthz", "port": 8080},
                           "failureThreshold": 3, **fast}),
        # never ready: the same server answers 404 for this path
        ctr("unready", bb, SLEEP,
            readinessProbe={"httpGet": {"path": "/missing", "port": 8080}, **fast}),
        # a TCP listener behind a tcpSocket startup probe, alive through exec
        ctr("tcp", bb, "nc -ll -p 9090 -e /bin/true & " + SLEEP,
            startupProbe={"tcpSocket": {"port": 9090}, "failureThreshold": 30, **fast},
            livenessProbe={"exec": {"command": ["/bin/sh", "-c", "test -d /proc/1"]}, **fast},
            readinessProbe={"tcpSocket": {"port": 9090}, **fast}),
        # fails its exec liveness probe from the start: restarted again and again
        ctr("dying", bb, SLEEP,
            livenessProbe={"exec": {"command": ["/bin/cat", "/tmp/healthy"]},
                           "failureThreshold": 1, **fast}),
        # its startup probe passes after a while; readiness (exec) only counts after that
        ctr("slow", bb, "sleep 3; touch /tmp/started; " + SLEEP,
            startupProbe={"exec": {"command": ["/bin/cat", "/tmp/started"]},
                          "failureThreshold": 60, **fast},
            readinessProbe={"exec": {"command": ["/bin/true"]}, **fast}),
    ], grace=1))

    def state():
        p = env.pod("probes")
        if not p:
            return None
        return {s["name"]: s for s in p["status"].get("containerStatuses", [])}

    def settled():
        cs = state()
        if not cs or len(cs) < 5:
            return None
        if not all(cs[n].get("ready") for n in ("web", "tcp", "slow")):
            return None
        if cs["dying"].get("restartCount", 0) < 2:
            return None
        return cs
    cs = wait_for(settled, timeout=150, interval=0.5, what="probes to settle")
    assert cs["unready"]["ready"] is False and "running" in cs["unready"]["state"], cs["unready"]
    assert cs["slow"]["started"] is True and cs["tcp"]["started"] is True
    for n in ("web", "unready", "tcp", "slow"):
        assert cs[n]["restartCount"] == 0, cs[n]
    last = cs["dying"]["lastState"]["terminated"]
    assert last["exitCode"] in (0, 137, 143), last  # stopped by kubelet after the probe failed
    # the container that keeps failing is replaced by a new CRI container each time: the newest
    # one carries attempt >= 2 (kubelet's container GC may already have removed the older ones)
    dying = env.containers("probes", "dying")
    attempts = {c["metadata"]["attempt"] for c in dying}
    assert attempts and max(attempts) >= 2, dying
    p = env.pod("probes")
    ready = [c for c in p["status"]["conditions"] if c["type"] == "Ready"][0]
    assert ready["status"] == "False"  # "unready" and "dying" keep the pod unready

    # the probe metrics on the read-only API
    metrics = env.kubelet.get_text("/metrics/probes")
    assert 'probe_type="Liveness"' in metrics and 'result="failed"' in metrics
    env.delete("probes")


def test_restart_count_rises_on_a_failing_http_liveness_probe(env):
    bb = env.images.busybox
    # the first generation serves /healthz then stops serving it; every restart does the same
    script = ("mkdir -p /www && echo ok > /www/healthz && (sleep 2; rm /www/healthz) & "
              "exec httpd -f -p 8081 -h /www")
    env.apply(pod("http-live", [ctr("c", bb, script, livenessProbe={
        "httpGet": {"path": "/healthz", "port": 8081}, "periodSeconds": 1,
        "failureThreshold": 2})], grace=1))

    def count():
        s = env.status("http-live", "c")
        return s and s.get("restartCount", 0) >= 2 and s
    s = wait_for(count, timeout=120, interval=0.5, what="restartCount to reach 2")
    assert "terminated" in s["lastState"], s
    env.delete("http-live")
