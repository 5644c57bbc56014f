//! The push half of the distribution protocol: blob existence, cross-
//! repository mounts, uploads, and manifests.
//!
//! A blob goes up as one monolithic `PUT <location>?digest=` with a body
//! streamed from its source (`registry::stream`), never as small fixed
//! chunks, after a `POST` opened the session. Each attempt opens a fresh session and a fresh
//! source, so an upload that failed half-way starts over cleanly instead of
//! resuming a session whose state the registry may have dropped. The
//! registry hashes what it received and refuses a wrong digest, so a source
//! that lies cannot leave a wrong blob behind.

use std::io::{self, Read};

use reqwest::blocking::Response;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION,
};
use reqwest::{Method, Url};

use super::stream::StreamError;
use super::transport::{
    bad_url, classify, failed, gave_up, request_name, retry_after, sensitive, shown, SendError,
};
use super::{retry, Access, Client, Repo};
use crate::digest::Digest;
use crate::error::{Error, Result};

/// Opens the bytes of a blob for one upload attempt.
pub type OpenBlob<'a> = dyn Fn() -> Result<Box<dyn Read + Send>> + Sync + 'a;

/// How a blob reached the target repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountOutcome {
    /// Linked from another repository of the same registry; no bytes sent.
    Mounted,
    /// Sent in full.
    Uploaded,
}

/// What a `POST` to the upload endpoint answered.
enum Started {
    Mounted,
    Session(Url),
}

impl Client {
    /// Whether the repository has the blob. A 401 or 403 (after one token
    /// renewal) says nothing either way, so the blob is uploaded and the
    /// upload says what is wrong if anything is.
    pub fn blob_exists(&self, at: &Repo<'_>, digest: &Digest) -> Result<bool> {
        let url = self.url(at, &format!("/v2/{}/blobs/{digest}", at.repository))?;
        let resp = self.request(at, Method::HEAD, &url, |r| r)?;
        match resp.status().as_u16() {
            200..=299 => Ok(true),
            401 | 403 | 404 => Ok(false),
            _ => Err(self.status_error(at.host, at.what, resp)),
        }
    }

