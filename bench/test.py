#!/usr/bin/env python3
"""Times `gantry test` against `container-structure-test --driver tar` on the
same docker tarball and the same config, in the same run: the 537 MB tree of
bench/build.py as one layer, and a config of 20 file existence tests and a
metadata test. Reports medians of several rounds and the ratio to the tar
driver.

    bench/test.py [--runs 3] [--work /tmp/gantry-bench] [--gantry target/release/gantry]

`gantry test` is timed twice per round: with an empty store (the layer is
indexed from the tarball, as on a fresh CI machine) and again with that
store (the index is kept by diff_id, so nothing is read but the config).
"""

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import MB, run, standard_trees, tree_size  # noqa: E402


def file_tests(tree, n):
    """`n` file existence tests on files of `tree`, spread over it."""
    files = sorted(p for p in tree.rglob("*") if p.is_file() and not p.is_symlink())
    step = max(1, len(files) // n)
    tests = []
    for i, f in enumerate(files[::step][:n]):
        rel = f.relative_to(tree)
        tests.append(
            # No owner checks: the tar driver reads owners from the host
            # after unpacking, so it would fail them (docs/test.md).
            f"  - name: file {i}\n    path: /data/{rel}\n    shouldExist: true\n"
        )
    return "".join(tests)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default="/tmp/gantry-bench")
    ap.add_argument("--gantry", default=str(Path(__file__).resolve().parent.parent / "target/release/gantry"))
    args = ap.parse_args()
    for tool in ["container-structure-test", args.gantry]:
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (scripts/setup installs container-structure-test)")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    _, tree = standard_trees(work)
    proj = work / "test-bench"
    shutil.rmtree(proj, ignore_errors=True)
    proj.mkdir()
    (proj / "gantry.toml").write_text(
        '[image.bench]\nbase = "scratch"\nplatform = "linux/amd64"\ncmd = ["/data"]\n'
        f'[[image.bench.layer]]\nname = "data"\nfiles = [{{ src = "{tree}", dst = "/data" }}]\n'
    )
    config = proj / "tests.yaml"
    config.write_text(
        'schemaVersion: 2.0.0\nmetadataTest:\n  cmd: ["/data"]\n'
        "fileExistenceTests:\n" + file_tests(tree, 20)
    )
    tarball = proj / "bench.tar"
    env = dict(os.environ, GANTRY_STORE=str(proj / "build-store"))
    run([args.gantry, "--progress=none", "build", "-f", str(proj / "gantry.toml"),
         "-o", str(tarball)], env=env)

    cst = ["container-structure-test", "test", "--driver", "tar",
           "--image", str(tarball), "--config", str(config)]
    store = proj / "test-store"
    gantry = [args.gantry, "--progress=none", "test", "--image", str(tarball),
              "--config", str(config)]
    genv = dict(os.environ, GANTRY_STORE=str(store))
    samples = {"container-structure-test --driver tar": [],
               "gantry test (empty store)": [],
               "gantry test (index in the store)": []}
    for _ in range(args.runs):
        samples["container-structure-test --driver tar"].append(run(cst))
        shutil.rmtree(store, ignore_errors=True)
        samples["gantry test (empty store)"].append(run(gantry, env=genv))
        samples["gantry test (index in the store)"].append(run(gantry, env=genv))
    base = statistics.median(w for w, _, _ in samples["container-structure-test --driver tar"])
    print(f"{tree_size(tree) / MB:.0f} MB in one layer, 20 file tests and a metadata test; "
          f"{args.runs} rounds, medians\n")
    print("| tool | wall (s) | CPU (s) | peak RSS (MiB) | share of the tar driver's wall time |")
    print("|---|---|---|---|---|")
    for name, s in samples.items():
        wall = statistics.median(w for w, _, _ in s)
        cpu = statistics.median(c for _, c, _ in s)
        rss = max(r for _, _, r in s)
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {100 * wall / base:.1f} % |")


if __name__ == "__main__":
    main()
