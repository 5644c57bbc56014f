//! The build file (`gantry.toml`): parsed strictly (unknown keys are errors),
//! then validated into plain values. Every error names the file, the line and
//! column of the declaration at fault, and the declaration's path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};
use crate::layer::compress::Compression;
use crate::layout::read::LocalSource;
use crate::reference::Reference;
use crate::stamp::{self, StampSpec};

pub const DEFAULT_FILE_NAME: &str = "gantry.toml";

// ---------------------------------------------------------------------------
// The file as written.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    image: BTreeMap<String, Spanned<RawImage>>,
    stamp: Option<Spanned<RawStamp>>,
}

/// `[stamp]`: every key but `unstamped` defines a stamp key.
#[derive(Debug, Deserialize)]
struct RawStamp {
    #[serde(default)]
    unstamped: BTreeMap<String, String>,
    #[serde(flatten)]
    defs: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    base: Spanned<String>,
    platform: Option<Spanned<String>>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    user: Option<String>,
    workdir: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    exposed_ports: Vec<Spanned<String>>,
    #[serde(default)]
    volumes: Vec<Spanned<String>>,
    stop_signal: Option<String>,
    created: Option<Spanned<String>>,
    #[serde(default)]
    tags: Vec<Spanned<String>>,
    compression: Option<Spanned<String>>,
    compression_level: Option<Spanned<i64>>,
    #[serde(default)]
    layer: Vec<Spanned<RawLayer>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayer {
    name: Option<String>,
    owner: Option<Spanned<String>>,
    uname: Option<String>,
    gname: Option<String>,
    mtime: Option<Spanned<i64>>,
    compression: Option<Spanned<String>>,
    compression_level: Option<Spanned<i64>>,
    #[serde(default)]
    files: Vec<Spanned<RawEntry>>,
}

/// One `files` element. A single struct rather than an untagged enum so that
/// a typo gets "unknown field `sorce`" instead of "did not match any variant".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    src: Option<String>,
    dst: Option<String>,
    dir: Option<String>,
    symlink: Option<String>,
    target: Option<String>,
    mode: Option<toml::Value>,
    dir_mode: Option<toml::Value>,
    owner: Option<String>,
    uname: Option<String>,
    gname: Option<String>,
    #[serde(default)]
    exclude: Vec<String>,
}

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
    pub platform: Option<Platform>,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSpec {
    Scratch,
    Local(LocalSource),
    /// Another image of this build file.
    Image(String),
    /// An image in a registry.
    Registry(Reference),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// Parses `os/arch[/variant]`, normalising the usual aliases.
    pub fn parse(s: &str) -> std::result::Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "platform {s:?} is not of the form os/architecture[/variant]"
            ));
        }
        let ok = |p: &str| {
            p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        };
        if !parts.iter().all(|p| ok(p)) {
            return Err(format!(
                "platform {s:?} may hold only lowercase letters, digits, '_' and '.'"
            ));
        }
        let os = parts[0].to_string();
        let mut architecture = parts[1].to_string();
        let mut variant = parts.get(2).map(|v| v.to_string());
        match architecture.as_str() {
            "x86_64" | "x86-64" => architecture = "amd64".into(),
            "aarch64" => architecture = "arm64".into(),
            _ => {}
        }
        // arm64 images carry no variant or v8; containerd treats them alike,
        // and so does the rest of gantry by dropping the default.
        if architecture == "arm64" && variant.as_deref() == Some("v8") {
            variant = None;
        }
        Ok(Platform {
            os,
            architecture,
            variant,
        })
    }
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
            Error::BuildFile {
                location,
                message: e.message().trim_end().to_string(),
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

/// Byte offset to `line:column`, both 1-based.
fn line_col(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
        + 1;
    format!("{line}:{col}")
}

/// Validation context: the source text for locations.
struct Cx<'a> {
    text: &'a str,
    file: &'a str,
    dir: &'a Path,
}

