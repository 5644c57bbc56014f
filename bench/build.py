#!/usr/bin/env python3
"""Times `gantry build` of a single-layer image against its peers on the same
inputs in the same run: `tar --sort=name | gzip -6 -n | sha256sum` and
`umoci insert`. Reports medians of several runs, MB/s, ratios, compressed
sizes and peak RSS as a Markdown table.

    bench/build.py [--runs 5] [--work /tmp/gantry-bench] [--gantry target/release/gantry]
                   [--levels 3,5,6] [--baseline path/to/other/gantry] [--sbom] [--gantry-only]

`--levels` adds a cold `gantry build` at each of these gzip levels to every
round, for the level table of docs/performance.md. `--baseline` adds a cold
build by another gantry binary (say, the last release) to every round, so a
change is measured against what it replaces under the same load. `--sbom`
adds a cold build and a no-op rebuild with `--sbom none` to every round (the
plain rows attach the SBOM and provenance, as gantry does by default), the
two orders alternating from round to round; `--gantry-only` leaves out the
peers' rows, for a quicker run of the gantry figures alone.

The input trees are copied from files every machine of this project has
(/usr/share, /usr/lib and the Rust toolchain), chosen deterministically.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MB = 1_000_000


def run(cmd, **kw):
    """Runs a command, returning (wall s, CPU s, peak RSS MiB)."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, **kw)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    if status != 0:
        sys.exit(f"failed ({status}): {cmd}")
    # The rusage of a waited-for child covers its own waited-for children
    # too, so a shell pipeline is measured whole.
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def pick_files(roots, want_bytes, keep):
    out, total, seen_sizes = [], 0, set()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                p = Path(dirpath) / name
                if p.is_symlink() or not p.is_file():
                    continue
                size = p.stat().st_size
                if not keep(size) or size in seen_sizes or not os.access(p, os.R_OK):
                    continue
                seen_sizes.add(size)
                out.append((root, p))
                total += size
                if total >= want_bytes:
                    return out, total
    return out, total


def mixed_files(want_bytes=100 * MB):
    """Small files (under 4 MB) from /usr/share and /usr/lib: text,
    documentation, small libraries."""
    return pick_files(["/usr/share", "/usr/lib/x86_64-linux-gnu"], want_bytes,
                      lambda s: s < 4 * MB)[0]


def large_files(want_bytes):
    """Large binaries (8 MB and over) from /usr/lib and the Rust toolchain."""
    toolchains = sorted(str(p) for p in Path.home().glob(".rustup/toolchains/*/lib"))
    return pick_files(["/usr/lib"] + toolchains, want_bytes, lambda s: s >= 8 * MB)[0]


def standard_trees(work):
    """The ~100 MB mixed tree and the ~500 MB tree of large binaries."""
    make_tree(work / "mixed", mixed_files())
    make_tree(work / "large", large_files(500 * MB))
    return work / "mixed", work / "large"


def make_tree(dest, picks):
    if dest.exists():
        return
    tmp = dest.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for root, p in picks:
        rel = Path(Path(root).name) / p.relative_to(root)
        target = tmp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, target)
        shutil.copymode(p, target)
    tmp.rename(dest)


def tree_size(d):
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file() and not f.is_symlink())


def umoci_insert(tree, work):
    lay = Path(tempfile.mkdtemp(dir=work)) / "layout"
    subprocess.check_call(["umoci", "init", "--layout", str(lay)])
    subprocess.check_call(["umoci", "new", "--image", f"{lay}:t"])
    sample = run(["umoci", "insert", "--rootless", "--image", f"{lay}:t", str(tree), "/data"])
    idx = json.loads((lay / "index.json").read_text())
    mdig = idx["manifests"][0]["digest"].split(":")[1]
    man = json.loads((lay / "blobs/sha256" / mdig).read_text())
    size = man["layers"][-1]["size"]
    shutil.rmtree(lay.parent)
    return sample, size


def gantry_build(build_file, gantry, work, rebuild=True, extra=()):
    store = Path(tempfile.mkdtemp(dir=work))
    env = dict(os.environ, GANTRY_STORE=str(store))
    cmd = [gantry, "--progress=none", "build", "-f", str(build_file), *extra]
    cold = run(cmd, env=env)
    warm = run(cmd, env=env) if rebuild else None
    metas = list((store / "meta/layers-by-content").glob("*.json"))
    size = json.loads(metas[0].read_text())["desc"]["size"]
    shutil.rmtree(store)
    return cold, warm, size


