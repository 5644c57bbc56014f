//! Image references, parsed and normalised exactly as docker does.
//!
//! The grammar is docker's (distribution/reference):
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [ registry "/" ] path
//! registry         := host [ ":" port ]
//! host             := domain-name | "[" IPv6 "]"
//! domain-name      := domain-component ( "." domain-component )*
//! domain-component := [A-Za-z0-9] | [A-Za-z0-9] [A-Za-z0-9-]* [A-Za-z0-9]
//! port             := [0-9]+
//! path             := path-component ( "/" path-component )*
//! path-component   := [a-z0-9]+ ( separator [a-z0-9]+ )*
//! separator        := "." | "_" | "__" | "-"+
//! tag              := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest           := "sha256:" [a-f0-9]{64}
//! ```
//!
//! Normalisation follows docker's `ParseNormalizedNamed`: the first path
//! component names a registry only if it looks like a host, otherwise the
//! reference is on Docker Hub, and single-component Hub names are official
//! images under `library/`.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, Refusal};
use crate::error::{Error, Result};
pub use crate::redact::mask_userinfo;
use crate::redact::userinfo_end;

const DEFAULT_REGISTRY: &str = "docker.io";
/// Older docker clients wrote this name for Docker Hub; it must compare equal
/// to `docker.io` or the same image would get two names.
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
/// `docker.io` is a naming convention, not a host that serves the registry API.
const DOCKER_HUB_HOST: &str = "registry-1.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

const EMPTY: &str = "empty reference";
const IMAGE_ID: &str =
    "a 64-character hexadecimal string is an image ID, not a reference; prefix it with a repository name";
const MISSING_REPOSITORY: &str = "repository name is missing";
const UPPERCASE: &str = "repository name must be lowercase";
const PATH_RULE: &str =
    "repository path components must be lowercase letters, digits and separators (., _, __, -)";
const REGISTRY_RULE: &str =
    "registry must be a host name, IPv4 address or [IPv6] address, with an optional :port";
const TAG_RULE: &str =
    "tag must be at most 128 characters of [A-Za-z0-9_.-] not starting with . or -";
const DIGEST_RULE: &str = "digest must be sha256:<64 hex>";
const NAME_TOO_LONG: &str = "name is longer than 255 characters";
const TAGGED_WITH_DIGEST: &str =
    "an image tag names a repository and tag only; it cannot carry a digest";
const USERINFO: &str = "a reference cannot carry credentials (`user:password@`); \
     log in with `docker login` or `podman login` instead";

