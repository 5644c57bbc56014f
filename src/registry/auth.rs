//! Authentication challenges and bearer tokens.
//!
//! A registry answers 401 with `WWW-Authenticate`: `Basic realm=..` (send the
//! credential on every request) or `Bearer realm=..,service=..,scope=..`
//! (exchange the credential, or nothing, for a token at `realm`). Tokens are
//! scoped to repositories and expire (`expires_in`, 60 s when absent), so
//! they are cached per scope and renewed shortly before they run out.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// A token is renewed this long before it expires, so that a request sent
/// just before expiry does not arrive just after.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);
/// What the token spec says to assume when `expires_in` is absent.
pub const DEFAULT_EXPIRES_IN: u64 = 60;
/// Longer lifetimes are cut to this: the token service decides `expires_in`,
/// and a clock instant that far ahead cannot be represented (adding it
/// panics). A token is renewed at least daily.
const MAX_EXPIRES_IN: u64 = 24 * 60 * 60;

/// How a registry asked to be authenticated, from the `WWW-Authenticate`
/// of its answer to `GET /v2/`. Remembered per host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Send the credential itself, `user:password` in base64, with every
    /// request; no credential means anonymous.
    Basic,
    /// Ask the token service at `realm` for a token (with the credential, if
    /// any) and send that.
    Bearer {
        /// The token service's URL.
        realm: String,
        /// The `service` parameter to pass it back; `None` when not given.
        service: Option<String>,
        /// The scope the registry suggested; `None` when not given. The scopes
        /// asked for come from [`scopes`], not from this.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value. Unknown schemes give `None`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

/// `key=value` or `key="quoted, value"` pairs separated by commas.
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
                value = value.trim().to_string();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), value);
    }
    out
}

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub struct Token {
    /// The opaque token sent as `Authorization: Bearer <value>`; a secret,
    /// so `Debug` never shows it.
    pub value: String,
    /// When to ask for a new one: a margin before it expires.
    pub renew_at: Instant,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// A token received at `now` that lives `expires_in` seconds
    /// ([`DEFAULT_EXPIRES_IN`] when `None`, at least 1 s, at most a day),
    /// to be renewed 5 s before the end (half its life if shorter).
    pub fn new(value: String, expires_in: Option<u64>, now: Instant) -> Token {
        let life = Duration::from_secs(
            expires_in
                .unwrap_or(DEFAULT_EXPIRES_IN)
                .clamp(1, MAX_EXPIRES_IN),
        );
        // A short-lived token is still used at least once.
        let margin = EXPIRY_MARGIN.min(life / 2);
        Token {
            value,
            renew_at: now + life - margin,
        }
    }

    /// Whether it can still be sent at `now` without being renewed.
    pub fn fresh(&self, now: Instant) -> bool {
        now < self.renew_at
    }
}

/// The token endpoint's answer; `token` and `access_token` are synonyms.
#[derive(Deserialize)]
pub struct TokenResponse {
    /// The token, as the docker token specification names it.
    #[serde(default)]
    pub token: Option<String>,
    /// The token, as OAuth2 names it; used when `token` is absent or empty.
    #[serde(default)]
    pub access_token: Option<String>,
    /// Lifetime in seconds from when it was issued; `None` means 60 s.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token received at `now`; `None` when the answer holds no
    /// non-empty token under either name.
    pub fn into_token(self, now: Instant) -> Option<Token> {
        let value = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        Some(Token::new(value, self.expires_in, now))
    }
}

/// `repository:<repo>:pull`, the scope a pull needs.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The scopes a request with `access` to `repository` needs, the one most
/// likely missing first: some token services read only the first `scope`.
/// A cross-repository mount needs pull on the source as well as push on the
/// target, in one token.
pub fn scopes(repository: &str, access: super::Access<'_>) -> Vec<String> {
    match access {
        super::Access::Pull => vec![pull_scope(repository)],
        super::Access::Push { mount_from } => {
            let mut s = vec![format!("repository:{repository}:pull,push")];
            if let Some(from) = mount_from.filter(|f| *f != repository) {
                s.push(pull_scope(from));
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_with_quoted_commas() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull,push".into()),
            }
        );
    }

    #[test]
    fn parses_basic_and_refuses_unknown() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(
            parse_challenge("Bearer service=x"),
            None,
            "realm is required"
        );
    }

    #[test]
    fn tokens_expire_with_a_margin_and_default_to_60s() {
        let now = Instant::now();
        let t = Token::new("t".into(), None, now);
        assert!(t.fresh(now + Duration::from_secs(50)));
        assert!(!t.fresh(now + Duration::from_secs(56)));
        let short = Token::new("t".into(), Some(2), now);
        assert!(short.fresh(now));
        assert!(!short.fresh(now + Duration::from_secs(2)));
    }

    #[test]
    fn push_scopes_put_push_first_and_add_the_mount_source() {
        use super::super::Access;
        assert_eq!(scopes("a/b", Access::Pull), ["repository:a/b:pull"]);
        assert_eq!(
            scopes("a/b", Access::Push { mount_from: None }),
            ["repository:a/b:pull,push"]
        );
        assert_eq!(
            scopes(
                "a/b",
                Access::Push {
                    mount_from: Some("c/d")
                }
            ),
            ["repository:a/b:pull,push", "repository:c/d:pull"]
        );
        assert_eq!(
            scopes(
                "a/b",
                Access::Push {
                    mount_from: Some("a/b")
                }
            ),
            ["repository:a/b:pull,push"]
        );
    }

    #[test]
    fn token_lifetime_past_the_clock_range_is_capped_not_a_panic() {
        let now = Instant::now();
        let r: TokenResponse =
            serde_json::from_str(r#"{"token":"t","expires_in":18446744073709551615}"#).unwrap();
        let t = r.into_token(now).unwrap();
        assert!(t.fresh(now + Duration::from_secs(MAX_EXPIRES_IN - 10)));
        assert!(!t.fresh(now + Duration::from_secs(MAX_EXPIRES_IN)));
    }

    #[test]
    fn token_response_accepts_both_names() {
        let now = Instant::now();
        let r: TokenResponse = serde_json::from_str(r#"{"access_token":"a"}"#).unwrap();
        assert_eq!(r.into_token(now).unwrap().value, "a");
        let r: TokenResponse = serde_json::from_str(r#"{"token":"","access_token":"b"}"#).unwrap();
        assert_eq!(r.into_token(now).unwrap().value, "b");
        let r: TokenResponse = serde_json::from_str(r#"{}"#).unwrap();
        assert!(r.into_token(now).is_none());
    }
}
