//! `gantry push`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use gantry::buildfile::DEFAULT_FILE_NAME;
use gantry::error::{Error, Result};
use gantry::fsutil;
use gantry::progress::Reporter;
use gantry::project::Inputs;
use gantry::push::{self, PushOptions};
use gantry::reference::Reference;
use gantry::store::Store;

use super::build::StampArgs;
use super::registry::RegistryArgs;

/// Uploads are network-bound; more than a few in flight rarely helps and
/// makes rate limits more likely.
const DEFAULT_PUSH_JOBS: usize = 4;

#[derive(Args)]
pub struct PushArgs {
    /// Images to push (default: every image of the build file that has tags).
    images: Vec<String>,

    /// The build file.
    #[arg(short, long, value_name = "PATH", default_value = DEFAULT_FILE_NAME)]
    file: PathBuf,

    /// Push to this reference instead of the image's tags (repeatable; for
    /// one image).
    #[arg(short = 't', long = "tag", value_name = "REF")]
    tags: Vec<String>,

    /// Write the pushed digests and references, and what happened to each
    /// blob (uploaded, mounted, skipped), to this JSON file.
    #[arg(long, value_name = "PATH")]
    metadata_file: Option<PathBuf>,

    /// Blobs uploaded at once (default 4); when given, also the build's
    /// threads (else the build uses every core).
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
    /// Also push a cache manifest of the layers built to this reference, so
    /// that later builds elsewhere find them (with --cache-from) without an
    /// image having been pushed.
    #[arg(long = "cache-to", value_name = "REF")]
    cache_to: Option<String>,

    /// Print the report --metadata-file writes on stdout instead of the
    /// references pushed.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn run(args: PushArgs, store_root: &Path, reporter: &dyn Reporter) -> Result<()> {
    if args.registry.offline {
        return Err(Error::Usage(
            "gantry push needs the network; --offline cannot be used with it".into(),
        ));
    }
    let explicit: Vec<Reference> = args
        .tags
        .iter()
        .map(|t| Reference::parse_tagged(t))
        .collect::<Result<_>>()?;
    if !explicit.is_empty() && args.images.len() != 1 {
        return Err(Error::Usage(
            "--tag names where one image goes: name exactly one image to push".into(),
        ));
    }
    let store = Store::open(store_root)?;
    let outputs: Vec<(&str, &Path)> = args
        .metadata_file
        .as_deref()
        .map(|m| ("--metadata-file", m))
        .into_iter()
        .collect();
    let inputs = Inputs {
        file: &args.file,
        images: &args.images,
        jobs: args.jobs,
        platform: None,
        stamp: args.stamp.sources(),
        locked: args.locked,
        client: args.registry.client_options(),
        offline: args.registry.offline,
        outputs: &outputs,
        cache: args.cache.inputs()?,
        sbom: args.sbom.enabled(),
    };
    let opts = PushOptions {
        jobs: args.jobs.unwrap_or(DEFAULT_PUSH_JOBS),
        cache_to: super::cache::parse_cache_to(args.cache_to.as_deref())?,
    };
    let report = push::build_and_push(&inputs, &explicit, &opts, &store, reporter)?;

    let mut json = serde_json::to_vec_pretty(&report).expect("report serialises");
    json.push(b'\n');
    if let Some(path) = &args.metadata_file {
        fsutil::write_atomic(path, &json)?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        out.write_all(&json).map_err(|e| Error::io("<stdout>", e))?;
    } else {
        for r in report.images.iter().flat_map(|i| &i.references) {
            writeln!(out, "{r}").map_err(|e| Error::io("<stdout>", e))?;
        }
        if let Some(c) = &report.cache {
            writeln!(out, "{c}").map_err(|e| Error::io("<stdout>", e))?;
        }
    }
    out.flush().map_err(|e| Error::io("<stdout>", e))
}
