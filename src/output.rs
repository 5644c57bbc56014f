//! Writing images out: which sink a path means, which image of a
//! multi-platform one a docker tarball holds, a build file built and
//! written in one go (healing the store on the way), and an image copied
//! from a registry into a sink.

use std::cell::Cell;
use std::io::{self, Write};
use std::path::Path;

use crate::bases::BaseOptions;
use crate::build::{heal, BuiltImage, FetchLayers};
use crate::error::{Error, Result};
use crate::image::{Artifact, Image};
use crate::layout::write::{self, Format};
use crate::platform::{host_platform, Platform};
use crate::progress::{Event, Reporter};
use crate::project::{self, Inputs};
use crate::reference::Reference;
use crate::sbom::artifact::Referrer;
use crate::store::Store;

/// The path that means standard output.
pub const STDOUT: &str = "-";

/// Where a build is written, and as what.
#[derive(Debug, Clone, Copy)]
pub struct Output<'a> {
    /// A file or directory, or [`STDOUT`].
    pub path: &'a Path,
    /// The sink's format, from [`format_of`] or given.
    pub format: Format,
}

impl Output<'_> {
    /// Whether the output goes to standard output.
    pub fn is_stdout(&self) -> bool {
        self.path == Path::new(STDOUT)
    }
}

/// The format to write `out` in: `explicit`, else a docker tarball for a
/// `.tar` path or standard output, and an OCI layout for a directory (an
/// existing one, or a path ending in `/`). An OCI layout cannot go to
/// standard output.
pub fn format_of(out: &Path, explicit: Option<Format>) -> Result<Format> {
    let f = match explicit {
        Some(f) => f,
        None => {
            let s = out.to_string_lossy();
            if s == STDOUT || s.ends_with(".tar") {
                Format::Docker
            } else if s.ends_with('/') || out.is_dir() {
                Format::Oci
            } else {
                return Err(Error::Usage(format!(
                    "cannot tell the output format of {s:?}: use a .tar path, a directory \
                     ending in /, or --format docker|oci|oci-archive"
                )));
            }
        }
    };
    if f == Format::Oci && out == Path::new(STDOUT) {
        return Err(Error::Usage(
            "an OCI layout directory cannot be written to stdout; use --format oci-archive".into(),
        ));
    }
    Ok(f)
}

/// The images asked for, or every image when none was named.
pub fn selected<'a>(built: &'a [BuiltImage], names: &[String]) -> Vec<&'a BuiltImage> {
    built
        .iter()
        .filter(|b| names.is_empty() || names.contains(&b.name))
        .collect()
}

/// Builds the images of a build file and writes those asked for to
/// `output`, if any. A store blob found damaged on the way is moved aside
/// and the build and its output made again; a tarball half streamed to
/// standard output cannot be taken back, so that run fails and the next
/// one heals. Reports each file output once everything is written.
pub fn build_and_write(
    inputs: &Inputs<'_>,
    output: Option<Output<'_>>,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<Vec<BuiltImage>> {
    let streamed = Cell::new(false);
    let built = heal::healing(
        store,
        reporter,
        || !streamed.get(),
        || {
            let mut prepared = project::prepare(inputs)?;
            // A sink copies bytes: registry bases' layers are fetched by the
            // build graph, not one by one after it.
            prepared.options.fetch_layers = match output {
                None => FetchLayers::None,
                Some(o) if o.format == Format::Docker => FetchLayers::OnePlatform(host_platform()),
                Some(_) => FetchLayers::All,
            };
            let built = prepared.build(inputs.images, store, reporter)?;
            if let Some(out) = output {
                streamed.set(out.is_stdout());
                let chosen = selected(&built, inputs.images);
                write(&chosen, &prepared.options.registry, store, out, reporter)?;
            }
            Ok(built)
        },
    )?;
    if let Some(out) = output.filter(|o| !o.is_stdout()) {
        for b in selected(&built, inputs.images) {
            reporter.report(Event::OutputWritten {
                image: &b.name,
                path: &out.path.display().to_string(),
            });
        }
    }
    Ok(built)
}

