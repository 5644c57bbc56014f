//! A build file as the verbs work on it: loaded, its lock checked and
//! attached to how registry bases are reached, its images built; and its
//! lock made anew.
//!
//! The sinks over a build ([`crate::output`], [`crate::push`]) start here,
//! so that what a build file means (which lock, which options) is decided
//! once for all of them.
//!
//! ```no_run
//! use std::path::Path;
//! use gantry::layout::write::Format;
//! use gantry::output::{self, Output};
//! use gantry::progress::Silent;
//! use gantry::project::{self, Inputs};
//! use gantry::push::{self, PushOptions};
//! use gantry::registry::ClientOptions;
//! use gantry::store::Store;
//!
//! # fn main() -> gantry::Result<()> {
//! let store = Store::open(&Store::default_root())?;
//! let file = gantry::buildfile::BuildFile::load(Path::new("gantry.toml"))?;
//! let registry = project::base_options(ClientOptions::from_env(), false);
//! project::lock(&file, &[], &registry, &store, &Silent)?;
//!
//! let inputs = Inputs {
//!     file: Path::new("gantry.toml"),
//!     images: &[],
//!     jobs: None,
//!     platform: None,
//!     stamp: None,
//!     locked: true,
//!     client: ClientOptions::from_env(),
//!     offline: false,
//!     // Refused before any work if it is one of the build's inputs.
//!     outputs: &[("output", Path::new("images.tar"))],
//!     cache: Default::default(),
//!     sbom: true,
//! };
//! let out = Output { path: Path::new("images.tar"), format: Format::Docker };
//! output::build_and_write(&inputs, Some(out), &store, &Silent)?;
//! push::build_and_push(&inputs, &[], &PushOptions::default(), &store, &Silent)?;
//! # Ok(())
//! # }
//! ```

use std::path::Path;
use std::sync::Arc;

use crate::attest;
use crate::bases::BaseOptions;
use crate::build::{self, BuildOptions, BuiltImage, FetchLayers};
use crate::buildfile::BuildFile;
use crate::cache::RegistryCache;
use crate::error::{Error, Result};
use crate::layer::LayerCache;
use crate::lock::{self, LockFile};
use crate::platform::Platform;
use crate::progress::Reporter;
use crate::reference::Reference;
use crate::registry::ClientOptions;
use crate::stamp::StampSources;
use crate::store::Store;

/// What a build of a build file is asked for.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The build file; its lock is read from beside it.
    pub file: &'a Path,
    /// Images to build, with their bases (every image when empty).
    pub images: &'a [String],
    /// Cores the whole build may use (`None`: every core; 0 is refused).
    pub jobs: Option<usize>,
    /// Build multi-platform images for this platform only.
    pub platform: Option<Platform>,
    /// Stamp the build from these sources; `None` keeps it reproducible.
    pub stamp: Option<StampSources>,
    /// Fail unless the lock exists and pins every registry base.
    pub locked: bool,
    /// How registries are reached.
    pub client: ClientOptions,
    /// Never use the network: registry bases come from the store.
    pub offline: bool,
    /// The files the caller will write, each with the flag that names it:
    /// one that is an input of the build is refused before any work.
    pub outputs: &'a [(&'a str, &'a Path)],
    /// Where layers the store lacks are looked for, and whether to build
    /// cold.
    pub cache: CacheInputs,
    /// Attach an SBOM and provenance to every image whose build file entry
    /// does not say `sbom = false` (`--sbom none` turns it off).
    pub sbom: bool,
}

/// The build cache a build is asked to use (see [`crate::cache`]).
#[derive(Debug, Clone, Default)]
pub struct CacheInputs {
    /// `--cache-from`: sources besides the build file's `cache_from` (and,
    /// for a push, the tags being pushed).
    pub from: Vec<Reference>,
    /// `--no-cache`: reuse nothing from the store or a cache source.
    pub no_cache: bool,
}

/// A build file loaded and checked, with the options its build runs with.
#[derive(Debug)]
pub struct Prepared {
    /// The build file as validated.
    pub file: BuildFile,
    /// The build's options, with the lock attached to the registry options.
    pub options: BuildOptions,
    /// Registry references a build looks for layers in before compressing
    /// them: the build file's `cache_from`, then `--cache-from`. A sink may
    /// add its own before building (a push adds its tags).
    pub cache_sources: Vec<Reference>,
    /// Whether built images get their SBOM and provenance.
    pub sbom: bool,
}

