//! `gantry pull`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use gantry::error::{Error, Result};
use gantry::output;
use gantry::platform::Platform;
use gantry::progress::Reporter;
use gantry::reference::Reference;
use gantry::store::Store;

use super::registry::RegistryArgs;

#[derive(Args)]
pub struct PullArgs {
    /// The image: `alpine:3.20`, `ghcr.io/acme/base@sha256:…`, …
    reference: String,

    /// The platform to take from a multi-platform image (default: linux on
    /// this machine's architecture).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,

    /// Where to write it: a directory (an OCI layout, usable as
    /// `base = "oci:DIR"`) or a .tar path (a docker tarball).
    #[arg(short, long, value_name = "PATH")]
    output: PathBuf,

    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn run(args: PullArgs, store_root: &Path, reporter: &dyn Reporter) -> Result<()> {
    let r: Reference = args.reference.parse::<Reference>()?.with_default_tag();
    let platform = args
        .platform
        .as_deref()
        .map(Platform::parse)
        .transpose()
        .map_err(|e| Error::Usage(format!("--platform: {e}")))?;
    let store = Store::open(store_root)?;
    let opts = args.registry.base_options();
    let image = output::pull(&r, platform.as_ref(), &opts, &store, &args.output, reporter)?;
    // print! panics on a closed pipe; a reader that went away is an error.
    let mut out = std::io::stdout().lock();
    writeln!(out, "{r} {}", image.digest())
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("<stdout>", e))
}
