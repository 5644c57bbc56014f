//! Package URLs (purls), as SBOM tools match packages by them:
//! `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS`.
//!
//! Each type's published examples decide the spelling where the core rules
//! leave room: an OCI digest's colon is written `%3A`
//! (`pkg:oci/debian@sha256%3A…`), a Debian epoch's colon as is
//! (`pkg:deb/debian/attr@1:2.4.47-2%2Bb1`), and `/` in a qualifier value
//! such as `repository_url` as is. Qualifiers are sorted by key, as the
//! canonical form wants.

use crate::digest::Digest;

/// Percent-encodes `s` keeping ASCII letters, digits, `.-_~` and the
/// characters of `keep` (each other byte of its UTF-8 becomes `%XX`).
fn encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b".-_~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A purl of `kind` (`deb`, `apk`, `oci`), with an optional namespace, a
/// name, an optional version, and qualifiers; empty qualifier values are
/// left out.
pub fn build(
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    version: Option<&str>,
    qualifiers: &[(&str, Option<&str>)],
) -> String {
    let mut out = format!("pkg:{kind}/");
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        out.push_str(&encode(ns, b""));
        out.push('/');
    }
    out.push_str(&encode(name, b""));
    if let Some(v) = version.filter(|v| !v.is_empty()) {
        out.push('@');
        out.push_str(&encode(v, b":"));
    }
    let mut qs: Vec<(&str, &str)> = qualifiers
        .iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (*k, v)))
        .collect();
    qs.sort();
    for (i, (k, v)) in qs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(&encode(v, b":/"));
    }
    out
}

/// The `pkg:oci` purl of the manifest `digest` in `repository` (a full
/// repository name such as `docker.io/library/alpine`, which also gives the
/// purl's name: its last component, lowercased).
pub fn oci(repository: &str, digest: &Digest, tag: Option<&str>, arch: Option<&str>) -> String {
    let name = repository
        .rsplit('/')
        .next()
        .unwrap_or(repository)
        .to_ascii_lowercase();
    // The oci type's examples and the scanners that read these purls spell
    // the digest's colon `%3A`; `build` would keep it.
    let mut out = build("oci", None, &name, None, &[]);
    out.push_str(&format!("@sha256%3A{}", digest.hex()));
    let rest = build(
        "x",
        None,
        "x",
        None,
        &[
            ("arch", arch),
            (
                "repository_url",
                Some(repository).filter(|r| r.contains('/')),
            ),
            ("tag", tag),
        ],
    );
    if let Some(q) = rest.find('?') {
        out.push_str(&rest[q..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb_purls_keep_the_epoch_colon_and_encode_plus() {
        assert_eq!(
            build(
                "deb",
                Some("debian"),
                "attr",
                Some("1:2.4.47-2+b1"),
                &[("distro", Some("debian-12")), ("arch", Some("amd64"))]
            ),
            "pkg:deb/debian/attr@1:2.4.47-2%2Bb1?arch=amd64&distro=debian-12"
        );
    }

    #[test]
    fn other_characters_are_percent_encoded_as_utf8() {
        assert_eq!(
            build(
                "apk",
                Some("alpine"),
                "a b",
                Some("1.0 é"),
                &[("arch", Some("x&y"))]
            ),
            "pkg:apk/alpine/a%20b@1.0%20%C3%A9?arch=x%26y"
        );
    }

    #[test]
    fn empty_qualifiers_and_versions_are_left_out() {
        assert_eq!(
            build("apk", Some("alpine"), "musl", None, &[("arch", None)]),
            "pkg:apk/alpine/musl"
        );
    }

    #[test]
    fn oci_purls_name_the_last_component_and_encode_the_digest_colon() {
        let d = Digest::of(b"x");
        assert_eq!(
            oci("docker.io/library/Debian", &d, Some("12"), Some("amd64")),
            format!(
                "pkg:oci/debian@sha256%3A{}?arch=amd64&repository_url=docker.io/library/Debian&tag=12",
                d.hex()
            )
        );
        assert_eq!(
            oci("app", &d, None, None),
            format!("pkg:oci/app@sha256%3A{}", d.hex())
        );
    }
}
