//! `gantry build`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, ValueEnum};

use gantry::bases::BaseOptions;
use gantry::build::{self, report::Report, BuildOptions, BuiltImage};
use gantry::buildfile::{BuildFile, DEFAULT_FILE_NAME};
use gantry::error::{Error, JsonError, Result};
use gantry::image::Artifact;
use gantry::layout::write::{self, Format};
use gantry::platform::host_platform;
use gantry::platform::Platform;
use gantry::progress::{Event, Reporter};
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

    /// Fail unless gantry.lock exists and pins every registry base.
    #[arg(long)]
    locked: bool,

    #[command(flatten)]
    registry: super::registry::RegistryArgs,
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

pub fn run(args: BuildArgs, store_root: &Path, reporter: &dyn Reporter) -> Result<()> {
    let format = match &args.output {
        Some(out) => Some(output_format(out, args.format)?),
        None if args.format.is_some() => {
            return Err(Error::Usage("--format needs --output".into()));
        }
        None => None,
    };
    if args.json && args.output.as_deref() == Some(Path::new("-")) {
        return Err(Error::Usage(
            "--json and -o - both want stdout; use --report PATH for the report".into(),
        ));
    }
    let store = Store::open(store_root)?;
    let mut outputs: Vec<(&str, &Path)> = Vec::new();
    outputs.extend(args.output.as_deref().map(|o| ("-o", o)));
    outputs.extend(args.report.as_deref().map(|r| ("--report", r)));
    // A store blob found damaged on the way is moved aside and the build
    // and its output made again; a tarball half streamed to stdout cannot
    // be taken back, so that run fails and the next one heals.
    let streamed = std::cell::Cell::new(false);
    let built = build::heal::healing(
        &store,
        reporter,
        || !streamed.get(),
        || {
            let (_, opts, built) = build_from_file(
                &BuildInputs {
                    file: &args.file,
                    images: &args.images,
                    jobs: args.jobs,
                    platform: args.platform.clone(),
                    stamp: &args.stamp,
                    locked: args.locked,
                    registry: &args.registry,
                    meanwhile: None,
                    outputs: &outputs,
                },
                &store,
                reporter,
            )?;
            if let (Some(out), Some(format)) = (&args.output, format) {
                streamed.set(out == Path::new("-"));
                write_selected(
                    &selected(&built, &args.images),
                    &opts,
                    &store,
                    out,
                    format,
                    reporter,
                )?;
            }
            Ok(built)
        },
    )?;

    let to_stdout = args.output.as_deref() == Some(Path::new("-"));
    if let Some(out) = args.output.as_ref().filter(|_| !to_stdout) {
        for b in selected(&built, &args.images) {
            reporter.report(Event::OutputWritten {
                image: &b.name,
                path: &out.display().to_string(),
            });
        }
    }
    let mut lines = String::new();
    for b in &built {
        lines.push_str(&format!("{} {}\n", b.name, b.result.digest()));
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

/// The images asked for, or every image when none was named.
fn selected<'a>(built: &'a [BuiltImage], names: &[String]) -> Vec<&'a BuiltImage> {
    built
        .iter()
        .filter(|b| names.is_empty() || names.contains(&b.name))
        .collect()
}

/// Writes `selected` to `out`, fetching the registry bases' layers first.
fn write_selected(
    selected: &[&BuiltImage],
    opts: &BuildOptions,
    store: &Store,
    out: &Path,
    format: Format,
    reporter: &dyn Reporter,
) -> Result<()> {
    let mut chosen = Vec::new();
    if format == Format::Docker {
        for b in selected {
            chosen.extend(docker_child(b)?.map(Artifact::Image));
        }
    }
    let mut chosen = chosen.iter();
    let roots: Vec<&Artifact> = selected
        .iter()
        .map(|b| match &b.result {
            Artifact::Index(_) if format == Format::Docker => {
                chosen.next().expect("one child per index")
            }
            a => a,
        })
        .collect();
    let images: Vec<&gantry::image::Image> = roots.iter().flat_map(|r| r.images()).collect();
    // Registry bases are loaded without their layers; a sink needs them.
    opts.registry.ensure_blobs(&images, store, reporter)?;
    write_output(&roots, store, out, format)
}

