//! A base image on local disk, as a build file names it: where it is, not
//! how it is read (that is `layout::read`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A base image that lives on local disk, as a build file names it:
/// `oci:PATH[:TAG]` or `docker-archive:PATH[:TAG]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalSource {
    /// `oci:PATH[:TAG]`: an OCI image layout directory.
    OciLayout {
        /// The layout directory, resolved against the build file's.
        path: PathBuf,
        /// Which image to take (by name or digest) when the layout holds
        /// several.
        tag: Option<String>,
    },
    /// `docker-archive:PATH[:TAG]`: a `docker save` tarball.
    DockerArchive {
        /// The tarball, resolved against the build file's directory.
        path: PathBuf,
        /// Which image to take (by one of its tags) when the archive
        /// holds several.
        tag: Option<String>,
    },
}

impl LocalSource {
    /// Parses `oci:...` / `docker-archive:...`; `None` if `s` is neither.
    /// Relative paths are resolved against `base_dir`.
    ///
    /// Paths may contain `:` and tags (full references such as
    /// `example.com:5000/app:1`) may too, so the split is decided in this
    /// order:
    /// 1. if the whole text names an existing file or directory, it is the
    ///    path and there is no tag;
    /// 2. otherwise the first `:` whose left side names an existing file or
    ///    directory splits path from tag (this is how `skopeo` reads
    ///    `docker-archive:x.tar:busybox:latest`);
    /// 3. otherwise (nothing exists yet) the text after the last `:` is the
    ///    tag if it contains no `/`, and everything is the path if it does.
    ///
    /// A trailing `:` with nothing after it is an error.
    pub fn parse(s: &str, base_dir: &Path) -> Option<Result<LocalSource>> {
        let (docker, rest) = if let Some(rest) = s.strip_prefix("oci:") {
            (false, rest)
        } else if let Some(rest) = s.strip_prefix("docker-archive:") {
            (true, rest)
        } else {
            return None;
        };
        Some(split_location(s, rest, base_dir).map(|(path, tag)| {
            if docker {
                LocalSource::DockerArchive { path, tag }
            } else {
                LocalSource::OciLayout { path, tag }
            }
        }))
    }

    /// The directory or tarball the image is read from.
    pub fn path(&self) -> &Path {
        match self {
            LocalSource::OciLayout { path, .. } | LocalSource::DockerArchive { path, .. } => path,
        }
    }

    /// The tag that picks one image of several, if given.
    pub fn tag(&self) -> Option<&str> {
        match self {
            LocalSource::OciLayout { tag, .. } | LocalSource::DockerArchive { tag, .. } => {
                tag.as_deref()
            }
        }
    }
}

fn split_location(whole: &str, rest: &str, base_dir: &Path) -> Result<(PathBuf, Option<String>)> {
    let bad = |reason: &str| Error::InvalidReference {
        reference: whole.to_string(),
        reason: reason.to_string(),
    };
    if rest.is_empty() || rest.starts_with(':') {
        return Err(bad("the path is empty"));
    }
    if rest.ends_with(':') {
        return Err(bad("the tag after the last ':' is empty"));
    }
    let resolve = |p: &str| base_dir.join(p);
    if resolve(rest).exists() {
        return Ok((resolve(rest), None));
    }
    for (i, _) in rest.match_indices(':') {
        if resolve(&rest[..i]).exists() {
            return Ok((resolve(&rest[..i]), Some(rest[i + 1..].to_string())));
        }
    }
    match rest.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => Ok((resolve(path), Some(tag.to_string()))),
        _ => Ok((resolve(rest), None)),
    }
}
