//! Building the images of a build file: base → config → layers → manifest
//! (→ index), every blob it makes into the store. Nothing here reads the
//! wall clock for the image: the one timestamp is SOURCE_DATE_EPOCH or
//! [`crate::epoch::DEFAULT_EPOCH`].
//!
//! A build is a graph of tasks run in parallel within one budget of cores
//! ([`crate::jobs`]): per platform of each image, loading the base, one
//! task per layer, and assembling config and manifest; per multi-platform
//! image, the index. Layers do not depend on the base, so every layer of
//! every image can be laid down at once; the exception is a layer whose
//! `src` names the platform of an image that takes its platform from the
//! base, which waits for the base. An image is assembled only once its base
//! (another image of the file, for `:NAME`) is. With
//! [`BuildOptions::fetch_layers`], the layers a registry base lacks in the
//! store are fetched by tasks of the same graph once the base is loaded.
//! Results are collected in build order, so nothing in the output depends
//! on which task finished first.

mod accounts;
mod assemble;
mod expand;
pub mod heal;
pub mod inputs;
mod plan;
pub mod report;
mod tasks;

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use crate::buildfile::{BuildFile, ImageSpec, LayerSpec};
use crate::digest::Digest;
use crate::epoch;
use crate::error::{Error, Result};
use crate::image;
use crate::image::{Artifact, Image, ImageIndex, LayerDesc};
use crate::layer::{self, compress::CompressOptions, fileset, LayerCache, LayerJob, SpareCores};
use crate::media;
use crate::platform::Platform;
use crate::progress::Reporter;
use crate::reference::Reference;
use crate::stamp::{Stamp, StampSources};
use crate::store::Store;

pub use assemble::assemble;
pub use expand::expand;

/// The manifest annotation recording the digest of the base an image was
/// built on.
pub const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// How a build runs: its timestamps, its budget of cores, stamping, how
/// registry bases are reached, and what it fetches.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Seconds since the epoch for every timestamp in the image.
    pub epoch: u64,
    /// The budget of cores for the whole build: images, layers and their
    /// compression together (`--jobs`). Changes speed only, never bytes.
    pub threads: usize,
    /// `Some` to stamp the build with values from git, the clock, status
    /// files and variables; `None` keeps it reproducible.
    pub stamp: Option<StampSources>,
    /// SOURCE_DATE_EPOCH, when set (stamped builds use it for BUILD_TIMESTAMP).
    pub source_date_epoch: Option<u64>,
    /// How registry bases are reached (network, lock, offline).
    pub registry: std::sync::Arc<crate::bases::BaseOptions>,
    /// Build multi-platform images for this platform only, as single
    /// images (`--platform`); `None` builds every platform and the index.
    pub platform: Option<Platform>,
    /// Fetch the layers of registry bases the store lacks, as tasks of the
    /// build, for outputs that copy every byte (an OCI layout, a tarball).
    /// Off, a registry base stays shallow: its layers are
    /// [`crate::image::BlobLocation::Remote`], which a push streams or
    /// mounts from their repository.
    pub fetch_layers: FetchLayers,
    /// Where a layer the store lacks is looked for before it is compressed:
    /// the registries of `--cache-from` and of the tags being pushed.
    pub layer_cache: Option<std::sync::Arc<dyn LayerCache>>,
    /// Reuse nothing: every layer is laid down and compressed (`--no-cache`).
    pub no_cache: bool,
    /// Take every layer file's checksums for the SBOM (off with
    /// `--sbom none`, which then costs nothing).
    pub file_checksums: bool,
}

/// Which registry bases' missing layers a build fetches as tasks of its own
/// graph, for a sink that copies every byte.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FetchLayers {
    /// None: registry bases stay shallow (a build into the store, a push).
    #[default]
    None,
    /// Those of every image built (an OCI layout or archive).
    All,
    /// Those of every single-platform image, and of a multi-platform image
    /// only the child for this platform: what a docker tarball holds.
    OnePlatform(Platform),
}

impl BuildOptions {
    /// SOURCE_DATE_EPOCH (malformed is an error) and the machine's cores.
    pub fn from_env() -> Result<BuildOptions> {
        let sde = epoch::source_date_epoch()?;
        Ok(BuildOptions {
            epoch: sde.unwrap_or(epoch::DEFAULT_EPOCH),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            stamp: None,
            source_date_epoch: sde,
            registry: Default::default(),
            platform: None,
            fetch_layers: FetchLayers::None,
            layer_cache: None,
            no_cache: false,
            file_checksums: true,
        })
    }
}

/// What a build produced for one image of the build file.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// The image's name in the build file.
    pub name: String,
    /// What to write or push.
    pub result: Artifact,
    /// Per platform built, in the build file's order (one entry for a
    /// single-platform image): its manifest and how each layer was made.
    pub platforms: Vec<PlatformReport>,
    /// The documents attached to its images (SBOM, provenance), their
    /// blobs in the store; empty when none were made.
    pub referrers: Vec<crate::sbom::artifact::Referrer>,
}

/// One platform of a built image.
#[derive(Debug, Clone)]
pub struct PlatformReport {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// The digest of the platform's manifest.
    pub manifest_digest: Digest,
    /// The digest of the platform's config.
    pub config_digest: Digest,
    /// The image's own layers (not its base's), in order.
    pub layers: Vec<LayerReport>,
    /// When config and manifest were assembled, in milliseconds since the
    /// build started: begun at `started_ms`, done at `finished_ms`.
    pub started_ms: u64,
    /// See `started_ms`.
    pub finished_ms: u64,
}