impl Cx<'_> {
    fn loc(&self, span: std::ops::Range<usize>, path: &str) -> String {
        format!("{}:{} ({path})", self.file, line_col(self.text, span.start))
    }

    fn err(&self, location: &str, message: impl Into<String>) -> Error {
        Error::BuildFile {
            location: location.to_string(),
            message: message.into(),
        }
    }

    fn image(&self, name: &str, raw: Spanned<RawImage>) -> Result<ImageSpec> {
        let path = format!("image.{name}");
        let location = self.loc(raw.span(), &path);
        let raw = raw.into_inner();
        if !valid_image_name(name) {
            return Err(self.err(
                &location,
                format!(
                    "image name {name:?} must be lowercase letters, digits, '-', '_' or '.', \
                     starting with a letter or digit"
                ),
            ));
        }

        let base_loc = self.loc(raw.base.span(), &format!("{path}.base"));
        let base = self.base(raw.base.get_ref(), &base_loc)?;

        let platform = match raw.platform {
            Some(p) => Some(
                Platform::parse(p.get_ref())
                    .map_err(|m| self.err(&self.loc(p.span(), &format!("{path}.platform")), m))?,
            ),
            None => None,
        };
        if base == BaseSpec::Scratch && platform.is_none() {
            return Err(self.err(
                &location,
                "a \"scratch\" image needs `platform` (e.g. \"linux/amd64\")",
            ));
        }

        for key in raw.env.keys() {
            if key.is_empty() || key.contains('=') {
                return Err(self.err(
                    &location,
                    format!(
                        "{path}.env: variable name {key:?} must be non-empty and contain no '='"
                    ),
                ));
            }
        }
        if let Some(w) = &raw.workdir {
            if !w.starts_with('/') {
                return Err(self.err(
                    &location,
                    format!("{path}.workdir {w:?} must be an absolute path"),
                ));
            }
        }

        let mut exposed_ports = Vec::new();
        for p in &raw.exposed_ports {
            let loc = self.loc(p.span(), &format!("{path}.exposed_ports"));
            exposed_ports.push(normalize_port(p.get_ref()).map_err(|m| self.err(&loc, m))?);
        }
        let mut volumes = Vec::new();
        for v in &raw.volumes {
            if !v.get_ref().starts_with('/') {
                let loc = self.loc(v.span(), &format!("{path}.volumes"));
                return Err(self.err(
                    &loc,
                    format!("volume {:?} must be an absolute path", v.get_ref()),
                ));
            }
            volumes.push(v.get_ref().clone());
        }
        let mut tags = Vec::new();
        for (i, t) in raw.tags.iter().enumerate() {
            let loc = self.loc(t.span(), &format!("{path}.tags[{i}]"));
            self.templated_ok(t.get_ref(), &loc)?;
            if !stamp::is_template(t.get_ref()) {
                Reference::parse_tagged(t.get_ref()).map_err(|e| self.err(&loc, e.to_string()))?;
            }
            tags.push(Templated {
                text: t.get_ref().clone(),
                location: loc,
            });
        }
        let created = match &raw.created {
            Some(c) => {
                let loc = self.loc(c.span(), &format!("{path}.created"));
                self.templated_ok(c.get_ref(), &loc)?;
                Some(Templated {
                    text: c.get_ref().clone(),
                    location: loc,
                })
            }
            None => None,
        };
        for (what, map) in [
            ("env", &raw.env),
            ("labels", &raw.labels),
            ("annotations", &raw.annotations),
        ] {
            for (k, v) in map {
                self.templated_ok(v, &format!("{location} ({path}.{what}.{k:?})"))?;
            }
        }

        let (img_comp, img_level) = self.compression(
            raw.compression.as_ref(),
            raw.compression_level.as_ref(),
            &path,
            (Compression::Gzip, None),
        )?;

        let mut layers = Vec::new();
        for (i, l) in raw.layer.into_iter().enumerate() {
            layers.push(self.layer(&format!("{path}.layer[{i}]"), i, l, img_comp, img_level)?);
        }
        let mut seen = std::collections::BTreeSet::new();
        for l in &layers {
            if !seen.insert(l.name.as_str()) {
                return Err(self.err(
                    &l.location,
                    format!("two layers of image {name:?} are named {:?}", l.name),
                ));
            }
        }

        Ok(ImageSpec {
            name: name.to_string(),
            location,
            base,
            platform,
            entrypoint: raw.entrypoint,
            cmd: raw.cmd,
            env: raw.env,
            user: raw.user,
            workdir: raw.workdir,
            labels: raw.labels,
            annotations: raw.annotations,
            exposed_ports,
            volumes,
            stop_signal: raw.stop_signal,
            created,
            tags,
            layers,
        })
    }

    /// Refuses a malformed template early, where it is declared.
    fn templated_ok(&self, text: &str, loc: &str) -> Result<()> {
        if stamp::is_template(text) || text.contains("}}") {
            stamp::template_keys(text, loc)?;
        }
        Ok(())
    }

    fn stamp(&self, raw: Spanned<RawStamp>) -> Result<StampSpec> {
        let loc = self.loc(raw.span(), "stamp");
        let raw = raw.into_inner();
        for (k, v) in &raw.defs {
            stamp::validate_key(k).map_err(|m| self.err(&loc, m))?;
            self.templated_ok(v, &format!("{loc} [stamp] {k}"))?;
        }
        for k in raw.unstamped.keys() {
            stamp::validate_key(k).map_err(|m| self.err(&loc, format!("[stamp.unstamped] {m}")))?;
        }
        Ok(StampSpec {
            defs: raw.defs,
            unstamped: raw.unstamped,
        })
    }

    fn base(&self, s: &str, loc: &str) -> Result<BaseSpec> {
        if s == "scratch" {
            return Ok(BaseSpec::Scratch);
        }
        if let Some(other) = s.strip_prefix(':') {
            if !valid_image_name(other) {
                return Err(self.err(loc, format!("base {s:?}: {other:?} is not an image name")));
            }
            return Ok(BaseSpec::Image(other.to_string()));
        }
        if let Some(local) = LocalSource::parse(s, self.dir) {
            return local
                .map(BaseSpec::Local)
                .map_err(|e| self.err(loc, e.to_string()));
        }
        s.parse::<Reference>().map(BaseSpec::Registry).map_err(|e| {
            self.err(
                loc,
                format!(
                    "base must be \"scratch\", \":IMAGE\", \"oci:PATH[:TAG]\", \
                         \"docker-archive:PATH\" or a registry reference: {e}"
                ),
            )
        })
    }

    fn compression(
        &self,
        comp: Option<&Spanned<String>>,
        level: Option<&Spanned<i64>>,
        path: &str,
        inherited: (Compression, Option<i32>),
    ) -> Result<(Compression, Option<i32>)> {
        let c = match comp {
            None => inherited.0,
            Some(s) => match s.get_ref().as_str() {
                "gzip" => Compression::Gzip,
                "zstd" => Compression::Zstd,
                "none" => Compression::None,
                other => {
                    return Err(self.err(
                        &self.loc(s.span(), &format!("{path}.compression")),
                        format!("compression {other:?} must be \"gzip\", \"zstd\" or \"none\""),
                    ))
                }
            },
        };
        let level = match level {
            // A level chosen for another algorithm does not carry over.
            None if comp.is_some() => None,
            None => inherited.1,
            Some(l) => {
                let range = c.level_range();
                let v = *l.get_ref();
                if v < i64::from(*range.start()) || v > i64::from(*range.end()) {
                    return Err(self.err(
                        &self.loc(l.span(), &format!("{path}.compression_level")),
                        format!(
                            "compression_level {v} is out of range for {c:?} ({}..={})",
                            range.start(),
                            range.end()
                        ),
                    ));
                }
                Some(v as i32)
            }
        };
        Ok((c, level))
    }

    fn layer(
        &self,
        path: &str,
        index: usize,
        raw: Spanned<RawLayer>,
        img_comp: Compression,
        img_level: Option<i32>,
    ) -> Result<LayerSpec> {
        let location = self.loc(raw.span(), path);
        let raw = raw.into_inner();
        let name = raw.name.clone().unwrap_or_else(|| format!("layer-{index}"));
        let mut owner = Owner::default();
        if let Some(o) = &raw.owner {
            let loc = self.loc(o.span(), &format!("{path}.owner"));
            (owner.uid, owner.gid) = parse_owner(o.get_ref()).map_err(|m| self.err(&loc, m))?;
        }
        if let Some(u) = raw.uname {
            owner.uname = u;
        }
        if let Some(g) = raw.gname {
            owner.gname = g;
        }
        check_owner_names(&owner).map_err(|m| self.err(&location, m))?;
        let mtime = match &raw.mtime {
            Some(m) => {
                let v = *m.get_ref();
                if !(0..=253_402_300_799).contains(&v) {
                    return Err(self.err(
                        &self.loc(m.span(), &format!("{path}.mtime")),
                        format!("mtime {v} must be seconds since 1970, at most year 9999"),
                    ));
                }
                Some(v as u64)
            }
            None => None,
        };
        let (compression, level) = self.compression(
            raw.compression.as_ref(),
            raw.compression_level.as_ref(),
            path,
            (img_comp, img_level),
        )?;
        let mut entries = Vec::new();
        for (i, e) in raw.files.into_iter().enumerate() {
            entries.push(self.entry(&format!("{path}.files[{i}]"), e, &owner)?);
        }
        Ok(LayerSpec {
            name,
            location,
            owner,
            mtime,
            compression,
            compression_level: level.unwrap_or_else(|| compression.default_level()),
            entries,
        })
    }

    fn entry(&self, path: &str, raw: Spanned<RawEntry>, layer_owner: &Owner) -> Result<EntrySpec> {
        let location = self.loc(raw.span(), path);
        let raw = raw.into_inner();
        let err = |m: String| self.err(&location, m);

        let mut owner = layer_owner.clone();
        if let Some(o) = &raw.owner {
            (owner.uid, owner.gid) = parse_owner(o).map_err(err)?;
        }
        if let Some(u) = &raw.uname {
            owner.uname = u.clone();
        }
        if let Some(g) = &raw.gname {
            owner.gname = g.clone();
        }
        check_owner_names(&owner).map_err(err)?;
        let mode = raw
            .mode
            .as_ref()
            .map(|v| parse_mode(v, "mode"))
            .transpose()
            .map_err(err)?;
        let dir_mode = raw
            .dir_mode
            .as_ref()
            .map(|v| parse_mode(v, "dir_mode"))
            .transpose()
            .map_err(err)?;

        let kinds = [raw.src.is_some(), raw.dir.is_some(), raw.symlink.is_some()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(err(
                "each entry needs exactly one of `src` (with `dst`), `dir`, or `symlink` (with `target`)"
                    .into(),
            ));
        }
        let only_for = |present: bool, key: &str, kind: &str| -> Result<()> {
            if present {
                Err(self.err(
                    &location,
                    format!("`{key}` does not apply to a `{kind}` entry"),
                ))
            } else {
                Ok(())
            }
        };

        let kind = if let Some(src_text) = raw.src {
            only_for(raw.target.is_some(), "target", "src")?;
            let dst_text = raw.dst.ok_or_else(|| {
                self.err(&location, format!("`src = {src_text:?}` needs a `dst`"))
            })?;
            if src_text.is_empty() {
                return Err(err("`src` is empty".into()));
            }
            let dst = normalize_dst(&dst_text).map_err(err)?;
            let exclude = if raw.exclude.is_empty() {
                None
            } else {
                let mut b = GlobSetBuilder::new();
                for pat in &raw.exclude {
                    let glob = Glob::new(pat.trim_start_matches('/')).map_err(|e| {
                        self.err(&location, format!("exclude pattern {pat:?}: {e}"))
                    })?;
                    b.add(glob);
                }
                Some(
                    b.build()
                        .map_err(|e| self.err(&location, format!("exclude: {e}")))?,
                )
            };
            EntrySpecKind::Copy {
                src: self.dir.join(&src_text),
                src_text,
                dst_is_dir: dst_text.ends_with('/') || dst.is_empty(),
                dst,
                mode,
                dir_mode,
                exclude,
            }
        } else if let Some(d) = raw.dir {
            only_for(raw.dst.is_some(), "dst", "dir")?;
            only_for(raw.target.is_some(), "target", "dir")?;
            only_for(!raw.exclude.is_empty(), "exclude", "dir")?;
            only_for(raw.dir_mode.is_some(), "dir_mode", "dir (use `mode`)")?;
            let path = normalize_dst(&d).map_err(err)?;
            if path.is_empty() {
                return Err(err(
                    "`dir = \"/\"`: the root directory cannot be declared".into()
                ));
            }
            EntrySpecKind::Dir { path, mode }
        } else {
            let link = raw.symlink.expect("one kind is present");
            only_for(raw.dst.is_some(), "dst", "symlink")?;
            only_for(raw.mode.is_some(), "mode", "symlink")?;
            only_for(raw.dir_mode.is_some(), "dir_mode", "symlink")?;
            only_for(!raw.exclude.is_empty(), "exclude", "symlink")?;
            let target = raw.target.ok_or_else(|| {
                self.err(&location, format!("`symlink = {link:?}` needs a `target`"))
            })?;
            if target.is_empty() {
                return Err(err("symlink `target` is empty".into()));
            }
            let path = normalize_dst(&link).map_err(err)?;
            if path.is_empty() {
                return Err(err("`symlink = \"/\"`: the root cannot be a symlink".into()));
            }
            EntrySpecKind::Symlink { path, target }
        };
        Ok(EntrySpec {
            location,
            owner,
            kind,
        })
    }
}

