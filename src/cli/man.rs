//! `gantry man [VERB]`: the manual pages, rendered from the same
//! definitions as `--help`.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;

use gantry::error::{Error, Result};

#[derive(Args)]
pub struct ManArgs {
    /// The verb whose page to print (default: the page of gantry itself).
    #[arg(value_name = "VERB")]
    verb: Option<String>,

    /// Write every page (gantry.1, gantry-build.1 and the others) into
    /// this directory instead of printing one.
    #[arg(long, value_name = "DIR", conflicts_with = "verb")]
    dir: Option<PathBuf>,
}

pub fn run(args: ManArgs, cmd: clap::Command) -> Result<()> {
    let mut cmd = cmd.disable_help_subcommand(true);
    // Building gives each verb its `gantry-VERB` name and the global flags.
    cmd.build();
    if let Some(dir) = &args.dir {
        return write_all(&cmd, dir);
    }
    let page = match &args.verb {
        None => cmd,
        Some(verb) => match documented(&cmd).find(|s| s.get_name() == verb) {
            Some(sub) => sub.clone(),
            None => {
                let verbs: Vec<&str> = documented(&cmd).map(|s| s.get_name()).collect();
                return Err(Error::Usage(format!(
                    "gantry man {verb}: no such verb (verbs: {})",
                    verbs.join(", ")
                )));
            }
        },
    };
    let mut text = Vec::new();
    man(page)
        .render(&mut text)
        .map_err(|e| Error::io("<stdout>", e))?;
    let mut out = io::stdout().lock();
    out.write_all(&text)
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("<stdout>", e))
}

/// The verbs that get a page: every one `--help` lists.
fn documented(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands().filter(|s| !s.is_hide_set())
}

/// A verb's page names gantry's version as its source, as gantry's does.
fn man(page: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(page).source(format!("gantry {}", env!("CARGO_PKG_VERSION")))
}

/// Writes each page atomically, so an install never leaves half a page.
fn write_all(cmd: &clap::Command, dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let pages = std::iter::once(cmd).chain(documented(cmd));
    for page in pages {
        let page = man(page.clone());
        let path = dir.join(page.get_filename());
        let mut text = Vec::new();
        page.render(&mut text).map_err(|e| Error::io(&path, e))?;
        gantry::fsutil::write_atomic(&path, &text)?;
    }
    Ok(())
}
