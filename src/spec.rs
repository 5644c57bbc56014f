//! Media types and small helpers over oci-spec's manifest, index and
//! descriptor types. Those types hold annotations in `HashMap`s, so they are
//! only ever serialised through [`crate::json::canonical`].

use std::collections::HashMap;

use std::collections::BTreeMap;

use oci_spec::image::{
    Descriptor, ImageIndex, ImageManifest, ImageManifestBuilder, MediaType, Platform,
};

use crate::digest::Digest;
use crate::error::{json_problem, Error, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Annotation naming an image in an index, read by containerd and Docker's
/// containerd image store.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

pub fn media_type(s: &str) -> MediaType {
    MediaType::from(s)
}

pub fn descriptor(media: &str, digest: &Digest, size: u64) -> Descriptor {
    Descriptor::new(media_type(media), size, digest.to_oci())
}

/// The canonical bytes of an OCI image manifest for a config blob and
/// layers, with `annotations` (left out when empty).
pub fn oci_manifest(
    config_digest: &Digest,
    config_size: u64,
    layers: &[crate::image::LayerDesc],
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut builder = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(OCI_CONFIG, config_digest, config_size))
        .layers(
            layers
                .iter()
                .map(|l| descriptor(&l.media_type, &l.digest, l.size))
                .collect::<Vec<_>>(),
        );
    if !annotations.is_empty() {
        builder = builder.annotations(self::annotations(annotations.clone()));
    }
    let manifest = builder
        .build()
        .expect("every required manifest field is set");
    crate::json::canonical(&manifest)
}

/// The canonical bytes of an OCI image index over `children`, in order,
/// each described with its platform, with `annotations` (left out when
/// empty).
pub fn oci_index(
    children: &[&crate::image::Image],
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    let manifests: Vec<Descriptor> = children.iter().map(|c| manifest_descriptor(c)).collect();
    let mut builder = oci_spec::image::ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests);
    if !annotations.is_empty() {
        builder = builder.annotations(self::annotations(annotations.clone()));
    }
    let index = builder.build().expect("every required index field is set");
    crate::json::canonical(&index)
}

/// A descriptor of an image's manifest, with its platform.
pub fn manifest_descriptor(image: &crate::image::Image) -> Descriptor {
    let mut d = descriptor(
        &image.manifest_media_type,
        &image.manifest_digest,
        image.manifest_bytes.len() as u64,
    );
    d.set_platform(image_platform(&image.config));
    d
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

/// What kind of layer a media type names, by its compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

pub fn layer_compression(media: &str) -> Option<LayerCompression> {
    match media {
        OCI_LAYER_TAR | "application/vnd.docker.image.rootfs.diff.tar" => {
            Some(LayerCompression::None)
        }
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Some(LayerCompression::Gzip),
        OCI_LAYER_ZSTD | "application/vnd.docker.image.rootfs.diff.tar.zstd" => {
            Some(LayerCompression::Zstd)
        }
        _ => None,
    }
}

pub fn parse_manifest(bytes: &[u8], what: &str) -> Result<ImageManifest> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::format(what, format!("not an image manifest: {}", json_problem(&e))))
}

pub fn parse_index(bytes: &[u8], what: &str) -> Result<ImageIndex> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::format(what, format!("not an image index: {}", json_problem(&e))))
}

pub fn annotations(pairs: impl IntoIterator<Item = (String, String)>) -> HashMap<String, String> {
    pairs.into_iter().collect()
}

/// `os/arch[/variant]`, the form users write and error messages show.
pub fn platform_string(p: &Platform) -> String {
    let mut s = format!("{}/{}", p.os(), p.architecture());
    if let Some(v) = p.variant() {
        s.push('/');
        s.push_str(v);
    }
    s
}
