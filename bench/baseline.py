#!/usr/bin/env python3
"""Times the steady-state figures of docs/performance.md — a no-op rebuild
and a push of an image the registry already holds — for two gantry binaries
in the same rounds, so a change is measured against what it replaces under
the same load. Reports medians of wall and CPU time (CPU time moves less
with other load on a shared machine), and the ratio of this binary to the
baseline.

    bench/baseline.py --baseline path/to/other/gantry [--runs 7]
                      [--work /tmp/gantry-bench] [--gantry target/release/gantry]

Each binary has its own store and its own registry, filled once (untimed);
then every round times one no-op rebuild and one warm push per binary, in
turn, on both trees of bench/build.py (~100 MB of mixed files, ~500 MB of
large binaries).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import MB, run, standard_trees, tree_size  # noqa: E402
from push import Registry  # noqa: E402


class Subject:
    """One binary with its project, store and registry for one tree."""

    def __init__(self, name, binary, label, tree, work):
        self.name = name
        self.binary = binary
        self.dir = Path(work) / f"baseline-{label}-{name}"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.build_file = self.dir / "gantry.toml"
        self.build_file.write_text(
            '[image.bench]\nbase = "scratch"\nplatform = "linux/amd64"\n'
            f'[[image.bench.layer]]\nname = "data"\nfiles = [{{ src = "{tree}", dst = "/data" }}]\n'
        )
        self.env = dict(os.environ, GANTRY_STORE=str(self.dir / "store"))
        self.registry = Registry(work)
        self.registry.start(fresh=True)
        self.ref = f"127.0.0.1:{self.registry.port}/bench/{label}:1"
        # The cold build and the first push fill the store and the registry.
        subprocess.check_call(self.build_cmd(), env=self.env, stdout=subprocess.DEVNULL)
        subprocess.check_call(self.push_cmd(), env=self.env, stdout=subprocess.DEVNULL)
        # A file changed in the last two seconds is hashed again by design;
        # the figure measured here is the rebuild of an untouched tree.
        time.sleep(2.1)

    def build_cmd(self):
        return [self.binary, "--progress=none", "build", "-f", str(self.build_file)]

    def push_cmd(self):
        return [self.binary, "--progress=none", "push", "-f", str(self.build_file),
                "bench", "-t", self.ref]

    def stop(self):
        self.registry.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--work", default="/tmp/gantry-bench")
    ap.add_argument("--baseline", required=True, help="the gantry binary to compare with")
    ap.add_argument("--gantry", default=str(Path(__file__).resolve().parent.parent / "target/release/gantry"))
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    for tool in ["docker-registry", args.gantry, args.baseline]:
        if not shutil.which(tool):
            sys.exit(f"{tool} not found")
    rows = []
    for label, tree in zip(("mixed", "large"), standard_trees(Path(args.work))):
        subjects = [Subject("this", args.gantry, label, tree, args.work),
                    Subject("baseline", args.baseline, label, tree, args.work)]
        samples = {(s.name, step): [] for s in subjects for step in ("rebuild", "push")}
        try:
            for _ in range(args.runs):
                for s in subjects:
                    samples[(s.name, "rebuild")].append(run(s.build_cmd(), env=s.env))
                    samples[(s.name, "push")].append(run(s.push_cmd(), env=s.env))
        finally:
            for s in subjects:
                s.stop()
        size = tree_size(tree)
        for step in ("rebuild", "push"):
            row = [f"{label} ({size / MB:.0f} MB)", step]
            for i in (0, 1):  # wall, then CPU (user + system)
                this = statistics.median(x[i] for x in samples[("this", step)])
                base = statistics.median(x[i] for x in samples[("baseline", step)])
                row += [this, base, this / base if base else float("nan")]
            rows.append(row)
    print(f"{args.runs} rounds; medians in seconds\n")
    print("| tree | step | wall, this (s) | wall, baseline (s) | ratio "
          "| CPU, this (s) | CPU, baseline (s) | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    names = {"rebuild": "no-op rebuild", "push": "push, nothing to send"}
    for tree, step, *f in rows:
        print(f"| {tree} | {names[step]} | {f[0]:.3f} | {f[1]:.3f} | {f[2]:.2f} "
              f"| {f[3]:.3f} | {f[4]:.3f} | {f[5]:.2f} |")


if __name__ == "__main__":
    main()