    /// Puts a blob into `at`'s repository: mounted from `mount_from` (a
    /// repository of the same registry known to hold it) when given and the
    /// registry agrees, else uploaded from `source`. Transient failures
    /// start the upload over, up to the retry policy's attempts.
    pub fn push_blob(
        &self,
        at: &Repo<'_>,
        digest: &Digest,
        size: u64,
        mount_from: Option<&str>,
        source: &OpenBlob<'_>,
    ) -> Result<MountOutcome> {
        let mut mount_from = mount_from.filter(|m| *m != at.repository);
        let mut renewed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.opts.retry.attempts;
            let location = match mount_from.take() {
                Some(from) => match self.start_upload(at, digest, Some(from)) {
                    Ok(Started::Mounted) => return Ok(MountOutcome::Mounted),
                    Ok(Started::Session(loc)) => loc,
                    // A registry that refuses the mount (no pull access to
                    // the source, mounts unsupported, source gone) may still
                    // take the blob the ordinary way.
                    Err(_) => self.open_session(at, digest)?,
                },
                None => self.open_session(at, digest)?,
            };
            let mut url = location;
            url.query_pairs_mut()
                .append_pair("digest", &digest.to_string());
            let mut headers = HeaderMap::new();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Some(h) = self.authorization_for(at, &url)? {
                let h = sensitive(&h).ok_or_else(|| {
                    self.err(at.host, at.what, None, None, "unusable credentials".into())
                })?;
                headers.insert(AUTHORIZATION, h);
            }
            let name = request_name(at, &Method::PUT, &url);
            let why = match self.put_streamed(&url, headers, size, source()?)? {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if (200..300).contains(&status) {
                        self.check_digest_header(at, &resp, digest, "blob")?;
                        return Ok(MountOutcome::Uploaded);
                    }
                    if status == 401 && !renewed {
                        renewed = true;
                        self.renew_after_401(at, &resp);
                        attempt -= 1;
                        continue;
                    }
                    if retry::retryable_status(status) && !last {
                        let after = retry_after(&resp);
                        self.retrying(at, attempt, after, &format!("upload: HTTP {status}"));
                        continue;
                    }
                    return Err(self.status_error(at.host, at.what, resp));
                }
                // The source, not the registry, failed: a blob that does
                // not match its digest is final, a dropped download from a
                // source registry is not.
                Err(StreamError::Source(src)) => {
                    if src.kind() == io::ErrorKind::InvalidData || last {
                        return Err(Error::format_because(at.what, "reading the blob", src));
                    }
                    format!("reading the blob: {src}")
                }
                // Connecting is the one wait the async client times.
                Err(StreamError::Send(e)) if e.is_timeout() => {
                    let m = format!("upload: {}", self.stalled(&name));
                    if last {
                        return Err(self.err(at.host, at.what, None, None, gave_up(&m, attempt)));
                    }
                    m
                }
                Err(StreamError::Send(e)) => match classify(e) {
                    SendError::Transient(m) if !last => format!("upload: {m}"),
                    SendError::Transient(m) => {
                        return Err(self.err(at.host, at.what, None, None, gave_up(&m, attempt)))
                    }
                    SendError::Failed { message, .. } if !last => format!("upload: {message}"),
                    SendError::Failed { cause, .. } => {
                        let what = gave_up(&format!("upload: PUT {}", shown(&url)), attempt);
                        return Err(failed(at, what, cause));
                    }
                    SendError::Fatal(err) => return Err(err),
                },
                Err(StreamError::Stalled) if !last => format!("upload: {}", self.stalled(&name)),
                Err(StreamError::Stalled) => {
                    let m = format!("upload: {}", self.stalled(&name));
                    return Err(self.err(at.host, at.what, None, None, gave_up(&m, attempt)));
                }
                Err(StreamError::Lost(m)) if !last => format!("upload: {m}"),
                Err(StreamError::Lost(m)) => return Err(self.err(at.host, at.what, None, None, m)),
            };
            self.retrying(at, attempt, None, &why);
        }
    }

    fn open_session(&self, at: &Repo<'_>, digest: &Digest) -> Result<Url> {
        match self.start_upload(at, digest, None)? {
            Started::Session(u) => Ok(u),
            // `start_upload` says "mounted" only when asked to mount; any
            // other answer than 202 to a plain POST is an error there.
            Started::Mounted => unreachable!("a POST without mount= answered as mounted"),
        }
    }

    /// `POST /v2/<repo>/blobs/uploads/`, with `?mount=&from=` when mounting.
    /// The token for a mount carries pull on the source as well.
    fn start_upload(&self, at: &Repo<'_>, digest: &Digest, from: Option<&str>) -> Result<Started> {
        let mut url = Url::parse(&self.url(at, &format!("/v2/{}/blobs/uploads/", at.repository))?)
            .map_err(|e| bad_url(at, e))?;
        let mounting;
        let at = match from {
            Some(from) => {
                url.query_pairs_mut()
                    .append_pair("mount", &digest.to_string())
                    .append_pair("from", from);
                mounting = Repo {
                    access: Access::Push {
                        mount_from: Some(from),
                    },
                    ..*at
                };
                &mounting
            }
            None => at,
        };
        // Some registries want an explicit empty body on the POST.
        let resp = self.request(at, Method::POST, url.as_str(), |r| {
            r.header(CONTENT_LENGTH, 0)
        })?;
        let status = resp.status().as_u16();
        if status == 201 && from.is_some() {
            return Ok(Started::Mounted);
        }
        if status != 202 {
            return Err(self.status_error(at.host, at.what, resp));
        }
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                self.err(
                    at.host,
                    at.what,
                    Some(status),
                    None,
                    "the upload answer has no Location".into(),
                )
            })?;
        // Relative or absolute, with whatever state the registry keeps in
        // its query string: resolved against the request, used as given.
        let session = resp.url().join(location).map_err(|_| {
            self.err(
                at.host,
                at.what,
                Some(status),
                None,
                "the upload Location is not a URL".into(),
            )
        })?;
        self.check_downgrade(at, resp.url(), &session, "upload Location")?;
        Ok(Started::Session(session))
    }

    /// The digest `reference` (a tag) points at, or `None` when it points
    /// nowhere. A tag that already names the digest is not put again.
    pub fn manifest_digest(
        &self,
        at: &Repo<'_>,
        reference: &str,
        media_type: &str,
    ) -> Result<Option<Digest>> {
        let url = self.url(at, &format!("/v2/{}/manifests/{reference}", at.repository))?;
        let resp = self.request(at, Method::HEAD, &url, |r| r.header(ACCEPT, media_type))?;
        match resp.status().as_u16() {
            200..=299 => Ok(resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())),
            401 | 403 | 404 => Ok(None),
            _ => Err(self.status_error(at.host, at.what, resp)),
        }
    }

    /// Puts a manifest under `reference` (a tag or its digest). The
    /// registry must store these exact bytes: a different digest back is an
    /// error.
    pub fn put_manifest(
        &self,
        at: &Repo<'_>,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<()> {
        let url = self.url(at, &format!("/v2/{}/manifests/{reference}", at.repository))?;
        let resp = self.request(at, Method::PUT, &url, |r| {
            r.header(CONTENT_TYPE, media_type).body(bytes.to_vec())
        })?;
        if !resp.status().is_success() {
            return Err(self.status_error(at.host, at.what, resp));
        }
        self.check_digest_header(at, &resp, &Digest::of(bytes), "manifest")
    }

    /// A blob's bytes as the registry sends them, unverified: the caller
    /// wraps them in a `VerifyingReader`.
    pub fn open_blob(&self, at: &Repo<'_>, digest: &Digest) -> Result<Response> {
        self.send(
            at,
            Method::GET,
            &format!("/v2/{}/blobs/{digest}", at.repository),
            None,
        )
    }

    fn url(&self, at: &Repo<'_>, path: &str) -> Result<String> {
        Ok(format!("{}{path}", self.base_url(at)?))
    }

    fn check_digest_header(
        &self,
        at: &Repo<'_>,
        resp: &Response,
        digest: &Digest,
        what: &str,
    ) -> Result<()> {
        let said = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok());
        match said.map(|s| s.parse::<Digest>()) {
            Some(Ok(d)) if d != *digest => Err(Error::Mismatch {
                what: format!("registry {}: {what} stored for {}", at.host, at.what),
                expected: digest.to_string(),
                actual: d.to_string(),
            }),
            _ => Ok(()),
        }
    }
}
