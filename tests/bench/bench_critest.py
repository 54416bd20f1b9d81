"""critest --benchmark (cri-tools v1.37.0) against hulld and against containerd's CRI in one run,
with the same parameters and the same images (a local registry behind each daemon's docker.io
mirror).  Both daemons run for the whole run and critest alternates between them in --rounds
rounds (hulld first in even rounds, containerd first in odd ones), each round a share of the
pods and containers, so that a machine whose load drifts weighs on both sides alike; the
medians of every operation over all rounds go side by side.  critest's raw output (its log and
its JSON data files) is saved under tests/bench/results/critest/<daemon>/round<k>/.

critest comes from tests/tools/build-cri-tools.sh (cached in /var/cache/hull-tools/bin); when
neither the binary nor the script is there, the benchmark says so and skips.

    HULL_BUILD=build /usr/bin/python3 tests/bench/bench_critest.py [--pods 50] [--containers 50]
        [--rounds 5]
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

from bench_sandbox import bench_netdir, cleanup_host, push_bench_images
from refs import REPO, have_containerd, pb, percentile, start_containerd, start_hulld, table

from registry import Registry  # noqa: E402  (tests/integration)

VERSION = "v1.37.0"
TOOLS = os.environ.get("HULL_TOOLS", "/var/cache/hull-tools")
RESULTS = os.path.join(REPO, "tests", "bench", "results", "critest")
IMAGE = "docker.io/library/busybox:bench"


def find_critest():
    path = os.path.join(TOOLS, "bin", f"critest-{VERSION}")
    if os.access(path, os.X_OK):
        return path
    script = os.path.join(REPO, "tests", "tools", "build-cri-tools.sh")
    if os.access(script, os.X_OK):
        r = subprocess.run([script, "critest"], capture_output=True, text=True)
        if r.returncode == 0 and os.access(path, os.X_OK):
            return path
        print(r.stderr)
    return None


def medians(outdirs):
    """{file: {operation: (p50 ms, samples)}} from critest's JSON data files in outdirs (pooled:
    a file name's datapoints of every directory together)."""
    points_of, ops_of = {}, {}
    for outdir in outdirs:
        for name in sorted(os.listdir(outdir)):
            if not name.endswith(".json"):
                continue
            with open(os.path.join(outdir, name)) as f:
                data = json.load(f)
            ops_of.setdefault(name, data.get("operationsNames") or [])
            points_of.setdefault(name, []).extend(
                p.get("operationsDurationsNs") or [] for p in data.get("datapoints") or [])
    out = {}
    for name, ops in ops_of.items():
        per = {}
        for i, op in enumerate(ops):
            vals = [p[i] / 1e6 for p in points_of[name] if len(p) > i and p[i] > 0]
            per[op] = (percentile(vals, 50), len(vals))
        out[name] = per
    return out


