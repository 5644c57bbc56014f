//! `gantry test`: container-structure-test configs (schemaVersion 2.0.0)
//! run against an image itself, without a daemon for anything but command
//! tests. File tests read the tar headers of the image's layers, merged
//! with the whiteout rules ([`crate::rootfs`]), so owners and modes are the
//! image's and not those of a host that unpacked it; file bytes are read
//! from the layer stream that holds them, and nothing is extracted.
//!
//! ```no_run
//! use std::path::Path;
//! use gantry::layout::read;
//! use gantry::progress::Silent;
//! use gantry::store::Store;
//! use gantry::structure::{self, Blobs, Commands, Subject};
//!
//! # fn main() -> gantry::Result<()> {
//! let store = Store::open(&Store::default_root())?;
//! let (image, blobs) = read::open(Path::new("out/"), None)?;
//! let configs = vec![structure::config::load(Path::new("tests/worker.yaml"))?];
//! let subject = Subject { name: "worker".into(), image: &image, blobs: Blobs::Local(&*blobs, Some(&store)) };
//! let report = structure::test(&[(subject, configs)], &Commands::Skip, &store, &Silent)?;
//! print!("{}", report.to_text());
//! # Ok(())
//! # }
//! ```

pub mod command;
pub mod config;
pub mod image;
pub mod report;
pub mod run;

use std::path::{Path, PathBuf};

use crate::build::BuiltImage;
use crate::error::{Error, Result};
use crate::image::{Artifact, Image};
use crate::layout::read::copy_to_store;
use crate::layout::write::{write_archive, Format};
use crate::platform::host_platform;
use crate::progress::Reporter;
use crate::project::{self, Inputs};
use crate::store::Store;

pub use command::Runtime;
pub use config::{LoadedConfig, TestConfig};
pub use image::{Blobs, ImageUnderTest};
pub use report::{ConfigReport, Outcome, Report, TestKind, TestResult, Totals};

/// What becomes of command tests.
#[derive(Debug, Clone)]
pub enum Commands {
    /// Not run, and not counted against the run (`--skip-commands`).
    Skip,
    /// Not run for this reason (no engine), and counted as not run.
    Unavailable(String),
    /// Run on this engine.
    Run(Runtime),
}

impl Commands {
    /// Command tests on the engine named, or the first found; when none
    /// answers, reported as not run with the reason.
    pub fn find(named: Option<&str>, skip: bool) -> Commands {
        if skip {
            return Commands::Skip;
        }
        match Runtime::find(named) {
            Ok(r) => Commands::Run(r),
            Err(why) => Commands::Unavailable(format!("no container engine to run them: {why}")),
        }
    }
}

/// An image to test, and where its blobs are.
pub struct Subject<'a> {
    /// How reports name it.
    pub name: String,
    /// The image (a single-platform one).
    pub image: &'a Image,
    /// Where its layers are read from.
    pub blobs: Blobs<'a>,
}

