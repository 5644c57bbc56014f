//! Image archives built from a script of members (see
//! `gantry_fuzz::build_tar`): well-formed tars whose members are hostile —
//! names that escape, links that loop or point outside, sizes that lie,
//! duplicate and missing members, digests that name the wrong bytes —
//! read as `gantry inspect` and an import into a store read them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (archive, select) = gantry_fuzz::build_tar(data);
    gantry_fuzz::read_archive(&archive, select.as_deref());
});
