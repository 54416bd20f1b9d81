"""Runs every tests/bench/bench_*.py in turn (make bench)."""
import glob
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
failed = 0
for path in sorted(glob.glob(os.path.join(HERE, "bench_*.py"))):
    print(f"\n# {os.path.basename(path)}", flush=True)
    r = subprocess.run([sys.executable, path], cwd=HERE)
    failed += r.returncode != 0
sys.exit(1 if failed else 0)
