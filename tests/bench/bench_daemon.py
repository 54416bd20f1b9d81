"""Version round-trip latency (p50/p99) and idle daemon memory: hulld and containerd's CRI
side by side, same client, same machine, one run."""
import time

from refs import (have_containerd, pb, percentile, rss_kib, start_containerd, start_hulld,
                  table)

CALLS = 2000


def version_latency(d, n=CALLS):
    for _ in range(100):  # warm up the channel
        d.runtime.Version(pb.VersionRequest())
    samples = []
    for _ in range(n):
        t = time.perf_counter_ns()
        d.runtime.Version(pb.VersionRequest())
        samples.append((time.perf_counter_ns() - t) / 1000.0)
    return samples


def main():
    daemons = [start_hulld()]
    if have_containerd():
        daemons.append(start_containerd())
    else:
        print("containerd not installed: apt-get install containerd for the comparison")
    rows = []
    try:
        time.sleep(2)  # let start-up settle before measuring idle memory
        for d in daemons:
            rss, anon = rss_kib(d.proc.pid)
            lat = version_latency(d)
            rows.append([d.name, f"{percentile(lat, 50):.0f}", f"{percentile(lat, 99):.0f}",
                         f"{rss / 1024:.1f}", f"{anon / 1024:.1f}"])
    finally:
        for d in daemons:
            d.stop()
    table(f"Version round trip over {CALLS} sequential calls (python grpc client), idle memory",
          ["daemon", "p50 us", "p99 us", "idle RSS MiB", "idle RssAnon MiB"], rows)


if __name__ == "__main__":
    main()
