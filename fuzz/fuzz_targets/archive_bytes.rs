//! An image archive (OCI archive or docker save tarball) as raw bytes: the
//! tar reader and everything after it, for `gantry inspect PATH` and for an
//! `oci:` / `docker-archive:` base imported into a store.
//!
//! Raw bytes reach the tar header parser; `archive_entries` builds
//! well-formed tars with hostile members to get past it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gantry_fuzz::read_archive(data, None);
});
