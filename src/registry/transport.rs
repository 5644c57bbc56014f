//! Sending one request to a registry: credentials attached only for their
//! own origin, redirects followed hop by hop (never from HTTPS down to a
//! host not allowed plain HTTP), a token renewed once on a 401, transient
//! failures and silences retried with backoff, and error statuses turned
//! into errors carrying the registry's own code and message.

use std::io;
use std::time::{Duration, SystemTime};

use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header::{ACCEPT, AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::Method;

use super::{auth, authority, clients, read_limited, registry_error_body, retry, Client, Repo};
use crate::error::{Error, Result};

/// Redirects followed for one request before giving up.
const MAX_REDIRECTS: usize = 10;

/// A failure before any HTTP status: worth another attempt or not.
pub(super) enum SendError {
    /// A reset, refused connection or stall, worth retrying; the message
    /// has no URL query or credential in it.
    Transient(String),
    /// As `Transient`, with the HTTP client's error, which the last
    /// attempt's error keeps as its cause.
    Failed {
        /// The whole account, for a line saying it is tried again.
        message: String,
        /// reqwest's error, stripped of its URL.
        cause: reqwest::Error,
    },
    /// Retrying cannot help (a certificate that does not verify, a request
    /// that cannot be built): the error to return.
    Fatal(Error),
}

impl Client {
    /// Sends one request with authentication, renewing the token once on a
    /// 401, and retrying transient failures. Error statuses become errors
    /// carrying the registry's code and message.
    pub(super) fn send(
        &self,
        at: &Repo<'_>,
        method: Method,
        path: &str,
        accept: Option<&str>,
    ) -> Result<Response> {
        let url = format!("{}{path}", self.base_url(at)?);
        let resp = self.request(at, method, &url, |req| match accept {
            Some(a) => req.header(ACCEPT, a),
            None => req,
        })?;
        if resp.status().as_u16() >= 400 {
            return Err(self.status_error(at.host, at.what, resp));
        }
        Ok(resp)
    }

    /// Sends the request `build` makes of a fresh one to `url`, with
    /// authentication, renewing the token once on a 401 and retrying
    /// transient failures; any other status is the caller's to read. `build`
    /// runs once per attempt, so its body must be one that can be sent again.
    pub(super) fn request(
        &self,
        at: &Repo<'_>,
        method: Method,
        url: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response> {
        let url = reqwest::Url::parse(url).map_err(|e| bad_url(at, e))?;
        let mut renewed = false;
        loop {
            let resp = self.follow(
                at,
                &method,
                url.clone(),
                |u| self.authorization_for(at, u),
                &build,
            )?;
            if resp.status().as_u16() == 401 && !renewed {
                renewed = true;
                self.renew_after_401(at, &resp);
                continue;
            }
            return Ok(resp);
        }
    }

    /// Sends a request and follows its redirects, each hop with the client
    /// for its scheme and with what `credential` allows for its URL.
    /// `GET` and `HEAD` follow redirects anywhere (but never from HTTPS to
    /// a host not allowed plain HTTP); a request with a body only follows a
    /// 307 or 308 to the same origin, so its body goes nowhere else.
    pub(super) fn follow(
        &self,
        at: &Repo<'_>,
        method: &Method,
        mut url: reqwest::Url,
        credential: impl Fn(&reqwest::Url) -> Result<Option<String>>,
        build: &impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response> {
        let replayable = *method == Method::GET || *method == Method::HEAD;
        let mut hops = 0;
        loop {
            let http = self.http(url.as_str())?;
            let auth = match credential(&url)? {
                Some(h) => Some(sensitive(&h).ok_or_else(|| {
                    self.err(at.host, at.what, None, None, "unusable credentials".into())
                })?),
                None => None,
            };
            let resp = self.execute(at, || {
                let req = build(http.request(method.clone(), url.clone()));
                match &auth {
                    Some(h) => req.header(AUTHORIZATION, h.clone()),
                    None => req,
                }
            })?;
            let Some(next) = clients::redirect_target(&resp) else {
                return Ok(resp);
            };
            let status = resp.status().as_u16();
            let keeps_body = matches!(status, 307 | 308) && next.origin() == url.origin();
            if !(replayable || keeps_body) {
                return Ok(resp);
            }
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(self.err(
                    at.host,
                    at.what,
                    Some(status),
                    None,
                    format!(
                        "{method} {}: more than {MAX_REDIRECTS} redirects",
                        shown(&url)
                    ),
                ));
            }
            self.check_downgrade(at, &url, &next, "redirect")?;
            url = next;
        }
    }

    /// Refuses a step from HTTPS to plain HTTP (a redirect, or an upload
    /// `Location`) unless the host it goes to may be reached over plain
    /// HTTP anyway: TLS, once the registry speaks it, is never dropped
    /// silently.
    pub(super) fn check_downgrade(
        &self,
        at: &Repo<'_>,
        from: &reqwest::Url,
        to: &reqwest::Url,
        kind: &str,
    ) -> Result<()> {
        if from.scheme() == "https"
            && to.scheme() == "http"
            && !self.plain_http_allowed(&authority(to))
        {
            return Err(self.err(
                at.host,
                at.what,
                None,
                None,
                format!(
                    "refused {kind} from HTTPS to plain HTTP: {}; name {} with \
                     --insecure-registry if that is intended",
                    shown(to),
                    authority(to)
                ),
            ));
        }
        Ok(())
    }

    /// What a stalled request says: the request and how long nothing came.
    pub(super) fn stalled(&self, request: &str) -> String {
        let t = self.opts.timeout;
        if t.subsec_millis() == 0 {
            format!("{request}: no data for {} s", t.as_secs())
        } else {
            format!("{request}: no data for {:.1} s", t.as_secs_f64())
        }
    }

    /// Why reading an answer's body failed, for a message.
    pub(super) fn read_failure(&self, request: &str, e: &io::Error) -> String {
        if is_timeout(e) {
            self.stalled(request)
        } else {
            format!("{request}: {e}")
        }
    }

    /// A 401 means the token expired or was revoked, or the registry wants
    /// another kind of authentication than the ping said: forget the token
    /// and take the new challenge.
    pub(super) fn renew_after_401(&self, at: &Repo<'_>, resp: &Response) {
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(auth::parse_challenge);
        self.forget_token(at);
        if let Some(c) = challenge {
            self.with_host(at.host, |h| h.challenge = Some(c));
        }
    }

    /// Runs a request, retrying connection failures, stalls and
    /// 408/429/5xx.
    pub(super) fn execute(
        &self,
        at: &Repo<'_>,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response> {
        let (host, what) = (at.host, at.what);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.opts.retry.attempts;
            let (http, req) = build().build_split();
            let req = req.map_err(|e| Error::Registry {
                registry: host.to_string(),
                reference: what.to_string(),
                status: None,
                code: None,
                message: "cannot make the request".into(),
                // Without the URL, whose query may be a signature.
                cause: Some(e.without_url().into()),
            })?;
            let name = request_name(at, req.method(), req.url());
            // The whole URL (scheme and all), as reqwest's message had it.
            let full = format!("{} {}", req.method(), shown(req.url()));
            let sent = http.execute(req).map_err(|e| {
                if e.is_timeout() {
                    SendError::Transient(self.stalled(&name))
                } else {
                    classify(e)
                }
            });
            match sent {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if retry::retryable_status(status) && !last {
                        let after = retry_after(&resp);
                        self.retrying(at, attempt, after, &format!("HTTP {status}"));
                        continue;
                    }
                    return Ok(resp);
                }
                Err(SendError::Transient(m)) if !last => {
                    self.retrying(at, attempt, None, &m);
                    continue;
                }
                Err(SendError::Transient(m)) => {
                    return Err(self.err(host, what, None, None, gave_up(&m, attempt)))
                }
                Err(SendError::Failed { message, .. }) if !last => {
                    self.retrying(at, attempt, None, &message);
                    continue;
                }
                Err(SendError::Failed { cause, .. }) => {
                    return Err(failed(at, gave_up(&full, attempt), cause))
                }
                Err(SendError::Fatal(err)) => return Err(err),
            }
        }
    }

    /// The error for an answer with a failing status: the registry's own
    /// code and message from its error body (at most 64 KiB of it read),
    /// else the status's reason phrase.
    pub(super) fn status_error(&self, host: &str, what: &str, resp: Response) -> Error {
        let status = resp.status();
        let body = read_limited(resp, 64 * 1024).unwrap_or_default();
        let (code, message) = registry_error_body(&body).unwrap_or_else(|| {
            (
                None,
                status
                    .canonical_reason()
                    .unwrap_or("request failed")
                    .to_string(),
            )
        });
        self.err(host, what, Some(status.as_u16()), code, message)
    }
}