/// Loads the build file, refuses outputs that are its inputs, checks the
/// lock (strictly with `locked`) and makes the build's options.
pub fn prepare(inputs: &Inputs<'_>) -> Result<Prepared> {
    let file = BuildFile::load(inputs.file)?;
    let lock_path = lock::path_for(inputs.file);
    for (flag, out) in inputs.outputs {
        build::inputs::check_output(&file, inputs.images, &lock_path, flag, out)?;
    }
    let mut options = BuildOptions::from_env()?;
    if let Some(j) = inputs.jobs {
        if j == 0 {
            return Err(Error::Usage("--jobs must be at least 1".into()));
        }
        options.threads = j;
    }
    options.platform = inputs.platform.clone();
    options.stamp = inputs.stamp.clone();
    let mut registry = base_options(inputs.client.clone(), inputs.offline);
    registry.lock = lock::check(&file, inputs.locked)?;
    registry.lock_path = Some(lock_path);
    registry.locked = inputs.locked;
    options.registry = Arc::new(registry);
    options.no_cache = inputs.cache.no_cache;
    options.file_checksums = inputs.sbom;
    let mut cache_sources = file.cache_from.clone();
    cache_sources.extend(inputs.cache.from.iter().cloned());
    Ok(Prepared {
        file,
        options,
        cache_sources,
        sbom: inputs.sbom,
    })
}

impl Prepared {
    /// Builds the images asked for (and their bases) into the store, with
    /// their SBOM and provenance unless turned off.
    pub fn build(
        &self,
        images: &[String],
        store: &Store,
        reporter: &dyn Reporter,
    ) -> Result<Vec<BuiltImage>> {
        let started = now();
        let cache = self.layer_cache(store);
        let mut options = self.options.clone();
        options.layer_cache = cache.clone().map(|c| c as Arc<dyn LayerCache>);
        let built = build::build(&self.file, images, store, &options, reporter);
        if let Some(c) = &cache {
            c.report_warnings(reporter);
        }
        let mut built = built?;
        if self.sbom {
            let run = attest::Run {
                file: &self.file,
                options: &self.options,
                asked: images,
                times: (started, now()),
            };
            attest::attach(&run, &mut built, store, reporter)?;
        }
        Ok(built)
    }

    /// The cache sources, being asked from now on; none offline, with
    /// `--no-cache`, or when there are none. A sink that copies bytes gets
    /// its hits downloaded and verified.
    fn layer_cache(&self, store: &Store) -> Option<Arc<RegistryCache>> {
        let o = &self.options;
        if self.cache_sources.is_empty() || o.no_cache || o.registry.offline {
            return None;
        }
        Some(Arc::new(RegistryCache::new(
            o.registry.clone(),
            store.clone(),
            self.cache_sources.clone(),
            o.fetch_layers != FetchLayers::None,
        )))
    }
}

/// Seconds since the epoch, for a stamped build's provenance only.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Loads the build file and builds the images asked for into the store.
pub fn build(
    inputs: &Inputs<'_>,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<(Prepared, Vec<BuiltImage>)> {
    let prepared = prepare(inputs)?;
    let built = prepared.build(inputs.images, store, reporter)?;
    Ok((prepared, built))
}

/// How registry bases are reached with `client`, offline or not.
pub fn base_options(client: ClientOptions, offline: bool) -> BaseOptions {
    let mut b = BaseOptions::new(client);
    b.offline = offline;
    b
}

/// Writes the lock of `file` anew: every registry base the file uses,
/// kept from the lock there is unless it is named in `update` (all are
/// re-resolved when `update` is empty), resolved with `registry` otherwise.
pub fn lock(
    file: &BuildFile,
    update: &[String],
    registry: &BaseOptions,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<LockFile> {
    let path = lock::path_for(&file.path);
    let old = LockFile::load(&path)?.unwrap_or_default();
    let new = lock::update(file, &old, update, |r, platform| {
        Ok(registry.resolve_for_lock(r, platform, store, reporter)?.1)
    })?;
    new.save(&path)?;
    Ok(new)
}
