//! Every image's SBOM and provenance, checked by peers: the SPDX project's
//! validator (`pyspdxtools`) on every SBOM, `umoci unpack` and `sha256sum`
//! on its file checksums, skopeo reading them back from the reference
//! registry through the referrers fallback tag, and two checkouts with two
//! stores giving the same bytes.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use common::docker_registry::{DockerRegistry, Options, BIN};
use common::host::{host_platform, is_root};
use common::{busybox, require, sh, Project};

const SPDX: &str = "application/spdx+json";
const IN_TOTO: &str = "application/vnd.in-toto+json";

/// A dpkg status database of two installed packages, as a Debian base has.
const STATUS: &str = "Package: busybox-static\nStatus: install ok installed\n\
Architecture: amd64\nVersion: 1:1.36.1-9\nSource: busybox\n\n\
Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n";

/// A scratch image, a busybox base with a package database and an image
/// on it, and a two-platform image.
const BUILD: &str = r#"
[image.plain]
base = "scratch"
platform = "linux/amd64"
tags = ["REGISTRY/sbom/plain:plain"]

[[image.plain.layer]]
name = "app"
files = [{ src = "app/", dst = "/app/" }]

[image.base]
base = "scratch"
platform = "PLATFORM"
tags = ["REGISTRY/sbom/base:base"]

[[image.base.layer]]
name = "root"
files = [
  { src = "busybox", dst = "/bin/busybox" },
  { symlink = "/bin/sh", target = "busybox" },
  { src = "os-release", dst = "/etc/os-release" },
  { src = "status", dst = "/var/lib/dpkg/status" },
]

[image.web]
base = ":base"
tags = ["REGISTRY/sbom/web:web"]

[[image.web.layer]]
name = "site"
files = [{ src = "app/", dst = "/srv/site/" }]

[image.multi]
base = "scratch"
platforms = ["linux/amd64", "linux/arm64"]
tags = ["REGISTRY/sbom/multi:multi"]

[[image.multi.layer]]
name = "app"
files = [{ src = "app/", dst = "/app/" }]
"#;

fn project(registry: &str) -> Option<Project> {
    let busybox = busybox()?;
    let p = Project::new();
    fs::copy(&busybox, p.join("busybox")).unwrap();
    p.write("os-release", "ID=debian\nVERSION_ID=12\n");
    p.write("status", STATUS);
    p.write("app/index.html", "<p>hello</p>\n");
    p.write("app/bin/run", "#!/bin/sh\necho run\n");
    p.write("app/empty", "");
    p.write(
        "gantry.toml",
        BUILD
            .replace("PLATFORM", host_platform())
            .replace("REGISTRY", registry),
    );
    Some(p)
}

/// Every blob of the layout at `dir` that is a document of `kind`, by
/// file name (its digest's hex).
fn documents(dir: &Path, kind: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for m in manifests_with_subject(dir) {
        if m["artifactType"] == kind {
            let digest = m["layers"][0]["digest"].as_str().unwrap();
            let hex = digest.strip_prefix("sha256:").unwrap().to_string();
            let bytes = fs::read(dir.join("blobs/sha256").join(&hex)).unwrap();
            out.push((hex, bytes));
        }
    }
    out.sort();
    out
}

fn manifests_with_subject(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let bytes = fs::read(e.unwrap().path()).unwrap();
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            // An artifact manifest; an in-toto statement's `subject` is a list.
            if v["subject"]["digest"].is_string() {
                out.push(v);
            }
        }
    }
    out
}

