//! Glue between the command line and the library: one module per verb.

mod build;
mod cache;
mod completions;
mod gc;
mod inspect;
mod load;
mod lock;
mod man;
mod pull;
mod push;
mod registry;
mod reporter;
mod test;
mod version;

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use gantry::store::{Store, STORE_ENV};

#[derive(Parser)]
#[command(
    name = "gantry",
    version = version::LONG_VERSION,
    about = "Daemonless, reproducible OCI image assembler",
    long_about = None
)]
struct Cli {
    /// The local content-addressed store (default: $XDG_CACHE_HOME/gantry).
    #[arg(long, global = true, env = STORE_ENV, value_name = "DIR")]
    store: Option<PathBuf>,

    /// Print nothing but results and errors.
    #[arg(short, long, global = true)]
    quiet: bool,

    /// How to show progress on stderr.
    #[arg(long, global = true, value_enum, default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// Bars on a terminal, plain lines otherwise.
    Auto,
    Bar,
    Plain,
    None,
}

#[derive(Subcommand)]
enum Command {
    /// Build images from a build file into the store, and optionally write them out.
    Build(build::BuildArgs),
    /// Show what an image tarball or OCI layout contains.
    Inspect(inspect::InspectArgs),
    /// Resolve every registry base to digests and write gantry.lock.
    Lock(lock::LockArgs),
    /// Build if needed, then load images into the local Docker Engine,
    /// sending only the layers it lacks.
    Load(load::LoadArgs),
    /// Copy an image from a registry into an OCI layout or docker tarball.
    Pull(pull::PullArgs),
    /// Build if needed, then push images to their tags in registries.
    Push(push::PushArgs),
    /// Run container-structure-test configs against images (build if
    /// needed); exit 1 when a test fails, 2 on bad input.
    Test(test::TestArgs),
    /// Remove from the store what has not been used for a while.
    Gc(gc::GcArgs),
    /// Print a shell completion script (verbs, flags, and image names of
    /// the build file where the shell allows it).
    Completions(completions::CompletionsArgs),
    /// Print a verb's manual page (roff), or write every page with --dir.
    Man(man::ManArgs),
    /// Print the version, the commit and the pinned compressors (--json).
    Version(version::VersionArgs),
}

/// Runs the command line; returns the process exit status.
pub fn run() -> i32 {
    // Kept out of the parser so that no help, man page or completion
    // script offers it.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == completions::IMAGES_VERB)
    {
        return completions::list_images(std::env::args_os().skip(1));
    }
    let cli = Cli::parse();
    let mode = if cli.quiet {
        ProgressMode::None
    } else {
        cli.progress
    };
    let reporter = reporter::CliReporter::new(mode);
    let store_root = cli.store.clone().unwrap_or_else(Store::default_root);
    if let Command::Test(args) = cli.command {
        let code = test::run(args, &store_root, &reporter);
        reporter.finish();
        return code;
    }
    let result = match cli.command {
        Command::Test(_) => unreachable!("run above"),
        Command::Build(args) => build::run(args, &store_root, &reporter),
        Command::Inspect(args) => inspect::run(args),
        Command::Lock(args) => lock::run(args, &store_root, &reporter),
        Command::Load(args) => load::run(args, &store_root, &reporter),
        Command::Pull(args) => pull::run(args, &store_root, &reporter),
        Command::Push(args) => push::run(args, &store_root, &reporter),
        Command::Gc(args) => gc::run(args, &store_root),
        Command::Completions(args) => completions::run(args, Cli::command()),
        Command::Man(args) => man::run(args, Cli::command()),
        Command::Version(args) => version::run(args),
    };
    reporter.finish();
    match result {
        Ok(()) => 0,
        Err(e) => {
            print_error(&e);
            1
        }
    }
}

/// `error: ` and the error, one `Caused by: ` line per cause, then what
/// to do about it when gantry knows. A cause whose text the line above
/// already ends with (a library error that quotes its source) is not
/// repeated.
fn print_error(e: &gantry::Error) {
    eprintln!("error: {e}");
    let mut above = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !above.ends_with(&text) {
            eprintln!("  Caused by: {text}");
        }
        above = text;
    }
    if let Some(hint) = e.hint() {
        eprintln!("hint: {hint}");
    }
}
