//! `gantry test`.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use gantry::buildfile::DEFAULT_FILE_NAME;
use gantry::error::{Error, Result};
use gantry::fsutil::write_atomic;
use gantry::layout::read;
use gantry::progress::Reporter;
use gantry::project::Inputs;
use gantry::store::Store;
use gantry::structure::{self, Blobs, BuildTests, Commands, Report, Subject};

#[derive(Args)]
pub struct TestArgs {
    /// Images of the build file to test (default: every image with tests);
    /// with --image, the one image of the archive to test, when it holds
    /// several.
    #[arg(value_name = "IMAGES")]
    names: Vec<String>,

    /// A container-structure-test config (schemaVersion 2.0.0) to run as
    /// well as the images' `tests` (repeatable).
    #[arg(long = "config", short = 'c', value_name = "FILE")]
    configs: Vec<PathBuf>,

    /// Test this OCI layout, OCI archive or docker tarball instead of the
    /// build file's images (needs --config).
    #[arg(long, value_name = "PATH")]
    image: Option<PathBuf>,

    /// The build file.
    #[arg(short, long, value_name = "PATH", default_value = DEFAULT_FILE_NAME)]
    file: PathBuf,

    /// Print the results as JSON on stdout instead of text.
    #[arg(long)]
    json: bool,

    /// Also write the results as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,

    /// The engine command tests run on (default: docker, else podman).
    #[arg(long, value_enum)]
    runtime: Option<RuntimeArg>,

    /// Do not run command tests (without an engine they are reported as
    /// not run, and the run fails).
    #[arg(long)]
    skip_commands: bool,

    #[command(flatten)]
    registry: super::registry::RegistryArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RuntimeArg {
    Docker,
    Podman,
}

/// Exit status: 0 every test passed, 1 one failed (or was not run), 2 the
/// input was bad or the tests could not be run.
pub fn run(args: TestArgs, store_root: &Path, reporter: &dyn Reporter) -> i32 {
    match report(&args, store_root, reporter) {
        Ok(r) => {
            let t = r.totals();
            if t.fail > 0 || t.not_run > 0 {
                1
            } else {
                0
            }
        }
        Err(e) => {
            super::print_error(&e);
            2
        }
    }
}

fn report(args: &TestArgs, store_root: &Path, reporter: &dyn Reporter) -> Result<Report> {
    let store = Store::open(store_root)?;
    let runtime = args.runtime.map(|r| match r {
        RuntimeArg::Docker => "docker",
        RuntimeArg::Podman => "podman",
    });
    let commands = Commands::find(runtime, args.skip_commands);
    let report = match &args.image {
        Some(path) => {
            if args.names.len() > 1 {
                return Err(Error::Usage(
                    "with --image, name at most one image of the archive".into(),
                ));
            }
            let configs = structure::load_configs(&args.configs)?;
            let (image, blobs) = read::open(path, args.names.first().map(String::as_str))?;
            let subject = Subject {
                name: path.display().to_string(),
                image: &image,
                blobs: Blobs::Local(&*blobs, Some(&store)),
            };
            structure::test(&[(subject, configs)], &commands, &store, reporter)?
        }
        None => {
            let outputs: Vec<(&str, &Path)> = args
                .junit
                .as_deref()
                .map(|j| ("--junit", j))
                .into_iter()
                .collect();
            let inputs = Inputs {
                file: &args.file,
                images: &args.names,
                jobs: None,
                platform: None,
                stamp: None,
                locked: false,
                client: args.registry.client_options(),
                offline: args.registry.offline,
                outputs: &outputs,
                cache: Default::default(),
                // `gantry test` checks images; their documents are not wanted.
                sbom: false,
            };
            let asked = BuildTests {
                inputs,
                extra: &args.configs,
            };
            let r = structure::build_and_test(&asked, &commands, &store, reporter)?;
            if r.configs.is_empty() {
                return Err(Error::Usage(format!(
                    "no image of {} has `tests`, and no --config was given",
                    args.file.display()
                )));
            }
            r
        }
    };
    if let Some(path) = &args.junit {
        write_atomic(path, report.to_junit().as_bytes())?;
    }
    let text = if args.json {
        report.to_json()
    } else {
        report.to_text()
    };
    print!("{text}");
    Ok(report)
}
