"""Cold pull time of a multi-layer image (>= 50 MiB compressed) from a local registry: hulld vs
containerd's CRI plugin (Debian's containerd on a temporary root, mirror to the same registry),
with skopeo copy + umoci unpack as the floor.  Each run starts a fresh daemon on an empty root,
pulls through PullImage over gRPC and stops; numbers are compared within this one run.

    HULL_BUILD=build /usr/bin/python3 tests/bench/bench_image.py [--runs N]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from refs import have_containerd, pb, start_containerd, start_hulld, table

from registry import Registry, busybox_entries, make_layer  # noqa: E402

REPO = "library/hullbench"


def build_layers(total_mib=60, n=6):
    """n layers of mixed content: part incompressible, part text; total about total_mib MiB."""
    per = total_mib * 1024 * 1024 // n
    layers = [make_layer(busybox_entries())]
    for i in range(n):
        rnd = os.urandom(per * 3 // 4)
        text = (f"layer {i} line of fairly compressible text\n" * (per // 4 // 40)).encode()
        entries = [{"name": f"data{i}/", "type": "dir"},
                   {"name": f"data{i}/blob.bin", "data": rnd},
                   {"name": f"data{i}/notes.txt", "data": text}]
        entries += [{"name": f"data{i}/small/{k}", "data": f"{k}\n"} for k in range(200)]
        layers.append(make_layer(entries))
    return layers


def pull_once(start, ref):
    d = start()
    try:
        t0 = time.monotonic()
        d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref)), timeout=600)
        return time.monotonic() - t0
    finally:
        d.stop()


def skopeo_umoci_once(host):
    base = tempfile.mkdtemp(prefix="skopeo-bench-")
    try:
        t0 = time.monotonic()
        subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                        f"docker://{host}/{REPO}:latest", f"oci:{base}/oci:latest"],
                       check=True, capture_output=True)
        subprocess.run(["umoci", "raw", "unpack", "--image", f"{base}/oci:latest",
                        f"{base}/rootfs"], check=True, capture_output=True)
        return time.monotonic() - t0
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mib", type=int, default=72)
    args = ap.parse_args()
    reg = Registry()
    try:
        layers = build_layers(args.mib)
        img = reg.push_image(REPO, "latest", layers)
        size = sum(s for _, _, s in img.layers)
        print(f"image: {len(img.layers)} layers, {size / 1048576:.1f} MiB compressed "
              f"({sum(len(x) for x in layers) / 1048576:.1f} MiB uncompressed)")
        ref = f"docker.io/{REPO}:latest"
        mirror = f"http://{reg.host}"
        contenders = [("hulld", lambda: pull_once(
            lambda: start_hulld("--registry-mirror", f"docker.io={mirror}"), ref))]
        if have_containerd():
            contenders.append(("containerd 1.6 (CRI)", lambda: pull_once(
                lambda: start_containerd(mirrors=[mirror]), ref)))
        else:
            print("containerd not installed: apt-get install containerd for the comparison")
        if shutil.which("skopeo") and shutil.which("umoci"):
            contenders.append(("skopeo copy + umoci unpack", lambda: skopeo_umoci_once(reg.host)))
        rows = []
        results = {}
        for name, fn in contenders:
            times = []
            for _ in range(args.runs):
                times.append(fn())
            results[name] = times
            rows.append((name, f"{statistics.median(times) * 1000:.0f}",
                         f"{min(times) * 1000:.0f}", f"{max(times) * 1000:.0f}",
                         f"{size / 1048576 / statistics.median(times):.0f}"))
        table(f"cold pull of {size / 1048576:.0f} MiB, {len(img.layers)} layers "
              f"({args.runs} runs each, fresh daemon and root per run)",
              ["puller", "median ms", "min ms", "max ms", "MiB/s"], rows)
        if "containerd 1.6 (CRI)" in results:
            h = statistics.median(results["hulld"])
            c = statistics.median(results["containerd 1.6 (CRI)"])
            print(f"\nhulld / containerd: {h / c:.2f}x the time "
                  f"({'faster' if h < c else 'slower'})")
    finally:
        reg.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