fn valid_image_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

/// `"0755"`, `"755"` or `"4755"`: octal digits as a string, so that TOML's
/// decimal integers (`mode = 755`) cannot silently mean 0o1363.
pub fn parse_mode(v: &toml::Value, key: &str) -> std::result::Result<u32, String> {
    let s = match v {
        toml::Value::String(s) => s,
        other => {
            return Err(format!(
                "malformed {key} {other}: write it as a string of octal digits, e.g. \"0755\""
            ))
        }
    };
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(format!(
            "malformed {key} {s:?}: expected up to four octal digits, e.g. \"0755\""
        ));
    }
    let m = u32::from_str_radix(s, 8).expect("checked octal digits");
    if m > 0o7777 {
        return Err(format!("malformed {key} {s:?}: larger than 07777"));
    }
    Ok(m)
}

fn parse_owner(s: &str) -> std::result::Result<(u64, u64), String> {
    let bad = || format!("owner {s:?} must be numeric \"UID:GID\" (names go in `uname`/`gname`)");
    let (u, g) = s.split_once(':').ok_or_else(bad)?;
    let num = |x: &str| -> std::result::Result<u64, String> {
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        // Linux ids are 32-bit; tar can hold more, but nothing could use it.
        x.parse::<u32>().map(u64::from).map_err(|_| bad())
    };
    Ok((num(u)?, num(g)?))
}

