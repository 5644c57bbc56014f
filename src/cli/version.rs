//! `gantry version` and the `--version` line: the release, the commit it
//! was built from, and what decides the bytes of a layer.

use std::io::{self, Write};

use clap::Args;
use serde::Serialize;

use gantry::error::{Error, JsonError, Result};

/// Set by build.rs: HEAD's commit, empty when built outside a checkout.
const COMMIT: &str = env!("GANTRY_COMMIT");
/// Set by build.rs from Cargo.lock: `name=version` pairs joined by `;`.
const COMPRESSORS: &str = env!("GANTRY_COMPRESSORS");

/// What `gantry --version` prints after the name.
pub const LONG_VERSION: &str = if COMMIT.is_empty() {
    concat!(env!("CARGO_PKG_VERSION"), " (commit unknown)")
} else {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (commit ",
        env!("GANTRY_COMMIT"),
        ")"
    )
};

#[derive(Args)]
pub struct VersionArgs {
    /// Print JSON: the version, the commit, the layer format and the
    /// pinned compressor crates.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct VersionInfo {
    version: &'static str,
    /// Null when built from a tree that is not a git checkout.
    commit: Option<&'static str>,
    /// Bumped whenever the tar or compression output changes for the same
    /// inputs.
    layer_format: u32,
    /// Crate versions locked when this binary was built: libdeflate writes
    /// gzip layers and libzstd zstd ones; flate2 reads base layers.
    compressors: Vec<Compressor>,
}

#[derive(Serialize)]
struct Compressor {
    #[serde(rename = "crate")]
    name: &'static str,
    version: &'static str,
}

pub fn run(args: VersionArgs) -> Result<()> {
    let text = if args.json {
        let info = VersionInfo {
            version: env!("CARGO_PKG_VERSION"),
            commit: (!COMMIT.is_empty()).then_some(COMMIT),
            layer_format: gantry::layer::FORMAT_VERSION,
            compressors: COMPRESSORS
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .map(|(name, version)| Compressor { name, version })
                .collect(),
        };
        let mut t = serde_json::to_string_pretty(&info).map_err(|e| {
            Error::internal_because("cannot render the version as JSON", JsonError::from(e))
        })?;
        t.push('\n');
        t
    } else {
        format!("gantry {LONG_VERSION}\n")
    };
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("<stdout>", e))
}
