//! Time in stamped and unstamped builds: `created` is the epoch or
//! SOURCE_DATE_EPOCH unless a stamped build without SOURCE_DATE_EPOCH reads
//! the clock, and no layer mtime ever follows the clock.

mod common;

use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use common::git::ok;
use common::inspect::{inspect_json, labels};
use common::oci::{blob_path, layer_digests, read_json, uncompress};
use common::{digest_of, Project};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Seconds since 1970 of `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339_secs(s: &str) -> u64 {
    let n = |r: std::ops::Range<usize>| -> i64 { s[r].parse().unwrap_or_else(|_| panic!("{s}")) };
    assert!(s.len() == 20 && s.ends_with('Z'), "not a UTC second: {s}");
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    (days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)) as u64
}

/// Every (path, mtime) of every layer of the image an OCI layout holds.
fn layer_mtimes(layout: &Path, manifest_digest: &str) -> Vec<(String, u64)> {
    let manifest = read_json(&blob_path(layout, manifest_digest));
    let mut out = Vec::new();
    for l in manifest["layers"].as_array().unwrap() {
        let bytes = fs::read(blob_path(layout, l["digest"].as_str().unwrap())).unwrap();
        let tar = uncompress(l["mediaType"].as_str().unwrap(), &bytes);
        let mut ar = tar::Archive::new(&tar[..]);
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            out.push((path, e.header().mtime().unwrap()));
        }
    }
    assert!(!out.is_empty(), "no layer entries");
    out
}

const TIMES: &str = r#"[image.explicit]
base = "scratch"
platform = "linux/amd64"
created = "{{BUILD_TIMESTAMP}}"
labels = { built = "{{BUILD_TIMESTAMP}}" }
compression = "none"

[[image.explicit.layer]]
files = [{ src = "files/", dst = "/opt/files/" }]

[image.default]
base = "scratch"
platform = "linux/amd64"
compression = "none"

[[image.default.layer]]
files = [{ src = "files/", dst = "/opt/files/" }]
"#;

fn times_project() -> Project {
    let p = Project::new();
    p.write("gantry.toml", TIMES);
    p.write("files/one.txt", "one\n");
    p.write("files/sub/two.txt", "two\n");
    p
}

fn created_of(p: &Project, layout: &str, image: &str) -> String {
    inspect_json(p, &[layout, "--image", image])["created"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn unstamped_created_is_the_epoch_or_source_date_epoch() {
    let p = times_project();
    ok(&p, &["build", "-o", "zero/"], &[]);
    ok(
        &p,
        &["build", "-o", "sde/"],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    for image in ["explicit", "default"] {
        assert_eq!(created_of(&p, "zero/", image), "1970-01-01T00:00:00Z");
        assert_eq!(created_of(&p, "sde/", image), "2023-11-14T22:13:20Z");
    }
}

#[test]
fn stamped_created_follows_source_date_epoch_else_the_clock() {
    let p = times_project();
    ok(
        &p,
        &["build", "--stamp", "-o", "sde/"],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    for image in ["explicit", "default"] {
        assert_eq!(created_of(&p, "sde/", image), "2023-11-14T22:13:20Z");
    }

    let before = now();
    ok(&p, &["build", "--stamp", "-o", "clock/"], &[]);
    let after = now();
    for image in ["explicit", "default"] {
        let created = created_of(&p, "clock/", image);
        let secs = rfc3339_secs(&created);
        assert!(
            (before..=after).contains(&secs),
            "{image}: created {created} is not the time of the build"
        );
    }
    let built: u64 = labels(&inspect_json(&p, &["clock/", "--image", "explicit"]))["built"]
        .parse()
        .unwrap();
    assert!((before..=after).contains(&built));
}

#[test]
fn stamped_builds_keep_layer_mtimes_at_the_epoch() {
    let p = times_project();
    let out = ok(&p, &["build", "--stamp", "-o", "clock/"], &[]);
    for image in ["explicit", "default"] {
        for (path, mtime) in layer_mtimes(&p.join("clock"), &digest_of(&out, image)) {
            assert_eq!(mtime, 0, "{image}: {path}");
        }
    }

    let sde = [("SOURCE_DATE_EPOCH", "1700000000")];
    let stamped = ok(&p, &["build", "--stamp", "-o", "stamped-sde/"], &sde);
    let plain = ok(&p, &["build", "-o", "plain-sde/"], &sde);
    for (path, mtime) in layer_mtimes(&p.join("stamped-sde"), &digest_of(&stamped, "explicit")) {
        assert_eq!(mtime, 1_700_000_000, "{path}");
    }
    assert_eq!(
        layer_digests(&inspect_json(&p, &["stamped-sde/", "--image", "explicit"])),
        layer_digests(&inspect_json(&p, &["plain-sde/", "--image", "explicit"]))
    );
    assert_ne!(
        digest_of(&stamped, "explicit"),
        digest_of(&plain, "explicit")
    );
}
