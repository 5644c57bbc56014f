//! `gantry pull`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use gantry::error::{Error, Result};
use gantry::image::Artifact;
use gantry::layout::write::{self, Format};
use gantry::platform::Platform;
use gantry::progress::{Event, Reporter};
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
    let mut loaded = opts.load_base(&r, platform.as_ref(), &store, reporter)?;
    if let Some(want) = &platform {
        let have = Platform::parse(&loaded.image.platform()).ok();
        if have.as_ref() != Some(want) {
            return Err(Error::Usage(format!(
                "{r} is an image for {}, not {want}",
                loaded.image.platform()
            )));
        }
    }
    opts.ensure_blobs(&[&loaded.image], &store, reporter)?;
    if r.tag.is_some() {
        let mut tagged = r.clone();
        tagged.digest = None;
        loaded.image.tags = vec![tagged.to_string()];
    }
    let format = if args.output.to_string_lossy().ends_with(".tar") {
        Format::Docker
    } else {
        Format::Oci
    };
    if let Some(parent) = args.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let artifact = Artifact::Image(loaded.image);
    write::write_archive_file(&[&artifact], &store, format, &args.output)?;
    reporter.report(Event::OutputWritten {
        image: &r.to_string(),
        path: &args.output.display().to_string(),
    });
    // print! panics on a closed pipe; a reader that went away is an error.
    let mut out = std::io::stdout().lock();
    writeln!(out, "{r} {}", artifact.digest())
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("<stdout>", e))
}
