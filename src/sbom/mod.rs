//! What an image is made of and how it was built, as documents attached to
//! the image as OCI referrers: an SPDX 2.3 SBOM ([`spdx`]), an in-toto
//! Statement with a SLSA Provenance v1 predicate ([`provenance`]), and the
//! artifact manifests and referrers fallback index that carry them
//! ([`artifact`]). The base's installed OS packages are read from its
//! package databases by [`ospkg`], found in its file system by [`scan`]; the
//! purls that name packages are spelled by [`purl`].
//!
//! Everything but [`scan`] takes plain values and bytes and returns bytes;
//! hashing the files of gantry's own layers happens where they are written.
//! Every document goes through [`crate::json::canonical`] and carries no
//! wall-clock time, no random value and no host name, so an unstamped build
//! gives the same bytes on every machine.

pub mod artifact;
pub mod ospkg;
pub mod provenance;
pub mod purl;
pub mod scan;
pub mod spdx;

/// The tool name and version documents name as their creator and builder.
pub fn tool_version() -> String {
    format!("gantry-{}", env!("CARGO_PKG_VERSION"))
}
