#!/usr/bin/env python3
"""Times `gantry build` of a graph of three images (a shared base and two
images on it) over ~500 MB of inputs: a cold build into an empty store, then
a no-op rebuild of the whole graph with nothing changed. Reports medians of
several rounds and the no-op/cold ratio as a Markdown table; each no-op
rebuild is checked (through --json) to have rebuilt no layer.

    bench/graph.py [--runs 5] [--work /tmp/gantry-bench] [--gantry target/release/gantry]

The inputs are copied from files every machine of this project has, chosen
deterministically by bench/build.py's helpers.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import MB, large_files, make_tree, mixed_files, run  # noqa: E402

BUILD_FILE = """
[image.base]
base = "scratch"
platform = "linux/amd64"
[[image.base.layer]]
name = "share"
files = [{{ src = "{base}", dst = "/usr/share/bench/" }}]

[image.api]
base = ":base"
[[image.api.layer]]
name = "libs"
files = [{{ src = "{api}", dst = "/opt/api/" }}]

[image.worker]
base = ":base"
[[image.worker.layer]]
name = "libs"
files = [{{ src = "{worker}", dst = "/opt/worker/" }}]
"""


def trees(work):
    """base: ~100 MB of small files; api and worker: ~200 MB of large
    binaries each (alternate files of one deterministic pick)."""
    base = mixed_files()
    large = large_files(400 * MB)
    made = not all((work / n).exists() for n in ["graph-base", "graph-api", "graph-worker"])
    make_tree(work / "graph-base", base)
    make_tree(work / "graph-api", large[0::2])
    make_tree(work / "graph-worker", large[1::2])
    if made:
        # Files changed in the last two seconds are "racily clean" and are
        # hashed again on the next build; the benchmark measures the usual
        # case, inputs older than that.
        time.sleep(2.5)
    return [work / "graph-base", work / "graph-api", work / "graph-worker"]


def tree_size(d):
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file() and not f.is_symlink())


def rebuilt_layers(report):
    return [
        f"{i['name']}/{layer['name']}"
        for i in report["images"]
        for p in i["platforms"]
        for layer in p["layers"]
        if layer["status"] == "rebuilt"
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--work", default="/tmp/gantry-bench")
    ap.add_argument("--gantry", default=str(Path(__file__).resolve().parent.parent / "target/release/gantry"))
    args = ap.parse_args()
    if not shutil.which(args.gantry):
        sys.exit(f"{args.gantry} not found (build it with cargo build --release)")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    base, api, worker = trees(work)
    proj = work / "proj-graph"
    proj.mkdir(exist_ok=True)
    build_file = proj / "gantry.toml"
    build_file.write_text(BUILD_FILE.format(base=f"{base}/", api=f"{api}/", worker=f"{worker}/"))
    total = sum(tree_size(t) for t in (base, api, worker))

    cold, noop = [], []
    for _ in range(args.runs):
        store = Path(tempfile.mkdtemp(dir=work))
        env = dict(os.environ, GANTRY_STORE=str(store))
        cmd = [args.gantry, "--progress=none", "build", "-f", str(build_file)]
        cold.append(run(cmd, env=env))
        # The timed no-op rebuild itself says what it rebuilt (nothing).
        report_path = store / "noop.json"
        noop.append(run(cmd + ["--report", str(report_path)], env=env))
        again = rebuilt_layers(json.loads(report_path.read_text()))
        if again:
            sys.exit(f"a no-op rebuild rebuilt {again}")
        shutil.rmtree(store)

    print(f"graph: 3 images, {total / MB:.0f} MB of inputs; runs per figure: {args.runs} "
          "(medians; peak RSS is the max over runs)\n")
    print("| build | wall s | CPU s | peak RSS MiB |")
    print("|---|---:|---:|---:|")
    for name, samples in [("cold (empty store)", cold), ("no-op rebuild", noop)]:
        wall = statistics.median(w for w, _, _ in samples)
        cpu = statistics.median(c for _, c, _ in samples)
        rss = max(r for _, _, r in samples)
        print(f"| {name} | {wall:.3f} | {cpu:.3f} | {rss:.0f} |")
    ratio = statistics.median(n[0] / c[0] for c, n in zip(cold, noop))
    print(f"\nno-op / cold wall time (median of per-round ratios): {ratio * 100:.2f} %")


if __name__ == "__main__":
    main()