def bench_tree(label, tree, args, results):
    size = tree_size(tree)
    pipeline = (
        f"tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - -C {tree} . "
        f"| gzip -6 -n | sha256sum"
    )
    gz_size = 0 if args.gantry_only else int(subprocess.check_output(
        ["sh", "-c", pipeline.replace("| sha256sum", "| wc -c")]))
    proj = Path(args.work) / f"proj-{label}"
    proj.mkdir(exist_ok=True)
    def write_build_file(name, level=None):
        build_file = proj / name
        extra = "" if level is None else f"compression_level = {level}\n"
        build_file.write_text(
            '[image.bench]\nbase = "scratch"\nplatform = "linux/amd64"\n'
            f'[[image.bench.layer]]\nname = "data"\n{extra}'
            f'files = [{{ src = "{tree}", dst = "/data" }}]\n'
        )
        return build_file

    build_file = write_build_file("gantry.toml")
    level_files = {f"gantry build (level {lv})": write_build_file(f"level-{lv}.toml", lv)
                   for lv in args.levels}
    names = ["tar \\| gzip -6 -n", "umoci insert", "gantry build", "gantry build (no-op rebuild)"]
    names += list(level_files)
    if args.baseline:
        names.append("gantry build (baseline)")
    no_sbom = ["gantry build (--sbom none)", "gantry build (--sbom none, no-op rebuild)"]
    if args.sbom:
        names += no_sbom
    if args.gantry_only:
        names = names[2:]
    samples = {n: [] for n in names}
    sizes = {"tar \\| gzip -6 -n": gz_size}
    # Each round runs every tool once, in turn, so that load from other work
    # on a shared machine falls on all of them alike.
    plain = ("gantry build", "gantry build (no-op rebuild)", ())
    without = (*no_sbom, ("--sbom", "none"))
    for round_ in range(args.runs):
        if not args.gantry_only:
            samples["tar \\| gzip -6 -n"].append(run(["sh", "-c", pipeline]))
            s, sizes["umoci insert"] = umoci_insert(tree, args.work)
            samples["umoci insert"].append(s)
            # umoci insert changes the ctime of the files it reads. A file
            # changed in the last two seconds is "racily clean": gantry
            # hashes it again on the next build by design, which is not the
            # no-op rebuild measured here.
            time.sleep(2.1)
        pairs = [plain, without] if args.sbom else [plain]
        if round_ % 2:
            pairs.reverse()
        for cold_name, warm_name, extra in pairs:
            cold, warm, sizes[cold_name] = gantry_build(build_file, args.gantry, args.work,
                                                        extra=extra)
            samples[cold_name].append(cold)
            samples[warm_name].append(warm)
            sizes[warm_name] = sizes[cold_name]
        for name, path in level_files.items():
            cold, _, sizes[name] = gantry_build(path, args.gantry, args.work, rebuild=False)
            samples[name].append(cold)
        if args.baseline:
            name = "gantry build (baseline)"
            cold, _, sizes[name] = gantry_build(build_file, args.baseline, args.work, rebuild=False)
            samples[name].append(cold)
    umoci = samples.get("umoci insert")
    base = statistics.median(w for w, _, _ in umoci) if umoci else float("nan")
    for name in names:
        wall = statistics.median(w for w, _, _ in samples[name])
        cpu = statistics.median(c for _, c, _ in samples[name])
        rss = max(r for _, _, r in samples[name])
        results.append((label, size, name, wall, cpu, size / MB / wall, base / wall, sizes[name], rss))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--work", default="/tmp/gantry-bench")
    ap.add_argument("--levels", type=lambda s: [int(v) for v in s.split(",") if v], default=[],
                    help="gzip levels to time besides the default, e.g. 3,5,6")
    ap.add_argument("--baseline", help="another gantry binary to time in the same rounds")
    ap.add_argument("--sbom", action="store_true",
                    help="also time builds with --sbom none, in the same rounds")
    ap.add_argument("--gantry-only", action="store_true", help="leave out tar | gzip and umoci")
    ap.add_argument("--gantry", default=str(Path(__file__).resolve().parent.parent / "target/release/gantry"))
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    peers = [] if args.gantry_only else ["umoci", "tar", "gzip"]
    for tool in peers + [args.gantry] + ([args.baseline] if args.baseline else []):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (build gantry with cargo build --release; scripts/setup installs umoci)")

    mixed, large = standard_trees(Path(args.work))
    results = []
    bench_tree("mixed", mixed, args, results)
    bench_tree("large", large, args, results)

    print(f"runs per figure: {args.runs} (median wall time; peak RSS is the max over runs)\n")
    print("| input | tool | wall s | CPU s | MB/s | speed vs umoci | compressed MB | peak RSS MiB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for label, size, name, wall, cpu, mbps, ratio, csize, rss in results:
        # A rebuild that reads nothing takes a few milliseconds: its speed is noise.
        speed = f"{mbps:.0f} | {ratio:.2f}x" if wall >= 0.05 else "— | —"
        print(f"| {label} ({size / MB:.0f} MB) | {name} | {wall:.2f} | {cpu:.2f} | {speed} | "
              f"{csize / MB:.1f} | {rss:.0f} |")
    if args.sbom:
        print()
        walls = {(label, name): wall for label, _, name, wall, *_ in results}
        for label in ["mixed", "large"]:
            for kind, with_, without in [
                ("cold build", "gantry build", "gantry build (--sbom none)"),
                ("no-op rebuild", "gantry build (no-op rebuild)",
                 "gantry build (--sbom none, no-op rebuild)"),
            ]:
                a, b = walls[(label, with_)], walls[(label, without)]
                print(f"{label}: {kind} with the SBOM {a:.3f} s, without {b:.3f} s: "
                      f"{(a / b - 1) * 100:+.1f} %")


if __name__ == "__main__":
    main()
