//! Manifests, indexes and configs as a registry sends them, through the
//! functions that read a registry's answers, then through a whole base load
//! from a store that holds them (offline, so no network is involved).
//!
//! The input is NUL-separated parts: a `Content-Type` value, then documents
//! that may name earlier ones with `$Dn` / `$Sn` (see the crate docs). The
//! last document is the base's top manifest or index.
#![no_main]

use gantry::bases::BaseOptions;
use gantry::config::ImageConfig;
use gantry::platform::{self, Platform};
use gantry::progress::Silent;
use gantry::reference::Reference;
use gantry::registry;
use gantry::store::Store;
use gantry::{manifest, Digest};
use gantry_fuzz::resolve_parts;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parts = resolve_parts(data);
    let Some((header, docs)) = parts.split_first() else {
        return;
    };
    let header = std::str::from_utf8(header).ok();
    let what = "fuzz.example/img";
    let platforms: Vec<Platform> = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
        .iter()
        .map(|p| Platform::parse(p).unwrap())
        .chain([platform::host_platform()])
        .collect();
    for doc in docs {
        let _ = registry::manifest_media_type(doc, header);
        let _ = registry::registry_error_body(doc);
        let _ = manifest::parse_manifest(doc, what);
        let _ = manifest::parse_index(doc, what);
        if let Ok(cands) = platform::candidates(doc, what) {
            for p in &platforms {
                let _ = platform::choose(&cands, p, what);
            }
        }
        if let Ok(config) = ImageConfig::parse(doc) {
            let _ = config.env();
            // A rebuilt base rebuilds to the same config: the canonical
            // form is a fixed point.
            let once = config.to_canonical_json();
            let again = ImageConfig::parse(&once)
                .unwrap_or_else(|e| panic!("canonical config does not parse: {e}"));
            assert_eq!(
                once,
                again.to_canonical_json(),
                "canonical config is not stable"
            );
        }
    }
    let Some(top) = docs.last() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    for doc in docs {
        store.put(doc).unwrap();
    }
    let r: Reference = format!("{what}@{}", Digest::of(top)).parse().unwrap();
    let mut opts = BaseOptions::default();
    opts.offline = true;
    for want in [None, Some(&platforms[0])] {
        if let Ok(loaded) = opts.load_base(&r, want, &store, &Silent) {
            let _ = gantry::inspect::Inspection::of(&loaded.image);
            let _ = loaded.image.platform();
        }
    }
});
