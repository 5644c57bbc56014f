//! `gantry gc`: blobs and records no build or push used for `--keep-days`
//! go, with what killed runs left; what a running build may use stays.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use common::fixture::set_mtime;
use common::oci::parse_json;
use common::push::{app_project, noise};
use common::Project;
use gantry::store::Store;

fn files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_path_buf())
        .collect()
}

fn blobs(p: &Project) -> Vec<PathBuf> {
    files(&p.store.path().join("blobs"))
}

fn records(p: &Project) -> Vec<PathBuf> {
    files(&p.store.path().join("meta"))
}

/// Dates every blob and record as last used 40 days ago.
fn age_store(p: &Project) {
    let then = SystemTime::now() - Duration::from_secs(40 * 86_400);
    let secs = then
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for f in blobs(p).into_iter().chain(records(p)) {
        set_mtime(&f, secs);
    }
}

fn gc_json(p: &Project, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["gc", "--json"];
    all.extend_from_slice(args);
    parse_json(&p.ok(&all))
}

#[test]
fn gc_prunes_blobs_and_records_unused_for_keep_days_and_says_what_it_freed() {
    let p = app_project(&["app:1"]);
    p.ok(&["build"]);
    let (n_blobs, n_records) = (blobs(&p).len(), records(&p).len());
    assert!(n_blobs >= 4 && n_records >= 3);
    let fresh = gc_json(&p, &[]);
    assert_eq!(fresh["blobs"]["count"], 0, "{fresh:#}");
    assert_eq!(blobs(&p).len(), n_blobs);

    age_store(&p);
    let bytes: u64 = blobs(&p)
        .iter()
        .map(|b| fs::metadata(b).unwrap().len())
        .sum();
    let dry = gc_json(&p, &["--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["blobs"]["count"], n_blobs as u64, "{dry:#}");
    assert_eq!(dry["blobs"]["bytes"], bytes);
    assert_eq!(dry["records"]["count"], n_records as u64);
    assert_eq!(blobs(&p).len(), n_blobs, "a dry run removes nothing");

    let plain = p.ok(&["gc"]);
    assert!(
        plain.starts_with("freed ") && plain.contains(&format!("{n_blobs} blobs")),
        "{plain}"
    );
    assert_eq!(blobs(&p), Vec::<PathBuf>::new());
    assert_eq!(records(&p), Vec::<PathBuf>::new());
    // An emptied store builds again.
    p.ok(&["build"]);
}

#[test]
fn what_a_build_uses_is_marked_used_and_kept() {
    let p = app_project(&["app:1"]);
    let first = p.ok(&["build"]);
    age_store(&p);
    // A no-op build reads the layer records and finds their blobs.
    assert_eq!(p.ok(&["build"]), first);
    let r = gc_json(&p, &[]);
    assert_eq!(r["blobs"]["count"], 0, "{r:#}");
    let out = p.run(&["build"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.lines()
            .filter(|l| l.contains(": layer "))
            .all(|l| l.contains(" reused: ")),
        "{err}"
    );
}

#[test]
fn gc_reclaims_temporaries_whose_writer_is_gone_and_only_those() {
    let p = app_project(&["app:1"]);
    p.ok(&["build"]);
    let store = p.store.path();
    // No such process: pids stop at 2^22.
    let dead = store.join("tmp/blob-4194399-abcdef");
    fs::write(&dead, vec![7u8; 5000]).unwrap();
    let dead_record = store.join("meta/layers-by-content/.gantry-tmp-4194399-x");
    fs::write(&dead_record, b"{").unwrap();
    // This test's process runs: its temporary may be one being written.
    let live = store.join(format!("tmp/blob-{}-abcdef", std::process::id()));
    fs::write(&live, b"live").unwrap();
    let r = gc_json(&p, &[]);
    assert_eq!(r["temporaries"]["count"], 2, "{r:#}");
    assert_eq!(r["temporaries"]["bytes"], 5001);
    assert!(!dead.exists() && !dead_record.exists());
    assert!(live.exists());
}

#[test]
fn gc_beside_a_running_build_removes_nothing_it_uses() {
    let p = Project::new();
    p.write(
        "gantry.toml",
        "[image.big]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n\n\
         [[image.big.layer]]\nname = \"small\"\nfiles = [{ src = \"small/\", dst = \"/small/\" }]\n\n\
         [[image.big.layer]]\nname = \"data\"\ncompression_level = 9\n\
         files = [{ src = \"data/\", dst = \"/data/\" }]\n",
    );
    p.write("small/a.txt", noise(300_000, 1));
    for i in 0..4 {
        p.write(&format!("data/{i}.bin"), noise(24 << 20, i));
    }
    p.ok(&["build"]);
    // The big layer changes, the small one is reused from the store.
    p.write("data/0.bin", noise(24 << 20, 99));
    let out = p.join("big.tar");
    let build = p
        .cmd()
        .args(["build", "-o", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tmp = p.store.path().join("tmp");
    let start = Instant::now();
    let temp = loop {
        let found = fs::read_dir(&tmp).unwrap().flatten().find(|e| {
            e.file_name().to_string_lossy().starts_with("blob-")
                && e.metadata().is_ok_and(|m| m.len() > 0)
        });
        if let Some(e) = found {
            break e.path();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no layer written"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    let r = gc_json(&p, &["--keep-days", "0"]);
    assert_eq!(r["running"], 1, "{r:#}");
    assert_eq!(r["blobs"]["count"], 0, "{r:#}");
    assert!(temp.exists(), "the running build's temporary was removed");
    let done = build.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let m = common::tarball::members(&out);
    for (name, bytes) in &m {
        if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            assert_eq!(gantry::digest::Digest::of(bytes).hex(), hex);
        }
    }
    let store = Store::open(p.store.path()).unwrap();
    assert_eq!(store.verify().unwrap(), Vec::<String>::new());
    drop(store);
    // Once the build is over, nothing is protected any more.
    let after = gc_json(&p, &["--keep-days", "0"]);
    assert_eq!(after["running"], 0);
    assert!(after["blobs"]["count"].as_u64().unwrap() >= 4, "{after:#}");
    assert_eq!(blobs(&p), Vec::<PathBuf>::new());
}
