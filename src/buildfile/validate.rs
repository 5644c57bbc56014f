//! Validation: the raw schema into plain, checked values, with every error
//! located by file, line, column and declaration path.

use std::collections::BTreeMap;
use std::path::Path;

use globset::{Glob, GlobSetBuilder};
use toml::Spanned;

use super::raw::{RawEntry, RawImage, RawLayer, RawOverride, RawStamp};
use super::values::{
    check_owner_names, normalize_dst, normalize_port, parse_mode, parse_owner, valid_image_name,
};
use super::{
    BaseSpec, EntrySpec, EntrySpecKind, ImageSpec, LayerSpec, Owner, Platform, PlatformOverride,
    Platforms, TagSpec, Templated,
};
use crate::buildfile::{LocalSource, ACCOUNTS_LAYER};
use crate::error::{Cause, Error, Result};
use crate::media::Compression;
use crate::reference::{mask_userinfo, Reference};
use crate::stamp::{self, StampSpec};

/// Byte offset to `line:column`, both 1-based.
pub(super) fn line_col(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
        + 1;
    format!("{line}:{col}")
}

/// Where `KEY = ...` is written in the `[stamp]` table that starts at
/// `start`: toml gives no spans to the keys of a flattened table, so the
/// line is found in the text, up to the next table header (a key written
/// some other way gets the table's location).
fn key_line(text: &str, start: usize, key: &str) -> Option<usize> {
    let mut offset = start;
    for (i, line) in text.get(start..)?.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_start();
        if i > 0 && trimmed.starts_with('[') {
            return None;
        }
        let rest = trimmed
            .strip_prefix(key)
            .or_else(|| trimmed.strip_prefix(&format!("\"{key}\"")));
        if rest.is_some_and(|r| r.trim_start().starts_with('=')) {
            return Some(offset + (line.len() - trimmed.len()));
        }
        offset += line.len();
    }
    None
}

/// Validation context: the source text for locations.
pub(super) struct Cx<'a> {
    pub(super) text: &'a str,
    pub(super) file: &'a str,
    pub(super) dir: &'a Path,
}

