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
//!
//! Besides the file format, the policy over it lives here: [`check`] says
//! whether a lock still fits its build file, and [`update`] makes the next
//! lock from the last one, re-resolving only what it is asked to.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::buildfile::{BaseSpec, BuildFile};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::platform::{host_platform, Platform};
use crate::reference::Reference;

/// The lock's file name, beside the build file.
pub const LOCK_FILE_NAME: &str = "gantry.lock";
const VERSION: u32 = 1;
const HEADER: &str = "# Written by `gantry lock`: the digests every registry base resolved to.\n\
# Commit it; `gantry lock --update NAME` re-resolves one base.\n";

/// `gantry.lock` as read or to be written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    /// The format version; only [`LockFile::new`]'s is read.
    pub version: u32,
    /// Keyed by the fully qualified reference, as `Reference` displays it.
    #[serde(default)]
    pub base: BTreeMap<String, LockedBase>,
}

/// What one base reference resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedBase {
    /// The index or manifest the reference named.
    pub digest: Digest,
    /// The media type `digest` was served with.
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
    /// An empty lock of the current version.
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

    /// The file's text: a header saying what it is, then the sorted tables.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("a lock file always serialises");
        format!("{HEADER}\n{body}")
    }

    /// Writes the lock atomically, so a reader sees the old or the new one.
    pub fn save(&self, path: &Path) -> Result<()> {
        fsutil::write_atomic(path, self.to_toml().as_bytes())
    }

    /// Adds what one resolution of `reference` found. Should the tag have
    /// moved between two platforms' requests, the later answer wins whole.
    fn merge(&mut self, reference: &Reference, entry: LockedBase) {
        let key = reference.to_string();
        match self.base.get_mut(&key) {
            Some(have) if have.digest == entry.digest => have.platforms.extend(entry.platforms),
            _ => {
                self.base.insert(key, entry);
            }
        }
    }
}

/// Every registry base of the build file with each platform it is used
/// for, once each, in a stable order; references carry their default tag,
/// as the lock keys them.
pub fn registry_bases(file: &BuildFile) -> Vec<(Reference, Option<Platform>)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for spec in file.images.values() {
        if let BaseSpec::Registry(r) = &spec.base {
            let r = r.clone().with_default_tag();
            // A multi-platform image needs its base for every platform.
            for p in spec.platforms.build_for() {
                if seen.insert((r.clone(), p.clone())) {
                    out.push((r.clone(), p));
                }
            }
        }
    }
    out
}

/// Reads the lock beside `file`, for a build. With `locked`, a missing lock,
/// one that lacks a base, or one that lists bases the build file no longer
/// uses is an error (a missing platform is caught when the base is loaded).
pub fn check(file: &BuildFile, locked: bool) -> Result<Option<LockFile>> {
    let path = path_for(&file.path);
    let lock = LockFile::load(&path)?;
    if !locked {
        return Ok(lock);
    }
    let bases = registry_bases(file);
    let Some(l) = &lock else {
        if bases.is_empty() {
            return Ok(None);
        }
        return Err(Error::Lock {
            path,
            message: format!(
                "--locked needs a lock file, and there is none; run `gantry lock` \
                 (base {} is not locked)",
                bases[0].0
            ),
        });
    };
    if let Some((missing, _)) = bases
        .iter()
        .find(|(r, _)| !l.base.contains_key(&r.to_string()))
    {
        return Err(Error::Lock {
            path,
            message: format!(
                "base {missing} is not in the lock; run `gantry lock` (the lock is stale)"
            ),
        });
    }
    let used: BTreeSet<String> = bases.iter().map(|(r, _)| r.to_string()).collect();
    if let Some(extra) = l.base.keys().find(|k| !used.contains(*k)) {
        return Err(Error::Lock {
            path,
            message: format!(
                "base {extra} is locked but no image uses it; run `gantry lock` (the lock \
                 is stale)"
            ),
        });
    }
    Ok(lock)
}

