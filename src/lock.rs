//! `gantry.lock`: what every registry base's tag resolved to.
//!
//! ```toml
//! version = 1
//!
//! [base."docker.io/library/alpine:3.20"]
//! digest = "sha256:…"          # the index or manifest the reference named
//! media-type = "application/vnd.oci.image.index.v1+json"
//!
//! [base."docker.io/library/alpine:3.20".platforms]
//! "linux/amd64" = "sha256:…"   # the manifest a build of that platform uses
//! ```
//!
//! Tables are sorted by key, so the file is stable and its diffs show only
//! what changed. With a lock, a build asks the registry for nothing by tag.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::fsutil;

pub const LOCK_FILE_NAME: &str = "gantry.lock";
const VERSION: u32 = 1;
const HEADER: &str = "# Written by `gantry lock`: the digests every registry base resolved to.\n\
# Commit it; `gantry lock --update NAME` re-resolves one base.\n";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    pub version: u32,
    /// Keyed by the fully qualified reference, as `Reference` displays it.
    #[serde(default)]
    pub base: BTreeMap<String, LockedBase>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedBase {
    pub digest: Digest,
    pub media_type: String,
    /// `os/arch[/variant]` → that platform's image manifest.
    #[serde(default)]
    pub platforms: BTreeMap<String, Digest>,
}

/// `gantry.lock` beside the build file at `build_file`.
pub fn path_for(build_file: &Path) -> PathBuf {
    build_file
        .parent()
        .map(|d| d.join(LOCK_FILE_NAME))
        .unwrap_or_else(|| PathBuf::from(LOCK_FILE_NAME))
}

impl LockFile {
    pub fn new() -> LockFile {
        LockFile {
            version: VERSION,
            base: BTreeMap::new(),
        }
    }

    /// Reads a lock file; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<LockFile>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let lock: LockFile = toml::from_str(&text).map_err(|e| Error::Lock {
            path: path.to_path_buf(),
            message: format!("not a gantry lock file: {}", e.message().trim_end()),
        })?;
        if lock.version != VERSION {
            return Err(Error::Lock {
                path: path.to_path_buf(),
                message: format!(
                    "lock file version {} is not supported (this gantry writes {VERSION})",
                    lock.version
                ),
            });
        }
        Ok(Some(lock))
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("a lock file always serialises");
        format!("{HEADER}\n{body}")
    }

    /// Writes the lock atomically, so a reader sees the old or the new one.
    pub fn save(&self, path: &Path) -> Result<()> {
        fsutil::write_atomic(path, self.to_toml().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_a_stable_order() {
        let d = |c: char| {
            format!("sha256:{}", c.to_string().repeat(64))
                .parse::<Digest>()
                .unwrap()
        };
        let mut lock = LockFile::new();
        for (name, c) in [
            ("docker.io/library/b:1", 'b'),
            ("docker.io/library/a:1", 'a'),
        ] {
            lock.base.insert(
                name.into(),
                LockedBase {
                    digest: d(c),
                    media_type: crate::media::OCI_INDEX.into(),
                    platforms: [
                        ("linux/arm64".to_string(), d('1')),
                        ("linux/amd64".to_string(), d('2')),
                    ]
                    .into_iter()
                    .collect(),
                },
            );
        }
        let text = lock.to_toml();
        let a = text.find("library/a:1").unwrap();
        let b = text.find("library/b:1").unwrap();
        assert!(a < b, "{text}");
        assert!(text.find("linux/amd64").unwrap() < text.find("linux/arm64").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(LOCK_FILE_NAME);
        lock.save(&p).unwrap();
        assert_eq!(LockFile::load(&p).unwrap(), Some(lock));
    }

    #[test]
    fn refuses_other_versions_and_bad_digests() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(LOCK_FILE_NAME);
        std::fs::write(&p, "version = 9\n").unwrap();
        assert!(LockFile::load(&p)
            .unwrap_err()
            .to_string()
            .contains("version 9"));
        std::fs::write(
            &p,
            "version = 1\n[base.\"x\"]\ndigest = \"md5:00\"\nmedia-type = \"m\"\n",
        )
        .unwrap();
        assert!(LockFile::load(&p).is_err());
        assert_eq!(LockFile::load(&dir.path().join("none")).unwrap(), None);
    }
}