fn validate(p: &Project, name: &str, sbom: &[u8]) {
    let path = p.join(&format!("{name}.spdx.json"));
    fs::write(&path, sbom).unwrap();
    let out = Command::new("pyspdxtools")
        .arg("-i")
        .arg(&path)
        .output()
        .expect("run pyspdxtools");
    assert!(
        out.status.success(),
        "pyspdxtools refused {name}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sbom_named(dir: &Path, name: &str) -> Value {
    documents(dir, SPDX)
        .into_iter()
        .map(|(_, b)| serde_json::from_slice::<Value>(&b).unwrap())
        .find(|v| v["name"].as_str().is_some_and(|n| n.ends_with(name)))
        .unwrap_or_else(|| panic!("no SBOM named {name}"))
}

#[test]
fn every_sbom_of_a_scratch_a_busybox_based_and_a_multi_platform_image_is_valid_spdx() {
    if !require("pyspdxtools") {
        return;
    }
    let Some(p) = project("example.test") else {
        return;
    };
    p.ok(&["build", "-o", "out/"]);
    let out = p.join("out");
    let sboms = documents(&out, SPDX);
    // plain, base, web, and one per platform of multi.
    assert_eq!(sboms.len(), 5, "{sboms:?}");
    assert_eq!(documents(&out, IN_TOTO).len(), 5);
    for (hex, bytes) in &sboms {
        validate(&p, hex, bytes);
    }

    let web = sbom_named(&out, "sbom/web:web");
    let packages = web["packages"].as_array().unwrap();
    let busybox = packages
        .iter()
        .find(|p| p["name"] == "busybox-static")
        .expect("the base's dpkg package is listed");
    assert_eq!(busybox["versionInfo"], "1:1.36.1-9");
    let purl = busybox["externalRefs"][0]["referenceLocator"]
        .as_str()
        .unwrap();
    assert!(
        purl.starts_with("pkg:deb/debian/busybox-static@1:1.36.1-9"),
        "{purl}"
    );
    let kinds: BTreeSet<&str> = web["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["relationshipType"].as_str().unwrap())
        .collect();
    assert!(kinds.contains("DESCENDANT_OF"), "{kinds:?}");
    // The web image's own layer only: the base's files are the base's.
    let files: Vec<&str> = web["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileName"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "./srv/site/bin/run",
            "./srv/site/empty",
            "./srv/site/index.html"
        ]
    );

    // `gantry inspect` lists both documents of each platform of the index.
    let info: Value = serde_json::from_str(&p.ok(&[
        "inspect",
        "--json",
        "--image",
        "multi",
        out.to_str().unwrap(),
    ]))
    .unwrap();
    for m in info["manifests"].as_array().unwrap() {
        let kinds: BTreeSet<&str> = m["referrers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["artifact_type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, BTreeSet::from([SPDX, IN_TOTO]), "{info}");
    }
}

#[test]
fn sbom_file_checksums_are_the_sha256sum_of_the_files_umoci_unpacks() {
    if !require("umoci") {
        return;
    }
    let Some(p) = project("example.test") else {
        return;
    };
    p.ok(&["build", "base", "-o", "out/"]);
    let bundle = p.join("bundle");
    let mut unpack = Command::new("umoci");
    unpack.arg("unpack");
    if !is_root() {
        unpack.arg("--rootless");
    }
    sh(unpack
        .args(["--image", &format!("{}:base", p.join("out").display())])
        .arg(&bundle));
    let sbom = sbom_named(&p.join("out"), "sbom/base:base");
    let files = sbom["files"].as_array().unwrap();
    assert_eq!(files.len(), 3, "busybox, os-release, status: {sbom}");
    for f in files {
        let name = f["fileName"].as_str().unwrap().trim_start_matches("./");
        let path: PathBuf = bundle.join("rootfs").join(name);
        let sum = sh(Command::new("sha256sum").arg(&path));
        let sum = sum.split_whitespace().next().unwrap();
        let listed = f["checksums"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["algorithm"] == "SHA256")
            .unwrap()["checksumValue"]
            .as_str()
            .unwrap();
        assert_eq!(listed, sum, "{name}");
    }
}

#[test]
fn two_checkouts_and_two_stores_give_byte_identical_documents_unstamped() {
    let (Some(a), Some(b)) = (project("example.test"), project("example.test")) else {
        return;
    };
    a.ok(&["build", "-o", "out/"]);
    b.ok(&["build", "-o", "out/"]);
    for kind in [SPDX, IN_TOTO] {
        let (da, db) = (
            documents(&a.join("out"), kind),
            documents(&b.join("out"), kind),
        );
        assert_eq!(da.len(), 5);
        assert_eq!(da, db, "{kind}");
    }
    // A second build into a warm store reads the lists from its records.
    a.ok(&["build", "-o", "again/"]);
    assert_eq!(
        documents(&a.join("out"), SPDX),
        documents(&a.join("again"), SPDX)
    );
}

#[test]
fn sbom_false_and_sbom_none_attach_nothing() {
    let Some(p) = project("example.test") else {
        return;
    };
    p.ok(&["build", "plain", "--sbom", "none", "-o", "none/"]);
    assert!(manifests_with_subject(&p.join("none")).is_empty());
    let text = fs::read_to_string(p.join("gantry.toml")).unwrap();
    p.write(
        "gantry.toml",
        text.replace(
            "tags = [\"example.test/sbom/plain:plain\"]",
            "tags = [\"example.test/sbom/plain:plain\"]\nsbom = false",
        ),
    );
    p.ok(&["build", "plain", "web", "-o", "off/"]);
    let subjects: BTreeSet<String> = manifests_with_subject(&p.join("off"))
        .iter()
        .map(|m| m["subject"]["digest"].as_str().unwrap().to_string())
        .collect();
    // web keeps its two documents (base is not written: not asked for);
    // plain has none.
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert_eq!(manifests_with_subject(&p.join("off")).len(), 2);
}

/// What skopeo reads at `reference` on the plain-HTTP registry.
fn skopeo_raw(reference: &str) -> Value {
    let out = sh(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{reference}")));
    serde_json::from_str(&out).unwrap()
}

fn peers() -> bool {
    require(BIN) && require("skopeo")
}

#[test]
fn skopeo_finds_both_documents_of_a_pushed_image_through_the_fallback_tag() {
    if !peers() {
        return;
    }
    let reg = DockerRegistry::start(Options::default());
    let Some(p) = project(&reg.host()) else {
        return;
    };
    p.ok(&["push", "plain", "multi"]);
    let repo = format!("{}/sbom/plain", reg.host());
    let manifest = sh(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{repo}:plain")));
    let digest = common::digest::sha256_hex(manifest.as_bytes());
    let index = skopeo_raw(&format!("{repo}:sha256-{digest}"));
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let entries = index["manifests"].as_array().unwrap();
    let kinds: BTreeSet<&str> = entries
        .iter()
        .map(|e| e["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, BTreeSet::from([SPDX, IN_TOTO]), "{index}");
    for e in entries {
        let at = format!("{repo}@{}", e["digest"].as_str().unwrap());
        let m = skopeo_raw(&at);
        assert_eq!(m["subject"]["digest"], format!("sha256:{digest}"));
        // Copying the artifact out fetches and verifies its blobs.
        let copy = p.join(&format!("copy-{}", &e["digest"].as_str().unwrap()[7..19]));
        sh(Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{at}"))
            .arg(format!("oci:{}:a", copy.display())));
        let doc = m["layers"][0]["digest"].as_str().unwrap();
        let bytes = fs::read(copy.join("blobs/sha256").join(&doc[7..])).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        match e["artifactType"].as_str().unwrap() {
            SPDX => assert_eq!(v["spdxVersion"], "SPDX-2.3"),
            _ => {
                assert_eq!(v["_type"], "https://in-toto.io/Statement/v1");
                assert_eq!(v["subject"][0]["digest"]["sha256"], digest);
            }
        }
    }

    // Each platform of the index has its own fallback tag.
    let multi = format!("{}/sbom/multi", reg.host());
    let top = skopeo_raw(&format!("{multi}:multi"));
    for child in top["manifests"].as_array().unwrap() {
        let hex = &child["digest"].as_str().unwrap()[7..];
        let index = skopeo_raw(&format!("{multi}:sha256-{hex}"));
        assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");
    }
}

#[test]
fn concurrent_pushes_to_one_fallback_tag_keep_each_others_entries() {
    if !peers() {
        return;
    }
    let reg = DockerRegistry::start(Options::default());
    // The same image from four build files that differ in a comment: one
    // SBOM, four provenance statements (each names its build file's
    // digest), all about one manifest.
    let projects: Vec<Project> = (0..4)
        .filter_map(|i| {
            let p = project(&reg.host())?;
            let text = fs::read_to_string(p.join("gantry.toml")).unwrap();
            p.write("gantry.toml", format!("# checkout {i}\n{text}"));
            Some(p)
        })
        .collect();
    if projects.len() < 4 {
        return;
    }
    for p in &projects {
        p.ok(&["build", "plain"]);
    }
    std::thread::scope(|s| {
        for p in &projects {
            s.spawn(move || p.ok(&["push", "plain"]));
        }
    });
    let repo = format!("{}/sbom/plain", reg.host());
    let manifest = sh(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{repo}:plain")));
    let digest = common::digest::sha256_hex(manifest.as_bytes());
    let index = skopeo_raw(&format!("{repo}:sha256-{digest}"));
    let entries = index["manifests"].as_array().unwrap();
    let count = |kind: &str| entries.iter().filter(|e| e["artifactType"] == kind).count();
    assert_eq!((count(SPDX), count(IN_TOTO)), (1, 4), "{index}");
}
