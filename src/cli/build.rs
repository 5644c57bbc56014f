//! `gantry build`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use gantry::build::report::Report;
use gantry::buildfile::DEFAULT_FILE_NAME;
use gantry::error::{Error, JsonError, Result};
use gantry::layout::write::Format;
use gantry::output::{self, Output};
use gantry::platform::Platform;
use gantry::progress::Reporter;
use gantry::project::Inputs;
use gantry::stamp::StampSources;
use gantry::store::Store;

#[derive(Args)]
pub struct BuildArgs {
    /// Images to build (default: every image in the build file).
    images: Vec<String>,

    /// The build file.
    #[arg(short, long, value_name = "PATH", default_value = DEFAULT_FILE_NAME)]
    file: PathBuf,

    /// Write the built images here: a .tar path (docker tarball by default),
    /// a directory (OCI layout by default), or - for a tarball on stdout.
    #[arg(short, long, value_name = "PATH")]
    output: Option<PathBuf>,

    /// Output format (default: docker for .tar and -, oci for directories).
    #[arg(long, value_enum)]
    format: Option<OutputFormat>,

    /// Cores the whole build may use: independent images, layers and their
    /// compression share them (default: the number of cores).
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,

    /// Build multi-platform images for this platform only (os/arch[/variant]).
    /// A docker tarball holds one platform: this one, or the host's.
    #[arg(long, value_name = "PLATFORM", value_parser = parse_platform)]
    platform: Option<Platform>,

    /// Print a JSON report on stdout: every image, per platform, per layer
    /// whether it was rebuilt or reused.
    #[arg(long)]
    json: bool,

    /// Also write the JSON report to this file (atomically, once every
    /// output is written).
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,

    #[command(flatten)]
    stamp: StampArgs,

    #[command(flatten)]
    sbom: SbomArgs,

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

    #[command(flatten)]
    registry: super::registry::RegistryArgs,
}

/// The documents attached to each image, shared by the verbs that build.
#[derive(Args)]
pub struct SbomArgs {
    /// `spdx`: attach an SPDX SBOM and SLSA provenance to every image
    /// (unless its build file entry says `sbom = false`); `none`: attach
    /// nothing.
    #[arg(long = "sbom", value_enum, value_name = "KIND", default_value = "spdx")]
    kind: SbomKind,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SbomKind {
    Spdx,
    None,
}

impl SbomArgs {
    /// Whether documents are attached.
    pub fn enabled(&self) -> bool {
        self.kind == SbomKind::Spdx
    }
}

/// Release stamping, shared by the verbs that build.
#[derive(Args)]
pub struct StampArgs {
    /// Fill {{KEY}} templates from git, the clock, status files and
    /// --stamp-var (without it, builds take [stamp.unstamped] values and
    /// stay reproducible).
    #[arg(long)]
    stamp: bool,

    /// A status file of `KEY value` lines, as Bazel's workspace status
    /// command writes them (repeatable; later files win).
    #[arg(long = "status-file", value_name = "PATH", requires = "stamp")]
    status_files: Vec<PathBuf>,

    /// A stamp value, winning over every other source (repeatable).
    #[arg(long = "stamp-var", value_name = "KEY=VALUE", value_parser = parse_stamp_var, requires = "stamp")]
    stamp_vars: Vec<(String, String)>,
}

fn parse_platform(s: &str) -> std::result::Result<Platform, String> {
    Platform::parse(s)
}

fn parse_stamp_var(s: &str) -> std::result::Result<(String, String), String> {
    gantry::stamp::parse_var(s)
}

impl StampArgs {
    pub fn sources(&self) -> Option<StampSources> {
        self.stamp.then(|| StampSources {
            status_files: self.status_files.clone(),
            vars: self.stamp_vars.clone(),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    Docker,
    Oci,
    OciArchive,
}

impl From<OutputFormat> for Format {
    fn from(f: OutputFormat) -> Format {
        match f {
            OutputFormat::Docker => Format::Docker,
            OutputFormat::Oci => Format::Oci,
            OutputFormat::OciArchive => Format::OciArchive,
        }
    }
}

pub fn run(args: BuildArgs, store_root: &Path, reporter: &dyn Reporter) -> Result<()> {
    let format = match &args.output {
        Some(out) => Some(output::format_of(out, args.format.map(Format::from))?),
        None if args.format.is_some() => {
            return Err(Error::Usage("--format needs --output".into()));
        }
        None => None,
    };
    let to_stdout = args.output.as_deref() == Some(Path::new(output::STDOUT));
    if args.json && to_stdout {
        return Err(Error::Usage(
            "--json and -o - both want stdout; use --report PATH for the report".into(),
        ));
    }
    let store = Store::open(store_root)?;
    let mut outputs: Vec<(&str, &Path)> = Vec::new();
    outputs.extend(args.output.as_deref().map(|o| ("-o", o)));
    outputs.extend(args.report.as_deref().map(|r| ("--report", r)));
    let inputs = Inputs {
        file: &args.file,
        images: &args.images,
        jobs: args.jobs,
        platform: args.platform.clone(),
        stamp: args.stamp.sources(),
        locked: args.locked,
        client: args.registry.client_options(),
        offline: args.registry.offline,
        outputs: &outputs,
        cache: args.cache.inputs()?,
        sbom: args.sbom.enabled(),
    };
    let cache_to = super::cache::parse_cache_to(args.cache_to.as_deref())?;
    let out = args
        .output
        .as_deref()
        .zip(format)
        .map(|(path, format)| Output { path, format });
    if cache_to.is_some() && args.registry.offline {
        return Err(Error::Usage(
            "--cache-to pushes to a registry; --offline cannot be used with it".into(),
        ));
    }
    let built = output::build_and_write(&inputs, out, &store, reporter)?;

    let mut lines = String::new();
    for b in &built {
        lines.push_str(&format!("{} {}\n", b.name, b.result.digest()));
    }
    if let Some(to) = &cache_to {
        let client = args.registry.base_options().client("push")?;
        let opts = gantry::push::PushOptions::default();
        let pushed = gantry::push::push_cache(&built, to, &store, &client, &opts, reporter)?;
        lines.push_str(&format!("cache {pushed}\n"));
    }
    let repairs = store.repairs();
    let mut report = serde_json::to_string_pretty(&Report::of(&built, &repairs)).map_err(|e| {
        Error::internal_because("cannot render the report as JSON", JsonError::from(e))
    })?;
    report.push('\n');
    if args.json {
        lines = report.clone();
    }

    if let Some(path) = &args.report {
        gantry::fsutil::write_atomic(path, report.as_bytes())?;
    }

    // Results go to stdout unless stdout carries the tarball.
    if to_stdout {
        eprint!("{lines}");
    } else {
        let mut stdout = io::stdout().lock();
        stdout
            .write_all(lines.as_bytes())
            .and_then(|_| stdout.flush())
            .map_err(|e| Error::io("<stdout>", e))?;
    }
    Ok(())
}
