"""With the EventedPLEG feature gate kubelet follows hulld's GetContainerEvents stream instead
of relisting every second (its relist period becomes 300 s): a container's start and exit
reach kubelet's pod status within seconds only through the events (kubelet runs at -v=4 here,
so it logs each event it receives, and logs it when it falls back to relisting)."""
import re

from kubelet_env import SLEEP, ctr, pod, wait_for

EVENT = re.compile(r'Received Container (\w+) Event" event="container_id:\\"([0-9a-f]+)')


def test_kubelet_follows_container_events(cri_env):
    e = cri_env
    bb = e.images.busybox
    e.apply(pod("evented", [ctr("quick", bb, "sleep 3; exit 7"),
                            ctr("stay", bb, SLEEP)], grace=1, restartPolicy="Never"))
    e.wait_running("evented", ["stay"], timeout=60)

    def exited():
        s = e.status("evented", "quick")
        return s and "terminated" in s.get("state", {}) and s
    s = wait_for(exited, timeout=45, interval=0.2, what="kubelet to see the exit")
    assert s["state"]["terminated"]["exitCode"] == 7, s
    quick = s["containerID"].split("://", 1)[1]
    stay = e.status("evented", "stay")["containerID"].split("://", 1)[1]

    log = e.kubelet.log()
    assert "Fall back to Generic PLEG relisting" not in log
    events = EVENT.findall(log)
    assert ("Started", stay) in events, events[-20:]
    assert ("Started", quick) in events, events[-20:]
    assert ("Stopped", quick) in events, events[-20:]
    # kubelet logs an event only when it is newer than what its pod cache holds: the Stopped
    # event of a container kubelet killed itself may lose to kubelet's own status read, but
    # the Deleted event of its container GC is always passed on.
    e.delete("evented", removed=True, timeout=150)

    def stay_gone():
        events = EVENT.findall(e.kubelet.log())
        return ("Deleted", stay) in events or ("Stopped", stay) in events
    wait_for(stay_gone, timeout=30, interval=0.5, what="kubelet to log the event of stay's end")
