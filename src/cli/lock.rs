//! `gantry lock`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use gantry::buildfile::{BaseSpec, BuildFile, DEFAULT_FILE_NAME};
use gantry::error::{Error, Result};
use gantry::lock::{self, LockFile, LockedBase};
use gantry::progress::Reporter;
use gantry::store::Store;

use super::registry::{registry_bases, RegistryArgs};

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
    let path = lock::path_for(&args.file);
    let old = LockFile::load(&path)?.unwrap_or_default();
    let opts = args.registry.base_options();

    for name in &args.update {
        let known = registry_bases(&file)
            .iter()
            .any(|(r, _)| names_base(&file, name, &r.to_string()));
        if !known {
            return Err(Error::Usage(format!(
                "--update {name}: no registry base of {} is called that (give a base \
                 reference or the name of an image based on one)",
                args.file.display()
            )));
        }
    }

    let mut new = LockFile::new();
    for (r, platform) in registry_bases(&file) {
        let key = r.to_string();
        let update =
            args.update.is_empty() || args.update.iter().any(|n| names_base(&file, n, &key));
        let platform_key = platform
            .clone()
            .unwrap_or_else(gantry::platform::host_platform)
            .to_string();
        let kept = old.base.get(&key).filter(|b| {
            !update
                && (b.platforms.contains_key(&platform_key)
                    || (platform.is_none() && b.platforms.len() == 1))
        });
        let entry = match kept {
            Some(b) => b.clone(),
            None => {
                opts.resolve_for_lock(&r, platform.as_ref(), &store, reporter)?
                    .1
            }
        };
        merge(&mut new, key, entry);
    }
    new.save(&path)?;

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

/// Whether `name` names the base `reference`: the reference as written in
/// any form that normalises to it, or an image based on it.
fn names_base(file: &BuildFile, name: &str, reference: &str) -> bool {
    if name
        .parse::<gantry::reference::Reference>()
        .is_ok_and(|r| r.with_default_tag().to_string() == reference)
    {
        return true;
    }
    file.images.get(name).is_some_and(|spec| {
        matches!(&spec.base, BaseSpec::Registry(r) if r.clone().with_default_tag().to_string() == reference)
    })
}

fn merge(lock: &mut LockFile, key: String, entry: LockedBase) {
    match lock.base.get_mut(&key) {
        Some(have) if have.digest == entry.digest => have.platforms.extend(entry.platforms),
        // One run resolves a tag once per platform; should the tag move
        // between two of those requests, the later answer wins whole.
        _ => {
            lock.base.insert(key, entry);
        }
    }
}
