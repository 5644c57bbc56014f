//! `gantry load`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use gantry::buildfile::{BaseSpec, DEFAULT_FILE_NAME};
use gantry::engine::{self, Engine};
use gantry::error::{Error, Result};
use gantry::image::{Artifact, Image};
use gantry::platform::{host_platform, Platform};
use gantry::progress::Reporter;
use gantry::project::{self, Inputs};
use gantry::store::Store;

use super::build::StampArgs;
use super::registry::RegistryArgs;

#[derive(Args)]
pub struct LoadArgs {
    /// Images to load (default: every image in the build file). Bases are
    /// built as needed but loaded only when named.
    images: Vec<String>,

    /// The build file.
    #[arg(short, long, value_name = "PATH", default_value = DEFAULT_FILE_NAME)]
    file: PathBuf,

    /// Load multi-platform images for this platform (os/arch[/variant];
    /// default: the host's). An engine holds one platform of an image.
    #[arg(long, value_name = "PLATFORM", value_parser = parse_platform)]
    platform: Option<Platform>,

    /// Cores the build may use (default: the number of cores).
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,

    #[command(flatten)]
    stamp: StampArgs,

    /// Fail unless gantry.lock exists and pins every registry base.
    #[arg(long)]
    locked: bool,

    #[command(flatten)]
    registry: RegistryArgs,
}

fn parse_platform(s: &str) -> std::result::Result<Platform, String> {
    Platform::parse(s)
}

pub fn run(args: LoadArgs, store_root: &Path, reporter: &dyn Reporter) -> Result<()> {
    // Before the build: without an engine there is nothing to build for.
    let engine = Engine::from_env()?;
    let store = Store::open(store_root)?;
    let mut prepared = project::prepare(&Inputs {
        file: &args.file,
        images: &args.images,
        jobs: args.jobs,
        platform: args.platform.clone(),
        stamp: args.stamp.sources(),
        locked: args.locked,
        client: args.registry.client_options(),
        offline: args.registry.offline,
        outputs: &[],
    })?;
    // A load copies bytes: registry bases' layers are fetched by the build
    // graph, as for a tarball.
    prepared.options.fetch_layers = true;
    let built = prepared.build(&args.images, &store, reporter)?;

    let mut chosen: Vec<(&str, String, Image)> = Vec::new();
    for b in built
        .iter()
        .filter(|b| args.images.is_empty() || args.images.contains(&b.name))
    {
        let image = match &b.result {
            Artifact::Image(i) => i.clone(),
            Artifact::Index(x) => {
                // A build with --platform has no multi-platform images left.
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
        chosen.push((&b.name, b.result.digest().to_string(), image));
    }
    let images: Vec<&Image> = chosen.iter().map(|(_, _, i)| i).collect();
    prepared
        .options
        .registry
        .ensure_blobs(&images, &store, reporter)?;

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
    let report = engine::load(&engine, &images, &hints, &store, reporter)?;

    let mut out = std::io::stdout().lock();
    let mut text = String::new();
    for r in &report.loaded {
        text.push_str(&format!("Loaded image: {r}\n"));
    }
    for (name, digest, _) in &chosen {
        text.push_str(&format!("{name} {digest}\n"));
    }
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("<stdout>", e))
}
