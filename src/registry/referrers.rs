//! The requests that attach a referrer (an artifact manifest with a
//! `subject`) to an image: putting it and learning whether the registry
//! keeps referrers itself (the Referrers API), and reading and writing the
//! fallback tag's index where it does not.

use reqwest::header::{CONTENT_TYPE, ETAG, IF_MATCH};
use reqwest::Method;

use super::{read_limited, BodyError, Client, Repo, MAX_MANIFEST};
use crate::digest::Digest;
use crate::error::Result;
use crate::media;

/// An index as read from a tag, with the validator a conditional write
/// gives back.
#[derive(Debug, Clone)]
pub struct TaggedIndex {
    /// The bytes, at most [`MAX_MANIFEST`].
    pub bytes: Vec<u8>,
    /// The `ETag` the registry sent, if any.
    pub etag: Option<String>,
}

/// How a conditional write of the fallback index ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The registry took it.
    Done,
    /// The registry refused it because the tag changed since it was read
    /// (409 or 412): read again and merge again.
    Conflict,
}

impl Client {
    /// Puts the artifact manifest `bytes` by its digest and says whether
    /// the registry answered with `OCI-Subject`, the sign that it keeps
    /// the manifest's referrers itself.
    pub fn put_referrer(&self, at: &Repo<'_>, media_type: &str, bytes: &[u8]) -> Result<bool> {
        let digest = Digest::of(bytes);
        let url = format!(
            "{}/v2/{}/manifests/{digest}",
            self.base_url(at)?,
            at.repository
        );
        let resp = self.request(at, Method::PUT, &url, |r| {
            r.header(CONTENT_TYPE, media_type).body(bytes.to_vec())
        })?;
        if !resp.status().is_success() {
            return Err(self.status_error(at.host, at.what, resp));
        }
        Ok(resp.headers().contains_key("oci-subject"))
    }

    /// Whether `GET /v2/<name>/referrers/<subject>` answers with an image
    /// index: a registry with the Referrers API. Any other answer (404, a
    /// registry that knows no such route) means the fallback tag.
    pub fn has_referrers_api(&self, at: &Repo<'_>, subject: &Digest) -> Result<bool> {
        let url = format!(
            "{}/v2/{}/referrers/{subject}",
            self.base_url(at)?,
            at.repository
        );
        let resp = self.request(at, Method::GET, &url, |r| {
            r.header(reqwest::header::ACCEPT, media::OCI_INDEX)
        })?;
        if !resp.status().is_success() {
            return Ok(false);
        }
        let is_index = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(media::OCI_INDEX));
        Ok(is_index)
    }

    /// The index under `tag`, or `None` when the tag does not exist.
    pub fn get_tagged_index(&self, at: &Repo<'_>, tag: &str) -> Result<Option<TaggedIndex>> {
        let url = format!(
            "{}/v2/{}/manifests/{tag}",
            self.base_url(at)?,
            at.repository
        );
        let resp = self.request(at, Method::GET, &url, |r| {
            r.header(reqwest::header::ACCEPT, media::OCI_INDEX)
        })?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.status_error(at.host, at.what, resp));
        }
        let etag = resp
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = read_limited(resp, MAX_MANIFEST).map_err(|e| {
            let why = match e {
                BodyError::TooLarge => format!("the index is larger than {MAX_MANIFEST} bytes"),
                BodyError::Io(e) => format!("reading the index: {e}"),
            };
            self.err(at.host, at.what, None, None, why)
        })?;
        Ok(Some(TaggedIndex { bytes, etag }))
    }

    /// Puts the index `bytes` under `tag`, only if the tag is still what
    /// `etag` names when the registry honours `If-Match` (a registry that
    /// ignores it takes the write; the caller reads back to notice a lost
    /// entry).
    pub fn put_tagged_index(
        &self,
        at: &Repo<'_>,
        tag: &str,
        bytes: &[u8],
        etag: Option<&str>,
    ) -> Result<Written> {
        let url = format!(
            "{}/v2/{}/manifests/{tag}",
            self.base_url(at)?,
            at.repository
        );
        let resp = self.request(at, Method::PUT, &url, |r| {
            let r = r
                .header(CONTENT_TYPE, media::OCI_INDEX)
                .body(bytes.to_vec());
            match etag {
                Some(e) => r.header(IF_MATCH, e),
                None => r,
            }
        })?;
        match resp.status().as_u16() {
            409 | 412 => Ok(Written::Conflict),
            s if (200..300).contains(&s) => Ok(Written::Done),
            _ => Err(self.status_error(at.host, at.what, resp)),
        }
    }
}
