//! A small client for the OCI distribution protocol: resolve a reference to
//! a manifest, fetch manifests and blobs, and push them (`upload`), with
//! docker's credentials, bearer tokens, verified TLS and bounded retries.
//!
//! It is blocking on purpose: gantry fetches a handful of documents and a
//! few layers per build, and a blocking client keeps every byte's path
//! (response → verifying reader → store temp file) visible in one function.
//! Nothing enters the store unless it hashes to the digest that named it.
//! The one exception is the body of a blob upload, sent through reqwest's
//! async client in large pieces (`stream`), with the answer handed back as
//! a blocking response.

pub mod auth;
mod authorize;
mod clients;
pub mod credentials;
pub mod referrers;
pub mod retry;
mod stream;
mod transport;
mod upload;

use transport::{certificate_error, error_chain, gave_up, is_certificate_error, request_name};
pub use upload::{MountOutcome, OpenBlob};

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use reqwest::blocking::Response;
use reqwest::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::Method;

use crate::digest::{Digest, VerifyingReader};
use crate::error::{Error, Result};
use crate::media;
use crate::progress::{Event, Reporter};
use crate::reference::Reference;
use crate::store::Store;

use auth::{Challenge, Token};
use credentials::{Credential, CredentialSources};
use retry::RetryPolicy;

/// Registries must accept manifests of 4 MiB; anything larger is refused
/// rather than read into memory.
pub const MAX_MANIFEST: u64 = 4 << 20;

/// Every manifest type gantry reads, best first. Schema 1 is accepted only
/// so that it can be refused with a useful message instead of a 404.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json;q=0.9, \
application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.1, \
application/vnd.docker.distribution.manifest.v1+json;q=0.1";

/// How long a registry may stay silent (no byte of an answer, no byte of
/// an upload taken) before the attempt is given up.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How a [`Client`] reaches registries: which may speak plain HTTP, which
/// roots it trusts, how often it retries, where it finds credentials and
/// how long it waits. [`ClientOptions::from_env`] gives what docker would.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `host[:port]` that may be reached over plain HTTP (loopback always may).
    pub insecure: Vec<String>,
    /// PEM files of extra trusted roots, added to the system's.
    pub ca_certs: Vec<PathBuf>,
    /// How many attempts a transient failure (a lost connection, a stall,
    /// 429 or 5xx) gets, and how long to wait between them.
    pub retry: RetryPolicy,
    /// Where credentials for a registry are looked up (docker and podman
    /// config files, credential helpers).
    pub credentials: CredentialSources,
    /// Silence that ends an attempt: connecting, waiting for an answer,
    /// between two reads of a body, while an upload's bytes are not taken,
    /// and for a credential helper's answer. Stalls are transient, so each
    /// is retried as the retry policy says.
    pub timeout: Duration,
}