/// The image a docker tarball holds of a multi-platform image: it holds
/// single images, so it takes the host's platform (a build with
/// --platform has no multi-platform images left), tagged as the index is,
/// and says so.
fn docker_child(b: &BuiltImage) -> Result<Option<gantry::image::Image>> {
    let Artifact::Index(x) = &b.result else {
        return Ok(None);
    };
    let host = host_platform().to_string();
    let Some(child) = x.child(&host) else {
        return Err(Error::NeedsPlatform {
            image: b.name.clone(),
            platforms: x.platforms(),
            host: Some(host),
        });
    };
    // Said on stderr whatever the progress mode: the tarball holds less
    // than the build made.
    eprintln!(
        "{}: the docker tarball holds {host} (built: {}; choose another with --platform)",
        b.name,
        x.platforms().join(", ")
    );
    let mut child = child.clone();
    child.tags = x.tags.clone();
    Ok(Some(child))
}

/// What the verbs that build (`build`, `push`) share on the command line.
pub struct BuildInputs<'a> {
    pub file: &'a Path,
    pub images: &'a [String],
    pub jobs: Option<usize>,
    /// Build multi-platform images for this platform only.
    pub platform: Option<Platform>,
    pub stamp: &'a StampArgs,
    pub locked: bool,
    pub registry: &'a super::registry::RegistryArgs,
    /// Started once the build file is read, before the build: work with
    /// the registries (reaching them, asking what they have) that can run
    /// while the build, which is mostly checking inputs when nothing
    /// changed, does. It must not wait for that work: a slow registry must
    /// not hold up a build that fails.
    pub meanwhile: Option<&'a Meanwhile<'a>>,
    /// The files the verb will write, with the flag that names each: one
    /// that is an input of the build is refused before any work.
    pub outputs: &'a [(&'a str, &'a Path)],
}

/// Starts work for after the build, given the build file and how to reach
/// registries.
pub type Meanwhile<'a> = dyn Fn(&BuildFile, Arc<BaseOptions>) + 'a;

/// Loads the build file and builds the images asked for (and their bases)
/// into the store.
pub fn build_from_file(
    inputs: &BuildInputs<'_>,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<(BuildFile, BuildOptions, Vec<BuiltImage>)> {
    let file = BuildFile::load(inputs.file)?;
    let lock = gantry::lock::path_for(inputs.file);
    for (flag, out) in inputs.outputs {
        build::inputs::check_output(&file, inputs.images, &lock, flag, out)?;
    }
    let mut opts = BuildOptions::from_env()?;
    if let Some(j) = inputs.jobs {
        if j == 0 {
            return Err(Error::Usage("--jobs must be at least 1".into()));
        }
        opts.threads = j;
    }
    opts.platform = inputs.platform.clone();
    opts.fetch_layers = inputs.outputs.iter().any(|(flag, _)| *flag == "-o");
    opts.stamp = inputs.stamp.sources();
    let mut o = inputs.registry.base_options();
    super::registry::attach_lock(&mut o, &file, inputs.file, inputs.locked)?;
    opts.registry = std::sync::Arc::new(o);
    if let Some(start) = inputs.meanwhile {
        start(&file, opts.registry.clone());
    }
    let built = build::build(&file, inputs.images, store, &opts, reporter)?;
    Ok((file, opts, built))
}

fn output_format(out: &Path, explicit: Option<OutputFormat>) -> Result<Format> {
    let f = match explicit {
        Some(OutputFormat::Docker) => Format::Docker,
        Some(OutputFormat::Oci) => Format::Oci,
        Some(OutputFormat::OciArchive) => Format::OciArchive,
        None => {
            let s = out.to_string_lossy();
            if s == "-" || s.ends_with(".tar") {
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
    if f == Format::Oci && out == Path::new("-") {
        return Err(Error::Usage(
            "an OCI layout directory cannot be written to stdout; use --format oci-archive".into(),
        ));
    }
    Ok(f)
}

fn write_output(roots: &[&Artifact], store: &Store, out: &Path, format: Format) -> Result<()> {
    if out == Path::new("-") {
        let stdout = io::stdout().lock();
        let mut w = write::write_archive(roots, store, format, io::BufWriter::new(stdout))?;
        return w.flush().map_err(|e| Error::io("<stdout>", e));
    }
    write::write_archive_file(roots, store, format, out)
}