impl Cx<'_> {
    pub(super) fn loc(&self, span: std::ops::Range<usize>, path: &str) -> String {
        format!("{}:{} ({path})", self.file, line_col(self.text, span.start))
    }

    pub(super) fn err(&self, location: &str, message: impl Into<String>) -> Error {
        Error::BuildFile {
            location: location.to_string(),
            message: message.into(),
        }
    }

    fn err_because(
        &self,
        location: &str,
        message: impl Into<String>,
        cause: impl Into<Cause>,
    ) -> Error {
        Error::declaration(location, message, cause)
    }

    pub(super) fn image(&self, name: &str, raw: Spanned<RawImage>) -> Result<ImageSpec> {
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
        let platforms = self.platforms(&path, raw.platform.as_ref(), raw.platforms.as_ref())?;
        if base == BaseSpec::Scratch && platforms == Platforms::Base {
            return Err(self.err(
                &location,
                "a \"scratch\" image needs `platform` (e.g. \"linux/amd64\") or `platforms`",
            ));
        }
        let overrides = self.overrides(name, &path, &location, raw.overrides, &platforms)?;
        self.config_values(&path, &location, &raw.env, raw.workdir.as_deref())?;
        let exposed_ports = raw
            .exposed_ports
            .iter()
            .map(|p| {
                let loc = self.loc(p.span(), &format!("{path}.exposed_ports"));
                normalize_port(p.get_ref()).map_err(|m| self.err(&loc, m))
            })
            .collect::<Result<_>>()?;
        let volumes = self.volumes(&path, &raw.volumes)?;
        let tags = self.tags(&path, &raw.tags)?;
        let created = self.created(&path, raw.created.as_ref())?;
        self.templated_maps(&path, &location, [&raw.env, &raw.labels, &raw.annotations])?;
        let compression = self.compression(
            raw.compression.as_ref(),
            raw.compression_level.as_ref(),
            &path,
            (Compression::Gzip, None),
        )?;
        let layers = self.layers(name, &path, raw.layer, compression)?;
        let healthcheck = raw
            .healthcheck
            .as_ref()
            .map(|h| self.healthcheck(&path, h))
            .transpose()?;
        let shell = self.shell(&path, raw.shell.as_ref())?;
        let accounts = raw.accounts.map(|a| self.accounts(&path, a)).transpose()?;
        if accounts.is_some() && layers.iter().any(|l| l.name == ACCOUNTS_LAYER) {
            return Err(self.err(
                &location,
                format!(
                    "image {name:?} declares accounts, whose generated layer is named \
                     {ACCOUNTS_LAYER:?}: name the declared layer otherwise"
                ),
            ));
        }

        Ok(ImageSpec {
            name: name.to_string(),
            location,
            base,
            platforms,
            overrides,
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
            healthcheck,
            shell,
            onbuild: self.onbuild(&path, raw.onbuild.as_ref())?,
            created,
            tags,
            layers,
            tests: self.tests(&path, &raw.tests)?,
            compression: compression.0,
            compression_level: compression
                .1
                .unwrap_or_else(|| compression.0.default_level()),
            accounts,
            sbom: raw.sbom.unwrap_or(true),
        })
    }

    /// `created`: a template, checked now, filled when the image is built.
    fn created(&self, path: &str, c: Option<&Spanned<String>>) -> Result<Option<Templated>> {
        let Some(c) = c else { return Ok(None) };
        let loc = self.loc(c.span(), &format!("{path}.created"));
        self.templated_ok(c.get_ref(), &loc)?;
        Ok(Some(Templated {
            text: c.get_ref().clone(),
            location: loc,
        }))
    }

    /// The values of `env`, `labels` and `annotations`, which may be
    /// templates: each checked to be a well-formed one.
    fn templated_maps(
        &self,
        path: &str,
        location: &str,
        [env, labels, annotations]: [&BTreeMap<String, String>; 3],
    ) -> Result<()> {
        for (what, map) in [
            ("env", env),
            ("labels", labels),
            ("annotations", annotations),
        ] {
            for (k, v) in map {
                self.templated_ok(v, &format!("{location} ({path}.{what}.{k:?})"))?;
            }
        }
        Ok(())
    }

    /// `tests`: relative paths, kept joined to the build file's directory.
    fn tests(&self, path: &str, tests: &[Spanned<String>]) -> Result<Vec<std::path::PathBuf>> {
        tests
            .iter()
            .map(|t| match t.get_ref().as_str() {
                "" => Err(self.err(
                    &self.loc(t.span(), &format!("{path}.tests")),
                    "an empty path",
                )),
                p if Path::new(p).is_absolute() => Err(self.err(
                    &self.loc(t.span(), &format!("{path}.tests")),
                    "a test config is named relative to the build file",
                )),
                p => Ok(self.dir.join(p)),
            })
            .collect()
    }

    /// `platform` or `platforms` (refusing both, an empty list and a
    /// platform listed twice).
    fn platforms(
        &self,
        path: &str,
        one: Option<&Spanned<String>>,
        list: Option<&Spanned<Vec<Spanned<String>>>>,
    ) -> Result<Platforms> {
        let one = match one {
            Some(p) => Some(
                Platform::parse(p.get_ref())
                    .map_err(|m| self.err(&self.loc(p.span(), &format!("{path}.platform")), m))?,
            ),
            None => None,
        };
        let Some(list) = list else {
            return Ok(one.map_or(Platforms::Base, Platforms::One));
        };
        let loc = self.loc(list.span(), &format!("{path}.platforms"));
        if one.is_some() {
            return Err(self.err(
                &loc,
                "`platform` and `platforms` exclude each other: give one platform, or a list",
            ));
        }
        if list.get_ref().is_empty() {
            return Err(self.err(&loc, "`platforms` is empty; list at least one platform"));
        }
        let mut platforms = Vec::new();
        for p in list.get_ref() {
            let at = self.loc(p.span(), &format!("{path}.platforms"));
            let parsed = Platform::parse(p.get_ref()).map_err(|m| self.err(&at, m))?;
            if platforms.contains(&parsed) {
                return Err(self.err(&at, format!("platform {parsed} is listed twice")));
            }
            platforms.push(parsed);
        }
        Ok(Platforms::Many(platforms))
    }

    /// `[image.NAME.overrides."os/arch"]`, each for a platform the image is
    /// built for (any, when it takes its platform from its base).
    fn overrides(
        &self,
        name: &str,
        path: &str,
        location: &str,
        raw: BTreeMap<String, Spanned<RawOverride>>,
        platforms: &Platforms,
    ) -> Result<BTreeMap<Platform, PlatformOverride>> {
        let mut overrides = BTreeMap::new();
        let declared = platforms.declared();
        for (key, o) in raw {
            let at = self.loc(o.span(), &format!("{path}.overrides.{key:?}"));
            let p = Platform::parse(&key).map_err(|m| self.err(&at, m))?;
            if !declared.is_empty() && !declared.contains(&p) {
                return Err(self.err(
                    &at,
                    format!(
                        "image {name:?} is not built for {p} (it is built for {})",
                        declared
                            .iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            let o = o.into_inner();
            for k in o.env.keys() {
                if k.is_empty() || k.contains('=') {
                    return Err(self.err(
                        &at,
                        format!("env: variable name {k:?} must be non-empty and contain no '='"),
                    ));
                }
            }
            for (what, map) in [("env", &o.env), ("labels", &o.labels)] {
                for (k, v) in map {
                    self.templated_ok(v, &format!("{at} ({what}.{k:?})"))?;
                }
            }
            let opath = format!("{path}.overrides.{key:?}");
            let healthcheck = o
                .healthcheck
                .as_ref()
                .map(|h| self.healthcheck(&opath, h))
                .transpose()?;
            let shell = self.shell(&opath, o.shell.as_ref())?;
            let value = PlatformOverride {
                location: at,
                entrypoint: o.entrypoint,
                cmd: o.cmd,
                env: o.env,
                labels: o.labels,
                healthcheck,
                shell,
                onbuild: self.onbuild(&opath, o.onbuild.as_ref())?,
            };
            if overrides.insert(p.clone(), value).is_some() {
                return Err(self.err(
                    location,
                    format!("{path}.overrides names platform {p} twice (under two spellings)"),
                ));
            }
        }
        Ok(overrides)
    }

    /// The image's `env` names and `workdir`.
    fn config_values(
        &self,
        path: &str,
        location: &str,
        env: &BTreeMap<String, String>,
        workdir: Option<&str>,
    ) -> Result<()> {
        for key in env.keys() {
            if key.is_empty() || key.contains('=') {
                return Err(self.err(
                    location,
                    format!(
                        "{path}.env: variable name {key:?} must be non-empty and contain no '='"
                    ),
                ));
            }
        }
        if let Some(w) = workdir {
            if !w.starts_with('/') {
                return Err(self.err(
                    location,
                    format!("{path}.workdir {w:?} must be an absolute path"),
                ));
            }
        }
        Ok(())
    }

    fn volumes(&self, path: &str, raw: &[Spanned<String>]) -> Result<Vec<String>> {
        let mut volumes = Vec::new();
        for v in raw {
            if !v.get_ref().starts_with('/') {
                let loc = self.loc(v.span(), &format!("{path}.volumes"));
                return Err(self.err(
                    &loc,
                    format!("volume {:?} must be an absolute path", v.get_ref()),
                ));
            }
            volumes.push(v.get_ref().clone());
        }
        Ok(volumes)
    }

    /// `tags`: each a reference already, unless it holds templates.
    fn tags(&self, path: &str, raw: &[Spanned<String>]) -> Result<Vec<TagSpec>> {
        let mut tags = Vec::new();
        for (i, t) in raw.iter().enumerate() {
            let loc = self.loc(t.span(), &format!("{path}.tags[{i}]"));
            self.templated_ok(t.get_ref(), &loc)?;
            let reference = if stamp::is_template(t.get_ref()) {
                None
            } else {
                Some(
                    Reference::parse_tagged(t.get_ref())
                        .map_err(|e| self.err_because(&loc, "not a valid tag", e))?,
                )
            };
            tags.push(TagSpec {
                template: Templated {
                    text: t.get_ref().clone(),
                    location: loc,
                },
                reference,
            });
        }
        Ok(tags)
    }

    /// The image's layers, each named once.
    fn layers(
        &self,
        name: &str,
        path: &str,
        raw: Vec<Spanned<RawLayer>>,
        (img_comp, img_level): (Compression, Option<i32>),
    ) -> Result<Vec<LayerSpec>> {
        let mut layers = Vec::new();
        for (i, l) in raw.into_iter().enumerate() {
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
        Ok(layers)
    }

    /// Refuses a malformed template early, where it is declared.
    fn templated_ok(&self, text: &str, loc: &str) -> Result<()> {
        if stamp::is_template(text) || text.contains("}}") {
            stamp::template_keys(text, loc)?;
        }
        Ok(())
    }

    pub(super) fn stamp(&self, raw: Spanned<RawStamp>) -> Result<StampSpec> {
        let span = raw.span();
        let loc = self.loc(span.clone(), "stamp");
        let raw = raw.into_inner();
        let mut locations = std::collections::BTreeMap::new();
        for (k, v) in &raw.defs {
            stamp::validate_key(k).map_err(|m| self.err(&loc, m))?;
            self.templated_ok(v, &format!("{loc} [stamp] {k}"))?;
            let at = match key_line(self.text, span.start, k) {
                Some(offset) => self.loc(offset..offset, &format!("stamp.{k}")),
                None => loc.clone(),
            };
            locations.insert(k.clone(), at);
        }
        for k in raw.unstamped.keys() {
            stamp::validate_key(k).map_err(|m| self.err(&loc, format!("[stamp.unstamped] {m}")))?;
        }
        Ok(StampSpec {
            defs: raw.defs,
            unstamped: raw.unstamped,
            locations,
        })
    }

    fn base(&self, s: &str, loc: &str) -> Result<BaseSpec> {
        if s == "scratch" {
            return Ok(BaseSpec::Scratch);
        }
        if let Some(other) = s.strip_prefix(':') {
            if !valid_image_name(other) {
                let (s, other) = (mask_userinfo(s), mask_userinfo(other));
                return Err(self.err(loc, format!("base {s:?}: {other:?} is not an image name")));
            }
            return Ok(BaseSpec::Image(other.to_string()));
        }
        if let Some(local) = LocalSource::parse(s, self.dir) {
            return local
                .map(BaseSpec::Local)
                .map_err(|e| self.err_because(loc, "not a valid local base", e));
        }
        s.parse::<Reference>().map(BaseSpec::Registry).map_err(|e| {
            self.err_because(
                loc,
                "base must be \"scratch\", \":IMAGE\", \"oci:PATH[:TAG]\", \
                 \"docker-archive:PATH\" or a registry reference",
                e,
            )
        })
    }

    /// A `cache_from` entry: a registry reference, by tag or digest.
    pub(super) fn cache_source(&self, raw: &Spanned<String>) -> Result<Reference> {
        let loc = self.loc(raw.span(), "cache_from");
        raw.get_ref()
            .parse::<Reference>()
            .map_err(|e| self.err_because(&loc, "cache_from takes registry references", e))
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
        let kind = if raw.src.is_some() {
            self.copy_entry(&location, raw, mode, dir_mode)?
        } else if raw.dir.is_some() {
            self.dir_entry(&location, raw, mode)?
        } else {
            self.symlink_entry(&location, raw)?
        };
        Ok(EntrySpec {
            location,
            owner,
            kind,
        })
    }

    /// Refuses `key` on an entry of `kind`, to which it does not apply.
    fn only_for(&self, location: &str, present: bool, key: &str, kind: &str) -> Result<()> {
        if present {
            Err(self.err(
                location,
                format!("`{key}` does not apply to a `{kind}` entry"),
            ))
        } else {
            Ok(())
        }
    }

    /// `{ src, dst, exclude, mode, dir_mode }`.
    fn copy_entry(
        &self,
        location: &str,
        raw: RawEntry,
        mode: Option<u32>,
        dir_mode: Option<u32>,
    ) -> Result<EntrySpecKind> {
        let err = |m: String| self.err(location, m);
        let src_text = raw.src.expect("a src entry");
        self.only_for(location, raw.target.is_some(), "target", "src")?;
        let dst_text = raw
            .dst
            .ok_or_else(|| self.err(location, format!("`src = {src_text:?}` needs a `dst`")))?;
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
                    self.err_because(location, format!("exclude pattern {pat:?}"), e)
                })?;
                b.add(glob);
            }
            Some(
                b.build()
                    .map_err(|e| self.err_because(location, "exclude", e))?,
            )
        };
        Ok(EntrySpecKind::Copy {
            src: self.dir.join(&src_text),
            src_text,
            dst_is_dir: dst_text.ends_with('/') || dst.is_empty(),
            dst,
            mode,
            dir_mode,
            exclude,
        })
    }

    /// `{ dir, mode }`.
    fn dir_entry(&self, location: &str, raw: RawEntry, mode: Option<u32>) -> Result<EntrySpecKind> {
        let d = raw.dir.expect("a dir entry");
        self.only_for(location, raw.dst.is_some(), "dst", "dir")?;
        self.only_for(location, raw.target.is_some(), "target", "dir")?;
        self.only_for(location, !raw.exclude.is_empty(), "exclude", "dir")?;
        self.only_for(
            location,
            raw.dir_mode.is_some(),
            "dir_mode",
            "dir (use `mode`)",
        )?;
        let path = normalize_dst(&d).map_err(|m| self.err(location, m))?;
        if path.is_empty() {
            return Err(self.err(
                location,
                "`dir = \"/\"`: the root directory cannot be declared",
            ));
        }
        Ok(EntrySpecKind::Dir { path, mode })
    }

    /// `{ symlink, target }`.
    fn symlink_entry(&self, location: &str, raw: RawEntry) -> Result<EntrySpecKind> {
        let err = |m: String| self.err(location, m);
        let link = raw.symlink.expect("a symlink entry");
        self.only_for(location, raw.dst.is_some(), "dst", "symlink")?;
        self.only_for(location, raw.mode.is_some(), "mode", "symlink")?;
        self.only_for(location, raw.dir_mode.is_some(), "dir_mode", "symlink")?;
        self.only_for(location, !raw.exclude.is_empty(), "exclude", "symlink")?;
        let target = raw
            .target
            .ok_or_else(|| self.err(location, format!("`symlink = {link:?}` needs a `target`")))?;
        if target.is_empty() {
            return Err(err("symlink `target` is empty".into()));
        }
        // A tar header ends a name at its first NUL, so the link would
        // point somewhere other than what was written.
        if target.contains('\0') {
            return Err(err(format!(
                "symlink `target` {target:?} contains a NUL byte"
            )));
        }
        let path = normalize_dst(&link).map_err(err)?;
        if path.is_empty() {
            return Err(err("`symlink = \"/\"`: the root cannot be a symlink".into()));
        }
        Ok(EntrySpecKind::Symlink { path, target })
    }
}
