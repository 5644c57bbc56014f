//! Registry options shared by `build`, `lock` and `pull`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use gantry::bases::BaseOptions;
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
        gantry::project::base_options(self.client_options(), self.offline)
    }
}
