//! Small helpers over oci-spec's manifest, index and descriptor types:
//! making descriptors, parsing manifests and indexes with errors that name
//! the document. Those types hold annotations in `HashMap`s, so they are
//! only ever serialised through [`crate::json::canonical`].

use std::collections::HashMap;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType, Platform};

use crate::digest::Digest;
use crate::error::{Error, JsonError, Result};

/// A descriptor of the blob `digest` of `size` bytes.
pub fn descriptor(media: &str, digest: &Digest, size: u64) -> Descriptor {
    Descriptor::new(MediaType::from(media), size, digest.to_oci())
}

/// The platform of a descriptor for an image with this config; `None` when
/// the config names no os or architecture.
pub fn image_platform(c: &crate::config::ImageConfig) -> Option<Platform> {
    if c.os.is_empty() || c.architecture.is_empty() {
        return None;
    }
    let mut p = oci_spec::image::PlatformBuilder::default()
        .os(c.os.as_str())
        .architecture(c.architecture.as_str());
    if let Some(v) = &c.variant {
        p = p.variant(v.clone());
    }
    if let Some(v) = &c.os_version {
        p = p.os_version(v.clone());
    }
    p.build().ok()
}

/// Parses an image manifest; `what` names it in errors, which never quote it.
pub fn parse_manifest(bytes: &[u8], what: &str) -> Result<ImageManifest> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::format_because(what, "not an image manifest", JsonError::from(e)))
}

/// Parses an image index; `what` names it in errors, which never quote it.
pub fn parse_index(bytes: &[u8], what: &str) -> Result<ImageIndex> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::format_because(what, "not an image index", JsonError::from(e)))
}

/// Annotations in the map type oci-spec holds them in.
pub fn annotations(pairs: impl IntoIterator<Item = (String, String)>) -> HashMap<String, String> {
    pairs.into_iter().collect()
}