/// How one layer of an image was made.
#[derive(Debug, Clone)]
pub struct LayerReport {
    /// The layer's name in the build file.
    pub name: String,
    /// The digest of the compressed blob.
    pub digest: Digest,
    /// The digest of the uncompressed tar stream.
    pub diff_id: Digest,
    /// The compressed blob's size in bytes.
    pub size: u64,
    /// The layer was already in the store and nothing was compressed.
    pub reused: bool,
    /// The layer was found through this cache source (a registry
    /// reference) and nothing was compressed.
    pub cached_from: Option<String>,
    /// When the layer was laid down, in milliseconds since the build
    /// started: begun at `started_ms`, done at `finished_ms`.
    pub started_ms: u64,
    /// See `started_ms`.
    pub finished_ms: u64,
}

impl LayerReport {
    /// `"rebuilt"`, `"reused"` (from the store) or `"cached"` (from a cache
    /// source), as the reports spell it.
    pub fn status(&self) -> &'static str {
        match (&self.cached_from, self.reused) {
            (Some(_), _) => "cached",
            (None, true) => "reused",
            (None, false) => "rebuilt",
        }
    }
}

/// Builds `targets` (every image when empty) and the images they are based
/// on, bases first, in parallel within `opts.threads`. Returns every image
/// built, in build order.
pub fn build(
    file: &BuildFile,
    targets: &[String],
    store: &Store,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<BuiltImage>> {
    let order = file.build_order(targets)?;
    let stamp = match &opts.stamp {
        Some(sources) => Stamp::stamped(&file.stamp, sources, &file.dir, opts.source_date_epoch)?,
        None => Stamp::unstamped(&file.stamp, opts.epoch)?,
    };
    let plan = plan::plan(&order, opts.platform.as_ref())?;
    // Expanded up front, so a stamp problem or two images ending up with
    // one tag is reported before any work is done.
    let tags = expand_tags(&order, &stamp)?;
    let work = tasks::Work::new(&order, &plan, &tags, &stamp, opts)?;
    work.run(&tasks::Context {
        store,
        opts,
        reporter,
        stamp: &stamp,
        start: Instant::now(),
    })?;
    Ok(work.collect())
}

/// Per image in build order, its tags as full references: the declared
/// ones expanded, else `NAME:latest`. Two images may not share one.
fn expand_tags(order: &[&ImageSpec], stamp: &Stamp) -> Result<Vec<Vec<String>>> {
    let mut tags: Vec<Vec<String>> = Vec::new();
    let mut tag_owner: HashMap<String, &str> = HashMap::new();
    for spec in order {
        let values = expand::expand_spec(spec, stamp)?;
        let mut refs = if values.tags.is_empty() {
            vec![Reference::parse_tagged(&format!("{}:latest", spec.name))?]
        } else {
            values.tags
        };
        // Two templates of one image may expand alike (both `unstamped`).
        let mut seen = HashSet::new();
        refs.retain(|t| seen.insert(t.to_string()));
        for t in &refs {
            if let Some(other) = tag_owner.insert(t.to_string(), &spec.name) {
                return Err(Error::BuildFile {
                    location: spec.location.clone(),
                    message: format!(
                        "images {other:?} and {:?} both get the tag {}",
                        spec.name,
                        t.familiar()
                    ),
                });
            }
        }
        tags.push(refs.iter().map(|t| t.to_string()).collect());
    }
    Ok(tags)
}

/// The exact entries of a layer, from the file system.
fn resolve(label: &str, spec: &LayerSpec, opts: &BuildOptions) -> Result<fileset::Resolved> {
    fileset::resolve_marked(label, spec, spec.mtime.unwrap_or(opts.epoch))
}

/// Lays down one layer of the image `label` into the store with up to
/// `threads` compression threads.
fn lay_down(
    label: &str,
    spec: &LayerSpec,
    entries: &[fileset::Entry],
    cores: Cores<'_>,
    store: &Store,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<(LayerDesc, LayerReport)> {
    let job = LayerJob {
        image: label,
        name: &spec.name,
        entries,
        compress: CompressOptions {
            compression: spec.compression,
            level: spec.compression_level,
            threads: cores.threads,
        },
        cache: opts.layer_cache.as_deref(),
        cold: opts.no_cache,
        checksums: opts.file_checksums,
        spare: cores.spare,
    };
    let done = layer::build(store, &job, reporter)?;
    let report = LayerReport {
        name: spec.name.clone(),
        digest: done.desc.digest,
        diff_id: done.desc.diff_id,
        size: done.desc.size,
        reused: done.reused,
        cached_from: done.cached_from,
        started_ms: 0,
        finished_ms: 0,
    };
    Ok((done.desc, report))
}

/// The cores a layer may use: its share of the budget, and the spare ones
/// it may take when it needs them.
struct Cores<'s> {
    threads: usize,
    spare: Option<&'s dyn SpareCores>,
}

impl Cores<'_> {
    fn only(threads: usize) -> Cores<'static> {
        Cores {
            threads,
            spare: None,
        }
    }
}

/// Writes the index over `children` into the store.
pub fn build_index(
    name: &str,
    children: Vec<Image>,
    tags: Vec<String>,
    annotations: std::collections::BTreeMap<String, String>,
    store: &Store,
) -> Result<ImageIndex> {
    let refs: Vec<&Image> = children.iter().collect();
    let bytes = image::oci_index(&refs, &annotations);
    let (digest, _) = store.put(&bytes)?;
    Ok(ImageIndex {
        name: name.to_string(),
        bytes,
        digest,
        media_type: media::OCI_INDEX.to_string(),
        children,
        tags,
        annotations,
    })
}
