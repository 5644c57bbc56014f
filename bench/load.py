#!/usr/bin/env python3
"""Times `gantry load` into the local Docker Engine against `docker load -i`
of the image's tarball, in the same run: the ~540 MB tree of large binaries
of bench/build.py in three layers (two halves of the tree and a small top
layer). Reports medians of several runs as a Markdown table.

    bench/load.py [--runs 5] [--work /tmp/gantry-bench] [--gantry target/release/gantry]

Each round, in turn:

- `docker load -i` of the full tarball into an engine without the image;
- `docker load -i` of it again, the engine holding every layer;
- `gantry load` into an engine without the image (streamed, no temp file);
- `gantry load` again, nothing changed;
- `gantry load` after a change of the small top layer.

`gantry load` times include its no-op build (checking the inputs): what a
user runs. The image is removed from the engine between scenarios that
need it gone, and at the end.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import MB, large_files, make_tree, run, tree_size  # noqa: E402

REF = f"gantry-bench/load:r{os.getpid()}"


def split_tree(large, work):
    """The large tree's files in two halves of about equal size, as two
    directories of hard links (no copy)."""
    dest = work / "load-halves"
    if dest.exists():
        return dest / "a", dest / "b"
    tmp = dest.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    files = sorted(p for p in large.rglob("*") if p.is_file() and not p.is_symlink())
    sizes = [0, 0]
    for p in files:
        half = 0 if sizes[0] <= sizes[1] else 1
        sizes[half] += p.stat().st_size
        target = tmp / "ab"[half] / p.relative_to(large)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(p, target)
    tmp.rename(dest)
    return dest / "a", dest / "b"


# Every image ID the benchmark made: a load that moves the tag leaves the
# image it moved from, whose layers would make the next "fresh" engine
# hold the chains.
LOADED = set()


def record():
    p = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", REF],
                       capture_output=True, text=True)
    if p.returncode == 0:
        LOADED.add(p.stdout.strip())


def rmi():
    """Removes the image and every earlier one of the benchmark, so the
    engine holds none of their layers."""
    record()
    for r in [REF] + sorted(LOADED):
        subprocess.run(["docker", "image", "rm", "--force", r],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    LOADED.clear()


def timed(cmd, **kw):
    sample = run(cmd, **kw)
    record()
    return sample


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--work", default="/tmp/gantry-bench")
    ap.add_argument("--gantry", default=str(Path(__file__).resolve().parent.parent / "target/release/gantry"))
    args = ap.parse_args()
    for tool in ["docker", args.gantry]:
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (build gantry with cargo build --release)")
    if subprocess.run(["docker", "info"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        sys.exit("no Docker Engine answers `docker info`")

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    large = work / "large"
    make_tree(large, large_files(500 * MB))
    a, b = split_tree(large, work)
    proj = Path(tempfile.mkdtemp(dir=work))
    store = proj / "store"
    (proj / "app.txt").write_text("round 0\n")
    (proj / "gantry.toml").write_text(
        f'[image.app]\nbase = "scratch"\nplatform = "linux/amd64"\ntags = ["{REF}"]\n'
        f'[[image.app.layer]]\nname = "a"\nfiles = [{{ src = "{a}", dst = "/data" }}]\n'
        f'[[image.app.layer]]\nname = "b"\nfiles = [{{ src = "{b}", dst = "/data" }}]\n'
        f'[[image.app.layer]]\nname = "app"\nfiles = [{{ src = "app.txt", dst = "/app.txt" }}]\n'
    )
    env = dict(os.environ, GANTRY_STORE=str(store))
    gantry = [args.gantry, "--progress=none"]
    tarball = proj / "app.tar"

    names = [
        "docker load -i (engine without the image)",
        "docker load -i (engine has every layer)",
        "gantry load (engine without the image)",
        "gantry load (nothing changed)",
        "gantry load (top layer changed)",
    ]
    samples = {n: [] for n in names}
    try:
        for i in range(args.runs):
            (proj / "app.txt").write_text(f"round {i}\n")
            # The tarball of this round's image, and a warm store for it.
            subprocess.check_call(gantry + ["build", "-o", str(tarball)], cwd=proj, env=env,
                                  stdout=subprocess.DEVNULL)
            rmi()
            samples[names[0]].append(timed(["docker", "load", "-i", str(tarball)]))
            samples[names[1]].append(timed(["docker", "load", "-i", str(tarball)]))
            rmi()
            samples[names[2]].append(timed(gantry + ["load"], cwd=proj, env=env))
            samples[names[3]].append(timed(gantry + ["load"], cwd=proj, env=env))
            (proj / "app.txt").write_text(f"round {i}, changed\n")
            samples[names[4]].append(timed(gantry + ["load"], cwd=proj, env=env))
        tar_mb = tarball.stat().st_size / MB
    finally:
        rmi()
        shutil.rmtree(proj, ignore_errors=True)

    base = statistics.median(w for w, _, _ in samples[names[0]])
    print(f"runs per figure: {args.runs} (median wall time); tree {tree_size(large) / MB:.0f} MB "
          f"in 3 layers, tarball {tar_mb:.0f} MB\n")
    print("| scenario | wall s | CPU s | vs docker load -i (fresh) | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    for name in names:
        wall = statistics.median(w for w, _, _ in samples[name])
        cpu = statistics.median(c for _, c, _ in samples[name])
        rss = max(r for _, _, r in samples[name])
        print(f"| {name} | {wall:.3f} | {cpu:.2f} | {100 * wall / base:.1f} % | {rss:.0f} |")


if __name__ == "__main__":
    main()
