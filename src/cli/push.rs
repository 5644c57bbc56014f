//! `gantry push`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::Args;

use gantry::bases::BaseOptions;
use gantry::buildfile::{BuildFile, DEFAULT_FILE_NAME};
use gantry::error::{Error, Result};
use gantry::fsutil;
use gantry::progress::{Event, Reporter};
use gantry::push::{self, Early, PushOptions, PushRequest};
use gantry::reference::Reference;
use gantry::stamp;
use gantry::store::Store;

use super::build::{build_from_file, BuildInputs, StampArgs};
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
    stamp: StampArgs,

    /// Fail unless gantry.lock exists and pins every registry base.
    #[arg(long)]
    locked: bool,

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
    let jobs = args.jobs.unwrap_or(DEFAULT_PUSH_JOBS);
    let early: Mutex<Option<Early>> = Mutex::new(None);
    let ask_early = |file: &BuildFile, registry: Arc<BaseOptions>| {
        let mut refs = explicit.clone();
        if refs.is_empty() {
            // Tags with stamp templates are known only once expanded.
            refs = file
                .images
                .values()
                .filter(|i| args.images.is_empty() || args.images.contains(&i.name))
                .flat_map(|i| &i.tags)
                .filter(|t| !stamp::is_template(&t.text))
                .filter_map(|t| Reference::parse_tagged(&t.text).ok())
                .collect();
        }
        if !refs.is_empty() {
            let started = Early::start(registry, store.clone(), refs, jobs);
            *early.lock().expect("early lock") = Some(started);
        }
    };
    let outputs: Vec<(&str, &Path)> = args
        .metadata_file
        .as_deref()
        .map(|m| ("--metadata-file", m))
        .into_iter()
        .collect();
    let (file, opts, built) = build_from_file(
        &BuildInputs {
            file: &args.file,
            images: &args.images,
            jobs: args.jobs,
            platform: None,
            stamp: &args.stamp,
            locked: args.locked,
            registry: &args.registry,
            meanwhile: Some(&ask_early),
            outputs: &outputs,
        },
        &store,
        reporter,
    )?;

    let mut requests = Vec::new();
    for b in &built {
        let named = args.images.contains(&b.name);
        if !args.images.is_empty() && !named {
            continue; // a base built for an image asked for
        }
        let targets = if !explicit.is_empty() {
            explicit.clone()
        } else if file.images[&b.name].tags.is_empty() {
            if named {
                return Err(Error::BuildFile {
                    location: file.images[&b.name].location.clone(),
                    message: format!(
                        "image {:?} has no tags to push to; add `tags = [...]` or give --tag",
                        b.name
                    ),
                });
            }
            reporter.report(Event::Warning {
                message: &format!("image {:?} has no tags; not pushed", b.name),
            });
            continue;
        } else {
            b.result
                .tags()
                .iter()
                .map(|t| Reference::parse_tagged(t))
                .collect::<Result<_>>()?
        };
        requests.push(PushRequest::new(&b.result, targets));
    }
    if requests.is_empty() {
        return Err(Error::Usage(format!(
            "{}: no image has tags to push to; add `tags = [...]` to an image or give --tag",
            args.file.display()
        )));
    }

    let client = opts.registry.client("push")?;
    let push_opts = PushOptions { jobs };
    let early = early.into_inner().expect("early lock");
    let report = push::push(&requests, &store, &client, &push_opts, early, reporter)?;

    if let Some(path) = &args.metadata_file {
        let mut json = serde_json::to_vec_pretty(&report).expect("report serialises");
        json.push(b'\n');
        fsutil::write_atomic(path, &json)?;
    }
    let mut out = std::io::stdout().lock();
    for r in report.images.iter().flat_map(|i| &i.references) {
        writeln!(out, "{r}").map_err(|e| Error::io("<stdout>", e))?;
    }
    out.flush().map_err(|e| Error::io("<stdout>", e))
}