/// A parsed, normalised image reference: where an image lives
/// (`registry` and `repository`) and which one it is (`tag`, `digest`, or
/// both).
///
/// Parsing (`"alpine".parse::<Reference>()`) applies docker's rules, so
/// every spelling of one image gives equal values: `alpine`,
/// `docker.io/library/alpine` and `index.docker.io/library/alpine` all
/// have registry `docker.io` and repository `library/alpine`. Parsing adds
/// no tag; [`Reference::with_default_tag`] does, where a bare name means
/// `:latest`. [`Display`](fmt::Display) writes the fully qualified form,
/// which parses back to the same value; [`Reference::familiar`] is the
/// short form for people. A reference never holds credentials: text with
/// `user:password@` is refused, and its error masks the password.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host, with port if any; `docker.io` for Docker Hub (see
    /// [`Reference::registry_host`] for the host actually contacted).
    pub registry: String,
    /// Repository path; `library/` is added for official Docker Hub images.
    pub repository: String,
    /// The tag as written (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`); `None` when
    /// the reference gave none.
    pub tag: Option<String>,
    /// The manifest or index digest the reference pins; `None` when it gave
    /// none. With both a tag and a digest, the digest decides what is
    /// fetched and the tag is only a label.
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses a name that gantry will write as an image tag (docker
    /// `RepoTags`, OCI `org.opencontainers.image.ref.name`). Those formats
    /// have no place for a digest, so one is refused rather than dropped, and
    /// a bare name means `:latest` as it does for `docker tag`.
    pub fn parse_tagged(s: &str) -> Result<Reference> {
        let reference: Reference = s.parse()?;
        if reference.digest.is_some() {
            return Err(invalid(s, TAGGED_WITH_DIGEST));
        }
        Ok(reference.with_default_tag())
    }

    /// Checks a tag on its own, e.g. one given separately from its repository.
    /// The error is the rule broken, for the caller to wrap with context.
    pub fn validate_tag(tag: &str) -> std::result::Result<(), String> {
        validate_tag(tag)
    }

    /// Adds `:latest` when the reference pins nothing; a digest alone already
    /// identifies the image, so it is left without a tag.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// `registry/repository`, fully qualified.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short form docker shows users: `alpine:3.20` rather than
    /// `docker.io/library/alpine:3.20`.
    ///
    /// As with docker, a Hub repository whose first component looks like a
    /// host (`docker.io/foo.bar/baz`) has a familiar form that parses back to
    /// a different registry; [`Display`](fmt::Display) is the lossless form.
    pub fn familiar(&self) -> String {
        let mut out = self.familiar_name();
        self.push_suffix(&mut out);
        out
    }

    /// The host to contact for this repository.
    pub fn registry_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DOCKER_HUB_HOST
        } else {
            &self.registry
        }
    }

    fn familiar_name(&self) -> String {
        if self.registry != DEFAULT_REGISTRY {
            return self.name();
        }
        // Only a single component after `library/` is an official image;
        // deeper paths keep the prefix so they cannot be mistaken for one.
        match self.repository.strip_prefix(OFFICIAL_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.repository.clone(),
        }
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
    }
}

/// Checks a tag on its own; the error is the rule broken.
pub fn validate_tag(tag: &str) -> std::result::Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    let ok = match bytes.split_first() {
        Some((&first, rest)) => {
            bytes.len() <= TAG_MAX
                && word(first)
                && rest.iter().all(|&b| word(b) || b == b'.' || b == b'-')
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(TAG_RULE.to_string())
    }
}

/// The fully qualified form of `s`, with `latest` when it names neither tag
/// nor digest; `None` when `s` is not a reference.
pub fn normalize(s: &str) -> Option<String> {
    s.parse::<Reference>()
        .ok()
        .map(|r| r.with_default_tag().to_string())
}

/// Whether two references name the same image (`busybox` and
/// `docker.io/library/busybox:latest` do).
pub fn same_image(a: &str, b: &str) -> bool {
    a == b || matches!((normalize(a), normalize(b)), (Some(x), Some(y)) if x == y)
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        parse(s).map_err(|reason| invalid(s, reason))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

fn invalid(reference: &str, reason: impl Into<String>) -> Error {
    Error::InvalidReference {
        reference: reference.to_string(),
        reason: reason.into(),
    }
}

fn parse(s: &str) -> std::result::Result<Reference, String> {
    if s.is_empty() {
        return Err(EMPTY.into());
    }
    if userinfo_end(s).is_some() {
        return Err(USERINFO.into());
    }
    // Docker refuses these because `docker run <id>` would otherwise be
    // ambiguous between an image ID and a repository of that name.
    if s.len() == 64 && s.bytes().all(is_lower_hex) {
        return Err(IMAGE_ID.into());
    }

    let (registry, remainder) = split_registry(s);

    // Neither a path nor a tag may contain `@`, and a path may not contain
    // `:`, so the first of each is the only possible boundary.
    let (name_and_tag, digest) = match remainder.split_once('@') {
        Some((left, digest)) => (left, Some(digest)),
        None => (remainder, None),
    };
    let (path, tag) = match name_and_tag.split_once(':') {
        Some((path, tag)) => (path, Some(tag)),
        None => (name_and_tag, None),
    };

    if path.is_empty() {
        return Err(MISSING_REPOSITORY.into());
    }
    if path.chars().any(char::is_uppercase) {
        return Err(UPPERCASE.into());
    }
    let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
        format!("{OFFICIAL_PREFIX}{path}")
    } else {
        path.to_string()
    };
    if !repository.split('/').all(is_path_component) {
        return Err(PATH_RULE.into());
    }
    // Docker's regex falls back to reading a malformed host (`a_b.com/x`) as
    // part of the path and yields a reference with no registry at all; such a
    // reference cannot be pulled or pushed, so it is refused here instead.
    if !is_registry(registry) {
        return Err(REGISTRY_RULE.into());
    }
    if let Some(tag) = tag {
        validate_tag(tag)?;
    }
    let digest = digest.map(parse_digest).transpose()?;

    // Docker measures the normalised name, so `docker.io/library/` counts.
    if registry.len() + 1 + repository.len() > NAME_MAX {
        return Err(NAME_TOO_LONG.into());
    }

    Ok(Reference {
        registry: registry.to_string(),
        repository,
        tag: tag.map(str::to_string),
        digest,
    })
}

