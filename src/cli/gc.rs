//! `gantry gc`.

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use clap::Args;

use gantry::error::{Error, JsonError, Result};
use gantry::fsutil::Freed;
use gantry::store::gc::{self, GcOptions};
use gantry::store::Store;

use super::reporter::human_size;

#[derive(Args)]
pub struct GcArgs {
    /// Remove blobs and records no build or push has used for this many days.
    #[arg(long, value_name = "N", default_value_t = 30)]
    keep_days: u64,

    /// Say what would be removed, and remove nothing.
    #[arg(long)]
    dry_run: bool,

    /// Print a JSON report on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: GcArgs, store_root: &Path) -> Result<()> {
    let store = Store::open(store_root)?;
    let keep = Duration::from_secs(args.keep_days.saturating_mul(86_400));
    let report = gc::gc(
        &store,
        &GcOptions {
            keep,
            dry_run: args.dry_run,
        },
    )?;
    let text = if args.json {
        let mut t = serde_json::to_string_pretty(&report).map_err(|e| {
            Error::internal_because("cannot render the report as JSON", JsonError::from(e))
        })?;
        t.push('\n');
        t
    } else {
        let verb = if args.dry_run { "would free" } else { "freed" };
        let part = |f: Freed, what: &str| format!("{} {what} ({})", f.count, human_size(f.bytes));
        let total = report.total();
        let mut t = format!(
            "{verb} {} in {} files: {}, {}, {}, {}\n",
            human_size(total.bytes),
            total.count,
            part(report.blobs, "blobs"),
            part(report.records, "records"),
            part(report.temporaries, "temporary files"),
            part(report.corrupt, "damaged blobs"),
        );
        if report.running > 0 {
            t.push_str(&format!(
                "kept what the {} other running gantry processes may use\n",
                report.running
            ));
        }
        t
    };
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
        .map_err(|e| Error::io("<stdout>", e))
}
