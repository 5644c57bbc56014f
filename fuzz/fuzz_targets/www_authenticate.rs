//! What a registry's auth answers hold: the `WWW-Authenticate` challenge of
//! a 401, and the token endpoint's JSON.
//!
//! The input is the header, then (after the first newline) the token body.
#![no_main]

use std::time::Instant;

use gantry::registry::auth::{parse_challenge, Challenge, TokenResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(h) = std::str::from_utf8(header) {
        if let Some(Challenge::Bearer { realm, .. }) = parse_challenge(h) {
            // The realm comes from the header; it is never invented.
            assert!(h.contains(realm.as_str()) || realm.is_empty() || h.contains('\\'));
        }
    }
    if let Ok(t) = serde_json::from_slice::<TokenResponse>(body) {
        let now = Instant::now();
        if let Some(token) = t.into_token(now) {
            assert!(
                token.fresh(now),
                "a token just issued is used at least once"
            );
        }
    }
});
