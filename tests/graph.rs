//! Build graphs: images built after their bases, independent work in
//! parallel within --jobs, incremental rebuilds seen through `--json`, and
//! concurrent processes sharing one store.

mod common;

use std::fs;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use common::digest::sha256_file;
use common::fixture::set_mtime;
use common::oci::parse_json;
use common::run::{assert_ok, run_with_store};
use common::Project;

/// Deterministic bytes that do not compress, so that a layer of them takes
/// long enough to be seen running beside another.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// base ← api, base ← worker: a shared base and two images on it, each
/// with a layer of its own.
fn shared_base(p: &Project, big: usize) {
    p.write("base/etc/motd", "shared base\n");
    p.write("api/bin/api", noise(1, big));
    p.write("api/etc/api.conf", "port = 8080\n");
    p.write("worker/bin/worker", noise(2, big));
    p.write(
        "gantry.toml",
        r#"
[image.base]
base = "scratch"
platform = "linux/amd64"
[[image.base.layer]]
name = "etc"
files = [{ src = "base/etc/", dst = "/etc/" }]

[image.api]
base = ":base"
[[image.api.layer]]
name = "bin"
files = [{ src = "api/bin/", dst = "/usr/local/bin/" }]
[[image.api.layer]]
name = "conf"
files = [{ src = "api/etc/", dst = "/etc/api/" }]

[image.worker]
base = ":base"
[[image.worker.layer]]
name = "bin"
files = [{ src = "worker/bin/", dst = "/usr/local/bin/" }]
"#,
    );
}

fn report(stdout: &str) -> Value {
    parse_json(stdout)
}

fn image<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no image {name} in {r}"))
}