/// How long the registry asked to wait before the next attempt.
pub(super) fn retry_after(resp: &Response) -> Option<Duration> {
    resp.headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry::parse_retry_after(v, SystemTime::now()))
}

/// Whether a failure to send is worth another attempt, with a message that
/// leaves out a URL's query string.
pub(super) fn classify(e: reqwest::Error) -> SendError {
    // Credentials travel in headers and bodies only, but a redirect's query
    // string may be a signature (presigned storage URLs): it is left out.
    let mut msg = error_chain(&e);
    if let Some(u) = e.url() {
        msg = msg.replace(u.as_str(), &shown(u));
    }
    if e.is_builder() {
        return SendError::Fatal(Error::internal(msg));
    }
    if e.is_timeout() || e.is_connect() || e.is_request() || e.is_body() {
        // The same answer however often it is asked: not retried.
        if is_not_tls(&msg) {
            return SendError::Fatal(Error::NotTls {
                registry: e.url().map(authority).unwrap_or_default(),
                url: e.url().map(shown).unwrap_or_default(),
                source: e.without_url().into(),
            });
        }
        if is_certificate_error(&msg) {
            return SendError::Fatal(certificate_error(e));
        }
        return SendError::Failed {
            message: msg,
            cause: e.without_url(),
        };
    }
    SendError::Failed {
        message: msg,
        cause: e.without_url(),
    }
}