/// The lock for `file` after `old`: every registry base the file uses, each
/// taken from `old` when it is there for the platform needed and not named
/// in `names` (a base reference, or an image based on one), else resolved
/// with `resolve`. `names` empty re-resolves every base; a name that is no
/// registry base of the file is an error before anything is resolved.
pub fn update(
    file: &BuildFile,
    old: &LockFile,
    names: &[String],
    mut resolve: impl FnMut(&Reference, Option<&Platform>) -> Result<LockedBase>,
) -> Result<LockFile> {
    let bases = registry_bases(file);
    for name in names {
        if !bases.iter().any(|(r, _)| names_base(file, name, r)) {
            return Err(Error::Usage(format!(
                "--update {name}: no registry base of {} is called that (give a base \
                 reference or the name of an image based on one)",
                file.path.display()
            )));
        }
    }
    let mut new = LockFile::new();
    for (r, platform) in &bases {
        let update = names.is_empty() || names.iter().any(|n| names_base(file, n, r));
        let platform_key = platform.clone().unwrap_or_else(host_platform).to_string();
        let kept = old.base.get(&r.to_string()).filter(|b| {
            !update
                && (b.platforms.contains_key(&platform_key)
                    || (platform.is_none() && b.platforms.len() == 1))
        });
        let entry = match kept {
            Some(b) => b.clone(),
            None => resolve(r, platform.as_ref())?,
        };
        new.merge(r, entry);
    }
    Ok(new)
}

/// Whether `name` names the base `reference` (with its default tag): the
/// reference as written in any form that normalises to it, or an image
/// based on it.
fn names_base(file: &BuildFile, name: &str, reference: &Reference) -> bool {
    if name
        .parse::<Reference>()
        .is_ok_and(|r| &r.with_default_tag() == reference)
    {
        return true;
    }
    file.images.get(name).is_some_and(|spec| {
        matches!(&spec.base, BaseSpec::Registry(r) if &r.clone().with_default_tag() == reference)
    })
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

    fn entry(c: char) -> LockedBase {
        let d = format!("sha256:{}", c.to_string().repeat(64))
            .parse::<Digest>()
            .unwrap();
        LockedBase {
            digest: d,
            media_type: crate::media::OCI_MANIFEST.into(),
            platforms: [("linux/amd64".to_string(), d)].into_iter().collect(),
        }
    }

    fn two_bases(dir: &Path) -> BuildFile {
        BuildFile::parse(
            "[image.a]\nbase = \"alpine:3.20\"\nplatform = \"linux/amd64\"\n\
             [image.b]\nbase = \"docker.io/library/busybox\"\nplatform = \"linux/amd64\"\n",
            &dir.join("gantry.toml"),
        )
        .unwrap()
    }

    #[test]
    fn update_resolves_only_the_bases_named_and_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let file = two_bases(dir.path());
        let mut old = LockFile::new();
        old.base
            .insert("docker.io/library/alpine:3.20".into(), entry('a'));
        old.base
            .insert("docker.io/library/busybox:latest".into(), entry('b'));
        let mut asked = Vec::new();
        // An image's name stands for its base.
        let new = update(&file, &old, &["b".into()], |r, _| {
            asked.push(r.to_string());
            Ok(entry('c'))
        })
        .unwrap();
        assert_eq!(asked, ["docker.io/library/busybox:latest"]);
        assert_eq!(new.base["docker.io/library/alpine:3.20"], entry('a'));
        assert_eq!(new.base["docker.io/library/busybox:latest"], entry('c'));
        let e = update(&file, &old, &["nginx".into()], |_, _| Ok(entry('c')))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--update nginx"), "{e}");
    }

    #[test]
    fn check_with_locked_refuses_a_lock_that_misses_a_base_or_names_an_unused_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = two_bases(dir.path());
        let path = dir.path().join(LOCK_FILE_NAME);
        assert!(check(&file, false).unwrap().is_none());
        assert!(check(&file, true).is_err());
        let mut lock = LockFile::new();
        lock.base
            .insert("docker.io/library/alpine:3.20".into(), entry('a'));
        lock.save(&path).unwrap();
        let e = check(&file, true).unwrap_err().to_string();
        assert!(e.contains("busybox:latest is not in the lock"), "{e}");
        lock.base
            .insert("docker.io/library/busybox:latest".into(), entry('b'));
        lock.base
            .insert("docker.io/library/gone:1".into(), entry('f'));
        lock.save(&path).unwrap();
        let e = check(&file, true).unwrap_err().to_string();
        assert!(e.contains("gone:1 is locked but no image uses it"), "{e}");
        assert_eq!(check(&file, false).unwrap(), Some(lock));
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
