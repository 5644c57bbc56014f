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
use crate::stamp::StampSpec;

/// The name of the layer generated for `[image.NAME.accounts]`.
pub const ACCOUNTS_LAYER: &str = "accounts";

/// The build file a verb reads when given none.
pub const DEFAULT_FILE_NAME: &str = "gantry.toml";

mod accounts;
mod docker;
mod local;
mod platforms;
mod raw;
mod validate;
mod values;

use raw::RawFile;
use validate::{line_col, Cx};

pub use docker::{parse_duration, Healthcheck};
pub use local::LocalSource;
pub use values::{normalize_dst, parse_mode};

// ---------------------------------------------------------------------------
// The file as validated.

/// A build file, validated: every image it declares and its stamp keys.
#[derive(Debug, Clone)]
pub struct BuildFile {
    /// The build file itself.
    pub path: PathBuf,
    /// Its directory: `src` paths are relative to it.
    pub dir: PathBuf,
    /// `[image.NAME]` tables, by name.
    pub images: BTreeMap<String, ImageSpec>,
    /// `[stamp]`: keys defined from others, and values for unstamped builds.
    pub stamp: StampSpec,
    /// `cache_from`: registry references whose layers a build may use
    /// instead of compressing its own (see docs/cache.md).
    pub cache_from: Vec<Reference>,
}

/// A value that may hold `{{KEY}}` stamp templates, with where it was
/// declared (for errors found once it is expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templated {
    /// The value as written, templates unexpanded.
    pub text: String,
    /// `file:line:col (declaration path)`.
    pub location: String,
}

/// A tag as declared: a reference already, unless it holds templates (it
/// is then one once expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSpec {
    /// The tag as written, and where.
    pub template: Templated,
    /// The tag as parsed, with `:latest` when it names none; `None` while it
    /// holds templates.
    pub reference: Option<Reference>,
}

/// One `[image.NAME]` table.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// `NAME`: how the image is asked for and named in progress.
    pub name: String,
    /// `file:line:col (image.NAME)`, for errors.
    pub location: String,
    /// `base`: what the image's layers go on.
    pub base: BaseSpec,
    /// `platform` or `platforms`, which exclude each other.
    pub platforms: Platforms,
    /// `[image.NAME.overrides."os/arch"]`, by platform.
    pub overrides: BTreeMap<Platform, PlatformOverride>,
    /// Replaces the base's `Entrypoint` when given.
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the base's `Cmd` when given.
    pub cmd: Option<Vec<String>>,
    /// Merged over the base's environment (may hold templates).
    pub env: BTreeMap<String, String>,
    /// Replaces the base's `User` when given.
    pub user: Option<String>,
    /// Replaces the base's `WorkingDir`; always absolute.
    pub workdir: Option<String>,
    /// Config labels, merged over the base's (may hold templates).
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations (may hold templates).
    pub annotations: BTreeMap<String, String>,
    /// `PORT/proto`, normalised (`80` is `80/tcp`).
    pub exposed_ports: Vec<String>,
    /// Absolute paths declared as volumes.
    pub volumes: Vec<String>,
    /// Replaces the base's `StopSignal` when given.
    pub stop_signal: Option<String>,
    /// Replaces the base's `Healthcheck` when given (`["NONE"]` disables it).
    pub healthcheck: Option<Healthcheck>,
    /// Replaces the base's `Shell` when given.
    pub shell: Option<Vec<String>>,
    /// Replaces the base's `OnBuild` triggers when given; empty clears them.
    pub onbuild: Option<Vec<String>>,
    /// The image's `created` time: seconds or RFC 3339, after expansion.
    pub created: Option<Templated>,
    /// Tags, in the order written.
    pub tags: Vec<TagSpec>,
    /// `[[image.NAME.layer]]`, in order, on top of the base's layers (and
    /// of the `accounts` layer, when there is one).
    pub layers: Vec<LayerSpec>,
    /// `tests`: container-structure-test configs `gantry test` runs on the
    /// image, relative to the build file's directory.
    pub tests: Vec<PathBuf>,
    /// The image's `compression`, which its generated layers use.
    pub compression: Compression,
    /// The level for `compression`: given, or its default.
    pub compression_level: i32,
    /// `[image.NAME.accounts]`: users and groups added to the base's
    /// account files in a generated layer named `accounts`.
    pub accounts: Option<crate::accounts::Accounts>,
    /// `sbom`: whether the image gets its SBOM and provenance attached
    /// (default true).
    pub sbom: bool,
}

