//! How the client authenticates its requests: the credential for each host
//! (looked up once), and bearer tokens cached per host and scope set,
//! fetched from the token service the registry's challenge names.

use std::time::Instant;

use base64::Engine;

use super::auth::{self, Challenge, Token, TokenResponse};
use super::credentials::Credential;
use super::{authority, read_limited, Client, Repo};
use crate::error::{Error, Result};
use reqwest::Method;

impl Client {
    fn credential(&self, host: &str) -> Result<Option<Credential>> {
        if let Some(c) = self.with_host(host, |h| h.credential.clone()) {
            return Ok(c);
        }
        let c = self
            .opts
            .credentials
            .lookup_within(host, self.opts.timeout)?;
        self.with_host(host, |h| h.credential = Some(c.clone()));
        Ok(c)
    }

    fn token_key(at: &Repo<'_>) -> (String, String) {
        (
            at.host.to_string(),
            auth::scopes(at.repository, at.access).join(" "),
        )
    }

    pub(super) fn forget_token(&self, at: &Repo<'_>) {
        self.tokens
            .lock()
            .expect("tokens lock")
            .remove(&Self::token_key(at));
    }

    /// The `Authorization` value for a request to `url`. The registry's
    /// credential, and the tokens it is exchanged for, belong to the
    /// registry's origin (scheme, host and port) and go nowhere else: not
    /// to an upload `Location` on another host, not along a redirect to
    /// blob storage. Every request that may carry them asks here.
    pub(super) fn authorization_for(
        &self,
        at: &Repo<'_>,
        url: &reqwest::Url,
    ) -> Result<Option<String>> {
        let base = self.base_url(at)?;
        let own = reqwest::Url::parse(&base).is_ok_and(|b| same_origin(&b, url));
        if !own {
            return Ok(None);
        }
        self.authorization(at)
    }

    /// The `Authorization` value the registry wants, if any.
    fn authorization(&self, at: &Repo<'_>) -> Result<Option<String>> {
        let (host, repository) = (at.host, at.repository);
        let Some(challenge) = self.with_host(host, |h| h.challenge.clone()) else {
            return Ok(None);
        };
        match challenge {
            Challenge::Basic => Ok(match self.credential(host)? {
                Some(Credential::Basic { username, password }) => Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}"))
                )),
                _ => None,
            }),
            Challenge::Bearer { realm, service, .. } => {
                let scopes = auth::scopes(repository, at.access);
                let key = Self::token_key(at);
                let now = Instant::now();
                if let Some(t) = self.tokens.lock().expect("tokens lock").get(&key) {
                    if t.fresh(now) {
                        return Ok(Some(format!("Bearer {}", t.value)));
                    }
                }
                let token = self.fetch_token(at, &realm, service.as_deref(), &scopes)?;
                let header = format!("Bearer {}", token.value);
                self.tokens.lock().expect("tokens lock").insert(key, token);
                Ok(Some(header))
            }
        }
    }

    fn fetch_token(
        &self,
        at: &Repo<'_>,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<Token> {
        // The OAuth2 form takes the scopes space-separated; the GET form
        // one `scope` parameter each.
        let joined = scopes.join(" ");
        let scope = joined.as_str();
        let host = at.host;
        let credential = self.credential(host)?;
        let (realm_url, realm_host) = self.token_service(at, realm)?;
        // The password goes to the token service the registry named (as
        // docker sends it), and, like any credential, only to its origin.
        let basic = match &credential {
            Some(Credential::Basic { username, password }) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            _ => None,
        };
        let for_realm = |u: &reqwest::Url| Ok(basic.clone().filter(|_| same_origin(&realm_url, u)));
        let resp = match &credential {
            Some(Credential::IdentityToken(refresh)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("client_id", "gantry"),
                    ("refresh_token", refresh.as_str()),
                    ("scope", scope),
                ];
                if let Some(s) = service {
                    form.push(("service", s));
                }
                self.follow(at, &Method::POST, realm_url.clone(), for_realm, &|r| {
                    r.form(&form)
                })?
            }
            _ => {
                let mut query: Vec<(&str, &str)> =
                    scopes.iter().map(|s| ("scope", s.as_str())).collect();
                if let Some(s) = service {
                    query.push(("service", s));
                }
                self.follow(at, &Method::GET, realm_url.clone(), for_realm, &|r| {
                    r.query(&query)
                })?
            }
        };
        self.token_from(at, &realm_host, scope, resp)
    }

    /// The token service's URL and host, refused when it is plain HTTP
    /// that `--insecure-registry` does not allow, or no URL at all.
    fn token_service(&self, at: &Repo<'_>, realm: &str) -> Result<(reqwest::Url, String)> {
        let (host, what) = (at.host, at.what);
        let realm_host = reqwest::Url::parse(realm)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| host.to_string());
        if let Ok(u) = reqwest::Url::parse(realm) {
            if u.scheme() == "http" && !self.plain_http_allowed(&authority(&u)) {
                return Err(self.err(
                    host,
                    what,
                    None,
                    None,
                    format!(
                        "the token service {realm_host} is plain HTTP; name it with \
                         --insecure-registry to allow that"
                    ),
                ));
            }
        }
        let realm_url = reqwest::Url::parse(realm).map_err(|_| {
            self.err(
                host,
                what,
                None,
                None,
                format!("the token service {realm_host} is not a URL"),
            )
        })?;
        Ok((realm_url, realm_host))
    }

    /// The token in the token service's answer to a request for `scope`.
    fn token_from(
        &self,
        at: &Repo<'_>,
        realm_host: &str,
        scope: &str,
        resp: reqwest::blocking::Response,
    ) -> Result<Token> {
        let (host, what) = (at.host, at.what);
        let status = resp.status().as_u16();
        if status >= 400 {
            let e = self.status_error(realm_host, what, resp);
            return Err(match e {
                Error::Registry {
                    status,
                    code,
                    message,
                    cause,
                    ..
                } => Error::Registry {
                    registry: host.to_string(),
                    reference: what.to_string(),
                    status,
                    code,
                    message: format!("token service {realm_host} refused {scope}: {message}"),
                    cause,
                },
                e => e,
            });
        }
        let body = read_limited(resp, 1 << 20).map_err(|_| {
            self.err(
                host,
                what,
                None,
                None,
                format!("token service {realm_host}: unreadable answer"),
            )
        })?;
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
            self.err(
                host,
                what,
                None,
                None,
                format!("token service {realm_host}: not a token answer"),
            )
        })?;
        parsed.into_token(Instant::now()).ok_or_else(|| {
            self.err(
                host,
                what,
                None,
                None,
                format!("token service {realm_host}: answer holds no token"),
            )
        })
    }
}

/// The one test of where a credential may go: the origin it belongs to.
fn same_origin(owner: &reqwest::Url, url: &reqwest::Url) -> bool {
    owner.origin() == url.origin()
}

#[cfg(test)]
mod tests {
    use super::same_origin;

    #[test]
    fn an_origin_is_scheme_host_and_port() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        let owner = u("https://registry.example");
        assert!(same_origin(
            &owner,
            &u("https://registry.example:443/v2/x?y=1")
        ));
        for other in [
            "http://registry.example/v2/",
            "https://registry.example:5000/v2/",
            "https://storage.registry.example/v2/",
            "https://registry.example.evil/v2/",
        ] {
            assert!(!same_origin(&owner, &u(other)), "{other}");
        }
    }
}
