//! Media types: the names of manifests, indexes, configs and layers, the one
//! [`Compression`] a layer is written with, and telling an index from an
//! image manifest.

use serde::{Deserialize, Serialize};

/// An OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image index: manifests, one per platform.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// An OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// An uncompressed OCI layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// A gzip OCI layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// A zstd OCI layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// A Docker schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// A Docker manifest list, Docker's image index.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// A Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// A gzip Docker layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// A (signed) Docker schema 1 manifest, which gantry does not read.
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// A Docker schema 1 manifest without its signature.
pub const DOCKER_SCHEMA1_UNSIGNED: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// Annotation naming an image in an index, read by containerd and Docker's
/// containerd image store.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
/// Annotation naming an image in an OCI layout's index: the tag alone, or
/// a reference when tags would clash (see [`crate::layout::write`]).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The media type of an uncompressed docker layer.
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// The media type of a zstd docker layer.
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";

/// How a layer's tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Uncompressed tar.
    None,
    /// gzip, read back by every runtime.
    Gzip,
    /// zstd, smaller and faster, read by containerd 1.5+ and podman.
    Zstd,
}

impl Compression {
    /// The name build files and messages use: `none`, `gzip`, `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The OCI layer media type of a layer compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => OCI_LAYER_TAR,
            Compression::Gzip => OCI_LAYER_GZIP,
            Compression::Zstd => OCI_LAYER_ZSTD,
        }
    }

    /// The level a build file that names none gets.
    pub fn default_level(self) -> i32 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 4,
            Compression::Zstd => 3,
        }
    }

    /// Valid levels, for build-file validation.
    pub fn level_range(self) -> std::ops::RangeInclusive<i32> {
        match self {
            Compression::None => 0..=0,
            Compression::Gzip => 1..=9,
            Compression::Zstd => 1..=19,
        }
    }
}

impl Compression {
    /// The compression a layer media type names (OCI or docker), or `None`
    /// for a media type that is not a layer gantry reads.
    pub fn of_layer_media_type(media: &str) -> Option<Compression> {
        match media {
            OCI_LAYER_TAR | DOCKER_LAYER_TAR => Some(Compression::None),
            OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Some(Compression::Gzip),
            OCI_LAYER_ZSTD | DOCKER_LAYER_ZSTD => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// Whether `media_type` names an index (OCI) or manifest list (Docker):
/// a document that lists manifests rather than layers.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Whether `media_type` names an image manifest gantry reads (OCI or
/// Docker schema 2).
pub fn is_image_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// Whether `media_type` names a Docker schema 1 manifest, signed or not.
pub fn is_schema1(media_type: &str) -> bool {
    media_type == DOCKER_SCHEMA1 || media_type == DOCKER_SCHEMA1_UNSIGNED
}

/// The fields of a manifest or index body that tell what it is.
#[derive(Debug, Default, Deserialize)]
pub struct Peek {
    /// `schemaVersion`: 1 for the retired Docker schema 1, else 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: Option<u32>,
    /// The body's own `mediaType`, when it has one.
    #[serde(rename = "mediaType")]
    pub media_type: Option<String>,
    manifests: Option<serde::de::IgnoredAny>,
}

impl Peek {
    /// Whether the body has a `manifests` list, as only an index does.
    pub fn has_manifests(&self) -> bool {
        self.manifests.is_some()
    }

    /// Reads the telling fields of a JSON body; an error only when the
    /// body is not a JSON object of that shape.
    pub fn of(bytes: &[u8]) -> serde_json::Result<Peek> {
        serde_json::from_slice(bytes)
    }
}

/// The media type of a manifest or index body. The body's own fields win
/// over `declared` (a `Content-Type` or a descriptor's), which some
/// registries and proxies get wrong; without either, the shape decides.
pub fn sniff(bytes: &[u8], declared: Option<&str>) -> String {
    let peek = Peek::of(bytes).ok();
    if let Some(p) = &peek {
        if p.schema_version == Some(1) {
            return DOCKER_SCHEMA1.to_string();
        }
        if let Some(m) = &p.media_type {
            return m.clone();
        }
    }
    match declared {
        Some(h) if h != "application/json" && h != "text/plain" && !h.is_empty() => h.to_string(),
        _ if peek.as_ref().is_some_and(|p| p.has_manifests()) => OCI_INDEX.to_string(),
        _ => OCI_MANIFEST.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_decides_before_the_declared_type_and_the_shape_last() {
        let declared = Some(DOCKER_MANIFEST);
        assert_eq!(sniff(br#"{"schemaVersion":1}"#, declared), DOCKER_SCHEMA1);
        assert_eq!(
            sniff(
                br#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#,
                declared
            ),
            OCI_INDEX
        );
        assert_eq!(sniff(br#"{"manifests":[]}"#, declared), DOCKER_MANIFEST);
        assert_eq!(
            sniff(br#"{"manifests":[]}"#, Some("application/json")),
            OCI_INDEX
        );
        assert_eq!(sniff(br#"{"manifests":null}"#, None), OCI_MANIFEST);
        assert_eq!(sniff(b"not json", None), OCI_MANIFEST);
    }

    #[test]
    fn indexes_and_manifests_are_told_apart_by_media_type() {
        assert!(is_index(OCI_INDEX) && is_index(DOCKER_MANIFEST_LIST));
        assert!(!is_index(OCI_MANIFEST) && !is_image_manifest(OCI_INDEX));
        assert!(is_image_manifest(OCI_MANIFEST) && is_image_manifest(DOCKER_MANIFEST));
        assert!(is_schema1(DOCKER_SCHEMA1) && is_schema1(DOCKER_SCHEMA1_UNSIGNED));
    }

    #[test]
    fn layer_media_types_map_back_to_their_compression() {
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            assert_eq!(Compression::of_layer_media_type(c.media_type()), Some(c));
        }
        assert_eq!(
            Compression::of_layer_media_type(DOCKER_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::of_layer_media_type(OCI_CONFIG), None);
    }
}