/// Runs every config against its image.
pub fn test(
    subjects: &[(Subject<'_>, Vec<LoadedConfig>)],
    commands: &Commands,
    store: &Store,
    _reporter: &dyn Reporter,
) -> Result<Report> {
    let mut report = Report::default();
    for (subject, configs) in subjects {
        if configs.is_empty() {
            continue;
        }
        let view = ImageUnderTest::new(&subject.name, subject.image, subject.blobs)?;
        let loaded = match commands {
            Commands::Run(rt) if configs.iter().any(|c| !c.config.command_tests.is_empty()) => {
                Some(load_into(rt, subject, store)?)
            }
            _ => None,
        };
        let result: Result<Vec<_>> = configs
            .iter()
            .map(|c| run_config(c, &view, commands, loaded.as_deref()))
            .collect();
        if let (Some(reference), Commands::Run(rt)) = (&loaded, commands) {
            rt.remove_image(reference);
        }
        report.configs.extend(result?);
    }
    Ok(report)
}

fn run_config(
    c: &LoadedConfig,
    view: &ImageUnderTest<'_>,
    commands: &Commands,
    loaded: Option<&str>,
) -> Result<ConfigReport> {
    let t = &c.config;
    let mut results = Vec::new();
    let env = view.env();
    let opts = t.container_run_options.clone().unwrap_or_default();
    for ct in &t.command_tests {
        match (commands, loaded) {
            (Commands::Skip, _) => {}
            (Commands::Unavailable(why), _) => results.push(command::not_run(ct, why)),
            (Commands::Run(rt), Some(reference)) => {
                results.push(rt.run_test(ct, reference, &env, &t.global_env_vars, &opts))
            }
            (Commands::Run(_), None) => unreachable!("loaded when there are command tests"),
        }
    }
    for ft in &t.file_content_tests {
        results.push(run::file_content(ft, view)?);
    }
    for ft in &t.file_existence_tests {
        results.push(run::file_existence(ft, view));
    }
    for lt in &t.license_tests {
        results.push(run::license(lt, view)?);
    }
    if let Some(m) = t
        .metadata_test
        .as_ref()
        .filter(|m| !run::metadata_is_empty(m))
    {
        results.push(run::metadata(m, view));
    }
    Ok(ConfigReport {
        image: view.name.clone(),
        config: c.path.clone(),
        results,
    })
}

/// Loads the subject into the engine under a tag of its own; the tag.
fn load_into(rt: &Runtime, subject: &Subject<'_>, store: &Store) -> Result<String> {
    if let Blobs::Local(blobs, _) = subject.blobs {
        // The tarball the engine loads is written from the store.
        copy_to_store(subject.image, blobs, store)?;
    }
    let mut image = subject.image.clone();
    let tag = format!(
        "localhost/gantry-structure-test:{}-{}",
        &image.config_digest.hex()[..16],
        std::process::id()
    );
    image.tags = vec![tag.clone()];
    let artifact = Artifact::Image(image);
    rt.load(|w| write_archive(&[&artifact], store, Format::Docker, w).map(|_| ()))?;
    Ok(tag)
}

/// What `gantry test` without `--image` is asked for.
#[derive(Debug, Clone)]
pub struct BuildTests<'a> {
    /// The build (its `images` are the images to test; all when empty).
    pub inputs: Inputs<'a>,
    /// Configs run on every image tested, besides its `tests`.
    pub extra: &'a [PathBuf],
}

/// Builds the images asked for (reusing the store), then runs each one's
/// `tests` and the extra configs against it. An image with no config is
/// not tested; a multi-platform image is tested for this machine's
/// platform.
pub fn build_and_test(
    asked: &BuildTests<'_>,
    commands: &Commands,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<Report> {
    let mut prepared = project::prepare(&asked.inputs)?;
    // The tests read every layer: cache hits are downloaded and checked
    // against their diff_ids by the build, not fetched after it unchecked.
    prepared.options.fetch_layers =
        crate::build::FetchLayers::OnePlatform(crate::platform::host_platform());
    let built = prepared.build(asked.inputs.images, store, reporter)?;
    let chosen: Vec<&BuiltImage> = crate::output::selected(&built, asked.inputs.images);
    let mut subjects = Vec::new();
    for b in chosen {
        let spec = prepared.file.images.get(&b.name);
        let mut paths: Vec<PathBuf> = spec.map(|s| s.tests.clone()).unwrap_or_default();
        paths.extend(asked.extra.iter().cloned());
        let configs = paths
            .iter()
            .map(|p| config::load(p))
            .collect::<Result<Vec<_>>>()?;
        if configs.is_empty() {
            continue;
        }
        let image = single(&b.result)?;
        subjects.push((b.name.clone(), image, configs));
    }
    let images: Vec<&Image> = subjects.iter().map(|(_, i, _)| *i).collect();
    // Registry bases are loaded without their layers; the tests read them.
    prepared
        .options
        .registry
        .ensure_blobs(&images, store, reporter)?;
    let subjects: Vec<(Subject<'_>, Vec<LoadedConfig>)> = subjects
        .into_iter()
        .map(|(name, image, configs)| {
            (
                Subject {
                    name,
                    image,
                    blobs: Blobs::Store(store),
                },
                configs,
            )
        })
        .collect();
    test(&subjects, commands, store, reporter)
}

/// The image of `artifact` tests run on: itself, or an index's child for
/// this machine.
pub fn single(artifact: &Artifact) -> Result<&Image> {
    match artifact {
        Artifact::Image(i) => Ok(i),
        Artifact::Index(x) => {
            let host = host_platform();
            x.child(&host).ok_or_else(|| {
                Error::Usage(format!(
                    "image {:?} is built for {}, not for this machine ({host})",
                    x.name,
                    x.platforms().join(", ")
                ))
            })
        }
    }
}

/// Loads the configs at `paths`, refusing none given.
pub fn load_configs(paths: &[PathBuf]) -> Result<Vec<LoadedConfig>> {
    if paths.is_empty() {
        return Err(Error::Usage(
            "no test config given: use --config FILE".into(),
        ));
    }
    paths.iter().map(|p| config::load(Path::new(p))).collect()
}
