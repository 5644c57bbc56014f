//! sha256 of bytes, files and whole trees, as the tests compare outputs.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use sha2::{Digest as _, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `sha256:<hex>`, the form OCI descriptors and `docker inspect` use.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

pub fn sha256_file(path: &Path) -> String {
    sha256_hex(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// sha256 of every file under `dir`, by relative path; directories are
/// listed too so that an extra empty directory is a difference.
pub fn tree_digests(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
        let v = if e.file_type().is_dir() {
            "directory".to_string()
        } else {
            sha256_file(e.path())
        };
        out.insert(rel, v);
    }
    out
}
