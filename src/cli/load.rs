//! `gantry load`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use gantry::buildfile::DEFAULT_FILE_NAME;
use gantry::engine::{self, Engine};
use gantry::error::{Error, Result};
use gantry::platform::Platform;
use gantry::progress::Reporter;
use gantry::project::Inputs;
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
    sbom: super::build::SbomArgs,

    #[command(flatten)]
    stamp: StampArgs,

    /// Fail unless gantry.lock exists and pins every registry base.
    #[arg(long)]
    locked: bool,

    #[command(flatten)]
    cache: super::cache::CacheArgs,
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
    let inputs = Inputs {
        file: &args.file,
        images: &args.images,
        jobs: args.jobs,
        platform: args.platform.clone(),
        stamp: args.stamp.sources(),
        locked: args.locked,
        client: args.registry.client_options(),
        offline: args.registry.offline,
        outputs: &[],
        cache: args.cache.inputs()?,
        sbom: args.sbom.enabled(),
    };
    let report = engine::build_and_load(&inputs, &engine, &store, reporter)?;

    let mut out = std::io::stdout().lock();
    let mut text = String::new();
    for r in &report.load.loaded {
        text.push_str(&format!("Loaded image: {r}\n"));
    }
    for (name, digest) in &report.images {
        text.push_str(&format!("{name} {digest}\n"));
    }
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("<stdout>", e))
}
