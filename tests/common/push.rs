//! Fixtures for push tests: a small image project, and skopeo's view of
//! what a registry holds.

use std::path::Path;
use std::process::Command;

use super::{sh, Project};

/// A scratch image `app` with two layers (one of 1.5 MB that does not
/// compress away, so uploads carry real bytes) and the given tags.
pub fn app_project(tags: &[&str]) -> Project {
    let p = Project::new();
    let tags: Vec<String> = tags.iter().map(|t| format!("{t:?}")).collect();
    p.write(
        "gantry.toml",
        format!(
            "[image.app]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n\
             entrypoint = [\"/bin/app\"]\ntags = [{}]\n\n\
             [[image.app.layer]]\nname = \"data\"\nfiles = [{{ src = \"data/\", dst = \"/data/\" }}]\n\n\
             [[image.app.layer]]\nname = \"conf\"\nfiles = [{{ src = \"app.conf\", dst = \"/etc/app.conf\" }}]\n",
            tags.join(", ")
        ),
    );
    p.write("data/big.bin", noise(1_500_000, 7));
    p.write("data/small.txt", "small\n");
    p.write("app.conf", "mode = test\n");
    p
}

/// Bytes that deflate cannot shrink, the same for the same seed.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The manifest digest skopeo sees at `reference` (plain HTTP registry).
pub fn skopeo_digest(reference: &str) -> Option<String> {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo");
    out.status
        .success()
        .then(|| super::digest::sha256_digest(&out.stdout))
}

/// Copies `reference` out with skopeo, which checks every blob's digest on
/// the way; panics if anything is missing or wrong.
pub fn skopeo_copy_verifies(reference: &str, dest: &Path) {
    sh(Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:copy", dest.display())));
}

/// `REF@sha256:…` lines of `gantry push`.
pub fn pushed(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| l.split_once('@'))
        .map(|(r, d)| (r.to_string(), d.to_string()))
        .collect()
}

/// The `--metadata-file` JSON.
pub fn metadata(path: &Path) -> serde_json::Value {
    super::oci::read_json(path)
}

/// The peers push tests check with: the reference registry and skopeo.
pub fn peers() -> bool {
    super::require(super::docker_registry::BIN) && super::require("skopeo")
}

/// `action` of every blob in the metadata for `repository`.
pub fn actions(meta: &serde_json::Value, repository: &str) -> Vec<String> {
    meta["images"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["blobs"].as_array().unwrap().iter())
        .filter(|b| b["repository"] == repository)
        .map(|b| b["action"].as_str().unwrap().to_string())
        .collect()
}
