//! The build file (`gantry.toml`): parsed strictly (unknown keys are errors),
//! then validated into plain values. Every error names the file, the line and
//! column of the declaration at fault, and the declaration's path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use globset::GlobSet;

use crate::error::{Error, Result};
use crate::media::Compression;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::stamp::{self, StampSpec};

pub const DEFAULT_FILE_NAME: &str = "gantry.toml";

mod local;
mod platforms;
mod raw;
mod validate;
mod values;

use raw::RawFile;
use validate::{line_col, Cx};

pub use local::LocalSource;
pub use values::{normalize_dst, parse_mode};

// ---------------------------------------------------------------------------
// The file as validated.

#[derive(Debug, Clone)]
pub struct BuildFile {
    /// The build file itself.
    pub path: PathBuf,
    /// Its directory: `src` paths are relative to it.
    pub dir: PathBuf,
    pub images: BTreeMap<String, ImageSpec>,
    pub stamp: StampSpec,
}

/// A value that may hold `{{KEY}}` stamp templates, with where it was
/// declared (for errors found once it is expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templated {
    pub text: String,
    pub location: String,
}

#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub name: String,
    pub location: String,
    pub base: BaseSpec,
    /// `platform`: the one platform of a single-platform image.
    pub platform: Option<Platform>,
    /// `platforms`: one image per platform under an index, in the order
    /// written. Empty unless declared (never both this and `platform`).
    pub platforms: Vec<Platform>,
    /// `[image.NAME.overrides."os/arch"]`, by platform.
    pub overrides: BTreeMap<Platform, PlatformOverride>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
    /// The image's `created` time: seconds or RFC 3339, after expansion.
    pub created: Option<Templated>,
    /// Tags; validated as references at parse time unless they hold
    /// templates, and always after expansion.
    pub tags: Vec<Templated>,
    pub layers: Vec<LayerSpec>,
}

/// The settings that may differ for one platform of an image; each one
/// given replaces (`entrypoint`, `cmd`) or is merged over (`env`, `labels`)
/// the image's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformOverride {
    /// Where the table was declared, for errors.
    pub location: String,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSpec {
    Scratch,
    Local(LocalSource),
    /// Another image of this build file.
    Image(String),
    /// An image in a registry.
    Registry(Reference),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
}

#[derive(Debug, Clone)]
pub struct LayerSpec {
    pub name: String,
    pub location: String,
    pub owner: Owner,
    pub mtime: Option<u64>,
    pub compression: Compression,
    pub compression_level: i32,
    pub entries: Vec<EntrySpec>,
}

#[derive(Debug, Clone)]
pub struct EntrySpec {
    /// `file:line:col (image.X.layer[N].files[M])`, for error messages.
    pub location: String,
    pub owner: Owner,
    pub kind: EntrySpecKind,
}

#[derive(Debug, Clone)]
pub enum EntrySpecKind {
    /// Copy a file or the contents of a directory.
    Copy {
        /// As written, for messages.
        src_text: String,
        /// Resolved against the build file's directory.
        src: PathBuf,
        /// Normalised absolute destination without trailing slash ("" is `/`).
        dst: String,
        /// The destination was written with a trailing `/`: a file goes inside it.
        dst_is_dir: bool,
        mode: Option<u32>,
        dir_mode: Option<u32>,
        exclude: Option<GlobSet>,
    },
    Dir {
        path: String,
        mode: Option<u32>,
    },
    Symlink {
        path: String,
        target: String,
    },
}

/// The key and the keys expected of serde's "unknown field `k`, expected
/// one of `a`, `b`" (or "expected `a`"), the only account of them the
/// parser gives.
fn unknown_key(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let known = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((key.to_string(), known))
}

impl BuildFile {
    /// Reads and validates the build file at `path`.
    pub fn load(path: &Path) -> Result<BuildFile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        BuildFile::parse(&text, path)
    }

    /// Validates `text` as if read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<BuildFile> {
        let display = path.display().to_string();
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let location = match e.span() {
                Some(span) => format!("{display}:{}", line_col(text, span.start)),
                None => display.clone(),
            };
            let message = e.message().trim_end().to_string();
            match unknown_key(&message) {
                Some((key, known)) => Error::UnknownKey {
                    location,
                    message,
                    key,
                    known,
                },
                None => Error::BuildFile { location, message },
            }
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let cx = Cx {
            text,
            file: &display,
            dir: &dir,
        };
        if raw.image.is_empty() {
            return Err(Error::BuildFile {
                location: display,
                message: "no images declared (expected at least one [image.NAME] table)".into(),
            });
        }
        let stamp = match raw.stamp {
            Some(st) => cx.stamp(st)?,
            None => StampSpec::default(),
        };
        let mut images = BTreeMap::new();
        for (name, raw_image) in raw.image {
            let image = cx.image(&name, raw_image)?;
            images.insert(name, image);
        }
        let mut tag_owner: BTreeMap<String, &str> = BTreeMap::new();
        for image in images.values() {
            for tag in image.tags.iter().filter(|t| !stamp::is_template(&t.text)) {
                let tag = Reference::parse_tagged(&tag.text)?;
                // One tag naming two images would make every output ambiguous.
                if let Some(other) = tag_owner.insert(tag.to_string(), &image.name) {
                    return Err(Error::BuildFile {
                        location: image.location.clone(),
                        message: format!(
                            "images {other:?} and {:?} both have the tag {}",
                            image.name,
                            tag.familiar()
                        ),
                    });
                }
            }
        }
        for image in images.values() {
            if let BaseSpec::Image(base) = &image.base {
                if !images.contains_key(base) {
                    return Err(Error::BuildFile {
                        location: image.location.clone(),
                        message: format!(
                            "image {:?}: base \":{base}\" names no image of this file (images: {})",
                            image.name,
                            images.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    });
                }
            }
        }
        Ok(BuildFile {
            path: path.to_path_buf(),
            dir,
            images,
            stamp,
        })
    }

    /// The images to build for `targets` (all when empty), each after the
    /// images it is based on. A cycle is an error naming it.
    pub fn build_order(&self, targets: &[String]) -> Result<Vec<&ImageSpec>> {
        let roots: Vec<&str> = if targets.is_empty() {
            self.images.keys().map(String::as_str).collect()
        } else {
            for t in targets {
                if !self.images.contains_key(t) {
                    return Err(Error::Usage(format!(
                        "{}: no image named {t:?} (images: {})",
                        self.path.display(),
                        self.images.keys().cloned().collect::<Vec<_>>().join(", ")
                    )));
                }
            }
            targets.iter().map(String::as_str).collect()
        };
        let mut order = Vec::new();
        let mut done = std::collections::BTreeSet::new();
        for root in roots {
            let mut chain: Vec<&str> = Vec::new();
            let mut cur = root;
            // Walk up the base chain; each image has at most one base, so the
            // dependency graph is a forest and a simple chain walk finds cycles.
            loop {
                if done.contains(cur) {
                    break;
                }
                if let Some(pos) = chain.iter().position(|c| *c == cur) {
                    let mut cycle: Vec<&str> = chain[pos..].to_vec();
                    cycle.push(cur);
                    return Err(Error::BuildFile {
                        location: self.images[cur].location.clone(),
                        message: format!("base images form a cycle: {}", cycle.join(" -> ")),
                    });
                }
                chain.push(cur);
                match &self.images[cur].base {
                    BaseSpec::Image(b) => cur = b.as_str(),
                    _ => break,
                }
            }
            for name in chain.into_iter().rev() {
                if done.insert(name) {
                    order.push(&self.images[name]);
                }
            }
        }
        Ok(order)
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