impl ClientOptions {
    /// Credentials as docker and podman find them; `SSL_CERT_FILE` is added
    /// to the trusted roots as OpenSSL-based tools do.
    pub fn from_env() -> ClientOptions {
        let ca_certs = std::env::var_os("SSL_CERT_FILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .into_iter()
            .collect();
        ClientOptions {
            insecure: Vec::new(),
            ca_certs,
            retry: RetryPolicy::default(),
            credentials: CredentialSources::from_env(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A repository as contacted, how messages name what is fetched from it,
/// what the requests need to be allowed, and where retries and transfers
/// are reported.
#[derive(Clone, Copy)]
pub struct Repo<'a> {
    /// `host[:port]` to contact (`registry-1.docker.io` for Docker Hub, see
    /// [`Reference::registry_host`]).
    pub host: &'a str,
    /// Repository path within the registry (`library/alpine`).
    pub repository: &'a str,
    /// How errors and events name what the requests are for (`base
    /// docker.io/library/alpine:3.20`); never holds credentials.
    pub what: &'a str,
    /// What the requests must be allowed to do, which decides the scopes of
    /// the tokens asked for.
    pub access: Access<'a>,
    /// Where retries (as warnings) and download progress are reported.
    pub reporter: &'a dyn Reporter,
}

impl<'a> Repo<'a> {
    /// The repository `r` names, contacted to read from it.
    pub fn pull(r: &'a Reference, what: &'a str, reporter: &'a dyn Reporter) -> Repo<'a> {
        Repo {
            host: r.registry_host(),
            repository: &r.repository,
            what,
            access: Access::Pull,
            reporter,
        }
    }
}

/// What a request needs to be allowed to do; it decides the token scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access<'a> {
    /// Read manifests and blobs of the repository.
    Pull,
    /// Pull and push on the repository, and pull on `mount_from` (another
    /// repository of the same registry a blob is mounted from) when set.
    Push {
        /// Repository path (same registry) a blob may be mounted from;
        /// `None` when no mount is tried.
        mount_from: Option<&'a str>,
    },
}

/// What a manifest request returned, verified against the digest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The sha256 of `bytes`, equal to the digest asked for when the
    /// request named one.
    pub digest: Digest,
    /// The body's own `mediaType`, else the `Content-Type` the registry sent,
    /// else what the body's shape says.
    pub media_type: String,
    /// The manifest exactly as served (at most [`MAX_MANIFEST`] bytes): its
    /// digest is over these bytes, so they are never re-serialised.
    pub bytes: Vec<u8>,
}

impl Manifest {
    /// Whether this is a list of per-platform manifests (an OCI index or a
    /// Docker manifest list) rather than one image's manifest.
    pub fn is_index(&self) -> bool {
        media::is_index(&self.media_type)
    }
}

#[derive(Default)]
struct HostState {
    /// Held while the host is first pinged, so that requests starting in
    /// parallel ping it once; per host, so a slow registry holds up no
    /// other.
    discovery: Arc<Mutex<()>>,
    base_url: Option<String>,
    challenge: Option<Challenge>,
    credential: Option<Option<Credential>>,
}

/// A blocking client of the OCI distribution protocol, shared by every
/// request of a build or a push.
///
/// One `Client` keeps, per registry host, what the first request learnt:
/// the base URL (HTTPS, or plain HTTP for a loopback host or one in
/// [`ClientOptions::insecure`]), how the registry wants to be
/// authenticated, the credential found for it, and bearer tokens per set of
/// scopes. It is `Sync`: threads fetching layers in parallel share those,
/// and requests to one host that start together ping it once. Every transient failure is retried as
/// [`ClientOptions::retry`] says and reported through the [`Repo`]'s
/// reporter; what comes back is verified against its digest before it
/// enters the [`Store`].
pub struct Client {
    plain: reqwest::blocking::Client,
    tls: Mutex<Option<reqwest::blocking::Client>>,
    /// `--ca-cert` and `SSL_CERT_FILE`, parsed once for both HTTPS clients.
    roots: Mutex<Option<Vec<reqwest::Certificate>>>,
    opts: ClientOptions,
    hosts: Mutex<HashMap<String, HostState>>,
    tokens: Mutex<HashMap<(String, String), Token>>,
    /// The async client blob uploads go through, made on the first one.
    streamer: OnceLock<clients::Streamer>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("insecure", &self.opts.insecure)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `opts`. Nothing is contacted yet, and the trusted roots
    /// are loaded with the first HTTPS request; only a missing `ca_certs`
    /// file is reported here.
    pub fn new(opts: ClientOptions) -> Result<Client> {
        // A missing certificate file is reported before any work; reading
        // and parsing them (SSL_CERT_FILE is often the whole system bundle)
        // waits for the first HTTPS request, with the HTTPS client.
        for path in &opts.ca_certs {
            std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        }
        // No roots at all: this client only ever speaks plain HTTP. A
        // redirect to HTTPS (blob storage behind a plain registry) is
        // followed by `request` with the HTTPS client.
        let plain = clients::http_builder(&opts)
            .tls_certs_only(std::iter::empty())
            .build()
            .map_err(|e| Error::environment("cannot set up the HTTP client", e))?;
        Ok(Client {
            plain,
            tls: Mutex::new(None),
            roots: Mutex::new(None),
            opts,
            hosts: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            streamer: OnceLock::new(),
        })
    }

    /// Loopback registries, and those the user named, may speak plain HTTP.
    pub fn plain_http_allowed(&self, host: &str) -> bool {
        self.opts.insecure.iter().any(|h| h == host) || is_loopback(host)
    }

    /// Fetches the manifest `reference` (a tag or a digest) of `repository`.
    /// A digest reference is checked against the bytes; a tag's digest is
    /// computed from them.
    pub fn get_manifest(&self, at: &Repo<'_>, reference: &str) -> Result<Manifest> {
        let (host, repository, what) = (at.host, at.repository, at.what);
        let path = format!("/v2/{repository}/manifests/{reference}");
        let expected: Option<Digest> = reference.parse().ok();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let resp = self.send(at, Method::GET, &path, Some(MANIFEST_ACCEPT))?;
            let final_url = resp.url().clone();
            let header_type = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
            let header_digest = resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<Digest>().ok());
            let bytes = match read_limited(resp, MAX_MANIFEST) {
                Ok(b) => b,
                Err(BodyError::TooLarge) => {
                    return Err(self.err(
                        host,
                        what,
                        None,
                        None,
                        format!("the manifest is larger than {MAX_MANIFEST} bytes"),
                    ))
                }
                Err(BodyError::Io(e)) => {
                    let name = request_name(at, &Method::GET, &final_url);
                    let why = format!("reading the manifest: {}", self.read_failure(&name, &e));
                    if attempt < self.opts.retry.attempts {
                        self.retrying(at, attempt, None, &why);
                        continue;
                    }
                    return Err(self.err(host, what, None, None, gave_up(&why, attempt)));
                }
            };
            let digest = Digest::of(&bytes);
            if let Some(want) = expected.or(header_digest) {
                if want != digest {
                    return Err(Error::Mismatch {
                        what: format!("registry {host}: manifest of {what}"),
                        expected: want.to_string(),
                        actual: format!("{} bytes hashing to {digest}", bytes.len()),
                    });
                }
            }
            let media_type = manifest_media_type(&bytes, header_type.as_deref());
            if media::is_schema1(&media_type) {
                return Err(self.err(
                    host,
                    what,
                    None,
                    None,
                    "is a Docker schema 1 manifest, a format retired in 2019 that gantry does \
                     not read; ask for a current tag or convert it (skopeo copy --format v2s2)"
                        .into(),
                ));
            }
            if !(media::is_index(&media_type) || media::is_image_manifest(&media_type)) {
                return Err(self.err(
                    host,
                    what,
                    None,
                    None,
                    format!("is not an image (manifest media type {media_type:?})"),
                ));
            }
            return Ok(Manifest {
                digest,
                media_type,
                bytes,
            });
        }
    }

    /// Downloads a blob into the store unless it is there. The bytes are
    /// hashed on their way to a temp file, which becomes the blob only if
    /// size and digest match; a connection lost midway starts over.
    pub fn fetch_blob(
        &self,
        at: &Repo<'_>,
        digest: &Digest,
        size: u64,
        store: &Store,
    ) -> Result<()> {
        let (host, what, reporter) = (at.host, at.what, at.reporter);
        if store.size(digest) == Some(size) && store.has(digest) {
            return Ok(());
        }
        let path = format!("/v2/{}/blobs/{digest}", at.repository);
        reporter.report(Event::DownloadStarted {
            reference: what,
            digest,
            size,
        });
        let mut attempt = 0;
        loop {
            attempt += 1;
            let resp = self.send(at, Method::GET, &path, None)?;
            let name = request_name(at, &Method::GET, resp.url());
            let mut writer = store.writer_verified_by(*digest)?;
            let mut source = Marked {
                inner: resp,
                failed: false,
            };
            let mut verified = VerifyingReader::new(
                &mut source,
                *digest,
                Some(size),
                format!("registry {host}: blob {digest} of {what}"),
            );
            let copied = copy_with_progress(&mut verified, &mut writer, digest, reporter);
            match copied {
                Ok(_) => {
                    writer.commit()?;
                    reporter.report(Event::DownloadFinished {
                        reference: what,
                        digest,
                        size,
                    });
                    return Ok(());
                }
                Err(CopyError::Write(e)) => return Err(Error::io(store.root().join("tmp"), e)),
                Err(CopyError::Read(e)) if source.failed => {
                    let why = format!("downloading {digest}: {}", self.read_failure(&name, &e));
                    if attempt < self.opts.retry.attempts {
                        self.retrying(at, attempt, None, &why);
                        continue;
                    }
                    return Err(self.err(host, what, None, None, gave_up(&why, attempt)));
                }
                Err(CopyError::Read(e)) => {
                    // The registry sent bytes that are not what the digest
                    // names; the temp file is dropped, the store untouched.
                    return Err(Error::Mismatch {
                        what: format!("registry {host}: blob {digest} of {what}"),
                        expected: format!("{size} bytes hashing to {digest}"),
                        actual: e.to_string(),
                    });
                }
            }
        }
    }

    /// Fetches a small blob (a config) into the store and returns its bytes.
    pub fn fetch_small_blob(
        &self,
        at: &Repo<'_>,
        digest: &Digest,
        size: u64,
        store: &Store,
    ) -> Result<Vec<u8>> {
        let (host, what) = (at.host, at.what);
        if size > MAX_MANIFEST {
            return Err(self.err(
                host,
                what,
                None,
                None,
                format!("blob {digest} is {size} bytes, too large for a JSON document"),
            ));
        }
        self.fetch_blob(at, digest, size, store)?;
        store.read(digest)
    }

    /// Says why and for how long, then waits before another attempt.
    fn retrying(&self, at: &Repo<'_>, attempt: u32, retry_after: Option<Duration>, why: &str) {
        let delay = self.opts.retry.delay(attempt, retry_after);
        at.reporter.report(Event::Warning {
            message: &format!(
                "registry {}: {}: {why}; retrying in {:.1} s (attempt {} of {})",
                at.host,
                at.what,
                delay.as_secs_f64(),
                attempt + 1,
                self.opts.retry.attempts
            ),
        });
        std::thread::sleep(delay);
    }

    fn err(
        &self,
        host: &str,
        what: &str,
        status: Option<u16>,
        code: Option<String>,
        message: String,
    ) -> Error {
        Error::Registry {
            registry: host.to_string(),
            reference: what.to_string(),
            status,
            code,
            message,
            cause: None,
        }
    }

    fn with_host<T>(&self, host: &str, f: impl FnOnce(&mut HostState) -> T) -> T {
        let mut hosts = self.hosts.lock().expect("hosts lock");
        f(hosts.entry(host.to_string()).or_default())
    }

    /// `https://host` or, where allowed and HTTPS does not answer,
    /// `http://host`; found once per host by pinging `/v2/`, which also
    /// tells how the registry wants to be authenticated.
    fn base_url(&self, at: &Repo<'_>) -> Result<String> {
        let host = at.host;
        if let Some(u) = self.with_host(host, |h| h.base_url.clone()) {
            return Ok(u);
        }
        let discovery = self.with_host(host, |h| h.discovery.clone());
        let _one_at_a_time = discovery.lock().expect("discovery lock");
        if let Some(u) = self.with_host(host, |h| h.base_url.clone()) {
            return Ok(u);
        }
        let https = format!("https://{host}");
        let http = format!("http://{host}");
        let ping_plain = || self.plain.get(format!("{http}/v2/"));
        let (base, resp) = if let Some(r) = self.ping_plain_first(host) {
            (http, r)
        } else {
            let tls = self.http(&https)?;
            let ping_tls = || tls.get(format!("{https}/v2/"));
            if self.plain_http_allowed(host) {
                // One HTTPS attempt without retries: a plain-HTTP registry
                // answers it with a failed handshake, which is the answer.
                match ping_tls().send() {
                    Ok(r) => (https, r),
                    // A registry that speaks TLS with a certificate we cannot
                    // verify must not be quietly talked to in plain text.
                    Err(e) if is_certificate_error(&error_chain(&e)) => {
                        return Err(certificate_error(e));
                    }
                    Err(_) => {
                        let r = self.execute(at, ping_plain)?;
                        (http, r)
                    }
                }
            } else {
                let r = self.execute(at, ping_tls)?;
                (https, r)
            }
        };
        self.remember_ping(host, &base, &resp);
        Ok(base)
    }

    /// A loopback registry is asked in plain HTTP first: no one can sit
    /// between, and it spares loading the system's trusted roots (tens of
    /// milliseconds) for a registry that speaks no TLS. A TLS server answers
    /// plain HTTP with 400 or a closed connection, and is then asked over
    /// HTTPS as any other.
    fn ping_plain_first(&self, host: &str) -> Option<Response> {
        if !is_loopback(host) {
            return None;
        }
        self.plain
            .get(format!("http://{host}/v2/"))
            .send()
            .ok()
            .filter(|r| matches!(r.status().as_u16(), 200 | 401))
    }

    /// The ping's answer says where the registry is and how it wants to be
    /// authenticated.
    fn remember_ping(&self, host: &str, base: &str, resp: &Response) {
        let challenge = if resp.status().as_u16() == 401 {
            resp.headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(auth::parse_challenge)
        } else {
            None
        };
        self.with_host(host, |h| {
            h.base_url = Some(base.to_string());
            h.challenge = challenge;
        });
    }

    /// Contacts `host` once, quietly, so that the requests that follow find
    /// it reached (and, for HTTPS, the trusted roots loaded and a connection
    /// open). Meant to run while other work does; a failure is left for
    /// those requests to meet, retry and report.
    pub fn warm_up(&self, host: &str) {
        let discovery = self.with_host(host, |h| h.discovery.clone());
        let _one_at_a_time = discovery.lock().expect("discovery lock");
        if self.with_host(host, |h| h.base_url.is_some()) {
            return;
        }
        if let Some(r) = self.ping_plain_first(host) {
            self.remember_ping(host, &format!("http://{host}"), &r);
            return;
        }
        let https = format!("https://{host}");
        let answer = self
            .http(&https)
            .ok()
            .and_then(|c| c.get(format!("{https}/v2/")).send().ok());
        if let Some(r) = answer.filter(|r| matches!(r.status().as_u16(), 200 | 401)) {
            self.remember_ping(host, &https, &r);
        }
    }
}

fn authority(u: &reqwest::Url) -> String {
    match (u.host_str(), u.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

/// `localhost`, 127.0.0.0/8 and ::1, with or without a port.
pub fn is_loopback(host: &str) -> bool {
    let name = if host.parse::<IpAddr>().is_ok() {
        host
    } else if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h)
    };
    name == "localhost"
        || name
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// The registry's own `{"errors":[{"code","message"}]}`, first error.
#[doc(hidden)] // for the fuzz targets
pub fn registry_error_body(body: &[u8]) -> Option<(Option<String>, String)> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Item>,
        #[serde(default)]
        details: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        message: Option<String>,
    }
    let b: Body = serde_json::from_slice(body).ok()?;
    if let Some(first) = b.errors.into_iter().next() {
        return Some((first.code, first.message.unwrap_or_default()));
    }
    b.details.map(|d| (None, d))
}

