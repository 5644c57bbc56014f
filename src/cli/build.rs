//! `gantry build`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use gantry::build::{self, BuildOptions, BuiltImage};
use gantry::buildfile::{BuildFile, DEFAULT_FILE_NAME};
use gantry::error::{Error, Result};
use gantry::image::Image;
use gantry::layout::write::{self, Format};
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

    /// Compression threads (default: the number of cores).
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,

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
    let store = Store::open(store_root)?;
    let (_, opts, built) = build_from_file(
        &BuildInputs {
            file: &args.file,
            images: &args.images,
            jobs: args.jobs,
            stamp: &args.stamp,
            locked: args.locked,
            registry: &args.registry,
        },
        &store,
        reporter,
    )?;

    let to_stdout = args.output.as_deref() == Some(Path::new("-"));
    let mut lines = String::new();
    for b in &built {
        lines.push_str(&format!("{} {}\n", b.image.name, b.image.manifest_digest));
    }

    if let (Some(out), Some(format)) = (&args.output, format) {
        // The images asked for, or every image when none was named.
        let selected: Vec<&Image> = built
            .iter()
            .map(|b| &b.image)
            .filter(|i| args.images.is_empty() || args.images.contains(&i.name))
            .collect();
        // Registry bases are loaded without their layers; a sink needs them.
        opts.registry.ensure_blobs(&selected, &store, reporter)?;
        write_output(&selected, &store, out, format)?;
        if !to_stdout {
            for i in &selected {
                reporter.report(Event::OutputWritten {
                    image: &i.name,
                    path: &out.display().to_string(),
                });
            }
        }
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

/// What the verbs that build (`build`, `push`) share on the command line.
pub struct BuildInputs<'a> {
    pub file: &'a Path,
    pub images: &'a [String],
    pub jobs: Option<usize>,
    pub stamp: &'a StampArgs,
    pub locked: bool,
    pub registry: &'a super::registry::RegistryArgs,
}

/// Loads the build file and builds the images asked for (and their bases)
/// into the store.
pub fn build_from_file(
    inputs: &BuildInputs<'_>,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<(BuildFile, BuildOptions, Vec<BuiltImage>)> {
    let file = BuildFile::load(inputs.file)?;
    let mut opts = BuildOptions::from_env()?;
    if let Some(j) = inputs.jobs {
        if j == 0 {
            return Err(Error::Usage("--jobs must be at least 1".into()));
        }
        opts.threads = j;
    }
    opts.stamp = inputs.stamp.sources();
    let mut o = inputs.registry.base_options();
    super::registry::attach_lock(&mut o, &file, inputs.file, inputs.locked)?;
    opts.registry = std::sync::Arc::new(o);
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

fn write_output(images: &[&Image], store: &Store, out: &Path, format: Format) -> Result<()> {
    if out == Path::new("-") {
        let stdout = io::stdout().lock();
        let mut w = write::write_archive(images, store, format, io::BufWriter::new(stdout))?;
        return w.flush().map_err(|e| Error::io("<stdout>", e));
    }
    write::write_archive_file(images, store, format, out)
}
