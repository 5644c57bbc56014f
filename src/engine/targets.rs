//! `gantry load` as one call: the build file built, the images chosen for
//! the engine, loaded.

use crate::build::FetchLayers;
use crate::buildfile::BaseSpec;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{Artifact, Image};
use crate::platform::host_platform;
use crate::progress::Reporter;
use crate::project::{self, Inputs};
use crate::store::Store;

use super::{load, Engine, LoadReport};

/// What [`build_and_load`] did.
#[derive(Debug, Clone)]
pub struct BuildLoadReport {
    /// The load itself.
    pub load: LoadReport,
    /// Each image loaded: its name in the build file and the digest of
    /// its manifest (or index, for a multi-platform image), as `gantry
    /// build` prints them.
    pub images: Vec<(String, Digest)>,
}

/// Builds the images `inputs` name (every image when it names none; their
/// bases too, but those are not loaded unless named) and loads them into
/// `engine`: a multi-platform image for `inputs.platform` when given (the
/// build then makes that platform only), else for this machine.
pub fn build_and_load(
    inputs: &Inputs<'_>,
    engine: &Engine,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<BuildLoadReport> {
    let mut prepared = project::prepare(inputs)?;
    // A load copies bytes: registry bases' layers are fetched by the build
    // graph, of the one platform an engine takes, as for a docker tarball.
    prepared.options.fetch_layers = FetchLayers::OnePlatform(host_platform());
    let built = prepared.build(inputs.images, store, reporter)?;

    let mut chosen: Vec<(String, Digest, Image)> = Vec::new();
    for b in built
        .iter()
        .filter(|b| inputs.images.is_empty() || inputs.images.contains(&b.name))
    {
        let image = match &b.result {
            Artifact::Image(i) => i.clone(),
            Artifact::Index(x) => {
                let host = host_platform();
                let mut child = x.child(&host).cloned().ok_or_else(|| {
                    Error::Usage(format!(
                        "image {:?} is built for {}, not for this machine ({host}); \
                         choose one with --platform",
                        b.name,
                        x.platforms().join(", ")
                    ))
                })?;
                child.tags = x.tags.clone();
                child
            }
        };
        chosen.push((b.name.clone(), *b.result.digest(), image));
    }
    let images: Vec<&Image> = chosen.iter().map(|(_, _, i)| i).collect();
    prepared
        .options
        .registry
        .ensure_blobs(&images, store, reporter)?;

    // Where the engine may hold the images' bases: the tags of the other
    // images built, and the registry bases as the build file names them.
    let mut hints: Vec<String> = built
        .iter()
        .flat_map(|b| b.result.tags().to_vec())
        .collect();
    hints.extend(prepared.file.images.values().filter_map(|i| match &i.base {
        BaseSpec::Registry(r) => Some(r.to_string()),
        _ => None,
    }));
    let report = load(engine, &images, &hints, store, reporter)?;
    Ok(BuildLoadReport {
        load: report,
        images: chosen.into_iter().map(|(n, d, _)| (n, d)).collect(),
    })
}