/// The error of a request (`what`, `METHOD path`) whose last attempt
/// failed for `cause`, an HTTP client error stripped of its URL.
pub(super) fn failed(at: &Repo<'_>, what: String, cause: reqwest::Error) -> Error {
    Error::Registry {
        registry: at.host.to_string(),
        reference: at.what.to_string(),
        status: None,
        code: None,
        message: what,
        cause: Some(cause.into()),
    }
}

/// A request as messages name it: the method and the path on the registry,
/// or the whole URL (as [`shown`]) on another host.
pub(super) fn request_name(at: &Repo<'_>, method: &Method, url: &reqwest::Url) -> String {
    if authority(url) == at.host {
        format!("{method} {}", url.path())
    } else {
        format!("{method} {}", shown(url))
    }
}

/// A URL as messages show it: scheme, host, port and path, never the
/// query (which may hold a signature) or user information.
pub(super) fn shown(u: &reqwest::Url) -> String {
    match u.host_str() {
        Some(_) => format!("{}://{}{}", u.scheme(), authority(u), u.path()),
        None => u.path().to_string(),
    }
}

/// An `Authorization` value, marked so that reqwest never shows it.
pub(super) fn sensitive(value: &str) -> Option<reqwest::header::HeaderValue> {
    let mut h = reqwest::header::HeaderValue::from_str(value).ok()?;
    h.set_sensitive(true);
    Some(h)
}

/// Whether a body read failed because nothing came for the timeout.
pub(super) fn is_timeout(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::TimedOut {
        return true;
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|r| r as _);
    while let Some(c) = src {
        if c.downcast_ref::<reqwest::Error>()
            .is_some_and(|r| r.is_timeout())
        {
            return true;
        }
        if c.downcast_ref::<io::Error>()
            .is_some_and(|i| i.kind() == io::ErrorKind::TimedOut)
        {
            return true;
        }
        src = c.source();
    }
    false
}

/// The last failure of a request that was tried more than once.
pub(super) fn gave_up(why: &str, attempts: u32) -> String {
    if attempts > 1 {
        format!("{why} (gave up after {attempts} attempts)")
    } else {
        why.to_string()
    }
}

/// Whether a TLS handshake failed because the first answer was not TLS
/// at all (rustls reads a plain HTTP answer as a record of no known type).
pub(super) fn is_not_tls(msg: &str) -> bool {
    msg.contains("InvalidContentType")
}

/// Whether a failure's message (as [`error_chain`] gives it) says the
/// server's certificate did not verify, which no retry and no fallback to
/// plain HTTP may paper over.
pub(super) fn is_certificate_error(msg: &str) -> bool {
    msg.contains("certificate") || msg.contains("UnknownIssuer") || msg.contains("NotValidForName")
}

/// The error for a certificate that did not verify (its hint says how to
/// trust its CA).
pub(super) fn certificate_error(e: reqwest::Error) -> Error {
    Error::Certificate {
        registry: e.url().map(authority).unwrap_or_default(),
        url: e.url().map(shown).unwrap_or_default(),
        source: e.without_url().into(),
    }
}

/// A URL gantry made for a request to `at` does not parse.
pub(super) fn bad_url(at: &Repo<'_>, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Registry {
        registry: at.host.to_string(),
        reference: at.what.to_string(),
        status: None,
        code: None,
        message: "bad URL".into(),
        cause: Some(e.into()),
    }
}

/// An error and its causes on one line, `: `-separated, leaving out a cause
/// whose text the line already holds (reqwest and hyper often repeat one).
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}