def run_critest(critest, d, name, params, images_file, outdir):
    os.makedirs(outdir, exist_ok=True)
    for f in os.listdir(outdir):
        os.unlink(os.path.join(outdir, f))
    ep = "unix://" + d.socket
    args = [critest, "-benchmark", "-runtime-endpoint", ep, "-image-endpoint", ep,
            "-benchmarking-params-file", params, "-test-images-file", images_file,
            "-benchmarking-output-dir", outdir, "-ginkgo.no-color",
            # the image benchmarks pull from public registries (no network here)
            "-ginkgo.skip=Image"]
    with open(os.path.join(outdir, "critest.log"), "w") as log:
        log.write(f"# {name}: {' '.join(args)}\n")
        log.flush()
        r = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, timeout=3600)
    if r.returncode != 0:
        print(f"{name}: critest exited {r.returncode} (see {outdir}/critest.log)")
    return r.returncode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=50)
    ap.add_argument("--containers", type=int, default=50)
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rounds = max(1, min(args.rounds, args.pods, args.containers))
    critest = find_critest()
    if critest is None:
        print(f"critest {VERSION} not found in {TOOLS}/bin and tests/tools/build-cri-tools.sh "
              "is not there to build it: skipping")
        return 0
    work = tempfile.mkdtemp(prefix="hullbench-critest-")

    def params(k):
        """critest's parameters for round k: its share of the pods and containers."""
        path = os.path.join(work, f"params{k}.yaml")
        share = [n // rounds + (k < n % rounds) for n in (args.containers, args.pods)]
        with open(path, "w") as f:
            f.write(f"containersNumber: {share[0]}\ncontainersNumberParallel: {args.parallel}\n"
                    f"podsNumber: {share[1]}\npodsNumberParallel: {args.parallel}\n"
                    # critest panics when no sample finished for this long (default 60 s:
                    # too short for one pod + container lifecycle on a machine at load 40),
                    # and fails "start a container from scratch" when the average pod start
                    # took over 5 s (its default)
                    "containerBenchmarkTimeoutSeconds: 900\n"
                    "podBenchmarkTimeoutSeconds: 900\n"
                    "podContainerStartBenchmarkTimeoutSeconds: 900\n")
        return path
    images_file = os.path.join(work, "images.yaml")
    with open(images_file, "w") as f:
        f.write(f"defaultTestContainerImage: {IMAGE}\n")
    reg = Registry()
    results, failed = {}, 0
    tag = "%05x" % random.randrange(1 << 20)
    bridges = []

    def netdir(k):
        return bench_netdir(work, k, "hc", tag, 190, bridges)

    try:
        mirror = push_bench_images(reg)
        setups = [("hulld", lambda cni: start_hulld(
            "--registry-mirror", f"docker.io={mirror}", "--cni-config-dir", cni,
            "--cni-plugin-dirs", "/usr/lib/cni"))]
        if have_containerd():
            setups.append(("containerd", lambda cni: start_containerd(
                mirrors=[mirror], cni_dir=cni, sandbox_image="docker.io/library/pause:3.6")))
        daemons = []
        try:
            for k, (name, start) in enumerate(setups):
                d = start(netdir(k))
                daemons.append((name, d))
                for ref in (IMAGE, "docker.io/library/pause:3.6"):
                    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref)),
                                      timeout=300)
            for name, _ in daemons:
                shutil.rmtree(os.path.join(RESULTS, name), ignore_errors=True)
            for k in range(rounds):
                for name, d in (daemons if k % 2 == 0 else daemons[::-1]):
                    outdir = os.path.join(RESULTS, name, f"round{k}")
                    failed += run_critest(critest, d, name, params(k), images_file, outdir) != 0
            for name, _ in daemons:
                results[name] = medians([os.path.join(RESULTS, name, f"round{k}")
                                         for k in range(rounds)])
        finally:
            for _, d in daemons:
                d.stop()
    finally:
        reg.close()
        cleanup_host(bridges, tag)
        shutil.rmtree(work, ignore_errors=True)
    names = list(results)
    rows = []
    files = sorted({f for r in results.values() for f in r})
    for fname in files:
        ops = []
        for r in results.values():
            for op in r.get(fname, {}):
                if op not in ops:
                    ops.append(op)
        for op in ops:
            row = [fname.replace("_benchmark_data.json", ""), op]
            vals = []
            for n in names:
                v = results[n].get(fname, {}).get(op)
                row.append(f"{v[0]:.2f} ({v[1]})" if v else "-")
                vals.append(v[0] if v else None)
            if len(vals) == 2 and vals[0] and vals[1]:
                row.append(f"{vals[0] / vals[1]:.2f}x")
            rows.append(row)
    header = ["benchmark", "operation"] + [f"{n} p50 ms (samples)" for n in names]
    if len(names) == 2:
        header.append("hulld / containerd")
    table(f"critest {VERSION} --benchmark medians, same run, same parameters "
          f"({args.pods} pods, {args.containers} containers, {args.parallel} at a time, "
          f"{rounds} alternating rounds)",
          header, rows)
    with open(os.path.join(RESULTS, "medians.json"), "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