/// Writes `selected` to `out`, fetching the registry bases' layers first.
pub fn write(
    selected: &[&BuiltImage],
    registry: &BaseOptions,
    store: &Store,
    out: Output<'_>,
    reporter: &dyn Reporter,
) -> Result<()> {
    let mut chosen = Vec::new();
    if out.format == Format::Docker {
        for b in selected {
            chosen.extend(docker_child(b, reporter)?.map(Artifact::Image));
        }
    }
    let mut chosen = chosen.iter();
    let roots: Vec<&Artifact> = selected
        .iter()
        .map(|b| match &b.result {
            Artifact::Index(_) if out.format == Format::Docker => {
                chosen.next().expect("one child per index")
            }
            a => a,
        })
        .collect();
    let images: Vec<&Image> = roots.iter().flat_map(|r| r.images()).collect();
    // Registry bases are loaded without their layers; a sink needs them.
    registry.ensure_blobs(&images, store, reporter)?;
    // Documents about the images go beside them in OCI layouts and
    // archives; a docker tarball's loaders would not keep them.
    let referrers: Vec<&Referrer> = selected.iter().flat_map(|b| &b.referrers).collect();
    write_roots(&roots, &referrers, store, out)
}

/// The image a docker tarball holds of a multi-platform image: it holds
/// single images, so it takes the host's platform (a build with
/// --platform has no multi-platform images left), tagged as the index is,
/// and says so.
fn docker_child(b: &BuiltImage, reporter: &dyn Reporter) -> Result<Option<Image>> {
    let Artifact::Index(x) = &b.result else {
        return Ok(None);
    };
    let host = host_platform();
    let built = x.platforms().join(", ");
    let Some(child) = x.child(&host) else {
        return Err(Error::NeedsPlatform {
            image: b.name.clone(),
            platforms: x.platforms(),
            host: Some(host.to_string()),
        });
    };
    reporter.report(Event::TarballPlatform {
        image: &b.name,
        platform: &host.to_string(),
        built: &built,
    });
    let mut child = child.clone();
    child.tags = x.tags.clone();
    Ok(Some(child))
}

fn write_roots(
    roots: &[&Artifact],
    referrers: &[&Referrer],
    store: &Store,
    out: Output<'_>,
) -> Result<()> {
    if out.is_stdout() {
        let stdout = io::BufWriter::new(io::stdout().lock());
        let mut w = write::write_archive_with(roots, referrers, store, out.format, stdout)?;
        return w.flush().map_err(|e| Error::io("<stdout>", e));
    }
    write::write_archive_file_with(roots, referrers, store, out.format, out.path)
}

/// Copies the image `reference` names from its registry into `out`: an OCI
/// layout directory, or a docker tarball for a `.tar` path. From a
/// multi-platform image it takes `platform` (default: this machine's); an
/// image for another platform than the one asked for is an error. The
/// image written is tagged with the reference when that has a tag, and returned.
pub fn pull(
    reference: &Reference,
    platform: Option<&Platform>,
    registry: &BaseOptions,
    store: &Store,
    out: &Path,
    reporter: &dyn Reporter,
) -> Result<Artifact> {
    let mut loaded = registry.load_base(reference, platform, store, reporter)?;
    if let Some(want) = platform {
        let have = loaded.image.parsed_platform().ok();
        if have.as_ref() != Some(want) {
            return Err(Error::Usage(format!(
                "{reference} is an image for {}, not {want}",
                loaded.image.platform()
            )));
        }
    }
    registry.ensure_blobs(&[&loaded.image], store, reporter)?;
    if reference.tag.is_some() {
        let mut tagged = reference.clone();
        tagged.digest = None;
        loaded.image.tags = vec![tagged.to_string()];
    }
    let format = if out.to_string_lossy().ends_with(".tar") {
        Format::Docker
    } else {
        Format::Oci
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let artifact = Artifact::Image(loaded.image);
    write::write_archive_file(&[&artifact], store, format, out)?;
    reporter.report(Event::OutputWritten {
        image: &reference.to_string(),
        path: &out.display().to_string(),
    });
    Ok(artifact)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_of_a_path_is_docker_for_tar_and_stdout_and_oci_for_directories() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(format_of(Path::new("x.tar"), None).unwrap(), Format::Docker);
        assert_eq!(format_of(Path::new(STDOUT), None).unwrap(), Format::Docker);
        assert_eq!(format_of(Path::new("out/"), None).unwrap(), Format::Oci);
        assert_eq!(format_of(dir.path(), None).unwrap(), Format::Oci);
        assert!(format_of(Path::new("x.img"), None).is_err());
        assert_eq!(
            format_of(Path::new("x.img"), Some(Format::OciArchive)).unwrap(),
            Format::OciArchive
        );
        assert!(format_of(Path::new(STDOUT), Some(Format::Oci)).is_err());
    }
}