/// `image/layer` → status, for every layer of every image and platform.
fn statuses(r: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for i in r["images"].as_array().unwrap() {
        for p in i["platforms"].as_array().unwrap() {
            for l in p["layers"].as_array().unwrap() {
                out.push((
                    format!(
                        "{}/{}",
                        i["name"].as_str().unwrap(),
                        l["name"].as_str().unwrap()
                    ),
                    l["status"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

fn rebuilt(r: &Value) -> Vec<String> {
    statuses(r)
        .into_iter()
        .filter(|(_, s)| s == "rebuilt")
        .map(|(n, _)| n)
        .collect()
}

fn interval(layer: &Value) -> (u64, u64) {
    (
        layer["started_ms"].as_u64().unwrap(),
        layer["finished_ms"].as_u64().unwrap(),
    )
}

fn layer<'a>(r: &'a Value, image_name: &str, layer_name: &str) -> &'a Value {
    image(r, image_name)["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == layer_name)
        .unwrap()
}

#[test]
fn shared_base_graph_assembles_bases_first_and_runs_independent_layers_in_parallel() {
    let p = Project::new();
    shared_base(&p, 24 << 20);
    let parallel = report(&p.ok(&["build", "--jobs", "2", "--json"]));
    let names: Vec<&str> = parallel["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["base", "api", "worker"]);
    assert_eq!(rebuilt(&parallel).len(), 4, "{parallel}");

    // Each image is assembled only once its base is.
    let base_done = image(&parallel, "base")["platforms"][0]["finished_ms"]
        .as_u64()
        .unwrap();
    for dependent in ["api", "worker"] {
        let started = image(&parallel, dependent)["platforms"][0]["started_ms"]
            .as_u64()
            .unwrap();
        assert!(
            started >= base_done,
            "{dependent} assembled before its base: {parallel}"
        );
    }
    // With two jobs the two large layers of independent images overlap.
    let (a0, a1) = interval(layer(&parallel, "api", "bin"));
    let (w0, w1) = interval(layer(&parallel, "worker", "bin"));
    assert!(
        a0 < w1 && w0 < a1,
        "api/bin {a0}..{a1} and worker/bin {w0}..{w1} did not overlap"
    );

    // With one job nothing overlaps, and the bytes are the same.
    let other_store = tempfile::tempdir().unwrap();
    let serial = report(&assert_ok(
        &run_with_store(&p, other_store.path(), &["build", "-j", "1", "--json"], &[]),
        "build -j 1",
    ));
    let mut spans: Vec<(u64, u64)> = serial["images"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            i["platforms"][0]["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(interval)
        })
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "layers overlapped with -j 1: {spans:?}");
    }
    for name in ["base", "api", "worker"] {
        assert_eq!(
            image(&serial, name)["digest"],
            image(&parallel, name)["digest"]
        );
    }
}

#[test]
fn a_cycle_of_three_bases_is_an_error_naming_it() {
    let p = Project::new();
    p.write(
        "gantry.toml",
        "[image.a]\nbase = \":b\"\n[image.b]\nbase = \":c\"\n[image.c]\nbase = \":a\"\n",
    );
    let err = p.fails(&["build"]);
    assert!(err.contains("cycle: a -> b -> c -> a"), "{err}");
    assert!(
        err.contains("gantry.toml:"),
        "the error names the file: {err}"
    );
}

#[test]
fn touching_inputs_rebuilds_nothing_and_a_content_change_rebuilds_exactly_that_layer() {
    let p = Project::new();
    shared_base(&p, 1 << 20);
    let first = report(&p.ok(&["build", "--json"]));
    assert_eq!(rebuilt(&first).len(), 4);

    // New mtimes, same bytes: every layer is reused, and so is every image.
    for f in [
        "base/etc/motd",
        "api/bin/api",
        "api/etc/api.conf",
        "worker/bin/worker",
    ] {
        set_mtime(&p.join(f), 1_500_000_000);
    }
    let touched = report(&p.ok(&["build", "--json"]));
    assert_eq!(rebuilt(&touched), Vec::<String>::new(), "{touched}");
    for name in ["base", "api", "worker"] {
        assert_eq!(
            image(&touched, name)["digest"],
            image(&first, name)["digest"]
        );
    }

    // One file of one layer of one image: that layer alone.
    p.write("api/etc/api.conf", "port = 9090\n");
    let changed = report(&p.ok(&["build", "--json"]));
    assert_eq!(rebuilt(&changed), ["api/conf"], "{changed}");
    assert_ne!(
        image(&changed, "api")["digest"],
        image(&first, "api")["digest"]
    );
    assert_eq!(
        image(&changed, "worker")["digest"],
        image(&first, "worker")["digest"]
    );

    // A change in the base: new manifests for its dependents, whose own
    // layers are reused.
    p.write("base/etc/motd", "a new base\n");
    let rebased = report(&p.ok(&["build", "--json"]));
    assert_eq!(rebuilt(&rebased), ["base/etc"], "{rebased}");
    for name in ["api", "worker"] {
        assert_ne!(
            image(&rebased, name)["digest"],
            image(&changed, name)["digest"]
        );
        assert_eq!(
            layer(&rebased, name, "bin")["digest"],
            layer(&changed, name, "bin")["digest"]
        );
    }
}

#[test]
fn json_report_lists_every_layer_with_its_digests_and_status() {
    let p = Project::new();
    shared_base(&p, 1024);
    let r = report(&p.ok(&["build", "api", "--json"]));
    let api = image(&r, "api");
    assert_eq!(
        api["media_type"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        api["tags"],
        serde_json::json!(["docker.io/library/api:latest"])
    );
    let plat = &api["platforms"][0];
    assert_eq!(plat["platform"], "linux/amd64");
    assert_eq!(plat["manifest_digest"], api["digest"]);
    for l in plat["layers"].as_array().unwrap() {
        for key in [
            "name",
            "digest",
            "diff_id",
            "size",
            "status",
            "started_ms",
            "finished_ms",
        ] {
            assert!(!l[key].is_null(), "{key} missing from {l}");
        }
    }
    // --json replaces the result lines; with a tarball on stdout it has no
    // place, and --report writes the same report to a file instead.
    let err = p.fails(&["build", "--json", "-o", "-"]);
    assert!(err.contains("--json") && err.contains("--report"), "{err}");
    let out = p.run(&["build", "api", "-o", "-", "--report", "report.json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = common::oci::read_json(&p.join("report.json"));
    assert_eq!(image(&written, "api")["digest"], api["digest"]);
}

#[test]
fn a_failing_layer_is_reported_by_image_and_leaves_no_output() {
    let p = Project::new();
    shared_base(&p, 1024);
    fs::remove_file(p.join("worker/bin/worker")).unwrap();
    fs::remove_dir(p.join("worker/bin")).unwrap();
    let err = p.fails(&["build", "-j", "4", "-o", "out/"]);
    assert!(err.contains(r#"image "worker", layer "bin""#), "{err}");
    assert!(
        err.contains("worker/bin"),
        "the error names the missing input: {err}"
    );
    assert!(!p.join("out").exists());
}

/// Every blob of a store or layout hashes to its name, and nothing is left
/// in the store's temporary directory.
fn assert_blobs_sound(dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    let mut n = 0;
    for e in fs::read_dir(&blobs).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(sha256_file(&path), name, "{} is corrupt", path.display());
        n += 1;
    }
    assert!(n > 0, "no blobs in {}", blobs.display());
}

#[test]
fn eight_concurrent_builds_of_overlapping_graphs_share_one_store_soundly() {
    let p = Project::new();
    shared_base(&p, 4 << 20);
    // Another chain on the same base, so the graphs overlap differently.
    let mut text = fs::read_to_string(p.join("gantry.toml")).unwrap();
    text.push_str(
        "\n[image.tools]\nbase = \":worker\"\n[[image.tools.layer]]\nfiles = [{ src = \"api/etc/\", dst = \"/tools/\" }]\n",
    );
    fs::write(p.join("gantry.toml"), text).unwrap();
    let targets: [&[&str]; 8] = [
        &[],
        &["api"],
        &["worker"],
        &["tools"],
        &["api", "tools"],
        &["base"],
        &["worker", "api"],
        &[],
    ];
    let children: Vec<_> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut c = p.cmd();
            c.arg("build").args(*t).args(["--json", "-j", "2", "-o"]);
            c.arg(format!("out{i}/"));
            c.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let reports: Vec<Value> = children
        .into_iter()
        .map(|c| {
            report(&assert_ok(
                &c.wait_with_output().unwrap(),
                "concurrent build",
            ))
        })
        .collect();

    // Every process agrees on every image it built.
    let mut digests = std::collections::BTreeMap::new();
    for r in &reports {
        for i in r["images"].as_array().unwrap() {
            let d = digests
                .entry(i["name"].as_str().unwrap().to_string())
                .or_insert_with(|| i["digest"].clone());
            assert_eq!(*d, i["digest"], "processes disagree on {}", i["name"]);
        }
    }
    assert_eq!(digests.len(), 4);
    for i in 0..8 {
        assert_blobs_sound(&p.join(&format!("out{i}")));
    }
    assert_blobs_sound(p.store.path());
    let store = gantry::store::Store::open(p.store.path()).unwrap();
    assert_eq!(store.verify().unwrap(), Vec::<String>::new());
    assert_eq!(
        common::tree(&p.store.path().join("tmp")),
        Vec::<String>::new(),
        "temporary blobs left in the store"
    );
    // And the store serves a later build without rebuilding anything.
    let again = report(&p.ok(&["build", "--json"]));
    assert_eq!(rebuilt(&again), Vec::<String>::new());
}

#[test]
fn concurrent_builds_into_one_output_directory_all_succeed_and_leave_one_layout() {
    let p = Project::new();
    shared_base(&p, 1 << 20);
    let built = p.ok(&["build"]);
    let children: Vec<_> = (0..16)
        .map(|_| {
            let mut c = p.cmd();
            c.args(["build", "-o", "same/"]);
            c.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        assert_ok(&c.wait_with_output().unwrap(), "build into a shared output");
    }
    assert_blobs_sound(&p.join("same"));
    let leftovers: Vec<String> = fs::read_dir(p.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".gantry-"))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new());
    // One layout, naming each image once, with each manifest in it.
    let index = common::oci::read_json(&p.join("same/index.json"));
    let mut named: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect();
    named.sort();
    let mut want: Vec<String> = ["base", "api", "worker"]
        .iter()
        .map(|n| common::digest_of(&built, n))
        .collect();
    want.sort();
    assert_eq!(named, want);
    for d in &named {
        assert!(common::oci::blob_path(&p.join("same"), d).is_file(), "{d}");
    }
}
