"""Runs every tests/bench/bench_*.py in turn (make bench) and keeps each one's output in
tests/bench/results/<name>.txt (the numbers the README quotes come from there; bench_critest.py
also leaves critest's raw log and data files in results/critest/).

    tests/bench/run.py [NAME...]     only the named benchmarks (e.g. scale critest)
"""
import glob
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
os.makedirs(RESULTS, exist_ok=True)
only = set(sys.argv[1:])
failed = 0
for path in sorted(glob.glob(os.path.join(HERE, "bench_*.py"))):
    name = os.path.basename(path)[len("bench_"):-len(".py")]
    if only and name not in only:
        continue
    print(f"\n# {os.path.basename(path)}", flush=True)
    out = os.path.join(RESULTS, f"{name}.txt")
    with open(out + ".tmp", "w") as log:
        log.write(f"# {os.path.basename(path)}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                  f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}\n")
        log.flush()
        p = subprocess.Popen([sys.executable, path], cwd=HERE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        for line in p.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            log.write(line)
        rc = p.wait()
    os.replace(out + ".tmp", out)
    failed += rc != 0
sys.exit(1 if failed else 0)