/// Docker's rule for telling `host/repo` from `user/repo`: Hub user names
/// cannot contain `.`, `:` or uppercase letters, so a first component with
/// any of them (or `localhost`) must be a registry.
fn split_registry(s: &str) -> (&str, &str) {
    let (registry, remainder) = match s.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(char::is_uppercase) =>
        {
            (first, rest)
        }
        _ => (DEFAULT_REGISTRY, s),
    };
    if registry == LEGACY_DEFAULT_REGISTRY {
        (DEFAULT_REGISTRY, remainder)
    } else {
        (registry, remainder)
    }
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        // Every separator must sit between two alphanumeric runs, which also
        // rules out empty components (`a//b`, trailing `/`).
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

fn is_registry(registry: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = registry.strip_prefix('[') {
        match rest.split_once(']') {
            Some((addr, after)) => {
                let addr_ok =
                    !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
                match after {
                    "" => (addr_ok, None),
                    _ => match after.strip_prefix(':') {
                        Some(port) => (addr_ok, Some(port)),
                        None => (false, None),
                    },
                }
            }
            None => (false, None),
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (is_domain_name(host), Some(port)),
            None => (is_domain_name(registry), None),
        }
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_domain_name(host: &str) -> bool {
    host.split('.').all(|component| {
        let bytes = component.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(first), Some(last)) => {
                first.is_ascii_alphanumeric()
                    && last.is_ascii_alphanumeric()
                    && bytes
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            }
            _ => false,
        }
    })
}

