//! `gantry inspect`.

use std::path::PathBuf;

use std::io::{self, Write};

use clap::Args;

use gantry::error::{Error, JsonError, Result};

#[derive(Args)]
pub struct InspectArgs {
    /// A docker tarball, OCI archive or OCI layout directory.
    path: PathBuf,

    /// Which image, when the file holds several (a tag or full name).
    #[arg(long, value_name = "NAME")]
    image: Option<String>,

    /// Of a multi-platform image, show this platform's image
    /// (os/arch[/variant]) instead of the index.
    #[arg(long, value_name = "PLATFORM", value_parser = gantry::platform::Platform::parse)]
    platform: Option<gantry::platform::Platform>,

    /// Machine-readable JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: InspectArgs) -> Result<()> {
    let info =
        gantry::inspect::inspect_any(&args.path, args.image.as_deref(), args.platform.as_ref())?;
    let text = if args.json {
        let mut t = serde_json::to_string_pretty(&info).map_err(|e| {
            Error::internal_because("cannot render inspection as JSON", JsonError::from(e))
        })?;
        t.push('\n');
        t
    } else {
        info.to_string()
    };
    // print! panics on a closed pipe; a reader that went away is an error.
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("<stdout>", e))
}
