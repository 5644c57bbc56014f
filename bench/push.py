#!/usr/bin/env python3
"""Times `gantry push` against `skopeo copy oci:… docker://…` on the same
image and the same loopback reference registry, in the same run: cold (an
empty registry) and warm (everything already there). Reports medians, ratios
and the requests each tool made (from the registry's access log).

    bench/push.py [--runs 3] [--work /tmp/gantry-bench] [--gantry target/release/gantry]

The images are single-layer images of the two trees bench/build.py makes
(~100 MB of mixed files, ~500 MB of large binaries), built once by gantry
into its store and into an OCI layout that skopeo reads; both tools push the
same bytes.
"""

import argparse
import collections
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import MB, run, standard_trees, tree_size  # noqa: E402

# One "response completed" line per request in distribution's log.
REQUEST = re.compile(r'msg="response completed[^"]*".*?http\.request\.method=(\w+)'
                     r'.*?http\.request\.uri="?([^" ]+)')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """The reference registry on loopback, its storage emptied on demand."""

    def __init__(self, work):
        self.dir = Path(tempfile.mkdtemp(dir=work))
        self.port = free_port()
        self.log = self.dir / "access.log"
        self.proc = None

    def start(self, fresh):
        self.stop()
        if fresh:
            shutil.rmtree(self.dir / "data", ignore_errors=True)
        cfg = self.dir / "config.yml"
        cfg.write_text(
            f"version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {self.dir / 'data'}\nhttp:\n  addr: 127.0.0.1:{self.port}\n"
        )
        self.proc = subprocess.Popen(["docker-registry", "serve", str(cfg)],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("docker-registry did not start")
                time.sleep(0.05)

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()
            self.proc = None

    def requests_since(self, offset):
        text = self.log.read_bytes()[offset:].decode(errors="replace")
        counts = collections.Counter()
        for method, path in REQUEST.findall(text):
            if path == "/v2/":
                continue  # the ping, once per process
            kind = "manifest" if "/manifests/" in path else "blob"
            counts[f"{method} {kind}"] += 1
        return counts

    def log_size(self):
        return self.log.stat().st_size if self.log.exists() else 0


def describe(counts):
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"


def bench_image(label, tree, args, reg, results):
    size = tree_size(tree)
    proj = Path(args.work) / f"push-{label}"
    shutil.rmtree(proj, ignore_errors=True)
    proj.mkdir(parents=True)
    build_file = proj / "gantry.toml"
    build_file.write_text(
        '[image.bench]\nbase = "scratch"\nplatform = "linux/amd64"\n'
        f'[[image.bench.layer]]\nname = "data"\nfiles = [{{ src = "{tree}", dst = "/data" }}]\n'
    )
    store = proj / "store"
    env = dict(os.environ, GANTRY_STORE=str(store))
    layout = proj / "layout"
    subprocess.check_call([args.gantry, "--progress=none", "build", "-f", str(build_file),
                           "--format", "oci", "-o", f"{layout}/"], env=env,
                          stdout=subprocess.DEVNULL)

    def gantry(ref):
        return [args.gantry, "--progress=none", "push", "-f", str(build_file), "bench", "-t", ref]

    def skopeo(ref):
        return ["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                f"oci:{layout}:latest", f"docker://{ref}"]

    tools = {"skopeo copy": skopeo, "gantry push": gantry}
    samples = {(t, phase): [] for t in tools for phase in ("cold", "warm")}
    requests = {}
    for _ in range(args.runs):
        # Each round runs each tool in turn on an empty registry, then again
        # on the one it filled.
        for name, cmd in tools.items():
            reg.start(fresh=True)
            ref = f"127.0.0.1:{reg.port}/bench/{label}:1"
            for phase in ("cold", "warm"):
                before = reg.log_size()
                samples[(name, phase)].append(run(cmd(ref), env=env))
                time.sleep(0.2)  # let the access log catch up
                requests[(name, phase)] = reg.requests_since(before)
    for phase in ("cold", "warm"):
        base = statistics.median(w for w, _, _ in samples[("skopeo copy", phase)])
        for name in tools:
            s = samples[(name, phase)]
            wall = statistics.median(w for w, _, _ in s)
            cpu = statistics.median(c for _, c, _ in s)
            rss = max(r for _, _, r in s)
            results.append((label, size, phase, name, wall, cpu, base / wall, rss,
                            describe(requests[(name, phase)])))


def registry_args(ap):
    """The options every registry benchmark takes."""
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default="/tmp/gantry-bench")
    ap.add_argument("--gantry", default=str(Path(__file__).resolve().parent.parent / "target/release/gantry"))


def on_registry(args, tools, bench):
    """Checks that `tools` are there, makes both standard trees and a
    reference registry on loopback, and calls bench(label, tree, args, reg,
    results) per tree; returns the results."""
    os.makedirs(args.work, exist_ok=True)
    for tool in ["docker-registry", *tools, args.gantry]:
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (cargo build --release; scripts/setup installs the peers)")
    work = Path(args.work)
    mixed, large = standard_trees(work)
    reg = Registry(work)
    results = []
    try:
        bench("mixed", mixed, args, reg, results)
        bench("large", large, args, reg, results)
    finally:
        reg.stop()
        shutil.rmtree(reg.dir, ignore_errors=True)
    return results


def main():
    ap = argparse.ArgumentParser()
    registry_args(ap)
    args = ap.parse_args()
    results = on_registry(args, ["skopeo"], bench_image)

    print(f"runs per figure: {args.runs} (median wall time; peak RSS is the max over runs)\n")
    print("| image | registry | tool | wall s | CPU s | speed vs skopeo | peak RSS MiB | requests |")
    print("|---|---|---|---:|---:|---:|---:|---|")
    for label, size, phase, name, wall, cpu, ratio, rss, reqs in results:
        print(f"| {label} ({size / MB:.0f} MB) | {phase} | {name} | {wall:.3f} | {cpu:.3f} | "
              f"{ratio:.2f}x | {rss:.0f} | {reqs} |")


if __name__ == "__main__":
    main()
