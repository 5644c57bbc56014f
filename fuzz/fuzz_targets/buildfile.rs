//! The build file as a user (or a generated file) writes it: TOML parsing,
//! validation with locations, and the build order over image bases.
#![no_main]

use std::path::Path;

use gantry::buildfile::BuildFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = BuildFile::parse(text, Path::new("project/gantry.toml")) else {
        return;
    };
    let _ = file.build_order(&[]);
    for name in file.images.keys() {
        let _ = file.build_order(std::slice::from_ref(name));
    }
    let _ = file.build_order(&["no-such-image".to_string()]);
});