/// The platforms an image is built for, as its declaration says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Platforms {
    /// Neither `platform` nor `platforms`: the base's platform (the host's,
    /// when the base is an index).
    Base,
    /// `platform`: a single-platform image.
    One(Platform),
    /// `platforms`: one image per platform under an index, in the order
    /// written; never empty.
    Many(Vec<Platform>),
}

/// The settings that may differ for one platform of an image; each one
/// given replaces (`entrypoint`, `cmd`, `healthcheck`, `shell`, `onbuild`)
/// or is merged over (`env`, `labels`) the image's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformOverride {
    /// Where the table was declared, for errors.
    pub location: String,
    /// Replaces the image's `entrypoint` for this platform.
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's `cmd` for this platform.
    pub cmd: Option<Vec<String>>,
    /// Merged over the image's `env`.
    pub env: BTreeMap<String, String>,
    /// Merged over the image's `labels`.
    pub labels: BTreeMap<String, String>,
    /// Replaces the image's `healthcheck` for this platform.
    pub healthcheck: Option<Healthcheck>,
    /// Replaces the image's `shell` for this platform.
    pub shell: Option<Vec<String>>,
    /// Replaces the image's `onbuild` for this platform.
    pub onbuild: Option<Vec<String>>,
}

/// What an image is based on (`base = ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSpec {
    /// `"scratch"`: no base; the image declares its platform.
    Scratch,
    /// `oci:PATH[:TAG]` or `docker-archive:PATH[:TAG]` on local disk.
    Local(LocalSource),
    /// Another image of this build file.
    Image(String),
    /// An image in a registry.
    Registry(Reference),
}

/// Who owns an entry, as its tar header says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    /// Numeric user id (`owner = "UID:GID"`).
    pub uid: u64,
    /// Numeric group id.
    pub gid: u64,
    /// User name stored beside the id (empty by default).
    pub uname: String,
    /// Group name stored beside the id (empty by default).
    pub gname: String,
}

/// One `[[image.NAME.layer]]` table.
#[derive(Debug, Clone)]
pub struct LayerSpec {
    /// `name`, or `layer-N`; unique within the image.
    pub name: String,
    /// `file:line:col (image.NAME.layer[N])`, for errors.
    pub location: String,
    /// The default owner of the layer's entries.
    pub owner: Owner,
    /// Seconds since 1970 for every entry, over SOURCE_DATE_EPOCH.
    pub mtime: Option<u64>,
    /// The layer's compression, or the image's.
    pub compression: Compression,
    /// The level for `compression`: given, inherited, or its default.
    pub compression_level: i32,
    /// `files`, in the order written.
    pub entries: Vec<EntrySpec>,
}

/// One element of a layer's `files`.
#[derive(Debug, Clone)]
pub struct EntrySpec {
    /// `file:line:col (image.X.layer[N].files[M])`, for error messages.
    pub location: String,
    /// The entry's owner, or the layer's.
    pub owner: Owner,
    /// What the entry puts into the layer.
    pub kind: EntrySpecKind,
}

/// The three kinds of entry.
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
        /// The mode of copied files; else `0755` for an executable source
        /// and `0644` for any other.
        mode: Option<u32>,
        /// The mode of copied directories (default `0755`).
        dir_mode: Option<u32>,
        /// Paths under a directory `src` to leave out.
        exclude: Option<GlobSet>,
    },
    /// Declare a directory.
    Dir {
        /// Normalised absolute path, without leading `/`.
        path: String,
        /// Its mode (default `0755`).
        mode: Option<u32>,
    },
    /// Declare a symlink.
    Symlink {
        /// Normalised absolute path of the link, without leading `/`.
        path: String,
        /// Where it points, stored as written.
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
        let cache_from = raw
            .cache_from
            .iter()
            .map(|r| cx.cache_source(r))
            .collect::<Result<Vec<_>>>()?;
        let mut images = BTreeMap::new();
        for (name, raw_image) in raw.image {
            let image = cx.image(&name, raw_image)?;
            images.insert(name, image);
        }
        let mut tag_owner: BTreeMap<String, &str> = BTreeMap::new();
        for image in images.values() {
            for tag in image.tags.iter().filter_map(|t| t.reference.as_ref()) {
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
            cache_from,
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