fn parse_digest(s: &str) -> std::result::Result<Digest, String> {
    // A well-formed digest of another algorithm deserves a different
    // answer than a typo: the user can fix it by asking for sha256.
    Digest::parse(s).map_err(|r| match r {
        Refusal::Algorithm(a) => {
            format!("digest algorithm {a:?} is not supported; only sha256 is supported")
        }
        Refusal::Malformed => DIGEST_RULE.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn sha(hex: &str) -> String {
        format!("sha256:{hex}")
    }

    fn reason_of(input: &str) -> String {
        match input.parse::<Reference>() {
            Ok(r) => panic!("{input:?} parsed as {r}, expected an error"),
            Err(Error::InvalidReference { reference, reason }) => {
                assert_eq!(reference, input);
                reason
            }
            Err(other) => panic!("{input:?}: unexpected error kind {other:?}"),
        }
    }

    struct Valid {
        input: String,
        registry: &'static str,
        repository: String,
        tag: Option<String>,
        digest: Option<&'static str>,
    }

    fn ok(
        input: impl Into<String>,
        registry: &'static str,
        repository: impl Into<String>,
        tag: Option<&str>,
        digest: Option<&'static str>,
    ) -> Valid {
        Valid {
            input: input.into(),
            registry,
            repository: repository.into(),
            tag: tag.map(str::to_string),
            digest,
        }
    }

    fn valid_cases() -> Vec<Valid> {
        let d = sha(HEX);
        let hub = "docker.io";
        vec![
            ok("alpine", hub, "library/alpine", None, None),
            ok("alpine:3.20", hub, "library/alpine", Some("3.20"), None),
            ok("library/alpine", hub, "library/alpine", None, None),
            ok("docker.io/alpine", hub, "library/alpine", None, None),
            ok(
                "docker.io/library/alpine",
                hub,
                "library/alpine",
                None,
                None,
            ),
            ok(
                "index.docker.io/library/alpine",
                hub,
                "library/alpine",
                None,
                None,
            ),
            ok(
                "index.docker.io/alpine:edge",
                hub,
                "library/alpine",
                Some("edge"),
                None,
            ),
            ok("foo/bar", hub, "foo/bar", None, None),
            ok("foo/bar/baz:v1", hub, "foo/bar/baz", Some("v1"), None),
            ok("library/a/b", hub, "library/a/b", None, None),
            ok(
                format!("ghcr.io/acme/base@{d}"),
                "ghcr.io",
                "acme/base",
                None,
                Some(HEX),
            ),
            ok(
                format!("ghcr.io/acme/base:1.0@{d}"),
                "ghcr.io",
                "acme/base",
                Some("1.0"),
                Some(HEX),
            ),
            ok(
                format!("alpine@{d}"),
                hub,
                "library/alpine",
                None,
                Some(HEX),
            ),
            ok("localhost:5000/x:1", "localhost:5000", "x", Some("1"), None),
            ok("localhost/x", "localhost", "x", None, None),
            ok(
                "127.0.0.1:5000/a/b/c:tag",
                "127.0.0.1:5000",
                "a/b/c",
                Some("tag"),
                None,
            ),
            ok("[::1]:5000/x", "[::1]:5000", "x", None, None),
            ok("[::1]/x", "[::1]", "x", None, None),
            ok(
                "[2001:db8::1]:443/x/y:z",
                "[2001:db8::1]:443",
                "x/y",
                Some("z"),
                None,
            ),
            ok(
                "registry.internal:5000/team/base:1.4",
                "registry.internal:5000",
                "team/base",
                Some("1.4"),
                None,
            ),
            ok(
                "my-registry.example.com/x",
                "my-registry.example.com",
                "x",
                None,
                None,
            ),
            // Uppercase marks a registry, as in docker; only the path must be lowercase.
            ok("Registry/bar", "Registry", "bar", None, None),
            // Only docker.io gets `library/`, even for other Hub host names.
            ok(
                "registry-1.docker.io/alpine",
                "registry-1.docker.io",
                "alpine",
                None,
                None,
            ),
            // Looks like host:port but has no `/`, so it is a Hub name with a tag.
            ok(
                "localhost:5000",
                hub,
                "library/localhost",
                Some("5000"),
                None,
            ),
            ok("a__b", hub, "library/a__b", None, None),
            ok("a---b", hub, "library/a---b", None, None),
            ok("a.b_c-d", hub, "library/a.b_c-d", None, None),
            ok("foo/a.b_c-d", hub, "foo/a.b_c-d", None, None),
            ok("0", hub, "library/0", None, None),
            ok(
                "alpine:Latest_1.0-rc",
                hub,
                "library/alpine",
                Some("Latest_1.0-rc"),
                None,
            ),
            ok("alpine:_", hub, "library/alpine", Some("_"), None),
            // Only a bare 64-hex string is taken for an image ID.
            ok(
                format!("{HEX}:{HEX}"),
                hub,
                format!("library/{HEX}"),
                Some(HEX),
                None,
            ),
            ok(
                &HEX[..63],
                hub,
                format!("library/{}", &HEX[..63]),
                None,
                None,
            ),
        ]
    }

    #[test]
    fn parses_valid_references() {
        for case in valid_cases() {
            let input = &case.input;
            let r: Reference = input
                .parse()
                .unwrap_or_else(|e| panic!("{input:?} should parse: {e}"));
            assert_eq!(r.registry, case.registry, "{input:?}");
            assert_eq!(r.repository, case.repository, "{input:?}");
            assert_eq!(r.tag, case.tag, "{input:?}");
            assert_eq!(
                r.digest.map(|d| d.hex()).as_deref(),
                case.digest,
                "{input:?}"
            );
        }
    }

    #[test]
    fn display_and_familiar_round_trip() {
        for case in valid_cases() {
            let input = &case.input;
            let r: Reference = input.parse().unwrap();
            let full = r.to_string();
            assert_eq!(
                full.parse::<Reference>().unwrap(),
                r,
                "display of {input:?}"
            );
            let short = r.familiar();
            assert_eq!(
                short.parse::<Reference>().unwrap(),
                r,
                "familiar of {input:?}"
            );
        }
    }

    #[test]
    fn display_is_fully_qualified() {
        let d = sha(HEX);
        let cases: Vec<(String, String)> = vec![
            ("alpine".into(), "docker.io/library/alpine".into()),
            ("alpine:3.20".into(), "docker.io/library/alpine:3.20".into()),
            ("foo/bar".into(), "docker.io/foo/bar".into()),
            (
                "index.docker.io/alpine".into(),
                "docker.io/library/alpine".into(),
            ),
            ("localhost:5000/x:1".into(), "localhost:5000/x:1".into()),
            ("[::1]:5000/x".into(), "[::1]:5000/x".into()),
            (
                format!("ghcr.io/acme/base@{d}"),
                format!("ghcr.io/acme/base@{d}"),
            ),
            (
                format!("alpine:3@{d}"),
                format!("docker.io/library/alpine:3@{d}"),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(input.parse::<Reference>().unwrap().to_string(), expected);
        }
    }

    #[test]
    fn familiar_matches_docker() {
        let d = sha(HEX);
        let cases: Vec<(String, String)> = vec![
            ("docker.io/library/alpine:3.20".into(), "alpine:3.20".into()),
            ("alpine".into(), "alpine".into()),
            ("docker.io/foo/bar".into(), "foo/bar".into()),
            ("library/a/b".into(), "library/a/b".into()),
            ("ghcr.io/acme/base:1".into(), "ghcr.io/acme/base:1".into()),
            ("localhost/x".into(), "localhost/x".into()),
            ("quay.io/library/x".into(), "quay.io/library/x".into()),
            (
                format!("docker.io/library/alpine@{d}"),
                format!("alpine@{d}"),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                input.parse::<Reference>().unwrap().familiar(),
                expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn rejects_invalid_references() {
        let long_tag = "t".repeat(129);
        let cases: Vec<(String, &str)> = vec![
            ("".into(), EMPTY),
            (HEX.into(), IMAGE_ID),
            ("Foo".into(), UPPERCASE),
            ("alpinE:1".into(), UPPERCASE),
            ("foo/Bar".into(), UPPERCASE),
            ("docker.io/Foo".into(), UPPERCASE),
            ("ghcr.io/Acme/x".into(), UPPERCASE),
            ("a:b:c".into(), TAG_RULE),
            ("ghcr.io/a:b:c".into(), TAG_RULE),
            ("alpine:".into(), TAG_RULE),
            (format!("alpine:{long_tag}"), TAG_RULE),
            ("alpine:.x".into(), TAG_RULE),
            ("alpine:-x".into(), TAG_RULE),
            ("alpine:a+b".into(), TAG_RULE),
            (":tag".into(), MISSING_REPOSITORY),
            ("ghcr.io/".into(), MISSING_REPOSITORY),
            (format!("@{}", sha(HEX)), MISSING_REPOSITORY),
            ("a..b".into(), PATH_RULE),
            ("-a".into(), PATH_RULE),
            ("a-".into(), PATH_RULE),
            ("_a".into(), PATH_RULE),
            ("a___b".into(), PATH_RULE),
            ("a._b".into(), PATH_RULE),
            ("a/".into(), PATH_RULE),
            ("a//b".into(), PATH_RULE),
            ("/a".into(), PATH_RULE),
            ("a b".into(), PATH_RULE),
            (" alpine".into(), PATH_RULE),
            ("al$pine".into(), PATH_RULE),
            ("ghcr.io/a/b c".into(), PATH_RULE),
            ("localhost:abc/x".into(), REGISTRY_RULE),
            ("localhost:/x".into(), REGISTRY_RULE),
            ("a_b.com/x".into(), REGISTRY_RULE),
            ("a.b_c-d/e-f".into(), REGISTRY_RULE),
            ("-bad.com/x".into(), REGISTRY_RULE),
            ("bad-.com/x".into(), REGISTRY_RULE),
            ("a..com/x".into(), REGISTRY_RULE),
            ("[::1/x".into(), REGISTRY_RULE),
            ("[]:5000/x".into(), REGISTRY_RULE),
            ("[::g]/x".into(), REGISTRY_RULE),
            ("[::1]x/y".into(), REGISTRY_RULE),
            ("alpine:3.20/x".into(), REGISTRY_RULE),
            ("x@sha256:short".into(), DIGEST_RULE),
            ("x@".into(), DIGEST_RULE),
            ("x@sha256".into(), DIGEST_RULE),
            (format!("x@sha256:{}", HEX.to_uppercase()), DIGEST_RULE),
            (format!("x@sha256:{HEX}0"), DIGEST_RULE),
            (format!("x@{}@{}", sha(HEX), sha(HEX)), DIGEST_RULE),
            (format!("x@{}:tag", sha(HEX)), DIGEST_RULE),
            (
                "x@md5:d41d8cd98f00b204e9800998ecf8427e".into(),
                "only sha256 is supported",
            ),
            (format!("x@sha512:{HEX}{HEX}"), "only sha256 is supported"),
        ];
        for (input, expected) in cases {
            let reason = reason_of(&input);
            assert!(
                reason.contains(expected),
                "{input:?}: reason {reason:?} does not contain {expected:?}"
            );
        }
    }

    #[test]
    fn name_length_counts_the_normalised_name() {
        // "docker.io/library/" is 18 characters.
        let fits = "a".repeat(NAME_MAX - 18);
        let r: Reference = fits.parse().unwrap();
        assert_eq!(r.name().len(), NAME_MAX);
        assert_eq!(reason_of(&format!("{fits}a")), NAME_TOO_LONG);

        let fits = format!("ghcr.io/{}", "b".repeat(NAME_MAX - 8));
        assert!(fits.parse::<Reference>().is_ok());
        assert_eq!(reason_of(&format!("{fits}b:tag")), NAME_TOO_LONG);
    }

    #[test]
    fn tag_length_limit() {
        let max = "t".repeat(TAG_MAX);
        let r: Reference = format!("alpine:{max}").parse().unwrap();
        assert_eq!(r.tag.as_deref(), Some(max.as_str()));
        assert!(validate_tag(&max).is_ok());
        assert_eq!(validate_tag(&format!("{max}t")), Err(TAG_RULE.to_string()));
    }

    #[test]
    fn validate_tag_alone() {
        for tag in ["latest", "3.20", "v1.0-rc.1", "_", "A", "0", "a__b--c..d"] {
            assert_eq!(validate_tag(tag), Ok(()), "{tag:?}");
            assert_eq!(Reference::validate_tag(tag), Ok(()), "{tag:?}");
        }
        for tag in ["", ".a", "-a", "a:b", "a/b", "a@b", "a b", "é"] {
            assert_eq!(validate_tag(tag), Err(TAG_RULE.to_string()), "{tag:?}");
        }
    }

    #[test]
    fn with_default_tag_only_when_unpinned() {
        let d = sha(HEX);
        let cases: Vec<(String, String)> = vec![
            ("alpine".into(), "docker.io/library/alpine:latest".into()),
            ("alpine:3".into(), "docker.io/library/alpine:3".into()),
            (
                format!("alpine@{d}"),
                format!("docker.io/library/alpine@{d}"),
            ),
            (
                format!("alpine:3@{d}"),
                format!("docker.io/library/alpine:3@{d}"),
            ),
        ];
        for (input, expected) in cases {
            let r: Reference = input.parse().unwrap();
            assert_eq!(r.with_default_tag().to_string(), expected, "{input:?}");
        }
    }

    #[test]
    fn parse_tagged_requires_tag_and_refuses_digest() {
        let r = Reference::parse_tagged("alpine").unwrap();
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.familiar(), "alpine:latest");

        let r = Reference::parse_tagged("localhost:5000/app:1.2").unwrap();
        assert_eq!(r.to_string(), "localhost:5000/app:1.2");

        for input in [
            format!("alpine@{}", sha(HEX)),
            format!("alpine:3@{}", sha(HEX)),
        ] {
            match Reference::parse_tagged(&input) {
                Err(Error::InvalidReference { reason, .. }) => {
                    assert_eq!(reason, TAGGED_WITH_DIGEST, "{input:?}")
                }
                other => panic!("{input:?}: {other:?}"),
            }
        }
        assert!(Reference::parse_tagged("Foo").is_err());
        assert!(Reference::parse_tagged("").is_err());
    }

    #[test]
    fn name_and_registry_host() {
        let cases = [
            ("alpine", "docker.io/library/alpine", "registry-1.docker.io"),
            (
                "index.docker.io/x/y:1",
                "docker.io/x/y",
                "registry-1.docker.io",
            ),
            ("ghcr.io/a/b:1", "ghcr.io/a/b", "ghcr.io"),
            ("localhost:5000/x", "localhost:5000/x", "localhost:5000"),
            ("[::1]:5000/x", "[::1]:5000/x", "[::1]:5000"),
        ];
        for (input, name, host) in cases {
            let r: Reference = input.parse().unwrap();
            assert_eq!(r.name(), name, "{input:?}");
            assert_eq!(r.registry_host(), host, "{input:?}");
        }
    }

    #[test]
    fn credentials_in_a_reference_are_refused_and_masked() {
        for (input, shown) in [
            (
                "user:hunter2@ghcr.io/acme/app:1",
                "user:***@ghcr.io/acme/app:1",
            ),
            (
                "https://user:hunter2@ghcr.io/x",
                "https://user:***@ghcr.io/x",
            ),
            ("user:p@ss/hunter2@ghcr.io/x", "user:***@ghcr.io/x"),
            ("hunter2@ghcr.io/x", "***@ghcr.io/x"),
            ("user:hunter2@localhost:5000", "user:***@localhost:5000"),
            (
                &format!("user:hunter2@ghcr.io/x@{}", sha(HEX)),
                &format!("user:***@ghcr.io/x@{}", sha(HEX)),
            ),
        ] {
            assert_eq!(mask_userinfo(input), shown, "{input:?}");
            assert!(reason_of(input).contains("credentials"), "{input:?}");
            let err = input.parse::<Reference>().unwrap_err().to_string();
            assert!(err.contains(shown) && !err.contains("hunter2"), "{err}");
        }
        for plain in [
            format!("ghcr.io/x@{}", sha(HEX)),
            "x@sha256:short".to_string(),
            "ghcr.io/a/b:1".to_string(),
            "a/b@c".to_string(),
            format!("127.0.0.1:1/y@sha256:{}", "0".repeat(64)),
        ] {
            assert_eq!(mask_userinfo(&plain), plain.as_str());
        }
    }

    #[test]
    fn error_message_names_the_reference() {
        let err = "a..b".parse::<Reference>().unwrap_err().to_string();
        assert!(err.contains("\"a..b\""), "{err}");
        assert!(err.contains(PATH_RULE), "{err}");
    }
}
