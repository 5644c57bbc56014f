#!/usr/bin/env python3
"""Times the registry as the build cache: machines that start with an empty
store rebuilding an image the loopback reference registry already holds, in
the same run as the cold builds they replace. Reports medians, ratios and
the blob requests each push made (from the registry's access log).

    bench/cache.py [--runs 3] [--work /tmp/gantry-bench] [--gantry target/release/gantry]
                   [--sbom-none]

`--sbom-none` runs every step with `--sbom none`, to tell the cache's cost
from the SBOM's.

For each tree of bench/build.py (~100 MB of mixed files, ~500 MB of large
binaries) the image has three layers, the tree's files dealt round-robin
into three directories (hard links, so nothing is copied). Each round, on an
emptied registry, every step with a store of its own (a fresh machine):

- first push: nothing anywhere, everything compressed and uploaded;
- unchanged push: the image is at the tag; bar 15 % of the first push;
- one layer changed (a file added to the third), pushed to another tag with
  the first as --cache-from; bar: the cold push of an image of that layer
  alone plus 15 % of the rest of the first push;
- cold `build -o app.tar`, then `build -o app.tar --cache-from` the tag:
  the hits are downloaded and verified; bar 40 % of the cold build.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import MB, run, tree_size  # noqa: E402
from push import describe, on_registry, registry_args  # noqa: E402

STEPS = ["first push", "unchanged push", "one layer changed", "layer alone, cold",
         "cold build -o", "build -o with hits"]


def deal(tree, dest):
    """Hard-links the tree's files into dest/{a,b,c}, round-robin by path."""
    if dest.exists():
        return
    tmp = dest.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    files = sorted(p for p in tree.rglob("*") if p.is_file() and not p.is_symlink())
    for i, p in enumerate(files):
        target = tmp / "abc"[i % 3] / p.relative_to(tree)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(p, target)
    tmp.rename(dest)


def project(proj, parts, layers):
    proj.mkdir(parents=True, exist_ok=True)
    text = '[image.bench]\nbase = "scratch"\nplatform = "linux/amd64"\n'
    for name in layers:
        text += (f'[[image.bench.layer]]\nname = "{name}"\n'
                 f'files = [{{ src = "{parts / name}/", dst = "/{name}/" }}]\n')
    (proj / "gantry.toml").write_text(text)
    return proj / "gantry.toml"


def bench_tree(label, tree, args, reg, results):
    work = Path(args.work)
    parts = work / f"cache-{label}-parts"
    deal(tree, parts)
    changed = work / f"cache-{label}-changed"
    shutil.rmtree(changed, ignore_errors=True)
    shutil.copytree(parts, changed, copy_function=os.link)
    (changed / "c" / "changed.txt").write_bytes(os.urandom(4096))
    same = project(work / f"cache-{label}-proj", parts, "abc")
    other = project(work / f"cache-{label}-proj2", changed, "abc")
    alone = project(work / f"cache-{label}-proj3", changed, "c")

    def gantry(build_file, *argv):
        store = Path(tempfile.mkdtemp(dir=work))
        env = dict(os.environ, GANTRY_STORE=str(store))
        cmd = [args.gantry, "--progress=none", *argv[:1], "-f", str(build_file), *argv[1:]]
        if args.sbom_none:
            cmd[3:3] = ["--sbom", "none"]
        sample = run(cmd, env=env, cwd=build_file.parent)
        shutil.rmtree(store)
        return sample

    samples = {s: [] for s in STEPS}
    requests = {}
    for _ in range(args.runs):
        reg.start(fresh=True)
        main = f"127.0.0.1:{reg.port}/bench/{label}:main"
        pr = f"127.0.0.1:{reg.port}/bench/{label}:pr"
        steps = [
            ("first push", same, ["push", "-t", main, "bench"]),
            ("unchanged push", same, ["push", "-t", main, "bench"]),
            ("one layer changed", other, ["push", "-t", pr, "--cache-from", main, "bench"]),
            ("layer alone, cold", alone,
             ["push", "-t", f"127.0.0.1:{reg.port}/bench/{label}-alone:1", "bench"]),
            ("cold build -o", same, ["build", "-o", str(work / "cache-app.tar")]),
            ("build -o with hits", same,
             ["build", "-o", str(work / "cache-app.tar"), "--cache-from", main]),
        ]
        for name, build_file, argv in steps:
            before = reg.log_size()
            samples[name].append(gantry(build_file, *argv))
            time.sleep(0.2)  # let the access log catch up
            requests[name] = reg.requests_since(before)
    med = {s: statistics.median(w for w, _, _ in samples[s]) for s in STEPS}
    bars = {
        "unchanged push": 0.15 * med["first push"],
        "one layer changed": med["layer alone, cold"]
        + 0.15 * (med["first push"] - med["layer alone, cold"]),
        "build -o with hits": 0.40 * med["cold build -o"],
    }
    of = {"unchanged push": "first push", "one layer changed": "first push",
          "build -o with hits": "cold build -o"}
    for s in STEPS:
        cpu = statistics.median(c for _, c, _ in samples[s])
        rss = max(r for _, _, r in samples[s])
        ratio = f"{med[s] / med[of[s]]:.0%} of {of[s]}" if s in of else ""
        bar = f"{bars[s]:.3f}" if s in bars else ""
        reqs = describe(requests[s]) if "push" in s or "changed" in s or "alone" in s else ""
        results.append((label, tree_size(tree), s, med[s], cpu, rss, ratio, bar, reqs))


def main():
    ap = argparse.ArgumentParser()
    registry_args(ap)
    ap.add_argument("--sbom-none", action="store_true")
    args = ap.parse_args()
    results = on_registry(args, [], bench_tree)

    print(f"runs per figure: {args.runs} (median wall time; every step on an empty store)\n")
    print("| image | step | wall s | CPU s | peak RSS MiB | ratio | bar (wall s) | blob requests |")
    print("|---|---|---:|---:|---:|---|---:|---|")
    for label, size, step, wall, cpu, rss, ratio, bar, reqs in results:
        print(f"| {label} ({size / MB:.0f} MB) | {step} | {wall:.3f} | {cpu:.3f} | {rss:.0f} | "
              f"{ratio} | {bar} | {reqs} |")


if __name__ == "__main__":
    main()
