//! `gantry lock`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use gantry::buildfile::{BuildFile, DEFAULT_FILE_NAME};
use gantry::error::{Error, Result};
use gantry::progress::Reporter;
use gantry::project;
use gantry::store::Store;

use super::registry::RegistryArgs;

#[derive(Args)]
pub struct LockArgs {
    /// The build file; the lock is written beside it.
    #[arg(short, long, value_name = "PATH", default_value = DEFAULT_FILE_NAME)]
    file: PathBuf,

    /// Re-resolve only this base (its reference, or the name of an image
    /// based on it) and keep the others as locked. Repeatable.
    #[arg(long, value_name = "NAME")]
    update: Vec<String>,

    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn run(args: LockArgs, store_root: &std::path::Path, reporter: &dyn Reporter) -> Result<()> {
    let file = BuildFile::load(&args.file)?;
    let store = Store::open(store_root)?;
    let opts = args.registry.base_options();
    let new = project::lock(&file, &args.update, &opts, &store, reporter)?;

    let mut out = String::new();
    for (name, b) in &new.base {
        out.push_str(&format!("{name} {}\n", b.digest));
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|_| stdout.flush())
        .map_err(|e| Error::io("<stdout>", e))
}
