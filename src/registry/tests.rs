//! Tests of the registry client, kept apart so the module reads as one concept.

use super::*;
use crate::media;

#[test]
fn loopback_hosts() {
    for h in [
        "localhost",
        "localhost:5000",
        "127.0.0.1",
        "127.3.4.5:80",
        "[::1]:5000",
        "::1",
    ] {
        assert!(is_loopback(h), "{h}");
    }
    for h in [
        "registry.internal:5000",
        "10.0.0.1:5000",
        "localhost.example",
        "[::2]:1",
    ] {
        assert!(!is_loopback(h), "{h}");
    }
}

#[test]
fn plain_http_only_for_loopback_and_named_registries() {
    let mut opts = ClientOptions::from_env();
    opts.insecure = vec!["registry.internal:5000".into()];
    let c = Client::new(opts).unwrap();
    assert!(c.plain_http_allowed("registry.internal:5000"));
    assert!(c.plain_http_allowed("127.0.0.1:5000"));
    assert!(
        !c.plain_http_allowed("registry.internal"),
        "the port is part of the name"
    );
    assert!(!c.plain_http_allowed("ghcr.io"));
}

#[test]
fn registry_error_bodies() {
    assert_eq!(
        registry_error_body(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#
        ),
        Some((Some("MANIFEST_UNKNOWN".into()), "manifest unknown".into()))
    );
    assert_eq!(registry_error_body(b"<html>"), None);
}

#[test]
fn media_type_from_body_then_header() {
    assert_eq!(
        manifest_media_type(
            br#"{"schemaVersion":1,"name":"x"}"#,
            Some(media::OCI_MANIFEST)
        ),
        media::DOCKER_SCHEMA1
    );
    assert_eq!(
        manifest_media_type(
            br#"{"schemaVersion":2,"manifests":[]}"#,
            Some("application/json")
        ),
        media::OCI_INDEX
    );
    assert_eq!(
        manifest_media_type(br#"{"schemaVersion":2}"#, Some(media::DOCKER_MANIFEST)),
        media::DOCKER_MANIFEST
    );
}

#[test]
fn tls_is_never_dropped_for_a_host_not_allowed_plain_http() {
    let mut opts = ClientOptions::from_env();
    opts.insecure = vec!["storage.internal:8080".into()];
    let c = Client::new(opts).unwrap();
    let at = Repo {
        host: "registry.example",
        repository: "a/b",
        what: "a/b:1",
        access: Access::Pull,
        reporter: &crate::progress::Silent,
    };
    let url = |s: &str| reqwest::Url::parse(s).unwrap();
    let from = url("https://registry.example/v2/a/b/blobs/uploads/");
    let e = c
        .check_downgrade(
            &at,
            &from,
            &url("http://elsewhere.example/up?_state=s3cr3t"),
            "upload Location",
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("registry registry.example")
            && e.contains("http://elsewhere.example/up")
            && !e.contains("s3cr3t"),
        "{e}"
    );
    for allowed in [
        "http://127.0.0.1:5000/up",
        "http://storage.internal:8080/up",
        "https://elsewhere.example/up",
    ] {
        assert!(
            c.check_downgrade(&at, &from, &url(allowed), "redirect")
                .is_ok(),
            "{allowed}"
        );
    }
    // Plain HTTP to begin with: nothing to drop.
    let plain = url("http://127.0.0.1:5000/v2/");
    assert!(c
        .check_downgrade(&at, &plain, &url("http://elsewhere.example/up"), "redirect")
        .is_ok());
}
