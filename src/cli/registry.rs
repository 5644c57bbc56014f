//! Registry options shared by `build`, `lock` and `pull`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use gantry::bases::BaseOptions;
use gantry::buildfile::{BaseSpec, BuildFile};
use gantry::error::{Error, Result};
use gantry::lock::{self, LockFile};
use gantry::platform::Platform;
use gantry::reference::Reference;
use gantry::registry::ClientOptions;

#[derive(Args, Clone, Default)]
pub struct RegistryArgs {
    /// A registry (HOST[:PORT]) that may be reached over plain HTTP when it
    /// does not answer HTTPS. Loopback registries always may. Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure: Vec<String>,

    /// Also trust the CA certificates in this PEM file. Repeatable.
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_certs: Vec<PathBuf>,

    /// Never use the network: every manifest, config and layer needed must be
    /// in the store already.
    #[arg(long)]
    pub offline: bool,

    /// Give up a registry request (and retry it) after this many seconds
    /// without a byte; also how long a credential helper may take
    /// [default: 30].
    #[arg(
        long = "http-timeout",
        value_name = "SECONDS",
        env = HTTP_TIMEOUT_ENV,
        value_parser = parse_timeout
    )]
    pub http_timeout: Option<Duration>,
}

const HTTP_TIMEOUT_ENV: &str = "GANTRY_HTTP_TIMEOUT";

/// Whole seconds, at least 1: a wait without a limit is what the timeout
/// is there to prevent. Clap does not say where a bad value came from, so
/// the message names both.
fn parse_timeout(s: &str) -> std::result::Result<Duration, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if (1..=86_400).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "--http-timeout (or {HTTP_TIMEOUT_ENV}) takes whole seconds from 1 to 86400"
        )),
    }
}

impl RegistryArgs {
    pub fn client_options(&self) -> ClientOptions {
        let mut o = ClientOptions::from_env();
        o.insecure.extend(self.insecure.iter().cloned());
        o.ca_certs.extend(self.ca_certs.iter().cloned());
        if let Some(t) = self.http_timeout {
            o.timeout = t;
        }
        o
    }

    pub fn base_options(&self) -> BaseOptions {
        let mut b = BaseOptions::new(self.client_options());
        b.offline = self.offline;
        b
    }
}

/// Every registry base of the build file with each platform it is used for,
/// once each, in a stable order.
pub fn registry_bases(file: &BuildFile) -> Vec<(Reference, Option<Platform>)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for spec in file.images.values() {
        if let BaseSpec::Registry(r) = &spec.base {
            let r = &r.clone().with_default_tag();
            // A multi-platform image needs its base for every platform.
            let platforms: Vec<Option<Platform>> = if spec.is_multi_platform() {
                spec.platforms.iter().cloned().map(Some).collect()
            } else {
                vec![spec.platform.clone()]
            };
            for p in platforms {
                if seen.insert((r.to_string(), p.as_ref().map(|p| p.to_string()))) {
                    out.push((r.clone(), p));
                }
            }
        }
    }
    out
}

/// Reads `gantry.lock` beside the build file into `opts`. With `locked`, a
/// missing lock, one that lacks a base, or one that lists bases the build
/// file no longer uses is an error (a missing platform is caught when the
/// base is loaded).
pub fn attach_lock(
    opts: &mut BaseOptions,
    file: &BuildFile,
    build_file: &Path,
    locked: bool,
) -> Result<()> {
    let path = lock::path_for(build_file);
    let lock = LockFile::load(&path)?;
    let bases = registry_bases(file);
    if locked {
        let Some(l) = &lock else {
            if bases.is_empty() {
                return Ok(());
            }
            return Err(Error::Lock {
                path,
                message: format!(
                    "--locked needs a lock file, and there is none; run `gantry lock` \
                     (base {} is not locked)",
                    bases[0].0
                ),
            });
        };
        if let Some((missing, _)) = bases
            .iter()
            .find(|(r, _)| !l.base.contains_key(&r.to_string()))
        {
            return Err(Error::Lock {
                path,
                message: format!(
                    "base {missing} is not in the lock; run `gantry lock` (the lock is stale)"
                ),
            });
        }
        let used: BTreeSet<String> = bases.iter().map(|(r, _)| r.to_string()).collect();
        if let Some(extra) = l.base.keys().find(|k| !used.contains(*k)) {
            return Err(Error::Lock {
                path,
                message: format!(
                    "base {extra} is locked but no image uses it; run `gantry lock` (the lock \
                     is stale)"
                ),
            });
        }
    }
    opts.lock = lock;
    opts.lock_path = Some(path);
    opts.locked = locked;
    Ok(())
}