/// The body's `mediaType` wins over `Content-Type`, which some registries
/// and proxies get wrong; without either, the shape decides.
#[doc(hidden)] // for the fuzz targets
pub fn manifest_media_type(bytes: &[u8], header: Option<&str>) -> String {
    media::sniff(bytes, header)
}

enum BodyError {
    TooLarge,
    Io(io::Error),
}

fn read_limited(resp: Response, limit: u64) -> std::result::Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    resp.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(BodyError::Io)?;
    if out.len() as u64 > limit {
        return Err(BodyError::TooLarge);
    }
    Ok(out)
}

/// Remembers whether the network (rather than the verifier above it) failed.
struct Marked<R> {
    inner: R,
    failed: bool,
}

impl<R: Read> Read for Marked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| self.failed = true)
    }
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

fn copy_with_progress(
    src: &mut dyn Read,
    dst: &mut dyn io::Write,
    digest: &Digest,
    reporter: &dyn Reporter,
) -> std::result::Result<u64, CopyError> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    let mut last_report = Instant::now();
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        dst.write_all(&buf[..n]).map_err(CopyError::Write)?;
        done += n as u64;
        if last_report.elapsed() >= Duration::from_millis(100) {
            reporter.report(Event::DownloadProgress { digest, done });
            last_report = Instant::now();
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests;
