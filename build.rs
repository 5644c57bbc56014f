//! Names, in the binary, the commit it was built from and the versions of
//! the crates that decide a layer's bytes, so `gantry version --json` can
//! tell why two machines' digests differ. Only the version text changes
//! with them: nothing here reaches an image.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The crates whose code decides the bytes of a layer (the gzip and zstd
/// writers and the C sources they vendor) or reads base layers.
const COMPRESSORS: &[&str] = &[
    "libdeflater",
    "libdeflate-sys",
    "zstd",
    "zstd-safe",
    "zstd-sys",
    "flate2",
    "zlib-rs",
];

/// Set by whoever builds from a tree without `.git` (a crate tarball, a
/// distribution package) to name the commit anyway.
const COMMIT_ENV: &str = "GANTRY_BUILD_COMMIT";

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-env-changed={COMMIT_ENV}");

    let commit = std::env::var(COMMIT_ENV)
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git_commit(&root))
        .unwrap_or_default();
    println!("cargo:rustc-env=GANTRY_COMMIT={commit}");

    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let versions: Vec<String> = COMPRESSORS
        .iter()
        .filter_map(|name| locked_version(&lock, name).map(|v| format!("{name}={v}")))
        .collect();
    println!("cargo:rustc-env=GANTRY_COMPRESSORS={}", versions.join(";"));
}

/// HEAD's commit, when the package directory is itself a git checkout: a
/// crate unpacked inside some other repository must not take its commit.
fn git_commit(root: &Path) -> Option<String> {
    if !root.join(".git").exists() {
        return None;
    }
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        out.status.success().then(|| text.trim().to_string())
    };
    let top = git(&["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != root.canonicalize().ok()? {
        return None;
    }
    // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it
    // names (a commit), and packed-refs (where a branch may live instead).
    // Only files that exist, since cargo reruns for a missing one every time.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            let path = root.join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    git(&["rev-parse", "HEAD"])
        .filter(|c| c.len() >= 40 && c.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The version Cargo.lock pins for `name` (the first, should two be locked).
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let next = lines.next()?.trim();
            return next
                .strip_prefix("version = \"")
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_string);
        }
    }
    None
}