fn check_owner_names(o: &Owner) -> std::result::Result<(), String> {
    for (k, v) in [("uname", &o.uname), ("gname", &o.gname)] {
        if v.bytes().any(|b| b == 0 || b == b'\n') {
            return Err(format!("{k} {v:?} must not contain NUL or newline"));
        }
    }
    Ok(())
}

/// Normalises a destination to an absolute path without `.`/`..`/duplicate
/// slashes or a trailing slash (`""` is the root). Relative destinations are
/// taken from `/`. A path that climbs above `/` is refused: it would let a
/// layer write outside the image's root.
pub fn normalize_dst(dst: &str) -> std::result::Result<String, String> {
    if dst.is_empty() {
        return Err("destination path is empty".into());
    }
    if dst.bytes().any(|b| b == 0) {
        return Err(format!("destination {dst:?} contains a NUL byte"));
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in dst.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("destination {dst:?} escapes the image root `/`"));
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// `"8080"` → `"8080/tcp"`; protocol must be tcp, udp or sctp.
fn normalize_port(p: &str) -> std::result::Result<String, String> {
    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let n: u32 = num
        .parse()
        .map_err(|_| format!("exposed port {p:?} must be PORT[/tcp|udp|sctp]"))?;
    if !(1..=65535).contains(&n) || num.starts_with('0') {
        return Err(format!("exposed port {p:?}: port must be 1 to 65535"));
    }
    if !["tcp", "udp", "sctp"].contains(&proto) {
        return Err(format!(
            "exposed port {p:?}: protocol must be tcp, udp or sctp"
        ));
    }
    Ok(format!("{n}/{proto}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BuildFile> {
        BuildFile::parse(text, Path::new("/proj/gantry.toml"))
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn full_example_parses() {
        let bf = parse(
            r#"
[image.worker]
base = "scratch"
platform = "linux/amd64"
entrypoint = ["/app/bin/worker"]
cmd = ["--serve"]
env = { PATH = "/app/bin:${PATH}", MODE = "prod" }
user = "65532:65532"
workdir = "/app"
labels = { "org.opencontainers.image.source" = "https://example.com/repo" }
annotations = { "com.example.team" = "infra" }
exposed_ports = ["8080/tcp", "53/udp", "9000"]
volumes = ["/data"]
stop_signal = "SIGTERM"
tags = ["example.com/worker:dev"]

[[image.worker.layer]]
name = "app"
owner = "65532:65532"
files = [
  { src = "target/release/worker", dst = "/app/bin/worker", mode = "0755" },
  { src = "config/", dst = "/etc/worker/", exclude = ["**/*.bak"] },
  { dir = "/var/lib/worker", mode = "0700" },
  { symlink = "/app/bin/w", target = "worker" },
]
"#,
        )
        .unwrap();
        let w = &bf.images["worker"];
        assert_eq!(w.exposed_ports, ["8080/tcp", "53/udp", "9000/tcp"]);
        assert_eq!(w.layers[0].owner.uid, 65532);
        assert_eq!(w.layers[0].entries.len(), 4);
        assert_eq!(w.layers[0].compression, Compression::Gzip);
        assert_eq!(w.layers[0].compression_level, 4);
        match &w.layers[0].entries[1].kind {
            EntrySpecKind::Copy {
                dst,
                dst_is_dir,
                src,
                ..
            } => {
                assert_eq!(dst, "etc/worker");
                assert!(dst_is_dir);
                assert_eq!(src, Path::new("/proj/config/"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_keys_are_errors_with_line_numbers() {
        let e = err("[image.a]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\nentrypiont = []\n");
        assert!(e.contains("gantry.toml:4:"), "{e}");
        assert!(e.contains("entrypiont"), "{e}");
        let e = err("[image.a]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n[[image.a.layer]]\nfiles = [{ sorce = \"x\" }]\n");
        assert!(e.contains("sorce") && e.contains(":5:"), "{e}");
    }

    #[test]
    fn malformed_modes_are_refused() {
        for m in ["755", "\"0999\"", "\"rwx\"", "\"077777\"", "\"\""] {
            let text = format!(
                "[image.a]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n[[image.a.layer]]\nfiles = [{{ dir = \"/x\", mode = {m} }}]\n"
            );
            let e = err(&text);
            assert!(e.contains("malformed mode"), "{m}: {e}");
            assert!(e.contains("image.a.layer[0].files[0]"), "{m}: {e}");
        }
    }

    #[test]
    fn dst_escaping_root_is_refused() {
        assert!(normalize_dst("/../etc").is_err());
        assert!(normalize_dst("a/../../b").is_err());
        assert_eq!(normalize_dst("/a/./b//c/../d/").unwrap(), "a/b/d");
        assert_eq!(normalize_dst("rel/x").unwrap(), "rel/x");
        assert_eq!(normalize_dst("/").unwrap(), "");
    }

    #[test]
    fn scratch_needs_a_platform() {
        let e = err("[image.a]\nbase = \"scratch\"\n");
        assert!(e.contains("needs `platform`"), "{e}");
    }

    #[test]
    fn build_order_puts_bases_first_and_names_cycles() {
        let bf = parse(
            "[image.app]\nbase = \":mid\"\n[image.mid]\nbase = \":root\"\n[image.root]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n[image.other]\nbase = \"scratch\"\nplatform = \"linux/arm64\"\n",
        )
        .unwrap();
        let names: Vec<_> = bf
            .build_order(&["app".into()])
            .unwrap()
            .iter()
            .map(|i| i.name.clone())
            .collect();
        assert_eq!(names, ["root", "mid", "app"]);
        assert_eq!(bf.build_order(&[]).unwrap().len(), 4);
        let bf = parse("[image.a]\nbase = \":b\"\n[image.b]\nbase = \":a\"\n").unwrap();
        let e = bf.build_order(&[]).unwrap_err().to_string();
        assert!(e.contains("cycle: a -> b -> a"), "{e}");
    }

    #[test]
    fn one_tag_on_two_images_is_refused() {
        let e = err("[image.a]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\ntags = [\"x:1\"]\n\
                     [image.b]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\ntags = [\"docker.io/library/x:1\"]\n");
        assert!(e.contains("both have the tag x:1"), "{e}");
    }

    #[test]
    fn platform_aliases_normalise() {
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("linux/aarch64").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("Linux/amd64").is_err());
    }
}
