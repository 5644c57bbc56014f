//! The HTTP clients a registry client makes, each on first use: a plain
//! one for `http://` registries (no trusted roots to load), an HTTPS one
//! (the system's roots plus `--ca-cert` and `SSL_CERT_FILE`, loaded only
//! when a registry is reached over HTTPS), and the async pair that blob
//! uploads stream through (`registry::stream`), on a runtime of one thread.

use std::sync::Mutex;
use std::time::Duration;

use reqwest::Url;

use super::{Client, ClientOptions};
use crate::error::{Error, Result};

/// The async half: a runtime and its clients, made on the first upload.
pub(super) struct Streamer {
    /// Drives the upload bodies; the blocking side waits on it.
    pub(super) runtime: tokio::runtime::Runtime,
    plain: reqwest::Client,
    tls: Mutex<Option<reqwest::Client>>,
}

impl Client {
    /// The HTTP client for `url`. Loading the system's trusted roots takes
    /// tens of milliseconds, so it happens on the first HTTPS request only,
    /// never for a registry reached over plain HTTP.
    pub(super) fn http(&self, url: &str) -> Result<reqwest::blocking::Client> {
        if url.starts_with("http://") {
            return Ok(self.plain.clone());
        }
        made_once(&self.tls, || {
            let roots = self.extra_roots()?;
            let builder = http_builder(&self.opts);
            let builder = if roots.is_empty() {
                builder
            } else {
                builder.tls_certs_merge(roots)
            };
            builder.build().map_err(https_setup_error)
        })
    }

    /// The certificates of `--ca-cert` files and `SSL_CERT_FILE`.
    fn extra_roots(&self) -> Result<Vec<reqwest::Certificate>> {
        made_once(&self.roots, || self.read_roots())
    }

    fn read_roots(&self) -> Result<Vec<reqwest::Certificate>> {
        let mut roots = Vec::new();
        for path in &self.opts.ca_certs {
            let pem = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::format_because(path.display().to_string(), "not a PEM certificate", e)
            })?;
            if certs.is_empty() {
                return Err(Error::format(
                    path.display().to_string(),
                    "holds no PEM certificate",
                ));
            }
            roots.extend(certs);
        }
        Ok(roots)
    }

    /// The runtime and plain client of uploads.
    pub(super) fn streamer(&self) -> Result<&Streamer> {
        if let Some(s) = self.streamer.get() {
            return Ok(s);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gantry-upload")
            .enable_all()
            .build()
            .map_err(|e| Error::environment("cannot start the upload runtime", e))?;
        // No roots at all: this client is only ever given http:// URLs.
        let plain = http_builder_async(&self.opts)
            .tls_certs_only(std::iter::empty())
            .build()
            .map_err(|e| Error::environment("cannot set up the HTTP client", e))?;
        // Two threads making it at once: one is kept, both work.
        let _ = self.streamer.set(Streamer {
            runtime,
            plain,
            tls: Mutex::new(None),
        });
        Ok(self.streamer.get().expect("streamer set"))
    }

    /// The async client for `url`, as [`Client::http`] picks.
    pub(super) fn async_http(&self, streamer: &Streamer, url: &Url) -> Result<reqwest::Client> {
        if url.scheme() == "http" {
            return Ok(streamer.plain.clone());
        }
        made_once(&streamer.tls, || {
            let roots = self.extra_roots()?;
            let builder = http_builder_async(&self.opts);
            let builder = if roots.is_empty() {
                builder
            } else {
                builder.tls_certs_merge(roots)
            };
            builder.build().map_err(https_setup_error)
        })
    }
}

/// The settings both blocking clients share: user agent, silence timeouts,
/// no automatic redirects, TCP keep-alive. Each adds its own trusted roots.
pub(super) fn http_builder(opts: &ClientOptions) -> reqwest::blocking::ClientBuilder {
    reqwest::blocking::Client::builder()
        .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(opts.timeout)
        // The blocking client applies this to the wait for the answer's
        // headers and to each read of its body, not to the whole transfer:
        // a layer may take as long as it takes while bytes keep coming.
        .timeout(opts.timeout)
        // Redirects are followed by `Client::request`, which decides hop by
        // hop what may be sent where.
        .redirect(reqwest::redirect::Policy::none())
        .tcp_keepalive(Duration::from_secs(30))
}

/// Where a redirect answer points, resolved against the request.
pub(super) fn redirect_target(resp: &reqwest::blocking::Response) -> Option<Url> {
    if !matches!(resp.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)?
        .to_str()
        .ok()?;
    resp.url().join(location).ok()
}

/// The value in `slot`, made by `make` the first time.
fn made_once<T: Clone>(slot: &Mutex<Option<T>>, make: impl FnOnce() -> Result<T>) -> Result<T> {
    let mut slot = slot.lock().expect("client lock");
    if let Some(c) = slot.as_ref() {
        return Ok(c.clone());
    }
    let c = make()?;
    *slot = Some(c.clone());
    Ok(c)
}

fn https_setup_error(e: reqwest::Error) -> Error {
    Error::environment("cannot set up the HTTPS client", e)
}

/// [`http_builder`]'s settings, for the async client. No `read_timeout`:
/// reqwest counts it from the start of the request to the answer's
/// headers, which for an upload includes sending the whole body;
/// `registry::stream` watches for silence itself.
fn http_builder_async(opts: &ClientOptions) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(opts.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .tcp_keepalive(Duration::from_secs(30))
}
