//! Image references as `-t`, `base` and `pull` take them.
//!
//! Beyond "no panic": whatever parses prints as a reference that parses
//! back to the same value, so a reference written to a lock, a report or
//! an `index.json` reads back as the image it named.
#![no_main]

use gantry::reference::{self, Reference};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = reference::validate_tag(s);
    if let Some((a, b)) = s.split_once('\n') {
        let _ = reference::same_image(a, b);
    }
    let _ = Reference::parse_tagged(s);
    let _ = reference::normalize(s);
    let Ok(r) = s.parse::<Reference>() else {
        return;
    };
    let shown = r.to_string();
    let again: Reference = shown
        .parse()
        .unwrap_or_else(|e| panic!("{s:?} parsed, but its display {shown:?} does not: {e}"));
    assert_eq!(again, r, "{s:?} printed as {shown:?}");
    // The familiar form is lossy where docker's is (documented on
    // `familiar`): a Hub repository whose first component looks like a host
    // reads back as another registry, or as none; an official image named
    // by 64 hex digits shortens, untagged, to what reads as an image ID.
    // Everywhere else it is exact.
    let first = r.repository.split('/').next().unwrap_or("");
    let hub_lookalike = r.registry == "docker.io"
        && r.repository.contains('/')
        && (first.contains(['.', ':']) || first == "localhost");
    let familiar = r.familiar();
    let image_id = familiar.len() == 64 && familiar.bytes().all(|b| b.is_ascii_hexdigit());
    if !hub_lookalike && !image_id {
        let back: Reference = familiar
            .parse()
            .unwrap_or_else(|e| panic!("familiar form {familiar:?} of {s:?} does not parse: {e}"));
        assert_eq!(back, r, "{s:?} in familiar form {familiar:?}");
    }
    let _ = r.name();
    let _ = r.registry_host();
    let tagged = r.clone().with_default_tag();
    assert!(tagged.tag.is_some() || tagged.digest.is_some());
});
